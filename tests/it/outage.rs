//! Outage-grade behaviour, through the binary and the library: a 503's `Retry-After` delays
//! only its row, an unreachable token endpoint stops the run within seconds, no redirect is
//! ever followed, secrets quoted back are redacted, standard input is read as it arrives, and
//! configuration mistakes (bounds, proxies, a dry run's settings) are caught before anything is
//! sent.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pingone_bypass::gateway::client::RetryPolicy;
use pingone_bypass::simulator::{ClientAuthMethod, SimulatorConfig};
use secrecy::ExposeSecret;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers};

use crate::support::{
    ENV_A, against_url, column, read_results, run_config, run_files, run_to_end, signal, start,
    stderr, users_csv, wait_for_puts, with_worker_app,
};

/// The binary with an environment holding only `PATH` and `environment`.
fn binary(args: &[&str], environment: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = crate::support::binary();
    command
        .args(args)
        .args(["--progress", "never"])
        .envs(environment.iter().copied());
    command
}

fn granted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "_links": {"self": {"href": "x"}, "user": {"href": "y"}},
        "bypassMFAEnabledUntil": "2031-01-01T00:00:00.000Z",
        "canBypassMFA": true
    }))
}

/// A worker application's settings pointing at `api_url` and `auth_url`, with made-up
/// credentials.
fn worker_app<'a>(
    api_url: &'a str,
    auth_url: &'a str,
    environment_id: &'a str,
) -> [(&'static str, &'a str); 5] {
    [
        ("PINGONE_API_URL", api_url),
        ("PINGONE_AUTH_URL", auth_url),
        ("PINGONE_CLIENT_ID", "a-client"),
        ("PINGONE_CLIENT_SECRET", "a-secret"),
        ("PINGONE_ENVIRONMENT_ID", environment_id),
    ]
}

/// A port on loopback held by a socket that is bound but never listens: connections to it are
/// refused, and nothing else can take the port while the specification holds it.
struct RefusingPort(socket2::Socket);

impl RefusingPort {
    fn port(&self) -> u16 {
        self.0
            .local_addr()
            .ok()
            .and_then(|address| address.as_socket())
            .map_or(0, |address| address.port())
    }
}

fn refusing_port() -> RefusingPort {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    let loopback: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    socket.bind(&loopback.into()).expect("a loopback port");
    RefusingPort(socket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_retry_after_delays_only_its_own_row() {
    let server = MockServer::start().await;
    let slow_user = Uuid::new_v4();
    let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let recorded = arrivals.clone();
    Mock::given(matchers::method("PUT"))
        .respond_with(move |request: &Request| {
            let path = request.url.path().to_owned();
            let mut arrivals = recorded.lock().expect("not poisoned");
            let first_for_slow_user = path.contains(&slow_user.to_string())
                && !arrivals.iter().any(|(seen, _)| *seen == path);
            arrivals.push((path, Instant::now()));
            if first_for_slow_user {
                ResponseTemplate::new(503).insert_header("Retry-After", "2")
            } else {
                granted()
            }
        })
        .mount(&server)
        .await;
    let mut csv = format!("environmentId,userId,until\n{ENV_A},{slow_user},8h\n");
    for _ in 0..30 {
        csv.push_str(&format!("{ENV_A},{},8h\n", Uuid::new_v4()));
    }
    let files = run_files(&csv);
    let mut config = run_config(&files, against_url(&format!("{}/v1", server.uri())));
    config.concurrency = 2;
    config.retry = RetryPolicy {
        retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_secs(10),
    };
    let outcome = run_to_end(config).await;
    assert_eq!(outcome.summary.succeeded, 31);

    let arrivals = arrivals.lock().expect("not poisoned").clone();
    let slow: Vec<Instant> = arrivals
        .iter()
        .filter(|(path, _)| path.contains(&slow_user.to_string()))
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(slow.len(), 2, "the 503 and the retry");
    assert!(
        slow[1] - slow[0] >= Duration::from_secs(2),
        "the row waited at least its Retry-After"
    );
    let last_other = arrivals
        .iter()
        .filter(|(path, _)| !path.contains(&slow_user.to_string()))
        .map(|(_, at)| *at)
        .max()
        .expect("other rows arrived");
    assert!(
        last_other < slow[1],
        "every other row was sent while the 503's row waited, none held back by it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_refusing_connections_stops_the_run_with_exit_3() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(2000, ENV_A, "8h"));
    let refusing = refusing_port();
    let auth_url = format!("http://127.0.0.1:{}", refusing.port());
    let environment_id = simulator.credentials().environment_id.to_string();
    let api_url = simulator.api_url();
    let output = binary(
        &["run", &files.input.display().to_string(), "--rate", "1000"],
        &worker_app(&api_url, &auth_url, &environment_id),
    )
    .output()
    .await
    .expect("the binary runs");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(
        message.contains(&format!("{auth_url}/{environment_id}/as/token"))
            && message.contains("connection refused")
            && message.contains("3 attempts"),
        "{message}"
    );
    let rows = read_results(&files.output);
    assert_eq!(rows.len(), 2000);
    assert!(
        rows.iter().all(|row| row["status"] == "not_attempted"
            && row["error_code"] == "TOKEN_ENDPOINT_UNREACHABLE")
    );
    assert_eq!(simulator.stats().total_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_never_answers_costs_three_timeouts_then_exit_3() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback listener");
    let auth_url = format!("http://{}", listener.local_addr().expect("bound"));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let held = accepted.clone();
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            held.lock().expect("not poisoned").push(connection);
        }
    });
    let files = run_files(&users_csv(50, ENV_A, "8h"));
    let environment_id = Uuid::new_v4().to_string();
    let refusing = refusing_port();
    let unused_api = format!("http://127.0.0.1:{}/v1", refusing.port());
    let output = binary(
        &["run", &files.input.display().to_string(), "--timeout", "1s"],
        &worker_app(&unused_api, &auth_url, &environment_id),
    )
    .output()
    .await
    .expect("the binary runs");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains("no answer within 1s"), "{message}");
    assert_eq!(
        accepted.lock().expect("not poisoned").len(),
        3,
        "one token request at a time, three attempts for the whole run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_put_is_a_failed_row_and_the_other_host_receives_nothing() {
    let elsewhere = MockServer::start().await;
    Mock::given(matchers::any())
        .respond_with(granted())
        .mount(&elsewhere)
        .await;
    let server = MockServer::start().await;
    let port = elsewhere.address().port();
    Mock::given(matchers::method("PUT"))
        .respond_with(move |request: &Request| {
            ResponseTemplate::new(307).insert_header(
                "Location",
                format!("http://localhost:{port}{}", request.url.path()),
            )
        })
        .mount(&server)
        .await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    let outcome = run_to_end(run_config(
        &files,
        against_url(&format!("{}/v1", server.uri())),
    ))
    .await;
    assert_eq!(outcome.summary.failed, 3);
    let rows = read_results(&files.output);
    assert_eq!(
        column(&rows, "error_code"),
        ["REDIRECTED", "REDIRECTED", "REDIRECTED"]
    );
    assert!(
        rows[0]["error_message"].contains("host localhost"),
        "{rows:?}"
    );
    assert_eq!(column(&rows, "attempts"), ["1", "1", "1"]);
    let received = elsewhere.received_requests().await.unwrap_or_default();
    assert!(
        received.is_empty(),
        "the redirect was followed: {received:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_token_request_stops_the_run_and_the_secret_goes_nowhere() {
    let elsewhere = MockServer::start().await;
    let server = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .respond_with(ResponseTemplate::new(307).insert_header(
            "Location",
            format!("http://localhost:{}/as/token", elsewhere.address().port()),
        ))
        .mount(&server)
        .await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    let environment_id = Uuid::new_v4().to_string();
    let refusing = refusing_port();
    let unused_api = format!("http://127.0.0.1:{}/v1", refusing.port());
    let output = binary(
        &["run", &files.input.display().to_string()],
        &worker_app(&unused_api, &server.uri(), &environment_id),
    )
    .output()
    .await
    .expect("the binary runs");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(
        message.contains("redirecting to host localhost"),
        "{message}"
    );
    let received = elsewhere.received_requests().await.unwrap_or_default();
    assert!(received.is_empty(), "the secret followed the redirect");
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        1,
        "no form fallback after a redirect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_costs_one_put_per_row() {
    let server = MockServer::start().await;
    Mock::given(matchers::method("PUT"))
        .respond_with(move |request: &Request| {
            ResponseTemplate::new(301).insert_header("Location", request.url.as_str())
        })
        .mount(&server)
        .await;
    let files = run_files(&users_csv(4, ENV_A, "8h"));
    let outcome = run_to_end(run_config(
        &files,
        against_url(&format!("{}/v1", server.uri())),
    ))
    .await;
    assert_eq!(outcome.summary.failed, 4);
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_reported_as_such_not_as_an_unsupported_method() {
    let simulator = start(SimulatorConfig {
        client_auth: ClientAuthMethod::Basic,
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    let mut command = crate::support::binary();
    command
        .arg("run")
        .arg(&files.input)
        .args(["--progress", "never"]);
    with_worker_app(&mut command, &simulator);
    command.env("PINGONE_CLIENT_SECRET", "not-the-secret");
    let output = command.output().await.expect("the binary runs");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(
        message.contains("Invalid client credentials") && !message.contains("Unsupported"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_token_quoted_back_in_an_error_body_is_redacted() {
    let server = MockServer::start().await;
    Mock::given(matchers::method("PUT"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "id": "1", "code": "INVALID_DATA", "message": "token tk-9 is not welcome here"
        })))
        .mount(&server)
        .await;
    let files = run_files(&users_csv(1, ENV_A, "8h"));
    let api_url = format!("{}/v1", server.uri());
    let output = binary(
        &["run", &files.input.display().to_string()],
        &[
            ("PINGONE_API_URL", &api_url),
            ("PINGONE_API_ACCESS_TOKEN", "tk-9"),
        ],
    )
    .output()
    .await
    .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let results = std::fs::read_to_string(&files.output).expect("the results");
    assert!(results.contains("[redacted] is not welcome"), "{results}");
    assert!(!results.contains("tk-9") && !stderr(&output).contains("tk-9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_pasted_with_a_line_break_still_works() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(2, ENV_A, "8h"));
    let token = format!("{}\r\n", simulator.issue_token());
    let api_url = simulator.api_url();
    let output = binary(
        &["run", &files.input.display().to_string()],
        &[
            ("PINGONE_API_URL", &api_url),
            ("PINGONE_API_ACCESS_TOKEN", &token),
        ],
    )
    .output()
    .await
    .expect("the binary runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_on_standard_input_are_sent_as_they_arrive_and_ctrl_c_ends_the_run_promptly() {
    let simulator = start(SimulatorConfig::default()).await;
    let folder = tempfile::tempdir().expect("a folder");
    let output = folder.path().join("piped.results.csv");
    let mut command = crate::support::binary();
    command.args([
        "run",
        "-",
        "-o",
        &output.display().to_string(),
        "--progress",
        "never",
    ]);
    with_worker_app(&mut command, &simulator);
    let mut child = command
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().expect("a pipe");
    input
        .write_all(
            format!(
                "environmentId,userId,until\n{ENV_A},{},8h\n",
                Uuid::new_v4()
            )
            .as_bytes(),
        )
        .await
        .expect("written");
    input.flush().await.expect("flushed");
    wait_for_puts(&simulator, 1).await;
    assert_eq!(
        simulator.stats().total_puts(),
        1,
        "the first row was sent while standard input stayed open"
    );
    signal(&child, "-INT");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("Ctrl-C ends a run reading an open standard input")
        .expect("the run ends");
    assert_eq!(status.code(), Some(130));
    drop(input);
    assert_eq!(column(&read_results(&output), "status"), ["succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_and_concurrency_out_of_bounds_are_refused_with_their_bounds() {
    let files = run_files(&users_csv(1, ENV_A, "8h"));
    let input = files.input.display().to_string();
    for (flag, value, says) in [
        ("--rate", "1e-20", "from 0.01 to 100000"),
        ("--rate", "1e9", "from 0.01 to 100000"),
        ("--concurrency", "65535", "1..=1024"),
    ] {
        let output = binary(&["run", &input, "--dry-run", flag, value], &[])
            .output()
            .await
            .expect("the binary runs");
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        assert!(stderr(&output).contains(says), "{}", stderr(&output));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_checks_the_configuration_and_names_the_credentials_never_their_values() {
    let files = run_files(&users_csv(1, ENV_A, "8h"));
    let input = files.input.display().to_string();
    let environment_id = Uuid::new_v4().to_string();
    let bad_url = binary(
        &[
            "run",
            &input,
            "--dry-run",
            "--api-url",
            "http://pingone.example.com/v1",
        ],
        &[],
    )
    .output()
    .await
    .expect("the binary runs");
    assert_eq!(bad_url.status.code(), Some(2), "{}", stderr(&bad_url));
    let incomplete = binary(
        &["run", &input, "--dry-run"],
        &[("PINGONE_CLIENT_ID", "a-client")],
    )
    .output()
    .await
    .expect("the binary runs");
    assert_eq!(incomplete.status.code(), Some(2));
    assert!(stderr(&incomplete).contains("PINGONE_CLIENT_SECRET"));
    let complete = binary(
        &["run", &input, "--dry-run", "-o", "-"],
        &[
            ("PINGONE_CLIENT_ID", "a-client"),
            ("PINGONE_CLIENT_SECRET", "hush-hush-value"),
            ("PINGONE_ENVIRONMENT_ID", &environment_id),
            ("PINGONE_REGION_CODE", "EU"),
        ],
    )
    .output()
    .await
    .expect("the binary runs");
    let message = stderr(&complete);
    assert_eq!(complete.status.code(), Some(0), "{message}");
    assert!(
        message.contains("https://api.pingone.eu/v1")
            && message.contains("PINGONE_CLIENT_ID and PINGONE_CLIENT_SECRET"),
        "{message}"
    );
    assert!(!message.contains("hush-hush-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_proxy_setting_is_exit_2_and_a_dead_proxy_is_named_as_the_cause() {
    let files = run_files(&users_csv(1, ENV_A, "8h"));
    let input = files.input.display().to_string();
    let unusable = binary(
        &["run", &input, "--dry-run"],
        &[("HTTPS_PROXY", "ftp://proxy.example.com")],
    )
    .output()
    .await
    .expect("the binary runs");
    assert_eq!(unusable.status.code(), Some(2));
    assert!(
        stderr(&unusable).contains("HTTPS_PROXY"),
        "{}",
        stderr(&unusable)
    );

    let refusing = refusing_port();
    let proxy = format!("http://127.0.0.1:{}", refusing.port());
    let dead = binary(
        &[
            "run",
            &input,
            "--retries",
            "0",
            "--api-url",
            "https://api.pingone.invalid/v1",
        ],
        &[
            ("HTTPS_PROXY", &proxy),
            ("PINGONE_API_ACCESS_TOKEN", "a-token"),
        ],
    )
    .output()
    .await
    .expect("the binary runs");
    assert_eq!(dead.status.code(), Some(1), "{}", stderr(&dead));
    let rows = read_results(&files.output);
    assert!(
        rows[0]["error_message"].contains("proxy 127.0.0.1"),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_app_secret_is_never_printed_when_the_token_endpoint_fails() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(1, ENV_A, "8h"));
    let mut command = crate::support::binary();
    command
        .arg("run")
        .arg(&files.input)
        .args(["--progress", "never"]);
    with_worker_app(&mut command, &simulator);
    let refusing = refusing_port();
    command.env(
        "PINGONE_AUTH_URL",
        format!("http://127.0.0.1:{}", refusing.port()),
    );
    let output = command.output().await.expect("the binary runs");
    assert_eq!(output.status.code(), Some(3));
    let secret = simulator
        .credentials()
        .client_secret
        .expose_secret()
        .to_owned();
    assert!(!stderr(&output).contains(&secret));
}
