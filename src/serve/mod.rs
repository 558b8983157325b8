//! `pingone-bypass serve`: a page on loopback for the people who hold the spreadsheet during an
//! outage. Upload a file, see the plan (who, until when, where), confirm, watch the progress,
//! download the results. Every step is `run` itself: the plan is `run --dry-run --resolve`,
//! the grant is `run`, both built from the same command line with the uploaded file as INPUT
//! and run as a child process (`child`), so the page adds no second implementation of anything
//! and nothing a run does can stop the server. The page is safe by default: loopback
//! only, a one-time launch key exchanged for a `SameSite=Strict`, `HttpOnly` cookie, `Host` and
//! `Origin` checked against the listen address, a strict Content-Security-Policy, capped uploads.

mod child;
mod connections;
pub use connections::MOST_CONNECTIONS;
pub use pages::REHEARSAL_BANNER;
mod history;
mod pages;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use clap::ValueEnum as _;
use tokio_util::sync::CancellationToken;

use crate::cli::connection::{ConnectionArgs, CredentialSettings};
use crate::cli::request::RunRequest;
use crate::cli::run::{GrantArgs, RowsArgs};
use crate::config::Mode;
use crate::input::{HiddenRowsChoice, sheet_names};
use crate::outcome::Setting;
use crate::record::progress::AttentionRow;
use crate::record::progress::LiveCounters;
use crate::record::summary::Summary;
use child::{ChildRun, Ended};

/// Uploads read at once: each is held in memory while it is read, so this bounds the memory
/// uploads take (at most 200 MiB).
pub const MOST_UPLOADS_AT_ONCE: usize = 4;

/// Runs' processes at once (plans, grants, status checks): each reads a file and may hold a
/// large sheet.
pub const MOST_RUNS_AT_ONCE: usize = 4;

/// The longest an upload may take to arrive: on loopback, 50 MiB takes well under a second.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Uploads larger than this are refused with a message (a spreadsheet of a million users is
/// about 80 MiB as CSV; this page is for the helpdesk's lists).
pub const MOST_UPLOAD_BYTES: usize = 50 * 1024 * 1024;

/// The session cookie's name, with the port in it: browsers keep cookies per host, not per port,
/// so two `serve` processes open in one browser would otherwise overwrite each other's session.
fn session_cookie(port: u16) -> String {
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
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "--listen {0} is not a loopback address: the page may only be served to this machine (use 127.0.0.1 or [::1])"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the work folder {path}: {source}")]
    Workdir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One upload and what became of it.
struct RunEntry {
    name: String,
    folder: PathBuf,
    plan: Summary,
    phase: Phase,
}

enum Phase {
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

struct Server {
    config: ServeConfig,
    address: SocketAddr,
    /// The one-time launch key and the session it hands out, replaced together by `new_key`.
    keys: Mutex<Keys>,
    runs: Mutex<BTreeMap<u64, RunEntry>>,
    next_run: AtomicU64,
    uploads: Arc<tokio::sync::Semaphore>,
    children: Arc<tokio::sync::Semaphore>,
}

type Shared = State<Arc<Server>>;

/// A launch key, whether it has been used, and the session cookie its use hands out.
struct Keys {
    launch: String,
    used: bool,
    session: String,
}

impl Keys {
    fn new() -> Self {
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
pub struct KeyRenewal(Arc<Server>);

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
enum Busy {
    Uploads,
    Runs,
}

/// The busy page for an upload, once its body has arrived: a browser still sending a file
/// when the connection closes shows a reset connection, not the page. The body is read and
/// dropped (within `UPLOAD_TIMEOUT` and the upload limit), never held.
async fn turned_away(busy: Busy, mut form: Multipart) -> Response {
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
    fn page(self) -> Response {
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
    fn keys(&self) -> std::sync::MutexGuard<'_, Keys> {
        // Plain values that no panic can leave half-written.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for one more upload.
    fn upload_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Busy> {
        self.uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Uploads)
    }

    /// A place for one more run's process.
    fn run_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Busy> {
        self.children
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Runs)
    }

    /// The server's runs. The map holds plain data: a panic elsewhere cannot leave it
    /// half-updated, so a poisoned lock is taken as it is.
    fn runs(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, RunEntry>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Binds the listen address and returns the URL with its launch key, the way to a new key,
/// and the server.
pub async fn start(
    config: ServeConfig,
) -> Result<
    (
        String,
        KeyRenewal,
        impl std::future::Future<Output = std::io::Result<()>>,
    ),
    ServeError,
> {
    if !config.listen.ip().is_loopback() {
        return Err(ServeError::NotLoopback(config.listen));
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.workdir)
            .map_err(|source| ServeError::Workdir {
                path: config.workdir.clone(),
                source,
            })?;
    }
    let (runs, highest) = history::earlier(&config.workdir);
    let next_run = highest.saturating_add(1);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            address: config.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ServeError::Listen {
        address: config.listen,
        source,
    })?;
    if config.rehearsal {
        pages::mark_rehearsal();
    }
    let keys = Keys::new();
    let url = format!("http://{address}/?key={}", keys.launch);
    let server = Arc::new(Server {
        config,
        address,
        keys: Mutex::new(keys),
        runs: Mutex::new(runs),
        next_run: AtomicU64::new(next_run),
        uploads: Arc::new(tokio::sync::Semaphore::new(MOST_UPLOADS_AT_ONCE)),
        children: Arc::new(tokio::sync::Semaphore::new(MOST_RUNS_AT_ONCE)),
    });
    let app = Router::new()
        .route("/", get(home))
        .route("/page.js", get(script))
        .route("/page.css", get(style))
        .route("/plan", post(plan))
        .route("/sheets", post(sheets))
        .route("/status", get(status_form).post(status))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/start", post(start_run))
        .route("/runs/{id}/stop", post(stop_run))
        .route("/runs/{id}/resume", post(resume_run))
        .route("/runs/{id}/events", get(events))
        .route("/runs/{id}/{file}", get(download))
        .layer(DefaultBodyLimit::max(MOST_UPLOAD_BYTES))
        .layer(axum::middleware::from_fn_with_state(server.clone(), guard))
        .with_state(server.clone());
    Ok((url, KeyRenewal(server), connections::serve(listener, app)))
}

fn random_token() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| {
            let index = rng.random_range(0..36u32);
            char::from_digit(index, 36).unwrap_or('x')
        })
        .collect()
}

/// Every request: the `Host` (and any `Origin`) must be the listen address, so that a page
/// elsewhere cannot reach this one through DNS rebinding; then the session cookie, which only
/// the launch key's first use hands out.
async fn guard(State(server): Shared, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let ours = |value: Option<&HeaderValue>, with_scheme: bool| {
        value
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let value = if with_scheme {
                    value.strip_prefix("http://").unwrap_or("")
                } else {
                    value
                };
                let port = server.address.port();
                value == format!("127.0.0.1:{port}")
                    || value == format!("localhost:{port}")
                    || value == format!("[::1]:{port}")
                    || value == server.address.to_string()
            })
    };
    if !ours(headers.get(header::HOST), false) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this page answers only at its own address",
        );
    }
    if headers.contains_key(header::ORIGIN) && !ours(headers.get(header::ORIGIN), true) {
        return refuse(
            StatusCode::FORBIDDEN,
            "requests from other sites are refused",
        );
    }
    if let Some(key) = launch_key(request.uri().query()) {
        let session = {
            let mut keys = server.keys();
            let fits = key == keys.launch && !keys.used;
            keys.used |= fits;
            fits.then(|| keys.session.clone())
        };
        if let Some(session) = session {
            let mut response = Redirect::to(request.uri().path()).into_response();
            let cookie = format!(
                "{}={session}; HttpOnly; SameSite=Strict; Path=/",
                session_cookie(server.address.port()),
            );
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            return secured(response);
        }
        return refuse(
            StatusCode::FORBIDDEN,
            "this launch key has been used or is wrong; open the page from the browser that used it, or ask for a new key (pingone-bypass serve --workdir <its folder> --new-key)",
        );
    }
    let session = server.keys().session.clone();
    if session_of(headers, server.address.port()).as_deref() != Some(session.as_str()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "open the address serve printed (with its key) first",
        );
    }
    secured(next.run(request).await)
}

fn launch_key(query: Option<&str>) -> Option<String> {
    serde_urlencoded::from_str::<BTreeMap<String, String>>(query?)
        .ok()?
        .remove("key")
}

fn session_of(headers: &HeaderMap, port: u16) -> Option<String> {
    let name = session_cookie(port);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.to_owned())
}

/// The headers every answer carries: nothing but this page's own scripts and styles, no
/// framing, no sniffing.
fn secured(mut response: Response) -> Response {
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

fn refuse(status: StatusCode, message: &'static str) -> Response {
    secured((status, message).into_response())
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("page.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("page.css"),
    )
}

async fn home(State(server): Shared) -> Html<String> {
    let runs = server.runs();
    let listed: Vec<(u64, String, String)> = runs
        .iter()
        .rev()
        .map(|(id, entry)| {
            (
                *id,
                entry.name.clone(),
                phase_label(&entry.phase, &entry.folder),
            )
        })
        .collect();
    Html(pages::home(&server.config.target, &listed))
}

fn phase_label(phase: &Phase, folder: &Path) -> String {
    match phase {
        Phase::Died { why, .. } => {
            let held = history::journal_holds(folder);
            format!(
                "died: {why}. Its journal holds {} finished rows ({} granted); Resume finishes it without sending any of those again",
                held.rows, held.succeeded
            )
        }
        Phase::Planned => "planned, not started".to_owned(),
        Phase::Running { live, .. } => format!(
            "running: {} rows done",
            live.rows_done.load(Ordering::Relaxed)
        ),
        Phase::Done {
            summary, exit_code, ..
        } => format!(
            "finished (exit {exit_code}): {} succeeded, {} failed, {} invalid",
            summary.succeeded, summary.failed, summary.invalid
        ),
    }
}

/// The upload's fields, as the form sends them.
#[derive(Default)]
struct Upload {
    name: String,
    bytes: axum::body::Bytes,
    environment: String,
    until: String,
    timezone: String,
    sheet: String,
    encoding: String,
    hidden_rows: String,
}

impl Upload {
    /// The request `mode` makes of this upload kept at `input`, its report going to `output`:
    /// the server's own options and the form's fields, typed. A plan takes every field, a
    /// check those that say which rows to read.
    fn request(
        &self,
        server: &ServeConfig,
        mode: Mode,
        input: &Path,
        output: &Path,
    ) -> Result<RunRequest, (String, Setting)> {
        let filled = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        let hidden_rows = match self.hidden_rows.as_str() {
            "" => HiddenRowsChoice::default(),
            text => HiddenRowsChoice::from_str(text, true).map_err(|_| {
                (
                    format!("hidden rows {text:?} is not a choice: choose refuse, skip or include"),
                    Setting::HiddenRows,
                )
            })?,
        };
        let grant = match mode {
            Mode::Check => GrantArgs::default(),
            Mode::Grant | Mode::Plan { .. } => GrantArgs {
                until: filled(&self.until),
                timezone: filled(&self.timezone).unwrap_or_else(|| "UTC".to_owned()),
                max_window: server.max_window,
                ..GrantArgs::default()
            },
        };
        Ok(RunRequest {
            mode,
            rows: RowsArgs {
                input: Some(input.display().to_string()),
                output: Some(output.display().to_string()),
                environment: filled(&self.environment),
                sheet: filled(&self.sheet),
                encoding: filled(&self.encoding),
                hidden_rows,
                rehearsal: server.rehearsal,
                connection: server.connection.clone(),
                ..RowsArgs::default()
            },
            grant,
        })
    }

    /// `message` in the form's words, this upload named as the admin named it.
    fn worded(&self, message: &str, kept_as: &Path) -> String {
        pages::in_form_words(message, &self.name, &kept_as.display().to_string())
    }
}

/// The upload's fields, within `UPLOAD_TIMEOUT`.
async fn read_upload(form: Multipart) -> Result<Upload, String> {
    tokio::time::timeout(UPLOAD_TIMEOUT, read_fields(form))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the upload did not arrive within {} seconds; try again",
                UPLOAD_TIMEOUT.as_secs()
            ))
        })
}

async fn read_fields(mut form: Multipart) -> Result<Upload, String> {
    let mut upload = Upload::default();
    while let Some(field) = form.next_field().await.map_err(|error| {
        format!("the upload could not be read ({error}); files are limited to 50 MiB")
    })? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            upload.name = field.file_name().unwrap_or("upload.csv").to_owned();
            upload.bytes = field.bytes().await.map_err(|error| {
                format!("the file could not be read ({error}); files are limited to 50 MiB")
            })?;
        } else {
            let text = field.text().await.map_err(|error| error.to_string())?;
            let text = text.trim().to_owned();
            match name.as_str() {
                "env" => upload.environment = text,
                "until" => upload.until = text,
                "timezone" => upload.timezone = text,
                "sheet" => upload.sheet = text,
                "encoding" => upload.encoding = text,
                "hidden_rows" => upload.hidden_rows = text,
                _ => {}
            }
        }
    }
    if upload.bytes.is_empty() {
        return Err("choose a file to upload".to_owned());
    }
    Ok(upload)
}

/// The file's name as it is kept: its extension (which says CSV or which workbook) and
/// nothing that could reach another folder.
fn kept_name(name: &str) -> String {
    let extension = Path::new(name)
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase())
        .filter(|extension| {
            ["csv", "txt", "tsv", "xlsx", "xlsm", "xlsb", "xls", "ods"]
                .contains(&extension.as_str())
        })
        .unwrap_or_else(|| "csv".to_owned());
    format!("input.{extension}")
}

/// An upload kept in a new folder `<kind>-<id>` of the work folder.
struct Kept {
    /// The run's number.
    id: u64,
    folder: PathBuf,
    /// The kept file.
    input: PathBuf,
}

/// Reads the upload form and keeps its file; the error page when either fails.
async fn receive(server: &Server, kind: &str, form: Multipart) -> Result<(Upload, Kept), Response> {
    let _reading = match server.upload_slot() {
        Ok(slot) => slot,
        Err(busy) => return Err(turned_away(busy, form).await),
    };
    let upload = read_upload(form)
        .await
        .map_err(|message| page_error(StatusCode::BAD_REQUEST, &message))?;
    let id = server.next_run.fetch_add(1, Ordering::Relaxed);
    let folder = server.config.workdir.join(format!("{kind}-{id}"));
    let input = folder.join(kept_name(&upload.name));
    // A new folder, readable by this user alone; one already there (another server on the same
    // work folder) is never written into.
    let kept = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new().mode(0o700).create(&folder)?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&input)?
            .write_all(&upload.bytes)
    };
    kept()
        .map(|()| {
            history::keep(
                &folder,
                history::UPLOAD_RECORD,
                &history::UploadRecord {
                    name: upload.name.clone(),
                },
            );
        })
        .map_err(|error| {
            page_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot keep the upload in {}: {error}", folder.display()),
            )
        })?;
    Ok((upload, Kept { id, folder, input }))
}

/// The sheets of an uploaded workbook, for the form to offer (`{"sheets": [...]}`, or
/// `{"error": "..."}` with 422 when the file is not a workbook).
async fn sheets(State(server): Shared, form: Multipart) -> Response {
    let _reading = match server.upload_slot() {
        Ok(slot) => slot,
        Err(busy) => return turned_away(busy, form).await,
    };
    let listed = read_upload(form)
        .await
        .and_then(|upload| tokio::task::block_in_place(|| sheet_names(&upload.bytes)));
    match listed {
        Ok(names) => axum::Json(serde_json::json!({ "sheets": names })).into_response(),
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response(),
    }
}

async fn plan(State(server): Shared, form: Multipart) -> Response {
    let _running = match server.run_slot() {
        Ok(slot) => slot,
        Err(busy) => return turned_away(busy, form).await,
    };
    let (upload, Kept { id, folder, input }) = match receive(&server, "run", form).await {
        Ok(received) => received,
        Err(refused) => return refused,
    };
    let plan_file = folder.join("plan.csv");
    let planning = upload.request(
        &server.config,
        Mode::Plan { lookups: true },
        &input,
        &plan_file,
    );
    let checked = check_in_child(
        &server,
        planning,
        &folder.join("plan"),
        (&upload, &input),
        |why| {
            format!(
                "the file could not be planned: the process reading it ended ({}). Nothing was granted; the server and every other run go on. Save the file again from Excel, or export it as CSV, and upload it again.",
                upload.worded(why, &input)
            )
        },
    )
    .await;
    let outcome = match checked {
        Ok((summary, _)) => summary,
        Err(page) => return page,
    };
    let mut rows = pages::read_rows(&plan_file);
    for row in &mut rows {
        if let Some(message) = row.get_mut("error_message") {
            *message = upload.worded(message, &input);
        }
    }
    let html = pages::plan(id, &upload.name, &server.config.target, &outcome, &rows);
    server.runs().insert(
        id,
        RunEntry {
            name: upload.name,
            folder,
            plan: outcome,
            phase: Phase::Planned,
        },
    );
    Html(crate::secrets::scrub(&html)).into_response()
}

/// A check of an upload (its plan, or who has a bypass) in a child process: its summary and
/// exit code, or the page that says why there is none, `died` wording a process that ended
/// without finishing. An upload nothing came of is not kept.
async fn check_in_child(
    server: &Server,
    request: Result<RunRequest, (String, Setting)>,
    stem: &Path,
    (upload, input): (&Upload, &Path),
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
        Ended::Refused(message, setting) => {
            Err(refusal_page(&upload.worded(&message, input), setting))
        }
        Ended::Died(why) => Err(page_error(StatusCode::UNPROCESSABLE_ENTITY, &died(&why))),
    }
}

/// `request` in a child process (`child`), kept as `<stem>.request.json` in the run's folder
/// with its summary as `summary`, its counters followed on `control`'s and stopped by its
/// token.
async fn in_child(
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

async fn status_form(State(server): Shared) -> Html<String> {
    Html(pages::status_form(&server.config.target))
}

/// Who has a bypass now: `status` over the uploaded file, shown and kept for download.
async fn status(State(server): Shared, form: Multipart) -> Response {
    let _running = match server.run_slot() {
        Ok(slot) => slot,
        Err(busy) => return turned_away(busy, form).await,
    };
    let (upload, Kept { id, folder, input }) = match receive(&server, "status", form).await {
        Ok(received) => received,
        Err(refused) => return refused,
    };
    let report = folder.join("status.csv");
    let checking = upload.request(&server.config, Mode::Check, &input, &report);
    let checked = check_in_child(
        &server,
        checking,
        &folder.join("status"),
        (&upload, &input),
        |why| {
            format!(
                "the bypasses could not be read: the process reading the file ended ({why}); the server and every other run go on"
            )
        },
    )
    .await;
    let (summary, exit_code) = match checked {
        Ok(done) => done,
        Err(page) => return page,
    };
    let rows = pages::read_rows(&report);
    let html = pages::status(id, &upload.name, &summary, &rows);
    server.runs().insert(
        id,
        RunEntry {
            name: format!("who has a bypass: {}", upload.name),
            folder,
            plan: summary.clone(),
            phase: Phase::Done {
                summary,
                exit_code,
                attention: Vec::new(),
            },
        },
    );
    Html(crate::secrets::scrub(&html)).into_response()
}

async fn start_run(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    launch(&server, id, |phase| matches!(phase, Phase::Planned), false)
}

/// Finishes a run that died or was stopped: `run --resume` on its results, so that nothing
/// granted is sent again.
async fn resume_run(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    launch(&server, id, resumable, true)
}

/// A run that died or was stopped can be resumed, and one with rows not granted (failed, not
/// attempted) retried the same way: `--resume` sends exactly the rows without a grant.
fn resumable(phase: &Phase) -> bool {
    match phase {
        Phase::Died { .. } => true,
        Phase::Done { exit_code, .. } => {
            *exit_code == crate::outcome::exit::INTERRUPTED
                || *exit_code == crate::outcome::exit::UNFINISHED
        }
        Phase::Planned | Phase::Running { .. } => false,
    }
}

/// The words of the button that resumes a run, when it can be.
fn resume_label(phase: &Phase) -> Option<&'static str> {
    match phase {
        Phase::Done { exit_code, .. } if *exit_code == crate::outcome::exit::UNFINISHED => {
            Some(pages::RETRY)
        }
        phase if resumable(phase) => Some(pages::RESUME),
        _ => None,
    }
}

/// Starts run `id`'s grant in a child process when its phase allows (`may_start`), and shows
/// its page.
fn launch(
    server: &Arc<Server>,
    id: u64,
    may_start: impl Fn(&Phase) -> bool,
    resume: bool,
) -> Response {
    let mut runs = server.runs();
    let Some(entry) = runs.get_mut(&id) else {
        return page_error(StatusCode::NOT_FOUND, "no such run");
    };
    if !may_start(&entry.phase) {
        return Redirect::to(&format!("/runs/{id}")).into_response();
    }
    let running = match server.run_slot() {
        Ok(slot) => slot,
        Err(busy) => return busy.page(),
    };
    let live = Arc::new(LiveCounters::keeping_attention());
    live.total.store(entry.plan.planned, Ordering::Relaxed);
    let interrupt = CancellationToken::new();
    entry.phase = Phase::Running {
        live: live.clone(),
        interrupt: interrupt.clone(),
    };
    // The plan is the input: its rows carry the user IDs that names resolved to and the
    // exact expiries the page showed, so what is granted is what was confirmed, however
    // long after the check the button is pressed.
    let summary = entry.folder.join("summary.json");
    let folder = entry.folder.clone();
    let mut request = RunRequest {
        mode: Mode::Grant,
        rows: RowsArgs {
            input: Some(folder.join("plan.csv").display().to_string()),
            output: Some(folder.join("results.csv").display().to_string()),
            only: vec!["planned".to_owned()],
            rehearsal: server.config.rehearsal,
            connection: server.config.connection.clone(),
            ..RowsArgs::default()
        },
        grant: GrantArgs {
            max_window: server.config.max_window,
            ..GrantArgs::default()
        },
    };
    if resume {
        request.grant.resume = true;
        // The stopped attempt's summary is kept beside the new one.
        if summary.exists() {
            let _ = std::fs::rename(&summary, unused_name(&entry.folder, "summary", "json"));
        }
    }
    let server = server.clone();
    tokio::spawn(async move {
        let ended = in_child(
            &server,
            request,
            (&folder.join("run"), &summary),
            Some((live.clone(), interrupt)),
        )
        .await;
        let attention = live.take_attention();
        let end = match &ended {
            Ended::Finished { exit_code, .. } => history::EndRecord {
                exit_code: Some(*exit_code),
                died: None,
            },
            Ended::Refused(why, _) | Ended::Died(why) => history::EndRecord {
                exit_code: None,
                died: Some(why.clone()),
            },
        };
        history::keep(&folder, history::END_RECORD, &end);
        let phase = match ended {
            Ended::Finished { summary, exit_code } => Phase::Done {
                summary,
                exit_code,
                attention,
            },
            Ended::Refused(why, _) | Ended::Died(why) => {
                tracing::warn!(run = id, %why, "a run from the page did not finish");
                Phase::Died { why, attention }
            }
        };
        if let Some(entry) = server.runs().get_mut(&id) {
            entry.phase = phase;
        }
        drop(running);
    });
    Redirect::to(&format!("/runs/{id}")).into_response()
}

/// `<stem>.<n>.<extension>` in `folder` for the first `n` from 1 not taken.
fn unused_name(folder: &Path, stem: &str, extension: &str) -> PathBuf {
    (1_u32..)
        .map(|n| folder.join(format!("{stem}.{n}.{extension}")))
        .find(|path| !path.exists())
        .unwrap_or_else(|| folder.join(format!("{stem}.earlier.{extension}")))
}

async fn stop_run(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    if let Some(Phase::Running { interrupt, .. }) = server.runs().get(&id).map(|entry| &entry.phase)
    {
        interrupt.cancel();
    }
    Redirect::to(&format!("/runs/{id}")).into_response()
}

async fn run_page(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    let runs = server.runs();
    match runs.get(&id) {
        Some(entry) => Html(pages::run(
            id,
            &entry.name,
            &phase_label(&entry.phase, &entry.folder),
            resume_label(&entry.phase),
        ))
        .into_response(),
        None => page_error(StatusCode::NOT_FOUND, "no such run"),
    }
}

/// Progress as server-sent events: the counters twice a second, then `done` with the summary.
async fn events(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    let stream = progress_events(server, id);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn progress_events(
    server: Arc<Server>,
    id: u64,
) -> impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>> {
    // Each event carries the rows needing attention that this stream has not sent yet, and the
    // position of the first of them, so that a page whose stream reconnected (and so starts
    // again from the first) lists none twice.
    let state = (server, id, false, 0_usize);
    futures_util::stream::unfold(state, |(server, id, ended, shown)| async move {
        if ended {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let event = {
            let runs = server.runs();
            match runs.get(&id).map(|entry| &entry.phase) {
                Some(Phase::Running { live, .. }) => {
                    let attention = live.attention_from(shown);
                    // The counters as `--progress events` names them, and the rows since.
                    let mut data = serde_json::to_value(live.snapshot()).unwrap_or_default();
                    data["attention"] = serde_json::json!(attention);
                    data["attention_from"] = serde_json::json!(shown);
                    Some(("progress", data, attention.len(), false))
                }
                Some(Phase::Done {
                    summary,
                    exit_code,
                    attention,
                }) => {
                    let attention = attention.get(shown..).unwrap_or_default().to_vec();
                    Some((
                        "done",
                        serde_json::json!({
                            "summary": summary,
                            "exit_code": exit_code,
                            "attention": attention,
                            "attention_from": shown,
                        }),
                        attention.len(),
                        true,
                    ))
                }
                Some(Phase::Died { why, attention }) => {
                    let attention = attention.get(shown..).unwrap_or_default().to_vec();
                    let entry = runs.get(&id);
                    let held = entry
                        .map(|entry| history::journal_holds(&entry.folder))
                        .unwrap_or_default();
                    Some((
                        "done",
                        serde_json::json!({
                            "summary": Summary {
                                total: entry.map_or(0, |entry| entry.plan.planned),
                                succeeded: held.succeeded,
                                ..Summary::default()
                            },
                            "exit_code": null,
                            "died": why,
                            "journal_rows": held.rows,
                            "attention": attention,
                            "attention_from": shown,
                        }),
                        attention.len(),
                        true,
                    ))
                }
                Some(Phase::Planned) => Some(("waiting", serde_json::json!({}), 0, false)),
                None => None,
            }
        };
        event.map(|(name, data, sent, ended)| {
            (
                Ok(Event::default()
                    .event(name)
                    .data(crate::secrets::scrub(&data.to_string()))),
                (server, id, ended, shown + sent),
            )
        })
    })
}

/// A run's results or summary, as a download.
async fn download(State(server): Shared, UrlPath((id, file)): UrlPath<(u64, String)>) -> Response {
    let (name, kind) = match file.as_str() {
        "results.csv" => ("results.csv", "text/csv; charset=utf-8"),
        "summary.json" => ("summary.json", "application/json"),
        "plan.csv" => ("plan.csv", "text/csv; charset=utf-8"),
        "status.csv" => ("status.csv", "text/csv; charset=utf-8"),
        _ => return page_error(StatusCode::NOT_FOUND, "no such file"),
    };
    let folder = server.runs().get(&id).map(|entry| entry.folder.clone());
    let Some(folder) = folder else {
        return page_error(StatusCode::NOT_FOUND, "no such run");
    };
    match std::fs::read(folder.join(name)) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, kind.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    // A rehearsal's files are named apart, so that none is taken for a real
                    // run's audit trail.
                    format!(
                        "attachment; filename=\"{}-{id}-{name}\"",
                        if server.config.rehearsal {
                            "rehearsal"
                        } else {
                            "run"
                        }
                    ),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => page_error(StatusCode::NOT_FOUND, "that file is not there yet"),
    }
}

/// A plan or status check that refused to start: what it said, and, when one setting would fix
/// it, which field of the form that is.
fn refusal_page(message: &str, setting: Option<crate::outcome::Setting>) -> Response {
    let message = crate::secrets::scrub(message);
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Html(pages::refusal(&message, setting.map(pages::field_of))),
    )
        .into_response()
}

fn page_error(status: StatusCode, message: &str) -> Response {
    (status, Html(pages::error(&crate::secrets::scrub(message)))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_kept_under_a_fixed_name_with_only_a_known_extension() {
        assert_eq!(kept_name("../../etc/passwd"), "input.csv");
        assert_eq!(kept_name("Outage list.XLSX"), "input.xlsx");
        assert_eq!(kept_name("users.ods"), "input.ods");
        assert_eq!(kept_name("evil.sh"), "input.csv");
    }

    #[test]
    fn the_launch_key_and_the_session_are_read_from_where_a_browser_sends_them() {
        assert_eq!(launch_key(Some("key=abc&x=1")).as_deref(), Some("abc"));
        assert_eq!(launch_key(Some("x=1")), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static(
                "other=1; pingone_bypass_session_8001=theirs; pingone_bypass_session_8002=s3cr3t",
            ),
        );
        assert_eq!(
            session_of(&headers, 8002).as_deref(),
            Some("s3cr3t"),
            "another serve's session on the same host is not this one's"
        );
        assert_eq!(session_of(&headers, 8003), None);
    }
}
