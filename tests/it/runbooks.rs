//! What unattended runbooks and auditors rely on, through the binary: the run record's
//! SHA-256s and `verify`, shell completions and the man page.

use std::process::Output;

use uuid::Uuid;

use crate::support::{ENV_A, run_files};

async fn pingone_bypass(args: &[&str]) -> Output {
    crate::support::binary()
        .args(args)
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
    assert_eq!(record["kind"], "grant");
    assert!(
        String::from_utf8_lossy(&verified.stdout)
            .contains("matches its run record, of a grant, rehearsed on the built-in simulator"),
        "verify says what the record is: {}",
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

/// A dry run's plan verified must not read as a grant's results: verify names the record's kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_says_a_dry_runs_plan_is_a_plan() {
    let files = run_files(&format!(
        "envID,userID,until\n{ENV_A},{},8h\n",
        Uuid::new_v4()
    ));
    let (input, results) = (
        files.input.display().to_string(),
        files.output.display().to_string(),
    );
    let output = pingone_bypass(&[
        "run",
        &input,
        "--dry-run",
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
    let verified = pingone_bypass(&["verify", &results]).await;
    assert_eq!(verified.status.code(), Some(0));
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        said.contains("matches its run record, of a dry run's plan (nothing was sent)"),
        "{said}"
    );
}

/// The top page names `pingone-bypass-run(1)` and the others in SEE ALSO; each of them must
/// exist once installed, and the hidden `request` command gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn man_out_writes_a_page_for_every_command_the_top_page_names() {
    let folder = tempfile::tempdir().expect("a folder");
    let pages = folder.path().join("man1");
    let output = pingone_bypass(&["man", "--out", &pages.to_string_lossy()]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // roff writes a hyphen as `\-`.
    let roff_text = |page: String| page.replace("\\-", "-");
    let top =
        roff_text(std::fs::read_to_string(pages.join("pingone-bypass.1")).expect("the top page"));
    for command in [
        "run",
        "status",
        "simulate",
        "serve",
        "verify",
        "completions",
        "man",
    ] {
        let name = format!("pingone-bypass-{command}");
        assert!(top.contains(&name), "the top page names {name}");
        let page = std::fs::read_to_string(pages.join(format!("{name}.1")))
            .unwrap_or_else(|error| panic!("{name}.1 was written: {error}"));
        assert!(page.contains(".TH"), "{name}.1 is a man page: {page:.200}");
    }
    assert!(
        !pages.join("pingone-bypass-request.1").exists(),
        "the hidden request command has no page"
    );
    let run =
        roff_text(std::fs::read_to_string(pages.join("pingone-bypass-run.1")).expect("run's page"));
    assert!(
        run.contains("--dry-run"),
        "run's page documents its flags: {run:.400}"
    );
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
    // Faults are drawn per user: fixed users make the 503s the same on every run.
    let files = run_files(&crate::support::seeded_users_csv(20, ENV_A, "8h", 7));
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

/// The settings the tool reads from the environment: an example may name only these.
const SETTINGS_READ: [&str; 8] = [
    "PINGONE_CLIENT_ID",
    "PINGONE_CLIENT_SECRET",
    "PINGONE_ENVIRONMENT_ID",
    "PINGONE_REGION_CODE",
    "PINGONE_API_URL",
    "PINGONE_AUTH_URL",
    "PINGONE_API_ACCESS_TOKEN",
    "PINGONE_BYPASS_LOG_FORMAT",
];

fn example(path: &str) -> String {
    std::fs::read_to_string(format!("{}/examples/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("the example is there")
}

/// Every `PINGONE_…` name in `text`.
fn settings_named(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("PINGONE_"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Splits a shell command line on spaces, keeping double-quoted words whole.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The binary with `args`, in `folder`, as the simulator's worker application.
async fn as_runbook(
    simulator: &pingone_bypass::simulator::Simulator,
    folder: &std::path::Path,
    args: &[String],
) -> Output {
    let mut command = crate::support::binary();
    command.args(args).current_dir(folder).kill_on_drop(true);
    crate::support::with_worker_app(&mut command, simulator);
    command.env("PINGONE_REGION_CODE", "NA");
    command.output().await.expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_actions_examples_command_line_runs_and_leaves_its_artifacts() {
    let workflow = example("github-actions/mfa-bypass.yml");
    for name in settings_named(&workflow) {
        assert!(
            SETTINGS_READ.contains(&name.as_str()),
            "{name} is not a setting the tool reads"
        );
    }
    let command = workflow
        .lines()
        .find_map(|line| line.trim().strip_prefix("run: pingone-bypass "))
        .expect("the workflow runs pingone-bypass");
    let simulator = crate::support::start(Default::default()).await;
    let folder = tempfile::tempdir().expect("a folder");
    std::fs::write(
        folder.path().join("outage.csv"),
        crate::support::users_csv(3, ENV_A, "8h"),
    )
    .expect("input");
    let args: Vec<String> = shell_words(command)
        .into_iter()
        .map(|word| match word.as_str() {
            "$INPUT_FILE" => "outage.csv".to_owned(),
            "$UNTIL" => "8h".to_owned(),
            _ => word,
        })
        .collect();
    let output = as_runbook(&simulator, folder.path(), &args).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let artifacts = workflow
        .split("path: |")
        .nth(1)
        .expect("the workflow uploads files");
    for artifact in artifacts
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        assert!(
            folder.path().join(artifact).exists(),
            "{artifact} is left for upload"
        );
    }
    assert_eq!(simulator.stats().total_puts(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_job_and_cronjob_command_lines_run_with_their_secret_and_configmap() {
    let secret = example("kubernetes/secret.yaml");
    for name in settings_named(&secret) {
        assert!(
            SETTINGS_READ.contains(&name.as_str()),
            "{name} is not a setting the tool reads"
        );
    }
    let configmap = example("kubernetes/configmap.yaml");
    let users: String = configmap
        .split("users.csv: |")
        .nth(1)
        .expect("the ConfigMap holds users.csv")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    let simulator = crate::support::start(Default::default()).await;
    let folder = tempfile::tempdir().expect("a folder");
    let (config, results) = (folder.path().join("config"), folder.path().join("results"));
    std::fs::create_dir_all(&config).expect("config");
    std::fs::create_dir_all(&results).expect("results");
    std::fs::write(config.join("users.csv"), users).expect("users");
    for (file, runs) in [("kubernetes/job.yaml", 1), ("kubernetes/cronjob.yaml", 2)] {
        let manifest = example(file);
        for name in settings_named(&manifest) {
            assert!(SETTINGS_READ.contains(&name.as_str()), "{file}: {name}");
        }
        let args_line = manifest
            .lines()
            .find_map(|line| line.trim().strip_prefix("args: "))
            .expect("the container has args");
        let args: Vec<String> = serde_json::from_str::<Vec<String>>(args_line)
            .expect("args is a JSON-style list")
            .into_iter()
            .map(|arg| {
                arg.replace("/config/", &format!("{}/", config.display()))
                    .replace("/results/", &format!("{}/", results.display()))
            })
            .collect();
        let _ = std::fs::remove_file(results.join("users.results.csv"));
        let _ = std::fs::remove_file(results.join("users.results.manifest.json"));
        let puts_before = simulator.stats().total_puts();
        for run in 0..runs {
            let output = as_runbook(&simulator, folder.path(), &args).await;
            assert_eq!(
                output.status.code(),
                Some(0),
                "{file} run {run}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert_eq!(
            simulator.stats().total_puts() - puts_before,
            2,
            "{file}: the two users are granted once, however often it runs"
        );
        let _ = std::fs::remove_file(results.join("summary.json"));
    }
}
