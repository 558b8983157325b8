//! Signals through the binary: Ctrl-C or SIGTERM drains and exits 130, a second one exits at
//! once, and after SIGKILL at any moment `--resume` finishes the job without sending again what
//! succeeded. The simulator lives in the test, so its state outlives the killed process.

use std::time::{Duration, Instant};

use pingone_bypass::simulator::{Simulator, SimulatorConfig};
use rand::RngExt;
use uuid::Uuid;

use crate::support::{
    ENV_A, read_results, run_command, run_files, signal, start, succeeded_users, users_csv,
    wait_for_puts,
};

async fn simulator_with_latency(latency: Duration) -> Simulator {
    start(SimulatorConfig {
        latency,
        ..SimulatorConfig::default()
    })
    .await
}

async fn resume_to_the_end(simulator: &Simulator, files: &crate::support::RunFiles, rows: usize) {
    let resumed = run_command(
        simulator,
        &files.input,
        &["--resume", "-o", &files.output.display().to_string()],
    )
    .output()
    .await
    .expect("the resumed run finishes");
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let results = read_results(&files.output);
    assert_eq!(results.len(), rows);
    assert!(results.iter().all(|row| row["status"] == "succeeded"));
    let expected_rows: Vec<String> = (2..rows + 2).map(|n| n.to_string()).collect();
    assert_eq!(
        results
            .iter()
            .map(|row| row["row"].clone())
            .collect::<Vec<_>>(),
        expected_rows
    );
}

/// A run of 300 rows against a fresh simulator, sent `signal_name` after a random number of
/// PUTs; returns what the run left and how it exited.
struct SignalledRun {
    simulator: Simulator,
    files: crate::support::RunFiles,
    after_puts: u64,
    exit_code: Option<i32>,
}

async fn signal_at_a_random_moment(signal_name: &str) -> SignalledRun {
    let simulator = simulator_with_latency(Duration::from_millis(10)).await;
    let files = run_files(&users_csv(300, ENV_A, "8h"));
    let after_puts = crate::support::spec_rng("the moment of the signal").random_range(1..250);
    let mut child = run_command(
        &simulator,
        &files.input,
        &["-o", &files.output.display().to_string()],
    )
    .spawn()
    .expect("the binary starts");
    wait_for_puts(&simulator, after_puts).await;
    signal(&child, signal_name);
    let status = child.wait().await.expect("the run ends");
    SignalledRun {
        simulator,
        files,
        after_puts,
        exit_code: status.code(),
    }
}

/// Resumes the run to its end and checks that no row it recorded as succeeded was sent again.
async fn resume_without_resending(run: &SignalledRun) {
    let done_before = succeeded_users(&run.files.output);
    resume_to_the_end(&run.simulator, &run.files, 300).await;
    let stats = run.simulator.stats();
    for user in &done_before {
        let user = Uuid::parse_str(user).expect("a user UUID");
        assert_eq!(
            stats.puts_for(ENV_A, user),
            1,
            "stopped after {} PUTs: a succeeded row was sent again",
            run.after_puts
        );
    }
    assert_eq!(run.simulator.bypasses().len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_at_a_random_moment_drains_exits_130_and_resume_finishes() {
    let run = signal_at_a_random_moment("-INT").await;
    assert_eq!(
        run.exit_code,
        Some(130),
        "interrupted after {} PUTs",
        run.after_puts
    );
    let results = read_results(&run.files.output);
    assert_eq!(
        results.len(),
        300,
        "every row is accounted for after an interrupt"
    );
    assert!(
        results
            .iter()
            .all(|row| row["status"] == "succeeded" || row["status"] == "not_attempted")
    );
    resume_without_resending(&run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_a_random_moment_leaves_results_that_resume_finishes_without_resending() {
    let run = signal_at_a_random_moment("-KILL").await;
    resume_without_resending(&run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_resume_keeps_the_earlier_record_and_the_next_resume_reads_both() {
    let simulator = simulator_with_latency(Duration::from_millis(10)).await;
    let files = run_files(&users_csv(300, ENV_A, "8h"));
    let output = files.output.display().to_string();
    let mut first = run_command(&simulator, &files.input, &["-o", &output])
        .spawn()
        .expect("starts");
    wait_for_puts(&simulator, 60).await;
    signal(&first, "-INT");
    first.wait().await.expect("the run ends");
    let earlier_record = std::fs::read(&files.output).expect("the first results");

    let puts = simulator.stats().total_puts();
    let mut resume = run_command(&simulator, &files.input, &["--resume", "-o", &output])
        .spawn()
        .expect("starts");
    wait_for_puts(&simulator, puts + 60).await;
    signal(&resume, "-KILL");
    resume.wait().await.expect("the resume ends");
    assert_eq!(
        std::fs::read(&files.output).expect("results"),
        earlier_record,
        "the earlier record changed"
    );

    let leftovers =
        pingone_bypass::record::resume::leftovers(&files.output).expect("the folder lists");
    assert_eq!(
        leftovers.len(),
        2,
        "the killed resume leaves its partial file and its journal: {leftovers:?}"
    );
    let mut recorded = succeeded_users(&files.output);
    for leftover in &leftovers {
        recorded.extend(succeeded_users(leftover));
    }
    let before = simulator.stats();

    resume_to_the_end(&simulator, &files, 300).await;
    let after = simulator.stats();
    for user in &recorded {
        let user = Uuid::parse_str(user).expect("a user UUID");
        assert_eq!(
            after.puts_for(ENV_A, user),
            before.puts_for(ENV_A, user),
            "a row recorded as succeeded, in the results or the killed resume's partial file or journal, was sent again"
        );
    }
    assert!(
        pingone_bypass::record::resume::leftovers(&files.output)
            .expect("the folder lists")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let simulator = simulator_with_latency(Duration::from_secs(20)).await;
    let files = run_files(&users_csv(20, ENV_A, "8h"));
    let mut child = run_command(
        &simulator,
        &files.input,
        &["-o", &files.output.display().to_string()],
    )
    .spawn()
    .expect("the binary starts");
    crate::support::eventually("a request in flight", || simulator.stats().in_flight > 0).await;
    signal(&child, "-TERM");
    let second = Instant::now();
    signal(&child, "-INT");
    let status = child.wait().await.expect("the run ends");
    assert_eq!(status.code(), Some(130));
    assert!(
        second.elapsed() < Duration::from_secs(10),
        "the second signal did not stop the run at once"
    );
}
