//! The per-row loop: long-lived senders take planned rows from a channel, make each row's one
//! request through the gateway (a PUT for `run`, a GET for `status`), and hand the result row to
//! the recorder.

use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::mpsc;

use crate::gateway::client::{Attempt, PingOneClient, Transaction};
use crate::gateway::{Gateway, Request, Sent};
use crate::plan::Job;
use crate::row::{Report, ResultRow, RowOrigin};

/// A row on its way to a sender.
pub(crate) struct SendJob {
    pub(crate) position: u64,
    pub(crate) origin: RowOrigin,
    pub(crate) job: Job,
}

/// One long-lived sender: takes rows until the channel closes, hands each result to the writer.
pub(crate) async fn send_rows(
    gateway: Arc<Gateway>,
    report: Report,
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
        let transaction = gateway.client.row_transaction(origin.row);
        let sent = match report {
            Report::Grants => gateway.send(job.environment_id, &job, &transaction).await,
            Report::Status => {
                gateway
                    .send(job.environment_id, &Check(&job), &transaction)
                    .await
            }
        };
        let row = match (sent, report) {
            (Sent::Answered(attempt, attempts), Report::Grants) => {
                ResultRow::answered(origin, &job, attempt, attempts)
            }
            (Sent::Answered(attempt, attempts), Report::Status) => {
                ResultRow::checked(origin, &job, attempt, attempts)
            }
            (Sent::Stopped(reason, last_answer), _) => {
                ResultRow::not_sent(origin, &job, reason, last_answer)
            }
        };
        // Fails only when the writer has stopped, which the run reports.
        let _ = results.send((position, row)).await;
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
