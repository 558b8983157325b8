//! `serve` from the command line: the same checks a run makes, made before the page opens, the
//! page's address on standard output, and the page served until Ctrl-C or SIGTERM.

use std::io::Write;

use clap::Parser;

use crate::cli::connection::CredentialSettings;
use crate::cli::serve::ServeArgs;
use crate::cli::simulate::simulated_tenant;
use crate::cli::{Cli, Command};
use crate::commands::signals::Signals;
use crate::config::Target;
use crate::outcome::{CommandError, exit};
use crate::record::log_format::LogFormat;
use crate::serve::{ServeConfig, start};
use crate::simulator::Simulator;

/// Serves the upload page until stopped; exit 2 when it cannot start.
pub async fn serve(args: ServeArgs, format: LogFormat) -> Result<u8, CommandError> {
    // With --simulate, one simulator serves every run of the page, so that the plan's lookups
    // and the grants see the same tenant.
    let simulator = if args.simulate {
        Some(Simulator::start(simulated_tenant(), ([127, 0, 0, 1], 0).into()).await?)
    } else {
        None
    };
    let grant_flags = args.grant_flags();
    let (connection_flags, credentials, target) = match &simulator {
        Some(simulator) => (
            args.connection_flags(Some((simulator.api_url(), simulator.auth_url()))),
            CredentialSettings {
                client_id: Some(simulator.credentials().client_id.to_string()),
                client_secret: Some(simulator.credentials().client_secret.clone()),
                environment_id: Some(simulator.credentials().environment_id.to_string()),
                access_token: None,
            },
            "to the built-in simulator started with this server".to_owned(),
        ),
        None => {
            let flags = args.connection_flags(None);
            let credentials = CredentialSettings::from_process_environment();
            match would_send(&[flags.as_slice(), &grant_flags].concat(), &credentials) {
                Ok(target) => (flags, credentials, target),
                Err(message) => {
                    format.error(&message);
                    return Ok(exit::USAGE);
                }
            }
        }
    };
    let config = ServeConfig {
        listen: args.listen,
        workdir: args.workdir.clone(),
        connection_flags,
        grant_flags,
        credentials,
        target,
        rehearsal: simulator.is_some(),
    };
    let (url, serving) = match start(config).await {
        Ok(started) => started,
        Err(error) => {
            format.error(&error.to_string());
            return Ok(exit::USAGE);
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "url: {url}")?;
    stdout.flush()?;
    drop(stdout);
    let mut stop = Signals::listen()?;
    tokio::select! {
        served = serving => served.map_err(CommandError::Serving)?,
        () = stop.next() => {}
    }
    drop(simulator);
    Ok(exit::SUCCESS)
}

/// The checks a run with the page's flags makes, now rather than at the first upload, and
/// where its requests would go (credentials named, never shown).
fn would_send(flags: &[String], credentials: &CredentialSettings) -> Result<String, String> {
    let mut argv = vec![
        "pingone-bypass".to_owned(),
        "run".to_owned(),
        "-".to_owned(),
        "--dry-run".to_owned(),
    ];
    argv.extend(flags.iter().cloned());
    match Cli::try_parse_from(argv).map(|cli| cli.command) {
        Ok(Command::Run(run)) => match run.to_config(chrono::Utc::now(), credentials) {
            Ok(config) => match config.target {
                Target::DryRun { would_send } => Ok(would_send),
                _ => Ok(String::new()),
            },
            Err(error) => Err(error.to_string()),
        },
        Ok(_) => Ok(String::new()),
        Err(error) => Err(error.to_string()),
    }
}
