//! The results CSV, the admin's audit trail: one row per input record, in input order, each
//! written and flushed as soon as every row before it is done, with cells escaped so that a
//! spreadsheet never runs a formula from them; and the run's summary.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};

use crate::pingone::format_bypass_until;
use crate::progress::Progress;

/// The fixed columns, in the contract's order; extra input columns follow them.
pub const RESULT_COLUMNS: [&str; 13] = [
    "row",
    "environment_id",
    "user_id",
    "until",
    "requested_until",
    "status",
    "http_status",
    "can_bypass_mfa",
    "bypass_mfa_enabled_until",
    "attempts",
    "error_code",
    "error_message",
    "completed_at",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    Succeeded,
    Failed,
    Invalid,
    Skipped,
    NotAttempted,
    Planned,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Invalid => "invalid",
            Self::Skipped => "skipped",
            Self::NotAttempted => "not_attempted",
            Self::Planned => "planned",
        }
    }
}

/// One line of the results file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    pub row: u64,
    pub environment_id: String,
    pub user_id: String,
    pub until: String,
    pub requested_until: String,
    pub status: RowStatus,
    pub http_status: Option<u16>,
    pub can_bypass_mfa: Option<bool>,
    pub bypass_mfa_enabled_until: String,
    pub attempts: u32,
    pub error_code: String,
    pub error_message: String,
    pub completed_at: DateTime<Utc>,
    pub extras: Vec<String>,
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    File(PathBuf),
    Stdout,
}

impl OutputTarget {
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Stdout => "standard output".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "results file {0} already exists; pass --overwrite to replace it, or -o/--output to write elsewhere"
    )]
    Exists(PathBuf),
    #[error("cannot create results file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write results to {target}: {source}")]
    Write {
        target: String,
        source: std::io::Error,
    },
    #[error("cannot write summary JSON {path}: {source}")]
    Summary {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes result rows as CSV, flushing on request.
pub struct ResultsWriter {
    target: String,
    csv: csv::Writer<Box<dyn Write + Send>>,
}

impl ResultsWriter {
    /// Opens the target and writes the header row (the fixed columns, then `extra_columns`).
    pub fn create<'a>(
        target: &OutputTarget,
        overwrite: bool,
        extra_columns: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, OutputError> {
        let sink: Box<dyn Write + Send> = match target {
            OutputTarget::Stdout => Box::new(std::io::stdout()),
            OutputTarget::File(path) => Box::new(open_results_file(path, overwrite)?),
        };
        let mut writer = Self {
            target: target.describe(),
            csv: csv::WriterBuilder::new().from_writer(sink),
        };
        let header: Vec<String> = RESULT_COLUMNS
            .iter()
            .copied()
            .chain(extra_columns)
            .map(|name| escape_formula(name).into_owned())
            .collect();
        writer.write_record(&header)?;
        writer.flush()?;
        Ok(writer)
    }

    /// Writes one row, field by field: no cell is copied unless it needs escaping.
    pub fn write(&mut self, row: &ResultRow) -> Result<(), OutputError> {
        let mut number = itoa::Buffer::new();
        self.field(number.format(row.row))?;
        self.field(&escape_formula(&row.environment_id))?;
        self.field(&escape_formula(&row.user_id))?;
        self.field(&escape_formula(&row.until))?;
        self.field(&escape_formula(&row.requested_until))?;
        self.field(row.status.as_str())?;
        match row.http_status {
            Some(status) => self.field(number.format(status))?,
            None => self.field("")?,
        }
        self.field(match row.can_bypass_mfa {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        })?;
        self.field(&escape_formula(&row.bypass_mfa_enabled_until))?;
        self.field(number.format(row.attempts))?;
        self.field(&escape_formula(&row.error_code))?;
        self.field(&escape_formula(&row.error_message))?;
        self.field(&format_bypass_until(row.completed_at))?;
        for cell in &row.extras {
            self.field(&escape_formula(cell))?;
        }
        self.csv
            .write_record(None::<&[u8]>)
            .map_err(|error| self.write_error(error))
    }

    fn field(&mut self, cell: &str) -> Result<(), OutputError> {
        self.csv
            .write_field(cell)
            .map_err(|error| self.write_error(error))
    }

    fn write_error(&self, error: csv::Error) -> OutputError {
        OutputError::Write {
            target: self.target.clone(),
            source: std::io::Error::other(error),
        }
    }

    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.csv.flush().map_err(|source| OutputError::Write {
            target: self.target.clone(),
            source,
        })
    }

    fn write_record(&mut self, record: &[String]) -> Result<(), OutputError> {
        self.csv
            .write_record(record)
            .map_err(|error| self.write_error(error))
    }
}

fn open_results_file(path: &Path, overwrite: bool) -> Result<File, OutputError> {
    let mut options = File::options();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            OutputError::Exists(path.to_owned())
        } else {
            OutputError::Create {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// A spreadsheet treats a cell starting with `=`, `+`, `-` or `@` (and, in some, tab or
/// carriage return) as a formula; a leading `'` makes it text.
pub fn escape_formula(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The run's outcome, as the final line and `--summary-json` give it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub invalid: u64,
    pub skipped: u64,
    pub not_attempted: u64,
    pub planned: u64,
    /// PUTs sent, retries included.
    pub requests: u64,
    /// PUTs sent after a row's first attempt.
    pub retries: u64,
    /// 429 answers.
    pub throttled: u64,
    pub elapsed_seconds: f64,
    /// `requests` divided by `elapsed_seconds`.
    pub rate_per_second: f64,
}

impl Summary {
    pub fn count(&mut self, status: RowStatus) {
        self.total += 1;
        let slot = match status {
            RowStatus::Succeeded => &mut self.succeeded,
            RowStatus::Failed => &mut self.failed,
            RowStatus::Invalid => &mut self.invalid,
            RowStatus::Skipped => &mut self.skipped,
            RowStatus::NotAttempted => &mut self.not_attempted,
            RowStatus::Planned => &mut self.planned,
        };
        *slot += 1;
    }

    /// Rows that need the admin's attention: failed, invalid or not attempted.
    pub fn unfinished(&self) -> u64 {
        self.failed + self.invalid + self.not_attempted
    }

    pub fn write_json(&self, path: &Path) -> Result<(), OutputError> {
        let write = || -> std::io::Result<()> {
            let mut file = BufWriter::new(File::create(path)?);
            serde_json::to_writer_pretty(&mut file, self)?;
            file.write_all(b"\n")?;
            file.flush()
        };
        write().map_err(|source| OutputError::Summary {
            path: path.to_owned(),
            source,
        })
    }

    /// The one line a log or a person reads at the end.
    pub fn line(&self, dry_run: bool) -> String {
        let rows = if dry_run {
            format!(
                "{} rows checked: {} planned, {} invalid, {} skipped",
                self.total, self.planned, self.invalid, self.skipped
            )
        } else {
            format!(
                "{} rows: {} succeeded, {} failed, {} invalid, {} skipped, {} not attempted",
                self.total,
                self.succeeded,
                self.failed,
                self.invalid,
                self.skipped,
                self.not_attempted
            )
        };
        format!(
            "{rows}; {} requests ({} retries, {} throttled) in {:.1}s, {:.1} requests/s",
            self.requests, self.retries, self.throttled, self.elapsed_seconds, self.rate_per_second
        )
    }
}

/// The writer runs as a task, not on a thread of its own: its writes take microseconds (the
/// page cache, or a pipe), and waking a task for each finished row costs far less than waking
/// a parked thread, which the overhead benchmark measured at a tenth of the run's speed.
///
/// It puts rows back in input order, writes each as soon as all before it are
/// written, and (when requests are sent) flushes whenever it has caught up, so a crash loses
/// only rows still in flight.
pub(crate) async fn write_in_order(
    mut writer: ResultsWriter,
    mut rows: mpsc::Receiver<(u64, ResultRow)>,
    window: &Semaphore,
    progress: &Progress,
    flush_when_caught_up: bool,
) -> Result<Summary, OutputError> {
    let result = async {
        let mut waiting: VecDeque<Option<ResultRow>> = VecDeque::new();
        let mut next = 0_u64;
        let mut summary = Summary::default();
        loop {
            let (position, row) = match rows.try_recv() {
                Ok(item) => item,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if flush_when_caught_up {
                        writer.flush()?;
                    }
                    match rows.recv().await {
                        Some(item) => item,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            let offset = usize::try_from(position - next).unwrap_or(usize::MAX);
            if waiting.len() <= offset {
                waiting.resize_with(offset + 1, || None);
            }
            waiting[offset] = Some(row);
            while let Some(Some(_)) = waiting.front() {
                if let Some(Some(row)) = waiting.pop_front() {
                    writer.write(&row)?;
                    summary.count(row.status);
                    progress.row_done(row.status);
                    next += 1;
                    window.add_permits(1);
                }
            }
        }
        writer.flush()?;
        Ok(summary)
    }
    .await;
    if result.is_err() {
        window.close();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_a_spreadsheet_would_run_as_formulas_are_made_text() {
        for (cell, escaped) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+90m", "'+90m"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("8h", "8h"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(escape_formula(cell), escaped, "{cell:?}");
        }
    }

    #[test]
    fn the_summary_line_names_every_count() {
        let mut summary = Summary::default();
        summary.count(RowStatus::Succeeded);
        summary.count(RowStatus::Failed);
        summary.count(RowStatus::NotAttempted);
        assert_eq!(summary.unfinished(), 2);
        let line = summary.line(false);
        assert!(
            line.starts_with(
                "3 rows: 1 succeeded, 1 failed, 0 invalid, 0 skipped, 1 not attempted"
            ),
            "{line}"
        );
    }
}
