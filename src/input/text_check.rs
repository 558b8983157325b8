//! The whole-file check of CSV text, made before any row is used: every byte UTF-8, no quoted
//! cell that swallows the rows after it, no row longer than Excel could write, no header wider
//! than Excel's sheet; and the data rows that are not blank, counted. Its quote tracking is the
//! one the reader (`text`) keeps blank lines by.

use std::io::{BufRead, BufReader, Read};

use super::InputError;
pub(super) const READ_BUFFER: usize = 64 * 1024;

/// A quoted cell holding more line breaks than this has most likely lost its closing quote.
pub const MOST_LINE_BREAKS_IN_A_CELL: usize = 4;
/// The longest row read, in MiB: Excel's 16,384 columns of 256 bytes each. A longer one is a
/// file made by something else, and would cost its whole length in memory at once.
pub const MOST_ROW_MIB: usize = 4;
pub(super) const MOST_ROW_BYTES: usize = MOST_ROW_MIB << 20;
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

pub(super) fn line_breaks(bytes: &[u8]) -> u64 {
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
pub(super) enum Step {
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
pub(super) struct QuoteTracker {
    state: State,
    delimiter: u8,
}

impl QuoteTracker {
    pub(super) fn new(delimiter: u8) -> Self {
        Self {
            state: State::CellStart,
            delimiter,
        }
    }

    pub(super) fn quoted(self) -> bool {
        self.state == State::Quoted
    }

    /// How many of the leading `bytes` change nothing but the cell's text: in an unquoted cell,
    /// up to the next delimiter or line break; in a quoted one, up to the next quote, line
    /// break or delimiter. Lets the callers pass over most bytes without looking at each.
    pub(super) fn plain_run(&self, bytes: &[u8]) -> usize {
        let next = match self.state {
            State::Unquoted => memchr::memchr3(self.delimiter, b'\n', b'\r', bytes),
            State::Quoted => memchr::memchr3(b'"', b'\n', self.delimiter, bytes),
            State::CellStart | State::QuoteInQuoted => Some(0),
        };
        next.unwrap_or(bytes.len())
    }

    pub(super) fn in_unquoted_cell(self) -> bool {
        self.state == State::Unquoted
    }

    pub(super) fn step(&mut self, byte: u8) -> Step {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
