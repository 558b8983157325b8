//! What unattended runbooks and auditors rely on, through the binary: the run record's
//! SHA-256s and `verify`, shell completions and the man page.

use std::process::Output;

use uuid::Uuid;

use crate::support::{ENV_A, run_files};

const BINARY: &str = env!("CARGO_BIN_EXE_pingone-bypass");

async fn pingone_bypass(args: &[&str]) -> Output {
    tokio::process::Command::new(BINARY)
        .args(args)
        .env_clear()
        .kill_on_drop(true)
        .output()
        .await
        .expect("the binary runs")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_record_holds_the_files_hashes_and_verify_catches_a_one_byte_edit() {
    let files = run_files(&format!(
        "envID,userID,until\n{ENV_A},{},8h\n{ENV_A},{},8h\n",
        Uuid::new_v4(),
        Uuid::new_v4()
    ));
    let input = files.input.display().to_string();
    let results = files.output.display().to_string();
    let output = pingone_bypass(&[
        "run",
        &input,
        "--simulate",
        "-o",
        &results,
        "--progress",
        "never",
    ])
    .await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let record_path = files.output.with_file_name("users.results.manifest.json");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).expect("the record"))
            .expect("JSON");
    let input_bytes = std::fs::read(&files.input).expect("input");
    let results_bytes = std::fs::read(&files.output).expect("results");
    assert_eq!(record["input_sha256"], sha256_hex(&input_bytes));
    assert_eq!(record["results_sha256"], sha256_hex(&results_bytes));
    assert_eq!(record["simulated"], true);
    assert_eq!(
        record["environments"],
        serde_json::json!([ENV_A.to_string()])
    );
    assert_eq!(record["summary"]["succeeded"], 2);
    assert_eq!(record["settings"]["rate"], 50.0);
    for key in [
        "tool_version",
        "api_url",
        "operator",
        "started_at",
        "finished_at",
    ] {
        assert!(!record[key].is_null(), "{key} is recorded");
    }

    let verified = pingone_bypass(&["verify", &results]).await;
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    let mut edited = results_bytes.clone();
    let last = edited.len() - 2;
    edited[last] ^= 0x01;
    std::fs::write(&files.output, &edited).expect("edited");
    let verified = pingone_bypass(&["verify", &results]).await;
    assert_eq!(verified.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verified.stdout).contains("ALTERED"));

    std::fs::remove_file(&record_path).expect("removed");
    let verified = pingone_bypass(&["verify", &results]).await;
    assert_eq!(verified.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_for_every_shell_and_the_man_page_are_printed() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef pingone-bypass"),
        ("fish", "complete -c pingone-bypass"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion"),
    ] {
        let output = pingone_bypass(&["completions", shell]).await;
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains(marker), "{shell}: {script:.200}");
        assert!(
            script.contains("--max-users"),
            "{shell} completes run's flags"
        );
    }
    let output = pingone_bypass(&["man"]).await;
    assert_eq!(output.status.code(), Some(0));
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(page.contains(".TH pingone-bypass 1"), "{page:.200}");
    assert!(page.contains("simulate"), "the man page lists the commands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_with_the_summary_and_no_secret() {
    let simulator = crate::support::start(pingone_bypass::simulator::SimulatorConfig {
        faults: pingone_bypass::simulator::FaultChances {
            status_503: 0.3,
            ..Default::default()
        },
        retry_after_503: std::time::Duration::ZERO,
        ..Default::default()
    })
    .await;
    let files = run_files(&crate::support::users_csv(20, ENV_A, "8h"));
    let output = crate::support::run_command(&simulator, &files.input, &["--log-format", "json"])
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let secret = secrecy::ExposeSecret::expose_secret(&simulator.credentials().client_secret);
    assert!(!stderr.contains(secret), "the secret stays out of the logs");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|line| line["level"].is_string() && line["fields"]["message"].is_string())
    );
    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["fields"]["succeeded"], 20);
    assert_eq!(summary["fields"]["exit_code"], 0);
    assert!(
        summary["fields"]["retries"]
            .as_u64()
            .is_some_and(|retries| retries > 0)
    );
}
