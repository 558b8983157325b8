//! The binary's edge: parse arguments, set up logging and the runtime, run the command, and
//! hand back the exit code its outcome names (the table in docs/cli.md).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use pingone_bypass::cli::{Cli, Command, CredentialSettings, RunArgs, SimulateArgs};
use pingone_bypass::outcome::{RunError, exit};
use pingone_bypass::record::log_format::{Level, LogFormat, LogWriter};
use pingone_bypass::row::Report;
use pingone_bypass::simulator::Simulator;
use secrecy::ExposeSecret;
use serde_json::Map;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.log_format;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(LogWriter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(filter())
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(LogWriter)
            .with_env_filter(filter())
            .init(),
    }
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                match cli.command {
                    Command::Run(args) => run(&args, format).await,
                    Command::Status(mut args) => {
                        args.report = Report::Status;
                        run(&args, format).await
                    }
                    Command::Simulate(args) => simulate(args).await,
                    Command::Verify(args) => Ok(verify(&args.results)),
                    Command::Serve(args) => serve(*args, format).await,
                    Command::Completions(args) => {
                        let mut command = Cli::command();
                        clap_complete::generate(
                            args.shell,
                            &mut command,
                            "pingone-bypass",
                            &mut std::io::stdout(),
                        );
                        Ok(exit::SUCCESS)
                    }
                    Command::Man => {
                        clap_mangen::Man::new(Cli::command())
                            .render(&mut std::io::stdout())
                            .context("cannot write the man page")?;
                        Ok(exit::SUCCESS)
                    }
                }
            })
        });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            error_line(format, &format!("{error:#}"));
            ExitCode::from(exit::USAGE)
        }
    }
}

fn error_line(format: LogFormat, message: &str) {
    format.say(Level::Error, &format!("error: {message}"), Map::new());
}

async fn run(args: &RunArgs, format: LogFormat) -> anyhow::Result<u8> {
    let settings = CredentialSettings::from_process_environment();
    let mut config = match args.to_config(chrono::Utc::now(), &settings) {
        Ok(config) => config,
        Err(error) => {
            error_line(format, &error.to_string());
            return Ok(exit::USAGE);
        }
    };
    config.log_format = format;
    let mut signals = Signals::listen()?;
    // Without a handler, a file-size limit (`ulimit -f`) kills the process at the first
    // write past it; with one, that write fails and the run stops sending and says where
    // every granted bypass is recorded.
    #[cfg(unix)]
    let _file_size_limit =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ))
            .context("cannot listen for SIGXFSZ (a file-size limit)")?;
    let interrupt = config.interrupt.clone();
    tokio::spawn(async move {
        signals.next().await;
        format.say(
            Level::Warn,
            "interrupted: letting requests in flight finish and recording the other rows as not_attempted (interrupt again to stop at once)",
            Map::new(),
        );
        interrupt.cancel();
        signals.next().await;
        format.say(
            Level::Warn,
            "stopped at once; every row answered so far is in the results or the journal",
            Map::new(),
        );
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
    match pingone_bypass::run::run(config).await {
        Ok(outcome) => {
            let mut lines = outcome.report().into_iter();
            if let Some(summary) = lines.next() {
                let mut fields = match outcome.summary.json(outcome.report) {
                    serde_json::Value::Object(fields) => fields,
                    _ => Map::new(),
                };
                fields.insert("results".to_owned(), outcome.results.clone().into());
                fields.insert("exit_code".to_owned(), outcome.exit_code().into());
                format.say(Level::Info, &summary, fields);
            }
            for line in lines {
                format.say(Level::Error, &line, Map::new());
            }
            Ok(outcome.exit_code())
        }
        Err(error) => {
            error_line(format, &error.to_string());
            if let RunError::Record(record) = &error {
                for row in &record.unrecorded {
                    let mut fields = Map::new();
                    fields.insert(
                        "environment_id".to_owned(),
                        row.environment_id.clone().into(),
                    );
                    fields.insert("user_id".to_owned(), row.user_id.clone().into());
                    fields.insert(
                        "bypass_mfa_enabled_until".to_owned(),
                        row.bypass_mfa_enabled_until.clone().into(),
                    );
                    format.say(
                        Level::Error,
                        &format!(
                            "granted, not recorded: environment_id={} user_id={} bypass_mfa_enabled_until={}",
                            row.environment_id, row.user_id, row.bypass_mfa_enabled_until
                        ),
                        fields,
                    );
                }
            }
            Ok(error.exit_code())
        }
    }
}

async fn serve(args: pingone_bypass::cli::ServeArgs, format: LogFormat) -> anyhow::Result<u8> {
    use pingone_bypass::serve::{ServeConfig, start};
    // With --simulate, one simulator serves every run of the page, so that the plan's lookups
    // and the grants see the same tenant.
    let simulator = if args.simulate {
        Some(
            Simulator::start(
                pingone_bypass::cli::simulated_tenant(),
                ([127, 0, 0, 1], 0).into(),
            )
            .await?,
        )
    } else {
        None
    };
    let (run_flags, credentials, target) = match &simulator {
        Some(simulator) => (
            args.run_flags(Some((simulator.api_url(), simulator.auth_url()))),
            CredentialSettings {
                client_id: Some(simulator.credentials().client_id.to_string()),
                client_secret: Some(simulator.credentials().client_secret.clone()),
                environment_id: Some(simulator.credentials().environment_id.to_string()),
                access_token: None,
            },
            "to the built-in simulator started with this server".to_owned(),
        ),
        None => {
            let flags = args.run_flags(None);
            let credentials = CredentialSettings::from_process_environment();
            // The same checks a run makes, now rather than at the first upload, and the
            // description of where runs go (credentials named, never shown).
            let mut argv = vec![
                "pingone-bypass".to_owned(),
                "run".to_owned(),
                "-".to_owned(),
                "--dry-run".to_owned(),
            ];
            argv.extend(flags.iter().cloned());
            let target = match Cli::try_parse_from(argv).map(|cli| cli.command) {
                Ok(Command::Run(run)) => match run.to_config(chrono::Utc::now(), &credentials) {
                    Ok(config) => match config.target {
                        pingone_bypass::config::Target::DryRun { would_send } => would_send,
                        _ => String::new(),
                    },
                    Err(error) => {
                        error_line(format, &error.to_string());
                        return Ok(exit::USAGE);
                    }
                },
                Ok(_) => String::new(),
                Err(error) => {
                    error_line(format, &error.to_string());
                    return Ok(exit::USAGE);
                }
            };
            (flags, credentials, target)
        }
    };
    let config = ServeConfig {
        listen: args.listen,
        workdir: args.workdir.clone(),
        run_flags,
        credentials,
        target,
    };
    let (url, serving) = match start(config).await {
        Ok(started) => started,
        Err(error) => {
            error_line(format, &error.to_string());
            return Ok(exit::USAGE);
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "url: {url}")?;
    stdout.flush()?;
    drop(stdout);
    let mut stop = Signals::listen()?;
    tokio::select! {
        served = serving => served.context("the page's server stopped")?,
        () = stop.next() => {}
    }
    drop(simulator);
    Ok(exit::SUCCESS)
}

fn verify(results: &std::path::Path) -> u8 {
    use pingone_bypass::record::manifest::{Verified, verify};
    match verify(results) {
        Ok(Verified::Matches { sha256 }) => {
            println!(
                "{}: matches its run record (SHA-256 {sha256})",
                results.display()
            );
            exit::SUCCESS
        }
        Ok(Verified::Altered { recorded, found }) => {
            println!(
                "{}: ALTERED since the run wrote it (SHA-256 {found}, the run record says {recorded})",
                results.display()
            );
            exit::UNFINISHED
        }
        Err(error) => {
            eprintln!("error: {error}");
            exit::USAGE
        }
    }
}

async fn simulate(args: Box<SimulateArgs>) -> anyhow::Result<u8> {
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
            std::fs::write(&path, pem)
                .with_context(|| format!("cannot write the CA file {}", path.display()))?;
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
