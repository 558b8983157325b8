//! CSV and tab-separated text as Excel and other tools write it: decoded from UTF-16 (Excel's
//! "Unicode Text", recognised by its byte-order mark) or from `--encoding`, checked before any
//! row is used (every byte UTF-8, no quoted cell that swallows the rows after it), with row
//! numbers as a spreadsheet shows them (a blank line is a row; a cell spanning lines is not
//! several) and rows whose every cell is blank skipped, as Excel leaves them below the data.

use std::io::{BufRead, BufReader, Read};

use super::{Header, InputError, InputRecord, cell_is_blank};

const READ_BUFFER: usize = 64 * 1024;

/// A quoted cell holding more line breaks than this has most likely lost its closing quote.
pub const MOST_LINE_BREAKS_IN_A_CELL: usize = 4;
/// The longest row read, in MiB: Excel's 16,384 columns of 256 bytes each. A longer one is a
/// file made by something else, and would cost its whole length in memory at once.
pub const MOST_ROW_MIB: usize = 4;
const MOST_ROW_BYTES: usize = MOST_ROW_MIB << 20;
/// Excel's columns; a header with more is refused before any column is interpreted.
pub const MOST_COLUMNS: usize = 16_384;

/// Why the whole-file check refused the text.
enum ScanProblem {
    /// The line where a runaway quoted cell opened.
    RunawayQuote(u64),
    /// The line of a row longer than `MOST_ROW_BYTES`.
    LongRow(u64),
    /// The header has more than `MOST_COLUMNS` cells.
    TooManyColumns,
}

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

/// What the check of a whole file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Data rows with at least one non-blank cell.
    pub rows: u64,
}

/// Reads decoded text to its end before anything is sent: every byte must be UTF-8, and every
/// quoted cell must close before the end of the file, within a few lines, and without holding
/// what look like whole rows (line breaks and more delimiters than the header has columns).
/// Counts the data rows that are not blank. Follows the CSV rules the reader uses: a quote
/// opens a quoted cell only at the start of a cell, and `""` inside one is a quote.
pub fn check(text: impl Read, delimiter: u8, source_name: &str) -> Result<Checked, InputError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, text);
    let mut scan = Scan::new(delimiter);
    let mut unfinished: Vec<u8> = Vec::new();
    loop {
        let chunk = reader.fill_buf().map_err(|error| InputError::Read {
            source_name: source_name.to_owned(),
            error,
        })?;
        if chunk.is_empty() {
            break;
        }
        let length = chunk.len();
        // A character cut by the buffer's end is checked with the bytes that complete it.
        let whole: std::borrow::Cow<'_, [u8]> = if unfinished.is_empty() {
            std::borrow::Cow::Borrowed(chunk)
        } else {
            let mut joined = std::mem::take(&mut unfinished);
            joined.extend_from_slice(chunk);
            std::borrow::Cow::Owned(joined)
        };
        let valid = match std::str::from_utf8(&whole) {
            Ok(_) => whole.len(),
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(error) => {
                let line = scan.line + line_breaks(&whole[..error.valid_up_to()]);
                return Err(InputError::NotUtf8 {
                    source_name: source_name.to_owned(),
                    line,
                });
            }
        };
        scan.feed(&whole[..valid])
            .map_err(|problem| problem.into_error(source_name))?;
        unfinished.extend_from_slice(&whole[valid..]);
        reader.consume(length);
    }
    if !unfinished.is_empty() {
        return Err(InputError::NotUtf8 {
            source_name: source_name.to_owned(),
            line: scan.line,
        });
    }
    scan.finish().map_err(|line| InputError::RunawayQuote {
        source_name: source_name.to_owned(),
        line,
    })
}

impl ScanProblem {
    fn into_error(self, source_name: &str) -> InputError {
        let source_name = source_name.to_owned();
        match self {
            Self::RunawayQuote(line) => InputError::RunawayQuote { source_name, line },
            Self::LongRow(line) => InputError::LongRow {
                source_name,
                line,
                most: MOST_ROW_MIB,
            },
            Self::TooManyColumns => InputError::TooManyColumns { source_name },
        }
    }
}

fn line_breaks(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&byte| byte == b'\n').count() as u64
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    CellStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted cell: the cell's end, or the first of `""`.
    QuoteInQuoted,
}

/// What one byte meant to the CSV structure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Part of a cell, or white space between cells.
    Cell,
    /// A delimiter between cells.
    Delimiter,
    /// The end of a record (outside quotes).
    RecordEnd,
    /// A line break inside a quoted cell.
    QuotedBreak,
    /// A delimiter inside a quoted cell.
    QuotedDelimiter,
    /// A quote that opens a quoted cell.
    QuoteOpens,
}

/// Where the CSV reader stands, byte by byte, by the rules it reads with: a quote opens a
/// quoted cell only at the start of a cell, and `""` inside one is a quote. Written by hand
/// because the CSV reader reports neither where a quote opened, nor how much a quoted cell
/// swallowed, nor the blank lines it skips.
#[derive(Clone, Copy)]
struct QuoteTracker {
    state: State,
    delimiter: u8,
}

impl QuoteTracker {
    fn new(delimiter: u8) -> Self {
        Self {
            state: State::CellStart,
            delimiter,
        }
    }

    fn quoted(self) -> bool {
        self.state == State::Quoted
    }

    /// How many of the leading `bytes` change nothing but the cell's text: in an unquoted cell,
    /// up to the next delimiter or line break; in a quoted one, up to the next quote, line
    /// break or delimiter. Lets the callers pass over most bytes without looking at each.
    fn plain_run(&self, bytes: &[u8]) -> usize {
        let next = match self.state {
            State::Unquoted => memchr::memchr3(self.delimiter, b'\n', b'\r', bytes),
            State::Quoted => memchr::memchr3(b'"', b'\n', self.delimiter, bytes),
            State::CellStart | State::QuoteInQuoted => Some(0),
        };
        next.unwrap_or(bytes.len())
    }

    fn in_unquoted_cell(self) -> bool {
        self.state == State::Unquoted
    }

    fn step(&mut self, byte: u8) -> Step {
        match self.state {
            State::Quoted => match byte {
                b'"' => {
                    self.state = State::QuoteInQuoted;
                    Step::Cell
                }
                b'\n' => Step::QuotedBreak,
                _ if byte == self.delimiter => Step::QuotedDelimiter,
                _ => Step::Cell,
            },
            // A second quote right after one inside a quoted cell is a quote in its text.
            State::QuoteInQuoted if byte == b'"' => {
                self.state = State::Quoted;
                Step::Cell
            }
            // After a quoted cell's closing quote the reader goes on as in an unquoted cell.
            State::CellStart | State::Unquoted | State::QuoteInQuoted => {
                if byte == b'"' && self.state == State::CellStart {
                    self.state = State::Quoted;
                    Step::QuoteOpens
                } else if byte == self.delimiter {
                    self.state = State::CellStart;
                    Step::Delimiter
                } else if byte == b'\n' || byte == b'\r' {
                    self.state = State::CellStart;
                    Step::RecordEnd
                } else {
                    self.state = State::Unquoted;
                    Step::Cell
                }
            }
        }
    }
}

/// The state of `check`.
struct Scan {
    quotes: QuoteTracker,
    /// The line being read, from 1.
    line: u64,
    /// Where the open quoted cell started, and the line breaks and delimiters it holds.
    quote_line: u64,
    quoted_breaks: usize,
    quoted_delimiters: usize,
    /// Cells in the header, for telling a cell that swallowed whole rows.
    header_cells: usize,
    header_done: bool,
    record_has_content: bool,
    /// Bytes of the record being read so far.
    record_bytes: usize,
    records: u64,
}

impl Scan {
    fn new(delimiter: u8) -> Self {
        Self {
            quotes: QuoteTracker::new(delimiter),
            line: 1,
            quote_line: 1,
            quoted_breaks: 0,
            quoted_delimiters: 0,
            header_cells: 1,
            header_done: false,
            record_has_content: false,
            record_bytes: 0,
            records: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), ScanProblem> {
        let mut at = 0;
        while at < bytes.len() {
            let run = self.quotes.plain_run(&bytes[at..]);
            self.record_bytes = self.record_bytes.saturating_add(run.max(1));
            if self.record_bytes > MOST_ROW_BYTES {
                return Err(ScanProblem::LongRow(self.line));
            }
            if run > 0 {
                if !self.record_has_content && self.quotes.in_unquoted_cell() {
                    self.record_has_content =
                        bytes[at..at + run].iter().any(|b| !b.is_ascii_whitespace());
                }
                at += run;
                continue;
            }
            let byte = bytes[at];
            at += 1;
            match self.quotes.step(byte) {
                Step::Cell => {
                    self.record_has_content |= !byte.is_ascii_whitespace();
                }
                Step::QuoteOpens => {
                    self.quote_line = self.line;
                    self.quoted_breaks = 0;
                    self.quoted_delimiters = 0;
                    self.record_has_content = true;
                }
                Step::Delimiter => {
                    if !self.header_done {
                        self.header_cells += 1;
                        if self.header_cells > MOST_COLUMNS {
                            return Err(ScanProblem::TooManyColumns);
                        }
                    }
                }
                Step::RecordEnd => {
                    if byte == b'\n' {
                        self.line += 1;
                    }
                    self.end_record();
                }
                Step::QuotedBreak => {
                    self.line += 1;
                    self.quoted_breaks += 1;
                    if self.runaway() {
                        return Err(ScanProblem::RunawayQuote(self.quote_line));
                    }
                }
                Step::QuotedDelimiter => {
                    self.quoted_delimiters += 1;
                    if self.runaway() {
                        return Err(ScanProblem::RunawayQuote(self.quote_line));
                    }
                }
            }
        }
        Ok(())
    }

    /// More line breaks than a note plausibly holds, or line breaks with twice the delimiters
    /// a row has (and at least four): rows swallowed by a quote that did not close.
    fn runaway(&self) -> bool {
        let swallowed_delimiters = (2 * self.header_cells.saturating_sub(1)).max(4);
        self.quoted_breaks > MOST_LINE_BREAKS_IN_A_CELL
            || (self.quoted_breaks > 0 && self.quoted_delimiters >= swallowed_delimiters)
    }

    fn end_record(&mut self) {
        self.record_bytes = 0;
        if self.header_done {
            self.records += u64::from(self.record_has_content);
        } else if self.record_has_content {
            self.header_done = true;
        }
        self.record_has_content = false;
    }

    fn finish(mut self) -> Result<Checked, u64> {
        if self.quotes.quoted() {
            return Err(self.quote_line);
        }
        self.end_record();
        Ok(Checked { rows: self.records })
    }
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

    fn checked(text: &str) -> Result<Checked, InputError> {
        check(text.as_bytes(), b',', "test.csv")
    }

    #[test]
    fn the_check_counts_data_rows_that_are_not_blank() {
        assert_eq!(
            checked("user,note\nu1,\"a\nb\"\n\n,,\n  \nu2,x\n")
                .map(|c| c.rows)
                .ok(),
            Some(2)
        );
        assert_eq!(checked("user\n").map(|c| c.rows).ok(), Some(0));
        assert_eq!(checked("user\nu1").map(|c| c.rows).ok(), Some(1));
    }

    #[test]
    fn a_quote_left_open_to_the_end_is_found_where_it_opened() {
        let error = checked("user,note\nu1,ok\nu2,\"Smith, John\nu3,x\n").err();
        assert!(
            matches!(error, Some(InputError::RunawayQuote { line: 3, .. })),
            "{error:?}"
        );
    }

    #[test]
    fn a_quoted_cell_that_swallows_whole_rows_is_refused() {
        let mut text = String::from("user,until,note\nu1,8h,\"opened\n");
        for n in 0..6 {
            text.push_str(&format!("u{n},8h,x\n"));
        }
        text.push_str("u9,8h,closed\"\n");
        let error = checked(&text).err();
        assert!(
            matches!(error, Some(InputError::RunawayQuote { line: 2, .. })),
            "{error:?}"
        );
    }

    #[test]
    fn quotes_inside_a_cell_and_doubled_quotes_are_not_openings() {
        let text = "user,note\nu1,5\" screen\nu2,\"say \"\"hi\"\", twice\"\nu3,\"two\nlines\"\n";
        assert_eq!(checked(text).map(|c| c.rows).ok(), Some(3));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_found_by_line() {
        let error = check(&b"user,note\nu1,ok\nu2,caf\xe9\n"[..], b',', "x.csv").err();
        assert!(
            matches!(error, Some(InputError::NotUtf8 { line: 3, .. })),
            "{error:?}"
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
