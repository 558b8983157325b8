//! `end`: what a row comes to when a run ends the bypasses it (or another run) granted. PingOne
//! has no call that removes a bypass; a bypass ends early by a PUT of an expiry a moment from
//! now, and a PUT for a user without one would create one. So every row is read first, and
//! these decisions say, from what PingOne answered, whether a PUT may follow: only for a bypass
//! in force that ends later than the new end (never a PUT that lengthens one), and, for a
//! results file's row, only for the bypass its run recorded unless `--force`.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use super::{
    CHANGED_SINCE, ENDS_SOONER, NO_BYPASS, ResultRow, RowOrigin, RowStatus, display_or_none,
};
use crate::gateway::NotSent;
use crate::gateway::client::{Attempt, UNREADABLE_RESPONSE};
use crate::mode::Ending;
use crate::pingone::format_bypass_until;
use crate::plan::Job;

/// What reading a row's bypass decided.
#[derive(Debug)]
pub enum EndDecision {
    /// Skipped or failed: recorded as it stands, with no PUT.
    Recorded(ResultRow),
    /// In force, ending later than `new_until`: to be ended (or, in a dry run, planned).
    End(PendingEnd),
}

/// A row whose bypass is to be ended: the row as read, the expiry in force, and the expiry
/// that ends it as the read decided it.
#[derive(Debug)]
pub struct PendingEnd {
    row: ResultRow,
    job: Job,
    /// The expiry in force when the row was read.
    in_force: DateTime<Utc>,
    within: Duration,
    /// The end as decided when the row was read: `within` from then.
    pub new_until: String,
}

impl PendingEnd {
    pub fn environment_id(&self) -> uuid::Uuid {
        self.job.environment_id
    }

    pub fn user_id(&self) -> uuid::Uuid {
        self.job.user_id
    }

    /// The expiry a PUT sent at `now` sets: `--in` from `now`, so that a PUT that waited its
    /// turn under the rate limit, in retries or through an outage still leaves the bypass
    /// `--in` after it arrives instead of an expiry already past; but never later than the
    /// expiry in force (then a millisecond before it), so that an end never lengthens a bypass.
    pub fn until_at(&self, now: DateTime<Utc>) -> String {
        let from_now = chrono::Duration::from_std(self.within)
            .ok()
            .and_then(|within| now.checked_add_signed(within))
            .unwrap_or(now)
            .trunc_subsecs(3);
        // PingOne's expiry, which is later than the read's moment: a millisecond before it is
        // a date too.
        let latest = self
            .in_force
            .checked_sub_signed(chrono::Duration::milliseconds(1))
            .unwrap_or(self.in_force);
        format_bypass_until(from_now.min(latest))
    }

    /// A dry run's row that would be ended.
    pub fn planned(mut self) -> ResultRow {
        self.row.status = RowStatus::Planned;
        self.row.requested_until = self.new_until.clone();
        self.row.error_message = format!(
            "would be ended: its bypass until {} would end at about {}",
            display_or_none(&self.row.previous_until),
            self.new_until
        );
        self.row
    }

    /// The row once PingOne answered the PUT of `sent` (or the failure to get an answer), with
    /// the attempts of the read and of the PUT together.
    pub fn answered(self, attempt: Attempt, attempts: u32, sent: String) -> ResultRow {
        let mut row = self.row;
        row.attempts = row.attempts.saturating_add(attempts);
        row.requested_until = sent;
        row.completed_at = Utc::now();
        match attempt {
            Attempt::Success {
                http_status,
                answer,
            } => {
                row.status = RowStatus::Ended;
                row.http_status = Some(http_status);
                row.can_bypass_mfa = answer.can_bypass_mfa;
                row.bypass_mfa_enabled_until = answer
                    .until
                    .map_or_else(|| row.requested_until.clone(), format_bypass_until);
                if let Some(why) = answer.unreadable {
                    row.error_code = UNREADABLE_RESPONSE.to_owned();
                    row.error_message = format!(
                        "PingOne took the new expiry {} (HTTP {http_status}) but {why}: check it with the status command",
                        row.requested_until
                    );
                }
            }
            Attempt::Refused {
                http_status,
                error_code,
                error_message,
                ..
            } => {
                row.http_status = Some(http_status);
                row.error_code = error_code;
                row.error_message = format!(
                    "the bypass until {} was not ended: {error_message}",
                    row.previous_until
                );
            }
            Attempt::NoAnswer { error_message } => {
                row.error_code = "NO_ANSWER".to_owned();
                row.error_message = format!(
                    "the bypass until {} may not have been ended (no answer to the PUT): {error_message}; check it with the status command",
                    row.previous_until
                );
            }
        }
        row
    }

    /// The row when the run stopped before the PUT went out (or after it reached PingOne
    /// without an answer to record): the bypass read stays as it was read.
    pub fn not_sent(
        self,
        reason: NotSent,
        last_answer: Option<(Attempt, u32)>,
        sent: String,
    ) -> ResultRow {
        match last_answer {
            Some((attempt, attempts)) => {
                let mut row = self.answered(attempt, attempts, sent);
                row.error_message = format!(
                    "{}; not retried: {}",
                    row.error_message.trim_end(),
                    reason.message
                );
                row
            }
            None => {
                let mut row = self.row;
                row.status = RowStatus::NotAttempted;
                row.error_code = reason.code.to_owned();
                row.error_message = format!(
                    "not ended: {} (its bypass until {} was read and left as it was)",
                    reason.message,
                    display_or_none(&row.previous_until)
                );
                row
            }
        }
    }
}

impl ResultRow {
    /// What reading a row's bypass at `now` decides: skipped with why (no bypass, one ending
    /// sooner than an end would, one changed since its run recorded it), failed when it could
    /// not be read, or to be ended with an expiry `ending.within` from `now`.
    pub fn end_decision(
        origin: RowOrigin,
        job: &Job,
        read: Attempt,
        attempts: u32,
        now: DateTime<Utc>,
        ending: Ending,
    ) -> EndDecision {
        let mut row = Self::for_job(origin, RowStatus::Failed, job);
        row.attempts = attempts;
        let state = match row.read_bypass(read) {
            Some(state) => state,
            None => return EndDecision::Recorded(row),
        };
        let new_end = chrono::Duration::from_std(ending.within)
            .ok()
            .and_then(|within| now.checked_add_signed(within))
            .unwrap_or(now)
            .trunc_subsecs(3);
        let skip = |mut row: Self, code: &str, message: String| {
            row.status = RowStatus::Skipped;
            row.error_code = code.to_owned();
            row.error_message = message;
            EndDecision::Recorded(row)
        };
        let until = match state.until {
            Some(until) if state.in_force(now) => until,
            _ => {
                let message = format!(
                    "no bypass in force (PingOne gives {}{}), so nothing was sent",
                    display_or_none(&row.previous_until),
                    match state.can_bypass_mfa {
                        Some(false) => ", canBypassMFA false",
                        _ => "",
                    }
                );
                return skip(row, NO_BYPASS, message);
            }
        };
        if until <= new_end {
            let message = format!(
                "the bypass ends at {}, no later than the {} an end would set, so nothing was sent",
                row.previous_until,
                format_bypass_until(new_end)
            );
            return skip(row, ENDS_SOONER, message);
        }
        if let Some(granted) = job.granted_until
            && granted != until
            && !ending.force
        {
            let message = format!(
                "the bypass now ends at {}, not at the {} its run recorded: it was granted again or extended since, so it was left alone (--force ends it anyway)",
                row.previous_until,
                format_bypass_until(granted)
            );
            return skip(row, CHANGED_SINCE, message);
        }
        EndDecision::End(PendingEnd {
            row,
            job: job.clone(),
            in_force: until,
            within: ending.within,
            new_until: format_bypass_until(new_end),
        })
    }

    /// Records what the read of the bypass came to on this (failed) row: the state read, or,
    /// when there is none to go by (an error answer, no answer, a body that cannot be read),
    /// `None` with the row saying why nothing was ended.
    fn read_bypass(&mut self, read: Attempt) -> Option<crate::pingone::BypassState> {
        let not_ended =
            |message: &str| format!("the bypass could not be read, so it was not ended: {message}");
        let (http_status, state) = match read {
            Attempt::Success {
                http_status,
                answer,
            } => (http_status, answer),
            Attempt::Refused {
                http_status,
                error_code,
                error_message,
                ..
            } => {
                self.http_status = Some(http_status);
                self.error_code = error_code;
                self.error_message = not_ended(&error_message);
                return None;
            }
            Attempt::NoAnswer { error_message } => {
                self.error_code = "NO_ANSWER".to_owned();
                self.error_message = not_ended(&error_message);
                return None;
            }
        };
        self.http_status = Some(http_status);
        self.can_bypass_mfa = state.can_bypass_mfa;
        self.previous_until = state.until.map(format_bypass_until).unwrap_or_default();
        self.bypass_mfa_enabled_until = self.previous_until.clone();
        if let Some(why) = &state.unreadable {
            self.error_code = UNREADABLE_RESPONSE.to_owned();
            self.error_message = format!(
                "PingOne answered the read (HTTP {http_status}) but {why}, so the bypass was not ended: check it with the status command"
            );
            return None;
        }
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::UserColumn;
    use crate::pingone::{BypassState, parse_instant};

    const MINUTE: Ending = Ending {
        within: Duration::from_secs(60),
        force: false,
    };

    fn now() -> DateTime<Utc> {
        parse_instant("2026-12-02T12:00:00.000Z").unwrap_or_default()
    }

    fn job(granted_until: Option<&str>) -> Job {
        Job {
            environment_id: uuid::Uuid::nil(),
            user_id: uuid::Uuid::max(),
            requested_until: String::new(),
            granted_until: granted_until.and_then(parse_instant),
        }
    }

    fn origin() -> RowOrigin {
        RowOrigin {
            row: 2,
            environment_id: "e".to_owned(),
            user_id: "u".to_owned(),
            user: "u".to_owned(),
            named_by: UserColumn::Id,
            until: String::new(),
            extras: Vec::new(),
            earlier_grant: None,
        }
    }

    fn read(until: Option<&str>, can_bypass_mfa: Option<bool>) -> Attempt {
        Attempt::Success {
            http_status: 200,
            answer: BypassState {
                until: until.and_then(parse_instant),
                can_bypass_mfa,
                unreadable: None,
            },
        }
    }

    fn decide(job: &Job, read: Attempt, ending: Ending) -> EndDecision {
        ResultRow::end_decision(origin(), job, read, 1, now(), ending)
    }

    fn skipped_with(decision: EndDecision) -> String {
        match decision {
            EndDecision::Recorded(row) if row.status == RowStatus::Skipped => row.error_code,
            other => panic!("expected a skipped row, got {other:?}"),
        }
    }

    #[test]
    fn a_bypass_in_force_that_ends_later_is_ended_a_minute_from_the_read() {
        let EndDecision::End(pending) = decide(
            &job(None),
            read(Some("2026-12-02T20:00:00.000Z"), Some(true)),
            MINUTE,
        ) else {
            panic!("not ended");
        };
        assert_eq!(pending.new_until, "2026-12-02T12:01:00.000Z");
        assert_eq!(pending.until_at(now()), "2026-12-02T12:01:00.000Z");
        let row = pending.answered(
            read(Some("2026-12-02T12:01:00.000Z"), Some(true)),
            1,
            pending_sent(),
        );
        assert_eq!(row.status, RowStatus::Ended);
        assert_eq!(row.previous_until, "2026-12-02T20:00:00.000Z");
        assert_eq!(row.bypass_mfa_enabled_until, "2026-12-02T12:01:00.000Z");
        assert_eq!(row.attempts, 2, "the read and the PUT");
    }

    fn pending_sent() -> String {
        "2026-12-02T12:01:00.000Z".to_owned()
    }

    #[test]
    fn a_put_that_waited_ends_the_bypass_a_minute_after_it_goes_but_never_later_than_in_force() {
        let EndDecision::End(pending) = decide(
            &job(None),
            read(Some("2026-12-02T12:05:00.000Z"), Some(true)),
            MINUTE,
        ) else {
            panic!("not ended");
        };
        let later = |seconds| now() + chrono::Duration::seconds(seconds);
        assert_eq!(pending.until_at(later(90)), "2026-12-02T12:02:30.000Z");
        assert_eq!(pending.until_at(later(239)), "2026-12-02T12:04:59.000Z");
        for waited in [240, 600] {
            assert_eq!(
                pending.until_at(later(waited)),
                "2026-12-02T12:04:59.999Z",
                "after {waited} s"
            );
        }
    }

    #[test]
    fn no_bypass_an_ended_one_or_one_pingone_says_is_not_usable_is_skipped_no_bypass() {
        for (until, can_bypass) in [
            (None, None),
            (Some("2026-12-02T11:00:00.000Z"), Some(false)),
            (Some("2026-12-02T20:00:00.000Z"), Some(false)),
        ] {
            assert_eq!(
                skipped_with(decide(&job(None), read(until, can_bypass), MINUTE)),
                NO_BYPASS,
                "{until:?} {can_bypass:?}"
            );
        }
    }

    #[test]
    fn a_bypass_ending_no_later_than_the_new_end_is_never_lengthened() {
        for until in ["2026-12-02T12:00:30.000Z", "2026-12-02T12:01:00.000Z"] {
            assert_eq!(
                skipped_with(decide(&job(None), read(Some(until), Some(true)), MINUTE)),
                ENDS_SOONER,
                "{until}"
            );
        }
    }

    #[test]
    fn a_bypass_changed_since_its_run_is_left_alone_unless_forced() {
        let granted = job(Some("2026-12-02T20:00:00.000Z"));
        let extended = read(Some("2026-12-03T08:00:00.000Z"), Some(true));
        assert_eq!(
            skipped_with(decide(&granted, extended.clone(), MINUTE)),
            CHANGED_SINCE
        );
        let forced = Ending {
            force: true,
            ..MINUTE
        };
        assert!(matches!(
            decide(&granted, extended, forced),
            EndDecision::End(_)
        ));
        let as_recorded = read(Some("2026-12-02T20:00:00.000Z"), Some(true));
        assert!(matches!(
            decide(&granted, as_recorded, MINUTE),
            EndDecision::End(_)
        ));
    }

    #[test]
    fn a_read_that_fails_or_cannot_be_understood_is_failed_with_no_put() {
        let refused = Attempt::Refused {
            http_status: 403,
            error_code: "ACCESS_FAILED".to_owned(),
            error_message: "forbidden".to_owned(),
            retry: crate::gateway::client::Retry::Never,
        };
        let unreadable = Attempt::Success {
            http_status: 200,
            answer: BypassState {
                until: None,
                can_bypass_mfa: None,
                unreadable: Some("its body is not JSON".to_owned()),
            },
        };
        for attempt in [refused, unreadable] {
            match decide(&job(None), attempt, MINUTE) {
                EndDecision::Recorded(row) => {
                    assert_eq!(row.status, RowStatus::Failed);
                    assert!(
                        row.error_message.contains("not ended"),
                        "{}",
                        row.error_message
                    );
                }
                EndDecision::End(_) => panic!("a PUT after a failed read"),
            }
        }
    }
}
