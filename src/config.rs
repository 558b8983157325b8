//! What a run needs, validated by the command line before any row is read.

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
use crate::row::Report;
use crate::selection::Selection;
use crate::simulator::SimulatorConfig;

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

/// Where requests go.
pub enum Target {
    /// `--dry-run`: validate and plan; send nothing. Says where a real run would send, and
    /// with which credentials (by name).
    DryRun { would_send: String },
    PingOne {
        api_url: String,
        credentials: Credentials,
    },
    /// `--simulate`: a simulator started inside this process.
    Simulator(Box<SimulatorConfig>),
}

impl Target {
    pub fn api_identity(&self) -> ApiIdentity {
        match self {
            Self::DryRun { .. } => ApiIdentity::DryRun,
            Self::PingOne { api_url, .. } => ApiIdentity::PingOne(api_url.clone()),
            Self::Simulator(_) => ApiIdentity::Simulator,
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
    /// Grant bypasses (`run`), or read them back (`status`).
    pub report: Report,
    /// How to read the input: `--sheet`, `--encoding`, `--allow-empty`, `--only`.
    pub read: ReadOptions,
    /// `--dry-run --resolve`: get a token and look names up, but send no PUT; the results are
    /// the plan, with resolved IDs.
    pub reads_only: bool,
    /// The API is a simulator a front end started (`serve --simulate` hands its URL to each
    /// run): recorded as a rehearsal (`simulated: true`), and resumed only by rehearsals.
    pub rehearsal: bool,
    /// Cancelled on the first Ctrl-C or SIGTERM: no row is started after it, requests in
    /// flight finish, and every remaining row is recorded as `not_attempted`.
    pub interrupt: CancellationToken,
}

impl RunConfig {
    /// A run with the defaults, starting now, without progress output.
    pub fn new(input: impl Into<Rows>, output: OutputTarget, target: Target) -> Self {
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
            reads_only: false,
            rehearsal: false,
            read: ReadOptions::default(),
            report: Report::Grants,
            extra_roots: Vec::new(),
            live: std::sync::Arc::default(),
            interrupt: CancellationToken::new(),
        }
    }
}
