//! Rate accuracy: `run` against the in-process simulator with 50 ms of latency, measuring from
//! the simulator's side when each PUT arrived. Prints the achieved rate against the target and
//! the busiest one-second window.
//!
//! `cargo bench --bench rate_accuracy -- [RATE ...] [--rows N] [--latency-ms N]`
//! (default: rate 200, 2,000 rows, 50 ms). Concurrency is sized to rate × latency × 2.

mod common;

use std::time::Duration;

use anyhow::Context;
use pingone_bypass::config::RunConfig;
use pingone_bypass::run::run;
use pingone_bypass::simulator::SimulatorConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rates = Vec::new();
    let mut rows = 2_000_usize;
    let mut latency_ms = 50_u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => rows = args.next().context("--rows N")?.parse()?,
            "--latency-ms" => latency_ms = args.next().context("--latency-ms N")?.parse()?,
            flag if flag.starts_with("--") => {}
            rate => rates.push(rate.parse::<f64>().context("a rate")?),
        }
    }
    if rates.is_empty() {
        rates.push(200.0);
    }
    let latency = Duration::from_millis(latency_ms);
    for rate in rates {
        let simulator = common::simulator(SimulatorConfig {
            latency,
            ..SimulatorConfig::default()
        })
        .await?;
        let folder = tempfile::tempdir()?;
        let input = common::users_file(folder.path(), rows)?;
        let concurrency = ((rate * latency.as_secs_f64() * 2.0).ceil() as usize).max(8);
        let outcome = run(RunConfig {
            rate,
            concurrency,
            ..common::run_config(&simulator, input, folder.path())
        })
        .await?;
        let arrivals = simulator.put_arrivals();
        let achieved = (arrivals.total().saturating_sub(1)) as f64 / arrivals.span().as_secs_f64();
        let busiest = arrivals.busiest(Duration::from_secs(1));
        println!(
            "rate {rate}: {} rows ({} succeeded), {latency_ms} ms latency, concurrency {concurrency}: achieved {achieved:.1}/s = {:.2}% of target; busiest 1-second window {busiest} = {:.1}% of target; run took {:.2}s",
            outcome.summary.total,
            outcome.summary.succeeded,
            achieved / rate * 100.0,
            busiest as f64 / rate * 100.0,
            outcome.summary.elapsed_seconds,
        );
    }
    Ok(())
}
