//! The result row: what the results file and its journal say happened to one input row, and
//! every decision of a row's status and message. It has one home so that every way a row comes
//! to be recorded (planned, refused, its name looked up in vain, answered, not sent, resumed
//! from an earlier run, carried over from one, read back from a file) builds the same type the
//! same way: a stage hands over what happened (a refusal, a lookup's `Resolution`, PingOne's
//! `Attempt`) and the row says what that means; the stages only hand rows on. `columns` names
//! what a row is written as: its columns, statuses and error codes; `end` decides what reading
//! a bypass means for ending it.

use chrono::{DateTime, Utc};

use crate::gateway::NotSent;
use crate::gateway::client::Attempt;
use crate::gateway::listing::Resolution;
use crate::input::{InputRecord, UserColumn};
use crate::pingone::{format_bypass_until, parse_instant};
use crate::plan::{Job, Refusal, Refused, Unresolved};

mod columns;
mod end;
pub use crate::mode::{Ending, Report};
pub use columns::{
    AMBIGUOUS_USER, CHANGED_SINCE, Column, END_COLUMNS, ENDS_SOONER, NO_BYPASS, NOT_ACTIVE,
    NOT_GRANTED, NOT_IN_INPUT, RESULT_COLUMNS, RecordedCells, RowStatus, SHORTENED, STATUS_COLUMNS,
    StatusGroup, USER_NOT_FOUND, escape_formula, unescape_formula,
};
pub use end::{EndDecision, PendingEnd};

/// What a row that names its user came to once the name was looked up.
#[derive(Debug)]
pub enum LookedUp {
    /// One user has the name: the row goes on with that user's ID.
    Found(RowOrigin, uuid::Uuid),
    /// No one user has it, or no answer came: the row as recorded, with no PUT sent.
    Recorded(ResultRow),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    /// The record's row number as a spreadsheet shows it; `None` for an earlier success that
    /// is not in this run's input.
    pub row: Option<u64>,
    pub environment_id: String,
    pub user_id: String,
    pub until: String,
    pub requested_until: String,
    pub status: RowStatus,
    pub http_status: Option<u16>,
    pub can_bypass_mfa: Option<bool>,
    pub bypass_mfa_enabled_until: String,
    /// `end`: the expiry in force when the row was read, before it was ended.
    pub previous_until: String,
    pub attempts: u32,
    pub error_code: String,
    pub error_message: String,
    pub completed_at: DateTime<Utc>,
    pub extras: Vec<String>,
}

/// The cells an input row shows in the results whatever happens to it: its number, the
/// environment (with `--env` filled in), the user and the until cell as written, and the
/// columns carried through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOrigin {
    pub row: u64,
    pub environment_id: String,
    /// The `user_id` cell: the ID as written, or the ID a name resolved to (empty until then).
    pub user_id: String,
    /// The user cell as written (ID, username or email) and its column: what `--resume`
    /// matches a row by.
    pub user: String,
    pub named_by: UserColumn,
    pub until: String,
    pub extras: Vec<String>,
    /// Set by `--resume` when an earlier run granted this row a bypass that no longer counts
    /// (ended, ending, or for another expiry): said in the message if this run's attempt does
    /// not succeed, so the earlier grant is not lost from the record.
    pub earlier_grant: Option<String>,
}

impl RowOrigin {
    pub fn new(record: InputRecord, default_environment: Option<uuid::Uuid>) -> Self {
        let environment = record.environment.trim();
        Self {
            row: record.row,
            environment_id: match (environment, default_environment) {
                ("", Some(default)) => default.to_string(),
                _ => environment.to_owned(),
            },
            user_id: match record.named_by {
                UserColumn::Id => record.user.trim().to_owned(),
                UserColumn::Name(_) => String::new(),
            },
            user: record.user.trim().to_owned(),
            named_by: record.named_by,
            until: record.until,
            extras: record.extras,
            earlier_grant: None,
        }
    }
}

impl ResultRow {
    fn from_origin(origin: RowOrigin, status: RowStatus, requested_until: String) -> Self {
        Self {
            row: Some(origin.row),
            environment_id: origin.environment_id,
            user_id: origin.user_id,
            until: origin.until,
            requested_until,
            status,
            http_status: None,
            can_bypass_mfa: None,
            bypass_mfa_enabled_until: String::new(),
            previous_until: String::new(),
            attempts: 0,
            error_code: String::new(),
            error_message: String::new(),
            completed_at: Utc::now(),
            extras: origin.extras,
        }
    }

    fn for_job(origin: RowOrigin, status: RowStatus, job: &Job) -> Self {
        Self {
            environment_id: job.environment_id.to_string(),
            user_id: job.user_id.to_string(),
            ..Self::from_origin(origin, status, job.requested_until.clone())
        }
    }

    /// A dry run's row that would be sent.
    pub fn planned(origin: RowOrigin, job: &Job) -> Self {
        Self::for_job(origin, RowStatus::Planned, job)
    }

    /// A plan's row in an environment PingOne refused the run (`failed`, with its answer): it
    /// will not be granted.
    pub fn environment_refused(
        origin: RowOrigin,
        job: &Job,
        http_status: u16,
        error_code: String,
        error_message: String,
    ) -> Self {
        Self {
            http_status: Some(http_status),
            error_code,
            error_message: format!(
                "PingOne refused this run access to the environment, so the row would not be granted: {error_message}"
            ),
            ..Self::for_job(origin, RowStatus::Failed, job)
        }
    }

    /// A row the plan refused: `invalid`, or `skipped` (a duplicate), with why.
    pub fn refused(origin: RowOrigin, refused: Refused) -> Self {
        let (status, error_code) = match refused.kind {
            Refusal::Invalid => (RowStatus::Invalid, ""),
            Refusal::Skipped => (RowStatus::Skipped, ""),
            Refusal::NotGranted => (RowStatus::Skipped, NOT_GRANTED),
        };
        Self {
            error_code: error_code.to_owned(),
            error_message: refused.message,
            ..Self::from_origin(origin, status, refused.requested_until.unwrap_or_default())
        }
    }

    /// A row that was sent: PingOne's last answer (or the failure to get one) and how many
    /// attempts it took. A success whose bypass is shorter than asked, or not in force, says so.
    pub fn answered(mut origin: RowOrigin, job: &Job, attempt: Attempt, attempts: u32) -> Self {
        let earlier_grant = origin.earlier_grant.take();
        let mut row = Self::for_job(origin, RowStatus::Failed, job);
        row.attempts = attempts;
        row.record_answer(attempt);
        if let (false, Some(earlier_grant)) = (row.granted(), earlier_grant) {
            row.error_message = format!("{}; {earlier_grant}", row.error_message.trim_end());
        }
        row
    }

    fn record_answer(&mut self, attempt: Attempt) {
        match attempt {
            Attempt::Success {
                http_status,
                answer,
            } => {
                self.status = RowStatus::Succeeded;
                self.http_status = Some(http_status);
                self.can_bypass_mfa = answer.can_bypass_mfa;
                self.bypass_mfa_enabled_until =
                    answer.until.map(format_bypass_until).unwrap_or_default();
                match answer.unreadable {
                    // PingOne granted it (a 2xx): a success, but the record must say that what
                    // it granted is not known.
                    Some(why) => {
                        self.error_code = crate::gateway::client::UNREADABLE_RESPONSE.to_owned();
                        self.error_message = format!(
                            "PingOne granted the bypass (HTTP {http_status}) but {why}; its expiry is not known: check it with the status command"
                        );
                    }
                    None => self.warn_if_not_as_asked(),
                }
            }
            Attempt::Refused {
                http_status,
                error_code,
                error_message,
                ..
            } => {
                self.http_status = Some(http_status);
                self.error_code = error_code;
                self.error_message = error_message;
            }
            Attempt::NoAnswer { error_message } => {
                self.error_code = "NO_ANSWER".to_owned();
                self.error_message = error_message;
            }
        }
    }

    fn warn_if_not_as_asked(&mut self) {
        if self.can_bypass_mfa == Some(false) {
            self.error_code = NOT_ACTIVE.to_owned();
            self.error_message = format!(
                "PingOne recorded the bypass (until {}) but says the user cannot bypass MFA now",
                display_or_none(&self.bypass_mfa_enabled_until)
            );
            return;
        }
        // Most grants are exactly what was asked: no need to read either date.
        if self.bypass_mfa_enabled_until == self.requested_until {
            return;
        }
        let granted = parse_instant(&self.bypass_mfa_enabled_until);
        let asked = parse_instant(&self.requested_until);
        if let (Some(granted), Some(asked)) = (granted, asked)
            && granted < asked
        {
            self.error_code = SHORTENED.to_owned();
            self.error_message = format!(
                "PingOne granted the bypass until {}, earlier than the {} asked (a tenant policy may cap bypasses)",
                self.bypass_mfa_enabled_until, self.requested_until
            );
        }
    }

    /// A row the run stopped before sending (again). One that reached PingOne before the stop
    /// is not "not sent": it is `failed` with PingOne's last answer and its attempts, and the
    /// message says why it was not retried.
    pub fn not_sent(
        mut origin: RowOrigin,
        job: &Job,
        reason: NotSent,
        last_answer: Option<(Attempt, u32)>,
    ) -> Self {
        match last_answer {
            None => {
                let earlier_grant = origin
                    .earlier_grant
                    .take()
                    .map_or_else(String::new, |earlier| format!("; {earlier}"));
                Self {
                    error_code: reason.code.to_owned(),
                    error_message: format!("not sent: {}{earlier_grant}", reason.message),
                    ..Self::for_job(origin, RowStatus::NotAttempted, job)
                }
            }
            Some((attempt, attempts)) => {
                let mut row = Self::answered(origin, job, attempt, attempts);
                row.error_message = format!(
                    "{}; not retried: {}",
                    row.error_message.trim_end(),
                    reason.message
                );
                row
            }
        }
    }

    /// A row of a plan that looks nothing up, naming its user: `planned`, the name to be looked
    /// up when the run starts.
    pub fn planned_by_name(origin: RowOrigin, unresolved: &Unresolved) -> Self {
        Self {
            error_message: format!(
                "{} {:?} is looked up when the run starts; --dry-run --resolve looks it up now",
                unresolved.name.attribute.as_str(),
                unresolved.name.value
            ),
            ..Self::from_origin(origin, RowStatus::Planned, unresolved.requested_until())
        }
    }

    /// What a row that names its user comes to once the name was looked up: on with the one
    /// user's ID, or recorded with no PUT sent: `failed` when the name is no user's or several
    /// users' or could not be looked up, `not_attempted` when the run (or the name's
    /// environment) stopped before the lookup was made.
    pub fn looked_up(
        mut origin: RowOrigin,
        unresolved: &Unresolved,
        resolution: Resolution,
    ) -> LookedUp {
        let (attribute, value) = (unresolved.name.attribute.as_str(), &unresolved.name.value);
        let environment = unresolved.name.environment_id;
        let (status, http_status, code, message) = match resolution {
            Resolution::Found(user_id) => {
                origin.user_id = user_id.to_string();
                return LookedUp::Found(origin, user_id);
            }
            Resolution::NotFound => (
                RowStatus::Failed,
                None,
                USER_NOT_FOUND.to_owned(),
                format!(
                    "no user has {attribute} {value:?} in environment {environment}; check the spelling, or name the user by userID"
                ),
            ),
            Resolution::Ambiguous(count) => (
                RowStatus::Failed,
                None,
                AMBIGUOUS_USER.to_owned(),
                format!(
                    "{count} users have {attribute} {value:?} in environment {environment}; name this user by username or userID"
                ),
            ),
            Resolution::Failed {
                http_status,
                error_code,
                error_message,
            } => {
                let message = format!(
                    "{attribute} {value:?} could not be looked up, so no bypass was requested: {error_message}"
                );
                return LookedUp::Recorded(Self {
                    http_status,
                    error_code,
                    error_message: message,
                    ..Self::from_origin(origin, RowStatus::Failed, unresolved.requested_until())
                });
            }
            Resolution::Stopped(reason) => (
                RowStatus::NotAttempted,
                None,
                reason.code.to_owned(),
                format!("not looked up: {}", reason.message),
            ),
        };
        let message = match origin.earlier_grant.take() {
            Some(earlier) => format!("{message}; {earlier}"),
            None => message,
        };
        LookedUp::Recorded(Self {
            http_status,
            error_code: code,
            error_message: message,
            ..Self::from_origin(origin, status, unresolved.requested_until())
        })
    }

    /// A row whose bypass state was read (`status`): `active` when PingOne says the user can
    /// bypass MFA until a time still to come, `none` when it gives no bypass or one that has
    /// ended, `failed` when it did not answer with a state.
    pub fn checked(origin: RowOrigin, job: &Job, attempt: Attempt, attempts: u32) -> Self {
        let mut row = Self::for_job(origin, RowStatus::Failed, job);
        row.attempts = attempts;
        row.record_answer(attempt);
        if row.status == RowStatus::Succeeded {
            row.error_code.clear();
            row.error_message.clear();
            // `canBypassMFA` may be absent: then an expiry still to come is a bypass in force.
            let state = crate::pingone::BypassState {
                until: parse_instant(&row.bypass_mfa_enabled_until),
                can_bypass_mfa: row.can_bypass_mfa,
                unreadable: None,
            };
            row.status = if state.in_force(row.completed_at) {
                RowStatus::Active
            } else {
                RowStatus::NoBypass
            };
        }
        row
    }

    /// For an `active` row, the time its bypass has left, such as `3h12m`; empty otherwise.
    pub fn remaining(&self) -> String {
        let until = parse_instant(&self.bypass_mfa_enabled_until);
        match (self.status, until) {
            (RowStatus::Active, Some(until)) => {
                let left = (until - self.completed_at).num_seconds().max(0);
                let (days, hours, minutes) = (left / 86_400, left / 3600 % 24, left / 60 % 60);
                match (days, hours) {
                    // An ended bypass has a minute or less left: its seconds say how soon.
                    (0, 0) if minutes == 0 => format!("{left}s"),
                    (0, 0) => format!("{minutes}m"),
                    (0, _) => format!("{hours}h{minutes:02}m"),
                    _ => format!("{days}d{hours:02}h{minutes:02}m"),
                }
            }
            _ => String::new(),
        }
    }

    /// A row an earlier run granted and whose bypass is still in force: recorded again as it
    /// was, and not sent.
    pub fn resumed(origin: RowOrigin, earlier: &ResultRow) -> Self {
        Self {
            row: Some(origin.row),
            until: origin.until,
            extras: origin.extras,
            ..earlier.clone()
        }
    }

    /// An earlier success that this run's input no longer has: kept, so that no granted
    /// bypass drops out of the record, after the input's rows and marked as not in it.
    pub fn carried_over(earlier: &ResultRow, extra_columns: usize) -> Self {
        let earlier_row = earlier
            .row
            .map_or_else(|| "an earlier run".to_owned(), |row| format!("row {row}"));
        let change = if earlier.status == RowStatus::Ended {
            "ended"
        } else {
            "granted"
        };
        Self {
            row: None,
            error_code: NOT_IN_INPUT.to_owned(),
            error_message: format!(
                "{change} by an earlier run ({earlier_row} then); no row of this input was sent for it, so the record is kept"
            ),
            extras: vec![String::new(); extra_columns],
            ..earlier.clone()
        }
    }

    /// Whether PingOne changed this row's bypass: granted it (`run`) or ended it (`end`); what
    /// the audit trail must never lose.
    pub fn granted(&self) -> bool {
        matches!(self.status, RowStatus::Succeeded | RowStatus::Ended)
    }
}

fn display_or_none(text: &str) -> &str {
    if text.is_empty() { "none given" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            environment_id: uuid::Uuid::nil(),
            user_id: uuid::Uuid::max(),
            requested_until: "2031-01-02T00:00:00.000Z".to_owned(),
            granted_until: None,
        }
    }

    fn origin() -> RowOrigin {
        RowOrigin {
            row: 7,
            environment_id: "e".to_owned(),
            user_id: "u".to_owned(),
            user: "u".to_owned(),
            named_by: UserColumn::Id,
            until: "8h".to_owned(),
            extras: vec!["INC-1".to_owned()],
            earlier_grant: None,
        }
    }

    fn granted(until: &str, active: bool) -> Attempt {
        Attempt::Success {
            http_status: 200,
            answer: crate::pingone::BypassState {
                can_bypass_mfa: Some(active),
                until: parse_instant(until),
                unreadable: None,
            },
        }
    }

    #[test]
    fn a_bypass_granted_as_asked_carries_no_warning() {
        let row = ResultRow::answered(
            origin(),
            &job(),
            granted("2031-01-02T00:00:00.000Z", true),
            1,
        );
        assert_eq!(row.status, RowStatus::Succeeded);
        assert_eq!(row.error_code, "");
    }

    #[test]
    fn a_bypass_shorter_than_asked_is_a_success_marked_shortened() {
        let row = ResultRow::answered(
            origin(),
            &job(),
            granted("2031-01-01T00:00:00.000Z", true),
            1,
        );
        assert_eq!(row.status, RowStatus::Succeeded);
        assert_eq!(row.error_code, SHORTENED);
        assert!(
            row.error_message.contains("2031-01-01T00:00:00.000Z"),
            "{}",
            row.error_message
        );
    }

    #[test]
    fn a_bypass_pingone_says_is_not_in_force_is_a_success_marked_not_active() {
        let row = ResultRow::answered(
            origin(),
            &job(),
            granted("2031-01-02T00:00:00.000Z", false),
            1,
        );
        assert_eq!(row.status, RowStatus::Succeeded);
        assert_eq!(row.error_code, NOT_ACTIVE);
    }

    #[test]
    fn a_row_that_reached_pingone_before_a_stop_is_failed_with_its_last_answer() {
        let answer = Attempt::Refused {
            http_status: 503,
            error_code: String::new(),
            error_message: "HTTP 503 Service Unavailable".to_owned(),
            retry: crate::gateway::client::Retry::Allowed { after: None },
        };
        let reason = NotSent {
            code: "INTERRUPTED",
            message: "the run was interrupted".to_owned(),
        };
        let row = ResultRow::not_sent(origin(), &job(), reason.clone(), Some((answer, 2)));
        assert_eq!(row.status, RowStatus::Failed);
        assert_eq!((row.http_status, row.attempts), (Some(503), 2));
        assert!(
            !row.error_message.contains("not sent"),
            "{}",
            row.error_message
        );
        let never_sent = ResultRow::not_sent(origin(), &job(), reason, None);
        assert_eq!(never_sent.status, RowStatus::NotAttempted);
        assert_eq!(
            (never_sent.attempts, never_sent.error_code.as_str()),
            (0, "INTERRUPTED")
        );
    }

    #[test]
    fn cells_that_a_spreadsheet_would_run_as_formulas_are_made_text_and_read_back() {
        for (cell, escaped) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+90m", "'+90m"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("8h", "8h"),
            ("a=b", "a=b"),
            ("'quoted", "'quoted"),
            ("", ""),
        ] {
            assert_eq!(escape_formula(cell), escaped, "{cell:?}");
            assert_eq!(unescape_formula(&escape_formula(cell)), cell, "{cell:?}");
        }
    }
}
