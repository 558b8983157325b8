//! What each command does once its flags are parsed: the wiring between the command line and
//! the library's stages, so that the binary only parses, sets up logging and the runtime, and
//! turns the result into an exit code.

mod run;
mod serve;
mod signals;
mod simulate;
mod verify;

use clap::CommandFactory;

use crate::cli::simulate::SimulateConfigError;
use crate::cli::{Cli, Command};
use crate::outcome::exit;
use crate::record::log_format::LogFormat;
use crate::simulator::SimulatorError;

/// Runs `command` and returns the exit code it ends with (the table in docs/cli.md).
pub async fn execute(command: Command, format: LogFormat) -> Result<u8, CommandError> {
    match command {
        Command::Run(args) => run::run(args.request(), format).await,
        Command::Status(args) => run::run(args.request(), format).await,
        Command::End(args) => run::run(args.request(), format).await,
        Command::Request(args) => match read_request(&args.file) {
            Ok(request) => run::run(request, format).await,
            Err(error) => {
                format.error(&error.to_string());
                Ok(exit::USAGE)
            }
        },
        Command::Simulate(args) => simulate::simulate(&args).await,
        Command::Verify(args) => verify::verify(*args, format).await,
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
        Command::Man(args) => {
            let Some(folder) = args.out else {
                clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
                return Ok(exit::SUCCESS);
            };
            std::fs::create_dir_all(&folder)
                .and_then(|()| clap_mangen::generate_to(Cli::command(), &folder))
                .map_err(|source| CommandError::ManPages {
                    folder: folder.clone(),
                    source,
                })?;
            eprintln!(
                "wrote pingone-bypass.1 and one page per command into {}",
                folder.display()
            );
            Ok(exit::SUCCESS)
        }
    }
}

/// Why a request a front end wrote could not be run.
#[derive(Debug, thiserror::Error)]
enum RequestFileError {
    #[error("cannot read the request {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the request {path} is not one: {source}")]
    NotARequest {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "the request {path} is of another build's format ({}), and this pingone-bypass {} reads format {ours}: start the page and its runs from one installation",
        .found.map_or_else(|| "no version".to_owned(), |found| format!("version {found}")),
        env!("CARGO_PKG_VERSION")
    )]
    OtherVersion {
        path: std::path::PathBuf,
        found: Option<u64>,
        ours: u32,
    },
}

/// The request a front end wrote at `path`.
fn read_request(
    path: &std::path::Path,
) -> Result<crate::cli::request::RunRequest, RequestFileError> {
    let text = std::fs::read(path).map_err(|source| RequestFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let not_one = |source| RequestFileError::NotARequest {
        path: path.to_owned(),
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(not_one)?;
    let found = value.get("version").and_then(serde_json::Value::as_u64);
    let ours = crate::cli::request::REQUEST_VERSION;
    if found != Some(u64::from(ours)) {
        return Err(RequestFileError::OtherVersion {
            path: path.to_owned(),
            found,
            ours,
        });
    }
    serde_json::from_value(value).map_err(not_one)
}

/// A command that cannot go on for a reason of the machine's, not of a row: a signal that
/// cannot be listened for, standard output gone, a simulator or page that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot listen for {signal}: {source}")]
    Signal {
        signal: &'static str,
        source: std::io::Error,
    },
    #[error("cannot write to standard output: {0}")]
    Stdout(#[from] std::io::Error),
    #[error(transparent)]
    SimulatorFlags(#[from] SimulateConfigError),
    #[error("cannot start the built-in simulator: {0}")]
    Simulator(#[from] SimulatorError),
    #[error("cannot write the CA file {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the page's server stopped: {0}")]
    Serving(std::io::Error),
    #[error(
        "cannot write the man pages into {folder}: {source}; name a folder you can write to with --out"
    )]
    ManPages {
        folder: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl CommandError {
    /// None of these got as far as sending.
    pub fn exit_code(&self) -> u8 {
        exit::USAGE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_of_another_version_is_refused_naming_both_and_ours_is_read() {
        let folder = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let path = folder.path().join("run.request.json");
        let ours = crate::cli::request::RunRequest {
            version: crate::cli::request::REQUEST_VERSION,
            mode: crate::config::Mode::Check,
            rows: crate::cli::run::RowsArgs::default(),
            grant: crate::cli::run::GrantArgs::default(),
        };
        let mut json = serde_json::to_value(&ours).unwrap_or_default();
        std::fs::write(&path, json.to_string()).unwrap_or_else(|error| panic!("{error}"));
        assert!(read_request(&path).is_ok_and(|read| read.mode == crate::config::Mode::Check));
        for found in [Some(999), None] {
            match found {
                Some(version) => json["version"] = version.into(),
                None => {
                    json.as_object_mut().map(|fields| fields.remove("version"));
                }
            }
            std::fs::write(&path, json.to_string()).unwrap_or_else(|error| panic!("{error}"));
            let refused = read_request(&path).err().map(|error| error.to_string());
            assert!(
                refused.as_deref().is_some_and(|message| message
                    .contains("another build's format")
                    && message.contains(&format!(
                        "reads format {}",
                        crate::cli::request::REQUEST_VERSION
                    ))),
                "{refused:?}"
            );
        }
    }
}
