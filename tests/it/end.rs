//! `pingone-bypass end` through the binary: the incident's arc on one simulated tenant (a run,
//! one user extended in between by another request, `end --dry-run`, `end`, `end --force`,
//! `status`), a population's bypasses ended, a user whose bypass cannot be read, the bounds of
//! `--in`, a dry run's plan named apart from the run that follows it, a `--simulate`
//! rehearsal whose tenant outlives each command (and whose results no real end takes), and an
//! interrupted end resumed.

use chrono::{DateTime, Duration, Utc};
use pingone_bypass::simulator::{DirectoryUser, Population, SimulatorConfig};
use serde_json::Value;
use uuid::Uuid;

use crate::support::{
    ENV_A, column, pingone_command, put_bypass, read_results, run_files, start, stderr,
};

/// `pingone-bypass <subcommand> INPUT extra…` against `simulator`, to its end.
async fn command(
    simulator: &pingone_bypass::simulator::Simulator,
    subcommand: &str,
    input: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    pingone_command(simulator, subcommand, input, extra)
        .output()
        .await
        .expect("the binary runs")
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.with_timezone(&Utc))
        .unwrap_or_else(|error| panic!("{text:?} is not an instant: {error}"))
}

fn summary(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("a summary")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_ends_what_the_run_granted_leaves_a_changed_bypass_alone_and_force_ends_it() {
    let simulator = start(SimulatorConfig::default()).await;
    let (ada, bob, extended, stranger) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    // A bypass the run did not grant: `end` of the run's results must not touch it.
    simulator.store_bypass(ENV_A, stranger, Utc::now() + Duration::hours(5));
    let files = run_files(&format!(
        "envID,userID,until,ticket\n\
         {ENV_A},{ada},8h,T-1\n{ENV_A},not-a-uuid,8h,T-2\n{ENV_A},{bob},8h,T-3\n\
         {ENV_A},{extended},8h,T-4\n{ENV_A},{stranger},30d,T-5\n"
    ));
    let ran = command(&simulator, "run", &files.input, &[]).await;
    assert_eq!(ran.status.code(), Some(1), "{}", stderr(&ran));
    let granted = read_results(&files.output);
    assert_eq!(
        column(&granted, "status"),
        ["succeeded", "invalid", "succeeded", "succeeded", "invalid"]
    );
    // Someone extends one user's bypass by another request after the run.
    let token = simulator.issue_token();
    let later = pingone_bypass::pingone::format_bypass_until(Utc::now() + Duration::days(2));
    let answer = put_bypass(&simulator, &token, ENV_A, extended, &later).await;
    assert!(answer.status().is_success());
    let puts_before = simulator.stats().total_puts();
    let stranger_until = simulator.bypass(ENV_A, stranger);

    let plan = files.output.with_file_name("users.results.end-plan.csv");
    let dry = command(&simulator, "end", &files.output, &["--dry-run"]).await;
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert_eq!(
        simulator.stats().total_puts(),
        puts_before,
        "a dry run never PUTs"
    );
    let planned = read_results(&plan);
    assert_eq!(
        column(&planned, "status"),
        ["planned", "skipped", "planned", "skipped", "skipped"]
    );
    assert_eq!(
        column(&planned, "error_code"),
        ["", "NOT_GRANTED", "", "CHANGED_SINCE", "NOT_GRANTED"]
    );

    let ends = files.output.with_file_name("users.results.end.csv");
    let summary_path = files.output.with_file_name("end.summary.json");
    let before_end = Utc::now();
    let ended = command(
        &simulator,
        "end",
        &files.output,
        &["--summary-json", &summary_path.display().to_string()],
    )
    .await;
    assert_eq!(ended.status.code(), Some(0), "{}", stderr(&ended));
    let text = std::fs::read_to_string(&ends).expect("the end's results");
    assert!(
        text.starts_with(
            "row,environment_id,user_id,status,http_status,previous_until,bypass_mfa_enabled_until,error_code,error_message,completed_at,"
        ),
        "{text}"
    );
    let rows = read_results(&ends);
    assert_eq!(
        column(&rows, "status"),
        ["ended", "skipped", "ended", "skipped", "skipped"]
    );
    assert_eq!(
        column(&rows, "error_code"),
        ["", "NOT_GRANTED", "", "CHANGED_SINCE", "NOT_GRANTED"]
    );
    assert_eq!(column(&rows, "ticket"), ["T-1", "T-2", "T-3", "T-4", "T-5"]);
    for (index, user) in [(0, ada), (2, bob)] {
        let until = simulator.bypass(ENV_A, user).expect("a stored bypass");
        assert_eq!(
            rows[index]["bypass_mfa_enabled_until"],
            pingone_bypass::pingone::format_bypass_until(until)
        );
        assert!(
            until > before_end + Duration::seconds(30)
                && until <= Utc::now() + Duration::minutes(1),
            "{user}'s bypass ends within the minute: {until}"
        );
        assert_eq!(
            instant(&rows[index]["previous_until"]),
            instant(&granted[index]["bypass_mfa_enabled_until"]),
            "the expiry before the end is recorded"
        );
        assert_eq!(
            simulator.stats().puts_for(ENV_A, user),
            2,
            "one grant, one end"
        );
    }
    assert_eq!(simulator.stats().puts_for(ENV_A, extended), 2, "not ended");
    assert_eq!(simulator.stats().puts_for(ENV_A, stranger), 0);
    assert_eq!(simulator.bypass(ENV_A, stranger), stranger_until);
    let counts = summary(&summary_path);
    for (key, expected) in [
        ("ended", 2),
        ("skipped", 3),
        ("not_granted", 2),
        ("changed_since", 1),
        ("no_bypass", 0),
        ("failed", 0),
        // The three granted rows read, the two ended PUT; the rows not granted send nothing.
        ("requests", 5),
    ] {
        assert_eq!(counts[key], expected, "{key}: {counts}");
    }
    assert!(counts.get("succeeded").is_none(), "end has its own keys");

    let forced_path = files.output.with_file_name("forced.end.csv");
    let forced = command(
        &simulator,
        "end",
        &files.output,
        &["--force", "-o", &forced_path.display().to_string()],
    )
    .await;
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    let rows = read_results(&forced_path);
    assert_eq!(
        column(&rows, "error_code"),
        [
            "ENDS_SOONER",
            "NOT_GRANTED",
            "ENDS_SOONER",
            "",
            "NOT_GRANTED"
        ]
    );
    assert_eq!(rows[3]["status"], "ended");
    assert_eq!(
        simulator.stats().puts_for(ENV_A, extended),
        3,
        "only it is sent"
    );
    assert_eq!(simulator.stats().puts_for(ENV_A, ada), 2);

    let checked = command(&simulator, "status", &files.output, &[]).await;
    assert_eq!(checked.status.code(), Some(1), "{}", stderr(&checked));
    let status = read_results(&files.output.with_file_name("users.results.status.csv"));
    assert_eq!(
        column(&status, "status"),
        ["active", "invalid", "active", "active", "active"],
        "the last is the bypass the run did not grant, as it was"
    );
    for index in [0, 2, 3] {
        let remaining = &status[index]["remaining"];
        assert!(
            remaining == "1m" || remaining.ends_with('s'),
            "about a minute left: {remaining}"
        );
    }
    let verified = crate::support::binary()
        .arg("verify")
        .arg(&ends)
        .output()
        .await
        .expect("runs");
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("of an end of bypasses"),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_a_population_ends_the_bypasses_in_force_and_skips_the_rest() {
    let member = |n: usize| DirectoryUser {
        environment_id: ENV_A,
        id: Uuid::new_v4(),
        username: format!("c{n}"),
        email: format!("c{n}@example.com"),
        population: "Contractors".to_owned(),
        groups: Vec::new(),
    };
    let contractors: Vec<DirectoryUser> = (0..3).map(member).collect();
    let simulator = start(SimulatorConfig {
        population: Population::Only(contractors.clone()),
        ..SimulatorConfig::default()
    })
    .await;
    simulator.store_bypass(ENV_A, contractors[0].id, Utc::now() + Duration::hours(3));
    simulator.store_bypass(ENV_A, contractors[2].id, Utc::now() + Duration::seconds(20));
    let folder = tempfile::tempdir().expect("a folder");
    let report = folder.path().join("contractors.end.csv");
    let mut end = crate::support::binary();
    end.args(["end", "--progress", "never", "--population", "Contractors"])
        .args(["--max-users", "3", "--env", &ENV_A.to_string(), "-o"])
        .arg(&report);
    crate::support::with_worker_app(&mut end, &simulator);
    let output = end.output().await.expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&report);
    assert_eq!(column(&rows, "status"), ["ended", "skipped", "skipped"]);
    assert_eq!(
        column(&rows, "error_code"),
        ["", "NO_BYPASS", "ENDS_SOONER"]
    );
    assert_eq!(
        simulator.stats().total_puts(),
        1,
        "only the bypass in force"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_whose_bypass_cannot_be_read_is_failed_and_gets_no_put() {
    let simulator = start(SimulatorConfig {
        forbidden_environments: std::collections::HashSet::from([ENV_A]),
        ..SimulatorConfig::default()
    })
    .await;
    let user = Uuid::new_v4();
    simulator.store_bypass(ENV_A, user, Utc::now() + Duration::hours(3));
    let files = run_files(&format!("envID,userID\n{ENV_A},{user}\n"));
    let output = command(&simulator, "end", &files.input, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&files.input.with_file_name("users.end.csv"));
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[0]["http_status"], "403");
    assert!(
        rows[0]["error_message"].contains("not ended"),
        "{}",
        rows[0]["error_message"]
    );
    assert_eq!(simulator.stats().total_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_outside_half_a_minute_to_an_hour_is_exit_2_and_sends_nothing() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&format!("envID,userID\n{ENV_A},{}\n", Uuid::new_v4()));
    for within in ["29s", "0s", "61m", "2h", "soon"] {
        let output = command(&simulator, "end", &files.input, &["--in", within]).await;
        assert_eq!(output.status.code(), Some(2), "--in {within}");
        assert!(stderr(&output).contains("--in"), "{}", stderr(&output));
    }
    assert_eq!(simulator.stats().tokens_issued, 0, "nothing was sent");
    let output = command(&simulator, "end", &files.input, &["--in", "30s"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        column(
            &read_results(&files.input.with_file_name("users.end.csv")),
            "error_code"
        ),
        ["NO_BYPASS"],
        "a user without a bypass is not given one"
    );
    assert_eq!(simulator.stats().total_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_runs_plan_has_a_name_of_its_own_so_the_real_run_goes_ahead() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&format!(
        "envID,userID,until\n{ENV_A},{},8h\n",
        Uuid::new_v4()
    ));
    let planned = command(&simulator, "run", &files.input, &["--dry-run"]).await;
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    assert_eq!(
        column(
            &read_results(&files.input.with_file_name("users.plan.csv")),
            "status"
        ),
        ["planned"]
    );
    assert!(!files.output.exists(), "the plan is not the results");
    let ran = command(&simulator, "run", &files.input, &[]).await;
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    assert_eq!(
        column(&read_results(&files.output), "status"),
        ["succeeded"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_keeps_its_tenant_so_run_status_and_end_see_one_tenant() {
    let folder = tempfile::tempdir().expect("a folder");
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/outage.csv"),
    )
    .expect("the sample");
    let input = folder.path().join("outage.csv");
    let first_rows: Vec<&str> = sample.lines().take(4).collect();
    std::fs::write(&input, first_rows.join("\n") + "\n").expect("written");
    let rehearse = |subcommand: &'static str, input: std::path::PathBuf| async move {
        let mut command = crate::support::binary();
        command.arg(subcommand).arg(&input).args([
            "--simulate",
            "--progress",
            "never",
            "--retries",
            "8",
        ]);
        command.output().await.expect("runs")
    };
    let ran = rehearse("run", input.clone()).await;
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let results = folder.path().join("outage.rehearsal.results.csv");
    assert!(
        folder
            .path()
            .join("pingone-bypass.rehearsal-tenant.json")
            .exists(),
        "the tenant is kept beside the results"
    );
    // A rehearsal's results ended on a real API: refused, nothing sent.
    let elsewhere = start(SimulatorConfig::default()).await;
    let refused = command(&elsewhere, "end", &results, &[]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("the built-in simulator")
            && stderr(&refused).contains("--simulate"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(elsewhere.stats().tokens_issued, 0);
    let checked = rehearse("status", results.clone()).await;
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    let status_path = folder.path().join("outage.rehearsal.results.status.csv");
    assert_eq!(
        column(&read_results(&status_path), "status"),
        ["active", "active", "active"]
    );
    let ended = rehearse("end", results.clone()).await;
    assert_eq!(ended.status.code(), Some(0), "{}", stderr(&ended));
    assert_eq!(
        column(
            &read_results(&folder.path().join("outage.rehearsal.results.end.csv")),
            "status"
        ),
        ["ended", "ended", "ended"]
    );
    std::fs::remove_file(&status_path).expect("removed");
    let checked = rehearse("status", results).await;
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    for remaining in column(&read_results(&status_path), "remaining") {
        assert!(
            remaining == "1m" || remaining.ends_with('s'),
            "ended within the minute: {remaining}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_end_resumes_keeping_what_it_ended_and_ends_the_rest() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&crate::support::users_csv(40, ENV_A, "8h"));
    let ran = command(&simulator, "run", &files.input, &[]).await;
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let ends = files.output.with_file_name("users.results.end.csv");
    let ends_text = ends.display().to_string();
    let first = pingone_command(
        &simulator,
        "end",
        &files.output,
        &["--rate", "20", "-o", &ends_text],
    )
    .spawn()
    .expect("starts");
    crate::support::wait_for_puts(&simulator, 40 + 5).await;
    crate::support::signal(&first, "-INT");
    let interrupted = first.wait_with_output().await.expect("ends");
    assert_eq!(
        interrupted.status.code(),
        Some(130),
        "{}",
        stderr(&interrupted)
    );
    let earlier = read_results(&ends);
    let ended_first: Vec<usize> = (0..earlier.len())
        .filter(|&index| earlier[index]["status"] == "ended")
        .collect();
    assert!(
        !ended_first.is_empty() && ended_first.len() < 40,
        "{:?}",
        column(&earlier, "status")
    );
    assert!(column(&earlier, "status").contains(&"not_attempted"));

    let resumed = command(
        &simulator,
        "end",
        &files.output,
        &["--resume", "-o", &ends_text],
    )
    .await;
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let rows = read_results(&ends);
    assert_eq!(column(&rows, "status"), vec!["ended"; 40]);
    for index in ended_first {
        assert_eq!(
            rows[index], earlier[index],
            "an earlier end is kept as it was"
        );
    }
    for row in &rows {
        let user = Uuid::parse_str(&row["user_id"]).expect("an ID");
        assert_eq!(
            simulator.stats().puts_for(ENV_A, user),
            2,
            "one grant and one end for {user}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_that_waits_its_turn_still_leaves_the_bypass_a_minute_from_when_it_is_sent() {
    let simulator = start(SimulatorConfig::default()).await;
    let user = Uuid::new_v4();
    simulator.store_bypass(ENV_A, user, Utc::now() + Duration::hours(3));
    let files = run_files(&format!("envID,userID\n{ENV_A},{user}\n"));
    // One request every four seconds: the PUT waits that long behind the row's own GET.
    let output = command(&simulator, "end", &files.input, &["--rate", "0.25"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&files.input.with_file_name("users.end.csv"));
    assert_eq!(rows[0]["status"], "ended");
    let until = simulator.bypass(ENV_A, user).expect("a bypass");
    let answered = instant(&rows[0]["completed_at"]);
    assert!(
        until - answered > Duration::seconds(58),
        "the minute counts from the PUT, not from the read four seconds before it: until {until}, answered {answered}"
    );
    assert_eq!(
        rows[0]["bypass_mfa_enabled_until"],
        pingone_bypass::pingone::format_bypass_until(until)
    );
}
