//! `simulate` from the command line: the simulator started, its addresses and a worker
//! application's credentials on standard output, served until Ctrl-C or SIGTERM.

use std::io::Write;

use secrecy::ExposeSecret;

use crate::cli::simulate::SimulateArgs;
use crate::commands::CommandError;
use crate::commands::signals::Signals;
use crate::outcome::exit;
use crate::simulator::Simulator;

/// Serves the simulator until stopped.
pub async fn simulate(args: &SimulateArgs) -> Result<u8, CommandError> {
    let config = args.to_config()?;
    let seed = config.seed;
    // Listening before the startup lines go out means a script that reads them and at once
    // sends SIGTERM still gets a clean stop.
    let mut stop = Signals::listen()?;
    let simulator = Simulator::start(config, args.listen).await?;
    let credentials = simulator.credentials();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "api-url: {}", simulator.api_url())?;
    writeln!(stdout, "auth-url: {}", simulator.auth_url())?;
    writeln!(stdout, "environment-id: {}", credentials.environment_id)?;
    writeln!(stdout, "client-id: {}", credentials.client_id)?;
    writeln!(
        stdout,
        "client-secret: {}",
        credentials.client_secret.expose_secret()
    )?;
    // Kept until the simulator stops, then removed: it is of use only while it serves.
    let ca_file = match simulator.ca_pem() {
        Some(pem) => {
            let path = std::env::temp_dir().join(format!(
                "pingone-bypass-simulator-{}-ca.pem",
                std::process::id()
            ));
            std::fs::write(&path, pem).map_err(|source| CommandError::CaFile {
                path: path.clone(),
                source,
            })?;
            writeln!(stdout, "ca-file: {}", path.display())?;
            Some(path)
        }
        None => None,
    };
    stdout.flush()?;
    drop(stdout);
    tracing::info!(seed, "simulator running; stop it with Ctrl-C");
    stop.next().await;
    simulator.shutdown().await;
    if let Some(path) = ca_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(exit::SUCCESS)
}
