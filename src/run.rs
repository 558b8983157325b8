//! `run`: wires the stages together. A blocking reader feeds rows through a bounded channel;
//! each row is validated in input order; valid rows go to concurrent senders that share one
//! throttle (`sender`); one writer puts results back in input order (`output`). A bounded
//! reorder window lets rows behind a slow one keep going until the window fills, and bounds
//! the memory they hold.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::{ClientCredentials, Credentials, TokenSource};
use crate::client::{Attempt, ClientError, PingOneClient, RetryPolicy};
use crate::input::{
    InputError, InputReader, InputRecord, InputSource, RECORDS_PER_BATCH, count_records,
};
use crate::output::{
    OutputError, OutputTarget, ResultRow, ResultsWriter, RowStatus, Summary, write_in_order,
};
use crate::plan::{ColumnNames, Job, Planner, Refusal, Rules, Verdict, parse_id};
use crate::progress::{LiveCounters, Progress, ProgressMode};
use crate::resume::{Earlier, EarlierResults, ResumeError, new_partial_path};
use crate::sender::{NotSent, RowSender, SendJob, Stop, send_rows};
use crate::simulator::{Simulator, SimulatorConfig, SimulatorError};

/// Rows that may be between "started" and "written" at once. A row stuck in retries holds the
/// rows behind it in memory until this many are waiting, then reading pauses until it ends.
/// At a few hundred bytes a row this bounds the window to a few megabytes; at PingOne's rates it
/// covers minutes of sending, longer than a row's whole retry schedule.
pub const DEFAULT_REORDER_WINDOW: usize = 10_000;

/// Rows read ahead of validation.
const READ_AHEAD: usize = 1024;

/// Senders per request allowed in flight. Each sender holds one row at a time (waiting for a
/// slot, in flight, or backing off), which bounds the rows being sent at once, so a few rows
/// backing off still leave senders for the others.
const ROWS_PER_REQUEST_IN_FLIGHT: usize = 4;

/// Where requests go.
pub enum Target {
    /// `--dry-run`: validate and plan; send nothing.
    DryRun,
    PingOne {
        api_url: String,
        credentials: Credentials,
    },
    /// `--simulate`: a simulator started inside this process.
    Simulator(Box<SimulatorConfig>),
}

/// Everything a run needs, validated by the command line before any row is read.
pub struct RunConfig {
    pub input: InputSource,
    pub output: OutputTarget,
    pub overwrite: bool,
    pub target: Target,
    /// Most requests per second, all environments together.
    pub rate: f64,
    /// Most requests in flight.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub rules: Rules,
    pub reorder_window: usize,
    pub progress: ProgressMode,
    pub summary_json: Option<PathBuf>,
    /// `--resume`: continue the run whose results are at `output`.
    pub resume: bool,
    /// Cancelled on the first Ctrl-C or SIGTERM: no row is started after it, requests in
    /// flight finish, and every remaining row is recorded as `not_attempted`.
    pub interrupt: CancellationToken,
}

impl RunConfig {
    /// A run with the contract's defaults (`--rate 50`, `--concurrency 32`, `--retries 5`,
    /// `--timeout 30s`, `--max-window 7d`), starting now, without progress output.
    pub fn new(input: InputSource, output: OutputTarget, target: Target) -> Self {
        Self {
            input,
            output,
            overwrite: false,
            target,
            rate: 50.0,
            concurrency: 32,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            rules: Rules {
                run_start: chrono::Utc::now(),
                max_window: Duration::from_secs(7 * 86_400),
                max_window_text: "7d".to_owned(),
                default_environment: None,
                default_until: None,
            },
            reorder_window: DEFAULT_REORDER_WINDOW,
            progress: ProgressMode::Never,
            summary_json: None,
            resume: false,
            interrupt: CancellationToken::new(),
        }
    }
}

/// How a run ended when it got as far as sending.
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: Summary,
    /// The input could not be read to its end; rows after the error are not in the results.
    pub input_error: Option<InputError>,
    /// PingOne rejected the credentials: the run stopped sending, and this says what to check.
    pub aborted: Option<String>,
    /// The run was interrupted before every row was sent.
    pub interrupted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Before any row was read or sent.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Output(OutputError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot start the built-in simulator: {0}")]
    Simulator(#[from] SimulatorError),
    #[error(transparent)]
    Resume(#[from] ResumeError),
    /// After sending began: the results could not be written.
    #[error("{0}; the rows written so far are kept")]
    Results(OutputError),
}

impl RunError {
    /// Whether the run stopped before anything was sent.
    pub fn nothing_sent(&self) -> bool {
        !matches!(self, Self::Results(_))
    }
}

pub async fn run(config: RunConfig) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    let reader = InputReader::open(&config.input)?;
    let header = reader.header().clone();
    let mut earlier = None;
    let mut written_to = config.output.clone();
    if config.resume {
        let OutputTarget::File(output) = &config.output else {
            return Err(ResumeError::Stdout.into());
        };
        let loaded = EarlierResults::load(output)?;
        if loaded.sources.is_empty() {
            tracing::warn!(results = %output.display(), "no earlier results to resume; every row will be processed");
        } else {
            tracing::info!(
                succeeded = loaded.succeeded_rows(),
                "resuming: rows that succeeded before will not be sent again"
            );
        }
        earlier = Some(loaded);
        written_to = OutputTarget::File(new_partial_path(output));
    }
    // Kept alive until the run ends: dropping it stops the simulator.
    let mut simulator = None;
    let connection = match config.target {
        Target::DryRun => None,
        Target::PingOne {
            api_url,
            credentials,
        } => Some((api_url, credentials)),
        Target::Simulator(simulator_config) => {
            let started = Simulator::start(*simulator_config, ([127, 0, 0, 1], 0).into()).await?;
            tracing::info!(api_url = %started.api_url(), "running against the built-in PingOne simulator");
            let credentials = Credentials::Client(ClientCredentials {
                token_url: started.token_url(),
                client_id: started.credentials().client_id.to_string(),
                client_secret: started.credentials().client_secret.clone(),
            });
            let api_url = started.api_url();
            simulator = Some(started);
            Some((api_url, credentials))
        }
    };
    let counters = Arc::new(LiveCounters::default());
    let stop = Arc::new(Stop::new(config.interrupt.clone()));
    let sender = match connection {
        None => None,
        Some((api_url, credentials)) => Some(Arc::new(RowSender {
            client: PingOneClient::new(&api_url, config.timeout, config.concurrency)?,
            tokens: TokenSource::new(credentials, config.timeout).map_err(ClientError::from)?,
            throttle: crate::throttle::Throttle::new(config.rate),
            in_flight: Semaphore::new(config.concurrency.max(1)),
            credentials_proven: std::sync::atomic::AtomicBool::new(false),
            probe: tokio::sync::Mutex::new(()),
            retry: config.retry,
            counters: counters.clone(),
            stop: stop.clone(),
        })),
    };

    // Created last, so that a setup error leaves no results file behind to refuse the next run.
    let writer = ResultsWriter::create(&written_to, config.overwrite, header.extra_names())
        .map_err(RunError::Output)?;

    let progress = Arc::new(Progress::start(config.progress, counters.clone()));
    if let (InputSource::File(path), true) = (&config.input, progress.shows_bar()) {
        let (path, progress) = (path.clone(), progress.clone());
        tokio::task::spawn_blocking(move || {
            if let Some(total) = count_records(&path) {
                progress.set_total(total);
            }
        });
    }

    let window = Arc::new(Semaphore::new(config.reorder_window.max(1)));
    let (results, results_received) = mpsc::channel(config.reorder_window.max(1));
    // A dry run sends nothing, so a crash can lose no record of a request: its results are
    // written as the buffer fills, not row by row.
    let flush_when_caught_up = sender.is_some();
    let writing = {
        let (window, progress) = (window.clone(), progress.clone());
        tokio::spawn(async move {
            write_in_order(
                writer,
                results_received,
                &window,
                &progress,
                flush_when_caught_up,
            )
            .await
        })
    };

    let (records, mut records_received) = mpsc::channel(READ_AHEAD / RECORDS_PER_BATCH);
    let reading = reader.spawn(records);
    let columns = ColumnNames {
        environment: header
            .environment
            .as_ref()
            .map_or_else(|| "--env".to_owned(), |(_, name)| name.clone()),
        user: header.user.1.clone(),
        until: header
            .until
            .as_ref()
            .map_or_else(|| "--until".to_owned(), |(_, name)| name.clone()),
    };
    let default_environment = config.rules.default_environment;
    let mut planner = Planner::new(config.rules, columns);
    // Long-lived senders taking rows from a channel: spawning a task for every row cost more
    // than the overhead benchmark allowed.
    let (jobs, jobs_received) = mpsc::channel::<SendJob>(1);
    let jobs_received = Arc::new(tokio::sync::Mutex::new(jobs_received));
    let senders: Vec<_> = sender
        .iter()
        .flat_map(|sender| {
            (0..config.concurrency.max(1) * ROWS_PER_REQUEST_IN_FLIGHT).map(|_| {
                tokio::spawn(send_rows(
                    sender.clone(),
                    jobs_received.clone(),
                    results.clone(),
                ))
            })
        })
        .collect();
    let mut input_error = None;
    let mut sequence = 0_u64;
    'rows: while let Some(batch) = records_received.recv().await {
        for item in batch {
            let record = match item {
                Ok(record) => record,
                Err(error) => {
                    input_error = Some(error);
                    break 'rows;
                }
            };
            // The writer closes the window when it fails; then nothing more is started.
            let Ok(slot) = window.acquire().await else {
                break 'rows;
            };
            slot.forget();
            let position = sequence;
            sequence += 1;
            let written_as = WrittenAs::new(&record, default_environment);
            if let Some(earlier) = &mut earlier
                && let Some(done) = earlier.take(
                    &written_as.environment_id,
                    &record.user,
                    &record.until,
                    record.row,
                )
            {
                let row = match done {
                    Earlier::Succeeded(success) => {
                        let environment = parse_id(&written_as.environment_id).unwrap_or_default();
                        let user = parse_id(record.user.trim()).unwrap_or_default();
                        success.into_row(record.row, environment, user, record.until, record.extras)
                    }
                    Earlier::DuplicateOf(first) => written_as.refused(
                        record,
                        RowStatus::Skipped,
                        String::new(),
                        format!("duplicate of row {first}, which succeeded in an earlier run"),
                    ),
                };
                if results.send((position, row)).await.is_err() {
                    break 'rows;
                }
                continue;
            }
            let verdict = planner.plan(&record);
            if let (Verdict::Send(job), Some(_)) = (&verdict, &sender)
                && let Some(reason) = stop.reason_not_to_send(job.environment_id)
            {
                let row = written_as.not_attempted(record, job, reason, 0);
                if results.send((position, row)).await.is_err() {
                    break 'rows;
                }
                continue;
            }
            match (verdict, &sender) {
                (
                    Verdict::Refuse {
                        kind,
                        requested_until,
                        message,
                    },
                    _,
                ) => {
                    let status = match kind {
                        Refusal::Invalid => RowStatus::Invalid,
                        Refusal::Skipped => RowStatus::Skipped,
                    };
                    let row = written_as.refused(
                        record,
                        status,
                        requested_until.unwrap_or_default(),
                        message,
                    );
                    if results.send((position, row)).await.is_err() {
                        break 'rows;
                    }
                }
                (Verdict::Send(job), None) => {
                    let row = written_as.planned(record, &job);
                    if results.send((position, row)).await.is_err() {
                        break 'rows;
                    }
                }
                (Verdict::Send(job), Some(_)) => {
                    let job = SendJob {
                        position,
                        record,
                        written_as,
                        job,
                    };
                    if jobs.send(job).await.is_err() {
                        break 'rows;
                    }
                }
            }
        }
    }
    drop(records_received);
    drop(jobs);
    drop(results);
    for sender in senders {
        // A sender ends when the channel closes; one that panicked lost its row, which the
        // count of rows written below reports.
        let _ = sender.await;
    }
    let written = writing.await;
    reading.abort();
    let progress = Arc::try_unwrap(progress).ok();
    if let Some(progress) = progress {
        progress.finish();
    }
    drop(simulator);
    let mut summary = match written {
        Ok(Ok(summary)) => summary,
        Ok(Err(error)) => return Err(RunError::Results(error)),
        Err(join_error) => {
            return Err(RunError::Results(OutputError::Write {
                target: config.output.describe(),
                source: std::io::Error::other(join_error.to_string()),
            }));
        }
    };
    if summary.total < sequence {
        // Only a sender that panicked can lose a row; say so rather than hand over a results
        // file with holes.
        return Err(RunError::Results(OutputError::Write {
            target: config.output.describe(),
            source: std::io::Error::other(format!(
                "{} of {sequence} rows started were never written",
                sequence - summary.total
            )),
        }));
    }
    let elapsed = started.elapsed().as_secs_f64();
    summary.requests = counters.requests.load(std::sync::atomic::Ordering::Relaxed);
    summary.retries = counters.retries.load(std::sync::atomic::Ordering::Relaxed);
    summary.throttled = counters
        .throttled
        .load(std::sync::atomic::Ordering::Relaxed);
    summary.elapsed_seconds = elapsed;
    summary.rate_per_second = if elapsed > 0.0 {
        summary.requests as f64 / elapsed
    } else {
        0.0
    };
    if let (Some(earlier), OutputTarget::File(partial), OutputTarget::File(output)) =
        (&earlier, &written_to, &config.output)
    {
        replace_results(partial, output, &earlier.sources).map_err(RunError::Results)?;
    }
    if let Some(path) = &config.summary_json {
        summary.write_json(path).map_err(RunError::Results)?;
    }
    Ok(RunOutcome {
        summary,
        input_error,
        aborted: stop.aborted(),
        interrupted: stop.interrupt.is_cancelled(),
    })
}

/// A resumed run's results take the earlier ones' place only once complete and on disk; the
/// partial files of earlier interrupted resumes are then no longer needed.
fn replace_results(partial: &Path, output: &Path, sources: &[PathBuf]) -> Result<(), OutputError> {
    let write_error = |source| OutputError::Write {
        target: output.display().to_string(),
        source,
    };
    std::fs::File::open(partial)
        .and_then(|file| file.sync_all())
        .map_err(write_error)?;
    std::fs::rename(partial, output).map_err(write_error)?;
    for source in sources.iter().filter(|source| source.as_path() != output) {
        if let Err(error) = std::fs::remove_file(source) {
            tracing::warn!(file = %source.display(), %error, "could not remove an earlier partial results file");
        }
    }
    Ok(())
}

/// The cells of a row as the results show them, whatever happens to it.
pub(crate) struct WrittenAs {
    pub(crate) environment_id: String,
    user_id: String,
}

impl WrittenAs {
    pub(crate) fn new(record: &InputRecord, default_environment: Option<Uuid>) -> Self {
        let environment = record.environment.trim();
        Self {
            environment_id: match (environment, default_environment) {
                ("", Some(default)) => default.to_string(),
                _ => environment.to_owned(),
            },
            user_id: record.user.trim().to_owned(),
        }
    }

    pub(crate) fn base(
        self,
        record: InputRecord,
        status: RowStatus,
        requested_until: String,
    ) -> ResultRow {
        ResultRow {
            row: record.row,
            environment_id: self.environment_id,
            user_id: self.user_id,
            until: record.until,
            requested_until,
            status,
            http_status: None,
            can_bypass_mfa: None,
            bypass_mfa_enabled_until: String::new(),
            attempts: 0,
            error_code: String::new(),
            error_message: String::new(),
            completed_at: Utc::now(),
            extras: record.extras,
        }
    }

    pub(crate) fn refused(
        self,
        record: InputRecord,
        status: RowStatus,
        requested_until: String,
        message: String,
    ) -> ResultRow {
        ResultRow {
            error_message: message,
            ..self.base(record, status, requested_until)
        }
    }

    pub(crate) fn not_attempted(
        self,
        record: InputRecord,
        job: &Job,
        reason: NotSent,
        attempts: u32,
    ) -> ResultRow {
        let mut row = self.base(record, RowStatus::NotAttempted, job.requested_until.clone());
        row.environment_id = job.environment_id.to_string();
        row.user_id = job.user_id.to_string();
        row.attempts = attempts;
        row.error_code = reason.code.to_owned();
        row.error_message = reason.message;
        row
    }

    pub(crate) fn planned(self, record: InputRecord, job: &Job) -> ResultRow {
        let mut row = self.base(record, RowStatus::Planned, job.requested_until.clone());
        row.environment_id = job.environment_id.to_string();
        row.user_id = job.user_id.to_string();
        row
    }

    pub(crate) fn sent(
        self,
        record: InputRecord,
        job: &Job,
        attempt: Attempt,
        attempts: u32,
    ) -> ResultRow {
        let mut row = self.base(record, RowStatus::Failed, job.requested_until.clone());
        row.environment_id = job.environment_id.to_string();
        row.user_id = job.user_id.to_string();
        row.attempts = attempts;
        match attempt {
            Attempt::Granted {
                http_status,
                can_bypass_mfa,
                bypass_mfa_enabled_until,
            } => {
                row.status = RowStatus::Succeeded;
                row.http_status = Some(http_status);
                row.can_bypass_mfa = can_bypass_mfa;
                row.bypass_mfa_enabled_until = bypass_mfa_enabled_until.unwrap_or_default();
            }
            Attempt::Refused {
                http_status,
                error_code,
                error_message,
                ..
            } => {
                row.http_status = Some(http_status);
                row.error_code = error_code;
                row.error_message = error_message;
            }
            Attempt::NoAnswer { error_message } => {
                row.error_code = "NO_ANSWER".to_owned();
                row.error_message = error_message;
            }
        }
        row
    }
}
