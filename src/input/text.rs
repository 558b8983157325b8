//! CSV and tab-separated text as Excel and other tools write it: decoded from UTF-16 (Excel's
//! "Unicode Text", recognised by its byte-order mark) or from `--encoding`, checked before any
//! row is used (every byte UTF-8, no quoted cell that swallows the rows after it), with row
//! numbers as a spreadsheet shows them (a blank line is a row; a cell spanning lines is not
//! several) and rows whose every cell is blank skipped, as Excel leaves them below the data.

use std::io::{BufReader, Read};

use super::text_check::{MOST_LINE_BREAKS_IN_A_CELL, QuoteTracker, READ_BUFFER, Step, line_breaks};
use super::{Header, InputError, InputRecord, cell_is_blank};

/// Decodes `raw` to UTF-8: UTF-16 (either order) when it starts with a byte-order mark,
/// `encoding` when one is given; otherwise the bytes pass through unchanged, to be checked.
/// A UTF-8 byte-order mark is dropped.
pub fn decoded(
    raw: Box<dyn Read + Send>,
    encoding: Option<&'static encoding_rs::Encoding>,
) -> Box<dyn Read + Send> {
    Box::new(
        encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(encoding)
            .bom_override(true)
            .utf8_passthru(true)
            .strip_bom(true)
            .build(raw),
    )
}

/// Gives every blank line after the header a space, so that the CSV reader (which skips blank
/// lines) yields it as a blank record: a spreadsheet shows a blank line as a row, and counting
/// records is then counting rows. Line breaks inside quoted cells are left alone.
struct BlankLinesKept<R> {
    inner: R,
    quotes: QuoteTracker,
    at_line_start: bool,
    after_carriage_return: bool,
    header_done: bool,
    record_has_content: bool,
    /// Bytes read from `inner` and not yet handed on.
    pending: Vec<u8>,
    pending_from: usize,
    /// Whether the space for the blank line at `pending_from` has been handed on.
    space_given: bool,
}

impl<R: Read> BlankLinesKept<R> {
    fn new(inner: R, delimiter: u8) -> Self {
        Self {
            inner,
            quotes: QuoteTracker::new(delimiter),
            at_line_start: true,
            after_carriage_return: false,
            header_done: false,
            record_has_content: false,
            pending: Vec::with_capacity(READ_BUFFER),
            pending_from: 0,
            space_given: false,
        }
    }
}

impl<R: Read> Read for BlankLinesKept<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pending_from == self.pending.len() {
            self.pending.resize(READ_BUFFER, 0);
            let read = self.inner.read(&mut self.pending)?;
            self.pending.truncate(read);
            self.pending_from = 0;
            if read == 0 {
                return Ok(0);
            }
        }
        let mut written = 0;
        while self.pending_from < self.pending.len() && written < out.len() {
            let run = self
                .quotes
                .plain_run(&self.pending[self.pending_from..])
                .min(out.len() - written);
            if run > 0 {
                let plain = &self.pending[self.pending_from..self.pending_from + run];
                if !self.record_has_content && self.quotes.in_unquoted_cell() {
                    self.record_has_content = plain.iter().any(|b| !b.is_ascii_whitespace());
                }
                out[written..written + run].copy_from_slice(plain);
                written += run;
                self.pending_from += run;
                self.at_line_start = false;
                self.after_carriage_return = false;
                continue;
            }
            let byte = self.pending[self.pending_from];
            let continues_crlf = self.after_carriage_return && byte == b'\n';
            let blank_line = self.at_line_start
                && self.header_done
                && !self.quotes.quoted()
                && !continues_crlf
                && (byte == b'\n' || byte == b'\r');
            if blank_line && !self.space_given {
                out[written] = b' ';
                written += 1;
                self.space_given = true;
                continue;
            }
            self.space_given = false;
            out[written] = byte;
            written += 1;
            self.pending_from += 1;
            let step = self.quotes.step(byte);
            self.after_carriage_return = byte == b'\r' && step == Step::RecordEnd;
            match step {
                Step::RecordEnd => {
                    if !continues_crlf {
                        self.header_done |= self.record_has_content;
                        self.record_has_content = false;
                    }
                    self.at_line_start = true;
                }
                Step::Cell | Step::QuoteOpens => {
                    self.record_has_content |= !byte.is_ascii_whitespace();
                    self.at_line_start = false;
                }
                _ => self.at_line_start = false,
            }
        }
        Ok(written)
    }
}

/// Reads the start of `text` up to the end of its first line (at most 1 MiB), and the delimiter
/// that line uses; the bytes read come back, to be read again before the rest.
pub fn sniff_delimiter(text: &mut dyn Read) -> std::io::Result<(Vec<u8>, u8)> {
    const MOST: usize = 1 << 20;
    let mut start = Vec::new();
    let mut chunk = [0u8; 4096];
    while start.len() < MOST && !start.contains(&b'\n') {
        let read = text.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        start.extend_from_slice(&chunk[..read]);
    }
    let delimiter = detect_delimiter(&start);
    Ok((start, delimiter))
}

/// The delimiter is whichever of `,` `;` tab occurs most in the header line outside quotes;
/// a comma when none does.
pub fn detect_delimiter(start: &[u8]) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for &byte in start {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                for (delimiter, count) in &mut counts {
                    if byte == *delimiter {
                        *count += 1;
                    }
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .fold((b',', 0), |best, &(delimiter, count)| {
            if count > best.1 {
                (delimiter, count)
            } else {
                best
            }
        })
        .0
}

/// Data rows of a CSV, numbered as a spreadsheet shows them.
pub struct TextRows {
    records: csv::Reader<BlankLinesKept<BufReader<Box<dyn Read + Send>>>>,
    /// The number of the last row read (the header is row 1).
    last_row: u64,
    /// Reused for every record, so reading allocates only the cells it keeps.
    record: csv::ByteRecord,
}

impl TextRows {
    /// Opens decoded text; the delimiter is detected from the header line.
    pub fn open(
        mut text: Box<dyn Read + Send>,
        source_name: &str,
    ) -> Result<(Self, Vec<String>), InputError> {
        let (start, delimiter) = sniff_delimiter(&mut text).map_err(|error| InputError::Read {
            source_name: source_name.to_owned(),
            error,
        })?;
        let whole: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(start).chain(text));
        let buffered = BufReader::with_capacity(READ_BUFFER, whole);
        let mut records = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(BlankLinesKept::new(buffered, delimiter));
        let header = records
            .byte_headers()
            .map_err(|error| csv_error(source_name, 1, error))?
            .clone();
        let names = header
            .iter()
            .map(|name| String::from_utf8_lossy(name).trim().to_owned())
            .collect();
        Ok((
            Self {
                records,
                last_row: 1,
                record: csv::ByteRecord::new(),
            },
            names,
        ))
    }

    /// The next data row that is not blank, `None` at the end of the input.
    pub fn next_record(
        &mut self,
        header: &Header,
        source_name: &str,
    ) -> Option<Result<InputRecord, InputError>> {
        loop {
            let mut record = std::mem::take(&mut self.record);
            let read = self.records.read_byte_record(&mut record);
            let next = match read {
                Ok(false) => None,
                Ok(true) => {
                    self.last_row += 1;
                    let row = self.last_row;
                    let line = record.position().map_or(row, csv::Position::line);
                    if record.iter().all(cell_is_blank) {
                        self.record = record;
                        continue;
                    }
                    if record
                        .iter()
                        .any(|cell| line_breaks(cell) > MOST_LINE_BREAKS_IN_A_CELL as u64)
                    {
                        Some(Err(InputError::RunawayQuote {
                            source_name: source_name.to_owned(),
                            line,
                        }))
                    } else {
                        Some(to_input_record(header, row, &record).ok_or_else(|| {
                            InputError::NotUtf8 {
                                source_name: source_name.to_owned(),
                                line,
                            }
                        }))
                    }
                }
                Err(error) => {
                    let line = self.records.position().line();
                    Some(Err(csv_error(source_name, line, error)))
                }
            };
            self.record = record;
            return next;
        }
    }
}

/// The record's cells by the header's columns; `None` when its bytes are not UTF-8 (an input
/// error rather than a row's defect: the rest of the input is likely in the same encoding).
fn to_input_record(header: &Header, row: u64, record: &csv::ByteRecord) -> Option<InputRecord> {
    let mut defects = Vec::new();
    if record.len() != header.field_count {
        defects.push(format!(
            "the row has {} cells but the header has {}",
            record.len(),
            header.field_count
        ));
    }
    let mut not_utf8 = false;
    let mut cell = |index: usize| -> String {
        let bytes = record.get(index).unwrap_or_default();
        match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => {
                not_utf8 = true;
                String::new()
            }
        }
    };
    let environment = header
        .environment
        .as_ref()
        .map(|(index, _)| cell(*index))
        .unwrap_or_default();
    let mut named_by = header.users[0].0;
    let mut user = String::new();
    for (column, index, _) in &header.users {
        let text = cell(*index);
        if !text.trim().is_empty() {
            (named_by, user) = (*column, text);
            break;
        }
    }
    let until = header
        .until
        .as_ref()
        .map(|(index, _)| cell(*index))
        .unwrap_or_default();
    let extras = header
        .extras
        .iter()
        .map(|(index, _)| cell(*index))
        .collect();
    let status = header
        .status
        .map(|index| cell(index).trim().to_owned())
        .unwrap_or_default();
    let granted_until = header
        .granted_until
        .map(|index| cell(index).trim().to_owned())
        .unwrap_or_default();
    if not_utf8 {
        return None;
    }
    Some(InputRecord {
        row,
        environment,
        user,
        named_by,
        until,
        extras,
        status,
        granted_until,
        defect: (!defects.is_empty()).then(|| defects.join("; ")),
    })
}

pub fn csv_error(source_name: &str, line: u64, error: csv::Error) -> InputError {
    let message = error.to_string();
    match error.into_kind() {
        csv::ErrorKind::Io(error) => InputError::Read {
            source_name: source_name.to_owned(),
            error,
        },
        _ => InputError::Malformed {
            source_name: source_name.to_owned(),
            line,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_after_the_header_become_blank_records_and_quoted_ones_stay() {
        let text = "\nuser,note\n\nu1,\"a\n\nb\"\r\n\r\nu2,x\n";
        let mut kept = BlankLinesKept::new(text.as_bytes(), b',');
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        while kept.read(&mut byte).expect("reads") == 1 {
            out.push(byte[0]);
        }
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "\nuser,note\n \nu1,\"a\n\nb\"\r\n \r\nu2,x\n"
        );
    }

    #[test]
    fn utf16_with_a_byte_order_mark_is_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "env\tuser\nE\tJosé\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let mut text = String::new();
        decoded(Box::new(std::io::Cursor::new(bytes)), None)
            .read_to_string(&mut text)
            .expect("decodes");
        assert_eq!(text, "env\tuser\nE\tJosé\n");
    }

    #[test]
    fn a_named_encoding_is_decoded() {
        let mut text = String::new();
        decoded(
            Box::new(std::io::Cursor::new(b"note\nJos\xe9\n".to_vec())),
            encoding_rs::Encoding::for_label(b"windows-1252"),
        )
        .read_to_string(&mut text)
        .expect("decodes");
        assert_eq!(text, "note\nJosé\n");
    }

    #[test]
    fn the_delimiter_is_detected_from_the_header_line() {
        for (text, delimiter) in [
            ("env,user,until,\"a;b;c\"\n", b','),
            ("env;user;until\n", b';'),
            ("env\tuser\tuntil\n", b'\t'),
            ("user\n", b','),
        ] {
            assert_eq!(detect_delimiter(text.as_bytes()), delimiter, "{text:?}");
        }
    }
}
