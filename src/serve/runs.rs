//! A planned run's side of the page: starting its grant (and resuming or retrying one) in a
//! child process, stopping it, its page, its progress as server-sent events, and its files to
//! download.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use tokio_util::sync::CancellationToken;

use super::child::Ended;
use super::state::{Phase, ServeConfig, Server, Shared, in_child, page_error};
use super::{history, pages};
use crate::cli::request::RunRequest;
use crate::cli::run::{GrantArgs, RowsArgs};
use crate::config::Mode;
use crate::record::progress::{AttentionRow, LiveCounters};
use crate::record::summary::Summary;

pub(super) async fn start_run(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    launch(&server, id, |phase| matches!(phase, Phase::Planned), false)
}

/// Finishes a run that died or was stopped: `run --resume` on its results, so that nothing
/// granted is sent again.
pub(super) async fn resume_run(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    launch(&server, id, resumable, true)
}

/// A run that died or was stopped can be resumed, and one with rows not granted (failed, not
/// attempted) retried the same way: `--resume` sends exactly the rows without a grant.
fn resumable(phase: &Phase) -> bool {
    match phase {
        Phase::Died { .. } => true,
        Phase::Done { exit_code, .. } => {
            *exit_code == crate::outcome::exit::INTERRUPTED
                || *exit_code == crate::outcome::exit::UNFINISHED
        }
        Phase::Planned | Phase::Running { .. } => false,
    }
}

/// The words of the button that resumes a run, when it can be.
fn resume_label(phase: &Phase) -> Option<&'static str> {
    match phase {
        Phase::Done { exit_code, .. } if *exit_code == crate::outcome::exit::UNFINISHED => {
            Some(pages::RETRY)
        }
        phase if resumable(phase) => Some(pages::RESUME),
        _ => None,
    }
}

/// Starts run `id`'s grant in a child process when its phase allows (`may_start`), and shows
/// its page.
fn launch(
    server: &Arc<Server>,
    id: u64,
    may_start: impl Fn(&Phase) -> bool,
    resume: bool,
) -> Response {
    let mut runs = server.runs();
    let Some(entry) = runs.get_mut(&id) else {
        return page_error(StatusCode::NOT_FOUND, "no such run");
    };
    if !may_start(&entry.phase) {
        return Redirect::to(&format!("/runs/{id}")).into_response();
    }
    let running = match server.run_slot() {
        Ok(slot) => slot,
        Err(busy) => return busy.page(),
    };
    let live = Arc::new(LiveCounters::keeping_attention());
    let rows = entry.rows_to_run();
    live.total.store(rows, Ordering::Relaxed);
    let interrupt = CancellationToken::new();
    entry.phase = Phase::Running {
        live: live.clone(),
        interrupt: interrupt.clone(),
    };
    let summary = entry.folder.join("summary.json");
    let folder = entry.folder.clone();
    let request = if entry.ends() {
        super::ends::end_request(&server.config, &folder, false, resume)
    } else {
        grant_request(&server.config, &folder, resume)
    };
    if resume && summary.exists() {
        // The stopped attempt's summary is kept beside the new one.
        let _ = std::fs::rename(&summary, unused_name(&folder, "summary", "json"));
    }
    let server = server.clone();
    tokio::spawn(async move {
        let ended = in_child(
            &server,
            request,
            (&folder.join("run"), &summary),
            Some((live.clone(), interrupt)),
        )
        .await;
        let phase = recorded_end(&folder, id, ended, live.take_attention());
        if let Some(entry) = server.runs().get_mut(&id) {
            entry.phase = phase;
        }
        drop(running);
    });
    Redirect::to(&format!("/runs/{id}")).into_response()
}

/// The grant of the plan in `folder`. The plan is the input: its rows carry the user IDs that
/// names resolved to and the exact expiries the page showed, so what is granted is what was
/// confirmed, however long after the check the button is pressed.
fn grant_request(config: &ServeConfig, folder: &Path, resume: bool) -> RunRequest {
    let rows = RowsArgs {
        input: Some(folder.join("plan.csv").display().to_string()),
        output: Some(folder.join("results.csv").display().to_string()),
        only: vec!["planned".to_owned()],
        ..RowsArgs::default()
    };
    let grant = GrantArgs {
        resume,
        ..GrantArgs::default()
    };
    config.request(Mode::Grant, rows, grant)
}

/// How a grant's process ended, kept in `folder` for a restarted server, as the phase the page
/// shows.
fn recorded_end(folder: &Path, id: u64, ended: Ended, attention: Vec<AttentionRow>) -> Phase {
    let end = match &ended {
        Ended::Finished { exit_code, .. } => history::EndRecord {
            exit_code: Some(*exit_code),
            died: None,
        },
        Ended::Refused(why, _) | Ended::Died(why) => history::EndRecord {
            exit_code: None,
            died: Some(why.clone()),
        },
    };
    history::keep(folder, history::END_RECORD, &end);
    match ended {
        Ended::Finished { summary, exit_code } => Phase::Done {
            summary,
            exit_code,
            attention,
        },
        Ended::Refused(why, _) | Ended::Died(why) => {
            tracing::warn!(run = id, %why, "a run from the page did not finish");
            Phase::Died { why, attention }
        }
    }
}

/// `<stem>.<n>.<extension>` in `folder` for the first `n` from 1 not taken.
fn unused_name(folder: &Path, stem: &str, extension: &str) -> PathBuf {
    (1_u32..)
        .map(|n| folder.join(format!("{stem}.{n}.{extension}")))
        .find(|path| !path.exists())
        .unwrap_or_else(|| folder.join(format!("{stem}.earlier.{extension}")))
}

pub(super) async fn stop_run(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    if let Some(Phase::Running { interrupt, .. }) = server.runs().get(&id).map(|entry| &entry.phase)
    {
        interrupt.cancel();
    }
    Redirect::to(&format!("/runs/{id}")).into_response()
}

pub(super) async fn run_page(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    let runs = server.runs();
    match runs.get(&id) {
        Some(entry) => Html(pages::run(
            id,
            &entry.name,
            &phase_label(entry),
            resume_label(&entry.phase).map(|label| {
                if entry.ends() {
                    pages::RESUME_END
                } else {
                    label
                }
            }),
            if entry.ends() {
                pages::RunPage::End
            } else {
                pages::RunPage::Grant {
                    end_offered: entry.end_offered(),
                }
            },
            (entry.audit_offered(), server.config.audit_wait),
        ))
        .into_response(),
        None => page_error(StatusCode::NOT_FOUND, "no such run"),
    }
}

/// Progress as server-sent events: the counters twice a second, then `done` with the summary.
pub(super) async fn events(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    let stream = progress_events(server, id);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn progress_events(
    server: Arc<Server>,
    id: u64,
) -> impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>> {
    // Each event carries the rows needing attention that this stream has not sent yet, and the
    // position of the first of them, so that a page whose stream reconnected (and so starts
    // again from the first) lists none twice.
    let state = (server, id, false, 0_usize);
    futures_util::stream::unfold(state, |(server, id, ended, shown)| async move {
        if ended {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let event = {
            let runs = server.runs();
            match runs.get(&id).map(|entry| &entry.phase) {
                Some(Phase::Running { live, .. }) => {
                    let attention = live.attention_from(shown);
                    // The counters as `--progress events` names them, and the rows since.
                    let mut data = serde_json::to_value(live.snapshot()).unwrap_or_default();
                    data["attention"] = serde_json::json!(attention);
                    data["attention_from"] = serde_json::json!(shown);
                    Some(("progress", data, attention.len(), false))
                }
                Some(Phase::Done {
                    summary,
                    exit_code,
                    attention,
                }) => {
                    let attention = attention.get(shown..).unwrap_or_default().to_vec();
                    Some((
                        "done",
                        serde_json::json!({
                            "summary": summary,
                            "exit_code": exit_code,
                            "attention": attention,
                            "attention_from": shown,
                        }),
                        attention.len(),
                        true,
                    ))
                }
                Some(Phase::Died { why, attention }) => {
                    let attention = attention.get(shown..).unwrap_or_default().to_vec();
                    let entry = runs.get(&id);
                    let held = entry
                        .map(|entry| history::journal_holds(&entry.folder))
                        .unwrap_or_default();
                    Some((
                        "done",
                        serde_json::json!({
                            "summary": Summary {
                                total: entry.map_or(0, |entry| entry.plan.planned),
                                succeeded: held.succeeded,
                                ..Summary::default()
                            },
                            "exit_code": null,
                            "died": why,
                            "journal_rows": held.rows,
                            "attention": attention,
                            "attention_from": shown,
                        }),
                        attention.len(),
                        true,
                    ))
                }
                Some(Phase::Planned) => Some(("waiting", serde_json::json!({}), 0, false)),
                None => None,
            }
        };
        event.map(|(name, data, sent, ended)| {
            (
                Ok(Event::default()
                    .event(name)
                    .data(crate::secrets::scrub(&data.to_string()))),
                (server, id, ended, shown + sent),
            )
        })
    })
}

/// A run's results or summary, as a download.
pub(super) async fn download(
    State(server): Shared,
    UrlPath((id, file)): UrlPath<(u64, String)>,
) -> Response {
    let (name, kind) = match file.as_str() {
        "results.csv" => ("results.csv", "text/csv; charset=utf-8"),
        "summary.json" => ("summary.json", "application/json"),
        "plan.csv" => ("plan.csv", "text/csv; charset=utf-8"),
        "status.csv" => ("status.csv", "text/csv; charset=utf-8"),
        super::audits::AUDIT_FILE => (super::audits::AUDIT_FILE, "text/csv; charset=utf-8"),
        _ => return page_error(StatusCode::NOT_FOUND, "no such file"),
    };
    let folder = server.runs().get(&id).map(|entry| entry.folder.clone());
    let Some(folder) = folder else {
        return page_error(StatusCode::NOT_FOUND, "no such run");
    };
    match std::fs::read(folder.join(name)) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, kind.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    // A rehearsal's files are named apart, so that none is taken for a real
                    // run's audit trail.
                    format!(
                        "attachment; filename=\"{}-{id}-{name}\"",
                        if server.config.rehearsal {
                            "rehearsal"
                        } else {
                            "run"
                        }
                    ),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => page_error(StatusCode::NOT_FOUND, "that file is not there yet"),
    }
}

pub(super) fn phase_label(entry: &super::state::RunEntry) -> String {
    let folder = &entry.folder;
    match &entry.phase {
        Phase::Died { why, .. } => {
            let held = history::journal_holds(folder);
            format!(
                "died: {why}. Its journal holds {} finished rows ({} granted); Resume finishes it without sending any of those again",
                held.rows, held.succeeded
            )
        }
        Phase::Planned => "planned, not started".to_owned(),
        Phase::Running { live, .. } => format!(
            "running: {} rows done",
            live.rows_done.load(Ordering::Relaxed)
        ),
        Phase::Done {
            summary, exit_code, ..
        } if entry.ends() => format!(
            "finished (exit {exit_code}): {} ended, {} skipped, {} failed, {} invalid",
            summary.ended, summary.skipped, summary.failed, summary.invalid
        ),
        Phase::Done {
            summary, exit_code, ..
        } => format!(
            "finished (exit {exit_code}): {} succeeded, {} failed, {} invalid",
            summary.succeeded, summary.failed, summary.invalid
        ),
    }
}
