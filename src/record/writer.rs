//! The results CSV, the admin's audit trail: result rows written as CSV with cells escaped so
//! that a spreadsheet never runs a formula from them. The same writer writes the journal.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::pingone::format_bypass_until;
use crate::row::{Column, Report, ResultRow, escape_formula};

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
        "results file {0} already exists; pass --overwrite to replace it, --resume to continue it, or -o/--output to write elsewhere"
    )]
    Exists(PathBuf),
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {target}: {source}")]
    Write {
        target: String,
        source: std::io::Error,
    },
}

/// Turns a result row into its CSV line, once: the same bytes go to the journal and to the
/// results file.
pub struct RowEncoder {
    report: Report,
    csv: csv::Writer<EncodedLine>,
    /// The same buffer the csv writer writes to: csv's writer lends no mutable access to what
    /// it writes into, and the line must be taken out after each row.
    line: EncodedLine,
}

#[derive(Clone, Default)]
struct EncodedLine(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl EncodedLine {
    fn take(&self) -> Vec<u8> {
        // Holds bytes that no panic can leave half-updated.
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Write for EncodedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl RowEncoder {
    pub fn new(report: Report) -> Self {
        let line = EncodedLine::default();
        Self {
            report,
            csv: csv::WriterBuilder::new().from_writer(line.clone()),
            line,
        }
    }
}

impl RowEncoder {
    /// The row's CSV line, field by field: no cell is copied unless it needs escaping.
    pub fn encode(&mut self, row: &ResultRow) -> Vec<u8> {
        // Writing to memory cannot fail; the csv writer's errors are I/O errors.
        let _ = self.write_fields(row);
        let _ = self.csv.flush();
        self.line.take()
    }

    /// The header line: the fixed columns, then `extra_columns` (renamed where they clash).
    pub fn header<'a>(&mut self, extra_columns: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
        for name in results_header(self.report, extra_columns) {
            let _ = self.csv.write_field(escape_formula(&name).as_bytes());
        }
        let _ = self.csv.write_record(None::<&[u8]>);
        let _ = self.csv.flush();
        self.line.take()
    }

    /// The report's columns in its order, then the input's other cells.
    fn write_fields(&mut self, row: &ResultRow) -> csv::Result<()> {
        let mut number = itoa::Buffer::new();
        let csv = &mut self.csv;
        for column in self.report.columns() {
            match column {
                Column::Row => match row.row {
                    Some(row) => csv.write_field(number.format(row))?,
                    None => csv.write_field("")?,
                },
                Column::EnvironmentId => {
                    csv.write_field(escape_formula(&row.environment_id).as_bytes())?;
                }
                Column::UserId => csv.write_field(escape_formula(&row.user_id).as_bytes())?,
                Column::Until => csv.write_field(escape_formula(&row.until).as_bytes())?,
                Column::RequestedUntil => {
                    csv.write_field(escape_formula(&row.requested_until).as_bytes())?;
                }
                Column::Status => csv.write_field(row.status.as_str())?,
                Column::HttpStatus => match row.http_status {
                    Some(status) => csv.write_field(number.format(status))?,
                    None => csv.write_field("")?,
                },
                Column::CanBypassMfa => csv.write_field(match row.can_bypass_mfa {
                    Some(true) => "true",
                    Some(false) => "false",
                    None => "",
                })?,
                Column::BypassMfaEnabledUntil => {
                    csv.write_field(escape_formula(&row.bypass_mfa_enabled_until).as_bytes())?;
                }
                Column::PreviousUntil => {
                    csv.write_field(escape_formula(&row.previous_until).as_bytes())?;
                }
                Column::Attempts => csv.write_field(number.format(row.attempts))?,
                Column::Remaining => csv.write_field(row.remaining())?,
                // What PingOne or a proxy said, cleared once more of every secret the process
                // holds at the last step before the file.
                Column::ErrorCode => csv.write_field(
                    escape_formula(&crate::secrets::scrub(&row.error_code)).as_bytes(),
                )?,
                Column::ErrorMessage => {
                    csv.write_field(
                        escape_formula(&crate::secrets::scrub(&row.error_message)).as_bytes(),
                    )?;
                }
                Column::CompletedAt | Column::CheckedAt => {
                    csv.write_field(format_bypass_until(row.completed_at))?;
                }
            }
        }
        for cell in &row.extras {
            csv.write_field(escape_formula(cell).as_bytes())?;
        }
        csv.write_record(None::<&[u8]>)
    }
}

/// Writes encoded result lines to the results (or the journal); lines reach the file when the
/// caller flushes, or as the buffer fills.
pub struct ResultsWriter {
    target: String,
    sink: BufWriter<Box<dyn Write + Send>>,
    /// The file behind the writer, to make it durable at the end; `None` for standard output.
    file: Option<File>,
}

impl ResultsWriter {
    /// Opens the target and writes the header line.
    pub fn create<'a>(
        target: &OutputTarget,
        overwrite: bool,
        report: Report,
        extra_columns: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, OutputError> {
        let (sink, file): (Box<dyn Write + Send>, _) = match target {
            OutputTarget::Stdout => (Box::new(std::io::stdout()), None),
            OutputTarget::File(path) => {
                let file = open_results_file(path, overwrite)?;
                let handle = file.try_clone().map_err(|source| OutputError::Create {
                    path: path.clone(),
                    source,
                })?;
                (Box::new(file), Some(handle))
            }
        };
        let mut writer = Self {
            target: target.describe(),
            sink: BufWriter::with_capacity(BUFFER, sink),
            file,
        };
        writer.write(&RowEncoder::new(report).header(extra_columns))?;
        writer.flush()?;
        Ok(writer)
    }

    pub fn describe(&self) -> &str {
        &self.target
    }

    /// Another handle on the file, for syncing it from elsewhere.
    pub fn file_handle(&self) -> Option<File> {
        self.file.as_ref().and_then(|file| file.try_clone().ok())
    }

    /// Writes encoded lines (from `RowEncoder`).
    pub fn write(&mut self, lines: &[u8]) -> Result<(), OutputError> {
        self.sink
            .write_all(lines)
            .map_err(|source| self.error(source))
    }

    /// Hands everything written so far to the operating system: from then on it survives the
    /// process being killed.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.sink.flush().map_err(|source| self.error(source))
    }

    /// Flushes, then waits until the file is on the disk.
    pub fn finish(mut self) -> Result<(), OutputError> {
        self.flush()?;
        if let Some(file) = &self.file {
            file.sync_all().map_err(|source| self.error(source))?;
        }
        Ok(())
    }

    fn error(&self, source: std::io::Error) -> OutputError {
        OutputError::Write {
            target: self.target.clone(),
            source,
        }
    }
}

/// Bytes buffered before a write reaches the file.
const BUFFER: usize = 64 * 1024;

/// The fixed columns, then the input's other columns. An input column named like one of ours
/// (`status`, `row`, ...) or like one before it is renamed `input_<name>` (then
/// `input_<name>_2`, `_3`, ...), never repeated, so a reader that looks a column up by name
/// always finds this tool's.
pub fn results_header<'a>(
    report: Report,
    extra_columns: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut names: Vec<String> = report
        .columns()
        .iter()
        .map(|column| column.name().to_owned())
        .collect();
    // Names taken, compared without regard to case, looked up in a set: a header of thousands
    // of columns costs time in proportion to them, not to their square.
    let mut taken: std::collections::HashSet<String> =
        names.iter().map(|name| name.to_ascii_lowercase()).collect();
    // The next number to try after `input_<name>` for a name repeated yet again, so that a
    // header of one name repeated is numbered in one pass.
    let mut next_number: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    for extra in extra_columns {
        if taken.insert(extra.to_ascii_lowercase()) {
            names.push(extra.to_owned());
            continue;
        }
        let renamed = format!("input_{extra}");
        if taken.insert(renamed.to_ascii_lowercase()) {
            names.push(renamed);
            continue;
        }
        let number = next_number.entry(renamed.to_ascii_lowercase()).or_insert(2);
        loop {
            let numbered = format!("{renamed}_{number}");
            *number += 1;
            if taken.insert(numbered.to_ascii_lowercase()) {
                names.push(numbered);
                break;
            }
        }
    }
    names
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_columns_named_like_ours_are_renamed_not_repeated() {
        let header = results_header(Report::Grants, ["status", "Row", "input_status", "ticket"]);
        assert_eq!(
            header[crate::row::RESULT_COLUMNS.len()..],
            ["input_status", "input_Row", "input_input_status", "ticket"]
        );
    }

    #[test]
    fn a_held_secret_in_an_error_field_is_written_to_neither_results_nor_journal() {
        let secret = "jrnl-s3cret";
        crate::secrets::hold_given(&secrecy::SecretString::from(secret));
        let origin = crate::row::RowOrigin::new(crate::input::InputRecord::default(), None);
        let mut row = ResultRow::refused(
            origin,
            crate::plan::Refused {
                kind: crate::plan::Refusal::Invalid,
                requested_until: None,
                message: format!("PingOne quoted {secret} back"),
            },
        );
        row.error_code = format!("CODE_{secret}");
        // The journal is written by the same encoder as the results.
        let line = String::from_utf8(RowEncoder::new(Report::Grants).encode(&row)).expect("UTF-8");
        assert!(!line.contains(secret), "{line}");
        assert!(line.contains("PingOne quoted [redacted] back"), "{line}");
    }

    #[test]
    fn a_name_repeated_thousands_of_times_is_numbered_once_each() {
        let header = results_header(Report::Grants, std::iter::repeat_n("x", 16_000));
        let extras = &header[crate::row::RESULT_COLUMNS.len()..];
        assert_eq!(extras[..4], ["x", "input_x", "input_x_2", "input_x_3"]);
        assert_eq!(extras[15_999], "input_x_15999");
        let distinct: std::collections::HashSet<_> = extras.iter().collect();
        assert_eq!(distinct.len(), 16_000);
    }
}
