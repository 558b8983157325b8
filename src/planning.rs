//! The planning stage: each record, in input order, becomes a result row (invalid, skipped,
//! resumed from an earlier run, planned) or a row to send; a row that names its user waits for
//! its name's lookup here, holding its place in the reorder window while the rows behind it go
//! on. A plan that reads (`--dry-run --resolve`) also learns whether PingOne lets the run into
//! each environment. The pipeline (`run`) builds it and hands it its channels.

use tokio::sync::mpsc;

use crate::record::in_order::ReorderWindow;

use crate::gateway::listing::Resolution;
use crate::gateway::stop::Stop;
use crate::input::InputError;
use crate::plan::{Job, Planner, Refused, Unresolved, Verdict};
use crate::record::resume::{Decision, EarlierResults, ResumeRules};
use crate::resolve::{EnvironmentAccess, Resolver, Waiting};
use crate::row::{LookedUp, ResultRow, RowOrigin};
use crate::send::SendJob;

/// The planning stage: turns each record into a result row or a row to send, in input order.
/// Rows that name their user wait for their name's lookup here, holding their place in the
/// reorder window; rows behind them go on meanwhile.
pub(crate) struct Feed<'a> {
    pub(crate) default_environment: Option<uuid::Uuid>,
    pub(crate) planner: Planner,
    pub(crate) earlier: Option<EarlierResults>,
    pub(crate) resume_rules: ResumeRules,
    pub(crate) sending: bool,
    /// Looks names up; `None` for a dry run, which sends nothing at all.
    pub(crate) resolver: Option<Resolver<NamedRow>>,
    /// A plan that reads (`--dry-run --resolve`): whether PingOne lets the run into each
    /// environment of its rows.
    pub(crate) access: Option<EnvironmentAccess>,
    pub(crate) stop: &'a Stop,
    pub(crate) window: &'a ReorderWindow,
    pub(crate) jobs: mpsc::Sender<SendJob>,
    pub(crate) results: mpsc::Sender<(u64, ResultRow)>,
    /// Rows started so far; the next row's position.
    pub(crate) sequence: u64,
    /// The environments of the valid rows, for the run record.
    pub(crate) environments: std::collections::BTreeSet<uuid::Uuid>,
}

/// A valid row waiting for the lookup of its name.
pub(crate) struct NamedRow {
    position: u64,
    origin: RowOrigin,
    unresolved: Unresolved,
    /// Whether `--resume` should look for an earlier success by the resolved ID: only when the
    /// name as written matched none.
    resume_by_id: bool,
}

/// Whether the next stage took the row; when not, no more rows are started.
type Taken = Result<(), ()>;

pub(crate) type RecordBatch = Vec<Result<crate::input::InputRecord, InputError>>;

/// How long the planning stage waits for more rows before looking up the names it has: long
/// enough for a file's next batch of rows to arrive, short enough to go unnoticed on a pipe.
const LOOKUP_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// What the planning stage waits for.
enum Event {
    Records(RecordBatch),
    Resolved(Vec<(NamedRow, Resolution)>),
    /// No rows came within `LOOKUP_LINGER`.
    Lingered,
    /// The input ended, or reading it was stopped.
    Ended,
}

impl Feed<'_> {
    /// Plans every record until the input ends, it cannot be read, or the recorder stops; then
    /// waits for the names still being looked up.
    pub(crate) async fn rows(
        &mut self,
        records: mpsc::Receiver<RecordBatch>,
        stop_reading: Option<tokio_util::sync::CancellationToken>,
    ) -> Option<InputError> {
        let input_error = self.read(records, stop_reading).await;
        if let Some(resolver) = &mut self.resolver {
            resolver.flush();
        }
        while let Some(rows) = self.next_resolved().await {
            if self.resolved(rows).await.is_err() {
                break;
            }
        }
        input_error
    }

    async fn next_resolved(&mut self) -> Option<Vec<(NamedRow, Resolution)>> {
        self.resolver.as_mut()?.next().await
    }

    async fn read(
        &mut self,
        mut records: mpsc::Receiver<RecordBatch>,
        stop_reading: Option<tokio_util::sync::CancellationToken>,
    ) -> Option<InputError> {
        loop {
            let batch = match records.try_recv() {
                Ok(batch) => batch,
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match self.next_event(&mut records, stop_reading.as_ref()).await {
                        Event::Records(batch) => batch,
                        Event::Resolved(rows) => {
                            if self.resolved(rows).await.is_err() {
                                return None;
                            }
                            continue;
                        }
                        Event::Lingered => {
                            if let Some(resolver) = &mut self.resolver {
                                resolver.flush();
                            }
                            continue;
                        }
                        Event::Ended => return None,
                    }
                }
            };
            for item in batch {
                let record = match item {
                    Ok(record) => record,
                    Err(error) => return Some(error),
                };
                if !self.claim_window_slot().await {
                    return None;
                }
                let position = self.sequence;
                self.sequence += 1;
                let verdict = self.planner.plan(&record);
                let origin = RowOrigin::new(record, self.default_environment);
                if self.take(position, verdict, origin).await.is_err() {
                    return None;
                }
            }
        }
    }

    async fn next_event(
        &mut self,
        records: &mut mpsc::Receiver<RecordBatch>,
        stop_reading: Option<&tokio_util::sync::CancellationToken>,
    ) -> Event {
        let stopped = async {
            match stop_reading {
                Some(stop) => stop.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let waiting = self.resolver.as_ref().is_some_and(Resolver::is_waiting);
        // A timer only while names wait to be sent: a file of IDs, or a pipe, waits without one.
        let queued = self.resolver.as_ref().is_some_and(Resolver::has_queued);
        let linger = async {
            if queued {
                tokio::time::sleep(LOOKUP_LINGER).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            batch = records.recv() => batch.map_or(Event::Ended, Event::Records),
            () = stopped => Event::Ended,
            Some(rows) = self.next_resolved(), if waiting => Event::Resolved(rows),
            () = linger => Event::Lingered,
        }
    }

    /// A place in the reorder window for the next row; `false` once the recorder has failed.
    /// While the window is full, the names queued are looked up and the rows resolved meanwhile
    /// are passed on: the rows that hold the window may be the ones waiting for them.
    async fn claim_window_slot(&mut self) -> bool {
        let window = self.window;
        if let Some(claimed) = window.try_claim() {
            return claimed;
        }
        if let Some(resolver) = &mut self.resolver {
            resolver.flush();
        }
        loop {
            let waiting = self.resolver.as_ref().is_some_and(Resolver::is_waiting);
            tokio::select! {
                claimed = window.claim() => return claimed,
                Some(rows) = self.next_resolved(), if waiting => {
                    if self.resolved(rows).await.is_err() {
                        return false;
                    }
                }
            }
        }
    }

    async fn take(&mut self, position: u64, verdict: Verdict, origin: RowOrigin) -> Taken {
        match &verdict {
            Verdict::Send(job) => {
                self.environments.insert(job.environment_id);
            }
            Verdict::Resolve(unresolved) => {
                self.environments.insert(unresolved.name.environment_id);
            }
            Verdict::Refuse(_) => {}
        }
        match verdict {
            Verdict::Refuse(refused) => self.refuse(position, refused, origin).await,
            Verdict::Resolve(unresolved) => self.resolve(position, unresolved, origin).await,
            Verdict::Send(job) => {
                let decision = self.resume_decision(&origin, &job.requested_until, false);
                self.send(position, job, origin, decision, false).await
            }
        }
    }

    /// What `--resume` says of a row: asked by its user cell as written, or (`by_id`) by the ID
    /// its name resolved to; a row is new when there is no earlier run.
    fn resume_decision(
        &mut self,
        origin: &RowOrigin,
        requested_until: &str,
        by_id: bool,
    ) -> Decision {
        match &mut self.earlier {
            None => Decision::New,
            Some(earlier) if by_id => {
                earlier.decide_resolved(origin, requested_until, &self.resume_rules)
            }
            Some(earlier) => earlier.decide(origin, requested_until, &self.resume_rules),
        }
    }

    async fn refuse(&self, position: u64, refused: Refused, origin: RowOrigin) -> Taken {
        self.record(position, ResultRow::refused(origin, refused))
            .await
    }

    /// A row that names its user: resumed by its name as written, or looked up.
    async fn resolve(
        &mut self,
        position: u64,
        unresolved: Unresolved,
        mut origin: RowOrigin,
    ) -> Taken {
        let requested_until = unresolved.requested_until();
        let mut resume_by_id = true;
        match self.resume_decision(&origin, &requested_until, false) {
            Decision::New => {}
            Decision::Done(earlier) => {
                return self
                    .record(position, ResultRow::resumed(origin, &earlier))
                    .await;
            }
            // Decided by the name as written: the ID it resolves to is not asked again.
            Decision::Again { earlier } => {
                origin.earlier_grant = Some(earlier);
                resume_by_id = false;
            }
        }
        let Some(resolver) = &mut self.resolver else {
            let row = ResultRow::planned_by_name(origin, &unresolved);
            return self.record(position, row).await;
        };
        let named = NamedRow {
            position,
            origin,
            unresolved,
            resume_by_id,
        };
        match resolver.ask(Waiting {
            name: named.unresolved.name.clone(),
            row: named,
        }) {
            Some(known) => self.resolved(vec![known]).await,
            None => Ok(()),
        }
    }

    /// Rows whose names were looked up: sent when the name is one user's, recorded as the
    /// row decides otherwise.
    async fn resolved(&mut self, rows: Vec<(NamedRow, Resolution)>) -> Taken {
        for (named, resolution) in rows {
            let NamedRow {
                position,
                origin,
                unresolved,
                resume_by_id,
            } = named;
            match ResultRow::looked_up(origin, &unresolved, resolution) {
                LookedUp::Found(origin, user_id) => {
                    match self.planner.resolved(origin.row, &unresolved, user_id) {
                        Ok(job) => {
                            let decision = if resume_by_id {
                                self.resume_decision(&origin, &job.requested_until, true)
                            } else {
                                Decision::New
                            };
                            self.send(position, job, origin, decision, true).await?;
                        }
                        Err(refused) => self.refuse(position, refused, origin).await?,
                    }
                }
                LookedUp::Recorded(row) => self.record(position, row).await?,
            }
        }
        Ok(())
    }

    /// A valid row with its user's ID: resumed, planned, held back, or handed to the senders.
    async fn send(
        &mut self,
        position: u64,
        job: Job,
        mut origin: RowOrigin,
        decision: Decision,
        looked_up: bool,
    ) -> Taken {
        match decision {
            Decision::New => {}
            Decision::Done(earlier) => {
                return self
                    .record(position, ResultRow::resumed(origin, &earlier))
                    .await;
            }
            Decision::Again { earlier } => origin.earlier_grant = Some(earlier),
        }
        if !self.sending {
            // A row whose name was looked up got there through PingOne's answer, which proves
            // the run may enter its environment.
            let row = match self.access.as_mut() {
                Some(access) if looked_up => {
                    access.entered(job.environment_id);
                    ResultRow::planned(origin, &job)
                }
                Some(access) => match access.refusal(job.environment_id).await {
                    Some(refused) => ResultRow::environment_refused(
                        origin,
                        &job,
                        refused.http_status,
                        refused.error_code,
                        refused.error_message,
                    ),
                    None => ResultRow::planned(origin, &job),
                },
                None => ResultRow::planned(origin, &job),
            };
            return self.record(position, row).await;
        }
        if let Some(reason) = self.stop.reason_not_to_send(job.environment_id) {
            let row = ResultRow::not_sent(origin, &job, reason, None);
            return self.record(position, row).await;
        }
        self.jobs
            .send(SendJob {
                position,
                origin,
                job,
            })
            .await
            .map_err(drop)
    }

    async fn record(&self, position: u64, row: ResultRow) -> Taken {
        self.results.send((position, row)).await.map_err(drop)
    }

    /// Earlier successes no input row matched go after the input's rows.
    pub(crate) async fn carry_over(&mut self, extra_columns: usize) {
        let Some(earlier) = &self.earlier else {
            return;
        };
        // The recorder closes the window when it can write no more.
        if self.window.is_closed() {
            return;
        }
        for row in earlier.not_in_input(extra_columns) {
            let position = self.sequence;
            self.sequence += 1;
            if self.record(position, row).await.is_err() {
                return;
            }
        }
    }
}
