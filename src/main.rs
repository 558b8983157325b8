//! The binary's edge: parse arguments, set up logging and the runtime, execute the command,
//! and hand back the exit code it ends with (the table in docs/cli.md).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use pingone_bypass::cli::Cli;
use pingone_bypass::outcome::exit;
use pingone_bypass::record::log_format::{LogFormat, LogWriter};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.log_format;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(LogWriter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(filter)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(LogWriter)
            .with_env_filter(filter)
            .init(),
    }
    let code = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime
            .block_on(pingone_bypass::commands::execute(cli.command, format))
            .unwrap_or_else(|error| {
                format.error(&error.to_string());
                error.exit_code()
            }),
        Err(error) => {
            format.error(&format!("cannot start the async runtime: {error}"));
            exit::USAGE
        }
    };
    ExitCode::from(code)
}
