//! Reading the admin's spreadsheet: a CSV (any delimiter, Excel's encodings, `text`) or a
//! workbook (`sheet`), header aliases, row numbers as a spreadsheet shows them, and extra
//! columns carried through. A results file of this tool reads as an input too, its own columns
//! recognised (`--only` keeps rows by status). Reading happens on a thread of its own that
//! feeds a bounded channel, so memory stays flat however long the input is and a slow network
//! slows the reader instead of filling memory. A file is checked whole before its first row is
//! used, so that an input that cannot be read right stops the run before anything is sent.
//! `reader` is the open input, `header` what each column of its header is.

mod archive;
mod header;
mod hidden_rows;
mod kind;
mod ods_bounds;
mod reader;
mod sheet;
mod sheet_cells;
mod sheet_choice;
mod sheet_facts;
mod sheet_list;
mod text;
mod text_check;
mod xls_bounds;
mod xls_container;
mod xlsb_sheet;
mod zip_part;

pub(crate) use header::interpret_header;
pub use header::{Header, UserColumn, user_column_of};
pub use reader::{InputReader, RECORDS_PER_BATCH};
pub use sheet_list::sheet_names;

/// A name a file gives (a sheet's), as a message shows it: quoted, control characters escaped,
/// and cut to 100 characters, since a file made to hurt can give a name of megabytes.
pub(crate) fn shown(name: &str) -> String {
    const MOST_SHOWN: usize = 100;
    match name.char_indices().nth(MOST_SHOWN) {
        Some((cut, _)) => format!("{:?}…", &name[..cut]),
        None => format!("{name:?}"),
    }
}

/// Whether a panic was raised inside the workbook reader (calamine), which panics on some files
/// that lie and whose panics the reading thread catches: such a panic is not printed by the
/// binary, and is not a crash to the fuzzer.
pub fn panicked_in_reader(panic: &std::panic::PanicHookInfo<'_>) -> bool {
    panic
        .location()
        .is_some_and(|location| location.file().contains("/calamine-"))
}

/// The little-endian number at byte `at` of a binary record (`.xls`, `.xlsb`), if the record
/// is long enough to hold it.
fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Text stored as UTF-16, low byte first, as both binary formats store it.
fn utf16_le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// The workbook reader's (calamine's) warnings, counted by the binary's logging instead of
/// printed: a file made to hurt makes it warn millions of times. A sheet's reading says how
/// many it saw.
pub static READER_WARNINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

use std::path::PathBuf;

/// Where rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    File(PathBuf),
    Stdin,
}

impl InputSource {
    /// `-` is standard input (docs/cli.md).
    pub fn from_argument(argument: &str) -> Self {
        if argument == "-" {
            Self::Stdin
        } else {
            Self::File(PathBuf::from(argument))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Stdin => "standard input".to_owned(),
        }
    }
}

/// How to read an input, from the command line.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// `--sheet`: a workbook's sheet by name, or by number from 1.
    pub sheet: Option<String>,
    /// `--encoding`: what a CSV that is not UTF-8 is written in.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// `--allow-empty`: a header without data rows is not an error.
    pub allow_empty: bool,
    /// `--only`: with a results file as input, the statuses of the rows to keep; empty keeps
    /// every row.
    pub only: Vec<String>,
    /// `--hidden-rows`: what to do with rows of a workbook the admin does not see.
    pub hidden_rows: HiddenRowsChoice,
}

/// What to do with the rows a sheet hides (by hand or by an AutoFilter): nothing is granted
/// to a row the admin did not see unless they say so.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum HiddenRowsChoice {
    /// Refuse the sheet, naming the hidden rows.
    #[default]
    Refuse,
    /// Leave the hidden rows out, as the admin sees the sheet.
    Skip,
    /// Read them as any other row.
    Include,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read input {source_name}: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("input {0} is empty: it needs a header row naming its columns")]
    Empty(String),
    #[error(
        "input {0} has a header but no rows: check that the right file (or sheet) was exported, or pass --allow-empty"
    )]
    NoRows(String),
    #[error(
        "input {source_name} has no user column: name one `userID` (or `user`), `username` (or `userName`, `login`) or `email` (or `mail`, `e-mail`, `emailAddress`) in the header row (found: {found})"
    )]
    NoUserColumn { source_name: String, found: String },
    #[error(
        "input {source_name} names the {role} column twice (`{first}` and `{second}`); keep one"
    )]
    RepeatedColumn {
        source_name: String,
        role: &'static str,
        first: String,
        second: String,
    },
    #[error("input {source_name}, line {line}: {message}")]
    Malformed {
        source_name: String,
        line: u64,
        message: String,
    },
    #[error(
        "input {source_name}, line {line}, is not UTF-8; save it as \"CSV UTF-8\", or name its encoding with --encoding (for instance --encoding windows-1252)"
    )]
    NotUtf8 { source_name: String, line: u64 },
    #[error(
        "input {source_name}: the quoted cell that opens on line {line} does not close where it should (it runs to the end of the file, or over several rows); add the missing quote \""
    )]
    RunawayQuote { source_name: String, line: u64 },
    #[error(
        "input {source_name}: the row on line {line} is longer than {most} MiB; no sheet of 16,384 columns an admin keeps is that long, so the file was not read: check that it is the file you meant"
    )]
    LongRow {
        source_name: String,
        line: u64,
        most: usize,
    },
    #[error(
        "input {source_name}: the header has more than Excel's 16,384 columns; keep the columns this tool reads (environment, user, until) and the ones to carry, and save it again"
    )]
    TooManyColumns { source_name: String },
    #[error(
        "workbook {source_name}: sheet {sheet} hides rows {rows}{by_filter}; they are not what you see in Excel, so nothing was read: pass --hidden-rows skip to leave them out, or --hidden-rows include to read them too"
    )]
    HiddenRows {
        source_name: String,
        sheet: String,
        rows: String,
        by_filter: &'static str,
    },
    #[error("input {source_name} {what}")]
    NotWhatItsNameSays { source_name: String, what: String },
    #[error("cannot read workbook {source_name}: {message}")]
    Workbook {
        source_name: String,
        message: String,
    },
    #[error("workbook {source_name} has no sheet {asked:?}; its sheets are {sheets}")]
    NoSuchSheet {
        source_name: String,
        asked: String,
        sheets: String,
    },
    #[error(
        "--only needs a results file of this tool as INPUT (it keeps rows by their status); {0} has no status column"
    )]
    OnlyWithoutStatus(String),
}

/// One data row of the input, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputRecord {
    /// The row as a spreadsheet shows it: the header is row 1 (in a CSV), a blank line is a
    /// row, and a record whose quoted cells span several lines is one row.
    pub row: u64,
    pub environment: String,
    /// The first non-empty of the row's user cells, as written, and the column it came from
    /// (the first user column when all are empty).
    pub user: String,
    pub named_by: UserColumn,
    pub until: String,
    pub extras: Vec<String>,
    /// The status cell of a results file read as input; empty otherwise.
    pub status: String,
    /// The `bypass_mfa_enabled_until` cell of a results file read as input; empty otherwise.
    pub granted_until: String,
    /// Why the row cannot be used as it stands (wrong number of cells, a number where an ID
    /// belongs).
    pub defect: Option<String>,
}

/// Whether a cell holds nothing but white space: a row of such cells is what a spreadsheet
/// leaves below its data, not a row to check.
fn cell_is_blank(cell: &[u8]) -> bool {
    cell.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pingone::NameAttribute;

    #[test]
    fn a_name_from_a_file_is_quoted_escaped_and_cut_to_a_hundred_characters() {
        assert_eq!(shown("Users"), "\"Users\"");
        assert_eq!(shown("a\u{0}b"), "\"a\\0b\"");
        let long = shown(&"é".repeat(1_000_000));
        assert_eq!(long.chars().count(), 100 + 3);
    }

    fn reader(text: &str) -> Result<InputReader, InputError> {
        InputReader::from_reader(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            "test.csv".into(),
        )
    }

    fn records(text: &str) -> Vec<InputRecord> {
        let mut reader = reader(text).expect("the header is valid");
        std::iter::from_fn(|| reader.next_record())
            .map(|record| record.expect("the record is readable"))
            .collect()
    }

    #[test]
    fn header_aliases_match_ignoring_case_spaces_underscores_and_hyphens() {
        for (environment, user, until) in [
            ("envID", "userID", "until"),
            ("Environment Id", "user_id", "bypassMFAEnabledUntil"),
            ("environment", "USER", "Expires"),
            ("ENV", "user-id", "expiry"),
        ] {
            let text = format!("{environment},{user},{until}\ne,u,t\n");
            let header = reader(&text)
                .map(|r| r.header().clone())
                .expect("a valid header");
            assert_eq!(header.environment.map(|(i, _)| i), Some(0), "{text}");
            assert_eq!(header.users[0].1, 1, "{text}");
            assert_eq!(header.until.map(|(i, _)| i), Some(2), "{text}");
            assert!(header.extras.is_empty());
        }
    }

    #[test]
    fn a_row_names_its_user_by_the_first_non_empty_of_id_username_and_email() {
        let text = "E-Mail,login,userID,ticket\n\
                    a@example.com,alice,,T1\n\
                    b@example.com,,0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01,T2\n\
                    c@example.com,,,T3\n\
                    ,,,T4\n";
        let mut reader = reader(text).expect("a valid header");
        assert_eq!(
            reader.header().extra_names().collect::<Vec<_>>(),
            ["E-Mail", "login", "ticket"],
            "names are carried through to the results; the ID column is not"
        );
        let rows: Vec<_> = std::iter::from_fn(|| reader.next_record())
            .map(|record| record.expect("readable"))
            .map(|record| (record.named_by, record.user))
            .collect();
        let username = UserColumn::Name(NameAttribute::Username);
        let email = UserColumn::Name(NameAttribute::Email);
        assert_eq!(
            rows,
            [
                (username, "alice".to_owned()),
                (
                    UserColumn::Id,
                    "0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01".to_owned()
                ),
                (email, "c@example.com".to_owned()),
                (UserColumn::Id, String::new()),
            ]
        );
    }

    #[test]
    fn every_documented_spelling_of_username_and_email_is_a_user_column() {
        for (name, column) in [
            ("username", NameAttribute::Username),
            ("userName", NameAttribute::Username),
            ("login", NameAttribute::Username),
            ("email", NameAttribute::Email),
            ("mail", NameAttribute::Email),
            ("e-mail", NameAttribute::Email),
            ("emailAddress", NameAttribute::Email),
        ] {
            let header = reader(&format!("{name}\nx\n"))
                .map(|r| r.header().clone())
                .expect("a valid header");
            assert_eq!(header.users[0].0, UserColumn::Name(column), "{name}");
        }
    }

    #[test]
    fn a_utf8_bom_is_ignored() {
        let rows = records("\u{feff}userID;until\nu1;8h\n");
        assert_eq!(rows[0].user, "u1");
        assert_eq!(rows[0].until, "8h");
    }

    #[test]
    fn other_columns_are_carried_through_in_order() {
        let mut reader =
            reader("ticket,user,note,env\nINC-1,u1,\"hello, world\",e1\n").expect("valid");
        assert_eq!(
            reader.header().extra_names().collect::<Vec<_>>(),
            ["ticket", "note"]
        );
        let record = reader.next_record().and_then(Result::ok).expect("a record");
        assert_eq!(record.extras, ["INC-1", "hello, world"]);
        assert_eq!(record.environment, "e1");
    }

    #[test]
    fn rows_are_numbered_as_a_spreadsheet_shows_them() {
        let rows = records("user,note\nu1,a\nu2,\"two\nlines\"\n\nu3,c\n,,\n \t \nu4,d\n");
        let numbers: Vec<_> = rows.iter().map(|r| (r.user.as_str(), r.row)).collect();
        assert_eq!(
            numbers,
            [("u1", 2), ("u2", 3), ("u3", 5), ("u4", 8)],
            "a blank line is a row, a cell on two lines is not two, and blank rows are skipped"
        );
    }

    #[test]
    fn row_numbers_hold_with_crlf_endings_and_no_final_newline() {
        let rows = records("user\r\nu1\r\nu2\r\nu3");
        let numbers: Vec<_> = rows.iter().map(|r| (r.user.as_str(), r.row)).collect();
        assert_eq!(numbers, [("u1", 2), ("u2", 3), ("u3", 4)]);
    }

    #[test]
    fn a_row_with_the_wrong_number_of_cells_is_marked_not_dropped() {
        let rows = records("user,until\nu1\nu2,8h,extra\nu3,8h\n");
        assert_eq!(rows.len(), 3);
        assert!(
            rows[0]
                .defect
                .as_deref()
                .is_some_and(|d| d.contains("1 cells but the header has 2"))
        );
        assert!(
            rows[1]
                .defect
                .as_deref()
                .is_some_and(|d| d.contains("3 cells"))
        );
        assert_eq!(rows[2].defect, None);
    }

    #[test]
    fn a_row_from_a_pipe_that_is_not_utf8_stops_the_reading_naming_its_line() {
        let bytes = b"user,note\nu1,ok\nu2,caf\xe9\n".to_vec();
        let mut reader =
            InputReader::from_reader(Box::new(std::io::Cursor::new(bytes)), "latin1.csv".into())
                .expect("valid");
        assert!(matches!(reader.next_record(), Some(Ok(_))));
        let error = reader
            .next_record()
            .and_then(Result::err)
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("line 3") && e.contains("--encoding")),
            "{error:?}"
        );
    }

    #[test]
    fn a_file_without_a_user_column_is_refused_naming_what_it_found() {
        let error = reader("env,name\ne,m\n").err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("no user column") && e.contains("env, name")),
            "{error:?}"
        );
    }

    #[test]
    fn a_column_named_twice_is_refused() {
        let error = reader("user,userId\nu,u\n").err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("twice")),
            "{error:?}"
        );
    }

    #[test]
    fn an_empty_input_is_refused() {
        assert!(matches!(reader(""), Err(InputError::Empty(_))));
    }
}
