//! What each command does once its flags are parsed: the wiring between the command line and
//! the library's stages, so that the binary only parses, sets up logging and the runtime, and
//! turns the result into an exit code.

mod run;
mod serve;
mod signals;
mod simulate;
mod verify;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::outcome::{CommandError, exit};
use crate::record::log_format::LogFormat;

/// Runs `command` and returns the exit code it ends with (the table in docs/cli.md).
pub async fn execute(command: Command, format: LogFormat) -> Result<u8, CommandError> {
    match command {
        Command::Run(args) => {
            run::run(|start, settings| args.to_config(start, settings), format).await
        }
        Command::Status(args) => {
            run::run(|start, settings| args.to_config(start, settings), format).await
        }
        Command::Simulate(args) => simulate::simulate(&args).await,
        Command::Verify(args) => Ok(verify::verify(&args.results, format)),
        Command::Serve(args) => serve::serve(*args, format).await,
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "pingone-bypass",
                &mut std::io::stdout(),
            );
            Ok(exit::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(exit::SUCCESS)
        }
    }
}
