//! Workbooks read directly (`calamine`): `.xlsx`, `.xlsm` and `.xlsb` cell by cell as they are
//! stored, so that a sheet of a million rows is read in bounded memory; `.xls` and `.ods`
//! (whose formats calamine reads whole) sheet by sheet. The first non-empty row is the header,
//! `row` is the sheet's own row number, date cells become expiries written without a zone
//! (`--timezone` says what they mean), and a number, boolean or error where an ID or a date
//! belongs is the row's defect, said in the admin's terms.

use std::path::Path;
use std::sync::mpsc;

use calamine::{Data, DataRef, Reader};

use super::archive::Zipped;
use super::sheet_facts::{HiddenRows, PassedOver};
use super::zip_part::Failure;
use super::{Header, HiddenRowsChoice, InputError, InputRecord, UserColumn};

/// Rows handed from the reading thread at once, and how many such batches may wait.
const ROWS_PER_BATCH: usize = 256;
const BATCHES_AHEAD: usize = 4;

/// A cell as the sheet holds it.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
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
    fn of(value: Data) -> Self {
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

    fn is_blank(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Text(text) => text.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as text, as a spreadsheet shows it: whole numbers without a fraction.
    fn text(&self) -> String {
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

fn number_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{number:.0}")
    } else {
        number.to_string()
    }
}

/// A date cell's value as a wall-clock time; seconds and milliseconds only when it has them.
fn naive_text(naive: chrono::NaiveDateTime) -> String {
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
struct SheetRow {
    row: u64,
    cells: Vec<Cell>,
}

/// What the reading thread hands on: rows, then the end, or why it stopped.
enum Batch {
    Rows(Vec<SheetRow>),
    /// The sheet was read to its end; without it, a thread that stopped early would read as a
    /// sheet that ended there.
    End,
    Failed(InputError),
}

/// The data rows of one sheet, read on a thread of its own.
pub struct SheetRows {
    rows: mpsc::Receiver<Batch>,
    batch: std::vec::IntoIter<SheetRow>,
    source_name: String,
}

impl SheetRows {
    /// Opens the sheet and reads up to its first data row: the rows, the header's names, and
    /// whether there is a data row at all.
    pub fn open(
        path: &Path,
        extension: &str,
        (sheet, hidden_rows): (Option<&str>, HiddenRowsChoice),
        source_name: &str,
    ) -> Result<(Self, Vec<String>, bool), InputError> {
        let (sender, receiver) = mpsc::sync_channel(BATCHES_AHEAD);
        let (path, extension, sheet, name) = (
            path.to_owned(),
            extension.to_owned(),
            sheet.map(str::to_owned),
            source_name.to_owned(),
        );
        std::thread::Builder::new()
            .name("workbook".to_owned())
            .spawn(move || {
                let mut batch = Vec::with_capacity(ROWS_PER_BATCH);
                let last_row = std::cell::Cell::new(0_u64);
                let mut emit = |row: SheetRow| {
                    last_row.set(row.row);
                    batch.push(row);
                    if batch.len() < ROWS_PER_BATCH {
                        return true;
                    }
                    sender
                        .send(Batch::Rows(std::mem::replace(
                            &mut batch,
                            Vec::with_capacity(ROWS_PER_BATCH),
                        )))
                        .is_ok()
                };
                // calamine indexes what the file says (a shared string's number, a record's
                // length) and panics on a file that lies; a panic here must not read as the
                // end of the sheet, so it is caught and becomes the file's error.
                let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    read_sheet(
                        &path,
                        &extension,
                        (sheet.as_deref(), hidden_rows),
                        &name,
                        &mut emit,
                    )
                }))
                .unwrap_or_else(|_| {
                    let at = match last_row.get() {
                        0 => "before the first row of the sheet".to_owned(),
                        row => format!("on a cell after row {row} of the sheet"),
                    };
                    Err(InputError::Workbook {
                        source_name: name.clone(),
                        message: format!(
                            "the workbook reader failed {at} (the file is damaged, or not as its format says): open it in Excel and save it again"
                        ),
                    })
                });
                let warned = super::READER_WARNINGS.swap(0, std::sync::atomic::Ordering::Relaxed);
                if warned > 0 {
                    tracing::warn!(
                        "{name}: the workbook reader noted {warned} oddities in the file (such as formulas or properties it could not read); set RUST_LOG=calamine=warn to see them"
                    );
                }
                // The rows gathered before a failure were read right and are handed on; the
                // failure then names the last of them.
                let _ = sender.send(Batch::Rows(batch)).and_then(|()| {
                    sender.send(match read {
                        Ok(()) => Batch::End,
                        Err(error) => Batch::Failed(error),
                    })
                });
            })
            .map_err(|error| InputError::Read {
                source_name: source_name.to_owned(),
                error,
            })?;
        let mut rows = Self {
            rows: receiver,
            batch: Vec::new().into_iter(),
            source_name: source_name.to_owned(),
        };
        let header = match rows.next_row() {
            Some(Ok(header)) => header,
            Some(Err(error)) => return Err(error),
            None => return Err(InputError::Empty(source_name.to_owned())),
        };
        let names = header
            .cells
            .iter()
            .map(|cell| cell.text().trim().to_owned())
            .collect();
        let has_data = match rows.next_row() {
            Some(Err(error)) => return Err(error),
            Some(Ok(first)) => {
                let rest = std::mem::replace(&mut rows.batch, Vec::new().into_iter());
                rows.batch = std::iter::once(first)
                    .chain(rest)
                    .collect::<Vec<_>>()
                    .into_iter();
                true
            }
            None => false,
        };
        Ok((rows, names, has_data))
    }

    fn next_row(&mut self) -> Option<Result<SheetRow, InputError>> {
        loop {
            if let Some(row) = self.batch.next() {
                return Some(Ok(row));
            }
            match self.rows.recv() {
                Ok(Batch::Rows(batch)) => self.batch = batch.into_iter(),
                Ok(Batch::End) => return None,
                Ok(Batch::Failed(error)) => return Some(Err(error)),
                Err(_) => {
                    return Some(Err(InputError::Workbook {
                        source_name: self.source_name.clone(),
                        message: "the workbook reader stopped before the end of the sheet; open the file in Excel and save it again".to_owned(),
                    }));
                }
            }
        }
    }

    /// The next data row, `None` at the end of the sheet.
    pub fn next_record(&mut self, header: &Header) -> Option<Result<InputRecord, InputError>> {
        let row = match self.next_row()? {
            Ok(row) => row,
            Err(error) => return Some(Err(error)),
        };
        Some(Ok(to_input_record(header, &row)))
    }
}

/// Reads the chosen sheet, handing every row that is not blank to `emit` until it says stop.
fn read_sheet(
    path: &Path,
    extension: &str,
    (sheet, hidden_rows): (Option<&str>, HiddenRowsChoice),
    source_name: &str,
    emit: &mut dyn FnMut(SheetRow) -> bool,
) -> Result<(), InputError> {
    let failed = |message: String| InputError::Workbook {
        source_name: source_name.to_owned(),
        message,
    };
    let zipped = match extension {
        "xlsx" | "xlsm" => Some(Zipped::OfficeXml),
        "xlsb" => Some(Zipped::OfficeBinary),
        "ods" => Some(Zipped::OpenDocument),
        _ => None,
    };
    let open = || {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|error| InputError::Read {
                source_name: source_name.to_owned(),
                error,
            })
    };
    // The rows each sheet hides, in order, for the formats read whole.
    let mut hidden_by_sheet = Vec::new();
    if let Some(zipped) = zipped {
        hidden_by_sheet = super::archive::check_workbook(open()?, zipped)
            .map_err(failed)?
            .into_iter()
            .map(|(_, hidden)| hidden)
            .collect();
    } else if extension == "xls" {
        match super::xls_bounds::check(open()?) {
            Ok(facts) => hidden_by_sheet = facts.hidden,
            Err(Failure::Bound(sentence)) => return Err(failed(sentence)),
            // Not handed to calamine: its own reader of the container follows a chain of
            // sectors that loops until memory runs out (found by fuzzing); the walk reads the
            // container as calamine does, so a file it cannot read calamine could not either.
            Err(Failure::Io(why)) => {
                return Err(failed(format!(
                    "it cannot be read as an Excel 97-2003 workbook ({why}): open it in Excel and save it again"
                )));
            }
        }
    }
    match extension {
        // Both formats have a cell reader of their own type; the loop over it is the same.
        "xlsx" | "xlsm" => {
            let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(path)
                .map_err(|error: calamine::XlsxError| failed(error.to_string()))?;
            let name = chosen_sheet(workbook.sheets_metadata(), sheet, source_name)?;
            let (hidden, _) = sheet_pass(path, &name, false, hidden_rows, source_name)?;
            let mut emit_seen = |row: SheetRow| hidden.contains(&row.row) || emit(row);
            let emit: &mut dyn FnMut(SheetRow) -> bool = &mut emit_seen;
            let mut cells = workbook
                .worksheet_cells_reader(&name)
                .map_err(|error| failed(error.to_string()))?;
            // Read with their formulas' presence, in the same one pass, so that a formula
            // without a saved value is told from an empty cell.
            gather_rows(
                || {
                    let record = cells
                        .next_cell_with_formula_metadata()
                        .map_err(|error| failed(error.to_string()))?;
                    Ok(record.map(|record| {
                        let cell = match (&record.value, &record.formula) {
                            (DataRef::Empty, Some(_)) => Cell::UnsavedFormula,
                            (value, _) => Cell::of(Data::from(value.clone())),
                        };
                        (record.pos, cell)
                    }))
                },
                Vec::new(),
                &name,
                source_name,
                emit,
            )
        }
        "xlsb" => {
            let mut workbook: calamine::Xlsb<_> = calamine::open_workbook(path)
                .map_err(|error: calamine::XlsbError| failed(error.to_string()))?;
            let name = chosen_sheet(workbook.sheets_metadata(), sheet, source_name)?;
            let (hidden, passed_over) = sheet_pass(path, &name, true, hidden_rows, source_name)?;
            let mut emit_seen = |row: SheetRow| hidden.contains(&row.row) || emit(row);
            let emit: &mut dyn FnMut(SheetRow) -> bool = &mut emit_seen;
            let mut cells = workbook
                .worksheet_cells_reader(&name)
                .map_err(|error| failed(error.to_string()))?;
            gather_rows(
                || {
                    let cell = cells
                        .next_cell()
                        .map_err(|error| failed(error.to_string()))?;
                    Ok(cell.map(|cell| {
                        (
                            cell.get_position(),
                            Cell::of(Data::from(cell.get_value().clone())),
                        )
                    }))
                },
                passed_over
                    .into_iter()
                    .map(|(position, cell)| {
                        (
                            position,
                            match cell {
                                PassedOver::Error(error) => Cell::Error(error),
                                PassedOver::Text(text) => Cell::Text(text),
                            },
                        )
                    })
                    .collect(),
                &name,
                source_name,
                emit,
            )
        }
        _ => {
            let mut workbook =
                calamine::open_workbook_auto(path).map_err(|error| failed(error.to_string()))?;
            let name = chosen_sheet(workbook.sheets_metadata(), sheet, source_name)?;
            let position = workbook
                .sheets_metadata()
                .iter()
                .position(|listed| listed.name == name);
            let hidden = position
                .and_then(|position| hidden_by_sheet.into_iter().nth(position))
                .unwrap_or_default();
            let left_out = rows_left_out(hidden, hidden_rows, &name, source_name)?;
            let range = workbook
                .worksheet_range(&name)
                .map_err(|error| failed(error.to_string()))?;
            let (Some((first_row, first_column)), Some((last_row, last_column))) =
                (range.start(), range.end())
            else {
                return Ok(());
            };
            within_excels_limits(last_row, last_column, &name, source_name)?;
            for (offset, cells) in range.rows().enumerate() {
                let mut row_cells = vec![Cell::Empty; first_column as usize];
                row_cells.extend(cells.iter().cloned().map(Cell::of));
                let row = SheetRow {
                    row: u64::from(first_row) + offset as u64 + 1,
                    cells: row_cells,
                };
                if !row.cells.iter().all(Cell::is_blank)
                    && !left_out.contains(&row.row)
                    && !emit(row)
                {
                    return Ok(());
                }
            }
            Ok(())
        }
    }
}

/// Hands on the rows of a sheet whose cells `next_cell` gives one by one, in sheet order,
/// with the cells calamine passes over (`passed_over`, in sheet order) put in their places.
fn gather_rows(
    mut next_cell: impl FnMut() -> Result<Option<((u32, u32), Cell)>, InputError>,
    passed_over: Vec<((u32, u32), Cell)>,
    sheet: &str,
    source_name: &str,
    emit: &mut dyn FnMut(SheetRow) -> bool,
) -> Result<(), InputError> {
    let mut rows = RowGatherer::default();
    let mut passed_over = passed_over.into_iter().peekable();
    let mut add = |((row, column), cell): ((u32, u32), Cell), rows: &mut RowGatherer| {
        // Checked before the row's cells are laid out up to that column: a stray cell past
        // Excel's last column would otherwise cost gigabytes, and an allocation that fails
        // aborts the process.
        within_excels_limits(row, column, sheet, source_name)?;
        Ok::<bool, InputError>(rows.add(row, column, cell, emit))
    };
    while let Some((position, cell)) = next_cell()? {
        while let Some(before) = passed_over.next_if(|(at, _)| *at < position) {
            if !add(before, &mut rows)? {
                return Ok(());
            }
        }
        if !add((position, cell), &mut rows)? {
            return Ok(());
        }
    }
    for rest in passed_over {
        if !add(rest, &mut rows)? {
            return Ok(());
        }
    }
    rows.finish(emit);
    Ok(())
}

/// Cells arrive one by one in sheet order; this puts them into rows, leaving out blank ones.
#[derive(Default)]
struct RowGatherer {
    current: Option<SheetRow>,
}

impl RowGatherer {
    /// Adds a cell at (row, column), both from 0; false once `emit` says stop.
    fn add(
        &mut self,
        row: u32,
        column: u32,
        cell: Cell,
        emit: &mut dyn FnMut(SheetRow) -> bool,
    ) -> bool {
        let number = u64::from(row) + 1;
        if self
            .current
            .as_ref()
            .is_some_and(|current| current.row != number)
            && !self.finish(emit)
        {
            return false;
        }
        let current = self.current.get_or_insert_with(|| SheetRow {
            row: number,
            cells: Vec::new(),
        });
        let column = column as usize;
        if current.cells.len() <= column {
            current.cells.resize(column + 1, Cell::Empty);
        }
        current.cells[column] = cell;
        true
    }

    /// Hands on the row being gathered, unless it is blank.
    fn finish(&mut self, emit: &mut dyn FnMut(SheetRow) -> bool) -> bool {
        match self.current.take() {
            Some(row) if !row.cells.iter().all(Cell::is_blank) => emit(row),
            _ => true,
        }
    }
}

/// The pass over the chosen sheet's part before calamine reads it (`.xlsx`, `.xlsm`, or with
/// `binary` `.xlsb`): the part held to its bound, the rows to leave out, and the cells calamine
/// passes over. A sheet whose part cannot be walked is read as calamine reads it, saying so.
type PassedOverCells = Vec<((u32, u32), PassedOver)>;

fn sheet_pass(
    path: &Path,
    sheet: &str,
    binary: bool,
    choice: HiddenRowsChoice,
    source_name: &str,
) -> Result<(std::collections::HashSet<u64>, PassedOverCells), InputError> {
    let facts = match super::hidden_rows::of_sheet(path, sheet, binary) {
        Ok(facts) => facts,
        Err(Failure::Bound(sentence)) => {
            return Err(InputError::Workbook {
                source_name: source_name.to_owned(),
                message: sentence,
            });
        }
        Err(Failure::Io(why)) => {
            tracing::warn!(
                "{source_name}: could not tell which rows of sheet {} are hidden ({why}); reading them all",
                super::shown(sheet)
            );
            return Ok(Default::default());
        }
    };
    Ok((
        rows_left_out(facts.hidden, choice, sheet, source_name)?,
        facts.passed_over,
    ))
}

/// The rows of `sheet` to leave out, given those it hides: none unless `--hidden-rows skip`;
/// with the default `refuse`, a sheet that hides any row is an error naming them.
fn rows_left_out(
    hidden: HiddenRows,
    choice: HiddenRowsChoice,
    sheet: &str,
    source_name: &str,
) -> Result<std::collections::HashSet<u64>, InputError> {
    if choice == HiddenRowsChoice::Include || hidden.rows.is_empty() {
        return Ok(Default::default());
    }
    if choice == HiddenRowsChoice::Refuse {
        const NAMED: usize = 10;
        let mut rows: Vec<String> = hidden.rows.iter().take(NAMED).map(u64::to_string).collect();
        if hidden.rows.len() > NAMED {
            rows.push(format!("and {} more", hidden.rows.len() - NAMED));
        }
        return Err(InputError::HiddenRows {
            source_name: source_name.to_owned(),
            sheet: super::shown(sheet),
            rows: rows.join(", "),
            by_filter: if hidden.filtered {
                " (it has a filter)"
            } else {
                ""
            },
        });
    }
    tracing::warn!(
        "{source_name}: leaving out {} hidden rows of sheet {} (--hidden-rows skip)",
        hidden.rows.len(),
        super::shown(sheet)
    );
    Ok(hidden.rows.into_iter().collect())
}

/// The sheets a message lists, at most.
const LISTED_SHEETS: usize = 20;

/// Excel's own limits (1,048,576 rows, 16,384 columns, to `XFD`), which no sheet Excel saves
/// goes past: a cell beyond them is a file made by something else, or made to hurt.
const MOST_ROWS: u32 = 1_048_576;
const MOST_COLUMNS: u32 = 16_384;

/// A cell at (row, column), both from 0, inside Excel's limits; or the error naming it.
fn within_excels_limits(
    row: u32,
    column: u32,
    sheet: &str,
    source_name: &str,
) -> Result<(), InputError> {
    if row < MOST_ROWS && column < MOST_COLUMNS {
        return Ok(());
    }
    Err(InputError::Workbook {
        source_name: source_name.to_owned(),
        message: format!(
            "sheet {} has a cell at row {}, column {}, past Excel's last row (1,048,576) or column (16,384, XFD); no sheet Excel saves goes there, so the file was not read: save the sheet again from Excel",
            super::shown(sheet),
            u64::from(row) + 1,
            u64::from(column) + 1
        ),
    })
}

/// The sheet to read: the one `--sheet` names (by name, then without regard to case, then by
/// number from 1), hidden or not; without `--sheet`, the first visible worksheet, so that what
/// is granted is what the admin sees when the workbook opens. Hidden sheets and chart or macro
/// sheets passed over are said on standard error.
fn chosen_sheet(
    sheets: &[calamine::Sheet],
    asked: Option<&str>,
    source_name: &str,
) -> Result<String, InputError> {
    let listed = || {
        sheets
            .iter()
            .enumerate()
            .take(LISTED_SHEETS)
            .map(|(index, sheet)| {
                format!(
                    "{} {}{}",
                    index + 1,
                    super::shown(&sheet.name),
                    sheet_kind(sheet)
                )
            })
            .chain(
                (sheets.len() > LISTED_SHEETS)
                    .then(|| format!("and {} more", sheets.len() - LISTED_SHEETS)),
            )
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing = |asked: &str| InputError::NoSuchSheet {
        source_name: source_name.to_owned(),
        asked: asked.to_owned(),
        sheets: listed(),
    };
    let Some(asked) = asked else {
        let Some(first) = sheets.iter().position(is_visible_worksheet) else {
            return Err(InputError::Workbook {
                source_name: source_name.to_owned(),
                message: format!(
                    "it has no visible worksheet; name the sheet to read with --sheet (its sheets are {})",
                    listed()
                ),
            });
        };
        let passed_over: Vec<String> = sheets[..first]
            .iter()
            .take(LISTED_SHEETS)
            .map(|sheet| format!("{}{}", super::shown(&sheet.name), sheet_kind(sheet)))
            .collect();
        let name = sheets[first].name.clone();
        if !passed_over.is_empty() {
            tracing::warn!(
                "{source_name}: reading sheet {}, the first visible worksheet; passed over {} (name one with --sheet to read it)",
                super::shown(&name),
                passed_over.join(", ")
            );
        }
        return Ok(name);
    };
    let found = sheets
        .iter()
        .find(|sheet| sheet.name == asked)
        .or_else(|| {
            sheets
                .iter()
                .find(|sheet| sheet.name.eq_ignore_ascii_case(asked))
        })
        .or_else(|| {
            asked
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|number| number.checked_sub(1))
                .and_then(|index| sheets.get(index))
        })
        .ok_or_else(|| missing(asked))?;
    if !matches!(found.typ, calamine::SheetType::WorkSheet) {
        return Err(InputError::Workbook {
            source_name: source_name.to_owned(),
            message: format!(
                "sheet {} is {}, which holds no rows to read; its sheets are {}",
                super::shown(&found.name),
                match found.typ {
                    calamine::SheetType::ChartSheet => "a chart sheet",
                    calamine::SheetType::MacroSheet => "a macro sheet",
                    calamine::SheetType::DialogSheet => "a dialog sheet",
                    _ => "a VBA module",
                },
                listed()
            ),
        });
    }
    Ok(found.name.clone())
}

fn is_visible_worksheet(sheet: &calamine::Sheet) -> bool {
    matches!(sheet.visible, calamine::SheetVisible::Visible)
        && matches!(sheet.typ, calamine::SheetType::WorkSheet)
}

/// How a sheet differs from a visible worksheet, for messages: ` (hidden)`, ` (chart)`, ….
fn sheet_kind(sheet: &calamine::Sheet) -> &'static str {
    match (sheet.typ, sheet.visible) {
        (calamine::SheetType::ChartSheet, _) => " (chart)",
        (calamine::SheetType::MacroSheet, _) => " (macro)",
        (calamine::SheetType::DialogSheet, _) => " (dialog)",
        (calamine::SheetType::Vba, _) => " (VBA module)",
        (_, calamine::SheetVisible::Hidden) => " (hidden)",
        (_, calamine::SheetVisible::VeryHidden) => " (very hidden)",
        (calamine::SheetType::WorkSheet, calamine::SheetVisible::Visible) => "",
    }
}

/// The row's cells by the header's columns, with a defect where a cell's type cannot be what
/// its column needs.
fn to_input_record(header: &Header, row: &SheetRow) -> InputRecord {
    let empty = Cell::Empty;
    let cell = |index: usize| row.cells.get(index).unwrap_or(&empty);
    let mut defects = Vec::new();
    let id_text = |index: usize, column: &str, defects: &mut Vec<String>| -> String {
        match cell(index) {
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
    };
    let environment = header
        .environment
        .as_ref()
        .map(|(index, name)| id_text(*index, name, &mut defects))
        .unwrap_or_default();
    let mut named_by = header.users[0].0;
    let mut user = String::new();
    for (column, index, name) in &header.users {
        let text = match (column, cell(*index)) {
            (UserColumn::Id, _) => id_text(*index, name, &mut defects),
            // A username may well be a number (an employee number); a boolean or an error
            // cannot be one.
            (
                UserColumn::Name(_),
                Cell::Bool(_)
                | Cell::Error(_)
                | Cell::Date(_)
                | Cell::TimeOnly(_)
                | Cell::UnsavedFormula,
            ) => {
                let found = cell(*index);
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
            (named_by, user) = (*column, text);
            break;
        }
    }
    let until = match &header.until {
        None => String::new(),
        Some((index, name)) => match cell(*index) {
            Cell::Empty => String::new(),
            Cell::Text(text) | Cell::Date(text) => text.clone(),
            other => {
                defects.push(wrong_type(
                    name,
                    other,
                    "a date (or a duration such as 8h)",
                    "format the cell as a date, or as text holding a date or duration, and enter it again",
                ));
                other.text()
            }
        },
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
        defect: (!defects.is_empty()).then(|| defects.join("; ")),
    }
}

/// A cell whose type is not what its column needs, in the admin's terms.
/// Why `cell` cannot be `wanted`; for a number (what Excel makes of anything that looks like
/// one), `refill` says how to enter the value so that it stays what it is.
fn wrong_type(column: &str, cell: &Cell, wanted: &str, refill: &str) -> String {
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
