//! The binary's edge: parse arguments, set up logging and the runtime, execute the command,
//! and hand back the exit code it ends with (the table in docs/cli.md).

use std::process::ExitCode;

use clap::Parser;
use pingone_bypass::cli::Cli;
use pingone_bypass::outcome::exit;

fn main() -> ExitCode {
    pingone_bypass::logging::quiet_reader_panics();
    let cli = Cli::parse();
    let format = cli.log_format;
    pingone_bypass::logging::init(format);
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
