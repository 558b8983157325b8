//! `pingone-bypass run` through the binary: exit codes, standard streams, credentials that are
//! never printed, and `--simulate` on the shipped sample.

use std::process::{Output, Stdio};

use uuid::Uuid;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

use crate::support::{ENV_A, read_results, run_files};

/// Runs the binary in a clean environment (no PingOne settings inherited), off the runtime's
/// threads.
async fn pingone_bypass(args: Vec<String>, environment: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        crate::support::binary_blocking()
            .arg("run")
            .args(&args)
            .envs(environment)
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("the binary finishes")
}

/// Every place a run writes to: its standard streams, the results and the summary JSON.
fn everything_written(
    output: &Output,
    results: &std::path::Path,
    summary: &std::path::Path,
) -> [(&'static str, String); 4] {
    [
        ("stdout", text(&output.stdout)),
        ("stderr", text(&output.stderr)),
        (
            "results",
            std::fs::read_to_string(results).unwrap_or_default(),
        ),
        (
            "summary",
            std::fs::read_to_string(summary).unwrap_or_default(),
        ),
    ]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_sample_runs_against_the_built_in_simulator() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/outage.csv");
    let folder = tempfile::tempdir().expect("a temporary folder");
    let results = folder.path().join("outage.results.csv");
    let output = pingone_bypass(
        vec![
            sample.into(),
            "--simulate".into(),
            "--rate".into(),
            "400".into(),
            "-o".into(),
            results.display().to_string(),
        ],
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let rows = read_results(&results);
    assert_eq!(rows.len(), 300);
    assert!(rows.iter().all(|row| row["status"] == "succeeded"));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("300 rows: 300 succeeded"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn some_invalid_rows_exit_1_and_results_can_go_to_standard_output() {
    let files = run_files(&format!(
        "env,user,until\n{ENV_A},{},8h\n{ENV_A},nobody,8h\n",
        Uuid::new_v4()
    ));
    let output = pingone_bypass(
        vec![
            files.input.display().to_string(),
            "--simulate".into(),
            "-o".into(),
            "-".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    let mut lines = stdout.lines();
    assert!(
        lines
            .next()
            .is_some_and(|header| header.starts_with("row,environment_id,"))
    );
    assert_eq!(
        stdout.lines().count(),
        3,
        "stdout carries nothing but the results: {stdout}"
    );
    assert!(text(&output.stderr).contains("1 succeeded, 0 failed, 1 invalid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sends_nothing_even_with_credentials_and_exits_0_when_all_is_valid() {
    let server = MockServer::start().await;
    Mock::given(matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let files = run_files(&format!("env,user,until\n{ENV_A},{},8h\n", Uuid::new_v4()));
    let output = pingone_bypass(
        vec![
            files.input.display().to_string(),
            "--dry-run".into(),
            "--api-url".into(),
            format!("{}/v1", server.uri()),
        ],
        vec![("PINGONE_API_ACCESS_TOKEN", "a-token".into())],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(read_results(&files.plan)[0]["status"], "planned");
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_with_an_invalid_row_exits_1() {
    let files = run_files(&format!("env,user,until\n{ENV_A},nobody,8h\n"));
    let output = pingone_bypass(
        vec![files.input.display().to_string(), "--dry-run".into()],
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_token_never_appears_in_any_output() {
    let token = "sekrit-token-3b1f0a9e";
    let server = MockServer::start().await;
    Mock::given(matchers::method("PUT"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "id": "e", "code": "ACCESS_FAILED", "message": "The access token is invalid.",
        })))
        .mount(&server)
        .await;
    let files = run_files(&format!("env,user,until\n{ENV_A},{},8h\n", Uuid::new_v4()));
    let summary = files.output.with_extension("json");
    let output = pingone_bypass(
        vec![
            files.input.display().to_string(),
            "--api-url".into(),
            format!("{}/v1", server.uri()),
            "--summary-json".into(),
            summary.display().to_string(),
            "--progress".into(),
            "always".into(),
        ],
        vec![
            ("PINGONE_API_ACCESS_TOKEN", token.into()),
            ("RUST_LOG", "trace".into()),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(3));
    for (place, content) in everything_written(&output, &files.output, &summary) {
        assert!(!content.contains(token), "the token appeared in {place}");
    }
    let help = crate::support::binary_blocking()
        .args(["run", "--help"])
        .env("PINGONE_API_ACCESS_TOKEN", token)
        .output()
        .expect("help runs");
    assert!(!text(&help.stdout).contains(token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_exit_2_before_anything_is_sent_naming_what_to_fix() {
    let files = run_files(&format!("env,user,until\n{ENV_A},{},8h\n", Uuid::new_v4()));
    let input = files.input.display().to_string();
    let token = vec![("PINGONE_API_ACCESS_TOKEN", "a-token".to_owned())];
    for (args, environment, names) in [
        (vec![input.clone()], vec![], "PINGONE_API_ACCESS_TOKEN"),
        (
            vec!["/nonexistent/users.csv".to_owned(), "--simulate".into()],
            vec![],
            "/nonexistent/users.csv",
        ),
        (
            vec![
                input.clone(),
                "--simulate".into(),
                "--env".into(),
                "prod".into(),
            ],
            vec![],
            "--env",
        ),
        (
            vec![
                input.clone(),
                "--simulate".into(),
                "--until".into(),
                "someday".into(),
            ],
            vec![],
            "--until",
        ),
        (
            vec![
                input.clone(),
                "--simulate".into(),
                "--until".into(),
                "30d".into(),
            ],
            vec![],
            "--max-window",
        ),
        (
            vec![
                input.clone(),
                "--api-url".into(),
                "http://api.example.com/v1".into(),
            ],
            token.clone(),
            "https",
        ),
        (
            vec![
                input.clone(),
                "--token-file".into(),
                "/nonexistent/token".into(),
            ],
            vec![],
            "--token-file",
        ),
        (
            vec![
                input.clone(),
                "--simulate".into(),
                "-o".into(),
                input.clone(),
            ],
            vec![],
            "would overwrite the input",
        ),
        (
            vec![
                input.clone(),
                "--simulate".into(),
                "--rate".into(),
                "0".into(),
            ],
            vec![],
            "--rate",
        ),
        (
            vec![input.clone(), "--region".into(), "XX".into()],
            token.clone(),
            "--region",
        ),
    ] {
        let output = pingone_bypass(args.clone(), environment).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(names),
            "{args:?} should name {names}: {stderr}"
        );
        assert!(!files.output.exists(), "{args:?} wrote results");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_input_is_read_when_the_input_is_a_dash() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let results = folder.path().join("out.csv");
    let input = format!("env,user,until\n{ENV_A},{},8h\n", Uuid::new_v4());
    let results_arg = results.display().to_string();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = crate::support::binary_blocking()
            .args(["run", "-", "--simulate", "-o", &results_arg])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .expect("the input is written");
        }
        child.wait_with_output().expect("the binary finishes")
    })
    .await
    .expect("the binary finishes");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(read_results(&results)[0]["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_never_keeps_its_tenant_in_the_current_folder_unasked() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let here = tempfile::tempdir().expect("a current folder");
    let input = folder.path().join("users.csv");
    std::fs::write(
        &input,
        format!("env,user,until\n{ENV_A},{},8h\n", Uuid::new_v4()),
    )
    .expect("the input is written");
    let beside_the_input = crate::support::binary()
        .current_dir(here.path())
        .args(["run", "--simulate", "--progress", "never", "-o", "-"])
        .arg(&input)
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(
        beside_the_input.status.code(),
        Some(0),
        "{}",
        text(&beside_the_input.stderr)
    );
    assert!(
        folder
            .path()
            .join("pingone-bypass.rehearsal-tenant.json")
            .exists(),
        "with the results on standard output, the tenant is kept beside the input"
    );
    assert!(
        text(&beside_the_input.stderr).contains("pingone-bypass.rehearsal-tenant.json"),
        "and where it is kept is said"
    );

    let from_stdin = crate::support::binary()
        .current_dir(here.path())
        .args(["run", "-", "--simulate", "--progress", "never", "-o", "-"])
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(
        from_stdin.status.code(),
        Some(2),
        "{}",
        text(&from_stdin.stderr)
    );
    assert!(
        text(&from_stdin.stderr).contains("--simulate-state"),
        "{}",
        text(&from_stdin.stderr)
    );
    assert_eq!(
        std::fs::read_dir(here.path())
            .expect("the folder lists")
            .count(),
        0,
        "nothing is written into the current folder"
    );
}

/// The settings a runbook would export to reach `simulator` as its worker application.
fn worker_app_settings(
    simulator: &pingone_bypass::simulator::Simulator,
    secret: &str,
) -> Vec<(&'static str, String)> {
    vec![
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_pingone_settings_are_enough_and_no_secret_or_token_is_ever_printed() {
    use secrecy::ExposeSecret;
    let simulator = crate::support::start(pingone_bypass::simulator::SimulatorConfig {
        token_ttl: std::time::Duration::from_secs(1),
        ..pingone_bypass::simulator::SimulatorConfig::default()
    })
    .await;
    let secret = simulator
        .credentials()
        .client_secret
        .expose_secret()
        .to_owned();
    let files = run_files(&crate::support::users_csv(40, ENV_A, "8h"));
    let summary = files.output.with_extension("json");
    let mut environment = worker_app_settings(&simulator, &secret);
    environment.push(("RUST_LOG", "trace".to_owned()));
    let output = pingone_bypass(
        vec![
            files.input.display().to_string(),
            "--rate".into(),
            "20".into(),
            "--summary-json".into(),
            summary.display().to_string(),
            "--progress".into(),
            "always".into(),
        ],
        environment,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        simulator.stats().tokens_issued >= 2,
        "the run did not outlive a token"
    );
    let outputs = everything_written(&output, &files.output, &summary);
    let mut secrets = simulator.issued_tokens();
    secrets.push(secret);
    for (place, content) in &outputs {
        for secret in &secrets {
            assert!(
                !content.contains(secret.as_str()),
                "a secret or token appeared in {place}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_secret_exits_3_with_one_sentence_naming_what_to_check() {
    let simulator =
        crate::support::start(pingone_bypass::simulator::SimulatorConfig::default()).await;
    let files = run_files(&crate::support::users_csv(5, ENV_A, "8h"));
    let output = pingone_bypass(
        vec![files.input.display().to_string()],
        worker_app_settings(&simulator, "not-the-secret"),
    )
    .await;
    assert_eq!(output.status.code(), Some(3));
    let stderr = text(&output.stderr);
    let sentence = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_default();
    for setting in [
        "PINGONE_CLIENT_ID",
        "PINGONE_CLIENT_SECRET",
        "PINGONE_ENVIRONMENT_ID",
        "region",
    ] {
        assert!(sentence.contains(setting), "{sentence}");
    }
    assert!(!stderr.contains("not-the-secret"));
    let rows = read_results(&files.output);
    assert!(rows.iter().all(|row| row["status"] == "not_attempted"));
    assert_eq!(simulator.stats().total_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_or_malformed_credential_settings_exit_2_naming_the_setting() {
    let files = run_files(&format!("env,user,until\n{ENV_A},{},8h\n", Uuid::new_v4()));
    let input = files.input.display().to_string();
    let worker = Uuid::new_v4().to_string();
    for (environment, args, names) in [
        (
            vec![("PINGONE_CLIENT_ID", "id".to_owned())],
            vec![],
            "PINGONE_CLIENT_SECRET and PINGONE_ENVIRONMENT_ID",
        ),
        (
            vec![
                ("PINGONE_CLIENT_ID", "id".to_owned()),
                ("PINGONE_CLIENT_SECRET", "secret".to_owned()),
                ("PINGONE_ENVIRONMENT_ID", "production".to_owned()),
            ],
            vec![],
            "PINGONE_ENVIRONMENT_ID",
        ),
        (
            vec![
                ("PINGONE_CLIENT_ID", "id".to_owned()),
                ("PINGONE_CLIENT_SECRET", "secret".to_owned()),
                ("PINGONE_ENVIRONMENT_ID", worker.clone()),
            ],
            vec![
                "--auth-url".to_owned(),
                "http://auth.example.com".to_owned(),
            ],
            "--auth-url",
        ),
        (
            vec![
                ("PINGONE_API_ACCESS_TOKEN", "t".to_owned()),
                ("PINGONE_REGION_CODE", "XX".to_owned()),
            ],
            vec![],
            "--region",
        ),
    ] {
        let mut all_args = vec![input.clone()];
        all_args.extend(args);
        let output = pingone_bypass(all_args, environment).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(names), "should name {names}: {stderr}");
        assert!(!stderr.contains("secret\""), "{stderr}");
        assert!(!files.output.exists());
    }
}
