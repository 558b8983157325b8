//! A flaky PingOne: 2% of requests answer 500, 502 or 503 (the 503s with `Retry-After: 1`),
//! with 30 ms latency and no rate limit, and the run sends at `--rate R`. A sporadic failure
//! must delay only its own row, so the run should take about N/R. Prints how long each run
//! took against N/R, and whether every row succeeded.
//!
//! `cargo bench --bench flaky_api -- [--rate R] [--rows N] [--failing SHARE] [--runs K]`
//! (default: R = 200, N = 2,000, SHARE = 0.02, K = 3).

mod common;

use std::time::Duration;

use anyhow::Context;
use pingone_bypass::config::RunConfig;
use pingone_bypass::run::run;
use pingone_bypass::simulator::{FaultChances, SimulatorConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut rate, mut rows, mut failing, mut runs) = (200.0_f64, 2_000_usize, 0.02_f64, 3_usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match arg.as_str() {
            "--rate" => rate = value()?.parse()?,
            "--rows" => rows = value()?.parse()?,
            "--failing" => failing = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            _ => {}
        }
    }
    for run_number in 1..=runs {
        let simulator = common::simulator(SimulatorConfig {
            latency: Duration::from_millis(30),
            faults: FaultChances {
                status_500: failing / 3.0,
                status_502: failing / 3.0,
                status_503: failing / 3.0,
                ..FaultChances::default()
            },
            retry_after_503: Duration::from_secs(1),
            seed: run_number as u64,
            ..SimulatorConfig::default()
        })
        .await?;
        let folder = tempfile::tempdir()?;
        let input = common::users_file(folder.path(), rows)?;
        let outcome = run(RunConfig {
            rate,
            ..common::run_config(&simulator, input, folder.path())
        })
        .await?;
        let ideal = rows as f64 / rate;
        let summary = &outcome.summary;
        let stats = simulator.stats();
        println!(
            "--rate {rate}, {:.0}% failing: {} of {rows} succeeded in {:.2}s = {:.3}x N/R ({ideal:.1}s); {} retries; answers 500/502/503: {}/{}/{}",
            failing * 100.0,
            summary.succeeded,
            summary.elapsed_seconds,
            summary.elapsed_seconds / ideal,
            summary.retries,
            stats.responses(500),
            stats.responses(502),
            stats.responses(503),
        );
    }
    Ok(())
}
