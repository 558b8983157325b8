//! PingOne as Ping publishes it, through the binary: answers in every shape Ping's schemas
//! allow (no `_links`, no `canBypassMFA`, expiries without milliseconds or at an offset, error
//! bodies without `id`, bodies that are not JSON), 403 for an environment the tenant does not
//! have, 429s whose wait is only in the body, an outage ridden out, the API base and token URL
//! as admins copy them, and every request tied to its run and row by PingOne's correlation
//! headers.

use std::collections::BTreeMap;
use std::process::Output;

use pingone_bypass::simulator::{
    AnswerShape, DirectoryUser, Outage, Population, RateLimit, Simulator, SimulatorConfig,
};
use uuid::Uuid;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

use crate::support::{
    ENV_A, ENV_B, column, pingone_command, read_results, run_files, start, stderr, users_csv,
    worker_app_settings,
};

const SHAPES: [AnswerShape; 3] = [AnswerShape::Full, AnswerShape::Lean, AnswerShape::Varied];

async fn finished(mut command: tokio::process::Command) -> Output {
    command.output().await.expect("the binary runs")
}

/// `run` of `count` new users in `environment` against `simulator` with `extra` flags.
async fn grant_new_users(
    simulator: &Simulator,
    count: usize,
    environment: Uuid,
    extra: &[&str],
) -> (crate::support::RunFiles, Output) {
    let files = run_files(&users_csv(count, environment, "8h"));
    let output = finished(pingone_command(simulator, "run", &files.input, extra)).await;
    (files, output)
}

/// A tenant of `count` users in `ENV_A`, named `user<n>`, answering in `shape`.
fn directory(count: usize) -> Vec<DirectoryUser> {
    (0..count)
        .map(|n| DirectoryUser {
            environment_id: ENV_A,
            id: Uuid::new_v4(),
            username: format!("user{n}"),
            email: format!("user{n}@example.com"),
            ..DirectoryUser::default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_status_resume_and_names_read_every_answer_shape_alike() {
    for shape in SHAPES {
        let users = directory(6);
        let simulator = start(SimulatorConfig {
            answer_shape: shape,
            population: Population::Only(users.clone()),
            ..SimulatorConfig::default()
        })
        .await;
        // Three rows by ID, three by username.
        let mut csv = String::from("environmentId,userId,username,until\n");
        for (n, user) in users.iter().enumerate() {
            match n % 2 {
                0 => csv.push_str(&format!("{ENV_A},{},,8h\n", user.id)),
                _ => csv.push_str(&format!("{ENV_A},,{},8h\n", user.username)),
            }
        }
        let files = run_files(&csv);
        let output = finished(pingone_command(&simulator, "run", &files.input, &[])).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shape:?}: {}",
            stderr(&output)
        );
        let rows = read_results(&files.output);
        assert_eq!(column(&rows, "status"), ["succeeded"; 6], "{shape:?}");
        assert_eq!(column(&rows, "error_code"), [""; 6], "{shape:?}");
        assert_eq!(
            column(&rows, "bypass_mfa_enabled_until"),
            column(&rows, "requested_until"),
            "{shape:?}: written in PingOne's one format whatever the answer's"
        );
        let puts = simulator.stats().total_puts();
        assert_eq!(puts, 6);

        let status = finished(pingone_command(&simulator, "status", &files.input, &[])).await;
        assert_eq!(
            status.status.code(),
            Some(0),
            "{shape:?}: {}",
            stderr(&status)
        );
        let checked = read_results(&files.input.with_file_name("users.status.csv"));
        assert_eq!(
            column(&checked, "status"),
            ["active"; 6],
            "{shape:?}: an expiry to come is a bypass in force, canBypassMFA or not"
        );

        let resumed = finished(pingone_command(
            &simulator,
            "run",
            &files.input,
            &["--resume"],
        ))
        .await;
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "{shape:?}: {}",
            stderr(&resumed)
        );
        assert_eq!(
            simulator.stats().total_puts(),
            puts,
            "{shape:?}: --resume sends nothing granted again"
        );
    }
}

/// A server answering every PUT with `status` and `body`, and the binary's settings for it.
async fn answering(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(matchers::method("PUT"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body.to_owned()))
        .mount(&server)
        .await;
    server
}

fn against_mock(
    server: &MockServer,
    subcommand: &str,
    input: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Command {
    let mut command = crate::support::binary();
    command
        .arg(subcommand)
        .arg(input)
        .args(["--progress", "never", "--retries", "1"])
        .args(extra)
        .env("PINGONE_API_URL", format!("{}/v1", server.uri()))
        .env("PINGONE_API_ACCESS_TOKEN", "a-token-of-no-importance");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_whose_body_cannot_be_read_is_a_granted_bypass_that_resume_does_not_send_again() {
    let server = answering(200, "<html>Granted</html>").await;
    let files = run_files(&users_csv(2, ENV_A, "8h"));
    let output = finished(against_mock(&server, "run", &files.input, &[])).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "status"), ["succeeded"; 2]);
    assert_eq!(column(&rows, "error_code"), ["UNREADABLE_RESPONSE"; 2]);
    assert_eq!(column(&rows, "bypass_mfa_enabled_until"), [""; 2]);
    assert!(
        rows[0]["error_message"].contains("granted"),
        "{}",
        rows[0]["error_message"]
    );

    let resumed = finished(against_mock(&server, "run", &files.input, &["--resume"])).await;
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let sent = server.received_requests().await.unwrap_or_default().len();
    assert_eq!(sent, 2, "--resume treats an unreadable success as done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_keep_pingones_code_and_its_error_id_and_a_proxys_page_is_quoted_in_part() {
    let without_id = answering(
        404,
        r#"{"code":"NOT_FOUND","message":"The user was not found."}"#,
    )
    .await;
    let files = run_files(&users_csv(1, ENV_A, "8h"));
    finished(against_mock(&without_id, "run", &files.input, &[])).await;
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "error_code"), ["NOT_FOUND"]);
    assert_eq!(column(&rows, "error_message"), ["The user was not found."]);

    let with_id = answering(
        400,
        r#"{"id":"7d5e1c2a-0000-4000-8000-000000000001","code":"INVALID_DATA","message":"Bad.","extra":{"x":1}}"#,
    )
    .await;
    let files = run_files(&users_csv(1, ENV_A, "8h"));
    finished(against_mock(&with_id, "run", &files.input, &[])).await;
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "error_code"), ["INVALID_DATA"]);
    assert_eq!(
        column(&rows, "error_message"),
        ["Bad. [PingOne error id 7d5e1c2a-0000-4000-8000-000000000001]"]
    );

    let proxy_page = format!(
        "<html><body>Blocked by policy{}</body></html>",
        " padding".repeat(200)
    );
    let proxy = answering(400, &proxy_page).await;
    let files = run_files(&users_csv(1, ENV_A, "8h"));
    finished(against_mock(&proxy, "run", &files.input, &[])).await;
    let message = read_results(&files.output)[0]["error_message"].clone();
    assert!(
        message.starts_with("HTTP 400 Bad Request; the answer is not PingOne's"),
        "{message}"
    );
    assert!(message.contains("Blocked by policy"), "{message}");
    assert!(message.len() < 250, "the page is quoted in part: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_the_tenant_does_not_have_is_refused_with_what_a_403_may_mean() {
    for shape in [AnswerShape::Full, AnswerShape::Lean] {
        let simulator = start(SimulatorConfig {
            answer_shape: shape,
            environments: [ENV_A].into(),
            ..SimulatorConfig::default()
        })
        .await;
        let (files, output) = grant_new_users(&simulator, 5, ENV_B, &["--concurrency", "1"]).await;
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let rows = read_results(&files.output);
        let refused: Vec<_> = rows
            .iter()
            .filter(|row| row["http_status"] == "403")
            .collect();
        let stopped: Vec<_> = rows
            .iter()
            .filter(|row| row["status"] == "not_attempted")
            .collect();
        assert_eq!((refused.len(), stopped.len()), (3, 2), "{shape:?}");
        assert!(
            refused
                .iter()
                .all(|row| row["error_code"] == "ACCESS_FAILED")
        );
        for message in [&refused[0]["error_message"], &stopped[0]["error_message"]] {
            for meaning in ["does not exist", "another region", "Identity Data Admin"] {
                assert!(message.contains(meaning), "{shape:?}: {message}");
            }
        }
        assert_eq!(
            simulator.stats().total_puts(),
            3,
            "the environment stops after three"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_whose_wait_is_only_in_its_body_holds_every_row_back_for_it() {
    let simulator = start(SimulatorConfig {
        rate_limit: std::num::NonZeroU32::new(2).map(RateLimit::per_second),
        retry_after_in_body: true,
        ..SimulatorConfig::default()
    })
    .await;
    let (files, output) =
        grant_new_users(&simulator, 8, ENV_A, &["--rate", "100", "--retries", "3"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        column(&read_results(&files.output), "status"),
        ["succeeded"; 8]
    );
    let limited = simulator.stats().responses(429);
    assert!(
        (1..=8).contains(&limited),
        "the body's retryAfter paused the run instead of each row retrying on its own: {limited} 429s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_ridden_out_with_a_probe_a_second_and_no_row_spends_its_retries() {
    let simulator = start(SimulatorConfig {
        outage: Some(Outage {
            from: std::time::Duration::from_millis(500),
            lasting: std::time::Duration::from_secs(5),
        }),
        ..SimulatorConfig::default()
    })
    .await;
    let (files, output) =
        grant_new_users(&simulator, 60, ENV_A, &["--rate", "20", "--retries", "2"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        column(&read_results(&files.output), "status"),
        ["succeeded"; 60]
    );
    let failed_during_outage = simulator.stats().responses(503);
    assert!(
        // Half a second of sending at --rate 20 before PingOne counts as down, then a probe a
        // second for five seconds, and the requests that were in flight.
        failed_during_outage <= 10 + 5 + 5,
        "PingOne got probes, not a flood: {failed_during_outage} requests while it was down"
    );
    assert!(
        stderr(&output).contains("PingOne seems down"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_outage_patience_a_run_records_the_rest_as_not_attempted() {
    let simulator = start(SimulatorConfig {
        outage: Some(Outage {
            from: std::time::Duration::ZERO,
            lasting: std::time::Duration::from_secs(600),
        }),
        ..SimulatorConfig::default()
    })
    .await;
    let (files, output) = grant_new_users(
        &simulator,
        20,
        ENV_A,
        &["--outage-patience", "2s", "--concurrency", "2"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&files.output);
    let not_attempted: Vec<_> = rows
        .iter()
        .filter(|row| row["status"] == "not_attempted")
        .collect();
    assert!(!not_attempted.is_empty());
    assert!(
        not_attempted
            .iter()
            .all(|row| row["error_code"] == "PINGONE_DOWN")
    );
    assert!(rows.iter().all(|row| row["status"] != "succeeded"));
}

fn settings_with(
    simulator: &Simulator,
    changes: &[(&'static str, Option<String>)],
) -> Vec<(&'static str, String)> {
    let mut settings: BTreeMap<&'static str, String> =
        worker_app_settings(simulator).into_iter().collect();
    for (name, value) in changes {
        match value {
            Some(value) => settings.insert(name, value.clone()),
            None => settings.remove(name),
        };
    }
    settings.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_base_is_taken_with_or_without_v1_and_any_other_path_is_refused_before_sending() {
    let simulator = start(SimulatorConfig::default()).await;
    let host = simulator.api_url().trim_end_matches("/v1").to_owned();
    for (api_url, code) in [
        (host.clone(), Some(0)),
        (format!("{host}/"), Some(0)),
        (format!("{host}/v1/"), Some(0)),
        (format!("{host}/api"), Some(2)),
        (format!("{host}/v1/environments"), Some(2)),
    ] {
        let files = run_files(&users_csv(2, ENV_A, "8h"));
        let mut command = pingone_command(&simulator, "run", &files.input, &[]);
        command.env_clear().envs(settings_with(
            &simulator,
            &[("PINGONE_API_URL", Some(api_url.clone()))],
        ));
        let before = simulator.stats().total_puts();
        let output = finished(command).await;
        assert_eq!(output.status.code(), code, "{api_url}: {}", stderr(&output));
        if code == Some(2) {
            assert!(stderr(&output).contains("/v1"), "{}", stderr(&output));
            assert_eq!(
                simulator.stats().total_puts(),
                before,
                "{api_url}: nothing is sent"
            );
        } else {
            assert_eq!(
                column(&read_results(&files.output), "status"),
                ["succeeded"; 2]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_domains_token_url_is_used_whole_without_the_worker_environment() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(2, ENV_A, "8h"));
    let mut command = pingone_command(&simulator, "run", &files.input, &[]);
    command.env_clear().envs(settings_with(
        &simulator,
        &[
            ("PINGONE_TOKEN_URL", Some(simulator.token_url())),
            ("PINGONE_AUTH_URL", None),
            ("PINGONE_ENVIRONMENT_ID", None),
        ],
    ));
    let output = finished(command).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(simulator.stats().tokens_issued, 1);

    let mut command = pingone_command(&simulator, "run", &files.input, &["--overwrite"]);
    command.env_clear().envs(settings_with(
        &simulator,
        &[
            (
                "PINGONE_TOKEN_URL",
                Some("https://auth.example.com/token".to_owned()),
            ),
            ("PINGONE_AUTH_URL", None),
        ],
    ));
    let output = finished(command).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("/as/token"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_names_its_run_and_its_row_and_the_run_record_names_the_run() {
    let users = directory(4);
    let simulator = start(SimulatorConfig {
        population: Population::Only(users.clone()),
        faults: pingone_bypass::simulator::FaultChances {
            status_500: 0.3,
            ..Default::default()
        },
        seed: 7,
        ..SimulatorConfig::default()
    })
    .await;
    let mut csv = String::from("environmentId,userId,username,until\n");
    for user in &users[..2] {
        csv.push_str(&format!("{ENV_A},{},,8h\n", user.id));
    }
    for user in &users[2..] {
        csv.push_str(&format!("{ENV_A},,{},8h\n", user.username));
    }
    let files = run_files(&csv);
    let summary_path = files.input.with_file_name("summary.json");
    let output = finished(pingone_command(
        &simulator,
        "run",
        &files.input,
        &[
            "--summary-json",
            &summary_path.display().to_string(),
            "--log-format",
            "json",
            "--retries",
            "10",
        ],
    ))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap_or_default())
            .unwrap_or_default();
    let run_id = summary["run_id"].as_str().unwrap_or_default().to_owned();
    assert!(Uuid::try_parse(&run_id).is_ok(), "{summary}");
    let requests = summary["requests"].as_u64().unwrap_or_default();

    let stats = simulator.stats();
    assert_eq!(stats.malformed_correlation, 0);
    assert_eq!(
        stats.session_ids,
        BTreeMap::from([(run_id.clone(), requests)]),
        "every API request carries the run's ID and nothing else"
    );
    for row in 2..=5 {
        let transaction = format!("{run_id}-row-{row}");
        assert!(
            stats.transaction_ids.contains_key(&transaction),
            "{transaction}: {:?}",
            stats.transaction_ids
        );
    }
    let retried = stats
        .transaction_ids
        .values()
        .filter(|count| **count > 1)
        .count();
    assert!(
        retried > 0,
        "a row's retries share its transaction: {:?}",
        stats.transaction_ids
    );
    assert!(
        stats
            .transaction_ids
            .keys()
            .any(|id| id.starts_with(&format!("{run_id}-lookup-"))),
        "a lookup has a transaction of its own: {:?}",
        stats.transaction_ids
    );
    assert_eq!(stats.transaction_ids.values().sum::<u64>(), requests);

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(files.input.with_file_name("users.results.manifest.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert_eq!(manifest["run_id"], run_id.as_str());
    let lines = stderr(&output);
    let summary_line = lines
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["fields"]["results"].is_string())
        .unwrap_or_default();
    assert_eq!(summary_line["fields"]["run_id"], run_id.as_str(), "{lines}");

    let checked = finished(pingone_command(
        &simulator,
        "status",
        &files.input,
        &["--retries", "10"],
    ))
    .await;
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    let sessions = simulator.stats().session_ids;
    assert_eq!(sessions.len(), 2, "status names its own run: {sessions:?}");
    assert!(!sessions.contains_key(""), "{sessions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoints_retry_after_is_waited_for() {
    let server = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path_regex("/as/token$"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "4"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path_regex("/as/token$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "a-token", "token_type": "Bearer", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    Mock::given(matchers::method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "bypassMFAEnabledUntil": "2031-01-01T00:00:00Z"
        })))
        .mount(&server)
        .await;
    let files = run_files(&users_csv(1, ENV_A, "8h"));
    let mut command = crate::support::binary();
    command
        .arg("run")
        .arg(&files.input)
        .args(["--progress", "never"])
        .env("PINGONE_API_URL", server.uri())
        .env("PINGONE_TOKEN_URL", format!("{}/as/token", server.uri()))
        .env("PINGONE_CLIENT_ID", "a-client")
        .env("PINGONE_CLIENT_SECRET", "a-secret");
    let started = std::time::Instant::now();
    let output = finished(command).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "the second token request came {:?} after the first, before its Retry-After",
        started.elapsed()
    );
    assert_eq!(
        column(&read_results(&files.output), "status"),
        ["succeeded"]
    );
}
