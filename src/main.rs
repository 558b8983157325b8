//! The binary's edge: parse arguments, set up logging and the runtime, run the command, and
//! map its outcome to an exit code (see `shared/cli-contract.md`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use pingone_bypass::cli::{Cli, Command, CredentialSettings, RunArgs, SimulateArgs};
use pingone_bypass::run::Target;
use pingone_bypass::simulator::Simulator;
use secrecy::ExposeSecret;

/// Some rows failed, are invalid or were not attempted.
const EXIT_UNFINISHED: u8 = 1;
/// Usage, configuration or input-file error; nothing was sent.
const EXIT_USAGE: u8 = 2;
/// PingOne rejected the credentials; the remaining rows are `not_attempted`.
const EXIT_CREDENTIALS_REJECTED: u8 = 3;
/// Interrupted by Ctrl-C or SIGTERM after requests in flight finished and results were written.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                match cli.command {
                    Command::Run(args) => run(&args).await,
                    Command::Simulate(args) => simulate(args).await,
                }
            })
        });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

async fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let settings = CredentialSettings::from_process_environment();
    let config = match args.to_config(chrono::Utc::now(), &settings) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let dry_run = matches!(config.target, Target::DryRun);
    let results = config.output.describe();
    let mut signals = Signals::listen()?;
    let interrupt = config.interrupt.clone();
    tokio::spawn(async move {
        signals.next().await;
        eprintln!(
            "interrupted: letting requests in flight finish and recording the other rows as not_attempted (interrupt again to stop at once)"
        );
        interrupt.cancel();
        signals.next().await;
        eprintln!("stopped at once; the results written so far are kept");
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
    match pingone_bypass::run::run(config).await {
        Ok(outcome) => {
            eprintln!(
                "pingone-bypass: {}; results in {results}",
                outcome.summary.line(dry_run)
            );
            if outcome.interrupted {
                return Ok(ExitCode::from(EXIT_INTERRUPTED));
            }
            if let Some(reason) = outcome.aborted {
                eprintln!("error: {reason}");
                return Ok(ExitCode::from(EXIT_CREDENTIALS_REJECTED));
            }
            if let Some(error) = outcome.input_error {
                eprintln!("error: {error}; the rows after it were not read");
                return Ok(ExitCode::from(EXIT_UNFINISHED));
            }
            Ok(if outcome.summary.unfinished() > 0 {
                ExitCode::from(EXIT_UNFINISHED)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(if error.nothing_sent() {
                EXIT_USAGE
            } else {
                EXIT_UNFINISHED
            }))
        }
    }
}

async fn simulate(args: Box<SimulateArgs>) -> anyhow::Result<ExitCode> {
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
    stdout.flush()?;
    drop(stdout);
    tracing::info!(seed, "simulator running; stop it with Ctrl-C");
    stop.next().await;
    simulator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C and, on Unix, SIGTERM (what a service manager or `kill` sends), listened for from
/// the moment this is made, so that a signal that comes early is not lost.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            // Without the listener there is nothing to wait for but the process's end.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
