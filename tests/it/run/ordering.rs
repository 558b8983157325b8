//! Concurrency and order: at most `--concurrency` requests in flight, results in input order
//! however answers arrive, and a bounded reorder window that lets rows behind a slow one go on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pingone_bypass::simulator::SimulatorConfig;
use uuid::Uuid;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

use crate::support::{
    ENV_A, EXPIRY, against, against_url, column, read_results, run_config, run_files, run_to_end,
    start, users_csv,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_never_exceed_the_concurrency() {
    let simulator = start(SimulatorConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(20),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(120, ENV_A, "8h"));
    let mut config = run_config(&files, against(&simulator));
    config.concurrency = 5;
    let outcome = run_to_end(config).await;
    assert_eq!(outcome.summary.succeeded, 120);
    let peak = simulator.stats().peak_in_flight;
    assert!(peak <= 5, "{peak} requests were in flight at once");
    assert!(peak >= 2, "requests were never concurrent (peak {peak})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_keep_input_order_whatever_order_answers_come_in() {
    let simulator = start(SimulatorConfig {
        jitter: Duration::from_millis(30),
        ..SimulatorConfig::default()
    })
    .await;
    let input = users_csv(300, ENV_A, "8h");
    let users: Vec<String> = input
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(1).map(str::to_owned))
        .collect();
    let files = run_files(&input);
    let mut config = run_config(&files, against(&simulator));
    config.concurrency = 32;
    run_to_end(config).await;
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "user_id"), users);
    assert_eq!(
        column(&rows, "row"),
        (2..302).map(|n| n.to_string()).collect::<Vec<_>>()
    );
    assert!(
        column(&rows, "status")
            .iter()
            .all(|status| *status == "succeeded")
    );
}

/// Answers 200 at once, except for one user whose answer takes `slow_for`; records when each
/// request arrived.
struct OneSlowUser {
    slow_user: Uuid,
    slow_for: Duration,
    arrivals: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl Respond for OneSlowUser {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path().to_owned();
        let slow = path.contains(&self.slow_user.to_string());
        self.arrivals
            .lock()
            .map(|mut arrivals| arrivals.push((path, Instant::now())))
            .ok();
        let answer = ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "_links": {"self": {"href": "x"}, "user": {"href": "y"}},
            "bypassMFAEnabledUntil": EXPIRY,
            "canBypassMFA": true,
        }));
        if slow {
            answer.set_delay(self.slow_for)
        } else {
            answer
        }
    }
}

async fn one_slow_user_server(
    slow_user: Uuid,
    slow_for: Duration,
) -> (MockServer, Arc<Mutex<Vec<(String, Instant)>>>) {
    let server = MockServer::start().await;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    Mock::given(matchers::method("PUT"))
        .respond_with(OneSlowUser {
            slow_user,
            slow_for,
            arrivals: arrivals.clone(),
        })
        .mount(&server)
        .await;
    (server, arrivals)
}

/// Rows for a new user, then `slow`, then `others` new users: the first row proves the
/// credentials, so what follows is about the slow row alone.
fn input_with_slow_second(slow: Uuid, others: usize) -> (String, Vec<Uuid>) {
    let users: Vec<Uuid> = std::iter::once(Uuid::new_v4())
        .chain(std::iter::once(slow))
        .chain((0..others).map(|_| Uuid::new_v4()))
        .collect();
    let mut csv = String::from("env,user,until\n");
    for user in &users {
        csv.push_str(&format!("{ENV_A},{user},8h\n"));
    }
    (csv, users)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_row_does_not_hold_back_the_rows_behind_it() {
    let slow_user = Uuid::new_v4();
    let slow_for = Duration::from_secs(3);
    let (server, arrivals) = one_slow_user_server(slow_user, slow_for).await;
    let (input, users) = input_with_slow_second(slow_user, 18);
    let files = run_files(&input);
    let mut config = run_config(&files, against_url(&format!("{}/v1", server.uri())));
    config.concurrency = 4;
    run_to_end(config).await;

    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(arrivals.len(), 20);
    let slow_arrived = arrivals
        .iter()
        .find(|(path, _)| path.contains(&slow_user.to_string()))
        .map(|(_, at)| *at)
        .expect("the slow row was sent");
    let last_arrival = arrivals.iter().map(|(_, at)| *at).max().expect("arrivals");
    assert!(
        last_arrival < slow_arrived + slow_for,
        "the other rows waited for the slow one"
    );
    let rows = read_results(&files.output);
    let expected: Vec<String> = users.iter().map(Uuid::to_string).collect();
    assert_eq!(
        column(&rows, "user_id"),
        expected,
        "results out of input order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_reorder_window_stops_new_rows_until_the_slow_one_is_written() {
    let slow_user = Uuid::new_v4();
    let slow_for = Duration::from_secs(3);
    let (server, arrivals) = one_slow_user_server(slow_user, slow_for).await;
    let (input, users) = input_with_slow_second(slow_user, 8);
    let files = run_files(&input);
    let mut config = run_config(&files, against_url(&format!("{}/v1", server.uri())));
    config.reorder_window = 5;
    run_to_end(config).await;

    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let arrived = |user: &Uuid| {
        arrivals
            .iter()
            .find(|(path, _)| path.contains(&user.to_string()))
            .map(|(_, at)| *at)
            .expect("every row was sent")
    };
    // Once the first row is written, the window of five holds the slow row and the four rows
    // after it; the rest wait for the slow row to be written.
    let slow_arrived = arrived(&users[1]);
    for user in &users[2..6] {
        assert!(
            arrived(user) < slow_arrived + slow_for,
            "a row inside the window waited"
        );
    }
    for user in &users[6..] {
        assert!(
            arrived(user) >= slow_arrived + slow_for,
            "a row beyond the window was started"
        );
    }
}
