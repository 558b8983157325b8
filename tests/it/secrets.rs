//! No secret leaves the process: a PingOne that quotes the worker application's client secret
//! and the token it issued back in its error bodies (a grant's JSON error, a listing's proxy
//! page), both shorter than any "looks like a token" pattern catches, and neither is found in
//! anything `run` or `serve` writes: results, journal, summary, run record, text and JSON logs,
//! the page's HTML and its events.

use std::path::Path;

use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

use crate::serve::{confirm_and_follow, get_page, post_page, serve_with, sign_in};
use crate::support::{ENV_A, stderr};

/// Eight characters: far below the 32 a token-shaped pattern needs.
const SECRET: &str = "s3cr3t-Q";
const TOKEN: &str = "tok-Qz9";

/// A PingOne whose token endpoint issues `TOKEN`, whose grants are refused with a JSON error
/// quoting both, and whose user listing is answered by a proxy's page quoting both.
async fn quoting_pingone() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path_regex("/as/token$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    Mock::given(matchers::method("PUT"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "id": "e1",
            "code": "INVALID_DATA",
            "message": format!("The request could not be completed: client secret {SECRET} is not allowed here"),
            "details": [{
                "code": "INVALID_VALUE",
                "target": "bypassMFAEnabledUntil",
                "message": format!("token {TOKEN} and \"{SECRET}\" quoted back"),
            }],
        })))
        .mount(&server)
        .await;
    Mock::given(matchers::method("GET"))
        .and(matchers::path_regex("/users$"))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!(
            "<html><body>proxy refused Bearer {TOKEN} for client secret {SECRET}</body></html>"
        )))
        .mount(&server)
        .await;
    server
}

/// The worker application's settings pointed at `server`, with every log line there is.
fn settings(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("PINGONE_API_URL", server.uri()),
        ("PINGONE_TOKEN_URL", format!("{}/as/token", server.uri())),
        ("PINGONE_CLIENT_ID", "a-client".to_owned()),
        ("PINGONE_CLIENT_SECRET", SECRET.to_owned()),
        ("RUST_LOG", "debug".to_owned()),
    ]
}

/// One row by ID (its grant refused) and one by username (its lookup refused).
fn two_rows() -> String {
    format!(
        "environmentId,userId,username,until\n{ENV_A},{},,8h\n{ENV_A},,jdoe,8h\n",
        uuid::Uuid::new_v4()
    )
}

/// Every file under `folder`, as text, by its path.
fn every_file(folder: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut folders = vec![folder.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("the folder is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.is_file() {
                let bytes = std::fs::read(&path).expect("the file is readable");
                found.push((
                    path.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    found
}

fn assert_no_secret(place: &str, text: &str) {
    for secret in [SECRET, TOKEN] {
        assert!(!text.contains(secret), "{secret} is in {place}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_quoted_back_by_pingone_is_in_no_file_and_no_log_line_of_a_run() {
    let server = quoting_pingone().await;
    for format in ["text", "json"] {
        let folder = tempfile::tempdir().expect("a folder");
        let input = folder.path().join("users.csv");
        std::fs::write(&input, two_rows()).expect("the input is written");
        let output = crate::support::binary()
            .arg("run")
            .arg(&input)
            .args([
                "--progress",
                "never",
                "--retries",
                "0",
                "--log-format",
                format,
            ])
            .arg("--summary-json")
            .arg(folder.path().join("summary.json"))
            .envs(settings(&server))
            .output()
            .await
            .expect("the binary runs");
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let files = every_file(folder.path());
        let results = files
            .iter()
            .find(|(path, _)| path.ends_with("users.results.csv"))
            .map(|(_, text)| text.clone())
            .unwrap_or_default();
        assert!(
            results.contains("INVALID_DATA") && results.contains("[redacted]"),
            "the refusal is recorded with the secret taken out: {results}"
        );
        assert!(
            files.iter().any(|(path, _)| path.ends_with("summary.json")),
            "{files:?}"
        );
        for (path, text) in &files {
            assert_no_secret(path, text);
        }
        assert_no_secret("standard error", &stderr(&output));
        assert_no_secret("standard output", &String::from_utf8_lossy(&output.stdout));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_quoted_back_by_pingone_is_in_no_page_event_or_file_of_serve() {
    let server = quoting_pingone().await;
    let served = serve_with(settings(&server), &["--retries", "0"]).await;
    let cookie = sign_in(&served).await;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(two_rows().into_bytes()).file_name("outage.csv"),
        )
        .text("until", "8h");
    let plan = post_page(&served, &cookie, "/plan", form).await;
    assert_no_secret("the plan page", &plan);
    let stream = confirm_and_follow(&served, &cookie, 1).await;
    assert!(stream.contains("INVALID_DATA"), "{stream}");
    assert_no_secret("the run's events", &stream);
    let page = get_page(&served, &cookie, "/runs/1").await;
    assert_no_secret("the run's page", &page);
    for (path, text) in every_file(served.workdir()) {
        assert_no_secret(&path, &text);
    }
    assert_no_secret("the server's log", &served.log());
}
