//! Overhead: `run`, unthrottled, against the in-process simulator with no latency, compared
//! with a raw HTTP loop that sends the same PUTs with the same client library and concurrency
//! and nothing else (no reading, validation, throttle, retries or results). Alternates the two
//! and prints each figure, the medians and their ratio.
//!
//! `cargo bench --bench overhead -- [--rows N] [--concurrency C] [--runs K]`
//! (default: 100,000 rows, 32, 3 runs of each).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use pingone_bypass::config::RunConfig;
use pingone_bypass::run::run;
use pingone_bypass::simulator::{SAMPLE_WORKFORCE_ENVIRONMENT, SimulatorConfig};
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut rows, mut concurrency, mut runs) = (100_000_usize, 32_usize, 3_usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match arg.as_str() {
            "--rows" => rows = value()?.parse()?,
            "--concurrency" => concurrency = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            _ => {}
        }
    }
    let simulator = common::simulator(SimulatorConfig::default()).await?;
    let token = simulator.issue_token();
    let folder = tempfile::tempdir()?;
    let (mut raw_rates, mut tool_rates) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let users: Arc<Vec<Uuid>> = Arc::new((0..rows).map(|_| Uuid::new_v4()).collect());
        let raw = raw_loop(&simulator.api_url(), &token, &users, concurrency).await?;
        println!(
            "raw HTTP loop: {rows} PUTs in {:.2}s = {raw:.0}/s",
            rows as f64 / raw
        );
        raw_rates.push(raw);

        let input = common::users_file(folder.path(), rows)?;
        let started = Instant::now();
        let outcome = run(RunConfig {
            rate: 1e9,
            concurrency,
            overwrite: true,
            ..common::run_config(&simulator, input, folder.path())
        })
        .await?;
        let elapsed = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            outcome.summary.succeeded as usize == rows,
            "not every row succeeded"
        );
        let tool = rows as f64 / elapsed;
        println!("pingone-bypass run: {rows} rows in {elapsed:.2}s = {tool:.0}/s");
        tool_rates.push(tool);
    }
    let (raw, tool) = (median(&mut raw_rates), median(&mut tool_rates));
    println!(
        "median raw {raw:.0}/s, median run {tool:.0}/s, ratio {:.2} (target at least 0.8)",
        tool / raw
    );
    Ok(())
}

/// `concurrency` tasks PUT one bypass per user as fast as the server answers; returns PUTs/s.
async fn raw_loop(
    api_url: &str,
    token: &str,
    users: &Arc<Vec<Uuid>>,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, users) = (client.clone(), next.clone(), users.clone());
        let (api_url, token) = (api_url.to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(user) = users.get(index) else { return Ok::<_, reqwest::Error>(()) };
                let response = client
                    .put(format!("{api_url}/environments/{SAMPLE_WORKFORCE_ENVIRONMENT}/users/{user}/bypassMFA"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "bypassMFAEnabledUntil": "2031-01-02T03:04:05.678Z" }))
                    .send()
                    .await?;
                response.bytes().await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(users.len() as f64 / started.elapsed().as_secs_f64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
