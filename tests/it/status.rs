//! `pingone-bypass status` through the binary: every row's bypass read back from the simulator's
//! stored bypasses (active, ended, never granted, a user that does not exist, an invalid row, a
//! user named by username) and of a whole population, the report's columns, its summary JSON,
//! exit codes and the flags it does not take.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use pingone_bypass::simulator::{Population, SimulatorConfig};
use uuid::Uuid;

use crate::support::{ENV_A, column, read_results, run_files, start, with_worker_app};

/// `pingone-bypass status INPUT` as the simulator's worker application.
fn status_command(
    simulator: &pingone_bypass::simulator::Simulator,
    input: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Command {
    let mut command = crate::support::binary();
    command
        .arg("status")
        .arg(input)
        .args(["--progress", "never", "--rate", "1000"])
        .args(extra);
    with_worker_app(&mut command, simulator);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_each_rows_bypass_back_as_active_none_failed_or_invalid() {
    let missing = Uuid::new_v4();
    let simulator = start(SimulatorConfig {
        population: Population::AllExcept(HashSet::from([missing])),
        ..SimulatorConfig::default()
    })
    .await;
    let (active, ended, never) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    simulator.store_bypass(
        ENV_A,
        active,
        Utc::now() + Duration::hours(3) + Duration::minutes(5),
    );
    simulator.store_bypass(ENV_A, ended, Utc::now() - Duration::hours(1));
    // ada.lovelace of the built-in directory, named by username.
    let ada = Uuid::parse_str("0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01").unwrap_or_default();
    simulator.store_bypass(ENV_A, ada, Utc::now() + Duration::days(1));
    let files = run_files(&format!(
        "envID,userID,username,ticket\n\
         {ENV_A},{active},,T-1\n{ENV_A},{ended},,T-2\n{ENV_A},{never},,T-3\n\
         {ENV_A},{missing},,T-4\n{ENV_A},not-a-uuid,,T-5\n{ENV_A},,ada.lovelace,T-6\n"
    ));
    let report = files.input.with_file_name("users.status.csv");
    let summary = files.input.with_file_name("summary.json");
    let output = status_command(
        &simulator,
        &files.input,
        &["--summary-json", &summary.display().to_string()],
    )
    .output()
    .await
    .expect("the binary runs");
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let rows = read_results(&report);
    assert_eq!(
        column(&rows, "status"),
        ["active", "none", "none", "failed", "invalid", "active"]
    );
    assert_eq!(
        column(&rows, "http_status")[..4],
        ["200", "200", "200", "404"]
    );
    assert_eq!(rows[0]["can_bypass_mfa"], "true");
    assert!(
        ["3h04m", "3h05m"].contains(&rows[0]["remaining"].as_str()),
        "{}",
        rows[0]["remaining"]
    );
    assert_eq!(
        rows[1]["can_bypass_mfa"], "false",
        "an ended bypass is none"
    );
    assert_eq!(rows[1]["remaining"], "");
    assert_eq!(
        (
            rows[2]["can_bypass_mfa"].as_str(),
            rows[2]["bypass_mfa_enabled_until"].as_str()
        ),
        ("", ""),
        "PingOne leaves both fields out for a user who never had a bypass"
    );
    assert_eq!(rows[5]["user_id"], ada.to_string());
    assert_eq!(
        column(&rows, "ticket"),
        ["T-1", "T-2", "T-3", "T-4", "T-5", "T-6"]
    );
    let header: Vec<&String> = rows[0].keys().collect();
    for name in [
        "row",
        "environment_id",
        "user_id",
        "status",
        "http_status",
        "can_bypass_mfa",
        "bypass_mfa_enabled_until",
        "remaining",
        "error_code",
        "error_message",
        "checked_at",
    ] {
        assert!(
            header.iter().any(|column| *column == name),
            "{name} is a column"
        );
    }
    assert!(!header.iter().any(|column| *column == "requested_until"));

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("JSON");
    assert_eq!(summary["total"], 6);
    assert_eq!(summary["active"], 2);
    assert_eq!(summary["none"], 2);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["invalid"], 1);
    assert!(
        summary["requests"]
            .as_u64()
            .is_some_and(|requests| requests >= 5)
    );
    assert!(
        summary.get("succeeded").is_none(),
        "status has its own keys"
    );
    assert_eq!(simulator.stats().total_puts(), 0, "status grants nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_0_when_every_row_was_checked_and_offers_no_granting_flags() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&crate::support::users_csv(3, ENV_A, "8h"));
    let status = |extra: &[&str]| {
        let mut command = status_command(&simulator, &files.input, &["--overwrite"]);
        command.args(extra);
        command
    };
    let output = status(&[]).output().await.expect("runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        column(
            &read_results(&files.input.with_file_name("users.status.csv")),
            "status"
        ),
        ["none"; 3]
    );
    for (flag, value) in [
        ("--until", "8h"),
        ("--max-window", "1d"),
        ("--resume-margin", "1h"),
    ] {
        let output = status(&[flag, value]).output().await.expect("runs");
        assert_eq!(output.status.code(), Some(2), "{flag}");
        assert!(
            String::from_utf8_lossy(&output.stderr)
                .contains(&format!("unexpected argument '{flag}'")),
            "{flag}"
        );
    }
    let help = crate::support::binary_blocking()
        .args(["status", "--help"])
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&help.stdout);
    let offers = |flag: &str| {
        help.lines()
            .any(|line| line.trim_start().starts_with(&format!("{flag} ")))
    };
    for granting in [
        "--until",
        "--timezone",
        "--max-window",
        "--resume",
        "--dry-run",
    ] {
        assert!(!offers(granting), "status --help offers {granting}");
    }
    for shared in [
        "--population",
        "--sheet",
        "--rate",
        "--ca-file",
        "--summary-json",
    ] {
        assert!(offers(shared), "status --help lacks {shared}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_a_whole_population_back_without_an_expiry() {
    use pingone_bypass::simulator::DirectoryUser;
    let member = |n: usize, population: &str| DirectoryUser {
        environment_id: ENV_A,
        id: Uuid::new_v4(),
        username: format!("u{n}"),
        email: format!("u{n}@example.com"),
        population: population.to_owned(),
        groups: Vec::new(),
    };
    let contractors: Vec<DirectoryUser> = (0..3).map(|n| member(n, "Contractors")).collect();
    let mut users = contractors.clone();
    users.push(member(9, "Employees"));
    let simulator = start(SimulatorConfig {
        population: Population::Only(users),
        ..SimulatorConfig::default()
    })
    .await;
    simulator.store_bypass(ENV_A, contractors[1].id, Utc::now() + Duration::hours(3));
    let folder = tempfile::tempdir().expect("a folder");
    let report = folder.path().join("contractors.status.csv");
    let mut command = crate::support::binary();
    command
        .args([
            "status",
            "--progress",
            "never",
            "--population",
            "Contractors",
        ])
        .args(["--max-users", "3", "--env", &ENV_A.to_string(), "-o"])
        .arg(&report);
    with_worker_app(&mut command, &simulator);
    let output = command.output().await.expect("runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = read_results(&report);
    let listed: Vec<String> = contractors.iter().map(|user| user.id.to_string()).collect();
    assert_eq!(column(&rows, "user_id"), listed, "in listing order");
    assert_eq!(column(&rows, "status"), ["none", "active", "none"]);
    assert_eq!(simulator.stats().total_puts(), 0, "status grants nothing");
}
