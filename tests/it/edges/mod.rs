//! The edges of a real deployment, through the binary: rate limiters that are not PingOne's,
//! tokens that stop working mid-run, a proxy that refuses, and connections that would lock the
//! page.

mod limiters;
mod proxy;
mod tokens;

use pingone_bypass::simulator::Simulator;

use crate::support::{RunFiles, run_command};

/// `run` of `files` against `simulator` at `--rate rate` through the binary: its output and
/// the summary JSON it wrote.
async fn run_with_summary(
    simulator: &Simulator,
    files: &RunFiles,
    rate: &str,
) -> (std::process::Output, serde_json::Value) {
    let summary = files.output.with_extension("summary.json");
    let summary_path = summary.to_string_lossy().into_owned();
    let output = run_command(
        simulator,
        &files.input,
        &["--rate", rate, "--summary-json", &summary_path],
    )
    .output()
    .await
    .expect("the run runs");
    let written = std::fs::read(&summary).unwrap_or_default();
    (output, serde_json::from_slice(&written).unwrap_or_default())
}
