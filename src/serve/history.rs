//! The page's memory is its work folder: each upload's folder (`run-<n>`, `status-<n>`, and
//! `end-<n>` for an end of a run's bypasses) keeps
//! what the upload was (`upload.json`), the plan and its summary, the results, the journal and
//! how the run's process ended (`ended.json`). A `serve` restarted on the same folder reads them
//! back, lists every earlier run with its state, and numbers new runs after them, so nothing
//! of an earlier run is overwritten.

use crate::mode::Report;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{Phase, RunEntry};
use crate::record::journal::Journal;
use crate::record::progress::{AttentionRow, MOST_ATTENTION_ROWS};
use crate::record::summary::Summary;
use crate::row::{RowStatus, StatusGroup};

/// What an upload was, kept in its folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadRecord {
    /// The file's name as the browser sent it (shown, never used as a path).
    pub name: String,
}

/// How a run's process ended, kept in its folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EndRecord {
    /// `None` when it died.
    pub exit_code: Option<u8>,
    pub died: Option<String>,
}

pub const UPLOAD_RECORD: &str = "upload.json";
pub const END_RECORD: &str = "ended.json";

/// Writes `value` as JSON to `name` in `folder`; a failure is logged, since the run itself
/// goes on and its results are what count.
pub fn keep(folder: &Path, name: &str, value: &impl Serialize) {
    let written = serde_json::to_vec_pretty(value)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(folder.join(name), bytes));
    if let Err(error) = written {
        tracing::warn!(folder = %folder.display(), %error, "cannot keep {name}");
    }
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Every earlier upload in `workdir` that was planned, as the page lists it, by its number,
/// and the highest number any folder there has (planned or not), after which new runs are
/// numbered.
pub(super) fn earlier(workdir: &Path) -> (BTreeMap<u64, RunEntry>, u64) {
    let mut found = BTreeMap::new();
    let mut highest = 0;
    let Ok(entries) = std::fs::read_dir(workdir) else {
        return (found, highest);
    };
    for entry in entries.map_while(Result::ok) {
        let folder = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let (kind, number) = match name.split_once('-') {
            Some(("run", number)) => (Report::Grants, number),
            Some(("status", number)) => (Report::Status, number),
            Some(("end", number)) => (Report::Ends, number),
            _ => continue,
        };
        let Ok(id) = number.parse::<u64>() else {
            continue;
        };
        if !folder.is_dir() {
            continue;
        }
        highest = highest.max(id);
        if let Some(entry) = read_folder(kind, folder) {
            found.insert(id, entry);
        }
    }
    (found, highest)
}

/// The page's entry for an earlier upload's folder; `None` for one never planned.
fn read_folder(kind: Report, folder: PathBuf) -> Option<RunEntry> {
    let name = read::<UploadRecord>(&folder.join(UPLOAD_RECORD))
        .map(|upload| upload.name)
        .unwrap_or_else(|| "an earlier upload".to_owned());
    let (plan_summary, results) = match kind {
        Report::Grants | Report::Ends => ("plan.summary.json", "results.csv"),
        Report::Status => ("status.summary.json", "status.csv"),
    };
    let plan = read::<Summary>(&folder.join(plan_summary))?;
    let ended = read::<EndRecord>(&folder.join(END_RECORD));
    let journal = Journal::path_for(&folder.join(results));
    let phase = match (kind == Report::Status, ended) {
        (true, _) => Phase::Done {
            summary: plan.clone(),
            exit_code: 0,
            attention: Vec::new(),
        },
        (
            false,
            Some(EndRecord {
                exit_code: Some(exit_code),
                ..
            }),
        ) => match read::<Summary>(&folder.join("summary.json")) {
            Some(summary) => Phase::Done {
                summary,
                exit_code,
                attention: attention_rows(&folder.join(results)),
            },
            None => Phase::Died {
                why: format!("it ended with exit {exit_code} and no summary"),
                attention: Vec::new(),
            },
        },
        (false, Some(EndRecord { died, .. })) => Phase::Died {
            why: died.unwrap_or_else(|| "its process ended without finishing".to_owned()),
            attention: Vec::new(),
        },
        (false, None) if journal.exists() || folder.join(results).exists() => Phase::Died {
            why: "the server stopped while it ran".to_owned(),
            attention: Vec::new(),
        },
        (false, None) => Phase::Planned,
    };
    let name = match kind {
        Report::Grants | Report::Ends => name,
        Report::Status => format!("who has a bypass: {name}"),
    };
    Some(RunEntry {
        kind,
        name,
        folder,
        plan,
        phase,
    })
}

/// What a run's journal holds: rows finished, and of them granted (or, of an end, ended).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct JournalHolds {
    pub(super) rows: u64,
    pub(super) succeeded: u64,
}

/// What the journal of the run in `folder` holds.
pub(super) fn journal_holds(folder: &Path) -> JournalHolds {
    let journal = Journal::path_for(&folder.join("results.csv"));
    let mut held = JournalHolds::default();
    let Ok(mut reader) = csv::Reader::from_path(journal) else {
        return held;
    };
    let status_at = reader
        .headers()
        .ok()
        .and_then(|header| header.iter().position(|name| name == "status"));
    for record in reader.records().map_while(Result::ok) {
        held.rows += 1;
        if status_at
            .and_then(|at| record.get(at))
            .and_then(RowStatus::parse)
            .is_some_and(RowStatus::changed_a_bypass)
        {
            held.succeeded += 1;
        }
    }
    held
}

/// The rows of a results file that need attention, the first `MOST_ATTENTION_ROWS`.
fn attention_rows(results: &Path) -> Vec<AttentionRow> {
    let Ok(mut reader) = csv::Reader::from_path(results) else {
        return Vec::new();
    };
    let Ok(header) = reader.headers().cloned() else {
        return Vec::new();
    };
    let at = |name: &str| header.iter().position(|column| column == name);
    let (row_at, user_at, status_at, code_at, message_at) = (
        at("row"),
        at("user_id"),
        at("status"),
        at("error_code"),
        at("error_message"),
    );
    let cell = |record: &csv::StringRecord, at: Option<usize>| {
        at.and_then(|at| record.get(at))
            .unwrap_or_default()
            .to_owned()
    };
    reader
        .records()
        .map_while(Result::ok)
        .filter(|record| {
            RowStatus::parse(&cell(record, status_at))
                .is_some_and(|status| status.group() == StatusGroup::NeedsAttention)
        })
        .take(MOST_ATTENTION_ROWS)
        .map(|record| AttentionRow {
            row: cell(&record, row_at).parse().ok(),
            user_id: cell(&record, user_at),
            status: cell(&record, status_at),
            error_code: cell(&record, code_at),
            error_message: cell(&record, message_at),
        })
        .collect()
}
