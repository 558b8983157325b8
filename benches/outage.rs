//! An outage mid-run: the simulator answers every API request 503, without `Retry-After`, from
//! its 4th second for 30 s, with 30 ms latency and no rate limit; 400 rows at `--rate 40` (10 s
//! of sending). The ideal is 10 s + 30 s; the target is every row succeeding within 1.15x that,
//! at most 2 requests a second while PingOne is down, and the rate back to `--rate` within 5 s
//! of PingOne answering again. Prints each run's figures.
//!
//! `cargo bench --bench outage -- [--rate R] [--rows N] [--from S] [--lasting S] [--runs K]`
//! (default: R = 40, N = 400, S = 4 and 30, K = 1).

mod common;

use std::time::Duration;

use anyhow::Context;
use pingone_bypass::config::RunConfig;
use pingone_bypass::run::run;
use pingone_bypass::simulator::{Outage, PutArrivals, SimulatorConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut rate, mut rows, mut from, mut lasting, mut runs) =
        (40.0_f64, 400_usize, 4_u64, 30_u64, 1_usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match arg.as_str() {
            "--rate" => rate = value()?.parse()?,
            "--rows" => rows = value()?.parse()?,
            "--from" => from = value()?.parse()?,
            "--lasting" => lasting = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            _ => {}
        }
    }
    for run_number in 1..=runs {
        let simulator = common::simulator(SimulatorConfig {
            latency: Duration::from_millis(30),
            outage: Some(Outage {
                from: Duration::from_secs(from),
                lasting: Duration::from_secs(lasting),
            }),
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
        let ideal = rows as f64 / rate + lasting as f64;
        let summary = &outcome.summary;
        let stats = simulator.stats();
        let arrivals = simulator.put_arrivals();
        let down = stats.responses(503);
        let recovered = recovery(&arrivals, from + lasting, rate);
        println!(
            "run {run_number}: {} of {rows} succeeded in {:.2}s = {:.3}x the ideal {ideal:.0}s; {down} requests while down = {:.2}/s; {} retries; back to 90% of --rate {} after it answered",
            summary.succeeded,
            summary.elapsed_seconds,
            summary.elapsed_seconds / ideal,
            down as f64 / lasting as f64,
            summary.retries,
            recovered.map_or_else(
                || "never".to_owned(),
                |after| format!("{:.2}s", after.as_secs_f64())
            ),
        );
    }
    Ok(())
}

/// How long after `ended_at` seconds the PUTs arriving within one second first reached 90% of
/// `rate` (or all that were left, when fewer remained).
fn recovery(arrivals: &PutArrivals, ended_at: u64, rate: f64) -> Option<Duration> {
    let bucket = PutArrivals::BUCKET;
    let buckets = arrivals.per_bucket();
    let start =
        usize::try_from(Duration::from_secs(ended_at).as_millis() / bucket.as_millis()).ok()?;
    let width = usize::try_from(Duration::from_secs(1).as_millis() / bucket.as_millis()).ok()?;
    let remaining: u64 = buckets.iter().skip(start).map(|&n| u64::from(n)).sum();
    let wanted = ((rate * 0.9) as u64).min(remaining);
    (start..buckets.len()).find_map(|index| {
        let in_window: u64 = buckets
            .iter()
            .skip(index)
            .take(width)
            .map(|&n| u64::from(n))
            .sum();
        (in_window >= wanted)
            .then(|| bucket * u32::try_from(index - start + width).unwrap_or(u32::MAX))
    })
}
