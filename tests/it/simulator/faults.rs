//! Injected faults: server errors in PingOne's shape, connection resets, hangs and latency,
//! reproducible from a seed whatever order concurrent requests arrive in.

use std::time::{Duration, Instant};

use futures::future::join_all;
use pingone_bypass::simulator::{FaultChances, Simulator, SimulatorConfig};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::support::{ENV_A, EXPIRY, client, pingone_error, put_bypass, start};

fn always(faults: FaultChances) -> SimulatorConfig {
    SimulatorConfig {
        faults,
        ..SimulatorConfig::default()
    }
}

#[tokio::test]
async fn injected_server_errors_answer_in_pingone_shape_and_503_carries_retry_after() {
    for (faults, status, code) in [
        (
            FaultChances {
                status_500: 1.0,
                ..FaultChances::default()
            },
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNEXPECTED_ERROR",
        ),
        (
            FaultChances {
                status_502: 1.0,
                ..FaultChances::default()
            },
            StatusCode::BAD_GATEWAY,
            "BAD_GATEWAY",
        ),
        (
            FaultChances {
                status_503: 1.0,
                ..FaultChances::default()
            },
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
        ),
    ] {
        let simulator = start(SimulatorConfig {
            retry_after_503: Duration::from_secs(7),
            ..always(faults)
        })
        .await;
        let user = Uuid::new_v4();
        let response = put_bypass(&simulator, &simulator.issue_token(), ENV_A, user, EXPIRY).await;
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        pingone_error(response, status, code).await;
        let expected = (status == StatusCode::SERVICE_UNAVAILABLE).then(|| "7".to_owned());
        assert_eq!(retry_after, expected, "Retry-After with {status}");
        assert_eq!(
            simulator.bypass(ENV_A, user),
            None,
            "a failed PUT changed state"
        );
    }
}

/// Statuses of one PUT to each user, sent in the given order, `concurrently` or one by one.
async fn statuses(
    simulator: &Simulator,
    users: &[Uuid],
    concurrently: bool,
) -> Vec<(Uuid, StatusCode)> {
    let token = simulator.issue_token();
    let mut answers = Vec::new();
    if concurrently {
        let sends = users
            .iter()
            .map(|user| put_bypass(simulator, &token, ENV_A, *user, EXPIRY));
        for (user, response) in users.iter().zip(join_all(sends).await) {
            answers.push((*user, response.status()));
        }
    } else {
        for user in users {
            answers.push((
                *user,
                put_bypass(simulator, &token, ENV_A, *user, EXPIRY)
                    .await
                    .status(),
            ));
        }
    }
    answers.sort();
    answers
}

#[tokio::test]
async fn faults_replay_from_the_seed_whatever_the_order_of_requests() {
    let faults = FaultChances {
        status_503: 0.5,
        ..FaultChances::default()
    };
    let seeded = |seed| SimulatorConfig {
        seed,
        ..always(faults)
    };
    let users: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
    let reversed: Vec<Uuid> = users.iter().rev().copied().collect();

    let first = statuses(&start(seeded(11)).await, &users, false).await;
    let replay = statuses(&start(seeded(11)).await, &reversed, true).await;
    let other_seed = statuses(&start(seeded(12)).await, &users, false).await;

    assert_eq!(first, replay);
    assert_ne!(first, other_seed);
    let failures = first
        .iter()
        .filter(|(_, status)| *status != StatusCode::OK)
        .count();
    assert!(
        (5..=35).contains(&failures),
        "{failures} of 40 failed at a chance of 0.5"
    );
}

#[tokio::test]
async fn a_reset_fault_drops_the_connection_with_a_tcp_reset_and_no_answer() {
    let simulator = start(always(FaultChances {
        reset: 1.0,
        ..FaultChances::default()
    }))
    .await;
    let mut stream = tokio::net::TcpStream::connect(simulator.address())
        .await
        .expect("the simulator accepts connections");
    let body = format!("{{\"bypassMFAEnabledUntil\":\"{EXPIRY}\"}}");
    let request = format!(
        "PUT /v1/environments/{ENV_A}/users/{}/bypassMFA HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        Uuid::new_v4(),
        simulator.issue_token(),
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is written");
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer).await;
    assert_eq!(
        read.map_err(|error| error.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(simulator.stats().resets, 1);
    assert!(simulator.bypasses().is_empty());
}

#[tokio::test]
async fn a_hang_fault_outlasts_the_clients_timeout() {
    let simulator = start(always(FaultChances {
        hang: 1.0,
        ..FaultChances::default()
    }))
    .await;
    let error = client()
        .put(crate::support::bypass_url(
            &simulator,
            ENV_A,
            Uuid::new_v4(),
        ))
        .bearer_auth(simulator.issue_token())
        .json(&serde_json::json!({ "bypassMFAEnabledUntil": EXPIRY }))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("a hanging request is never answered");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(simulator.stats().hangs, 1);
    assert!(simulator.bypasses().is_empty());
}

#[tokio::test]
async fn a_hang_ends_in_a_reset_once_its_time_is_up() {
    let hang_for = Duration::from_millis(200);
    let simulator = start(SimulatorConfig {
        hang_for,
        ..always(FaultChances {
            hang: 1.0,
            ..FaultChances::default()
        })
    })
    .await;
    let started = Instant::now();
    let result = put_bypass_result(&simulator).await;
    assert!(
        result.is_err_and(|error| !error.is_timeout()),
        "a hang ended in an answer"
    );
    assert!(started.elapsed() >= hang_for);
}

async fn put_bypass_result(simulator: &Simulator) -> Result<reqwest::Response, reqwest::Error> {
    client()
        .put(crate::support::bypass_url(simulator, ENV_A, Uuid::new_v4()))
        .bearer_auth(simulator.issue_token())
        .json(&serde_json::json!({ "bypassMFAEnabledUntil": EXPIRY }))
        .send()
        .await
}

#[tokio::test]
async fn latency_delays_every_api_answer_errors_included() {
    let latency = Duration::from_millis(150);
    let simulator = start(SimulatorConfig {
        latency,
        ..SimulatorConfig::default()
    })
    .await;
    for token in [simulator.issue_token(), "forged".to_owned()] {
        let started = Instant::now();
        put_bypass(&simulator, &token, ENV_A, Uuid::new_v4(), EXPIRY).await;
        assert!(
            started.elapsed() >= latency,
            "answered after {:?}",
            started.elapsed()
        );
    }
}
