//! The pipeline: builds the stages and connects them, and nothing else; only it knows their
//! order. It opens the input (or lists a selection through the gateway), claims the results'
//! place (`record::place`), connects the `gateway`, creates the run's files, then wires a
//! blocking reader through a bounded channel into the planning stage (`planning`), which hands
//! rows to send to long-lived senders sharing one gateway (`send`) and every finished row to the
//! recorder (`record::in_order`), which journals it at once and writes the results in input
//! order. A bounded reorder window lets rows behind a slow one keep going until the window
//! fills, and bounds the memory they hold. What the run does to each row is its `Mode`.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::{Mode, Rows, RunConfig, Target};
use crate::gateway::stop::Stop;
use crate::gateway::{Endpoint, Gateway, Pace};
use crate::input::{InputError, InputReader, InputSource, RECORDS_PER_BATCH};
use crate::outcome::{RunError, RunOutcome};
use crate::plan::{ColumnNames, Planner};
use crate::planning::Feed;
use crate::record::in_order::{RecordError, Recorder, ReorderWindow};
use crate::record::journal::Journal;
use crate::record::manifest::{Manifest, RecordKind, RunRecord, Settings, operator, sha256_of};
use crate::record::place::ResultsPlace;
use crate::record::progress::Progress;
use crate::record::resume::ResumeRules;
use crate::record::writer::{OutputTarget, ResultsWriter};
use crate::resolve::{EnvironmentAccess, Lookups, Resolver};
use crate::row::ResultRow;
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
    let opened = open(&config).await?;
    let header = opened.reader.header().clone();
    let files = create_files(&config, &opened, &header)?;
    let progress = Arc::new(Progress::start(
        config.progress,
        config.log_format,
        config.live.clone(),
        config.mode.report(),
    ));
    if let Some(total) = opened.listed.or(opened.reader.counted_rows()) {
        progress.set_total(total);
    }
    let window = Arc::new(ReorderWindow::new(config.reorder_window));
    let (results_sender, results_received) = mpsc::channel(config.reorder_window.max(1));
    // With a journal, the results file need not be flushed row by row: the journal is what
    // survives a crash. Without one (standard output), a reader gets each row as it is done.
    let flush_when_caught_up = opened.gateway.is_some() && files.journal.is_none();
    let recording = tokio::spawn(
        Recorder {
            results: files.results,
            journal: files.journal,
            window: window.clone(),
            progress: progress.clone(),
            flush_when_caught_up,
            halt: opened.stop.halt.clone(),
            report: config.mode.report(),
        }
        .record(results_received)
        .in_current_span(),
    );
    let fed = feed(&config, opened, &header, &window, results_sender).await?;
    let recorded = recording.await;
    if let Ok(progress) = Arc::try_unwrap(progress) {
        progress.finish();
    }
    let mut summary = match recorded {
        Ok(Ok(summary)) => summary,
        Ok(Err(error)) => return Err(RunError::Record(Box::new(error))),
        Err(join_error) => return Err(lost_rows(&config.output, join_error.to_string())),
    };
    if summary.total + summary.carried_over < fed.sequence {
        // Only a sender that panicked can lose a row; say so rather than hand over a results
        // file with holes.
        return Err(lost_rows(
            &config.output,
            format!(
                "{} of {} rows started were never written",
                fed.sequence - summary.total - summary.carried_over,
                fed.sequence
            ),
        ));
    }
    summary.add_requests(&config.live, started.elapsed());
    summary.run_id = config.run_id.to_string();
    finish(&config, fed, files.manifest, files.input_sha256, summary).await
}

/// What a run has once its rows can be read: the reader (a file's, or a selection's members
/// listed), the claimed place of its results, and the gateway when it connects.
struct Opened {
    reader: InputReader,
    /// How many members a selection listed.
    listed: Option<u64>,
    place: ResultsPlace,
    gateway: Option<Arc<Gateway>>,
    stop: Arc<Stop>,
}

async fn open(config: &RunConfig) -> Result<Opened, RunError> {
    // A file is opened before anything else, so that a bad input costs no request; a
    // population or group is listed once there is a connection to list it with.
    let file = match &config.input {
        Rows::Input(source) => Some(InputReader::open(source, &config.read)?),
        Rows::Selection(_) => None,
    };
    let place = claim(config)?;
    let stop = Arc::new(Stop::new(config.interrupt.clone()));
    let gateway = connect(config, stop.clone())?;
    if config.mode.is_plan()
        && let Some(gateway) = &gateway
    {
        gateway.check_token().await.map_err(RunError::Credentials)?;
    }
    let (reader, listed) = match (file, &config.input, &gateway) {
        (Some(reader), _, _) => (reader, None),
        (None, Rows::Selection(selection), Some(gateway)) => {
            let (reader, members) = list_members(selection, gateway).await?;
            (reader, Some(members))
        }
        (None, _, _) => return Err(SelectionError::NotConnected(config.input.describe()).into()),
    };
    Ok(Opened {
        reader,
        listed,
        place,
        gateway,
        stop,
    })
}

/// The run's files, created after every other setup step, so that a setup error leaves no
/// file behind to refuse the next run.
struct Files {
    results: ResultsWriter,
    journal: Option<Journal>,
    manifest: Option<Manifest>,
    /// Hashed beside the run, on the blocking pool, for the record.
    input_sha256: tokio::task::JoinHandle<Option<String>>,
}

fn create_files(
    config: &RunConfig,
    opened: &Opened,
    header: &crate::input::Header,
) -> Result<Files, RunError> {
    let written_to = &opened.place.written_to;
    let results = ResultsWriter::create(
        written_to,
        config.overwrite,
        config.mode.report(),
        header.extra_names(),
    )
    .map_err(RunError::Output)?;
    // The journal is there so that no granted bypass goes unrecorded; reads grant nothing.
    let journal = match (written_to, &opened.gateway) {
        (OutputTarget::File(path), Some(_)) if config.mode.changes_bypasses() => Some(
            Journal::create(path, config.mode.report(), header.extra_names())
                .map_err(RunError::Output)?,
        ),
        _ => None,
    };
    let manifest = opened
        .place
        .save_record(&config.output, run_record(config))?;
    let input = match &config.input {
        Rows::Input(InputSource::File(path)) => Some(path.clone()),
        _ => None,
    };
    let input_sha256 =
        tokio::task::spawn_blocking(move || input.and_then(|path| sha256_of(&path).ok()));
    Ok(Files {
        results,
        journal,
        manifest,
        input_sha256,
    })
}

/// What the planning stage leaves once every row is handed on.
struct Fed {
    /// Rows started.
    sequence: u64,
    environments: std::collections::BTreeSet<Uuid>,
    earlier_sources: Vec<std::path::PathBuf>,
    input_error: Option<InputError>,
    place: ResultsPlace,
    stop: Arc<Stop>,
}

/// Reads the rows and plans them into the senders and the recorder, and waits for the senders
/// to finish.
async fn feed(
    config: &RunConfig,
    mut opened: Opened,
    header: &crate::input::Header,
    window: &ReorderWindow,
    results: mpsc::Sender<(u64, ResultRow)>,
) -> Result<Fed, RunError> {
    let gateway = opened.gateway.as_ref();
    let sending = gateway.filter(|_| config.mode.sends_rows());
    let (jobs, senders) = start_senders(sending, config.mode, config.concurrency, &results);
    let resume_rules = ResumeRules {
        now: config.rules.run_start,
        margin: config.resume_margin,
        default_until: config.rules.default_until_text(),
        ending: config.mode.ends_bypasses(),
    };

    let mut feed = Feed {
        default_environment: config.rules.default_environment,
        // A results file of `run` has a status column: an end of it ends only its granted rows.
        planner: Planner::new(config.rules.clone(), ColumnNames::of(header))
            .for_mode(config.mode, header.status.is_some()),
        earlier: opened.place.earlier.take(),
        resume_rules,
        sending: sending.is_some(),
        resolver: gateway.map(|gateway| Resolver::new(Arc::new(Lookups::new(gateway.clone())))),
        access: gateway
            .filter(|_| config.mode.plans_a_grant())
            .map(|gateway| EnvironmentAccess::new(gateway.clone())),
        stop: &opened.stop,
        window,
        jobs,
        results,
        sequence: 0,
        environments: std::collections::BTreeSet::new(),
    };
    let (records, records_received) = mpsc::channel(READ_AHEAD / RECORDS_PER_BATCH);
    opened
        .reader
        .spawn(records)
        .map_err(|error| InputError::Read {
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
        // count of rows written reports.
        let _ = sender.await;
    }
    Ok(Fed {
        sequence,
        environments,
        earlier_sources: earlier_sources.unwrap_or_default(),
        input_error,
        place: opened.place,
        stop: opened.stop,
    })
}

/// The results moved into place, the run record completed, the summary written.
async fn finish(
    config: &RunConfig,
    fed: Fed,
    mut manifest: Option<Manifest>,
    input_sha256: tokio::task::JoinHandle<Option<String>>,
    summary: crate::record::summary::Summary,
) -> Result<RunOutcome, RunError> {
    fed.place
        .complete(&config.output, fed.earlier_sources)
        .map_err(RunError::Record)?;
    if let (Some(manifest), OutputTarget::File(output)) = (&mut manifest, &config.output) {
        manifest.run.finished_at = Some(chrono::Utc::now());
        manifest.run.summary = Some(summary.clone());
        manifest.run.environments = fed.environments.iter().map(Uuid::to_string).collect();
        manifest.run.input_sha256 = input_sha256.await.ok().flatten();
        let results = output.clone();
        manifest.run.results_sha256 = tokio::task::spawn_blocking(move || sha256_of(&results).ok())
            .await
            .ok()
            .flatten();
        manifest.save(output).map_err(RunError::FinalRecord)?;
    }
    let report = config.mode.report();
    if let Some(path) = &config.summary_json {
        summary.write_json(path, report)?;
    }
    Ok(RunOutcome {
        summary,
        dry_run: config.mode.is_plan(),
        report,
        results: config.output.describe(),
        input_error: fed.input_error,
        aborted: fed.stop.aborted(),
        interrupted: fed.stop.interrupt.is_cancelled(),
    })
}

/// Long-lived senders taking rows from a channel (spawning a task for every row cost more than
/// the overhead benchmark allowed); none when nothing is sent.
fn start_senders(
    sender: Option<&Arc<Gateway>>,
    mode: Mode,
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
                        mode,
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
fn connect(config: &RunConfig, stop: Arc<Stop>) -> Result<Option<Arc<Gateway>>, RunError> {
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
    let sender = Gateway::connect(
        Endpoint {
            api_url,
            run_id: config.run_id,
            credentials,
            timeout: config.timeout,
            extra_roots: &config.extra_roots,
        },
        Pace {
            rate: config.rate,
            concurrency: config.concurrency,
            retry: config.retry,
            outage_patience: config.outage_patience,
        },
        config.live.sent.clone(),
        stop,
    )?;
    Ok(Some(Arc::new(sender)))
}

/// The run's record, as written beside its results before anything is sent.
fn run_record(config: &RunConfig) -> RunRecord {
    RunRecord {
        run_id: Some(config.run_id.to_string()),
        client_id: match &config.target {
            Target::PingOne { credentials, .. } => credentials.client_id(),
            Target::Offline { .. } => None,
        },
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        api_url: match &config.target {
            Target::PingOne { .. } if config.rehearsal => Some("the built-in simulator".to_owned()),
            Target::PingOne { api_url, .. } => Some(api_url.clone()),
            Target::Offline { .. } => None,
        },
        simulated: config.rehearsal,
        dry_run: config.mode.is_plan(),
        kind: Some(RecordKind::of(config.mode)),
        operator: operator(),
        input: config.input.describe(),
        input_sha256: None,
        until: config.rules.default_until_text(),
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
            resolve: config.mode.plans_with_lookups(),
        },
        environments: Vec::new(),
        started_at: config.rules.run_start,
        finished_at: None,
        results_sha256: None,
        summary: None,
    }
}

/// The place a run's results go, claimed: the lock, and on `--resume` the earlier results
/// checked to have been made against the same API (as, for `end`, the results it ends).
fn claim(config: &RunConfig) -> Result<ResultsPlace, RunError> {
    let identity = config.target.api_identity(config.rehearsal);
    if config.mode.ends_bypasses()
        && let Rows::Input(InputSource::File(input)) = &config.input
    {
        crate::record::resume::check_end_api(input, &identity, config.resume_any_api)
            .map_err(crate::record::place::PlaceError::from)?;
    }
    let resume = config.resume.then_some((&identity, config.resume_any_api));
    Ok(ResultsPlace::claim(
        &config.output,
        resume,
        config.mode.report(),
    )?)
}
