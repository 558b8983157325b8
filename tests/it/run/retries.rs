//! Sending: the exact request, which answers are retried and how often, Retry-After pausing
//! every sender, and PingOne's codes and messages in the results.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pingone_bypass::simulator::{FaultChances, RateLimit, SimulatorConfig};
use uuid::Uuid;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

use crate::support::{
    ENV_A, ENV_B, EXPIRY, TEST_TOKEN, against, against_url, column, read_results, run_config,
    run_files, run_to_end, start, users_csv,
};

fn granted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "_links": {"self": {"href": "x"}, "user": {"href": "y"}},
        "bypassMFAEnabledUntil": EXPIRY,
        "canBypassMFA": true,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_is_a_put_with_bearer_token_json_and_pingones_date_format() {
    let server = MockServer::start().await;
    let user = Uuid::new_v4();
    let files = run_files(&format!("env,user,until\n{ENV_A},{user},2d\n"));
    let config = run_config(&files, against_url(&format!("{}/v1", server.uri())));
    let expected_until = pingone_bypass::pingone::format_bypass_until(
        chrono::SubsecRound::trunc_subsecs(config.rules.run_start + chrono::Duration::days(2), 3),
    );
    Mock::given(matchers::method("PUT"))
        .and(matchers::path(format!(
            "/v1/environments/{ENV_A}/users/{user}/bypassMFA"
        )))
        .and(matchers::header(
            "authorization",
            format!("Bearer {TEST_TOKEN}").as_str(),
        ))
        .and(matchers::header("content-type", "application/json"))
        .and(matchers::body_json(
            serde_json::json!({ "bypassMFAEnabledUntil": expected_until }),
        ))
        .respond_with(granted())
        .expect(1)
        .mount(&server)
        .await;
    let outcome = run_to_end(config).await;
    assert_eq!(outcome.summary.succeeded, 1);
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_until_the_retries_run_out() {
    for faults in [
        FaultChances {
            status_500: 1.0,
            ..FaultChances::default()
        },
        FaultChances {
            status_502: 1.0,
            ..FaultChances::default()
        },
        FaultChances {
            status_503: 1.0,
            ..FaultChances::default()
        },
    ] {
        let simulator = start(SimulatorConfig {
            faults,
            retry_after_503: Duration::ZERO,
            ..SimulatorConfig::default()
        })
        .await;
        let user = Uuid::new_v4();
        let files = run_files(&format!("env,user,until\n{ENV_A},{user},8h\n"));
        let mut config = run_config(&files, against(&simulator));
        config.retry.retries = 3;
        let outcome = run_to_end(config).await;
        let rows = read_results(&files.output);
        assert_eq!(column(&rows, "status"), ["failed"], "{faults:?}");
        assert_eq!(column(&rows, "attempts"), ["4"], "{faults:?}");
        assert!(!column(&rows, "error_code")[0].is_empty());
        assert_eq!(simulator.stats().puts_for(ENV_A, user), 4);
        assert_eq!((outcome.summary.requests, outcome.summary.retries), (4, 3));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_succeeds_through_intermittent_faults_given_retries() {
    let simulator = start(SimulatorConfig {
        faults: FaultChances {
            status_500: 0.1,
            status_503: 0.1,
            reset: 0.1,
            ..FaultChances::default()
        },
        retry_after_503: Duration::ZERO,
        seed: 5,
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(200, ENV_A, "8h"));
    let mut config = run_config(&files, against(&simulator));
    config.retry.retries = 10;
    let outcome = run_to_end(config).await;
    let rows = read_results(&files.output);
    assert!(
        column(&rows, "status")
            .iter()
            .all(|status| *status == "succeeded")
    );
    assert_eq!(simulator.bypasses().len(), 200);
    assert!(outcome.summary.retries > 0, "no fault was met");
    for row in &rows {
        let user = Uuid::parse_str(&row["user_id"]).expect("a user UUID");
        assert_eq!(
            row["attempts"],
            simulator.stats().puts_for(ENV_A, user).to_string(),
            "the attempts column disagrees with what the server saw"
        );
    }
    assert_eq!(outcome.summary.requests, simulator.stats().total_puts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_not_retried_and_keep_pingones_code_and_message() {
    let missing = Uuid::new_v4();
    let simulator = start(SimulatorConfig {
        forbidden_environments: HashSet::from([ENV_B]),
        population: pingone_bypass::simulator::Population::AllExcept(HashSet::from([missing])),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&format!(
        "env,user,until\n{ENV_B},{},8h\n{ENV_A},{missing},8h\n",
        Uuid::new_v4()
    ));
    run_to_end(run_config(&files, against(&simulator))).await;
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "status"), ["failed", "failed"]);
    assert_eq!(column(&rows, "http_status"), ["403", "404"]);
    assert_eq!(column(&rows, "attempts"), ["1", "1"]);
    assert_eq!(column(&rows, "error_code"), ["ACCESS_FAILED", "NOT_FOUND"]);
    assert!(column(&rows, "error_message")[0].contains("sufficient permissions"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_or_415_is_never_retried_and_408_and_504_are() {
    for (status, attempts) in [(400, "1"), (415, "1"), (408, "3"), (504, "3")] {
        let server = MockServer::start().await;
        Mock::given(matchers::method("PUT"))
            .respond_with(ResponseTemplate::new(status).set_body_json(serde_json::json!({
                "id": "e1", "code": "SOME_CODE", "message": "Some message.",
                "details": [{"code": "DETAIL", "target": "field", "message": "Detail message."}],
            })))
            .mount(&server)
            .await;
        let files = run_files(&format!("env,user,until\n{ENV_A},{},8h\n", Uuid::new_v4()));
        let mut config = run_config(&files, against_url(&format!("{}/v1", server.uri())));
        config.retry.retries = 2;
        run_to_end(config).await;
        let rows = read_results(&files.output);
        assert_eq!(column(&rows, "attempts"), [attempts], "HTTP {status}");
        assert_eq!(column(&rows, "http_status"), [status.to_string()]);
        assert_eq!(column(&rows, "error_code"), ["SOME_CODE"]);
        assert_eq!(
            column(&rows, "error_message"),
            ["Some message. | field: Detail message. [PingOne error id e1]"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_resets_are_retried_and_reported_as_no_answer() {
    for (faults, words) in [
        (
            FaultChances {
                hang: 1.0,
                ..FaultChances::default()
            },
            "--timeout",
        ),
        (
            FaultChances {
                reset: 1.0,
                ..FaultChances::default()
            },
            "connection",
        ),
    ] {
        let simulator = start(SimulatorConfig {
            faults,
            ..SimulatorConfig::default()
        })
        .await;
        let user = Uuid::new_v4();
        let files = run_files(&format!("env,user,until\n{ENV_A},{user},8h\n"));
        let mut config = run_config(&files, against(&simulator));
        config.retry.retries = 2;
        config.timeout = Duration::from_millis(200);
        run_to_end(config).await;
        let rows = read_results(&files.output);
        assert_eq!(column(&rows, "status"), ["failed"]);
        assert_eq!(column(&rows, "attempts"), ["3"]);
        assert_eq!(column(&rows, "error_code"), ["NO_ANSWER"]);
        assert!(
            column(&rows, "error_message")[0].contains(words),
            "{rows:?}"
        );
        assert_eq!(simulator.stats().puts_for(ENV_A, user), 3);
    }
}

/// Answers the very first request 429 with `Retry-After: 1`, every other one 200, and records
/// when each arrived.
struct FirstIsLimited {
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Respond for FirstIsLimited {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let mut arrivals = match self.arrivals.lock() {
            Ok(arrivals) => arrivals,
            Err(poisoned) => poisoned.into_inner(),
        };
        arrivals.push(Instant::now());
        if arrivals.len() == 1 {
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(serde_json::json!({
                    "id": "e", "code": "REQUEST_LIMITED", "message": "Slow down."
                }))
        } else {
            granted()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_pauses_every_sender_not_only_the_row_that_got_it() {
    let server = MockServer::start().await;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    Mock::given(matchers::method("PUT"))
        .respond_with(FirstIsLimited {
            arrivals: arrivals.clone(),
        })
        .mount(&server)
        .await;
    let files = run_files(&users_csv(6, ENV_A, "8h"));
    let mut config = run_config(&files, against_url(&format!("{}/v1", server.uri())));
    config.concurrency = 6;
    // Slots 250 ms apart: the 429 is back long before the second row's slot comes.
    config.rate = 4.0;
    config.retry.max_delay = Duration::from_secs(30);
    let outcome = run_to_end(config).await;

    assert_eq!(outcome.summary.succeeded, 6);
    assert_eq!(outcome.summary.throttled, 1);
    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(arrivals.len(), 7, "six rows and one retry");
    let limited_at = arrivals[0];
    for later in &arrivals[1..] {
        assert!(
            *later >= limited_at + Duration::from_secs(1),
            "a request went out {:?} after the 429, inside its Retry-After",
            *later - limited_at
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_rate_limit_is_met_with_retries_and_counted_as_throttled() {
    let simulator = start(SimulatorConfig {
        rate_limit: NonZeroU32::new(5).map(RateLimit::per_second),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(10, ENV_A, "8h"));
    let mut config = run_config(&files, against(&simulator));
    config.retry.retries = 10;
    config.retry.max_delay = Duration::from_secs(30);
    let outcome = run_to_end(config).await;
    assert_eq!(outcome.summary.succeeded, 10);
    assert!(outcome.summary.throttled >= 1);
    assert_eq!(outcome.summary.throttled, simulator.stats().responses(429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_far_above_the_tenants_limit_adapts_down_so_few_requests_meet_429() {
    let simulator = start(SimulatorConfig {
        latency: Duration::from_millis(30),
        rate_limit: NonZeroU32::new(100).map(RateLimit::per_second),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(400, ENV_A, "8h"));
    let mut config = run_config(&files, against(&simulator));
    config.rate = 1000.0;
    config.concurrency = 32;
    config.retry.retries = 10;
    config.retry.max_delay = Duration::from_secs(30);
    let outcome = run_to_end(config).await;
    assert_eq!(outcome.summary.succeeded, 400);
    // Pausing for Retry-After alone, without lowering the rate, meets a storm of 429s every
    // second (17% of requests here when measured so).
    let share = outcome.summary.throttled as f64 / outcome.summary.requests as f64;
    assert!(share < 0.1, "{:.1}% of requests met 429", share * 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_pingone_returns_is_recorded_even_when_it_differs() {
    let simulator = start(SimulatorConfig {
        max_bypass: Some(Duration::from_secs(3600)),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&format!("env,user,until\n{ENV_A},{},2d\n", Uuid::new_v4()));
    run_to_end(run_config(&files, against(&simulator))).await;
    let rows = read_results(&files.output);
    let (requested, returned) = (
        column(&rows, "requested_until")[0],
        column(&rows, "bypass_mfa_enabled_until")[0],
    );
    assert!(!returned.is_empty());
    assert!(
        returned < requested,
        "returned {returned}, requested {requested}"
    );
    assert_eq!(column(&rows, "can_bypass_mfa"), ["true"]);
    assert_eq!(
        simulator.bypasses()[0].bypass_mfa_enabled_until,
        pingone_bypass::pingone::parse_exact_bypass_until(returned).expect("PingOne's format")
    );
}
