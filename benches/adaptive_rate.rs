//! Adaptive rate against every shape of limiter: the simulator allows R requests/s, metered as
//! PingOne does (a token bucket with `Retry-After`) or as the gateways in front of it do (the
//! same without `Retry-After`, a leaky bucket with an HTML 429, with and without burst), while
//! `--rate` is 3R. Prints, per shape and run, how long the run took against the ideal N/R and
//! how many 429s it met.
//!
//! `cargo bench --bench adaptive_rate -- [--limit R] [--rows N] [--latency-ms L] [--runs K]
//! [--times F]` (default: R = 50, N = 600, L = 30, K = 3, F = 3).

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::Context;
use pingone_bypass::config::RunConfig;
use pingone_bypass::gateway::client::RetryPolicy;
use pingone_bypass::run::run;
use pingone_bypass::simulator::{LimiterShape, RateLimit, SimulatorConfig};

const SHAPES: [(LimiterShape, &str); 4] = [
    (LimiterShape::Pingone, "token bucket, Retry-After, JSON"),
    (
        LimiterShape::TokenBucket,
        "token bucket, no Retry-After, JSON",
    ),
    (
        LimiterShape::LeakyBucket,
        "leaky bucket, no burst, no Retry-After, HTML",
    ),
    (
        LimiterShape::LeakyBurst,
        "leaky bucket, burst R/10, no Retry-After, HTML",
    ),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut limit, mut rows, mut latency_ms, mut runs, mut times) =
        (50_u32, 600_usize, 30_u64, 3_usize, 3.0_f64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match arg.as_str() {
            "--limit" => limit = value()?.parse()?,
            "--rows" => rows = value()?.parse()?,
            "--latency-ms" => latency_ms = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            "--times" => times = value()?.parse()?,
            _ => {}
        }
    }
    let ideal = rows as f64 / f64::from(limit);
    println!(
        "limit {limit}/s, --rate {}, {rows} rows, {latency_ms} ms latency: ideal {ideal:.1} s",
        f64::from(limit) * times
    );
    println!("| limiter | run | took | of N/R | succeeded | 429s | requests |");
    println!("|---|---|---|---|---|---|---|");
    for (shape, name) in SHAPES {
        for run_number in 1..=runs {
            let simulator = common::simulator(SimulatorConfig {
                latency: Duration::from_millis(latency_ms),
                rate_limit: NonZeroU32::new(limit).map(RateLimit::per_second),
                limiter: shape,
                ..SimulatorConfig::default()
            })
            .await?;
            let folder = tempfile::tempdir()?;
            let input = common::users_file(folder.path(), rows)?;
            let outcome = run(RunConfig {
                rate: f64::from(limit) * times,
                retry: RetryPolicy {
                    retries: 10,
                    ..RetryPolicy::default()
                },
                ..common::run_config(&simulator, input, folder.path())
            })
            .await?;
            let summary = &outcome.summary;
            println!(
                "| {name} | {run_number} | {:.2} s | {:.3}x | {} | {} | {} |",
                summary.elapsed_seconds,
                summary.elapsed_seconds / ideal,
                summary.succeeded,
                summary.throttled,
                summary.requests,
            );
        }
    }
    Ok(())
}
