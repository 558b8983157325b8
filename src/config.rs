//! What a run needs, checked by a front end (`cli::request`) before any row is read: its mode,
//! its rows, where requests go, and its limits; the pipeline (`run`) takes it whole.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::defaults;
use crate::gateway::auth::Credentials;
use crate::gateway::client::RetryPolicy;
use crate::input::{InputSource, ReadOptions};
use crate::plan::Rules;
use crate::record::log_format::LogFormat;
use crate::record::progress::ProgressMode;
use crate::record::resume::ApiIdentity;
use crate::record::writer::OutputTarget;
use crate::selection::Selection;

/// Where a run's rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// A file or standard input.
    Input(InputSource),
    /// `--population` / `--group`: the members, listed from PingOne when the run starts.
    Selection(Selection),
}

impl From<InputSource> for Rows {
    fn from(source: InputSource) -> Self {
        Self::Input(source)
    }
}

impl Rows {
    pub fn describe(&self) -> String {
        match self {
            Self::Input(source) => source.describe(),
            Self::Selection(selection) => selection.describe(),
        }
    }
}

pub use crate::mode::Mode;

/// Where requests go.
pub enum Target {
    /// A plan without lookups sends nothing. Says where a real run would send, and with which
    /// credentials (by name).
    Offline { would_send: String },
    /// PingOne, or a simulator a front end started and handed over as a URL.
    PingOne {
        api_url: String,
        credentials: Credentials,
    },
}

impl Target {
    pub fn api_identity(&self, rehearsal: bool) -> ApiIdentity {
        match self {
            Self::Offline { .. } => ApiIdentity::DryRun,
            Self::PingOne { .. } if rehearsal => ApiIdentity::Simulator,
            Self::PingOne { api_url, .. } => ApiIdentity::PingOne(api_url.clone()),
        }
    }
}

/// Everything a run needs.
pub struct RunConfig {
    /// The run's ID: `X-Ping-External-Session-ID` of every request it makes, and `run_id` in
    /// its run record, summary and JSON log lines, so PingOne's audit log can be matched to it.
    pub run_id: uuid::Uuid,
    pub input: Rows,
    pub output: OutputTarget,
    pub overwrite: bool,
    pub target: Target,
    /// Most requests per second, all environments together.
    pub rate: f64,
    /// Most requests in flight.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    /// `--outage-patience`: how long rows wait for PingOne to answer again.
    pub outage_patience: Duration,
    pub rules: Rules,
    pub reorder_window: usize,
    pub progress: ProgressMode,
    /// `--log-format`: text, or JSON lines (then no bar, and status lines are JSON too).
    pub log_format: LogFormat,
    pub summary_json: Option<PathBuf>,
    /// `--resume`: continue the run whose results are at `output`.
    pub resume: bool,
    /// `--resume-margin`: an earlier bypass ending within this is granted again.
    pub resume_margin: Duration,
    /// `--resume-any-api`: resume results made against another API.
    pub resume_any_api: bool,
    /// The run's live counters, shared with whoever shows its progress (the serve page).
    pub live: std::sync::Arc<crate::record::progress::LiveCounters>,
    /// `--ca-file`: certificates trusted beside the system's (corporate TLS inspection).
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Grant, check, plan or end.
    pub mode: Mode,
    /// How to read the input: `--sheet`, `--encoding`, `--allow-empty`, `--only`.
    pub read: ReadOptions,
    /// The API is a simulator a front end started (`--simulate`, or `serve --simulate` handing
    /// its URL to each run): recorded as a rehearsal (`simulated: true`), and resumed only by
    /// rehearsals.
    pub rehearsal: bool,
    /// Cancelled on the first Ctrl-C or SIGTERM: no row is started after it, requests in
    /// flight finish, and every remaining row is recorded as `not_attempted`.
    pub interrupt: CancellationToken,
}

impl RunConfig {
    /// A run with the defaults, starting now, without progress output: a grant, or a plan
    /// when `target` is offline.
    pub fn new(input: impl Into<Rows>, output: OutputTarget, target: Target) -> Self {
        let mode = match target {
            Target::Offline { .. } => Mode::Plan { lookups: false },
            Target::PingOne { .. } => Mode::Grant,
        };
        Self {
            run_id: uuid::Uuid::new_v4(),
            input: input.into(),
            output,
            overwrite: false,
            target,
            rate: defaults::RATE,
            concurrency: usize::from(defaults::CONCURRENCY),
            retry: RetryPolicy::default(),
            timeout: defaults::TIMEOUT,
            outage_patience: defaults::OUTAGE_PATIENCE,
            rules: Rules {
                run_start: chrono::Utc::now(),
                max_window: defaults::MAX_WINDOW,
                max_window_text: defaults::MAX_WINDOW_TEXT.to_owned(),
                default_environment: None,
                default_until: None,
                zone: crate::expiry::Zone::Utc,
            },
            reorder_window: defaults::REORDER_WINDOW,
            progress: ProgressMode::Never,
            log_format: LogFormat::Text,
            summary_json: None,
            resume: false,
            resume_margin: defaults::RESUME_MARGIN,
            resume_any_api: false,
            rehearsal: false,
            read: ReadOptions::default(),
            mode,
            extra_roots: Vec::new(),
            live: std::sync::Arc::default(),
            interrupt: CancellationToken::new(),
        }
    }
}
