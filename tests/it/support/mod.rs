//! What the specifications share: a simulator on port 0, an HTTP client that ignores proxy
//! settings, and readers for PingOne's answers.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use pingone_bypass::config::{RunConfig, Target};
use pingone_bypass::gateway::auth::{ClientCredentials, Credentials};
use pingone_bypass::gateway::client::RetryPolicy;
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
    assert!(
        body.id.as_deref().is_some_and(|id| !id.is_empty()) && !body.message.is_empty(),
        "{body:?}"
    );
    body
}

pub fn detail_codes(body: &ErrorBody) -> Vec<&str> {
    body.details
        .iter()
        .map(|detail| detail.code.as_str())
        .collect()
}

/// A dry run of `input` with `--until 8h` (overwriting its results) and `extra`, as the
/// workbook specifications check a file.
pub async fn dry_run_until_8h(input: &std::path::Path, extra: &[&str]) -> std::process::Output {
    binary()
        .arg("run")
        .arg(input)
        .args([
            "--dry-run",
            "--progress",
            "never",
            "--until",
            "8h",
            "--overwrite",
        ])
        .args(extra)
        .env_clear()
        .kill_on_drop(true)
        .output()
        .await
        .expect("the binary runs")
}

/// What a finished command wrote on standard error, as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
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
    /// Where a dry run writes its plan.
    pub plan: std::path::PathBuf,
}

pub fn run_files(input_csv: &str) -> RunFiles {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let input = folder.path().join("users.csv");
    std::fs::write(&input, input_csv).expect("the input is written");
    let output = folder.path().join("users.results.csv");
    let plan = folder.path().join("users.plan.csv");
    RunFiles {
        _folder: folder,
        input,
        output,
        plan,
    }
}

/// An input of `count` rows, each for a new user in `environment`, all asking `until`.
pub fn users_csv(count: usize, environment: Uuid, until: &str) -> String {
    seeded_users_csv(count, environment, until, rand::random())
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

/// The binary under test: every specification runs it through `binary` or `binary_blocking`
/// (a shell that starts it under a limit names it so).
pub const BINARY: &str = env!("CARGO_BIN_EXE_pingone-bypass");

/// The binary under test, in an environment holding only `PATH` (a specification adds the
/// settings it means to give), with standard input closed, killed if the specification ends
/// first.
pub fn binary() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BINARY);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// `binary`, for a specification that waits on it without a runtime.
pub fn binary_blocking() -> std::process::Command {
    let mut command = std::process::Command::new(BINARY);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null());
    command
}

/// `pingone-bypass run INPUT` against `simulator` as its worker application, in an environment
/// holding nothing but `PATH` and the PingOne settings, without progress output, with `extra`
/// flags after (150 requests/s unless they set `--rate`).
pub fn run_command(
    simulator: &Simulator,
    input: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Command {
    pingone_command(simulator, "run", input, extra)
}

/// `pingone-bypass <subcommand> INPUT` as `run_command` makes `run`'s.
pub fn pingone_command(
    simulator: &Simulator,
    subcommand: &str,
    input: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Command {
    let mut command = binary();
    command
        .arg(subcommand)
        .arg(input)
        .args(["--progress", "never"])
        .args(extra);
    if !extra.contains(&"--rate") {
        command.args(["--rate", "150"]);
    }
    with_worker_app(&mut command, simulator);
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Clears the environment but for `PATH`, then points the PingOne settings at `simulator`.
pub fn with_worker_app(command: &mut tokio::process::Command, simulator: &Simulator) {
    command.env_clear().envs(worker_app_settings(simulator));
}

/// `PATH` and the PingOne settings of `simulator`'s worker application.
pub fn worker_app_settings(simulator: &Simulator) -> Vec<(&'static str, String)> {
    let secret = secrecy::ExposeSecret::expose_secret(&simulator.credentials().client_secret);
    vec![
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        (
            "PINGONE_CLIENT_ID",
            simulator.credentials().client_id.to_string(),
        ),
        ("PINGONE_CLIENT_SECRET", secret.to_owned()),
        (
            "PINGONE_ENVIRONMENT_ID",
            simulator.credentials().environment_id.to_string(),
        ),
        ("PINGONE_API_URL", simulator.api_url()),
        ("PINGONE_AUTH_URL", simulator.auth_url()),
    ]
}

pub fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().expect("the child is running").to_string();
    let sent = std::process::Command::new("kill")
        .args([name, &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

/// Waits until the simulator has seen `puts` PUTs; after 20 s the specification fails, saying
/// how many it saw, rather than go on to signal a run at a moment it did not choose.
pub async fn wait_for_puts(simulator: &Simulator, puts: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = simulator.stats().total_puts();
        if seen >= puts {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited 20 s for the simulator to see {puts} PUTs; it saw {seen}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The seed of a specification's random choice: `SPEC_SEED` when it is set (to replay a
/// failure), otherwise a fresh one. It is printed, so that a failing run's output (which
/// `cargo test` shows) names the seed that replays it.
pub fn spec_seed(what: &str) -> u64 {
    let seed = std::env::var("SPEC_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{what}: seed {seed} (SPEC_SEED={seed} replays it)");
    seed
}

/// A random number generator for a specification's choices, from `spec_seed`.
pub fn spec_rng(what: &str) -> rand::rngs::Xoshiro256PlusPlus {
    rand::SeedableRng::seed_from_u64(spec_seed(what))
}

/// `users_csv` with the users drawn from `seed`: the same rows, and so the same simulated
/// faults (drawn per user), on every run.
pub fn seeded_users_csv(count: usize, environment: Uuid, until: &str, seed: u64) -> String {
    use rand::RngExt;
    let mut rng: rand::rngs::Xoshiro256PlusPlus = rand::SeedableRng::seed_from_u64(seed);
    let mut csv = String::from("environmentId,userId,until\n");
    for _ in 0..count {
        let user = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
        csv.push_str(&format!("{environment},{user},{until}\n"));
    }
    csv
}

/// The users recorded as succeeded in a results file, reading only its complete lines.
pub fn succeeded_users(path: &std::path::Path) -> HashSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(complete.as_bytes());
    let header = reader.headers().expect("a header").clone();
    reader
        .records()
        .filter_map(Result::ok)
        .map(|record| {
            header
                .iter()
                .zip(record.iter())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<BTreeMap<_, _>>()
        })
        .filter(|row| row.get("status").map(String::as_str) == Some("succeeded"))
        .filter_map(|row| row.get("user_id").cloned())
        .collect()
}
