//! What a run does to each row, said once: the mode (grant, check, plan, end), how an end ends,
//! and the report each mode writes. Every stage asks the mode what it needs of it through its
//! methods, so that a new mode is a new variant and its answers here, not a parallel enum in
//! each stage. Below every stage, it imports none of them.

use std::time::Duration;

/// How `end` ends a bypass: `--in` and `--force`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ending {
    /// `--in`: how long a bypass still lasts after the PUT that ends it is sent.
    pub within: Duration,
    /// `--force`: end a results file's row whose bypass changed since its run recorded it.
    pub force: bool,
}

/// What a run reports on: the bypasses it granted (`run`), the ones users have (`status`), or
/// the ones it ended (`end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Report {
    #[default]
    Grants,
    Status,
    Ends,
}

impl Report {
    /// What the rows the report counts as done did, as the progress line says it: granted,
    /// read back, or ended.
    pub fn done_word(self) -> &'static str {
        match self {
            Self::Grants => "succeeded",
            Self::Status => "checked",
            Self::Ends => "ended",
        }
    }
}

/// What the run does to each row: the one place a run's mode is said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `run`: a PUT for each valid row.
    Grant,
    /// `status`: a GET for each valid row.
    Check,
    /// `run --dry-run`: validate and write the plan, never a PUT. With `lookups`
    /// (`--resolve`), also get a token, look names up and ask each environment once.
    Plan { lookups: bool },
    /// `end`: a GET for each valid row, then, for a bypass that is to end, the PUT that ends
    /// it; with `dry_run`, the GETs only, and the plan of what would be ended.
    End { ending: Ending, dry_run: bool },
}

impl Mode {
    /// The results' columns and statuses this mode writes.
    pub fn report(self) -> Report {
        match self {
            Self::Grant | Self::Plan { .. } => Report::Grants,
            Self::Check => Report::Status,
            Self::End { .. } => Report::Ends,
        }
    }

    /// Whether the run sends no PUT and writes a plan (`--dry-run` of `run` or of `end`).
    pub fn is_plan(self) -> bool {
        matches!(self, Self::Plan { .. } | Self::End { dry_run: true, .. })
    }

    /// Whether the run needs a connection to PingOne.
    pub fn connects(self) -> bool {
        !matches!(self, Self::Plan { lookups: false })
    }

    /// Whether each row asks an expiry, checked against the window: a grant, or its plan.
    pub fn asks_expiry(self) -> bool {
        matches!(self, Self::Grant | Self::Plan { .. })
    }

    /// Whether a user named on two rows is sent once (the second row skipped or refused): a
    /// grant, its plan, an end. A check reads each row as it comes.
    pub fn sends_a_user_once(self) -> bool {
        !matches!(self, Self::Check)
    }

    /// Whether each row makes requests of its own (a plan's rows make none; a plan with lookups
    /// only looks names up).
    pub fn sends_rows(self) -> bool {
        !matches!(self, Self::Plan { .. })
    }

    /// Whether PingOne's bypasses change: a grant, or an end that is not a dry run. Such a
    /// run journals every answer, so that no change goes unrecorded.
    pub fn changes_bypasses(self) -> bool {
        matches!(self, Self::Grant | Self::End { dry_run: false, .. })
    }

    /// A grant's plan, which asks each environment once whether the run may enter it.
    pub fn plans_a_grant(self) -> bool {
        matches!(self, Self::Plan { .. })
    }

    /// A grant's plan that also looks names up (`--resolve`).
    pub fn plans_with_lookups(self) -> bool {
        self == Self::Plan { lookups: true }
    }

    /// Whether the run ends bypasses: with a results file as its input, only the rows it
    /// records as granted are ended.
    pub fn ends_bypasses(self) -> bool {
        matches!(self, Self::End { .. })
    }
}
