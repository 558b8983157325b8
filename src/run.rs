//! `run`: the wiring of the stages. The planning stage is `planning`, the results file's
//! lifecycle `record::place`. A blocking reader feeds
//! rows through a bounded channel; each row is
//! planned in input order (and, on `--resume`, checked against what earlier runs granted);
//! rows to send go to long-lived senders that share one throttle (`send`); every finished row
//! goes to the recorder, which journals it at once and writes the results in input order
//! (`record`). A bounded reorder window lets rows behind a slow one keep going until the
//! window fills, and bounds the memory they hold.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::{Mode, Rows, RunConfig, Target};
use crate::gateway::Gateway;
use crate::gateway::auth::TokenSource;
use crate::gateway::circuit::Circuit;
use crate::gateway::client::{ClientError, PingOneClient};
use crate::gateway::stop::Stop;
use crate::gateway::throttle::Throttle;
use crate::input::{InputError, InputReader, InputSource, RECORDS_PER_BATCH};
use crate::outcome::{RunError, RunOutcome};
use crate::plan::{ColumnNames, Planner};
use crate::planning::Feed;
use crate::record::in_order::{RecordError, Recorder};
use crate::record::journal::Journal;
use crate::record::manifest::{RunRecord, Settings, operator, sha256_of};
use crate::record::place::ResultsPlace;
use crate::record::progress::{LiveCounters, Progress};
use crate::record::resume::ResumeRules;
use crate::record::writer::{OutputTarget, ResultsWriter};
use crate::resolve::{EnvironmentAccess, Lookups, Resolver};
use crate::row::{Report, ResultRow};
use crate::selection::{SelectionError, list_members};
use crate::send::{SendJob, send_rows};

/// Rows read ahead of planning.
const READ_AHEAD: usize = 1024;

/// Senders per request allowed in flight. Each sender holds one row at a time (waiting for a
/// slot, in flight, or backing off), which bounds the rows being sent at once, so a few rows
/// backing off still leave senders for the others.
const ROWS_PER_REQUEST_IN_FLIGHT: usize = 4;

/// Runs `config` inside a span naming its ID, so that every log line of the run carries it.
pub async fn run(config: RunConfig) -> Result<RunOutcome, RunError> {
    let span = tracing::info_span!("run", run_id = %config.run_id);
    run_in_span(config).instrument(span).await
}

async fn run_in_span(config: RunConfig) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    // A file is opened before anything else, so that a bad input costs no request; a
    // population or group is listed once there is a connection to list it with.
    let file = match &config.input {
        Rows::Input(source) => Some(InputReader::open(source, &config.read)?),
        Rows::Selection(_) => None,
    };
    let mut place = claim(&config)?;
    let dry_run = config.mode.is_plan();
    let report = config.mode.report();
    let counters = config.live.clone();
    let stop = Arc::new(Stop::new(config.interrupt.clone()));
    let sender = connect(&config, counters.clone(), stop.clone())?;
    if dry_run && let Some(sender) = &sender {
        sender.check_token().await.map_err(RunError::Credentials)?;
    }
    let (reader, listed) = match (file, &config.input, &sender) {
        (Some(reader), _, _) => (reader, None),
        (None, Rows::Selection(selection), Some(sender)) => {
            let (reader, members) = list_members(selection, sender).await?;
            (reader, Some(members))
        }
        (None, _, _) => return Err(SelectionError::NotConnected(config.input.describe()).into()),
    };
    let header = reader.header().clone();

    // Created after every other setup step, so that a setup error leaves no file behind to
    // refuse the next run.
    let results = ResultsWriter::create(
        &place.written_to,
        config.overwrite,
        report,
        header.extra_names(),
    )
    .map_err(RunError::Output)?;
    // The journal is there so that no granted bypass goes unrecorded; reads grant nothing.
    let grants = config.mode == Mode::Grant;
    let journal = match (&place.written_to, &sender) {
        (OutputTarget::File(path), Some(_)) if grants => {
            Some(Journal::create(path, header.extra_names()).map_err(RunError::Output)?)
        }
        _ => None,
    };
    let mut manifest = place.save_record(&config.output, run_record(&config))?;
    // Hashed beside the run, on the blocking pool, for the record.
    let input_sha256 = {
        let input = match &config.input {
            Rows::Input(InputSource::File(path)) => Some(path.clone()),
            _ => None,
        };
        tokio::task::spawn_blocking(move || input.and_then(|path| sha256_of(&path).ok()))
    };

    let progress = Arc::new(Progress::start(
        config.progress,
        config.log_format,
        counters.clone(),
    ));
    if let Some(total) = listed.or(reader.counted_rows()) {
        progress.set_total(total);
    }

    let window = Arc::new(Semaphore::new(config.reorder_window.max(1)));
    let (results_sender, results_received) = mpsc::channel(config.reorder_window.max(1));
    // With a journal, the results file need not be flushed row by row: the journal is what
    // survives a crash. Without one (standard output), a reader gets each row as it is done.
    let flush_when_caught_up = sender.is_some() && journal.is_none();
    let recording = tokio::spawn(
        Recorder {
            results,
            journal,
            window: window.clone(),
            progress: progress.clone(),
            flush_when_caught_up,
            halt: stop.halt.clone(),
            report,
        }
        .record(results_received)
        .in_current_span(),
    );

    let puts = sender.as_ref().filter(|_| !dry_run);
    let (jobs, senders) = start_senders(puts, report, config.concurrency, &results_sender);
    let resume_rules = ResumeRules {
        now: config.rules.run_start,
        margin: config.resume_margin,
        default_until: config
            .rules
            .default_until
            .as_ref()
            .map(|(text, _)| text.clone()),
    };
    let mut feed = Feed {
        default_environment: config.rules.default_environment,
        planner: Planner::new(config.rules, ColumnNames::of(&header))
            .checking_only(config.mode == Mode::Check),
        earlier: place.earlier.take(),
        resume_rules,
        sending: puts.is_some(),
        resolver: sender
            .as_ref()
            .map(|sender| Resolver::new(Arc::new(Lookups::new(sender.clone())))),
        access: sender
            .as_ref()
            .filter(|_| dry_run)
            .map(|sender| EnvironmentAccess::new(sender.clone())),
        stop: &stop,
        window: &window,
        jobs,
        results: results_sender,
        sequence: 0,
        environments: std::collections::BTreeSet::new(),
    };
    let (records, records_received) = mpsc::channel(READ_AHEAD / RECORDS_PER_BATCH);
    reader.spawn(records).map_err(|error| InputError::Read {
        source_name: config.input.describe(),
        error,
    })?;
    // Standard input may never end: an interrupt stops reading it. A file is read to its
    // end, so that every row it holds is accounted for.
    let stop_reading =
        (config.input == Rows::Input(InputSource::Stdin)).then(|| config.interrupt.clone());
    let input_error = feed.rows(records_received, stop_reading).await;
    feed.carry_over(header.extras.len()).await;
    let sequence = feed.sequence;
    let environments = std::mem::take(&mut feed.environments);
    let earlier_sources = feed.earlier.take().map(|earlier| earlier.sources);
    // Closes the channels to the senders and the recorder, so that both end.
    drop(feed);
    for sender in senders {
        // A sender ends when the channel closes; one that panicked lost its row, which the
        // count of rows written below reports.
        let _ = sender.await;
    }
    let recorded = recording.await;
    if let Ok(progress) = Arc::try_unwrap(progress) {
        progress.finish();
    }
    let mut summary = match recorded {
        Ok(Ok(summary)) => summary,
        Ok(Err(error)) => return Err(RunError::Record(Box::new(error))),
        Err(join_error) => return Err(lost_rows(&config.output, join_error.to_string())),
    };
    if summary.total + summary.carried_over < sequence {
        // Only a sender that panicked can lose a row; say so rather than hand over a results
        // file with holes.
        return Err(lost_rows(
            &config.output,
            format!(
                "{} of {sequence} rows started were never written",
                sequence - summary.total - summary.carried_over
            ),
        ));
    }
    summary.add_requests(&counters, started.elapsed());
    summary.run_id = config.run_id.to_string();
    place
        .complete(&config.output, earlier_sources.unwrap_or_default())
        .map_err(RunError::Record)?;
    if let (Some(manifest), OutputTarget::File(output)) = (&mut manifest, &config.output) {
        manifest.run.finished_at = Some(chrono::Utc::now());
        manifest.run.summary = Some(summary.clone());
        manifest.run.environments = environments.iter().map(Uuid::to_string).collect();
        manifest.run.input_sha256 = input_sha256.await.ok().flatten();
        let results = output.clone();
        manifest.run.results_sha256 = tokio::task::spawn_blocking(move || sha256_of(&results).ok())
            .await
            .ok()
            .flatten();
        manifest.save(output).map_err(RunError::FinalRecord)?;
    }
    if let Some(path) = &config.summary_json {
        summary.write_json(path, report)?;
    }
    Ok(RunOutcome {
        summary,
        dry_run,
        report,
        results: config.output.describe(),
        input_error,
        aborted: stop.aborted(),
        interrupted: stop.interrupt.is_cancelled(),
    })
}

/// Long-lived senders taking rows from a channel (spawning a task for every row cost more than
/// the overhead benchmark allowed); none when nothing is sent.
fn start_senders(
    sender: Option<&Arc<Gateway>>,
    report: Report,
    concurrency: usize,
    results: &mpsc::Sender<(u64, ResultRow)>,
) -> (mpsc::Sender<SendJob>, Vec<tokio::task::JoinHandle<()>>) {
    let (jobs, jobs_received) = mpsc::channel::<SendJob>(1);
    let jobs_received = Arc::new(tokio::sync::Mutex::new(jobs_received));
    let senders = sender
        .iter()
        .flat_map(|sender| {
            (0..concurrency.max(1) * ROWS_PER_REQUEST_IN_FLIGHT).map(|_| {
                tokio::spawn(
                    send_rows(
                        (*sender).clone(),
                        report,
                        jobs_received.clone(),
                        results.clone(),
                    )
                    .in_current_span(),
                )
            })
        })
        .collect();
    (jobs, senders)
}

fn lost_rows(output: &OutputTarget, message: String) -> RunError {
    RunError::Record(Box::new(RecordError::finishing(
        output.describe(),
        std::io::Error::other(message),
    )))
}

/// The senders' shared state, when the run connects to PingOne.
fn connect(
    config: &RunConfig,
    counters: Arc<LiveCounters>,
    stop: Arc<Stop>,
) -> Result<Option<Arc<Gateway>>, RunError> {
    let (api_url, credentials) = match (&config.target, config.mode.connects()) {
        (Target::Offline { would_send }, false) => {
            tracing::info!("dry run: nothing is sent; a real run would send {would_send}");
            return Ok(None);
        }
        (Target::Offline { would_send }, true) => {
            return Err(RunError::Offline(would_send.clone()));
        }
        (
            Target::PingOne {
                api_url,
                credentials,
            },
            _,
        ) => (api_url, credentials.clone()),
    };
    let sender = Gateway {
        client: PingOneClient::new(
            api_url,
            config.run_id,
            config.timeout,
            config.concurrency,
            &config.extra_roots,
        )?,
        tokens: TokenSource::new(credentials, config.timeout, &config.extra_roots)
            .map_err(ClientError::from)?,
        throttle: Throttle::new(config.rate),
        circuit: Circuit::new(config.outage_patience),
        in_flight: Semaphore::new(config.concurrency.max(1)),
        credentials_proven: std::sync::atomic::AtomicBool::new(false),
        probe: tokio::sync::Mutex::new(()),
        retry: config.retry,
        counts: counters.sent.clone(),
        stop,
    };
    Ok(Some(Arc::new(sender)))
}

/// The run's record, as written beside its results before anything is sent.
fn run_record(config: &RunConfig) -> RunRecord {
    RunRecord {
        run_id: Some(config.run_id.to_string()),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        api_url: match &config.target {
            Target::PingOne { .. } if config.rehearsal => Some("the built-in simulator".to_owned()),
            Target::PingOne { api_url, .. } => Some(api_url.clone()),
            Target::Offline { .. } => None,
        },
        simulated: config.rehearsal,
        dry_run: config.mode.is_plan(),
        operator: operator(),
        input: config.input.describe(),
        input_sha256: None,
        until: config
            .rules
            .default_until
            .as_ref()
            .map(|(text, _)| text.clone()),
        settings: Settings {
            rate: config.rate,
            concurrency: config.concurrency,
            retries: config.retry.retries,
            max_window: config.rules.max_window_text.clone(),
            timezone: config.rules.zone.name(),
            selection: match &config.input {
                Rows::Selection(selection) => Some(format!(
                    "{}, --max-users {}",
                    selection.describe(),
                    selection.max_users
                )),
                Rows::Input(_) => None,
            },
            sheet: config.read.sheet.clone(),
            only: config.read.only.clone(),
            resolve: config.mode == Mode::Plan { lookups: true },
        },
        environments: Vec::new(),
        started_at: config.rules.run_start,
        finished_at: None,
        results_sha256: None,
        summary: None,
    }
}

/// The place a run's results go, claimed: the lock, and on `--resume` the earlier results
/// checked to have been made against the same API.
fn claim(config: &RunConfig) -> Result<ResultsPlace, RunError> {
    let identity = config.target.api_identity(config.rehearsal);
    let resume = config.resume.then_some((&identity, config.resume_any_api));
    Ok(ResultsPlace::claim(&config.output, resume)?)
}
