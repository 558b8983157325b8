//! What `kill -9` costs: a run under retries is killed at a random moment, then resumed to its
//! end; counted are the rows the simulator had granted before the kill that the resume sent
//! again. Only requests in flight at the kill (at most `--concurrency`) should be.
//!
//! `cargo bench --bench kill_resume -- [--trials N] [--rows N] [--concurrency C] [--binary PATH]`
//! (default: 10 trials of 1,500 rows at concurrency 16; the binary built with the bench).
//! Simulator: 10 ms latency, 3% 500s and 3% 502s; `--rate 3000`.

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use pingone_bypass::simulator::{
    FaultChances, SAMPLE_WORKFORCE_ENVIRONMENT, Simulator, SimulatorConfig,
};
use rand::RngExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut trials, mut rows, mut concurrency) = (10_usize, 1500_usize, 16_usize);
    let mut binary = env!("CARGO_BIN_EXE_pingone-bypass").to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match arg.as_str() {
            "--trials" => trials = value()?.parse()?,
            "--rows" => rows = value()?.parse()?,
            "--concurrency" => concurrency = value()?.parse()?,
            "--binary" => binary = value()?,
            _ => {}
        }
    }
    let mut resent_counts = Vec::new();
    for trial in 1..=trials {
        let simulator = common::simulator(SimulatorConfig {
            latency: Duration::from_millis(10),
            faults: FaultChances {
                status_500: 0.03,
                status_502: 0.03,
                ..FaultChances::default()
            },
            seed: trial as u64,
            ..SimulatorConfig::default()
        })
        .await?;
        let folder = tempfile::tempdir()?;
        let input = common::users_file(folder.path(), rows)?;
        let output = folder.path().join("results.csv");
        // Each trial's kill point is drawn from its number, so that a trial can be replayed.
        let kill_after =
            <rand::rngs::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(trial as u64)
                .random_range(rows / 10..rows * 9 / 10) as u64;
        let mut child = command(&binary, &simulator, &input, &output, concurrency, false)
            .spawn()
            .context("the binary starts")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while simulator.stats().total_puts() < kill_after && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.start_kill()?;
        child.wait().await?;
        let granted: HashSet<uuid::Uuid> = simulator
            .bypasses()
            .iter()
            .map(|bypass| bypass.user_id)
            .collect();
        let before = simulator.stats();
        let resumed = command(&binary, &simulator, &input, &output, concurrency, true)
            .status()
            .await?;
        anyhow::ensure!(resumed.success(), "the resume did not finish every row");
        let after = simulator.stats();
        let resent = granted
            .iter()
            .filter(|user| {
                after.puts_for(SAMPLE_WORKFORCE_ENVIRONMENT, **user)
                    > before.puts_for(SAMPLE_WORKFORCE_ENVIRONMENT, **user)
            })
            .count();
        println!(
            "trial {trial}: killed after {} PUTs with {} bypasses granted; the resume sent {resent} of them again ({:.2} of --concurrency {concurrency})",
            before.total_puts(),
            granted.len(),
            resent as f64 / concurrency as f64
        );
        resent_counts.push(resent);
    }
    resent_counts.sort_unstable();
    println!(
        "re-sent granted rows over {trials} trials: median {}, most {} (--concurrency {concurrency})",
        resent_counts[resent_counts.len() / 2],
        resent_counts.last().copied().unwrap_or_default()
    );
    Ok(())
}

fn command(
    binary: &str,
    simulator: &Simulator,
    input: &std::path::Path,
    output: &std::path::Path,
    concurrency: usize,
    resume: bool,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("run")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(["--rate", "3000", "--concurrency", &concurrency.to_string()])
        .args(["--progress", "never"])
        .args(resume.then_some("--resume"))
        .env_clear()
        .env("PINGONE_API_URL", simulator.api_url())
        .env("PINGONE_API_ACCESS_TOKEN", simulator.issue_token())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}
