//! Validation before sending: no request for a row that is not valid, and every refused row
//! says why.

use std::time::Duration;

use pingone_bypass::simulator::SimulatorConfig;
use uuid::Uuid;

use crate::support::{
    ENV_A, against, column, read_results, run_config, run_files, run_to_end, start,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messy_sample_sends_only_its_valid_rows() {
    let simulator = start(SimulatorConfig::default()).await;
    let messy = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/messy.csv"))
        .expect("samples/messy.csv");
    let files = run_files(&messy);
    let outcome = run_to_end(run_config(&files, against(&simulator))).await;

    let rows = read_results(&files.output);
    let statuses = column(&rows, "status");
    assert_eq!(rows.len(), 16, "one result per input row");
    assert_eq!(statuses[0], "succeeded");
    assert_eq!(statuses[1], "skipped");
    assert_eq!(statuses[15], "succeeded");
    assert!(
        statuses[2..15].iter().all(|status| *status == "invalid"),
        "{statuses:?}"
    );
    assert_eq!(
        column(&rows, "row"),
        (2..18).map(|n| n.to_string()).collect::<Vec<_>>()
    );
    assert!(
        column(&rows, "error_message")[1..15]
            .iter()
            .all(|message| !message.is_empty())
    );

    assert_eq!(
        simulator.stats().total_puts(),
        2,
        "a request was sent for a refused row"
    );
    assert_eq!(outcome.summary.requests, 2);
    assert_eq!((outcome.summary.invalid, outcome.summary.skipped), (13, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_in_a_cell_never_reaches_the_server() {
    let simulator = start(SimulatorConfig::default()).await;
    let files = run_files(&format!(
        "env,user,until\n{ENV_A},../../../v1/environments/{ENV_A}/users/{}/bypassMFA,8h\n{ENV_A}/../x,{},8h\n",
        Uuid::new_v4(),
        Uuid::new_v4()
    ));
    run_to_end(run_config(&files, against(&simulator))).await;
    assert_eq!(
        column(&read_results(&files.output), "status"),
        ["invalid", "invalid"]
    );
    assert_eq!(
        simulator.stats().responses_by_status.values().sum::<u64>(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiries_outside_the_window_are_refused_and_what_is_sent_is_pingones_format() {
    let simulator = start(SimulatorConfig::default()).await;
    let (soon, later, too_late) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let files = run_files(&format!(
        "env,user,until\n{ENV_A},{soon},90m\n{ENV_A},{later},{}\n{ENV_A},{too_late},3d\n",
        (chrono::Utc::now() + chrono::Duration::hours(30)).format("%Y-%m-%d %H:%M")
    ));
    let mut config = run_config(&files, against(&simulator));
    config.rules.max_window = Duration::from_secs(2 * 86_400);
    config.rules.max_window_text = "2d".to_owned();
    let run_start = config.rules.run_start;
    run_to_end(config).await;

    let rows = read_results(&files.output);
    assert_eq!(
        column(&rows, "status"),
        ["succeeded", "succeeded", "invalid"]
    );
    assert!(column(&rows, "error_message")[2].contains("--max-window 2d"));
    let requested = column(&rows, "requested_until");
    let expected_soon = pingone_bypass::pingone::format_bypass_until(
        chrono::SubsecRound::trunc_subsecs(run_start + chrono::Duration::minutes(90), 3),
    );
    assert_eq!(requested[0], expected_soon);
    assert!(requested[1].ends_with(":00.000Z"), "{}", requested[1]);
    let stored = simulator
        .bypass(ENV_A, later)
        .map(pingone_bypass::pingone::format_bypass_until);
    assert_eq!(stored.as_deref(), Some(requested[1]));
    assert_eq!(simulator.bypass(ENV_A, too_late), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_plans_every_valid_row() {
    let files = run_files(&format!(
        "env,user,until\n{ENV_A},{},8h\n{ENV_A},not-a-user,8h\n",
        Uuid::new_v4()
    ));
    let outcome = run_to_end(run_config(
        &files,
        pingone_bypass::config::Target::Offline {
            would_send: String::new(),
        },
    ))
    .await;
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "status"), ["planned", "invalid"]);
    assert_eq!(column(&rows, "attempts"), ["0", "0"]);
    assert!(!column(&rows, "requested_until")[0].is_empty());
    assert_eq!((outcome.summary.planned, outcome.summary.requests), (1, 0));
}
