//! Which part of PingOne's audit log holds a run's activities: from a little before it started
//! (this machine's clock and PingOne's may disagree) to well after it finished (an activity is
//! recorded when PingOne handles the request, and the run's last answers may come late), never
//! later than now, and only within the 14 days PingOne serves without a restore. The filter
//! names the run's client, so that only its activities are paged through.

use chrono::{DateTime, Duration, Utc};

use crate::pingone::format_bypass_until;
use crate::record::manifest::RunRecord;

/// How far this machine's clock may be off PingOne's.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// How long after a run's end its activities are still looked for.
const RECORDED_LATE: Duration = Duration::hours(1);

/// The days of audit log PingOne serves without a restore.
const READABLE: Duration = Duration::days(14);

/// One run's part of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub run_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The client the run sent as, when its record says.
    pub client_id: Option<String>,
}

/// A run older than PingOne serves without a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooOld {
    pub started_at: DateTime<Utc>,
}

impl Window {
    /// The window of `run`, which ended at `finished_at` (or, killed, when the next run
    /// started, or by now), as read at `now`.
    pub fn of(
        run: &RunRecord,
        run_id: &str,
        ended_by: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, TooOld> {
        let readable_from = now - READABLE;
        if run.started_at < readable_from {
            return Err(TooOld {
                started_at: run.started_at,
            });
        }
        let ended = run.finished_at.or(ended_by).unwrap_or(now);
        Ok(Self {
            run_id: run_id.to_owned(),
            // A minute inside the readable days, so that the filter is still readable when
            // PingOne gets it.
            from: (run.started_at - CLOCK_SKEW).max(readable_from + Duration::minutes(1)),
            to: (ended + RECORDED_LATE).min(now),
            // The record is a file anyone may have edited: only a UUID goes into the filter.
            client_id: run
                .client_id
                .as_deref()
                .and_then(crate::plan::parse_id)
                .map(|id| id.to_string()),
        })
    }

    /// The SCIM filter of this window: the date range PingOne requires, and the run's client.
    pub fn filter(&self) -> String {
        let mut filter = format!(
            "recordedat gt \"{}\" and recordedat lt \"{}\"",
            format_bypass_until(self.from),
            format_bypass_until(self.to)
        );
        if let Some(client) = &self.client_id {
            filter.push_str(&format!(" and actors.client.id eq \"{client}\""));
        }
        filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(started_at: DateTime<Utc>, finished_at: Option<DateTime<Utc>>) -> RunRecord {
        let text = format!(
            r#"{{"tool_version":"0","api_url":null,"simulated":false,"dry_run":false,"operator":"o","input":"i","until":null,"started_at":"{}","finished_at":{},"summary":null,"client_id":"6b3e4c1a-0000-4000-8000-000000000001"}}"#,
            started_at.to_rfc3339(),
            finished_at.map_or("null".to_owned(), |at| format!("\"{}\"", at.to_rfc3339()))
        );
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("a record: {error}"))
    }

    #[test]
    fn a_window_is_widened_for_skew_and_late_records_but_never_past_now_or_fourteen_days() {
        let now = Utc::now();
        let started = now - Duration::hours(3);
        let finished = now - Duration::hours(2);
        let window = Window::of(&record(started, Some(finished)), "r", None, now)
            .unwrap_or_else(|_| panic!("readable"));
        assert_eq!(
            (window.from, window.to),
            (started - CLOCK_SKEW, finished + RECORDED_LATE)
        );
        assert!(
            window
                .filter()
                .ends_with("and actors.client.id eq \"6b3e4c1a-0000-4000-8000-000000000001\"")
        );
        let recent = Window::of(&record(now - Duration::minutes(2), None), "r", None, now)
            .unwrap_or_else(|_| panic!("readable"));
        assert_eq!(recent.to, now, "a window never reaches past now");
        let edge = Window::of(
            &record(now - READABLE + Duration::seconds(30), Some(now)),
            "r",
            None,
            now,
        )
        .unwrap_or_else(|_| panic!("readable"));
        assert!(
            edge.from > now - READABLE,
            "the skew never reaches past 14 days"
        );
        assert!(
            Window::of(
                &record(now - READABLE - Duration::seconds(1), Some(now)),
                "r",
                None,
                now
            )
            .is_err()
        );
        let mut edited = record(started, Some(finished));
        edited.client_id = Some("x\" or recordedat gt \"2000-01-01T00:00:00.000Z".to_owned());
        let window = Window::of(&edited, "r", None, now).unwrap_or_else(|_| panic!("readable"));
        assert!(
            !window.filter().contains("actors"),
            "an edited record's client ID never reaches the filter: {}",
            window.filter()
        );
    }
}
