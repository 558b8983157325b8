//! What the specifications share: a simulator on port 0, an HTTP client that ignores proxy
//! settings, and readers for PingOne's answers.

use std::net::SocketAddr;
use std::time::Duration;

use pingone_bypass::pingone::ErrorBody;
use pingone_bypass::simulator::{
    SAMPLE_PARTNER_ENVIRONMENT, SAMPLE_WORKFORCE_ENVIRONMENT, Simulator, SimulatorConfig,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

pub const ENV_A: Uuid = SAMPLE_WORKFORCE_ENVIRONMENT;
pub const ENV_B: Uuid = SAMPLE_PARTNER_ENVIRONMENT;
pub const EXPIRY: &str = "2031-01-02T03:04:05.678Z";

pub async fn start(config: SimulatorConfig) -> Simulator {
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    Simulator::start(config, loopback)
        .await
        .expect("the simulator starts on a free loopback port")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client can be built")
}

pub fn bypass_url(
    simulator: &Simulator,
    environment: impl std::fmt::Display,
    user: impl std::fmt::Display,
) -> String {
    format!(
        "{}/environments/{environment}/users/{user}/bypassMFA",
        simulator.api_url()
    )
}

/// A PUT as the tool sends it: bearer token, JSON body with the expiry.
pub async fn put_bypass(
    simulator: &Simulator,
    token: &str,
    environment: Uuid,
    user: Uuid,
    until: &str,
) -> reqwest::Response {
    client()
        .put(bypass_url(simulator, environment, user))
        .bearer_auth(token)
        .json(&json!({ "bypassMFAEnabledUntil": until }))
        .send()
        .await
        .expect("the simulator answers")
}

/// Reads an error answer, checking it has PingOne's shape, the status and the code.
pub async fn pingone_error(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
) -> ErrorBody {
    assert_eq!(response.status(), status);
    let body: ErrorBody = response
        .json()
        .await
        .expect("the error body has PingOne's shape (id, code, message, details)");
    assert_eq!(body.code, code);
    assert!(!body.id.is_empty() && !body.message.is_empty(), "{body:?}");
    body
}

pub fn detail_codes(body: &ErrorBody) -> Vec<&str> {
    body.details
        .iter()
        .map(|detail| detail.code.as_str())
        .collect()
}

pub async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("the answer is JSON")
}

/// Polls `condition` until it holds; fails the test if it does not within ten seconds.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
