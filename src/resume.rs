//! `--resume`: what an earlier run already did. Rows it recorded as `succeeded` are found again
//! by (environment, user, the `until` cell as written), so the input may be edited between
//! runs, and are not sent again. The earlier record is never lost: a resumed run writes a new
//! file beside it and replaces it only when complete, and a resumed run that is itself killed
//! leaves its partial file, which the next resume reads too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::output::{RESULT_COLUMNS, ResultRow, RowStatus};
use crate::pingone::parse_exact_bypass_until;
use crate::plan::parse_id;

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot read earlier results {path} for --resume: {message}")]
    Read { path: PathBuf, message: String },
    #[error(
        "{0} is not a pingone-bypass results file (its header lacks the contract's columns); point -o/--output at the results of the earlier run"
    )]
    NotResults(PathBuf),
    #[error("cannot list {folder} for partial results: {source}")]
    List {
        folder: PathBuf,
        source: std::io::Error,
    },
    #[error("--resume needs a results file: -o - (standard output) cannot be resumed")]
    Stdout,
}

/// A row an earlier run completed, as its results recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierSuccess {
    pub requested_until: String,
    pub http_status: Option<u16>,
    pub can_bypass_mfa: Option<bool>,
    pub bypass_mfa_enabled_until: String,
    pub attempts: u32,
    pub completed_at: String,
}

type Key = (Uuid, Uuid, String);

/// Earlier successes, and which of them this run has already matched (by the row it matched).
#[derive(Debug, Default)]
pub struct EarlierResults {
    successes: HashMap<Key, (EarlierSuccess, Option<u64>)>,
    /// Files read: the results file and partial files of interrupted resumes.
    pub sources: Vec<PathBuf>,
}

/// What an input row is to a resumed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earlier {
    /// Succeeded before: record it again, send nothing.
    Succeeded(EarlierSuccess),
    /// The same row as an earlier one in this input that succeeded before.
    DuplicateOf(u64),
}

impl EarlierResults {
    /// Reads the results at `output` and every partial file a killed resume left beside it.
    pub fn load(output: &Path) -> Result<Self, ResumeError> {
        let mut earlier = Self::default();
        let mut files = Vec::new();
        if output.exists() {
            files.push(output.to_owned());
        }
        files.extend(partial_files(output)?);
        for path in files {
            earlier.read_file(&path)?;
            earlier.sources.push(path);
        }
        Ok(earlier)
    }

    pub fn succeeded_rows(&self) -> usize {
        self.successes.len()
    }

    /// Whether the row (with the run's `--env` default applied) succeeded before.
    pub fn take(
        &mut self,
        environment: &str,
        user: &str,
        until_cell: &str,
        row: u64,
    ) -> Option<Earlier> {
        let key = (
            parse_id(environment.trim())?,
            parse_id(user.trim())?,
            until_cell.trim().to_owned(),
        );
        let (success, matched) = self.successes.get_mut(&key)?;
        Some(match matched {
            Some(first_row) => Earlier::DuplicateOf(*first_row),
            None => {
                *matched = Some(row);
                Earlier::Succeeded(success.clone())
            }
        })
    }

    fn read_file(&mut self, path: &Path) -> Result<(), ResumeError> {
        let read_error = |error: csv::Error| ResumeError::Read {
            path: path.to_owned(),
            message: error.to_string(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .map_err(read_error)?;
        let header = reader.headers().map_err(read_error)?.clone();
        let position = |name: &str| header.iter().position(|column| column == name);
        let columns: Option<Vec<usize>> =
            RESULT_COLUMNS.iter().map(|name| position(name)).collect();
        let Some(columns) = columns else {
            return Err(ResumeError::NotResults(path.to_owned()));
        };
        let cell = |record: &csv::StringRecord, column: usize| {
            unescape_formula(record.get(columns[column]).unwrap_or_default()).to_owned()
        };
        for record in reader.records() {
            // A run killed mid-write leaves at most one partial last line; it is not a success.
            let Ok(record) = record else { continue };
            if record.len() != header.len() || cell(&record, 5) != RowStatus::Succeeded.as_str() {
                continue;
            }
            let (Some(environment), Some(user)) =
                (parse_id(&cell(&record, 1)), parse_id(&cell(&record, 2)))
            else {
                continue;
            };
            let completed_at = cell(&record, 12);
            if parse_exact_bypass_until(&completed_at).is_none() {
                continue;
            }
            let success = EarlierSuccess {
                requested_until: cell(&record, 4),
                http_status: cell(&record, 6).parse().ok(),
                can_bypass_mfa: cell(&record, 7).parse().ok(),
                bypass_mfa_enabled_until: cell(&record, 8),
                attempts: cell(&record, 9).parse().unwrap_or(0),
                completed_at,
            };
            self.successes.insert(
                (environment, user, cell(&record, 3).trim().to_owned()),
                (success, None),
            );
        }
        Ok(())
    }
}

impl EarlierSuccess {
    /// This run's results line for a row that succeeded before.
    pub fn into_row(
        self,
        row: u64,
        environment: Uuid,
        user: Uuid,
        until: String,
        extras: Vec<String>,
    ) -> ResultRow {
        ResultRow {
            row,
            environment_id: environment.to_string(),
            user_id: user.to_string(),
            until,
            requested_until: self.requested_until,
            status: RowStatus::Succeeded,
            http_status: self.http_status,
            can_bypass_mfa: self.can_bypass_mfa,
            bypass_mfa_enabled_until: self.bypass_mfa_enabled_until,
            attempts: self.attempts,
            error_code: String::new(),
            error_message: String::new(),
            completed_at: parse_exact_bypass_until(&self.completed_at).unwrap_or_default(),
            extras,
        }
    }
}

/// Where a resumed run writes until it is complete: beside the results, named so that the next
/// resume finds it if this one is killed.
pub fn new_partial_path(output: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{stamp}.{}{PARTIAL_SUFFIX}", std::process::id()));
    output.with_file_name(name)
}

const PARTIAL_SUFFIX: &str = ".partial";

/// Partial files of earlier resumes of `output`, oldest first.
pub fn partial_files(output: &Path) -> Result<Vec<PathBuf>, ResumeError> {
    let folder = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(
        "{}.",
        output.file_name().unwrap_or_default().to_string_lossy()
    );
    let entries = std::fs::read_dir(&folder).map_err(|source| ResumeError::List {
        folder: folder.clone(),
        source,
    })?;
    let mut partials: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy())
                .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(PARTIAL_SUFFIX))
        })
        .collect();
    partials.sort();
    Ok(partials)
}

/// Undoes `output::escape_formula`, so that the `until` cell compares as it was written.
fn unescape_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "row,environment_id,user_id,until,requested_until,status,http_status,can_bypass_mfa,bypass_mfa_enabled_until,attempts,error_code,error_message,completed_at,ticket\n";
    const ENV: &str = "4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01";
    const USER: &str = "0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01";

    fn line(user: &str, until: &str, status: &str) -> String {
        format!(
            "2,{ENV},{user},{until},2026-11-30T00:00:00.000Z,{status},200,true,2026-11-30T00:00:00.000Z,1,,,2026-11-29T00:00:00.000Z,INC-1\n"
        )
    }

    fn load(contents: &str) -> Result<EarlierResults, ResumeError> {
        let folder = tempfile::tempdir().expect("a folder");
        let path = folder.path().join("users.results.csv");
        std::fs::write(&path, contents).expect("written");
        EarlierResults::load(&path)
    }

    #[test]
    fn only_succeeded_rows_are_remembered_matched_by_the_until_cell_as_written() {
        let other = "1e8b4c63-7d2f-4c90-8f38-6a4d2b8e9f02";
        let mut earlier = load(&format!(
            "{HEADER}{}{}",
            line(USER, "'+90m", "succeeded"),
            line(other, "8h", "failed")
        ))
        .expect("loads");
        assert_eq!(earlier.succeeded_rows(), 1);
        assert_eq!(earlier.take(ENV, other, "8h", 2), None);
        assert_eq!(earlier.take(ENV, USER, "+91m", 2), None);
        assert!(matches!(
            earlier.take(&ENV.to_uppercase(), USER, " +90m ", 5),
            Some(Earlier::Succeeded(_))
        ));
        assert_eq!(
            earlier.take(ENV, USER, "+90m", 9),
            Some(Earlier::DuplicateOf(5))
        );
    }

    #[test]
    fn a_partial_last_line_is_not_a_success() {
        let full = line(USER, "8h", "succeeded");
        let cut = &full[..full.len() - 20];
        let earlier = load(&format!("{HEADER}{cut}")).expect("loads");
        assert_eq!(earlier.succeeded_rows(), 0);
    }

    #[test]
    fn a_file_that_is_not_results_is_refused() {
        assert!(matches!(
            load("env,user,until\n"),
            Err(ResumeError::NotResults(_))
        ));
    }

    #[test]
    fn partial_files_of_killed_resumes_are_read_too() {
        let folder = tempfile::tempdir().expect("a folder");
        let output = folder.path().join("users.results.csv");
        std::fs::write(&output, HEADER).expect("written");
        let partial = new_partial_path(&output);
        std::fs::write(
            &partial,
            format!("{HEADER}{}", line(USER, "8h", "succeeded")),
        )
        .expect("written");
        std::fs::write(folder.path().join("other.results.csv.1.partial"), "x").expect("written");
        let earlier = EarlierResults::load(&output).expect("loads");
        assert_eq!(earlier.succeeded_rows(), 1);
        assert_eq!(earlier.sources, [output, partial]);
    }
}
