//! Interruption, resume and faults: whatever happens to the network or the process, every row
//! is accounted for, nothing that succeeded is sent twice, and a re-run finishes the job.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use pingone_bypass::pingone::format_bypass_until;
use pingone_bypass::simulator::{FaultChances, RateLimit, Simulator, SimulatorConfig};
use uuid::Uuid;

use crate::support::{
    ENV_A, ENV_B, against, as_worker_app, column, eventually, read_results, run_config, run_files,
    run_to_end, start, users_csv,
};

/// Every results row agrees with the simulator: `succeeded` exactly when it holds that bypass,
/// with the expiry the row records.
fn assert_results_match_simulator(
    rows: &[std::collections::BTreeMap<String, String>],
    simulator: &Simulator,
) {
    for row in rows {
        let environment = Uuid::parse_str(&row["environment_id"]).expect("an environment UUID");
        let user = Uuid::parse_str(&row["user_id"]).expect("a user UUID");
        let held = simulator.bypass(environment, user).map(format_bypass_until);
        if row["status"] == "succeeded" {
            assert_eq!(
                held.as_deref(),
                Some(row["bypass_mfa_enabled_until"].as_str()),
                "row {}",
                row["row"]
            );
        } else {
            assert_eq!(
                held, None,
                "row {} is {} but the simulator holds a bypass",
                row["row"], row["status"]
            );
        }
    }
}

fn rows_numbered_in_order(rows: &[std::collections::BTreeMap<String, String>], count: usize) {
    assert_eq!(
        column(rows, "row"),
        (2..count + 2).map(|n| n.to_string()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_finishes_what_is_in_flight_and_accounts_for_every_row_then_resume_completes_it()
 {
    let simulator = Arc::new(
        start(SimulatorConfig {
            latency: Duration::from_millis(20),
            ..SimulatorConfig::default()
        })
        .await,
    );
    let files = run_files(&users_csv(400, ENV_A, "8h"));
    let mut config = run_config(&files, against(&simulator));
    config.rate = 100.0;
    let interrupt = config.interrupt.clone();
    let run = tokio::spawn(pingone_bypass::run::run(config));
    eventually("50 PUTs", || simulator.stats().total_puts() >= 50).await;
    interrupt.cancel();
    let outcome = run
        .await
        .expect("the run task ends")
        .expect("the run finishes");

    assert!(outcome.interrupted);
    let rows = read_results(&files.output);
    rows_numbered_in_order(&rows, 400);
    let statuses: HashSet<&str> = column(&rows, "status").into_iter().collect();
    assert_eq!(statuses, HashSet::from(["succeeded", "not_attempted"]));
    assert!(
        outcome.summary.not_attempted > 200,
        "the run went on after the interrupt"
    );
    assert!(
        rows.iter()
            .filter(|row| row["status"] == "not_attempted")
            .all(|row| row["error_code"] == "INTERRUPTED"
                && row["error_message"].contains("--resume"))
    );
    assert_results_match_simulator(&rows, &simulator);
    let first_pass_puts = simulator.stats().total_puts();
    assert_eq!(first_pass_puts, outcome.summary.succeeded);

    let mut resumed = run_config(&files, against(&simulator));
    resumed.resume = true;
    let outcome = run_to_end(resumed).await;
    assert_eq!(
        (outcome.summary.succeeded, outcome.summary.requests),
        (400, 400 - first_pass_puts)
    );
    let rows = read_results(&files.output);
    rows_numbered_in_order(&rows, 400);
    assert!(
        simulator
            .stats()
            .puts_per_user
            .iter()
            .all(|count| count.puts == 1),
        "a row was sent twice"
    );
    assert_results_match_simulator(&rows, &simulator);
    let leftovers: Vec<_> = std::fs::read_dir(files.output.parent().expect("a folder"))
        .expect("the folder lists")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files were left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_after_the_input_was_edited_sends_only_what_is_new_or_fixed() {
    let simulator = start(SimulatorConfig {
        forbidden_environments: HashSet::from([ENV_B]),
        ..SimulatorConfig::default()
    })
    .await;
    let users: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    let line = |environment: Uuid, user: Uuid, until: &str, note: &str| {
        format!("{environment},{user},{until},{note}\n")
    };
    let mut first = String::from("env,user,until,note\n");
    for user in &users[..6] {
        first.push_str(&line(ENV_A, *user, "8h", "first"));
    }
    first.push_str(&line(ENV_A, users[6], "tomorrow", "invalid"));
    first.push_str(&line(ENV_B, users[7], "8h", "forbidden"));
    let files = run_files(&first);
    run_to_end(run_config(&files, against(&simulator))).await;
    assert_eq!(simulator.bypasses().len(), 6);

    // Reordered, two removed, the invalid one fixed, the forbidden one moved, one added.
    let added = Uuid::new_v4();
    let mut edited = String::from("env,user,until,note\n");
    edited.push_str(&line(ENV_A, added, "8h", "added"));
    edited.push_str(&line(ENV_A, users[5], "8h", "second"));
    edited.push_str(&line(ENV_A, users[6], "9h", "fixed"));
    edited.push_str(&line(ENV_A, users[0], "8h", "second"));
    edited.push_str(&line(ENV_A, users[7], "8h", "moved"));
    edited.push_str(&line(ENV_A, users[2], "8h", "second"));
    std::fs::write(&files.input, edited).expect("the input is edited");
    let mut resumed = run_config(&files, against(&simulator));
    resumed.resume = true;
    let outcome = run_to_end(resumed).await;

    assert_eq!(outcome.summary.succeeded, 6);
    assert_eq!(
        outcome.summary.requests, 3,
        "only the added, fixed and moved rows are sent"
    );
    let rows = read_results(&files.output);
    let expected: Vec<String> = [
        added, users[5], users[6], users[0], users[7], users[2], users[1], users[3], users[4],
    ]
    .iter()
    .map(Uuid::to_string)
    .collect();
    assert_eq!(
        column(&rows, "user_id"),
        expected,
        "the input's rows in order, then the earlier successes whose rows were removed"
    );
    assert_eq!(
        column(&rows, "note"),
        [
            "added", "second", "fixed", "second", "moved", "second", "", "", ""
        ]
    );
    assert_eq!(
        column(&rows, "error_code")[6..],
        ["NOT_IN_INPUT", "NOT_IN_INPUT", "NOT_IN_INPUT"]
    );
    assert_eq!(column(&rows, "row")[6..], ["", "", ""]);
    assert_eq!(outcome.summary.carried_over, 3);
    let stats = simulator.stats();
    for user in &users[..6] {
        assert_eq!(
            stats.puts_for(ENV_A, *user),
            1,
            "a row that succeeded was sent again"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_cut_off_anywhere_is_accepted_by_resume() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&users_csv(30, ENV_A, "8h"));
    run_to_end(run_config(&files, against(&simulator))).await;
    let complete = std::fs::read(&files.output).expect("results");
    for cut in [
        complete.len() / 3,
        complete.len() / 2 + 7,
        complete.len() - 5,
    ] {
        std::fs::write(&files.output, &complete[..cut]).expect("the results are cut");
        let puts_before = simulator.stats().total_puts();
        let kept_lines = String::from_utf8_lossy(&complete[..cut])
            .matches('\n')
            .count()
            - 1;
        let mut resumed = run_config(&files, against(&simulator));
        resumed.resume = true;
        let outcome = run_to_end(resumed).await;
        assert_eq!(outcome.summary.succeeded, 30);
        // Every complete line was a success and is not sent again; the rest are.
        assert_eq!(
            simulator.stats().total_puts() - puts_before,
            30 - kept_lines as u64,
            "cut at {cut}"
        );
        assert_eq!(read_results(&files.output).len(), 30);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_rows_through_faults_storms_and_expiring_tokens_all_succeed_and_match() {
    let simulator = start(SimulatorConfig {
        faults: FaultChances {
            status_500: 0.1,
            status_502: 0.05,
            status_503: 0.05,
            reset: 0.05,
            hang: 0.02,
        },
        retry_after_503: Duration::ZERO,
        hang_for: Duration::from_secs(5),
        rate_limit: NonZeroU32::new(800).map(RateLimit::per_second),
        token_ttl: Duration::from_secs(3),
        seed: 20_261_129,
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&users_csv(5000, ENV_A, "8h"));
    let mut config = run_config(&files, as_worker_app(&simulator));
    config.rate = 3000.0;
    config.concurrency = 64;
    config.timeout = Duration::from_millis(300);
    config.retry.retries = 20;
    let outcome = run_to_end(config).await;

    let rows = read_results(&files.output);
    rows_numbered_in_order(&rows, 5000);
    assert_eq!(outcome.summary.succeeded, 5000, "{:?}", outcome.summary);
    assert_results_match_simulator(&rows, &simulator);
    let stats = simulator.stats();
    assert!(
        stats.resets > 0 && stats.hangs > 0 && stats.responses(429) > 0,
        "{stats:?}"
    );
    assert!(stats.tokens_issued >= 2, "no token expired during the run");
}
