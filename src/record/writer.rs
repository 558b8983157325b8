//! The results CSV, the admin's audit trail: result rows written as CSV with cells escaped so
//! that a spreadsheet never runs a formula from them. The same writer writes the journal.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::pingone::format_bypass_until;
use crate::row::{RESULT_COLUMNS, ResultRow, escape_formula};

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

/// Writes result rows as CSV; rows reach the file when the caller flushes (or the buffer
/// fills).
pub struct ResultsWriter {
    target: String,
    csv: csv::Writer<Box<dyn Write + Send>>,
    /// The file behind the writer, to make it durable at the end; `None` for standard output.
    file: Option<File>,
}

impl ResultsWriter {
    /// Opens the target and writes the header row (the fixed columns, then `extra_columns`).
    pub fn create<'a>(
        target: &OutputTarget,
        overwrite: bool,
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
            csv: csv::WriterBuilder::new().from_writer(sink),
            file,
        };
        let header: Vec<String> = results_header(extra_columns)
            .iter()
            .map(|name| escape_formula(name).into_owned())
            .collect();
        writer.write_record(&header)?;
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

    /// Writes one row, field by field: no cell is copied unless it needs escaping.
    pub fn write(&mut self, row: &ResultRow) -> Result<(), OutputError> {
        let mut number = itoa::Buffer::new();
        match row.row {
            Some(row) => self.field(number.format(row))?,
            None => self.field("")?,
        }
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
        let source = match error.into_kind() {
            csv::ErrorKind::Io(source) => source,
            other => std::io::Error::other(format!("{other:?}")),
        };
        OutputError::Write {
            target: self.target.clone(),
            source,
        }
    }

    /// Hands everything written so far to the operating system: from then on it survives the
    /// process being killed.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.csv.flush().map_err(|source| OutputError::Write {
            target: self.target.clone(),
            source,
        })
    }

    /// Flushes, then waits until the file is on the disk.
    pub fn finish(mut self) -> Result<(), OutputError> {
        self.flush()?;
        if let Some(file) = &self.file {
            file.sync_all().map_err(|source| OutputError::Write {
                target: self.target.clone(),
                source,
            })?;
        }
        Ok(())
    }

    fn write_record(&mut self, record: &[String]) -> Result<(), OutputError> {
        self.csv
            .write_record(record)
            .map_err(|error| self.write_error(error))
    }
}

/// The fixed columns, then the input's other columns. An input column named like one of ours
/// (`status`, `row`, ...) is renamed `input_<name>`, never repeated, so a reader that looks a
/// column up by name always finds this tool's.
pub fn results_header<'a>(extra_columns: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = RESULT_COLUMNS.iter().map(|&name| name.to_owned()).collect();
    for extra in extra_columns {
        let mut name = extra.to_owned();
        while names.iter().any(|taken| taken.eq_ignore_ascii_case(&name)) {
            name = format!("input_{name}");
        }
        names.push(name);
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
        let header = results_header(["status", "Row", "input_status", "ticket"]);
        assert_eq!(
            header[RESULT_COLUMNS.len()..],
            ["input_status", "input_Row", "input_input_status", "ticket"]
        );
    }
}
