//! What the specifications share: a simulator on port 0, an HTTP client that ignores proxy
//! settings, and readers for PingOne's answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use pingone_bypass::auth::{ClientCredentials, Credentials};
use pingone_bypass::client::RetryPolicy;
use pingone_bypass::config::{RunConfig, Target};
use pingone_bypass::input::InputSource;
use pingone_bypass::outcome::RunOutcome;
use pingone_bypass::pingone::ErrorBody;
use pingone_bypass::record::writer::OutputTarget;
use pingone_bypass::simulator::{
    SAMPLE_PARTNER_ENVIRONMENT, SAMPLE_WORKFORCE_ENVIRONMENT, Simulator, SimulatorConfig,
};
use reqwest::StatusCode;
use secrecy::SecretString;
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

/// A temporary folder holding one run's input and results.
pub struct RunFiles {
    _folder: tempfile::TempDir,
    pub input: std::path::PathBuf,
    pub output: std::path::PathBuf,
}

pub fn run_files(input_csv: &str) -> RunFiles {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let input = folder.path().join("users.csv");
    std::fs::write(&input, input_csv).expect("the input is written");
    let output = folder.path().join("users.results.csv");
    RunFiles {
        _folder: folder,
        input,
        output,
    }
}

/// An input of `count` rows, each for a new user in `environment`, all asking `until`.
pub fn users_csv(count: usize, environment: Uuid, until: &str) -> String {
    let mut csv = String::from("environmentId,userId,until\n");
    for _ in 0..count {
        csv.push_str(&format!("{environment},{},{until}\n", Uuid::new_v4()));
    }
    csv
}

/// A run of `files` against `target`, fast and quiet: high rate, short backoff, no progress.
pub fn run_config(files: &RunFiles, target: Target) -> RunConfig {
    RunConfig {
        rate: 10_000.0,
        concurrency: 8,
        retry: RetryPolicy {
            retries: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
        },
        timeout: Duration::from_secs(5),
        ..RunConfig::new(
            InputSource::File(files.input.clone()),
            OutputTarget::File(files.output.clone()),
            target,
        )
    }
}

/// Sends to the simulator with a token it issued.
pub fn against(simulator: &Simulator) -> Target {
    Target::PingOne {
        api_url: simulator.api_url(),
        credentials: Credentials::Token(SecretString::from(simulator.issue_token())),
    }
}

/// Sends to the simulator as its worker application, with client credentials.
pub fn as_worker_app(simulator: &Simulator) -> Target {
    Target::PingOne {
        api_url: simulator.api_url(),
        credentials: Credentials::Client(ClientCredentials {
            token_url: simulator.token_url(),
            client_id: simulator.credentials().client_id.to_string(),
            client_secret: simulator.credentials().client_secret.clone(),
        }),
    }
}

/// Sends to any server (a wiremock one) with a fixed token.
pub fn against_url(api_url: &str) -> Target {
    Target::PingOne {
        api_url: api_url.to_owned(),
        credentials: Credentials::Token(SecretString::from(TEST_TOKEN.to_owned())),
    }
}

pub const TEST_TOKEN: &str = "test-token-5f2e9c";

/// The results file as rows of column name to cell.
pub fn read_results(path: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("the results file is CSV");
    let header = reader.headers().expect("a header row").clone();
    reader
        .records()
        .map(|record| {
            let record = record.expect("every results row is CSV");
            header
                .iter()
                .zip(record.iter())
                .map(|(name, cell)| (name.to_owned(), cell.to_owned()))
                .collect()
        })
        .collect()
}

pub fn column<'a>(rows: &'a [BTreeMap<String, String>], name: &str) -> Vec<&'a str> {
    rows.iter()
        .map(|row| row.get(name).map_or("", String::as_str))
        .collect()
}

pub async fn run_to_end(config: RunConfig) -> RunOutcome {
    pingone_bypass::run::run(config)
        .await
        .expect("the run finishes")
}
