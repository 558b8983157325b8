//! The audit trail through the binary: no granted bypass is ever lost from the record, whether
//! the process is killed, the disk fills, the input is edited, two runs race for one results
//! file, or time passes between a run and its resume; and every status says what happened.

use std::collections::HashSet;
use std::process::Output;
use std::time::Duration;

use pingone_bypass::row::RESULT_COLUMNS;
use pingone_bypass::simulator::{FaultChances, Simulator, SimulatorConfig};
use rand::RngExt;
use uuid::Uuid;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

use crate::support::{
    ENV_A, RunFiles, column, read_results, run_command, run_files, signal, start, stderr,
    succeeded_users, users_csv, wait_for_puts, with_worker_app,
};

use crate::support::BINARY;

async fn finish(mut command: tokio::process::Command) -> Output {
    command.output().await.expect("the binary runs to its end")
}

/// The binary run on `files`, results at their output, to its end.
async fn run_on(simulator: &Simulator, files: &RunFiles, args: &[&str]) -> Output {
    let output = path(files);
    finish(run_command(
        simulator,
        &files.input,
        &[args, &["-o", &output]].concat(),
    ))
    .await
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", stderr(output));
}

fn path(files: &RunFiles) -> String {
    files.output.display().to_string()
}

fn granted_users(simulator: &Simulator) -> HashSet<String> {
    simulator
        .bypasses()
        .iter()
        .map(|bypass| bypass.user_id.to_string())
        .collect()
}

/// The users the binary listed on standard error as granted but recorded in no file.
fn listed_as_unrecorded(stderr: &str) -> HashSet<String> {
    stderr
        .lines()
        .filter(|line| line.starts_with("granted, not recorded:"))
        .filter_map(|line| line.split("user_id=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_under_retries_a_resume_resends_at_most_the_requests_in_flight() {
    const CONCURRENCY: usize = 16;
    let simulator = start(SimulatorConfig {
        latency: Duration::from_millis(10),
        faults: FaultChances {
            status_500: 0.03,
            status_502: 0.03,
            ..FaultChances::default()
        },
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(1500, ENV_A, "8h"));
    let fast = ["--rate", "3000", "--concurrency", "16"];
    let after_puts = crate::support::spec_rng("the moment of the kill").random_range(100..1200);
    let mut child = run_command(
        &simulator,
        &files.input,
        &[&["-o", &path(&files)], &fast[..]].concat(),
    )
    .spawn()
    .expect("the binary starts");
    wait_for_puts(&simulator, after_puts).await;
    signal(&child, "-KILL");
    child.wait().await.expect("the run ends");

    let granted_before = granted_users(&simulator);
    let before = simulator.stats();
    let resumed = run_on(&simulator, &files, &[&["--resume"], &fast[..]].concat()).await;
    assert_exit(&resumed, 0);
    let rows = read_results(&files.output);
    assert_eq!(rows.len(), 1500);
    assert!(rows.iter().all(|row| row["status"] == "succeeded"));
    let after = simulator.stats();
    let resent = granted_before
        .iter()
        .filter_map(|user| Uuid::parse_str(user).ok())
        .filter(|user| after.puts_for(ENV_A, *user) > before.puts_for(ENV_A, *user))
        .count();
    assert!(
        resent <= CONCURRENCY,
        "killed after {after_puts} PUTs: {resent} granted rows were sent again, more than the {CONCURRENCY} that can be in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_sending_at_the_first_failed_write_and_loses_no_granted_bypass() {
    const CONCURRENCY: usize = 16;
    let simulator = start(SimulatorConfig {
        latency: Duration::from_millis(5),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(3000, ENV_A, "8h"));
    let mut command = tokio::process::Command::new("bash");
    // A 16 KiB limit on every file the run writes, as a nearly full disk would leave.
    command
        .args(["-c", "ulimit -f 16; exec \"$0\" \"$@\"", BINARY, "run"])
        .arg(&files.input)
        .args(["-o", &path(&files), "--progress", "never"])
        .args(["--rate", "3000", "--concurrency", "16"]);
    with_worker_app(&mut command, &simulator);
    let output = finish(command).await;
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sending stopped at once"), "{stderr}");
    assert!(stderr.contains("journal"), "{stderr}");

    let journal = files.output.with_file_name("users.results.csv.journal");
    let mut in_files = succeeded_users(&files.output);
    in_files.extend(succeeded_users(&journal));
    let mut recorded = in_files.clone();
    recorded.extend(listed_as_unrecorded(&stderr));
    let granted = granted_users(&simulator);
    let lost: Vec<_> = granted.difference(&recorded).collect();
    assert!(
        lost.is_empty(),
        "granted bypasses recorded nowhere: {lost:?}"
    );
    // Granted but not yet written when the write failed: at most the one journal write that
    // failed (256 rows) and the requests then in flight.
    let puts = simulator.stats().total_puts();
    assert!(
        puts <= (in_files.len() + 256 + CONCURRENCY) as u64,
        "{puts} PUTs for {} rows on disk: sending went on after the write failed",
        in_files.len()
    );
    assert!(puts < 3000, "the run never noticed the full disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_keeps_earlier_successes_whose_rows_were_removed_from_the_input() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(5, ENV_A, "8h"));
    let first = run_on(&simulator, &files, &[]).await;
    assert_exit(&first, 0);
    let original = std::fs::read_to_string(&files.input).expect("the input");
    let lines: Vec<&str> = original.lines().collect();
    let removed: Vec<&str> = [lines[2], lines[4]]
        .iter()
        .filter_map(|line| line.split(',').nth(1))
        .collect();
    let kept = [lines[0], lines[1], lines[3], lines[5]].join("\n");
    std::fs::write(&files.input, format!("{kept}\n")).expect("the input is edited");

    let resumed = run_on(&simulator, &files, &["--resume"]).await;
    assert_exit(&resumed, 0);
    let rows = read_results(&files.output);
    assert_eq!(rows.len(), 5, "three input rows and the two removed ones");
    assert_eq!(column(&rows, "row"), ["2", "3", "4", "", ""]);
    assert_eq!(column(&rows[3..], "user_id"), removed);
    assert!(
        rows[3..]
            .iter()
            .all(|row| row["status"] == "succeeded" && row["error_code"] == "NOT_IN_INPUT")
    );
    assert_eq!(simulator.stats().total_puts(), 5, "nothing was sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_json_never_replaces_the_input_the_results_or_an_existing_file() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    let input = files.input.display().to_string();
    let existing = files.output.with_file_name("notes.json");
    std::fs::write(&existing, "keep me").expect("written");
    let linked = files.output.with_file_name("linked.csv");
    std::fs::hard_link(&files.input, &linked).expect("a hard link");
    for (summary, says) in [
        (input.clone(), "is the input"),
        (linked.display().to_string(), "is the input"),
        (path(&files), "is the results file"),
        (existing.display().to_string(), "already exists"),
    ] {
        let output = run_on(&simulator, &files, &["--summary-json", &summary]).await;
        assert_eq!(output.status.code(), Some(2), "--summary-json {summary}");
        assert!(stderr(&output).contains(says), "{}", stderr(&output));
    }
    assert_eq!(simulator.stats().total_puts(), 0, "nothing was sent");
    assert_eq!(
        std::fs::read_to_string(&existing).expect("still there"),
        "keep me"
    );
    let replaced = finish(run_command(
        &simulator,
        &files.input,
        &[
            "-o",
            &path(&files),
            "--summary-json",
            &existing.display().to_string(),
            "--overwrite",
        ],
    ))
    .await;
    assert_exit(&replaced, 0);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&existing).expect("the summary"))
            .expect("JSON");
    assert_eq!(summary["succeeded"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_hard_linked_to_the_input_is_refused() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    std::fs::hard_link(&files.input, &files.output).expect("a hard link");
    let output = run_on(&simulator, &files, &["--overwrite"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("would overwrite the input"),
        "{}",
        stderr(&output)
    );
    assert_eq!(simulator.stats().total_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_results_exits_2_at_once_and_sends_nothing() {
    let simulator = start(SimulatorConfig {
        latency: Duration::from_millis(100),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(40, ENV_A, "8h"));
    let first = run_command(
        &simulator,
        &files.input,
        &["-o", &path(&files), "--rate", "20"],
    )
    .spawn()
    .expect("the first run starts");
    let first_pid = first.id().expect("running");
    wait_for_puts(&simulator, 1).await;
    let second = run_on(&simulator, &files, &["--resume"]).await;
    assert_eq!(second.status.code(), Some(2));
    let message = stderr(&second);
    assert!(
        message.contains("in use by another run") && message.contains(&format!("pid {first_pid}")),
        "{message}"
    );
    let first = first.wait_with_output().await.expect("the first run ends");
    assert_exit(&first, 0);
    let stats = simulator.stats();
    assert_eq!(stats.total_puts(), 40, "the second run sent nothing");
    assert_eq!(read_results(&files.output).len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_columns_named_like_ours_are_renamed_in_the_results() {
    let simulator = start(SimulatorConfig::default()).await;
    let user = Uuid::new_v4();
    let files = run_files(&format!(
        "env,user,until,status,row,error_message\n{ENV_A},{user},8h,open,17,none\n"
    ));
    let output = run_on(&simulator, &files, &[]).await;
    assert_exit(&output, 0);
    let mut reader = csv::Reader::from_path(&files.output).expect("the results");
    let header: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    let mut expected: Vec<String> = RESULT_COLUMNS
        .iter()
        .map(|column| column.name().to_owned())
        .collect();
    expected.extend(["input_status", "input_row", "input_error_message"].map(str::to_owned));
    assert_eq!(header, expected);
    let rows = read_results(&files.output);
    assert_eq!(
        (
            rows[0]["status"].as_str(),
            rows[0]["input_status"].as_str(),
            rows[0]["input_row"].as_str()
        ),
        ("succeeded", "open", "17")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bypass_pingone_shortened_is_a_success_marked_and_counted() {
    let simulator = start(SimulatorConfig {
        max_bypass: Some(Duration::from_secs(3600)),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(4, ENV_A, "8h"));
    let summary = files.output.with_file_name("summary.json");
    let output = finish(run_command(
        &simulator,
        &files.input,
        &[
            "-o",
            &path(&files),
            "--summary-json",
            &summary.display().to_string(),
        ],
    ))
    .await;
    assert_exit(&output, 0);
    let rows = read_results(&files.output);
    assert!(
        rows.iter()
            .all(|row| row["status"] == "succeeded" && row["error_code"] == "SHORTENED"),
        "{rows:?}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("the summary"))
            .expect("JSON");
    assert_eq!(summary["shortened"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bypass_pingone_says_is_not_active_is_a_success_marked_not_active() {
    let server = MockServer::start().await;
    Mock::given(matchers::method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "_links": {"self": {"href": "x"}, "user": {"href": "y"}},
            "bypassMFAEnabledUntil": "2031-01-01T00:00:00.000Z",
            "canBypassMFA": false
        })))
        .mount(&server)
        .await;
    let files = run_files(&users_csv(2, ENV_A, "8h"));
    let output = crate::support::binary()
        .arg("run")
        .arg(&files.input)
        .args(["-o", &path(&files), "--progress", "never"])
        .env("PINGONE_API_URL", format!("{}/v1", server.uri()))
        .env("PINGONE_API_ACCESS_TOKEN", "a-ready-token")
        .output()
        .await
        .expect("the binary runs");
    assert_exit(&output, 0);
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "error_code"), ["NOT_ACTIVE", "NOT_ACTIVE"]);
    assert_eq!(column(&rows, "status"), ["succeeded", "succeeded"]);
    assert!(
        stderr(&output).contains("2 not active"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_grants_again_a_bypass_that_ends_within_the_margin_and_only_that() {
    let simulator = start(SimulatorConfig {
        max_bypass: Some(Duration::from_secs(10 * 60)),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    let first = run_on(&simulator, &files, &[]).await;
    assert_exit(&first, 0);
    assert_eq!(simulator.stats().total_puts(), 3);

    let within_a_minute = run_on(&simulator, &files, &["--resume", "--resume-margin", "1m"]).await;
    assert_eq!(within_a_minute.status.code(), Some(0));
    assert_eq!(
        simulator.stats().total_puts(),
        3,
        "ten minutes left is beyond a one-minute margin: nothing is sent"
    );

    let default_margin = run_on(&simulator, &files, &["--resume"]).await;
    assert_eq!(default_margin.status.code(), Some(0));
    assert_eq!(
        simulator.stats().total_puts(),
        6,
        "ten minutes left is within the default 15-minute margin: every row is sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_sends_again_a_row_whose_until_flag_changed_but_not_one_whose_relative_until_reads_the_same()
 {
    let simulator = start(SimulatorConfig::default()).await;
    let mut csv = String::from("environmentId,userId,until\n");
    for _ in 0..3 {
        csv.push_str(&format!("{ENV_A},{},\n", Uuid::new_v4()));
    }
    let files = run_files(&csv);
    let first = run_on(&simulator, &files, &["--until", "8h"]).await;
    assert_exit(&first, 0);
    let same = run_on(&simulator, &files, &["--until", "8h", "--resume"]).await;
    assert_exit(&same, 0);
    assert_eq!(
        simulator.stats().total_puts(),
        3,
        "--until 8h again is the same request"
    );
    let changed = run_on(&simulator, &files, &["--until", "9h", "--resume"]).await;
    assert_exit(&changed, 0);
    assert_eq!(
        simulator.stats().total_puts(),
        6,
        "--until 9h is another request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_writes_apart_and_a_real_resume_refuses_its_results() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    let rehearsal = crate::support::binary()
        .arg("run")
        .arg(&files.input)
        .args(["--simulate", "--progress", "never"])
        .output()
        .await
        .expect("the binary runs");
    assert_exit(&rehearsal, 0);
    let rehearsed = files.output.with_file_name("users.rehearsal.results.csv");
    assert_eq!(read_results(&rehearsed).len(), 3);
    assert!(
        !files.output.exists(),
        "a rehearsal took the real results' place"
    );
    assert!(
        !files
            .output
            .with_file_name("users.rehearsal.results.csv.journal")
            .exists(),
        "the journal of a complete run is removed"
    );
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            files
                .output
                .with_file_name("users.rehearsal.results.manifest.json"),
        )
        .expect("the run record"),
    )
    .expect("JSON");
    assert_eq!(record["simulated"], true);

    let refused = finish(run_command(
        &simulator,
        &files.input,
        &["--resume", "-o", &rehearsed.display().to_string()],
    ))
    .await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("the built-in simulator"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(simulator.stats().total_puts(), 0);
    let overridden = finish(run_command(
        &simulator,
        &files.input,
        &[
            "--resume",
            "--resume-any-api",
            "-o",
            &rehearsed.display().to_string(),
        ],
    ))
    .await;
    assert_exit(&overridden, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_reached_pingone_before_an_interrupt_is_failed_with_its_last_answer() {
    let simulator = start(SimulatorConfig {
        faults: FaultChances {
            status_500: 1.0,
            ..FaultChances::default()
        },
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(200, ENV_A, "8h"));
    let mut child = run_command(
        &simulator,
        &files.input,
        &["-o", &path(&files), "--concurrency", "2", "--retries", "10"],
    )
    .spawn()
    .expect("the binary starts");
    wait_for_puts(&simulator, 4).await;
    signal(&child, "-INT");
    let status = child.wait().await.expect("the run ends");
    assert_eq!(status.code(), Some(130));
    let rows = read_results(&files.output);
    let (sent, unsent): (Vec<_>, Vec<_>) = rows.iter().partition(|row| row["attempts"] != "0");
    assert!(!sent.is_empty() && !unsent.is_empty());
    for row in sent {
        assert_eq!(
            (row["status"].as_str(), row["http_status"].as_str()),
            ("failed", "500"),
            "{row:?}"
        );
        assert!(row["error_message"].contains("not retried"), "{row:?}");
        assert!(!row["error_message"].contains("not sent"), "{row:?}");
    }
    assert!(unsent.iter().all(|row| row["status"] == "not_attempted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_run_is_refused_while_a_killed_runs_journal_is_there() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    let journal = files.output.with_file_name("users.results.csv.journal");
    std::fs::write(&journal, "row\n").expect("a leftover journal");
    let output = run_on(&simulator, &files, &["--overwrite"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--resume"), "{}", stderr(&output));
    assert_eq!(simulator.stats().total_puts(), 0);
}
