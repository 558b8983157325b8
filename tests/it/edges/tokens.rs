//! Tokens that stop working mid-run: a token PingOne had accepted and then refuses (revoked,
//! or shorter-lived than its `expires_in`) is renewed, each time it happens, and the run goes
//! on; the run stops (exit 3) only when a replacement is refused before PingOne ever took it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingone_bypass::simulator::SimulatorConfig;
use uuid::Uuid;
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers};

use crate::support::{ENV_A, binary, column, read_results, run_files, start, stderr, users_csv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_revoked_again_and_again_are_renewed_each_time_and_the_run_goes_on() {
    // Every token says it lasts an hour and stops working after one second: a run of about
    // six seconds meets a revocation every second.
    let simulator = start(SimulatorConfig {
        token_revoked_after: Some(Duration::from_secs(1)),
        latency: Duration::from_millis(5),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(40, ENV_A, "8h"));
    let (output, summary) = super::run_with_summary(&simulator, &files, "7").await;
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{log}");
    let rows = read_results(&files.output);
    assert!(column(&rows, "status").iter().all(|s| *s == "succeeded"));
    let renewals = summary["token_renewals"].as_u64().unwrap_or_default();
    assert!(
        renewals >= 3,
        "{renewals} renewals in a run of 40 rows at 7/s"
    );
    assert_eq!(simulator.stats().tokens_issued, renewals + 1);
    assert_eq!(
        log.matches("refused an access token it had accepted")
            .count() as u64,
        renewals,
        "each renewal is logged: {log}"
    );
}

/// A token endpoint that hands out `token-1`, `token-2`, ... and an API that takes each token
/// for as many PUTs as `uses` gives (by its number), then refuses it with 401.
async fn pingone_whose_tokens_last(uses: fn(usize) -> usize) -> (MockServer, Uuid) {
    let server = MockServer::start().await;
    let worker_environment = Uuid::new_v4();
    let issued = Arc::new(AtomicUsize::new(0));
    Mock::given(matchers::method("POST"))
        .and(matchers::path(format!("/{worker_environment}/as/token")))
        .respond_with(move |_: &Request| {
            let number = issued.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": format!("token-{number}"),
                "token_type": "Bearer",
                "expires_in": 3600,
            }))
        })
        .mount(&server)
        .await;
    let used: Arc<Mutex<HashMap<usize, usize>>> = Arc::default();
    Mock::given(matchers::method("PUT"))
        .respond_with(move |request: &Request| {
            let number = request
                .headers
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer token-"))
                .and_then(|number| number.parse::<usize>().ok())
                .unwrap_or_default();
            let mut used = used.lock().expect("not poisoned");
            let count = used.entry(number).or_default();
            *count += 1;
            if *count <= uses(number) {
                ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "bypassMFAEnabledUntil": "2031-01-01T00:00:00.000Z",
                    "canBypassMFA": true,
                }))
            } else {
                ResponseTemplate::new(401).set_body_json(serde_json::json!({
                    "id": "e", "code": "ACCESS_FAILED", "message": "The access token is invalid.",
                }))
            }
        })
        .mount(&server)
        .await;
    (server, worker_environment)
}

async fn run_against(
    server: &MockServer,
    worker_environment: Uuid,
    rows: usize,
) -> (
    std::process::Output,
    Vec<std::collections::BTreeMap<String, String>>,
) {
    let files = run_files(&users_csv(rows, ENV_A, "8h"));
    let output = binary()
        .arg("run")
        .arg(&files.input)
        .args(["--progress", "never", "--concurrency", "1"])
        .env("PINGONE_API_URL", format!("{}/v1", server.uri()))
        .env("PINGONE_AUTH_URL", server.uri())
        .env("PINGONE_CLIENT_ID", "client")
        .env("PINGONE_CLIENT_SECRET", "secret")
        .env("PINGONE_ENVIRONMENT_ID", worker_environment.to_string())
        .output()
        .await
        .expect("the run runs");
    let rows = read_results(&files.output);
    (output, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_refused_before_any_use_stops_the_run_even_after_renewals_that_worked() {
    // Tokens 1 and 2 each serve three PUTs and are then refused; token 3 is refused at once.
    let (server, worker_environment) =
        pingone_whose_tokens_last(|number| if number < 3 { 3 } else { 0 }).await;
    let (output, rows) = run_against(&server, worker_environment, 10).await;
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{log}");
    assert!(
        log.contains("PingOne refused a freshly issued token"),
        "{log}"
    );
    // Tokens 1 and 2 served three PUTs each; what was refused is on its row; the rest were
    // not sent once token 3 was refused.
    let statuses = column(&rows, "status");
    assert_eq!(statuses.iter().filter(|s| **s == "succeeded").count(), 6);
    assert!(
        rows.iter()
            .filter(|row| row["status"] == "failed")
            .all(|row| row["http_status"] == "401"),
        "{rows:?}"
    );
    assert!(statuses.contains(&"not_attempted"));
    assert_eq!(tokens_asked(&server).await, 3);
}

async fn tokens_asked(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|request| request.method.as_str() == "POST")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_token_refused_is_renewed_once_and_a_second_refusal_stops_the_run() {
    let (server, worker_environment) = pingone_whose_tokens_last(|_| 0).await;
    let (output, rows) = run_against(&server, worker_environment, 5).await;
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{log}");
    assert!(
        log.contains("PingOne refused a freshly issued token"),
        "{log}"
    );
    assert!(!log.contains("it had accepted"), "{log}");
    let statuses = column(&rows, "status");
    assert_eq!(statuses.iter().filter(|s| **s == "failed").count(), 1);
    assert_eq!(
        statuses.iter().filter(|s| **s == "not_attempted").count(),
        4
    );
    assert_eq!(tokens_asked(&server).await, 2);
}
