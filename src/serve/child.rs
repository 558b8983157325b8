//! Every plan, grant and status check of the page runs in a child process of this same binary,
//! so that nothing one run does (a workbook that makes its reader abort, a panic, running out of
//! memory) can reach the server or another run: an abort ends that child alone, and the page
//! says so. The child is handed the run's typed request as a JSON file (`pingone-bypass request
//! FILE`, the same pipeline as `run` and `status`), asking for progress events (its counters and
//! rows needing attention as JSON lines on standard output, which the page follows) and a
//! summary file (its outcome), with `--log-format json` (its last error read from standard
//! error).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::cli::connection::{
    ACCESS_TOKEN_VARIABLE, CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE, CredentialSettings,
    ENVIRONMENT_ID_VARIABLE,
};
use crate::cli::request::RunRequest;
use crate::outcome::{Setting, exit};
use crate::record::progress::{LiveCounters, ProgressEvent, ProgressMode};
use crate::record::summary::Summary;

/// How a child's run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// It ran to its end (or was stopped, exit 130): its summary and exit code.
    Finished { summary: Summary, exit_code: u8 },
    /// It refused to start (exit 2 or 3), saying why, and the setting that would fix it.
    Refused(String, Option<Setting>),
    /// It ended without finishing: killed, aborted or crashed, with what it said last.
    Died(String),
}

/// The longest last words kept from a child's standard error.
const MOST_LAST_WORDS: usize = 2000;

/// What a child is asked to do, and where its outcome goes.
pub struct ChildRun<'a> {
    /// What it runs.
    pub request: RunRequest,
    /// Where the request is kept for it (and for whoever reads the run's folder later).
    pub request_file: &'a Path,
    /// Where it writes its summary.
    pub summary: &'a Path,
    /// The credentials it is handed, through its environment as the command line takes them.
    pub credentials: &'a CredentialSettings,
    /// Counters to follow its progress on, when the page shows it.
    pub follow: Option<Arc<LiveCounters>>,
    /// Cancelled to stop it as Ctrl-C would (rows in flight finish, the rest not attempted).
    pub stop: CancellationToken,
}

impl ChildRun<'_> {
    /// Starts the child and waits for its end.
    pub async fn run(self) -> Ended {
        let program = match std::env::current_exe() {
            Ok(program) => program,
            Err(error) => {
                return Ended::Refused(
                    format!("cannot find this program to start the run ({error})"),
                    None,
                );
            }
        };
        let mut request = self.request;
        request.rows.progress = if self.follow.is_some() {
            ProgressMode::Events
        } else {
            ProgressMode::Never
        };
        request.rows.summary_json = Some(self.summary.to_owned());
        if let Err(error) = keep_request(self.request_file, &request) {
            return Ended::Refused(
                format!(
                    "cannot keep the run's request in {}: {error}",
                    self.request_file.display()
                ),
                None,
            );
        }
        let mut command = child_command(
            &program,
            &["request".as_ref(), self.request_file.as_os_str()],
            self.credentials,
        );
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return Ended::Refused(format!("cannot start the run's process ({error})"), None);
            }
        };
        let events = child.stdout.take().map(|stdout| {
            let follow = self.follow.clone();
            tokio::spawn(follow_events(stdout, follow))
        });
        let last_words = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(last_words(stderr)));
        let status = tokio::select! {
            status = child.wait() => status,
            () = self.stop.cancelled() => {
                interrupt(&child);
                child.wait().await
            }
        };
        if let Some(events) = events {
            let _ = events.await;
        }
        let said = match last_words {
            Some(task) => task.await.unwrap_or_default(),
            None => LastWords::default(),
        };
        match status {
            Ok(status) => ended(status, said, self.summary),
            Err(error) => Ended::Died(format!("its end could not be read ({error})")),
        }
    }
}

/// How a child that exited with `status` ended, by its exit code, what it said last and the
/// summary it wrote.
fn ended(status: std::process::ExitStatus, said: LastWords, summary: &Path) -> Ended {
    match status.code() {
        Some(code) if code == i32::from(exit::USAGE) || code == i32::from(exit::NO_TOKEN) => {
            Ended::Refused(
                said.error
                    .or(said.other)
                    .unwrap_or_else(|| format!("the run refused to start (exit {code})")),
                said.setting,
            )
        }
        Some(code) => {
            let read = std::fs::read(summary)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Summary>(&bytes).ok());
            match (read, u8::try_from(code)) {
                (Some(summary), Ok(exit_code)) => Ended::Finished { summary, exit_code },
                _ => Ended::Died(died_saying(
                    format!("it ended with exit {code} and no summary"),
                    said,
                )),
            }
        }
        None => Ended::Died(died_saying(
            match status.signal() {
                Some(signal) => format!("it was ended by signal {signal}"),
                None => "it ended without an exit code".to_owned(),
            },
            said,
        )),
    }
}

/// The child's command: this program with `args` (`request FILE`, or a `verify`), its output
/// piped to the page, the credentials in its environment as the command line takes them (and
/// no others this process inherited).
fn child_command(
    program: &Path,
    args: &[&std::ffi::OsStr],
    settings: &CredentialSettings,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .args(["--log-format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in [
        ACCESS_TOKEN_VARIABLE,
        CLIENT_ID_VARIABLE,
        CLIENT_SECRET_VARIABLE,
        ENVIRONMENT_ID_VARIABLE,
    ] {
        command.env_remove(name);
    }
    let given = [
        (
            ACCESS_TOKEN_VARIABLE,
            settings
                .access_token
                .as_ref()
                .map(|token| token.expose_secret().to_owned()),
        ),
        (CLIENT_ID_VARIABLE, settings.client_id.clone()),
        (
            CLIENT_SECRET_VARIABLE,
            settings
                .client_secret
                .as_ref()
                .map(|secret| secret.expose_secret().to_owned()),
        ),
        (ENVIRONMENT_ID_VARIABLE, settings.environment_id.clone()),
    ];
    for (name, value) in given {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    command
}

/// Why a check against PingOne's audit log in a child gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum CheckNotMade {
    #[error("cannot find this program to start the check ({0})")]
    NoProgram(std::io::Error),
    #[error("cannot start the check's process ({0})")]
    NotStarted(std::io::Error),
    #[error("its end could not be read ({0})")]
    EndUnread(std::io::Error),
    /// It refused or failed (exit 2 or 3, or no summary): what it said last.
    #[error("{0}")]
    Refused(String),
}

/// How a check against PingOne's audit log in a child ended: its exit code (0 or 1) once it
/// wrote its summary at `summary`, or why it did not.
pub async fn audit_in_child(
    args: &[&std::ffi::OsStr],
    credentials: &CredentialSettings,
    summary: &Path,
) -> Result<(u8, serde_json::Value), CheckNotMade> {
    let program = std::env::current_exe().map_err(CheckNotMade::NoProgram)?;
    let mut child = child_command(&program, args, credentials)
        .spawn()
        .map_err(CheckNotMade::NotStarted)?;
    let said = match child.stderr.take() {
        Some(stderr) => last_words(stderr).await,
        None => LastWords::default(),
    };
    let status = child.wait().await.map_err(CheckNotMade::EndUnread)?;
    let written = std::fs::read(summary)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    match (
        status.code().and_then(|code| u8::try_from(code).ok()),
        written,
    ) {
        (Some(code @ (exit::SUCCESS | exit::UNFINISHED)), Some(written)) => Ok((code, written)),
        (Some(code), _) => Err(CheckNotMade::Refused(
            said.error
                .or(said.other)
                .unwrap_or_else(|| format!("the check ended with exit {code}")),
        )),
        (None, _) => Err(CheckNotMade::Refused(died_saying(
            "the check was ended by a signal".to_owned(),
            said,
        ))),
    }
}

/// `request` as JSON at `path`, readable by this user alone: it names files, never a secret
/// (credentials reach the child through its environment).
fn keep_request(path: &Path, request: &RunRequest) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let json = serde_json::to_vec_pretty(request).map_err(std::io::Error::other)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(&json)
}

fn died_saying(how: String, said: LastWords) -> String {
    match said.error.or(said.other) {
        Some(words) => format!("{how}; its last words: {words}"),
        None => how,
    }
}

/// Asks the child to stop as Ctrl-C does.
fn interrupt(child: &tokio::process::Child) {
    let Some(id) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        return;
    };
    // A child that has just ended cannot be signalled; its end is read next either way.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(id),
        nix::sys::signal::Signal::SIGINT,
    );
}

/// Reads the child's `--progress events` onto `follow`.
async fn follow_events(stdout: tokio::process::ChildStdout, follow: Option<Arc<LiveCounters>>) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Some(follow) = &follow else {
            continue;
        };
        match serde_json::from_str::<ProgressEvent>(&line) {
            Ok(ProgressEvent::Progress(snapshot)) => follow.set(&snapshot),
            Ok(ProgressEvent::Attention(row)) => follow.keep(row),
            Err(_) => {}
        }
    }
}

/// The last error a child logged, and the last line it wrote that was not a log line (a
/// panic's message).
#[derive(Debug, Default)]
struct LastWords {
    error: Option<String>,
    /// The setting the last error is about.
    setting: Option<Setting>,
    other: Option<String>,
}

async fn last_words(stderr: tokio::process::ChildStderr) -> LastWords {
    let mut said = LastWords::default();
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let kept = |text: &str| text.chars().take(MOST_LAST_WORDS).collect::<String>();
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(logged) => {
                if logged["level"] == "ERROR"
                    && let Some(message) = logged["fields"]["message"].as_str()
                {
                    said.error = Some(kept(message.strip_prefix("error: ").unwrap_or(message)));
                    said.setting = serde_json::from_value(logged["fields"]["setting"].clone()).ok();
                }
            }
            Err(_) if !line.trim().is_empty() => said.other = Some(kept(&line)),
            Err(_) => {}
        }
    }
    said
}
