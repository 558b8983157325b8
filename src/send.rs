//! The per-row loop: long-lived senders take planned rows from a channel, make each row's
//! requests through the gateway (a PUT for `run`, a GET for `status`, a GET and then, when the
//! row decides so, a PUT for `end`), and hand the result row to the recorder.

use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::mpsc;

use crate::gateway::client::{Attempt, PingOneClient, Transaction};
use crate::gateway::{Gateway, Request, Sent};
use crate::mode::{Ending, Mode};
use crate::plan::Job;
use crate::row::{EndDecision, PendingEnd, ResultRow, RowOrigin};

/// A row on its way to a sender.
pub(crate) struct SendJob {
    pub(crate) position: u64,
    pub(crate) origin: RowOrigin,
    pub(crate) job: Job,
}

/// One long-lived sender: takes rows until the channel closes, hands each result to the writer.
pub(crate) async fn send_rows(
    gateway: Arc<Gateway>,
    mode: Mode,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<SendJob>>>,
    results: mpsc::Sender<(u64, ResultRow)>,
) {
    loop {
        let next = jobs.lock().await.recv().await;
        let Some(SendJob {
            position,
            origin,
            job,
        }) = next
        else {
            return;
        };
        // A row's GET and PUT share its transaction, so PingOne's audit log ties them together.
        let transaction = gateway.client().row_transaction(origin.row);
        let row = match mode {
            Mode::Grant => recorded(
                gateway.send(job.environment_id, &job, &transaction).await,
                origin,
                &job,
                ResultRow::answered,
            ),
            Mode::Check => recorded(
                gateway
                    .send(job.environment_id, &Check(&job), &transaction)
                    .await,
                origin,
                &job,
                ResultRow::checked,
            ),
            Mode::End { ending, dry_run } => {
                end_row(&gateway, origin, &job, &transaction, ending, !dry_run).await
            }
            // A plan's rows are never handed to a sender (`Mode::sends_rows`).
            Mode::Plan { .. } => return,
        };
        // Fails only when the writer has stopped, which the run reports.
        let _ = results.send((position, row)).await;
    }
}

/// The row one request came to: what its answer means (`answered`), or why it was not sent.
fn recorded(
    sent: Sent<crate::pingone::BypassState>,
    origin: RowOrigin,
    job: &Job,
    answered: fn(RowOrigin, &Job, Attempt, u32) -> ResultRow,
) -> ResultRow {
    match sent {
        Sent::Answered(attempt, attempts) => answered(origin, job, attempt, attempts),
        Sent::Stopped(reason, last) => ResultRow::not_sent(origin, job, reason, last),
    }
}

/// `end`'s row: its bypass read, and ended when the row decides so (and `put` allows).
async fn end_row(
    gateway: &Gateway,
    origin: RowOrigin,
    job: &Job,
    transaction: &Transaction,
    ending: Ending,
    put: bool,
) -> ResultRow {
    let (read, attempts) = match gateway
        .send(job.environment_id, &Check(job), transaction)
        .await
    {
        Sent::Answered(attempt, attempts) => (attempt, attempts),
        Sent::Stopped(reason, last) => return ResultRow::not_sent(origin, job, reason, last),
    };
    let now = chrono::Utc::now();
    let pending = match ResultRow::end_decision(origin, job, read, attempts, now, ending) {
        EndDecision::Recorded(row) => return row,
        EndDecision::End(pending) => pending,
    };
    if !put {
        return pending.planned();
    }
    let end = EndPut {
        pending: &pending,
        sent: std::sync::Mutex::new(pending.new_until.clone()),
    };
    let answer = gateway.send(job.environment_id, &end, transaction).await;
    let sent = end
        .sent
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match answer {
        Sent::Answered(attempt, attempts) => pending.answered(attempt, attempts, sent),
        Sent::Stopped(reason, last) => pending.not_sent(reason, last, sent),
    }
}

/// The PUT that ends a bypass. Its expiry is fixed as each attempt goes out, not when the row
/// was read (`PendingEnd::until_at`), and the last one sent is kept for the row.
struct EndPut<'a> {
    pending: &'a PendingEnd,
    sent: std::sync::Mutex<String>,
}

impl Request for EndPut<'_> {
    type Answer = crate::pingone::BypassState;
    fn send_once(
        &self,
        client: &PingOneClient,
        token: &SecretString,
        transaction: &Transaction,
    ) -> impl Future<Output = Attempt<Self::Answer>> + Send {
        let until = self.pending.until_at(chrono::Utc::now());
        // Holds a plain string that no panic can leave half-written.
        *self
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until.clone();
        let ids = (self.pending.environment_id(), self.pending.user_id());
        async move { client.put_bypass(ids, &until, token, transaction).await }
    }
}

/// A user's bypass state, read (`status`).
struct Check<'a>(&'a Job);

impl Request for Check<'_> {
    type Answer = crate::pingone::BypassState;
    fn send_once(
        &self,
        client: &PingOneClient,
        token: &SecretString,
        transaction: &Transaction,
    ) -> impl Future<Output = Attempt<Self::Answer>> + Send {
        client.get_bypass((self.0.environment_id, self.0.user_id), token, transaction)
    }
}

impl Request for Job {
    type Answer = crate::pingone::BypassState;
    fn send_once(
        &self,
        client: &PingOneClient,
        token: &SecretString,
        transaction: &Transaction,
    ) -> impl Future<Output = Attempt<Self::Answer>> + Send {
        client.put_bypass(
            (self.environment_id, self.user_id),
            &self.requested_until,
            token,
            transaction,
        )
    }
}
