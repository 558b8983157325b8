//! Reading the admin's spreadsheet: header aliases, delimiter detection, BOM, row numbers as a
//! spreadsheet shows them, and extra columns carried through. Reading happens on a blocking
//! thread that feeds a bounded channel, so memory stays flat however long the file is and a
//! slow network slows the reader instead of filling memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::pingone::NameAttribute;

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
    #[error("input {source_name}, row {row}: {message}")]
    Malformed {
        source_name: String,
        row: u64,
        message: String,
    },
}

/// The columns a header row names, by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub delimiter: u8,
    /// The environment column's index and its name as written, if the file has one.
    pub environment: Option<(usize, String)>,
    /// The columns that may name a row's user, in the order they are tried (ID, username,
    /// email), with their indexes and names as written; at least one.
    pub users: Vec<(UserColumn, usize, String)>,
    pub until: Option<(usize, String)>,
    /// Every other column, carried through to the results unchanged, in file order. The
    /// username and email columns are among them: the results show the name as written beside
    /// the ID it resolved to.
    pub extras: Vec<(usize, String)>,
    pub field_count: usize,
}

impl Header {
    pub fn extra_names(&self) -> impl Iterator<Item = &str> {
        self.extras.iter().map(|(_, name)| name.as_str())
    }
}

/// One data row of the input, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputRecord {
    /// The row as a spreadsheet shows it: the header is row 1, the first data row is row 2.
    /// A record whose quoted cells span several lines is one row; blank lines are not rows
    /// (a spreadsheet's export has none).
    pub row: u64,
    pub environment: String,
    /// The first non-empty of the row's user cells, as written, and the column it came from
    /// (the first user column when all are empty).
    pub user: String,
    pub named_by: UserColumn,
    pub until: String,
    pub extras: Vec<String>,
    /// Why the row cannot be used as it stands (wrong number of cells, not UTF-8).
    pub defect: Option<String>,
}

/// Which of its columns a row names its user by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum UserColumn {
    /// PingOne's user ID: sent as it is, once checked to be a UUID.
    #[default]
    Id,
    /// A username or email, resolved to an ID before anything is sent.
    Name(NameAttribute),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Environment,
    User(UserColumn),
    Until,
}

impl Role {
    fn of(name: &str) -> Option<Self> {
        let normalised: String = name
            .chars()
            .filter(|c| !matches!(c, ' ' | '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect();
        match normalised.as_str() {
            "envid" | "environmentid" | "environment" | "env" => Some(Self::Environment),
            "userid" | "user" => Some(Self::User(UserColumn::Id)),
            "username" | "login" => Some(Self::User(UserColumn::Name(NameAttribute::Username))),
            "email" | "mail" | "emailaddress" => {
                Some(Self::User(UserColumn::Name(NameAttribute::Email)))
            }
            "until" | "bypassmfaenableduntil" | "expires" | "expiry" => Some(Self::Until),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::User(UserColumn::Id) => "user ID",
            Self::User(UserColumn::Name(NameAttribute::Username)) => "username",
            Self::User(UserColumn::Name(NameAttribute::Email)) => "email",
            Self::Until => "until",
        }
    }
}

/// The user column a header name stands for, if any (by the same matching rules as the input).
pub fn user_column_of(name: &str) -> Option<UserColumn> {
    match Role::of(name) {
        Some(Role::User(column)) => Some(column),
        _ => None,
    }
}

const READ_BUFFER: usize = 64 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// An open input whose header has been read.
pub struct InputReader {
    source_name: String,
    header: Header,
    records: csv::Reader<BufReader<Box<dyn Read + Send>>>,
    /// The row number of the last record read (the header is row 1).
    last_row: u64,
    /// Reused for every record, so reading allocates only the cells it keeps.
    record: csv::ByteRecord,
}

impl InputReader {
    pub fn open(source: &InputSource) -> Result<Self, InputError> {
        let source_name = source.describe();
        let raw: Box<dyn Read + Send> = match source {
            InputSource::File(path) => {
                Box::new(File::open(path).map_err(|error| InputError::Read {
                    source_name: source_name.clone(),
                    error,
                })?)
            }
            InputSource::Stdin => Box::new(std::io::stdin()),
        };
        Self::from_reader(raw, source_name)
    }

    pub fn from_reader(raw: Box<dyn Read + Send>, source_name: String) -> Result<Self, InputError> {
        let mut buffered = BufReader::with_capacity(READ_BUFFER, raw);
        let peeked = buffered.fill_buf().map_err(|error| InputError::Read {
            source_name: source_name.clone(),
            error,
        })?;
        let delimiter = detect_delimiter(peeked.strip_prefix(UTF8_BOM).unwrap_or(peeked));
        let mut records = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(buffered);
        let header_record = records
            .byte_headers()
            .map_err(|error| csv_error(&source_name, 1, error))?
            .clone();
        if header_record.is_empty() || header_record.iter().all(|name| name.is_empty()) {
            return Err(InputError::Empty(source_name));
        }
        let header = interpret_header(&header_record, delimiter, &source_name)?;
        Ok(Self {
            source_name,
            header,
            records,
            last_row: 1,
            record: csv::ByteRecord::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next data row, `None` at the end of the input.
    pub fn next_record(&mut self) -> Option<Result<InputRecord, InputError>> {
        let mut record = std::mem::take(&mut self.record);
        let next = match self.records.read_byte_record(&mut record) {
            Ok(false) => None,
            Ok(true) => {
                self.last_row += 1;
                Some(Ok(self.to_input_record(self.last_row, &record)))
            }
            Err(error) => Some(Err(csv_error(&self.source_name, self.last_row + 1, error))),
        };
        self.record = record;
        next
    }

    fn to_input_record(&self, row: u64, record: &csv::ByteRecord) -> InputRecord {
        let mut defects = Vec::new();
        if record.len() != self.header.field_count {
            defects.push(format!(
                "the row has {} cells but the header has {}",
                record.len(),
                self.header.field_count
            ));
        }
        let mut not_utf8 = false;
        let mut cell = |index: usize| -> String {
            let bytes = record.get(index).unwrap_or_default();
            match std::str::from_utf8(bytes) {
                Ok(text) => text.to_owned(),
                Err(_) => {
                    not_utf8 = true;
                    String::from_utf8_lossy(bytes).into_owned()
                }
            }
        };
        let environment = self
            .header
            .environment
            .as_ref()
            .map(|(index, _)| cell(*index))
            .unwrap_or_default();
        let mut named_by = self.header.users[0].0;
        let mut user = String::new();
        for (column, index, _) in &self.header.users {
            let text = cell(*index);
            if !text.trim().is_empty() {
                (named_by, user) = (*column, text);
                break;
            }
        }
        let until = self
            .header
            .until
            .as_ref()
            .map(|(index, _)| cell(*index))
            .unwrap_or_default();
        let extras = self
            .header
            .extras
            .iter()
            .map(|(index, _)| cell(*index))
            .collect();
        if not_utf8 {
            defects.push("the row is not valid UTF-8; save the file as \"CSV UTF-8\"".to_owned());
        }
        InputRecord {
            row,
            environment,
            user,
            named_by,
            until,
            extras,
            defect: (!defects.is_empty()).then(|| defects.join("; ")),
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

/// Counts the data records of a file, for the progress bar's total; `None` if it cannot.
pub fn count_records(path: &Path) -> Option<u64> {
    let reader = InputReader::open(&InputSource::File(path.to_owned())).ok()?;
    let mut records = reader.records;
    let mut record = csv::ByteRecord::new();
    let mut count = 0;
    while records.read_byte_record(&mut record).ok()? {
        count += 1;
    }
    Some(count)
}

/// The delimiter is whichever of `,` `;` tab occurs most in the header line outside quotes;
/// a comma when none does.
fn detect_delimiter(start: &[u8]) -> u8 {
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

fn interpret_header(
    record: &csv::ByteRecord,
    delimiter: u8,
    source_name: &str,
) -> Result<Header, InputError> {
    let mut environment: Option<(usize, String)> = None;
    let mut user_id: Option<(usize, String)> = None;
    let mut username: Option<(usize, String)> = None;
    let mut email: Option<(usize, String)> = None;
    let mut until: Option<(usize, String)> = None;
    let mut extras = Vec::new();
    let names: Vec<String> = record
        .iter()
        .map(|name| String::from_utf8_lossy(name).trim().to_owned())
        .collect();
    for (index, name) in names.iter().enumerate() {
        let slot = match Role::of(name) {
            Some(Role::Environment) => &mut environment,
            Some(Role::User(UserColumn::Id)) => &mut user_id,
            Some(Role::User(UserColumn::Name(NameAttribute::Username))) => &mut username,
            Some(Role::User(UserColumn::Name(NameAttribute::Email))) => &mut email,
            Some(Role::Until) => &mut until,
            None => {
                extras.push((index, name.clone()));
                continue;
            }
        };
        if let Some((_, first)) = slot {
            return Err(InputError::RepeatedColumn {
                source_name: source_name.to_owned(),
                role: Role::of(name).map_or("", Role::label),
                first: first.clone(),
                second: name.clone(),
            });
        }
        *slot = Some((index, name.clone()));
        if matches!(Role::of(name), Some(Role::User(UserColumn::Name(_)))) {
            extras.push((index, name.clone()));
        }
    }
    let users: Vec<(UserColumn, usize, String)> = [
        (UserColumn::Id, user_id),
        (UserColumn::Name(NameAttribute::Username), username),
        (UserColumn::Name(NameAttribute::Email), email),
    ]
    .into_iter()
    .filter_map(|(column, found)| found.map(|(index, name)| (column, index, name)))
    .collect();
    if users.is_empty() {
        return Err(InputError::NoUserColumn {
            source_name: source_name.to_owned(),
            found: names.join(", "),
        });
    }
    Ok(Header {
        delimiter,
        environment,
        users,
        until,
        extras,
        field_count: names.len(),
    })
}

fn csv_error(source_name: &str, row: u64, error: csv::Error) -> InputError {
    let message = error.to_string();
    match error.into_kind() {
        csv::ErrorKind::Io(error) => InputError::Read {
            source_name: source_name.to_owned(),
            error,
        },
        _ => InputError::Malformed {
            source_name: source_name.to_owned(),
            row,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_delimiter_is_detected_from_the_header_line() {
        for (text, delimiter) in [
            ("env,user,until,\"a;b;c\"\n", b','),
            ("env;user;until\n", b';'),
            ("env\tuser\tuntil\n", b'\t'),
            ("user\n", b','),
        ] {
            assert_eq!(
                reader(text).map(|r| r.header().delimiter).ok(),
                Some(delimiter),
                "{text:?}"
            );
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
        let rows = records("user,note\nu1,a\nu2,\"two\nlines\"\n\nu3,c\n");
        let numbers: Vec<_> = rows.iter().map(|r| (r.user.as_str(), r.row)).collect();
        assert_eq!(numbers, [("u1", 2), ("u2", 3), ("u3", 4)]);
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
    fn a_row_that_is_not_utf8_is_marked() {
        let bytes = b"user,note\nu1,caf\xe9\n".to_vec();
        let mut reader =
            InputReader::from_reader(Box::new(std::io::Cursor::new(bytes)), "latin1.csv".into())
                .expect("valid");
        let record = reader.next_record().and_then(Result::ok).expect("a record");
        assert!(
            record
                .defect
                .as_deref()
                .is_some_and(|d| d.contains("CSV UTF-8"))
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
