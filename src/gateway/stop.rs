//! Why rows stop being sent: rejected credentials, an interrupt or a failed write stop the
//! whole run; repeated 403s stop one environment. Senders ask before every attempt, and their
//! waits end early when the run stops.

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::NotSent;

/// Consecutive 403s in one environment after which its remaining rows are not sent.
const FORBIDDEN_IN_A_ROW: u32 = 3;

/// Why rows stop being sent: rejected credentials, an interrupt or a failed write stop the
/// whole run, repeated 403s stop one environment.
#[derive(Default)]
pub(crate) struct Stop {
    pub(crate) interrupt: CancellationToken,
    /// Cancelled by an interrupt, when no token can be had, and by the recorder at the first
    /// failed write: every wait of every sender ends at once.
    pub(crate) halt: CancellationToken,
    /// Why the whole run stopped sending (rejected credentials, no token to be had): the
    /// `error_code` of the rows not sent, and what to check.
    aborted: std::sync::OnceLock<(&'static str, String)>,
    environments: std::sync::Mutex<std::collections::HashMap<Uuid, EnvironmentRefusals>>,
    /// Whether any 403 was ever answered: until one is, every request skips the lock above.
    forbidden_seen: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct EnvironmentRefusals {
    in_a_row: u32,
    stopped: bool,
}

impl Stop {
    pub(crate) fn new(interrupt: CancellationToken) -> Self {
        Self {
            halt: interrupt.child_token(),
            interrupt,
            ..Self::default()
        }
    }

    pub(crate) fn abort(&self, error: &super::auth::AuthError) {
        if self.aborted.set((error.code(), error.to_string())).is_ok() {
            tracing::warn!("no access token can be had; no more rows will be sent");
        }
        // Rows waiting for a send slot or a retry stop waiting.
        self.halt.cancel();
    }

    pub(crate) fn aborted(&self) -> Option<String> {
        self.aborted.get().map(|(_, reason)| reason.clone())
    }

    fn environments(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, EnvironmentRefusals>> {
        // Holds plain counters that no panic can leave half-updated.
        self.environments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The reason a row for this environment must not be sent, if there is one.
    pub(crate) fn reason_not_to_send(&self, environment: Uuid) -> Option<NotSent> {
        if let Some((code, reason)) = self.aborted.get() {
            return Some(NotSent {
                code,
                message: format!("the run stopped because {reason}"),
            });
        }
        if self.interrupt.is_cancelled() {
            return Some(NotSent {
                code: "INTERRUPTED",
                message: "the run was interrupted (Ctrl-C or SIGTERM); run it again with --resume to finish".to_owned(),
            });
        }
        if self.halt.is_cancelled() {
            return Some(NotSent {
                code: "RESULTS_NOT_WRITABLE",
                message: "the run stopped because its results could not be written".to_owned(),
            });
        }
        if !self
            .forbidden_seen
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return None;
        }
        self.environments()
            .get(&environment)
            .filter(|refusals| refusals.stopped)
            .map(|_| NotSent {
                code: "ENVIRONMENT_FORBIDDEN",
                message: format!(
                    "PingOne refused {FORBIDDEN_IN_A_ROW} requests in a row in environment {environment} with 403; {}",
                    super::transport::forbidden_meaning("the API URL")
                ),
            })
    }

    pub(crate) fn record_answer(&self, environment: Uuid, http_status: Option<u16>) {
        if http_status == Some(403) {
            self.forbidden_seen
                .store(true, std::sync::atomic::Ordering::Release);
        } else if !self
            .forbidden_seen
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        let mut environments = self.environments();
        let refusals = environments.entry(environment).or_default();
        if http_status == Some(403) {
            refusals.in_a_row += 1;
            if refusals.in_a_row >= FORBIDDEN_IN_A_ROW && !refusals.stopped {
                refusals.stopped = true;
                tracing::warn!(
                    %environment,
                    "{FORBIDDEN_IN_A_ROW} requests in a row refused with 403; no more rows will be sent to this environment"
                );
            }
        } else if http_status.is_some() {
            refusals.in_a_row = 0;
        }
    }
}
