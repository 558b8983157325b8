//! Closing an incident from the page: a finished grant's results (or a status check's report)
//! become the input of an `end` in a folder of its own (`end-<n>`). "End these bypasses" plans
//! it in a child process (`end --dry-run`: the bypasses are read, nothing is PUT), shows who
//! would be ended and who skipped and why, and the confirmation starts the end itself through
//! the same launch, progress and downloads as a grant. The end reads every bypass again when
//! it runs, so a bypass that changed after the plan was shown is decided on as it is then.

use crate::mode::Report;
use std::path::Path;
use std::sync::atomic::Ordering;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::state::{
    Phase, RunEntry, ServeConfig, Shared, check_in_child, keep_in_new_folder, page_error,
};
use super::{history, pages};
use crate::cli::request::RunRequest;
use crate::cli::run::{GrantArgs, RowsArgs};
use crate::config::Mode;
use crate::row::Ending;

/// How long an ended bypass still lasts: `end`'s default `--in`.
const ENDS_IN: std::time::Duration = crate::defaults::END_IN;

/// The end of the bypasses in `folder`'s input: its plan (`dry_run`), or the end itself
/// (resumed when `resume`).
pub(super) fn end_request(
    config: &ServeConfig,
    folder: &Path,
    dry_run: bool,
    resume: bool,
) -> RunRequest {
    let output = if dry_run { "plan.csv" } else { "results.csv" };
    let rows = RowsArgs {
        input: Some(folder.join(INPUT).display().to_string()),
        output: Some(folder.join(output).display().to_string()),
        ..RowsArgs::default()
    };
    let grant = GrantArgs {
        resume,
        ..GrantArgs::default()
    };
    let mode = Mode::End {
        ending: Ending {
            within: ENDS_IN,
            force: false,
        },
        dry_run,
    };
    config.request(mode, rows, grant)
}

/// The end's input, as kept in its folder.
const INPUT: &str = "input.csv";

/// "End these bypasses" on a finished grant's page or a status check's: the plan of the end.
pub(super) async fn plan_end(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    let source = match server.runs().get(&id) {
        None => return page_error(StatusCode::NOT_FOUND, "no such run"),
        Some(entry) => bypasses_of(entry),
    };
    let Some((source, name)) = source else {
        return Redirect::to(&format!("/runs/{id}")).into_response();
    };
    let _running = match server.run_slot() {
        Ok(slot) => slot,
        Err(busy) => return busy.page(),
    };
    let end_id = server.next_run.fetch_add(1, Ordering::Relaxed);
    let folder = server.config.workdir.join(format!("end-{end_id}"));
    let input = folder.join(INPUT);
    let kept = std::fs::read(&source).and_then(|bytes| keep_in_new_folder(&folder, &input, &bytes));
    if let Err(error) = kept {
        return page_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "cannot keep the end's input in {}: {error}",
                folder.display()
            ),
        );
    }
    history::keep(
        &folder,
        history::UPLOAD_RECORD,
        &history::UploadRecord { name: name.clone() },
    );
    let planning = end_request(&server.config, &folder, true, false);
    let checked = check_in_child(
        &server,
        Ok(planning),
        &folder.join("plan"),
        (&input, str::to_owned),
        |why| {
            format!(
                "the bypasses could not be read: the process reading them ended ({why}); nothing was ended"
            )
        },
    )
    .await;
    let summary = match checked {
        Ok((summary, _)) => summary,
        Err(page) => return page,
    };
    let rows = pages::read_rows(&folder.join("plan.csv"));
    let html = pages::end_plan(
        end_id,
        &name,
        &server.config.target,
        &summary,
        &rows,
        &pages::in_words(ENDS_IN),
    );
    server.runs().insert(
        end_id,
        RunEntry {
            kind: Report::Ends,
            name,
            folder,
            plan: summary,
            phase: Phase::Planned,
        },
    );
    Html(crate::secrets::scrub(&html)).into_response()
}

/// The file holding the bypasses `entry` can end, and the end's name: a grant that finished
/// with some granted (its results), or a status check that found some active (its report).
fn bypasses_of(entry: &RunEntry) -> Option<(std::path::PathBuf, String)> {
    let report = entry.bypasses_to_end()?;
    Some((entry.folder.join(report), format!("end of {}", entry.name)))
}
