//! How a run ended, and the exit code that says so to a script (the table in docs/cli.md).

use crate::gateway::client::ClientError;
use crate::input::InputError;
use crate::record::in_order::RecordError;
use crate::record::manifest::ManifestError;
use crate::record::summary::{Summary, SummaryError};
use crate::record::writer::OutputError;
use crate::selection::SelectionError;

/// The documented exit codes.
pub mod exit {
    /// Every row succeeded (or was skipped), or a dry run found no invalid row.
    pub const SUCCESS: u8 = 0;
    /// The run finished, but some rows failed, are invalid or were not attempted.
    pub const UNFINISHED: u8 = 1;
    /// Usage, configuration or input-file error; nothing was sent.
    pub const USAGE: u8 = 2;
    /// No access token can be had (PingOne rejected the credentials, or its token endpoint
    /// cannot be reached); the remaining rows are `not_attempted`.
    pub const NO_TOKEN: u8 = 3;
    /// Interrupted by Ctrl-C or SIGTERM after requests in flight finished and results were
    /// written.
    pub const INTERRUPTED: u8 = 130;
}

/// How a run ended when it got as far as sending.
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: Summary,
    pub dry_run: bool,
    pub report: crate::row::Report,
    /// Where the results are.
    pub results: String,
    /// The input could not be read to its end; rows after the error are not in the results.
    pub input_error: Option<InputError>,
    /// No access token could be had: the run stopped sending, and this says what to check.
    pub aborted: Option<String>,
    /// The run was interrupted before every row was sent.
    pub interrupted: bool,
}

impl RunOutcome {
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.aborted.is_some() {
            exit::NO_TOKEN
        } else if matches!(self.input_error, Some(InputError::NoRows(_))) {
            exit::USAGE
        } else if self.input_error.is_some() || self.summary.unfinished() > 0 {
            exit::UNFINISHED
        } else {
            exit::SUCCESS
        }
    }

    /// What a person reads at the end: the summary line, then what went wrong, if anything.
    pub fn report(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "pingone-bypass: {}; results in {}",
            self.summary.line(self.dry_run, self.report),
            self.results
        )];
        if let (false, Some(reason)) = (self.interrupted, &self.aborted) {
            lines.push(format!("error: {reason}"));
        }
        match &self.input_error {
            Some(error @ InputError::NoRows(_)) => lines.push(format!("error: {error}")),
            Some(error) => lines.push(format!("error: {error}; the rows after it were not read")),
            None => {}
        }
        lines
    }
}

/// The setting an error that stops a run before it starts is about, so that a front end can
/// point at its own field for it (the upload page's form) instead of the flag the message
/// names. A JSON error line carries it as `setting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    Environment,
    Expiry,
    TimeZone,
    Encoding,
    Sheet,
    HiddenRows,
}

impl Setting {
    /// The setting an input error is about, if one setting can fix it.
    pub fn of_input(error: &InputError) -> Option<Self> {
        match error {
            InputError::NotUtf8 { .. } => Some(Self::Encoding),
            InputError::HiddenRows { .. } => Some(Self::HiddenRows),
            InputError::NoSuchSheet { .. } => Some(Self::Sheet),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Before any row was read or sent.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Output(OutputError),
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A run that only reads could get no token: a plan without one would promise grants.
    #[error("{0}")]
    Credentials(crate::gateway::auth::AuthError),
    /// A grant or check was given no PingOne to send to.
    #[error(
        "nothing to send to: a grant or check needs PingOne's address and credentials (it was given those of a plan, {0})"
    )]
    Offline(String),
    /// The results' place could not be claimed, or its run record written.
    #[error(transparent)]
    Place(#[from] crate::record::place::PlaceError),
    /// `--population` / `--group` could not be listed, or holds more than `--max-users`.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// After sending began: a results, journal or record file could not be written.
    #[error(transparent)]
    Record(Box<RecordError>),
    #[error("{0}; the results themselves are complete")]
    Summary(#[from] SummaryError),
    /// The final run record could not be written; the results are complete.
    #[error("{0}; the results themselves are complete")]
    FinalRecord(ManifestError),
}

impl RunError {
    /// The setting that would fix this error, if one would.
    pub fn setting(&self) -> Option<Setting> {
        match self {
            Self::Input(error) => Setting::of_input(error),
            _ => None,
        }
    }

    /// Whether the run stopped before anything was sent.
    pub fn nothing_sent(&self) -> bool {
        !matches!(
            self,
            Self::Record(_) | Self::Summary(_) | Self::FinalRecord(_)
        )
    }

    pub fn exit_code(&self) -> u8 {
        if let Self::Selection(error) = self
            && error.is_no_token()
        {
            exit::NO_TOKEN
        } else if matches!(self, Self::Credentials(_)) {
            exit::NO_TOKEN
        } else if self.nothing_sent() {
            exit::USAGE
        } else {
            exit::UNFINISHED
        }
    }
}
