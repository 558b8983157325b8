//! An open input: a file or standard input, its header read and interpreted, its rows handed
//! out in batches by a thread of their own through a bounded channel (`spawn`), `--only`
//! applied and an input with no rows refused.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use tokio::sync::mpsc;

use super::{
    Header, InputError, InputRecord, InputSource, ReadOptions, interpret_header, kind, sheet, text,
    text_check,
};

/// The workbook formats read directly.
const WORKBOOK_EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];

enum Rows {
    Text(text::TextRows),
    Sheet(sheet::SheetRows),
}

/// An open input whose header has been read.
pub struct InputReader {
    source_name: String,
    header: Header,
    rows: Rows,
    /// `--only`, when given.
    only: Vec<String>,
    /// Data rows, when the input was checked whole (a file).
    counted: Option<u64>,
    /// Whether a data row has been read; a pipe that ends without one has no rows.
    any_row: bool,
    allow_empty: bool,
}

impl InputReader {
    /// Opens a file or standard input. A CSV file is checked whole first (encoding, quotes,
    /// rows), so that a file that cannot be read right is refused before anything is sent.
    pub fn open(source: &InputSource, options: &ReadOptions) -> Result<Self, InputError> {
        let source_name = source.describe();
        let read_error = |error| InputError::Read {
            source_name: source_name.clone(),
            error,
        };
        let path = match source {
            InputSource::Stdin => {
                let decoded = text::decoded(Box::new(std::io::stdin()), options.encoding);
                return Self::from_text(decoded, source_name, options);
            }
            InputSource::File(path) => path,
        };
        let extension = workbook_extension(path);
        let read_as = extension.as_deref().unwrap_or("csv");
        let found = kind::of_file(path);
        // UTF-16 without a byte-order mark is what `--encoding utf-16le` is for.
        let decodable = found == kind::Kind::Utf16WithoutBom && options.encoding.is_some();
        if let Some(what) = kind::mismatch(found, read_as).filter(|_| !decodable) {
            return Err(InputError::NotWhatItsNameSays {
                source_name,
                what: what.to_owned(),
            });
        }
        if let Some(extension) = extension {
            let (rows, names, first_row) = sheet::SheetRows::open(
                path,
                &extension,
                (options.sheet.as_deref(), options.hidden_rows),
                &source_name,
            )?;
            let header = interpret_header(&names, &source_name)?;
            if !first_row && !options.allow_empty {
                return Err(InputError::NoRows(source_name));
            }
            return Self::new(source_name, header, Rows::Sheet(rows), options);
        }
        let mut whole = text::decoded(
            Box::new(File::open(path).map_err(read_error)?),
            options.encoding,
        );
        let (start, delimiter) = text::sniff_delimiter(&mut whole).map_err(read_error)?;
        let checked = text_check::check(
            std::io::Cursor::new(start).chain(whole),
            delimiter,
            &source_name,
        )?;
        let decoded = text::decoded(
            Box::new(File::open(path).map_err(read_error)?),
            options.encoding,
        );
        let mut reader = Self::from_text(decoded, source_name, options)?;
        if checked.rows == 0 && !options.allow_empty {
            return Err(InputError::NoRows(reader.source_name));
        }
        reader.counted = Some(checked.rows);
        Ok(reader)
    }

    /// Reads CSV text that is already UTF-8 (or to be checked row by row, from a pipe).
    pub fn from_reader(raw: Box<dyn Read + Send>, source_name: String) -> Result<Self, InputError> {
        Self::from_text(raw, source_name, &ReadOptions::default())
    }

    fn from_text(
        text: Box<dyn Read + Send>,
        source_name: String,
        options: &ReadOptions,
    ) -> Result<Self, InputError> {
        let (rows, names) = text::TextRows::open(text, &source_name)?;
        if names.is_empty() || names.iter().all(String::is_empty) {
            return Err(InputError::Empty(source_name));
        }
        let header = interpret_header(&names, &source_name)?;
        Self::new(source_name, header, Rows::Text(rows), options)
    }

    fn new(
        source_name: String,
        header: Header,
        rows: Rows,
        options: &ReadOptions,
    ) -> Result<Self, InputError> {
        if !options.only.is_empty() && header.status.is_none() {
            return Err(InputError::OnlyWithoutStatus(source_name));
        }
        Ok(Self {
            source_name,
            header,
            rows,
            only: options.only.clone(),
            counted: None,
            any_row: false,
            allow_empty: options.allow_empty,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The input's data rows, when it was checked whole; `None` for standard input, a
    /// workbook, or when `--only` leaves out some.
    pub fn counted_rows(&self) -> Option<u64> {
        self.counted.filter(|_| self.only.is_empty())
    }

    /// The next data row (blank ones skipped, and with `--only` those of other statuses),
    /// `None` at the end of the input. An input not checked whole (a pipe) that ends without a
    /// data row ends with `NoRows`, unless empty inputs are allowed.
    pub fn next_record(&mut self) -> Option<Result<InputRecord, InputError>> {
        loop {
            let next = match &mut self.rows {
                Rows::Text(rows) => rows.next_record(&self.header, &self.source_name),
                Rows::Sheet(rows) => rows.next_record(&self.header),
            };
            if next.is_none() && !self.any_row && !self.allow_empty && self.counted.is_none() {
                self.any_row = true;
                return Some(Err(InputError::NoRows(self.source_name.clone())));
            }
            self.any_row = true;
            match next {
                Some(Ok(record))
                    if !self.only.is_empty() && !self.only.contains(&record.status) =>
                {
                    continue;
                }
                next => return next,
            }
        }
    }

    /// Streams every record into `sender` from a thread of its own, in batches so that the
    /// threads on either side of the channel do not wake each other for every row; the
    /// channel's bound is the backpressure. Standard input is handed on row by row, as rows
    /// arrive: a pipe may pause between them. Ends at the end of the input, at a read error
    /// (the last item sent), or when the receiver is dropped. A plain thread rather than the
    /// runtime's blocking pool: a read blocked on standard input must not hold up the
    /// process's exit.
    pub fn spawn(
        mut self,
        sender: mpsc::Sender<Vec<Result<InputRecord, InputError>>>,
    ) -> std::io::Result<()> {
        let batch_size = if self.source_name == InputSource::Stdin.describe() {
            1
        } else {
            RECORDS_PER_BATCH
        };
        std::thread::Builder::new()
            .name("input".to_owned())
            .spawn(move || {
                loop {
                    let mut batch = Vec::with_capacity(batch_size);
                    let mut ended = false;
                    while batch.len() < batch_size {
                        match self.next_record() {
                            Some(item) => {
                                ended = item.is_err();
                                batch.push(item);
                                if ended {
                                    break;
                                }
                            }
                            None => {
                                ended = true;
                                break;
                            }
                        }
                    }
                    if (!batch.is_empty() && sender.blocking_send(batch).is_err()) || ended {
                        return;
                    }
                }
            })
            .map(drop)
    }
}

/// Records sent through the channel at once.
pub const RECORDS_PER_BATCH: usize = 256;

/// The workbook format of `path`, by its extension.
fn workbook_extension(path: &Path) -> Option<String> {
    let extension = path.extension()?.to_string_lossy().to_ascii_lowercase();
    WORKBOOK_EXTENSIONS
        .contains(&extension.as_str())
        .then_some(extension)
}
