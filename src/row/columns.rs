//! What a result row is written as and read back from: the columns of each report, the
//! statuses and the error codes this tool gives, by the names docs/cli.md documents, the
//! escaping that keeps a spreadsheet from taking a cell for a formula, and a recorded row's
//! cells read back by header name.

use chrono::DateTime;
use serde::Deserialize;

use super::ResultRow;
use crate::mode::Report;

/// A fixed column of a report, named as docs/cli.md names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Row,
    EnvironmentId,
    UserId,
    Until,
    RequestedUntil,
    Status,
    HttpStatus,
    CanBypassMfa,
    BypassMfaEnabledUntil,
    /// `end`: the expiry in force when the row was read, before it was ended.
    PreviousUntil,
    Attempts,
    /// `status`: the time an active bypass has left.
    Remaining,
    ErrorCode,
    ErrorMessage,
    CompletedAt,
    /// `status`'s name for the time the row was finished.
    CheckedAt,
}

impl Column {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Row => "row",
            Self::EnvironmentId => "environment_id",
            Self::UserId => "user_id",
            Self::Until => "until",
            Self::RequestedUntil => "requested_until",
            Self::Status => "status",
            Self::HttpStatus => "http_status",
            Self::CanBypassMfa => "can_bypass_mfa",
            Self::BypassMfaEnabledUntil => "bypass_mfa_enabled_until",
            Self::PreviousUntil => "previous_until",
            Self::Attempts => "attempts",
            Self::Remaining => "remaining",
            Self::ErrorCode => "error_code",
            Self::ErrorMessage => "error_message",
            Self::CompletedAt => "completed_at",
            Self::CheckedAt => "checked_at",
        }
    }
}

/// The fixed columns of `run`'s results, in the documented order; extra input columns follow.
pub const RESULT_COLUMNS: [Column; 13] = [
    Column::Row,
    Column::EnvironmentId,
    Column::UserId,
    Column::Until,
    Column::RequestedUntil,
    Column::Status,
    Column::HttpStatus,
    Column::CanBypassMfa,
    Column::BypassMfaEnabledUntil,
    Column::Attempts,
    Column::ErrorCode,
    Column::ErrorMessage,
    Column::CompletedAt,
];

/// The columns of `status`'s report, in the documented order; extra input columns follow.
pub const STATUS_COLUMNS: [Column; 11] = [
    Column::Row,
    Column::EnvironmentId,
    Column::UserId,
    Column::Status,
    Column::HttpStatus,
    Column::CanBypassMfa,
    Column::BypassMfaEnabledUntil,
    Column::Remaining,
    Column::ErrorCode,
    Column::ErrorMessage,
    Column::CheckedAt,
];

/// The columns of `end`'s report, in the documented order; extra input columns follow.
pub const END_COLUMNS: [Column; 10] = [
    Column::Row,
    Column::EnvironmentId,
    Column::UserId,
    Column::Status,
    Column::HttpStatus,
    Column::PreviousUntil,
    Column::BypassMfaEnabledUntil,
    Column::ErrorCode,
    Column::ErrorMessage,
    Column::CompletedAt,
];

impl Report {
    pub fn columns(self) -> &'static [Column] {
        match self {
            Self::Grants => &RESULT_COLUMNS,
            Self::Status => &STATUS_COLUMNS,
            Self::Ends => &END_COLUMNS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    Succeeded,
    Failed,
    Invalid,
    Skipped,
    NotAttempted,
    Planned,
    /// `status`: PingOne says the user can bypass MFA now, until a time still to come.
    Active,
    /// `status`: no bypass, or one that has ended.
    NoBypass,
    /// `end`: PingOne took the expiry a moment from now that ends the bypass.
    Ended,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Invalid => "invalid",
            Self::Skipped => "skipped",
            Self::NotAttempted => "not_attempted",
            Self::Planned => "planned",
            Self::Active => "active",
            Self::NoBypass => "none",
            Self::Ended => "ended",
        }
    }

    /// How the progress line, the page and its history count a row of this status.
    pub fn group(self) -> StatusGroup {
        match self {
            Self::Succeeded | Self::Active | Self::NoBypass | Self::Ended => StatusGroup::Done,
            Self::Failed | Self::Invalid | Self::NotAttempted => StatusGroup::NeedsAttention,
            Self::Skipped | Self::Planned => StatusGroup::Neither,
        }
    }

    /// Whether the row records a bypass PingOne changed: granted (`run`) or ended (`end`).
    pub fn changed_a_bypass(self) -> bool {
        matches!(self, Self::Succeeded | Self::Ended)
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Succeeded,
            Self::Failed,
            Self::Invalid,
            Self::Skipped,
            Self::NotAttempted,
            Self::Planned,
            Self::Active,
            Self::NoBypass,
            Self::Ended,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// What a row's status counts as, for whoever follows a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusGroup {
    /// Done as asked: granted, read back, ended.
    Done,
    /// Not done, and worth a look or a retry: failed, invalid, not attempted.
    NeedsAttention,
    /// Skipped on purpose, or only planned.
    Neither,
}

/// `error_code` of a succeeded row whose bypass is not what was asked for: still granted, but
/// the admin must know.
pub const SHORTENED: &str = "SHORTENED";
/// `error_code` of a succeeded row for which PingOne says the user cannot bypass MFA now.
pub const NOT_ACTIVE: &str = "NOT_ACTIVE";
/// `error_code` of a row whose username or email matches no user in its environment.
pub const USER_NOT_FOUND: &str = "USER_NOT_FOUND";
/// `error_code` of a row whose username or email matches several users (emails are not unique).
pub const AMBIGUOUS_USER: &str = "AMBIGUOUS_USER";
/// `error_code` of an earlier success that this run's input no longer has.
pub const NOT_IN_INPUT: &str = "NOT_IN_INPUT";
/// `end`: `error_code` of a results file's row that its run did not grant (not `succeeded`).
pub const NOT_GRANTED: &str = "NOT_GRANTED";
/// `end`: `error_code` of a row whose user has no bypass in force.
pub const NO_BYPASS: &str = "NO_BYPASS";
/// `end`: `error_code` of a row whose bypass ends no later than ending it would make it.
pub const ENDS_SOONER: &str = "ENDS_SOONER";
/// `end`: `error_code` of a results file's row whose bypass in force is not the one its run
/// recorded (granted again or extended since), left alone without `--force`.
pub const CHANGED_SINCE: &str = "CHANGED_SINCE";

/// One line of the results file.
/// A spreadsheet treats a cell starting with `=`, `+`, `-` or `@` (and, in some, tab or
/// carriage return) as a formula; a leading `'` makes it text.
pub fn escape_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Undoes `escape_formula`, so that a cell read back compares as it was written.
pub fn unescape_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// The cells of a row as a results file or its journal recorded them, read by header name, so
/// that a file whose columns a spreadsheet reordered, or that has more, still reads.
#[derive(Debug, Deserialize)]
pub struct RecordedCells {
    row: String,
    environment_id: String,
    user_id: String,
    // `end`'s report has no `until`, `requested_until`, `can_bypass_mfa` or `attempts`, and
    // only it has `previous_until`.
    #[serde(default)]
    until: String,
    #[serde(default)]
    requested_until: String,
    status: String,
    http_status: String,
    #[serde(default)]
    can_bypass_mfa: String,
    bypass_mfa_enabled_until: String,
    #[serde(default)]
    previous_until: String,
    #[serde(default)]
    attempts: String,
    error_code: String,
    error_message: String,
    completed_at: String,
}

impl RecordedCells {
    /// The row these cells record, with spreadsheet escaping undone; `None` when its status is
    /// not one of the statuses.
    pub fn into_row(self) -> Option<ResultRow> {
        let text = |cell: String| unescape_formula(&cell).to_owned();
        Some(ResultRow {
            row: self.row.trim().parse().ok(),
            environment_id: text(self.environment_id),
            user_id: text(self.user_id),
            until: text(self.until),
            requested_until: text(self.requested_until),
            status: RowStatus::parse(self.status.trim())?,
            http_status: self.http_status.trim().parse().ok(),
            can_bypass_mfa: self.can_bypass_mfa.trim().parse().ok(),
            bypass_mfa_enabled_until: text(self.bypass_mfa_enabled_until),
            previous_until: text(self.previous_until),
            attempts: self.attempts.trim().parse().unwrap_or(0),
            error_code: text(self.error_code),
            error_message: text(self.error_message),
            // A spreadsheet may have re-saved the time in its own way; a success whose time
            // cannot be read is still a success, only the oldest.
            completed_at: crate::expiry::parse_recorded_instant(&self.completed_at)
                .unwrap_or(DateTime::UNIX_EPOCH),
            extras: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_and_counts_in_one_group_for_the_progress_line_the_page_and_its_history()
     {
        use StatusGroup::{Done, NeedsAttention, Neither};
        for (status, text, group, changed) in [
            (RowStatus::Succeeded, "succeeded", Done, true),
            (RowStatus::Active, "active", Done, false),
            (RowStatus::NoBypass, "none", Done, false),
            (RowStatus::Ended, "ended", Done, true),
            (RowStatus::Failed, "failed", NeedsAttention, false),
            (RowStatus::Invalid, "invalid", NeedsAttention, false),
            (
                RowStatus::NotAttempted,
                "not_attempted",
                NeedsAttention,
                false,
            ),
            (RowStatus::Skipped, "skipped", Neither, false),
            (RowStatus::Planned, "planned", Neither, false),
        ] {
            assert_eq!(
                (
                    status.as_str(),
                    RowStatus::parse(text),
                    status.group(),
                    status.changed_a_bypass()
                ),
                (text, Some(status), group, changed),
                "{text}"
            );
        }
    }
}
