//! The simulated tenant's audit log as it is kept: each activity as PingOne records it (the
//! external IDs cut and cleaned as PingOne does), appended by the service and read by the
//! activities endpoint (`audit`), which only it filters and pages.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How far back PingOne's audit log can be read without restoring it first.
pub const READABLE_DAYS: i64 = 14;

/// The most characters PingOne keeps of an external ID.
const EXTERNAL_ID_CHARACTERS: usize = 100;

/// One activity of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditActivity {
    pub id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub environment_id: Uuid,
    pub user_id: Uuid,
    pub client_id: Uuid,
    /// PingOne's own ID of the request.
    pub correlation_id: Uuid,
    /// `X-Ping-External-Session-ID` and `-Transaction-ID` as PingOne records them.
    pub session_id: Option<String>,
    pub transaction_id: Option<String>,
    pub succeeded: bool,
    pub description: String,
}

/// An activity a specification adds, as if PingOne had logged a request the tool never made.
#[derive(Debug, Clone)]
pub struct AddedActivity {
    pub environment_id: Uuid,
    pub user_id: Uuid,
    pub session_id: String,
    pub transaction_id: String,
    pub succeeded: bool,
}

/// The log: appended by the service, read by the activities endpoint.
#[derive(Default)]
pub(super) struct AuditLog {
    activities: Mutex<Vec<AuditActivity>>,
}

impl AuditLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<AuditActivity>> {
        self.activities
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn record(&self, activity: AuditActivity) {
        self.lock().push(activity);
    }

    pub(super) fn all(&self) -> Vec<AuditActivity> {
        self.lock().clone()
    }

    /// Takes away every activity of `transaction_id`; how many there were.
    pub(super) fn lose(&self, transaction_id: &str) -> usize {
        let mut activities = self.lock();
        let before = activities.len();
        activities.retain(|activity| activity.transaction_id.as_deref() != Some(transaction_id));
        before - activities.len()
    }

    /// The activities `selects` keeps that PingOne would show by `now` (recorded at least
    /// `lag` ago), oldest first.
    pub(super) fn matching(
        &self,
        selects: impl Fn(&AuditActivity) -> bool,
        now: DateTime<Utc>,
        lag: std::time::Duration,
    ) -> Vec<AuditActivity> {
        let lag = chrono::Duration::from_std(lag).unwrap_or(chrono::Duration::MAX);
        let mut found: Vec<AuditActivity> = self
            .lock()
            .iter()
            .filter(|activity| {
                activity
                    .recorded_at
                    .checked_add_signed(lag)
                    .is_some_and(|shown| shown <= now)
                    && selects(activity)
            })
            .cloned()
            .collect();
        found.sort_by_key(|activity| (activity.recorded_at, activity.id));
        found
    }
}

/// An external ID as PingOne records it: at most 100 characters, and every character outside
/// letters, digits and `. _ - / @ = # +` replaced by `_`.
pub(super) fn recorded_external_id(sent: &[u8]) -> String {
    String::from_utf8_lossy(sent)
        .chars()
        .take(EXTERNAL_ID_CHARACTERS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-/@=#+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
