//! Adaptive rate: the simulator allows R requests/s while `--rate` is 10R. Prints how long the
//! run took against the ideal N/R and what share of requests met a 429.
//!
//! `cargo bench --bench adaptive_rate -- [--limit R] [--rows N] [--latency-ms L] [--runs K]`
//! (default: R = 100, N = 2,000, L = 30, K = 3).

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::Context;
use pingone_bypass::config::RunConfig;
use pingone_bypass::gateway::client::RetryPolicy;
use pingone_bypass::run::run;
use pingone_bypass::simulator::{RateLimit, SimulatorConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut limit, mut rows, mut latency_ms, mut runs) = (100_u32, 2_000_usize, 30_u64, 3_usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match arg.as_str() {
            "--limit" => limit = value()?.parse()?,
            "--rows" => rows = value()?.parse()?,
            "--latency-ms" => latency_ms = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            _ => {}
        }
    }
    for _ in 0..runs {
        let simulator = common::simulator(SimulatorConfig {
            latency: Duration::from_millis(latency_ms),
            rate_limit: NonZeroU32::new(limit).map(RateLimit::per_second),
            ..SimulatorConfig::default()
        })
        .await?;
        let folder = tempfile::tempdir()?;
        let input = common::users_file(folder.path(), rows)?;
        let outcome = run(RunConfig {
            rate: f64::from(limit) * 10.0,
            retry: RetryPolicy {
                retries: 10,
                ..RetryPolicy::default()
            },
            ..common::run_config(&simulator, input, folder.path())
        })
        .await?;
        let ideal = rows as f64 / f64::from(limit);
        let summary = &outcome.summary;
        println!(
            "limit {limit}/s, --rate {}: {} of {rows} succeeded in {:.2}s = {:.3}x the ideal {ideal:.1}s; {} of {} requests throttled = {:.1}%",
            limit * 10,
            summary.succeeded,
            summary.elapsed_seconds,
            summary.elapsed_seconds / ideal,
            summary.throttled,
            summary.requests,
            summary.throttled as f64 / summary.requests.max(1) as f64 * 100.0,
        );
    }
    Ok(())
}
