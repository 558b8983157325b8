//! `verify --pingone` through the binary, against the simulator's audit log: a clean run is
//! confirmed row by row; an activity PingOne lost, or one the results miss, is named; late
//! activities are waited for; a missing permission, a window past 14 days and a run that
//! changed nothing are refused plainly; an end's results reconcile like a grant's; every page
//! is read within the audit API's limit; and a rehearsal checks its whole arc with --simulate.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use pingone_bypass::simulator::{AddedActivity, Population, RateLimit, Simulator, SimulatorConfig};
use uuid::Uuid;

use crate::support::{
    ENV_A, RunFiles, binary, pingone_command, read_results, run_command, run_files, start, stderr,
    users_csv, with_worker_app,
};

/// `verify RESULTS --pingone` against `simulator` as its worker application, with `extra`.
async fn verify(simulator: &Simulator, results: &Path, extra: &[&str]) -> Output {
    let mut command = binary();
    command
        .arg("verify")
        .arg(results)
        .arg("--pingone")
        .args(extra);
    with_worker_app(&mut command, simulator);
    command.output().await.expect("verify runs to its end")
}

/// A run of `files` to its end, results at their output.
async fn grant(simulator: &Simulator, files: &RunFiles, extra: &[&str]) -> Output {
    let output = files.output.display().to_string();
    run_command(simulator, &files.input, &[extra, &["-o", &output]].concat())
        .output()
        .await
        .expect("the run ends")
}

/// `verify --pingone` looking once (`--audit-wait 0s`), which must agree (exit 0): its
/// `--summary-json`.
async fn agreeing_summary(simulator: &Simulator, results: &Path) -> serde_json::Value {
    let path = results.with_file_name("audit-summary.json");
    let checked = verify(
        simulator,
        results,
        &[
            "--audit-wait",
            "0s",
            "--summary-json",
            &path.display().to_string(),
        ],
    )
    .await;
    assert_exit(&checked, 0);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the summary")).expect("JSON")
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    );
}

fn audit_file(results: &Path) -> PathBuf {
    let stem = results.file_stem().unwrap_or_default().to_string_lossy();
    results.with_file_name(format!("{stem}.audit.csv"))
}

/// The reconciliation's lines, and its verdict of each row by row number.
fn verdicts(results: &Path) -> (Vec<BTreeMap<String, String>>, BTreeMap<String, String>) {
    let lines = read_results(&audit_file(results));
    let by_row = lines
        .iter()
        .filter(|line| !line["status"].is_empty())
        .map(|line| (line["row"].clone(), line["verdict"].clone()))
        .collect();
    (lines, by_row)
}

/// The run ID the results' record holds.
fn run_id_of(results: &Path) -> String {
    let stem = results.file_stem().unwrap_or_default().to_string_lossy();
    let record = std::fs::read_to_string(results.with_file_name(format!("{stem}.manifest.json")))
        .expect("the run record");
    let record: serde_json::Value = serde_json::from_str(&record).expect("JSON");
    record["run_id"].as_str().expect("a run ID").to_owned()
}

/// Thirteen rows: ten users who exist, one who does not (failed, 404) and two invalid rows, the
/// second's user a spreadsheet formula.
fn mixed_input(missing: Uuid) -> String {
    let mut csv = users_csv(10, ENV_A, "8h");
    csv.push_str(&format!("{ENV_A},{missing},8h\n"));
    csv.push_str(&format!("{ENV_A},not-a-user,8h\n"));
    csv.push_str(&format!("{ENV_A},=1+1,8h\n"));
    csv
}

async fn tenant_without(missing: Uuid) -> Simulator {
    start(SimulatorConfig {
        population: Population::AllExcept(HashSet::from([missing])),
        ..SimulatorConfig::default()
    })
    .await
}

#[tokio::test]
async fn a_clean_run_is_confirmed_row_by_row_and_what_changed_nothing_is_consistent() {
    let missing = Uuid::new_v4();
    let simulator = tenant_without(missing).await;
    let files = run_files(&mixed_input(missing));
    assert_exit(&grant(&simulator, &files, &[]).await, 1);
    let checked = verify(&simulator, &files.output, &["--audit-wait", "0s"]).await;
    assert_exit(&checked, 0);
    let (lines, by_row) = verdicts(&files.output);
    let header = std::fs::read_to_string(audit_file(&files.output))
        .ok()
        .and_then(|text| text.lines().next().map(str::to_owned));
    assert_eq!(
        header.as_deref(),
        Some(
            "row,environment_id,user_id,status,verdict,pingone_result,pingone_recorded_at,pingone_activity_id,pingone_correlation_id,detail"
        ),
        "the columns docs/cli.md names, in its order"
    );
    assert_eq!(
        lines.len(),
        13,
        "one line a row, and no activity the rows miss"
    );
    let rows: Vec<&str> = lines.iter().map(|line| line["row"].as_str()).collect();
    assert_eq!(rows, (2..15).map(|n| n.to_string()).collect::<Vec<_>>());
    assert_eq!(
        lines[12]["user_id"], "'=1+1",
        "the reconciliation is formula-safe as every results file"
    );
    for row in 2..12 {
        assert_eq!(by_row[&row.to_string()], "CONFIRMED", "row {row}");
    }
    let failed = &lines[10];
    assert_eq!(
        (
            failed["status"].as_str(),
            failed["verdict"].as_str(),
            failed["pingone_result"].as_str()
        ),
        ("failed", "CONSISTENT", "FAILED"),
        "a refused PUT is logged as failed: nothing changed"
    );
    assert_eq!(
        (lines[11]["status"].as_str(), lines[11]["verdict"].as_str()),
        ("invalid", "CONSISTENT")
    );
    let summary = stderr(&checked);
    assert!(
        summary.contains("10 CONFIRMED") && summary.contains("3 CONSISTENT"),
        "{summary}"
    );
    let run_id = run_id_of(&files.output);
    let sessions = simulator.stats().session_ids;
    assert_eq!(
        sessions.len(),
        2,
        "the check sends under a session of its own, not the run's: {sessions:?}"
    );
    assert!(sessions.contains_key(&run_id));
}

#[tokio::test]
async fn an_activity_pingone_lost_is_named_not_in_pingone() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(5, ENV_A, "8h"));
    assert_exit(&grant(&simulator, &files, &[]).await, 0);
    let run_id = run_id_of(&files.output);
    assert_eq!(simulator.lose_activity(&format!("{run_id}-row-4")), 1);
    let checked = verify(&simulator, &files.output, &["--audit-wait", "0s"]).await;
    assert_exit(&checked, 1);
    let (lines, by_row) = verdicts(&files.output);
    assert_eq!(by_row["4"], "NOT_IN_PINGONE");
    assert!(
        lines[2]["detail"].contains("no activity for this row's request"),
        "{lines:?}"
    );
    assert_eq!(by_row.values().filter(|v| *v == "CONFIRMED").count(), 4);
}

#[tokio::test]
async fn a_change_the_results_do_not_record_is_named_not_in_results() {
    let missing = Uuid::new_v4();
    let simulator = tenant_without(missing).await;
    let files = run_files(&mixed_input(missing));
    assert_exit(&grant(&simulator, &files, &[]).await, 1);
    let run_id = run_id_of(&files.output);
    // PingOne logged the failed row's request as a success after all, and a grant for a row
    // the results do not hold at all.
    simulator.add_activity(AddedActivity {
        environment_id: ENV_A,
        user_id: missing,
        session_id: run_id.clone(),
        transaction_id: format!("{run_id}-row-12"),
        succeeded: true,
    });
    let stranger = Uuid::new_v4();
    simulator.add_activity(AddedActivity {
        environment_id: ENV_A,
        user_id: stranger,
        session_id: run_id.clone(),
        transaction_id: format!("{run_id}-row-99"),
        succeeded: true,
    });
    let checked = verify(&simulator, &files.output, &["--audit-wait", "0s"]).await;
    assert_exit(&checked, 1);
    let (lines, by_row) = verdicts(&files.output);
    assert_eq!(by_row["12"], "NOT_IN_RESULTS", "{lines:?}");
    let extra = lines
        .last()
        .expect("a line for the activity that names no row");
    assert_eq!(
        (
            extra["row"].as_str(),
            extra["user_id"].as_str(),
            extra["status"].as_str(),
            extra["verdict"].as_str()
        ),
        ("99", stranger.to_string().as_str(), "", "NOT_IN_RESULTS")
    );
    assert!(
        stderr(&checked).contains("2 NOT_IN_RESULTS"),
        "{}",
        stderr(&checked)
    );
}

#[tokio::test]
async fn activities_that_arrive_late_are_waited_for_and_none_at_all_is_said_plainly() {
    let simulator = start(SimulatorConfig {
        audit_lag: Duration::from_secs(4),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(5, ENV_A, "8h"));
    assert_exit(&grant(&simulator, &files, &[]).await, 0);
    let at_once = verify(&simulator, &files.output, &["--audit-wait", "0s"]).await;
    assert_exit(&at_once, 1);
    let said = stderr(&at_once);
    assert!(
        said.contains("holds no activity of this run at all, so nothing could be confirmed")
            && said.contains("does not show that the grants are missing"),
        "{said}"
    );
    let waited = verify(&simulator, &files.output, &["--audit-wait", "1m"]).await;
    assert_exit(&waited, 0);
    assert!(
        stderr(&waited).contains("not yet in PingOne's audit log"),
        "the wait is said as it happens: {}",
        stderr(&waited)
    );
}

#[tokio::test]
async fn a_client_without_the_audit_permission_exits_3_naming_it() {
    let simulator = start(SimulatorConfig {
        audit_permission: false,
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    assert_exit(&grant(&simulator, &files, &[]).await, 0);
    let checked = verify(&simulator, &files.output, &[]).await;
    assert_exit(&checked, 3);
    assert!(
        stderr(&checked).contains("audit_reporting:read:activity"),
        "{}",
        stderr(&checked)
    );
    assert!(
        !audit_file(&files.output).exists(),
        "no reconciliation from an unread log"
    );
}

#[tokio::test]
async fn a_window_past_fourteen_days_a_check_and_a_rehearsal_are_refused_before_any_request() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(3, ENV_A, "8h"));
    assert_exit(&grant(&simulator, &files, &[]).await, 0);
    let record_path = files.output.with_file_name("users.results.manifest.json");
    let record = std::fs::read_to_string(&record_path).expect("the run record");
    let mut record: serde_json::Value = serde_json::from_str(&record).expect("JSON");
    let long_ago = chrono::Utc::now() - chrono::Duration::days(15);
    record["started_at"] = long_ago.to_rfc3339().into();
    std::fs::write(&record_path, record.to_string()).expect("the record is rewritten");
    let requests_before = simulator.stats().session_ids.values().sum::<u64>();
    let old = verify(&simulator, &files.output, &[]).await;
    assert_exit(&old, 2);
    assert!(
        stderr(&old).contains("Restore the run's days first"),
        "{}",
        stderr(&old)
    );

    let status = files.output.with_file_name("users.status.csv");
    let checked_status = pingone_command(
        &simulator,
        "status",
        &files.input,
        &["-o", &status.display().to_string()],
    )
    .output()
    .await
    .expect("status runs");
    assert_exit(&checked_status, 0);
    let refused = verify(&simulator, &status, &[]).await;
    assert_exit(&refused, 2);
    assert!(
        stderr(&refused).contains("changes nothing PingOne logs"),
        "{}",
        stderr(&refused)
    );

    let rehearsal = run_files(&users_csv(2, ENV_A, "8h"));
    let mut rehearsed = binary();
    rehearsed
        .args(["run", "--simulate", "--progress", "never"])
        .arg(&rehearsal.input);
    assert_exit(&rehearsed.output().await.expect("the rehearsal runs"), 0);
    let rehearsal_results = rehearsal
        .input
        .with_file_name("users.rehearsal.results.csv");
    let on_pingone = verify(&simulator, &rehearsal_results, &[]).await;
    assert_exit(&on_pingone, 2);
    assert!(
        stderr(&on_pingone).contains("add --simulate"),
        "{}",
        stderr(&on_pingone)
    );
    let status_requests = simulator.stats().session_ids.values().sum::<u64>() - requests_before;
    assert_eq!(
        status_requests, 3,
        "only the status check's GETs reached PingOne"
    );
}

#[tokio::test]
async fn an_ends_results_are_confirmed_as_a_grants_are() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(6, ENV_A, "8h"));
    assert_exit(&grant(&simulator, &files, &[]).await, 0);
    let ended = files.output.with_file_name("users.results.end.csv");
    let end = pingone_command(
        &simulator,
        "end",
        &files.output,
        &["-o", &ended.display().to_string()],
    )
    .output()
    .await
    .expect("end runs");
    assert_exit(&end, 0);
    let checked = verify(&simulator, &ended, &["--audit-wait", "0s"]).await;
    assert_exit(&checked, 0);
    let (lines, by_row) = verdicts(&ended);
    assert_eq!(
        lines.len(),
        6,
        "the grant's activities are another run's, not the end's"
    );
    assert!(
        by_row.values().all(|verdict| verdict == "CONFIRMED"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|line| line["status"] == "ended"));
}

#[tokio::test]
async fn every_page_is_read_within_the_audit_limit_and_its_429s_are_waited_out() {
    let simulator = start(SimulatorConfig {
        audit_page_size: 40,
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(600, ENV_A, "8h"));
    assert_exit(
        &grant(
            &simulator,
            &files,
            &["--rate", "3000", "--concurrency", "64"],
        )
        .await,
        0,
    );
    let before = simulator.stats().responses(429);
    let summary = agreeing_summary(&simulator, &files.output).await;
    assert_eq!(summary["confirmed"], 600);
    assert_eq!(
        summary["requests"], 15,
        "600 activities at 40 a page, every page followed"
    );
    assert_eq!(
        simulator.stats().responses(429),
        before,
        "the default pace (5/s) never meets PingOne's audit limit (10/s)"
    );

    let strict = start(SimulatorConfig {
        audit_page_size: 40,
        audit_rate_limit: NonZeroU32::new(2).map(RateLimit::per_second),
        ..SimulatorConfig::default()
    })
    .await;
    let strict_files = run_files(&users_csv(240, ENV_A, "8h"));
    assert_exit(&grant(&strict, &strict_files, &["--rate", "3000"]).await, 0);
    let limited = verify(
        &strict,
        &strict_files.output,
        &["--audit-wait", "0s", "--rate", "10"],
    )
    .await;
    assert_exit(&limited, 0);
    assert!(strict.stats().responses(429) > 0, "the limit was met");
    let (lines, _) = verdicts(&strict_files.output);
    assert!(lines.iter().all(|line| line["verdict"] == "CONFIRMED"));
}

#[tokio::test]
async fn a_rehearsal_checks_its_whole_arc_against_the_rehearsal_tenants_audit_log() {
    let files = run_files(&users_csv(20, ENV_A, "8h"));
    let rehearse = |args: &[&str]| {
        let mut command = binary();
        command
            .args(args)
            .args(["--simulate", "--progress", "never"]);
        command
    };
    let input = files.input.display().to_string();
    let results = files.input.with_file_name("users.rehearsal.results.csv");
    let results_text = results.display().to_string();
    for step in [
        vec!["run", &input],
        vec!["status", &input],
        vec!["end", &results_text],
    ] {
        let output = rehearse(&step).output().await.expect("the step runs");
        assert_exit(&output, 0);
    }
    for checked in [
        results.clone(),
        files
            .input
            .with_file_name("users.rehearsal.results.end.csv"),
    ] {
        let mut command = binary();
        command
            .arg("verify")
            .arg(&checked)
            .args(["--pingone", "--simulate", "--audit-wait", "0s"]);
        let output = command.output().await.expect("verify runs");
        assert_exit(&output, 0);
        let (lines, _) = verdicts(&checked);
        assert_eq!(lines.len(), 20);
        assert!(
            lines.iter().all(|line| line["verdict"] == "CONFIRMED"),
            "{lines:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_a_killed_run_never_recorded_is_named_not_in_results_after_the_resume() {
    let csv = users_csv(5, ENV_A, "8h");
    let lost = csv
        .lines()
        .nth(1)
        .and_then(|line| line.split(',').nth(1))
        .and_then(|user| Uuid::parse_str(user).ok())
        .expect("the first row's user");
    let simulator = start(SimulatorConfig {
        first_answer_lost: HashSet::from([lost]),
        hang_for: Duration::from_secs(120),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&csv);
    let output = files.output.display().to_string();
    let mut killed = run_command(&simulator, &files.input, &["-o", &output])
        .spawn()
        .expect("the run starts");
    crate::support::eventually(
        "every row granted, the first one's answer held back",
        || simulator.activities().len() == 5 && simulator.stats().in_flight == 1,
    )
    .await;
    crate::support::signal(&killed, "-KILL");
    killed.wait().await.expect("the run ends");
    assert_exit(&grant(&simulator, &files, &["--resume"]).await, 0);

    let checked = verify(&simulator, &files.output, &["--audit-wait", "0s"]).await;
    assert_exit(&checked, 1);
    let (lines, by_row) = verdicts(&files.output);
    assert!(
        by_row.values().all(|verdict| verdict == "CONFIRMED"),
        "{lines:?}"
    );
    let unrecorded: Vec<_> = lines
        .iter()
        .filter(|line| line["status"].is_empty())
        .collect();
    assert!(
        unrecorded.iter().any(|line| line["row"] == "2"
            && line["verdict"] == "NOT_IN_RESULTS"
            && line["user_id"] == lost.to_string()
            && line["detail"].contains("also changed row 2")),
        "the killed run's grant of row 2, which no file recorded: {lines:?}"
    );
    assert!(
        unrecorded
            .iter()
            .all(|line| line["verdict"] == "NOT_IN_RESULTS"),
        "only grants the killed run made and never recorded: {lines:?}"
    );
}

#[tokio::test]
async fn a_pingone_that_refuses_a_page_of_a_thousand_is_read_at_its_own_page_size() {
    let simulator = start(SimulatorConfig {
        audit_largest_limit: Some(100),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(250, ENV_A, "8h"));
    assert_exit(&grant(&simulator, &files, &["--rate", "3000"]).await, 0);
    let summary = agreeing_summary(&simulator, &files.output).await;
    assert_eq!(summary["confirmed"], 250);
    assert_eq!(
        summary["requests"], 4,
        "the refused page of 1,000, then 100, 100 and 50 at PingOne's own size"
    );
}
