//! `pingone-bypass simulate` through the binary: the startup lines scripts read, credentials
//! that work, flag errors with exit code 2, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pingone_bypass::pingone::TokenResponse;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{ENV_A, EXPIRY, client};

struct RunningSimulator {
    child: Child,
    lines: Vec<(String, String)>,
}

impl RunningSimulator {
    fn value(&self, key: &str) -> &str {
        self.lines
            .iter()
            .find(|(name, _)| name == key)
            .map_or("", |(_, value)| value.as_str())
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        // Best effort: the process may already have exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `simulate` and reads its startup lines, five or with `--tls` six (failing after ten
/// seconds).
async fn spawn_simulate(args: &[&str]) -> RunningSimulator {
    let mut child = crate::support::binary_blocking()
        .arg("simulate")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let count = if args.contains(&"--tls") { 6 } else { 5 };
    let reading = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(count)
            .collect::<Result<Vec<_>, _>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .expect("the startup lines arrive within ten seconds")
        .expect("the reader finishes")
        .expect("stdout is readable");
    let lines = lines
        .iter()
        .map(|line| {
            let (key, value) = line.split_once(": ").expect("each line is `key: value`");
            (key.to_owned(), value.to_owned())
        })
        .collect();
    RunningSimulator { child, lines }
}

#[tokio::test]
async fn simulate_prints_the_documented_lines_whose_credentials_work() {
    let simulator = spawn_simulate(&[]).await;
    let keys: Vec<&str> = simulator
        .lines
        .iter()
        .map(|(key, _)| key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "api-url",
            "auth-url",
            "environment-id",
            "client-id",
            "client-secret"
        ]
    );

    let auth_url = simulator.value("auth-url");
    let port = auth_url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|port| port.parse::<u16>().ok())
        .expect("auth-url is http://127.0.0.1:PORT");
    assert_ne!(port, 0);
    assert_eq!(simulator.value("api-url"), format!("{auth_url}/v1"));
    assert!(Uuid::try_parse(simulator.value("environment-id")).is_ok());
    assert!(Uuid::try_parse(simulator.value("client-id")).is_ok());
    assert!(!simulator.value("client-secret").is_empty());

    let token: TokenResponse = client()
        .post(format!(
            "{auth_url}/{}/as/token",
            simulator.value("environment-id")
        ))
        .basic_auth(
            simulator.value("client-id"),
            Some(simulator.value("client-secret")),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("the token endpoint answers")
        .json()
        .await
        .expect("a token response");
    let put = client()
        .put(format!(
            "{}/environments/{ENV_A}/users/{}/bypassMFA",
            simulator.value("api-url"),
            Uuid::new_v4()
        ))
        .bearer_auth(&token.access_token)
        .json(&serde_json::json!({ "bypassMFAEnabledUntil": EXPIRY }))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(put.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_same_seed_prints_the_same_environment_and_credentials() {
    let first = spawn_simulate(&["--seed", "42"]).await;
    let second = spawn_simulate(&["--seed", "42"]).await;
    let other = spawn_simulate(&["--seed", "43"]).await;
    for key in ["environment-id", "client-id", "client-secret"] {
        assert_eq!(first.value(key), second.value(key), "{key}");
        assert_ne!(first.value(key), other.value(key), "{key}");
    }
}

#[tokio::test]
async fn sigterm_stops_the_simulator_cleanly() {
    let mut simulator = spawn_simulate(&[]).await;
    let pid = simulator.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = simulator.child.wait();
        (simulator, status)
    });
    let (_simulator, status) = tokio::time::timeout(Duration::from_secs(10), status)
        .await
        .expect("the simulator stops within ten seconds")
        .expect("the waiter finishes");
    assert_eq!(status.expect("the exit status is readable").code(), Some(0));
}

#[test]
fn a_bad_flag_exits_2_and_names_the_flag() {
    let output = crate::support::binary_blocking()
        .args(["simulate", "--chance-503", "2"])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--chance-503"), "{stderr}");
}

#[test]
fn an_unreadable_users_file_exits_2_and_names_the_file() {
    let output = crate::support::binary_blocking()
        .args(["simulate", "--users-file", "/nonexistent/users.csv"])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/users.csv"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_run_succeeds_with_the_simulators_ca_file_and_grants_nothing_without() {
    let simulator = spawn_simulate(&["--tls"]).await;
    assert!(simulator.value("api-url").starts_with("https://127.0.0.1:"));
    let ca_file = simulator.value("ca-file").to_owned();
    let pem = std::fs::read_to_string(&ca_file).expect("the CA file is there");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    let folder = tempfile::tempdir().expect("a folder");
    let input = folder.path().join("users.csv");
    let user = Uuid::new_v4();
    std::fs::write(&input, format!("envID,userID,until\n{ENV_A},{user},8h\n")).expect("input");
    let run = |extra: &[&str]| {
        let mut command = crate::support::binary();
        command
            .arg("run")
            .arg(&input)
            .args(["--progress", "never", "--overwrite"])
            .args(extra)
            .env("PINGONE_API_URL", simulator.value("api-url"))
            .env("PINGONE_AUTH_URL", simulator.value("auth-url"))
            .env("PINGONE_ENVIRONMENT_ID", simulator.value("environment-id"))
            .env("PINGONE_CLIENT_ID", simulator.value("client-id"))
            .env("PINGONE_CLIENT_SECRET", simulator.value("client-secret"));
        command
    };
    let untrusted = run(&[]).output().await.expect("runs");
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("certificate") && stderr.contains("--ca-file"),
        "{stderr}"
    );
    let results = folder.path().join("users.results.csv");
    assert!(
        std::fs::read_to_string(&results)
            .expect("results")
            .contains("not_attempted"),
        "nothing was granted"
    );

    let trusted = run(&["--ca-file", &ca_file]).output().await.expect("runs");
    assert_eq!(
        trusted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(
        std::fs::read_to_string(&results)
            .expect("results")
            .contains("succeeded")
    );

    let not_pem = folder.path().join("not.pem");
    std::fs::write(&not_pem, "hello").expect("written");
    let refused = run(&["--ca-file", &not_pem.display().to_string()])
        .output()
        .await
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot use --ca-file"));
}
