//! Rate limits: one shared by every environment, as a PingOne license is, and an optional one
//! per environment; both answered with 429 `REQUEST_LIMITED` and `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use pingone_bypass::simulator::{RateLimit, SimulatorConfig};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{ENV_A, ENV_B, EXPIRY, detail_codes, pingone_error, put_bypass, start};

/// A limit so slow that no token comes back during a test, so counts are exact.
fn per_minute(requests: u32) -> Option<RateLimit> {
    Some(RateLimit {
        requests: NonZeroU32::new(requests).expect("a positive limit"),
        period: Duration::from_secs(60),
    })
}

#[tokio::test]
async fn the_shared_limit_counts_requests_to_every_environment_together() {
    let simulator = start(SimulatorConfig {
        rate_limit: per_minute(3),
        ..SimulatorConfig::default()
    })
    .await;
    let token = simulator.issue_token();
    let mut statuses = Vec::new();
    for environment in [ENV_A, ENV_B, ENV_A, ENV_B] {
        let response = put_bypass(&simulator, &token, environment, Uuid::new_v4(), EXPIRY).await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry_after: u64 = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
                .expect("a 429 carries Retry-After in whole seconds");
            // One of three requests a minute comes back every 20 seconds.
            assert!(
                (1..=20).contains(&retry_after),
                "Retry-After: {retry_after}"
            );
            let body =
                pingone_error(response, StatusCode::TOO_MANY_REQUESTS, "REQUEST_LIMITED").await;
            assert_eq!(detail_codes(&body), ["LIMIT_EXCEEDED"]);
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(simulator.bypasses().len(), 3);
}

#[tokio::test]
async fn an_environment_limit_leaves_other_environments_unaffected() {
    let simulator = start(SimulatorConfig {
        environment_rate_limit: per_minute(2),
        ..SimulatorConfig::default()
    })
    .await;
    let token = simulator.issue_token();
    let mut statuses = Vec::new();
    for environment in [ENV_A, ENV_A, ENV_A, ENV_B, ENV_B] {
        let response = put_bypass(&simulator, &token, environment, Uuid::new_v4(), EXPIRY).await;
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::OK,
            StatusCode::OK
        ]
    );
}

#[tokio::test]
async fn a_rate_limited_request_changes_no_state() {
    let simulator = start(SimulatorConfig {
        rate_limit: per_minute(1),
        ..SimulatorConfig::default()
    })
    .await;
    let token = simulator.issue_token();
    put_bypass(&simulator, &token, ENV_A, Uuid::new_v4(), EXPIRY).await;
    let limited_user = Uuid::new_v4();
    let response = put_bypass(&simulator, &token, ENV_A, limited_user, EXPIRY).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(simulator.bypass(ENV_A, limited_user), None);
    assert_eq!(simulator.stats().responses(429), 1);
}
