//! The upload form's side of the page: reading an upload within its bounds, keeping it in a
//! folder of its own, the sheets of a workbook for the form to offer, and the two checks an
//! upload gets in a child process: its plan (`run --dry-run --resolve`) and who has a bypass
//! (`status`). Each builds the run's typed request from the server's options and the form.

use crate::mode::Report;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use clap::ValueEnum as _;

use super::state::{
    Phase, RunEntry, ServeConfig, Server, Shared, UPLOAD_TIMEOUT, check_in_child,
    keep_in_new_folder, page_error, turned_away,
};
use super::{history, pages};
use crate::cli::request::RunRequest;
use crate::cli::run::{GrantArgs, RowsArgs};
use crate::config::Mode;
use crate::input::{HiddenRowsChoice, sheet_names};
use crate::outcome::Setting;

/// The upload's fields, as the form sends them.
#[derive(Default)]
struct Upload {
    name: String,
    bytes: axum::body::Bytes,
    environment: String,
    until: String,
    timezone: String,
    sheet: String,
    encoding: String,
    hidden_rows: String,
}

impl Upload {
    /// The request `mode` makes of this upload kept at `input`, its report going to `output`:
    /// the server's own options and the form's fields, typed. A plan takes every field, a
    /// check those that say which rows to read.
    fn request(
        &self,
        server: &ServeConfig,
        mode: Mode,
        input: &Path,
        output: &Path,
    ) -> Result<RunRequest, (String, Setting)> {
        let filled = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        let hidden_rows = match self.hidden_rows.as_str() {
            "" => HiddenRowsChoice::default(),
            text => HiddenRowsChoice::from_str(text, true).map_err(|_| {
                (
                    format!("hidden rows {text:?} is not a choice: choose refuse, skip or include"),
                    Setting::HiddenRows,
                )
            })?,
        };
        let grant = match mode {
            Mode::Check | Mode::End { .. } => GrantArgs::default(),
            Mode::Grant | Mode::Plan { .. } => {
                let defaults = GrantArgs::default();
                GrantArgs {
                    until: filled(&self.until),
                    timezone: filled(&self.timezone).unwrap_or(defaults.timezone.clone()),
                    ..defaults
                }
            }
        };
        let rows = RowsArgs {
            input: Some(input.display().to_string()),
            output: Some(output.display().to_string()),
            environment: filled(&self.environment),
            sheet: filled(&self.sheet),
            encoding: filled(&self.encoding),
            hidden_rows,
            ..RowsArgs::default()
        };
        Ok(server.request(mode, rows, grant))
    }

    /// `message` in the form's words, this upload named as the admin named it.
    fn worded(&self, message: &str, kept_as: &Path) -> String {
        pages::in_form_words(message, &self.name, &kept_as.display().to_string())
    }
}

/// Why an upload could not be read.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("the upload did not arrive within {} seconds; try again", UPLOAD_TIMEOUT.as_secs())]
    TooSlow,
    #[error("the upload could not be read ({0}); files are limited to 50 MiB")]
    Form(axum::extract::multipart::MultipartError),
    #[error("the file could not be read ({0}); files are limited to 50 MiB")]
    File(axum::extract::multipart::MultipartError),
    #[error("{0}")]
    Field(axum::extract::multipart::MultipartError),
    #[error("choose a file to upload")]
    NoFile,
}

/// The upload's fields, within `UPLOAD_TIMEOUT`.
async fn read_upload(form: Multipart) -> Result<Upload, UploadError> {
    tokio::time::timeout(UPLOAD_TIMEOUT, read_fields(form))
        .await
        .unwrap_or(Err(UploadError::TooSlow))
}

async fn read_fields(mut form: Multipart) -> Result<Upload, UploadError> {
    let mut upload = Upload::default();
    while let Some(field) = form.next_field().await.map_err(UploadError::Form)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            upload.name = field.file_name().unwrap_or("upload.csv").to_owned();
            upload.bytes = field.bytes().await.map_err(UploadError::File)?;
        } else {
            let text = field.text().await.map_err(UploadError::Field)?;
            let text = text.trim().to_owned();
            match name.as_str() {
                "env" => upload.environment = text,
                "until" => upload.until = text,
                "timezone" => upload.timezone = text,
                "sheet" => upload.sheet = text,
                "encoding" => upload.encoding = text,
                "hidden_rows" => upload.hidden_rows = text,
                _ => {}
            }
        }
    }
    if upload.bytes.is_empty() {
        return Err(UploadError::NoFile);
    }
    Ok(upload)
}

/// The file's name as it is kept: its extension (which says CSV or which workbook) and
/// nothing that could reach another folder.
fn kept_name(name: &str) -> String {
    let extension = Path::new(name)
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase())
        .filter(|extension| {
            ["csv", "txt", "tsv", "xlsx", "xlsm", "xlsb", "xls", "ods"]
                .contains(&extension.as_str())
        })
        .unwrap_or_else(|| "csv".to_owned());
    format!("input.{extension}")
}

/// An upload kept in a new folder `<kind>-<id>` of the work folder.
struct Kept {
    /// The run's number.
    id: u64,
    folder: PathBuf,
    /// The kept file.
    input: PathBuf,
}

/// Reads the upload form and keeps its file; the error page when either fails.
async fn receive(server: &Server, kind: &str, form: Multipart) -> Result<(Upload, Kept), Response> {
    let _reading = match server.upload_slot() {
        Ok(slot) => slot,
        Err(busy) => return Err(turned_away(busy, form).await),
    };
    let upload = read_upload(form)
        .await
        .map_err(|error| page_error(StatusCode::BAD_REQUEST, &error.to_string()))?;
    let id = server.next_run.fetch_add(1, Ordering::Relaxed);
    let folder = server.config.workdir.join(format!("{kind}-{id}"));
    let input = folder.join(kept_name(&upload.name));
    // A new folder, readable by this user alone; one already there (another server on the same
    // work folder) is never written into.
    keep_in_new_folder(&folder, &input, &upload.bytes)
        .map(|()| {
            history::keep(
                &folder,
                history::UPLOAD_RECORD,
                &history::UploadRecord {
                    name: upload.name.clone(),
                },
            );
        })
        .map_err(|error| {
            page_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot keep the upload in {}: {error}", folder.display()),
            )
        })?;
    Ok((upload, Kept { id, folder, input }))
}

/// The sheets of an uploaded workbook, for the form to offer (`{"sheets": [...]}`, or
/// `{"error": "..."}` with 422 when the file is not a workbook).
pub(super) async fn sheets(State(server): Shared, form: Multipart) -> Response {
    let _reading = match server.upload_slot() {
        Ok(slot) => slot,
        Err(busy) => return turned_away(busy, form).await,
    };
    let listed = match read_upload(form).await {
        Ok(upload) => {
            tokio::task::block_in_place(|| sheet_names(&upload.bytes)).map_err(|e| e.to_string())
        }
        Err(error) => Err(error.to_string()),
    };
    match listed {
        Ok(names) => axum::Json(serde_json::json!({ "sheets": names })).into_response(),
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response(),
    }
}

pub(super) async fn plan(State(server): Shared, form: Multipart) -> Response {
    let _running = match server.run_slot() {
        Ok(slot) => slot,
        Err(busy) => return turned_away(busy, form).await,
    };
    let (upload, Kept { id, folder, input }) = match receive(&server, "run", form).await {
        Ok(received) => received,
        Err(refused) => return refused,
    };
    let plan_file = folder.join("plan.csv");
    let planning = upload.request(
        &server.config,
        Mode::Plan { lookups: true },
        &input,
        &plan_file,
    );
    let checked = check_in_child(
        &server,
        planning,
        &folder.join("plan"),
        (&input, |message| upload.worded(message, &input)),
        |why| {
            format!(
                "the file could not be planned: the process reading it ended ({}). Nothing was granted; the server and every other run go on. Save the file again from Excel, or export it as CSV, and upload it again.",
                upload.worded(why, &input)
            )
        },
    )
    .await;
    let outcome = match checked {
        Ok((summary, _)) => summary,
        Err(page) => return page,
    };
    let mut rows = pages::read_rows(&plan_file);
    for row in &mut rows {
        if let Some(message) = row.get_mut("error_message") {
            *message = upload.worded(message, &input);
        }
    }
    let html = pages::plan(id, &upload.name, &server.config.target, &outcome, &rows);
    server.runs().insert(
        id,
        RunEntry {
            kind: Report::Grants,
            name: upload.name,
            folder,
            plan: outcome,
            phase: Phase::Planned,
        },
    );
    Html(crate::secrets::scrub(&html)).into_response()
}

pub(super) async fn status_form(State(server): Shared) -> Html<String> {
    Html(pages::status_form(&server.config.target))
}

/// Who has a bypass now: `status` over the uploaded file, shown and kept for download.
pub(super) async fn status(State(server): Shared, form: Multipart) -> Response {
    let _running = match server.run_slot() {
        Ok(slot) => slot,
        Err(busy) => return turned_away(busy, form).await,
    };
    let (upload, Kept { id, folder, input }) = match receive(&server, "status", form).await {
        Ok(received) => received,
        Err(refused) => return refused,
    };
    let report = folder.join("status.csv");
    let checking = upload.request(&server.config, Mode::Check, &input, &report);
    let checked = check_in_child(
        &server,
        checking,
        &folder.join("status"),
        (&input, |message| upload.worded(message, &input)),
        |why| {
            format!(
                "the bypasses could not be read: the process reading the file ended ({why}); the server and every other run go on"
            )
        },
    )
    .await;
    let (summary, exit_code) = match checked {
        Ok(done) => done,
        Err(page) => return page,
    };
    let rows = pages::read_rows(&report);
    let html = pages::status(id, &upload.name, &summary, &rows);
    server.runs().insert(
        id,
        RunEntry {
            kind: Report::Status,
            name: format!("who has a bypass: {}", upload.name),
            folder,
            plan: summary.clone(),
            phase: Phase::Done {
                summary,
                exit_code,
                attention: Vec::new(),
            },
        },
    );
    Html(crate::secrets::scrub(&html)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_kept_under_a_fixed_name_with_only_a_known_extension() {
        assert_eq!(kept_name("../../etc/passwd"), "input.csv");
        assert_eq!(kept_name("Outage list.XLSX"), "input.xlsx");
        assert_eq!(kept_name("users.ods"), "input.ods");
        assert_eq!(kept_name("evil.sh"), "input.csv");
    }
}
