//! What the benchmarks share: a simulator on loopback and an input file of new users.

// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pingone_bypass::config::{RunConfig, Target};
use pingone_bypass::gateway::auth::Credentials;
use pingone_bypass::input::InputSource;
use pingone_bypass::record::writer::OutputTarget;
use pingone_bypass::simulator::{SAMPLE_WORKFORCE_ENVIRONMENT, Simulator, SimulatorConfig};
use secrecy::SecretString;

pub async fn simulator(config: SimulatorConfig) -> anyhow::Result<Simulator> {
    Ok(Simulator::start(config, ([127, 0, 0, 1], 0).into()).await?)
}

/// Writes `rows` rows to `folder/users.csv`, each for a new user in the sample environment,
/// expiring eight hours after the run starts.
pub fn users_file(folder: &Path, rows: usize) -> anyhow::Result<PathBuf> {
    let path = folder.join("users.csv");
    let mut csv = String::from("environmentId,userId,until\n");
    for _ in 0..rows {
        csv.push_str(&format!(
            "{SAMPLE_WORKFORCE_ENVIRONMENT},{},8h\n",
            uuid::Uuid::new_v4()
        ));
    }
    std::fs::write(&path, csv)?;
    Ok(path)
}

/// A run of `input` against `simulator` with a token it issued, results in `folder`, with the
/// documented defaults for everything a benchmark does not set.
pub fn run_config(simulator: &Simulator, input: PathBuf, folder: &Path) -> RunConfig {
    RunConfig::new(
        InputSource::File(input),
        OutputTarget::File(folder.join("results.csv")),
        Target::PingOne {
            api_url: simulator.api_url(),
            credentials: Credentials::Token(SecretString::from(simulator.issue_token())),
        },
    )
}
