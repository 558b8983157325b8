//! `verify --pingone`: the results of a grant or an end held against the one witness that is
//! not this tool, PingOne's own audit log. The run record says which runs made the results,
//! when, as which client and under which run IDs (sent with every request as
//! `X-Ping-External-Session-ID`); each run's part of each environment's log is read page by
//! page through a gateway of its own, paced under the audit API's lower limit, and every
//! activity of those runs is matched to its row by `X-Ping-External-Transaction-ID`
//! (`<run id>-row-<n>`) and the user it names. Which `action.type` PingOne logs a bypass change
//! with is not published, so it is never read. Rows whose change PingOne has not shown yet
//! are looked for again until `--audit-wait` has passed: audit messages arrive late.

pub(crate) mod activity;
pub mod ledger;
pub(crate) mod window;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::gateway::auth::Credentials;
use crate::gateway::client::RetryPolicy;
use crate::gateway::listing::{ListingFailure, PageRequestOf, page_of};
use crate::gateway::stop::Stop;
use crate::gateway::{Endpoint, Gateway, Pace, RequestCounts};
use crate::record::log_format::{Level, LogFormat};
use crate::record::manifest::{Manifest, RecordKind, Verified, VerifyError};
use activity::Activity;
use ledger::{Ledger, ResultsUnreadable, Verdict};
use window::Window;

/// What `verify --pingone` is asked to do.
pub struct AuditRequest {
    pub results: PathBuf,
    /// The results' run record, checked by [`checked_record`].
    pub manifest: Manifest,
    /// The reconciliation file to write.
    pub output: PathBuf,
    /// The API base, `/v1` included.
    pub api_url: String,
    pub credentials: Credentials,
    pub timeout: Duration,
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Audit requests a second.
    pub rate: f64,
    pub retries: u32,
    /// How long rows not yet in the log are looked for again.
    pub audit_wait: Duration,
    pub log_format: LogFormat,
}

/// What the reconciliation found.
#[derive(Debug)]
pub struct AuditOutcome {
    /// The ID this verification sent its own requests under.
    pub run_id: Uuid,
    pub output: PathBuf,
    /// What the checked run was, as its record says.
    pub what: String,
    pub counts: HashMap<Verdict, u64>,
    pub rows: usize,
    pub activities_read: u64,
    pub activities_of_runs: u64,
    pub requests: u64,
    pub throttled: u64,
    pub elapsed: Duration,
    /// PingOne holds no activity at all of the checked runs.
    pub nothing_logged: bool,
}

impl AuditOutcome {
    pub fn count(&self, verdict: Verdict) -> u64 {
        self.counts.get(&verdict).copied().unwrap_or(0)
    }

    /// 0 when every line agrees, 1 when any does not.
    pub fn exit_code(&self) -> u8 {
        let disagreeing = Verdict::ALL
            .iter()
            .filter(|verdict| !verdict.agrees())
            .map(|verdict| self.count(*verdict))
            .sum::<u64>();
        if disagreeing == 0 {
            crate::outcome::exit::SUCCESS
        } else {
            crate::outcome::exit::UNFINISHED
        }
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let counts = Verdict::ALL
            .iter()
            .map(|verdict| format!("{} {}", self.count(*verdict), verdict.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut line = format!(
            "checked against PingOne's audit log: {} rows: {counts}; {} activities read ({} of the run), {} requests in {:.1}s (verify run {}); reconciliation in {}",
            self.rows,
            self.activities_read,
            self.activities_of_runs,
            self.requests,
            self.elapsed.as_secs_f64(),
            self.run_id,
            self.output.display()
        );
        if self.nothing_logged {
            line.push_str(
                ". PingOne's audit log holds no activity of this run at all, so nothing could be confirmed: its audit messages may not be written yet (run again later, or with a longer --audit-wait), or this environment does not log bypass changes; this does not show that the grants are missing",
            );
        }
        line
    }

    /// The summary as JSON (`--summary-json`, and the fields of the JSON log line).
    pub fn json(&self) -> serde_json::Value {
        let mut fields = serde_json::Map::new();
        for verdict in Verdict::ALL {
            fields.insert(
                verdict.as_str().to_ascii_lowercase(),
                self.count(verdict).into(),
            );
        }
        for (key, value) in [
            ("rows", serde_json::json!(self.rows)),
            ("activities_read", self.activities_read.into()),
            ("activities_of_run", self.activities_of_runs.into()),
            ("requests", self.requests.into()),
            ("throttled", self.throttled.into()),
            ("elapsed_seconds", self.elapsed.as_secs_f64().into()),
            ("run_id", self.run_id.to_string().into()),
            ("audit", self.output.display().to_string().into()),
            ("nothing_logged", self.nothing_logged.into()),
            ("exit_code", self.exit_code().into()),
        ] {
            fields.insert(key.to_owned(), value);
        }
        serde_json::Value::Object(fields)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Record(#[from] VerifyError),
    #[error(
        "{results}: ALTERED since the run wrote it (SHA-256 {found}, the run record says {recorded}); altered results are not checked against PingOne"
    )]
    Altered {
        results: PathBuf,
        recorded: String,
        found: String,
    },
    #[error(
        "{results} holds {what}, which changes nothing PingOne logs: only the results of run (a grant) or end can be checked against PingOne's audit log"
    )]
    ChangesNothing { results: PathBuf, what: String },
    #[error(
        "the run record of {0} holds no run ID (a version before run IDs made it), so its requests cannot be told apart in PingOne's audit log"
    )]
    NoRunId(PathBuf),
    #[error(
        "{results} was made against {recorded}, and verify would read the audit log of {now}; {fix}"
    )]
    Elsewhere {
        results: PathBuf,
        recorded: String,
        now: String,
        fix: &'static str,
    },
    #[error(
        "the run began at {started_at}, more than 14 days ago: PingOne serves only the last 14 days of its audit log directly. Restore the run's days first (in the admin console, Monitoring > Audit, choose the dates and request the data; or with the activity restore API, /environments/{{envID}}/activityRestores), which takes 2 to 24 hours, at most 14 days at a time; then run verify --pingone again"
    )]
    TooOld { started_at: String },
    #[error(transparent)]
    Results(#[from] ResultsUnreadable),
    #[error(transparent)]
    Client(#[from] crate::gateway::client::ClientError),
    #[error("{0}")]
    Credentials(String),
    #[error(
        "PingOne refused to read the audit log of environment {environment} ({message}): the client needs the permission audit_reporting:read:activity (\"Read audit activity\"). Give the worker application a role that holds it in the admin console (Directory > Administrator Roles; Ping's page \"PingOne Built-in Role Permissions\" lists the built-in roles that do), or a custom role with just that permission, and run verify --pingone again"
    )]
    Forbidden { environment: Uuid, message: String },
    #[error(
        "PingOne refused the audit query in environment {environment}: HTTP {http_status} {message}"
    )]
    Refused {
        environment: Uuid,
        http_status: u16,
        message: String,
    },
    #[error("could not read the audit log of environment {environment}: {message}")]
    Unread { environment: Uuid, message: String },
    #[error("cannot write the reconciliation {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl AuditError {
    pub fn exit_code(&self) -> u8 {
        use crate::outcome::exit;
        match self {
            Self::Altered { .. } | Self::Unread { .. } => exit::UNFINISHED,
            Self::Credentials(_) | Self::Forbidden { .. } => exit::NO_TOKEN,
            _ => exit::USAGE,
        }
    }
}

/// Reconciles `request.results` with PingOne's audit log and writes the reconciliation file.
pub async fn reconcile(request: AuditRequest) -> Result<AuditOutcome, AuditError> {
    let started = Instant::now();
    let manifest = &request.manifest;
    let now = chrono::Utc::now();
    let windows = windows_of(manifest, &request.results, now)?;
    let mut ledger = Ledger::read(&request.results, manifest)?;
    let run_id = Uuid::new_v4();
    let counts = Arc::new(RequestCounts::default());
    let gateway = Gateway::connect(
        Endpoint {
            api_url: &request.api_url,
            run_id,
            credentials: request.credentials.clone(),
            timeout: request.timeout,
            extra_roots: &request.extra_roots,
        },
        Pace {
            rate: request.rate,
            concurrency: 1,
            retry: RetryPolicy {
                retries: request.retries,
                ..RetryPolicy::default()
            },
            outage_patience: request.timeout,
        },
        counts.clone(),
        Arc::new(Stop::new(tokio_util::sync::CancellationToken::new())),
    )?;
    let deadline = started + request.audit_wait;
    loop {
        for environment in ledger.environments() {
            for window in &windows {
                read_window(&gateway, environment, window, &mut ledger).await?;
            }
        }
        let pending = ledger.pending();
        let left = deadline.saturating_duration_since(Instant::now());
        if pending == 0 || left.is_zero() {
            break;
        }
        let pause =
            (request.audit_wait / 12).clamp(Duration::from_secs(1), Duration::from_secs(10));
        request.log_format.say(
            Level::Info,
            &format!(
                "{pending} changed rows not yet in PingOne's audit log (audit messages arrive late); looking again in {}, {} left of --audit-wait",
                humantime::format_duration(pause.min(left)),
                humantime::format_duration(Duration::from_secs(left.as_secs()))
            ),
            serde_json::Map::new(),
        );
        tokio::time::sleep(pause.min(left)).await;
    }
    let nothing_logged = ledger.activities_of_runs == 0;
    let verdicts = ledger
        .write(&request.output, nothing_logged)
        .map_err(|source| AuditError::Write {
            path: request.output.clone(),
            source,
        })?;
    Ok(AuditOutcome {
        run_id,
        output: request.output,
        what: request.manifest.run.what(),
        counts: verdicts,
        rows: ledger.rows(),
        activities_read: ledger.activities_read,
        activities_of_runs: ledger.activities_of_runs,
        requests: counts.requests.load(std::sync::atomic::Ordering::Relaxed),
        throttled: counts.throttled.load(std::sync::atomic::Ordering::Relaxed),
        elapsed: started.elapsed(),
        nothing_logged,
    })
}

/// The run record of `results`, once they are shown to be what it recorded, of a run that
/// changed something, against the API verify would read (`api_url`, or the simulator).
pub fn checked_record(
    results: &Path,
    api_url: &str,
    simulated: bool,
) -> Result<Manifest, AuditError> {
    if let Verified::Altered {
        recorded, found, ..
    } = crate::record::manifest::verify(results)?
    {
        return Err(AuditError::Altered {
            results: results.to_owned(),
            recorded,
            found,
        });
    }
    let manifest = Manifest::load(results)
        .map_err(VerifyError::from)?
        .ok_or_else(|| VerifyError::NoRecord(results.to_owned(), Manifest::path_for(results)))?;
    let run = &manifest.run;
    let changes = matches!(
        (run.kind, run.dry_run),
        (Some(RecordKind::Grant) | None, false) | (Some(RecordKind::End), false)
    );
    if !changes {
        return Err(AuditError::ChangesNothing {
            results: results.to_owned(),
            what: run.what(),
        });
    }
    let elsewhere = |recorded: String, now: String, fix| AuditError::Elsewhere {
        results: results.to_owned(),
        recorded,
        now,
        fix,
    };
    for run in manifest.runs() {
        match (run.simulated, simulated, &run.api_url) {
            (true, false, _) => {
                return Err(elsewhere(
                    "the built-in simulator (a rehearsal)".to_owned(),
                    api_url.to_owned(),
                    "add --simulate to check it against the rehearsal tenant's audit log",
                ));
            }
            (false, true, Some(url)) => {
                return Err(elsewhere(
                    url.clone(),
                    "the built-in simulator".to_owned(),
                    "drop --simulate to check it against PingOne",
                ));
            }
            (false, false, Some(url))
                if !url
                    .trim_end_matches('/')
                    .eq_ignore_ascii_case(api_url.trim_end_matches('/')) =>
            {
                return Err(elsewhere(
                    url.clone(),
                    api_url.to_owned(),
                    "pass the run's --region or --api-url",
                ));
            }
            _ => {}
        }
    }
    // A window PingOne must restore first is refused before any credential is asked for.
    windows_of(&manifest, results, chrono::Utc::now())?;
    Ok(manifest)
}

/// Each run's part of the log; a run without an ID cannot be found in it.
fn windows_of(
    manifest: &Manifest,
    results: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Window>, AuditError> {
    let runs: Vec<_> = manifest.runs().collect();
    let mut windows = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let Some(run_id) = &run.run_id else {
            return Err(AuditError::NoRunId(results.to_owned()));
        };
        let next_started = runs.get(index + 1).map(|next| next.started_at);
        let window =
            Window::of(run, run_id, next_started, now).map_err(|too_old| AuditError::TooOld {
                started_at: crate::pingone::format_bypass_until(too_old.started_at),
            })?;
        windows.push(window);
    }
    Ok(windows)
}

/// Reads every page of `window` in `environment` into the ledger.
async fn read_window(
    gateway: &Gateway,
    environment: Uuid,
    window: &Window,
    ledger: &mut Ledger,
) -> Result<(), AuditError> {
    let url = gateway
        .client()
        .listing_url(environment, "activities", &window.filter());
    let transaction = gateway.client().new_transaction("audit");
    let mut next = Some(url.clone());
    let mut first_page = true;
    while let Some(page_url) = next.take() {
        // Ping publishes no largest page for `/activities`: a first page refused as asked is
        // asked again at PingOne's own page size.
        let smaller = first_page.then(|| without_limit(&page_url)).flatten();
        let request = PageRequestOf::<Activity>::new(page_url);
        let sent = gateway.send(environment, &request, &transaction).await;
        let page = match (page_of(sent), smaller) {
            (Ok(page), _) => page,
            (
                Err(ListingFailure::Refused {
                    http_status: 400, ..
                }),
                Some(smaller),
            ) => {
                tracing::info!(
                    %environment,
                    "PingOne refused a page of 1,000 activities; reading its own page size"
                );
                next = Some(smaller);
                first_page = false;
                continue;
            }
            (Err(failure), _) => return Err(failed(environment, failure, gateway)),
        };
        first_page = false;
        if page.embedded.items.is_empty() {
            break;
        }
        for activity in &page.embedded.items {
            ledger.note(activity, environment);
        }
        if let Some(link) = page.links.next {
            next = Some(gateway.client().next_page_url(&url, &link.href).ok_or_else(|| {
                AuditError::Unread {
                    environment,
                    message: format!(
                        "PingOne's next-page link {:?} leads away from the audit log; it was not followed, so the token stays where it belongs",
                        link.href
                    ),
                }
            })?);
        }
    }
    Ok(())
}

/// `url` without its `limit`, when it has one.
fn without_limit(url: &str) -> Option<String> {
    let mut parsed = reqwest::Url::parse(url).ok()?;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(name, _)| name != "limit")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if kept.len() == parsed.query_pairs().count() {
        return None;
    }
    parsed.query_pairs_mut().clear().extend_pairs(kept);
    Some(parsed.to_string())
}

/// Why a page could not be had, as the verification's error.
fn failed(environment: Uuid, failure: ListingFailure, gateway: &Gateway) -> AuditError {
    match failure {
        ListingFailure::Failed {
            http_status: Some(403),
            error_message,
            ..
        } => AuditError::Forbidden {
            environment,
            message: error_message,
        },
        ListingFailure::Failed {
            http_status: Some(401),
            error_message,
            ..
        } => AuditError::Credentials(gateway.stopped_because().unwrap_or(error_message)),
        ListingFailure::Refused {
            http_status,
            message,
        } => AuditError::Refused {
            environment,
            http_status,
            message,
        },
        ListingFailure::Failed {
            http_status: Some(http_status),
            error_message,
            ..
        } if http_status < 500 && http_status != 429 => AuditError::Refused {
            environment,
            http_status,
            message: error_message,
        },
        ListingFailure::Failed { error_message, .. } => AuditError::Unread {
            environment,
            message: error_message,
        },
        ListingFailure::Stopped(reason) => match gateway.stopped_because() {
            Some(why) => AuditError::Credentials(why),
            None => AuditError::Unread {
                environment,
                message: reason.message,
            },
        },
    }
}
