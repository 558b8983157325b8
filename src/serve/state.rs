//! What the upload page's handlers share: the server's state (its configuration, launch key
//! and session, every run and its phase, the bounds on uploads and runs' processes), the child
//! process every run is, and the answers every page gives (its security headers, its error
//! and busy pages).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use super::child::{ChildRun, Ended};
use super::pages;
use crate::cli::connection::{ConnectionArgs, CredentialSettings};
use crate::cli::request::RunRequest;
use crate::cli::run::{GrantArgs, RowsArgs};
use crate::config::Mode;
use crate::mode::Report;
use crate::record::progress::{AttentionRow, LiveCounters};
use crate::record::summary::Summary;

/// Uploads read at once: each is held in memory while it is read, so this bounds the memory
/// uploads take (at most 200 MiB).
pub const MOST_UPLOADS_AT_ONCE: usize = 4;

/// Runs' processes at once (plans, grants, status checks): each reads a file and may hold a
/// large sheet.
pub const MOST_RUNS_AT_ONCE: usize = 4;

/// The longest an upload may take to arrive: on loopback, 50 MiB takes well under a second.
pub(super) const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Uploads larger than this are refused with a message (a spreadsheet of a million users is
/// about 80 MiB as CSV; this page is for the helpdesk's lists).
pub const MOST_UPLOAD_BYTES: usize = 50 * 1024 * 1024;

/// The session cookie's name, with the port in it: browsers keep cookies per host, not per port,
/// so two `serve` processes open in one browser would otherwise overwrite each other's session.
pub(super) fn session_cookie(port: u16) -> String {
    format!("pingone_bypass_session_{port}")
}

/// What `serve` needs: where to listen and keep runs, and the `run` options every run gets.
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub workdir: PathBuf,
    /// The connection, rate and retry options, as given to `serve` (pointed at its simulator
    /// with `--simulate`): every run and status check gets them.
    pub connection: ConnectionArgs,
    /// `--max-window`: the bound on every grant's expiries.
    pub max_window: Duration,
    pub credentials: CredentialSettings,
    /// Says where runs go and with which kind of credential, never a value.
    pub target: String,
    /// `serve --simulate`: every run is a rehearsal against the server's own simulator.
    pub rehearsal: bool,
    /// `--connections`: the most connections open at once; by default, what the descriptor
    /// limit allows.
    pub connections: Option<usize>,
    /// `--audit-wait`: how long the audit check looks again for changes not yet shown.
    pub audit_wait: Duration,
}

impl ServeConfig {
    /// The request `mode` makes of `rows` and `grant` with what every run of the page gets from
    /// the server: its connection, whether it is a rehearsal, and for a grant or a plan the bound
    /// on expiries.
    pub(super) fn request(&self, mode: Mode, rows: RowsArgs, grant: GrantArgs) -> RunRequest {
        let max_window = match mode {
            Mode::Check | Mode::End { .. } => grant.max_window,
            Mode::Grant | Mode::Plan { .. } => self.max_window,
        };
        RunRequest {
            version: crate::cli::request::REQUEST_VERSION,
            mode,
            rows: RowsArgs {
                connection: self.connection.clone(),
                rehearsal: self.rehearsal,
                ..rows
            },
            grant: GrantArgs {
                max_window,
                ..grant
            },
        }
    }
}

/// One upload and what became of it.
pub(super) struct RunEntry {
    /// What the run does, by the report it writes: a grant of an upload's plan (`Grants`), a
    /// read-back of an upload's bypasses (`Status`), or an end of the bypasses a finished
    /// grant or status check holds (`Ends`).
    pub(super) kind: Report,
    pub(super) name: String,
    pub(super) folder: PathBuf,
    pub(super) plan: Summary,
    pub(super) phase: Phase,
}

/// What the page decides from an entry's kind and phase, said here once.
impl RunEntry {
    /// Whether it ends bypasses (an end), rather than granting or reading them.
    pub(super) fn ends(&self) -> bool {
        self.kind == Report::Ends
    }

    /// The rows its run goes through: a grant sends its plan's planned rows; an end reads every
    /// row of its input again.
    pub(super) fn rows_to_run(&self) -> u64 {
        if self.ends() {
            self.plan.total
        } else {
            self.plan.planned
        }
    }

    /// The bypasses it changed, once it finished: granted or ended; a status check changes none.
    fn changed(&self) -> u64 {
        match (&self.phase, self.kind) {
            (Phase::Done { summary, .. }, Report::Grants) => summary.succeeded,
            (Phase::Done { summary, .. }, Report::Ends) => summary.ended,
            _ => 0,
        }
    }

    /// Whether PingOne's audit log can confirm it: it changed some bypass.
    pub(super) fn audit_offered(&self) -> bool {
        self.changed() > 0
    }

    /// The file of the bypasses it can end, once it finished: a grant's results when it granted
    /// some, a status check's report when it found some active.
    pub(super) fn bypasses_to_end(&self) -> Option<&'static str> {
        match (&self.phase, self.kind) {
            (Phase::Done { summary, .. }, Report::Grants) if summary.succeeded > 0 => {
                Some("results.csv")
            }
            (Phase::Done { summary, .. }, Report::Status) if summary.active > 0 => {
                Some("status.csv")
            }
            _ => None,
        }
    }

    /// Whether its page offers to end its bypasses from the start: a grant that finished with
    /// some granted (the page's script offers it when that happens while the page is open).
    pub(super) fn end_offered(&self) -> bool {
        self.kind == Report::Grants && self.bypasses_to_end().is_some()
    }
}

pub(super) enum Phase {
    Planned,
    Running {
        live: Arc<LiveCounters>,
        interrupt: CancellationToken,
    },
    Done {
        summary: Summary,
        exit_code: u8,
        /// The rows that needed attention, as the run kept them.
        attention: Vec<AttentionRow>,
    },
    /// The run's process ended without finishing (or could not start): why, and the rows
    /// that needed attention before it did. Its journal holds every row it finished.
    Died {
        why: String,
        attention: Vec<AttentionRow>,
    },
}

pub(super) struct Server {
    pub(super) config: ServeConfig,
    pub(super) address: SocketAddr,
    /// The one-time launch key and the session it hands out, replaced together by `new_key`.
    pub(super) keys: Mutex<Keys>,
    pub(super) runs: Mutex<BTreeMap<u64, RunEntry>>,
    pub(super) next_run: AtomicU64,
    pub(super) uploads: Arc<tokio::sync::Semaphore>,
    pub(super) children: Arc<tokio::sync::Semaphore>,
}

pub(super) type Shared = State<Arc<Server>>;

/// A launch key, whether it has been used, and the session cookie its use hands out.
pub(super) struct Keys {
    pub(super) launch: String,
    pub(super) used: bool,
    pub(super) session: String,
}

impl Keys {
    pub(super) fn new() -> Self {
        Self {
            launch: random_token(),
            used: false,
            session: random_token(),
        }
    }
}

/// A way back in for a running server: a fresh one-time key, whose first use starts a new
/// session and ends the old one (a browser session that was lost cannot then be found and used).
#[derive(Clone)]
pub struct KeyRenewal(pub(super) Arc<Server>);

impl KeyRenewal {
    /// Interrupts every grant under way, as Ctrl-C would (rows in flight finish, the rest are
    /// recorded as not attempted), and waits up to `patience` for them to end: a server that
    /// stops leaves no grant half-recorded. One still going after that is ended with the server,
    /// and its journal holds what it finished.
    pub async fn stop_runs(&self, patience: Duration) {
        let running = || {
            self.0
                .runs()
                .values()
                .filter(|entry| matches!(entry.phase, Phase::Running { .. }))
                .count()
        };
        for entry in self.0.runs().values() {
            if let Phase::Running { interrupt, .. } = &entry.phase {
                interrupt.cancel();
            }
        }
        let deadline = tokio::time::Instant::now() + patience;
        while running() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's address with a new launch key.
    pub fn new_key(&self) -> String {
        let keys = Keys::new();
        let url = format!("http://{}/?key={}", self.0.address, keys.launch);
        *self.0.keys() = keys;
        url
    }
}

/// Which bound a request met.
#[derive(Debug, Clone, Copy)]
pub(super) enum Busy {
    Uploads,
    Runs,
}

/// The busy page for an upload, once its body has arrived: a browser still sending a file
/// when the connection closes shows a reset connection, not the page. The body is read and
/// dropped (within `UPLOAD_TIMEOUT` and the upload limit), never held.
pub(super) async fn turned_away(busy: Busy, mut form: Multipart) -> Response {
    let _ = tokio::time::timeout(UPLOAD_TIMEOUT, async {
        while let Ok(Some(mut field)) = form.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    })
    .await;
    busy.page()
}

impl Busy {
    /// The page saying to come back.
    pub(super) fn page(self) -> Response {
        let message = match self {
            Self::Uploads => format!(
                "The page is busy: {MOST_UPLOADS_AT_ONCE} uploads are being read. Try again in a few seconds."
            ),
            Self::Runs => format!(
                "The page is busy: {MOST_RUNS_AT_ONCE} runs are under way. Try again when one of them has finished."
            ),
        };
        page_error(StatusCode::SERVICE_UNAVAILABLE, &message)
    }
}

impl Server {
    pub(super) fn keys(&self) -> std::sync::MutexGuard<'_, Keys> {
        // Plain values that no panic can leave half-written.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for one more upload.
    pub(super) fn upload_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Busy> {
        self.uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Uploads)
    }

    /// A place for one more run's process.
    pub(super) fn run_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Busy> {
        self.children
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Runs)
    }

    /// The server's runs. The map holds plain data: a panic elsewhere cannot leave it
    /// half-updated, so a poisoned lock is taken as it is.
    pub(super) fn runs(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, RunEntry>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(super) fn random_token() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| {
            let index = rng.random_range(0..36u32);
            char::from_digit(index, 36).unwrap_or('x')
        })
        .collect()
}

/// The headers every answer carries: nothing but this page's own scripts and styles, no
/// framing, no sniffing.
pub(super) fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn refuse(status: StatusCode, message: &'static str) -> Response {
    secured((status, message).into_response())
}

/// `request` in a child process (`child`), kept as `<stem>.request.json` in the run's folder
/// with its summary as `summary`, its counters followed on `control`'s and stopped by its
/// token.
pub(super) async fn in_child(
    server: &Server,
    request: RunRequest,
    (stem, summary): (&Path, &Path),
    control: Option<(Arc<LiveCounters>, CancellationToken)>,
) -> Ended {
    let (follow, stop) = match control {
        Some((live, stop)) => (Some(live), stop),
        None => (None, CancellationToken::new()),
    };
    ChildRun {
        request,
        request_file: &stem.with_extension("request.json"),
        summary,
        credentials: &server.config.credentials,
        follow,
        stop,
    }
    .run()
    .await
}

/// A check in a child process (an upload's plan or who has a bypass, an end's plan): its summary
/// and exit code, or the page that says why there is none, its messages as `worded` puts them
/// and `died` wording a process that ended without finishing. The folder of `input` is not
/// kept when nothing came of it.
pub(super) async fn check_in_child(
    server: &Server,
    request: Result<RunRequest, (String, crate::outcome::Setting)>,
    stem: &Path,
    (input, worded): (&Path, impl Fn(&str) -> String),
    died: impl FnOnce(&str) -> String,
) -> Result<(Summary, u8), Response> {
    let summary = stem.with_extension("summary.json");
    let ended = match request {
        Ok(request) => in_child(server, request, (stem, &summary), None).await,
        Err((message, setting)) => Ended::Refused(message, Some(setting)),
    };
    if !matches!(ended, Ended::Finished { .. })
        && let Some(folder) = input.parent()
    {
        let _ = std::fs::remove_dir_all(folder);
    }
    match ended {
        Ended::Finished { summary, exit_code } => Ok((summary, exit_code)),
        Ended::Refused(message, setting) => Err(refusal_page(&worded(&message), setting)),
        Ended::Died(why) => Err(page_error(StatusCode::UNPROCESSABLE_ENTITY, &died(&why))),
    }
}

/// Writes `bytes` as `file` in a new `folder`, readable by this user alone; a folder already
/// there (another server on the same work folder) is never written into.
pub(super) fn keep_in_new_folder(folder: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().mode(0o700).create(folder)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?
        .write_all(bytes)
}

/// A plan or status check that refused to start: what it said, and, when one setting would fix
/// it, which field of the form that is.
pub(super) fn refusal_page(message: &str, setting: Option<crate::outcome::Setting>) -> Response {
    let message = crate::secrets::scrub(message);
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Html(pages::refusal(&message, setting.map(pages::field_of))),
    )
        .into_response()
}

pub(super) fn page_error(status: StatusCode, message: &str) -> Response {
    (status, Html(pages::error(&crate::secrets::scrub(message)))).into_response()
}
