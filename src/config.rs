//! What a run needs, validated by the command line before any row is read, and the defaults
//! in one place: the command line's flags and `RunConfig::new` both take them from here.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::Credentials;
use crate::client::RetryPolicy;
use crate::input::InputSource;
use crate::plan::Rules;
use crate::record::progress::ProgressMode;
use crate::record::resume::ApiIdentity;
use crate::record::writer::OutputTarget;
use crate::simulator::SimulatorConfig;

/// The defaults, as the command line spells them and as a run uses them.
pub mod defaults {
    use std::time::Duration;

    pub const RATE: f64 = 50.0;
    pub const CONCURRENCY: u16 = 32;
    pub const RETRIES: u32 = 5;
    pub const TIMEOUT_TEXT: &str = "30s";
    pub const TIMEOUT: Duration = Duration::from_secs(30);
    pub const MAX_WINDOW_TEXT: &str = "7d";
    pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 86_400);
    pub const RESUME_MARGIN_TEXT: &str = "15m";
    pub const RESUME_MARGIN: Duration = Duration::from_secs(15 * 60);
    /// Rows that may be between "started" and "written" at once. A row stuck in retries holds
    /// the rows behind it in memory until this many are waiting, then reading pauses until it
    /// ends. At a few hundred bytes a row this bounds the window to a few megabytes; at
    /// PingOne's rates it covers minutes of sending, longer than a row's whole retry schedule.
    pub const REORDER_WINDOW: usize = 10_000;
}

/// Where requests go.
pub enum Target {
    /// `--dry-run`: validate and plan; send nothing.
    DryRun,
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
            Self::DryRun => ApiIdentity::DryRun,
            Self::PingOne { api_url, .. } => ApiIdentity::PingOne(api_url.clone()),
            Self::Simulator(_) => ApiIdentity::Simulator,
        }
    }
}

/// Everything a run needs.
pub struct RunConfig {
    pub input: InputSource,
    pub output: OutputTarget,
    pub overwrite: bool,
    pub target: Target,
    /// Most requests per second, all environments together.
    pub rate: f64,
    /// Most requests in flight.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub rules: Rules,
    pub reorder_window: usize,
    pub progress: ProgressMode,
    pub summary_json: Option<PathBuf>,
    /// `--resume`: continue the run whose results are at `output`.
    pub resume: bool,
    /// `--resume-margin`: an earlier bypass ending within this is granted again.
    pub resume_margin: Duration,
    /// `--resume-any-api`: resume results made against another API.
    pub resume_any_api: bool,
    /// Cancelled on the first Ctrl-C or SIGTERM: no row is started after it, requests in
    /// flight finish, and every remaining row is recorded as `not_attempted`.
    pub interrupt: CancellationToken,
}

impl RunConfig {
    /// A run with the defaults, starting now, without progress output.
    pub fn new(input: InputSource, output: OutputTarget, target: Target) -> Self {
        Self {
            input,
            output,
            overwrite: false,
            target,
            rate: defaults::RATE,
            concurrency: usize::from(defaults::CONCURRENCY),
            retry: RetryPolicy::default(),
            timeout: defaults::TIMEOUT,
            rules: Rules {
                run_start: chrono::Utc::now(),
                max_window: defaults::MAX_WINDOW,
                max_window_text: defaults::MAX_WINDOW_TEXT.to_owned(),
                default_environment: None,
                default_until: None,
            },
            reorder_window: defaults::REORDER_WINDOW,
            progress: ProgressMode::Never,
            summary_json: None,
            resume: false,
            resume_margin: defaults::RESUME_MARGIN,
            resume_any_api: false,
            interrupt: CancellationToken::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::defaults;

    #[test]
    fn each_default_duration_reads_as_its_text() {
        for (text, duration) in [
            (defaults::TIMEOUT_TEXT, defaults::TIMEOUT),
            (defaults::MAX_WINDOW_TEXT, defaults::MAX_WINDOW),
            (defaults::RESUME_MARGIN_TEXT, defaults::RESUME_MARGIN),
        ] {
            assert_eq!(
                humantime::parse_duration(text).ok(),
                Some(duration),
                "{text}"
            );
        }
    }
}
