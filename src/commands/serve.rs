//! `serve` from the command line: the same checks a run makes, made before the page opens, the
//! page's address on standard output, and the page served until Ctrl-C or SIGTERM.

use std::io::Write;

use crate::cli::connection::{ConnectionArgs, CredentialSettings};
use crate::cli::request::{RunConfigError, RunRequest};
use crate::cli::run::{GrantArgs, RowsArgs};
use crate::cli::serve::ServeArgs;
use crate::cli::simulate::{rehearse_on, simulated_tenant};
use crate::commands::CommandError;
use crate::commands::signals::Signals;
use crate::config::{Mode, Target};
use crate::outcome::exit;
use crate::record::log_format::LogFormat;
use crate::serve::{KeyRenewal, ServeConfig, start};
use crate::simulator::Simulator;

/// The control socket in the work folder, through which `serve --new-key` reaches the running
/// server. A socket rather than a signal to a process ID, which a stale file could point at
/// another process.
const CONTROL_SOCKET: &str = "serve.sock";

/// How long a stopping server waits for its grants to record their rows.
const STOP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// What `--new-key` sends, and how long it waits for the answer.
const NEW_KEY_REQUEST: &[u8] = b"new-key\n";
const NEW_KEY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves the upload page until stopped; exit 2 when it cannot start.
pub async fn serve(args: ServeArgs, format: LogFormat) -> Result<u8, CommandError> {
    if args.new_key {
        return Ok(ask_for_new_key(&args.workdir, format).await);
    }
    // With --simulate, one simulator serves every run of the page, so that the plan's lookups
    // and the grants see the same tenant.
    let simulator = if args.simulate {
        Some(Simulator::start(simulated_tenant(), ([127, 0, 0, 1], 0).into()).await?)
    } else {
        None
    };
    let config = match serve_config(&args, simulator.as_ref()) {
        Ok(config) => config,
        Err(error) => {
            format.error(&error.to_string());
            return Ok(exit::USAGE);
        }
    };
    let workdir = config.workdir.clone();
    let (url, keys, serving) = match start(config).await {
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
    let control = match listen_for_new_keys(&workdir, keys.clone()) {
        Ok(control) => Some(control),
        Err(error) => {
            format.say(
                crate::record::log_format::Level::Warn,
                &format!(
                    "serve --new-key will not reach this server: cannot listen on {}: {error}",
                    workdir.join(CONTROL_SOCKET).display()
                ),
                serde_json::Map::new(),
            );
            None
        }
    };
    let mut stop = Signals::listen()?;
    tokio::select! {
        served = serving => served.map_err(CommandError::Serving)?,
        () = stop.next() => {
            format.say(
                crate::record::log_format::Level::Warn,
                "stopping: every grant under way is interrupted and recorded before the server ends (interrupt again to end at once)",
                serde_json::Map::new(),
            );
            tokio::select! {
                () = keys.stop_runs(STOP_PATIENCE) => {}
                () = stop.next() => {}
            }
        }
    }
    if let Some((task, socket)) = control {
        task.abort();
        let _ = std::fs::remove_file(socket);
    }
    drop(simulator);
    Ok(exit::SUCCESS)
}

/// What the page's runs get: the connection (pointed at `simulator` when there is one) and its
/// credentials, checked as a run checks them; or why they cannot be used.
fn serve_config(
    args: &ServeArgs,
    simulator: Option<&Simulator>,
) -> Result<ServeConfig, RunConfigError> {
    let mut connection = args.connection.clone();
    let (credentials, target) = match simulator {
        Some(simulator) => (
            rehearse_on(simulator, &mut connection.endpoint),
            "to the built-in simulator started with this server".to_owned(),
        ),
        None => {
            let credentials = CredentialSettings::from_process_environment();
            let target = would_send(&connection, args.max_window, &credentials)?;
            (credentials, target)
        }
    };
    Ok(ServeConfig {
        listen: args.listen,
        workdir: args.workdir.clone(),
        connection,
        max_window: args.max_window,
        credentials,
        target,
        rehearsal: simulator.is_some(),
        connections: args.connections,
        audit_wait: args.audit_wait,
    })
}

/// Answers `serve --new-key` on the work folder's control socket (readable by this user
/// alone) with a fresh key's address.
fn listen_for_new_keys(
    workdir: &std::path::Path,
    keys: KeyRenewal,
) -> std::io::Result<(tokio::task::JoinHandle<()>, std::path::PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = workdir.join(CONTROL_SOCKET);
    // A socket file left by a server that was killed answers no one; one that answers belongs
    // to a server still running here.
    if std::os::unix::net::UnixStream::connect(&socket).is_err() {
        let _ = std::fs::remove_file(&socket);
    }
    let listener = tokio::net::UnixListener::bind(&socket)?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let keys = keys.clone();
            tokio::spawn(async move {
                let mut request = [0_u8; 16];
                let read = tokio::time::timeout(NEW_KEY_PATIENCE, stream.read(&mut request)).await;
                if matches!(read, Ok(Ok(n)) if request.get(..n) == Some(NEW_KEY_REQUEST)) {
                    let url = keys.new_key();
                    tracing::info!("a new launch key was handed out through {CONTROL_SOCKET}");
                    let _ = stream.write_all(format!("url: {url}\n").as_bytes()).await;
                }
            });
        }
    });
    Ok((task, socket))
}

/// `serve --new-key`: the running server's new address on standard output; exit 2 when no
/// server answers on the work folder.
async fn ask_for_new_key(workdir: &std::path::Path, format: LogFormat) -> u8 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = workdir.join(CONTROL_SOCKET);
    let asked = tokio::time::timeout(NEW_KEY_PATIENCE, async {
        let mut stream = tokio::net::UnixStream::connect(&socket).await?;
        stream.write_all(NEW_KEY_REQUEST).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    })
    .await;
    match asked {
        Ok(Ok(answer)) if answer.starts_with("url: ") => {
            print!("{answer}");
            exit::SUCCESS
        }
        Ok(Ok(_)) => {
            format.error(&format!(
                "the server on {} did not hand out a key; is it this version of pingone-bypass?",
                workdir.display()
            ));
            exit::USAGE
        }
        Ok(Err(error)) => {
            format.error(&format!(
                "no serve is running on --workdir {} ({error}); start one with pingone-bypass serve --workdir {}",
                workdir.display(),
                workdir.display()
            ));
            exit::USAGE
        }
        Err(_) => {
            format.error(&format!(
                "the serve on --workdir {} did not answer within {} seconds",
                workdir.display(),
                NEW_KEY_PATIENCE.as_secs()
            ));
            exit::USAGE
        }
    }
}

/// The checks a run with the page's options makes, now rather than at the first upload, and
/// where its requests would go (credentials named, never shown).
fn would_send(
    connection: &ConnectionArgs,
    max_window: std::time::Duration,
    credentials: &CredentialSettings,
) -> Result<String, RunConfigError> {
    let plan = RunRequest {
        version: crate::cli::request::REQUEST_VERSION,
        mode: Mode::Plan { lookups: false },
        rows: RowsArgs {
            connection: connection.clone(),
            ..RowsArgs::default()
        },
        grant: GrantArgs {
            max_window,
            ..GrantArgs::default()
        },
    };
    Ok(
        match plan.to_config(chrono::Utc::now(), credentials)?.target {
            Target::Offline { would_send } => would_send,
            Target::PingOne { .. } => String::new(),
        },
    )
}
