//! A workbook's cells as this tool reads them: what a cell holds (text, a number, a date, a
//! boolean, an error, nothing), its text as the admin sees it, and a sheet's row turned into
//! an input record by the header's columns, with the row's defect, said in the admin's terms,
//! where a cell's type cannot be what its column needs.

use calamine::Data;

use super::{Header, InputRecord, UserColumn};

/// A cell as the sheet holds it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    /// A date and time, written without a zone (`2026-12-20 17:00:00`).
    Date(String),
    /// A time of day without a date (`17:00`): Excel stores it as a fraction of a day, which
    /// read as a date would be 1899-12-31.
    TimeOnly(String),
    /// A spreadsheet error such as `#N/A`: a formula that failed.
    Error(String),
    /// A formula saved without its value (files written by scripts, not by Excel): what it
    /// would show is unknown, so it is never taken for an empty cell that `--until` or `--env`
    /// may fill.
    UnsavedFormula,
}

impl Cell {
    /// A cell from calamine's value; a streamed sheet's `DataRef` is turned into `Data`
    /// first (`Data::from`), so that there is one mapping.
    pub(super) fn of(value: Data) -> Self {
        match value {
            Data::Empty => Self::Empty,
            // Some exporters write `.xls` strings that calamine reads with a NUL between
            // every letter (`T\0i\0t\0e\0l`); no cell means a NUL, so they are dropped
            // (calamine does the same for sheet names).
            Data::String(text) if text.contains('\0') => Self::Text(text.replace('\0', "")),
            Data::String(text) | Data::DurationIso(text) => Self::Text(text),
            Data::Int(number) => Self::Number(number as f64),
            Data::Float(number) => Self::Number(number),
            Data::Bool(value) => Self::Bool(value),
            Data::DateTime(date) => match date.as_datetime() {
                Some(naive) if date.is_datetime() && (0.0..1.0).contains(&date.as_f64()) => {
                    Self::TimeOnly(naive.format("%H:%M").to_string())
                }
                Some(naive) if date.is_datetime() => Self::Date(naive_text(naive)),
                _ => Self::Number(date.as_f64()),
            },
            Data::DateTimeIso(text) => Self::Date(text.replace('T', " ")),
            Data::Error(error) => Self::Error(error.to_string()),
        }
    }

    pub(super) fn is_blank(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Text(text) => text.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as text, as a spreadsheet shows it: whole numbers without a fraction.
    pub(super) fn text(&self) -> String {
        match self {
            Self::Empty | Self::UnsavedFormula => String::new(),
            Self::Text(text) | Self::Date(text) | Self::TimeOnly(text) | Self::Error(text) => {
                text.clone()
            }
            Self::Number(number) => number_text(*number),
            Self::Bool(value) => if *value { "TRUE" } else { "FALSE" }.to_owned(),
        }
    }
}

pub(super) fn number_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{number:.0}")
    } else {
        number.to_string()
    }
}

/// A date cell's value as a wall-clock time; seconds and milliseconds only when it has them.
pub(super) fn naive_text(naive: chrono::NaiveDateTime) -> String {
    use chrono::Timelike;
    let format = if naive.nanosecond() >= 1_000_000 {
        "%Y-%m-%d %H:%M:%S%.3f"
    } else if naive.second() != 0 {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M"
    };
    naive.format(format).to_string()
}

/// One row of the sheet: its number (from 1) and its cells by column.
pub(super) struct SheetRow {
    pub(super) row: u64,
    pub(super) cells: Vec<Cell>,
}

/// The row's cells by the header's columns, with a defect where a cell's type cannot be what
/// its column needs.
pub(super) fn to_input_record(header: &Header, row: &SheetRow) -> InputRecord {
    let cell = |index: usize| row.cells.get(index).unwrap_or(&Cell::Empty);
    let mut defects = Vec::new();
    let environment = header
        .environment
        .as_ref()
        .map(|(index, name)| id_text(cell(*index), name, &mut defects))
        .unwrap_or_default();
    let (named_by, user) = user_of(header, &cell, &mut defects);
    let until = match &header.until {
        None => String::new(),
        Some((index, name)) => until_text(cell(*index), name, &mut defects),
    };
    let extras = header
        .extras
        .iter()
        .map(|(index, _)| cell(*index).text())
        .collect();
    let status = header
        .status
        .map(|index| cell(index).text().trim().to_owned())
        .unwrap_or_default();
    let granted_until = header
        .granted_until
        .map(|index| cell(index).text().trim().to_owned())
        .unwrap_or_default();
    if row.cells.len() > header.field_count
        && row.cells[header.field_count..]
            .iter()
            .any(|cell| !cell.is_blank())
    {
        defects.push(format!(
            "the row has values beyond the header's {} columns",
            header.field_count
        ));
    }
    InputRecord {
        row: row.row,
        environment,
        user,
        named_by,
        until,
        extras,
        status,
        granted_until,
        defect: (!defects.is_empty()).then(|| defects.join("; ")),
    }
}

/// An ID cell's text; any type but text is a defect of the row.
fn id_text(cell: &Cell, column: &str, defects: &mut Vec<String>) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(text) => text.clone(),
        other => {
            defects.push(wrong_type(
                column,
                other,
                "an ID, as text",
                "format the cell as text and enter the ID again",
            ));
            other.text()
        }
    }
}

/// How the row names its user: the first of the header's user columns that is not blank.
fn user_of<'a>(
    header: &Header,
    cell: &impl Fn(usize) -> &'a Cell,
    defects: &mut Vec<String>,
) -> (UserColumn, String) {
    for (column, index, name) in &header.users {
        let text = match (column, cell(*index)) {
            (UserColumn::Id, found) => id_text(found, name, defects),
            // A username may well be a number (an employee number); a boolean or an error
            // cannot be one.
            (
                UserColumn::Name(_),
                found @ (Cell::Bool(_)
                | Cell::Error(_)
                | Cell::Date(_)
                | Cell::TimeOnly(_)
                | Cell::UnsavedFormula),
            ) => {
                defects.push(wrong_type(
                    name,
                    found,
                    "a username or email",
                    "format the cell as text and enter the name again",
                ));
                found.text()
            }
            (UserColumn::Name(_), found) => found.text(),
        };
        if !text.trim().is_empty() {
            return (*column, text);
        }
    }
    (header.users[0].0, String::new())
}

/// An expiry cell's text: a date, or text holding a date or duration.
fn until_text(cell: &Cell, column: &str, defects: &mut Vec<String>) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(text) | Cell::Date(text) => text.clone(),
        other => {
            defects.push(wrong_type(
                column,
                other,
                "a date (or a duration such as 8h)",
                "format the cell as a date, or as text holding a date or duration, and enter it again",
            ));
            other.text()
        }
    }
}

/// A cell whose type is not what its column needs, in the admin's terms.
/// Why `cell` cannot be `wanted`; for a number (what Excel makes of anything that looks like
/// one), `refill` says how to enter the value so that it stays what it is.
pub(super) fn wrong_type(column: &str, cell: &Cell, wanted: &str, refill: &str) -> String {
    match cell {
        Cell::Number(number) => format!(
            "{column} holds the number {} where {wanted} belongs; {refill}",
            number_text(*number)
        ),
        Cell::Bool(value) => format!(
            "{column} holds the boolean {} where {wanted} belongs",
            if *value { "TRUE" } else { "FALSE" }
        ),
        Cell::Error(error) => format!(
            "{column} holds the spreadsheet error {error} (a formula that failed) where {wanted} belongs; fix the formula or enter the value"
        ),
        Cell::Date(text) => format!("{column} holds the date {text} where {wanted} belongs"),
        Cell::UnsavedFormula => format!(
            "{column} holds a formula saved without its value, so what it shows is unknown; open and save the workbook in Excel so its formulas have values"
        ),
        Cell::TimeOnly(time) => format!(
            "{column} holds the time {time} without a date where {wanted} belongs; enter the date and the time, such as 2026-12-02 {time}"
        ),
        Cell::Empty | Cell::Text(_) => format!("{column} is not {wanted}"),
    }
}
