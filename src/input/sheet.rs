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
use super::sheet_cells::{Cell, SheetRow, to_input_record};
use super::sheet_choice::{chosen_sheet, within_excels_limits};
use super::sheet_facts::{HiddenRows, PassedOver};
use super::zip_part::Failure;
use super::{Header, HiddenRowsChoice, InputError, InputRecord};

/// Rows handed from the reading thread at once, and how many such batches may wait.
const ROWS_PER_BATCH: usize = 256;
const BATCHES_AHEAD: usize = 4;

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
        let wanted = WantedSheet {
            path: path.to_owned(),
            extension: extension.to_owned(),
            sheet: sheet.map(str::to_owned),
            hidden_rows,
            source_name: source_name.to_owned(),
        };
        std::thread::Builder::new()
            .name("workbook".to_owned())
            .spawn(move || wanted.read_into(&sender))
            .map_err(|error| InputError::Read {
                source_name: source_name.to_owned(),
                error,
            })?;
        let mut rows = Self {
            rows: receiver,
            batch: Vec::new().into_iter(),
            source_name: source_name.to_owned(),
        };
        let (names, has_data) = rows.header_and_first_row()?;
        Ok((rows, names, has_data))
    }

    /// The header's names, and whether a data row follows it (kept to be read first).
    fn header_and_first_row(&mut self) -> Result<(Vec<String>, bool), InputError> {
        let header = match self.next_row() {
            Some(Ok(header)) => header,
            Some(Err(error)) => return Err(error),
            None => return Err(InputError::Empty(self.source_name.clone())),
        };
        let names = header
            .cells
            .iter()
            .map(|cell| cell.text().trim().to_owned())
            .collect();
        let has_data = match self.next_row() {
            Some(Err(error)) => return Err(error),
            Some(Ok(first)) => {
                let rest = std::mem::replace(&mut self.batch, Vec::new().into_iter());
                self.batch = std::iter::once(first)
                    .chain(rest)
                    .collect::<Vec<_>>()
                    .into_iter();
                true
            }
            None => false,
        };
        Ok((names, has_data))
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
                    return Some(Err(failed(
                        &self.source_name,
                        "the workbook reader stopped before the end of the sheet; open the file in Excel and save it again",
                    )));
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

/// The sheet the reading thread is to read, owned so that the thread can take it.
struct WantedSheet {
    path: std::path::PathBuf,
    extension: String,
    sheet: Option<String>,
    hidden_rows: HiddenRowsChoice,
    source_name: String,
}

impl WantedSheet {
    /// The reading thread's work: every row, in batches, then the end or why it stopped.
    fn read_into(self, sender: &mpsc::SyncSender<Batch>) {
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
        // calamine indexes what the file says (a shared string's number, a record's length)
        // and panics on a file that lies; a panic here must not read as the end of the sheet,
        // so it is caught and becomes the file's error.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read_sheet(
                &self.path,
                &self.extension,
                (self.sheet.as_deref(), self.hidden_rows),
                &self.source_name,
                &mut emit,
            )
        }))
        .unwrap_or_else(|_| Err(reader_panicked(last_row.get(), &self.source_name)));
        let warned = super::READER_WARNINGS.swap(0, std::sync::atomic::Ordering::Relaxed);
        if warned > 0 {
            tracing::warn!(
                "{}: the workbook reader noted {warned} oddities in the file (such as formulas or properties it could not read); set RUST_LOG=calamine=warn to see them",
                self.source_name
            );
        }
        // The rows gathered before a failure were read right and are handed on; the failure
        // then names the last of them.
        let _ = sender.send(Batch::Rows(batch)).and_then(|()| {
            sender.send(match read {
                Ok(()) => Batch::End,
                Err(error) => Batch::Failed(error),
            })
        });
    }
}

/// The file's error when the workbook reader panicked after `last_row` (0: before any row).
fn reader_panicked(last_row: u64, source_name: &str) -> InputError {
    let at = match last_row {
        0 => "before the first row of the sheet".to_owned(),
        row => format!("on a cell after row {row} of the sheet"),
    };
    failed(
        source_name,
        format!(
            "the workbook reader failed {at} (the file is damaged, or not as its format says): open it in Excel and save it again"
        ),
    )
}

/// A defect of the workbook `source_name`, said in `message`.
fn failed(source_name: &str, message: impl ToString) -> InputError {
    InputError::Workbook {
        source_name: source_name.to_owned(),
        message: message.to_string(),
    }
}

/// Reads the chosen sheet, handing every row that is not blank to `emit` until it says stop.
fn read_sheet(
    path: &Path,
    extension: &str,
    wanted: (Option<&str>, HiddenRowsChoice),
    source_name: &str,
    emit: &mut dyn FnMut(SheetRow) -> bool,
) -> Result<(), InputError> {
    let zipped = match extension {
        "xlsx" | "xlsm" => Zipped::OfficeXml,
        "xlsb" => Zipped::OfficeBinary,
        "ods" => Zipped::OpenDocument,
        "xls" => {
            let hidden = xls_hidden_rows(path, source_name)?;
            return read_whole(path, hidden, wanted, source_name, emit);
        }
        _ => return read_whole(path, Vec::new(), wanted, source_name, emit),
    };
    let checked = super::archive::check_workbook(open_file(path, source_name)?, zipped)
        .map_err(|sentence| failed(source_name, sentence))?;
    match zipped {
        Zipped::OfficeXml => read_xlsx(path, wanted, source_name, emit),
        Zipped::OfficeBinary => read_xlsb(path, wanted, source_name, emit),
        Zipped::OpenDocument => {
            let hidden = checked.into_iter().map(|(_, hidden)| hidden).collect();
            read_whole(path, hidden, wanted, source_name, emit)
        }
    }
}

fn open_file(
    path: &Path,
    source_name: &str,
) -> Result<std::io::BufReader<std::fs::File>, InputError> {
    std::fs::File::open(path)
        .map(std::io::BufReader::new)
        .map_err(|error| InputError::Read {
            source_name: source_name.to_owned(),
            error,
        })
}

/// The rows each sheet of an `.xls` hides, in order, once its container is held to its bounds.
fn xls_hidden_rows(path: &Path, source_name: &str) -> Result<Vec<HiddenRows>, InputError> {
    match super::xls_bounds::check(open_file(path, source_name)?) {
        Ok(facts) => Ok(facts.hidden),
        Err(Failure::Bound(sentence)) => Err(failed(source_name, sentence)),
        // Not handed to calamine: its own reader of the container follows a chain of sectors
        // that loops until memory runs out (found by fuzzing); the walk reads the container as
        // calamine does, so a file it cannot read calamine could not either.
        Err(unread) => Err(failed(
            source_name,
            format!(
                "it cannot be read as an Excel 97-2003 workbook ({}): open it in Excel and save it again",
                unread.text()
            ),
        )),
    }
}

/// An `.xlsx` or `.xlsm` sheet, cell by cell.
fn read_xlsx(
    path: &Path,
    (sheet, hidden_rows): (Option<&str>, HiddenRowsChoice),
    source_name: &str,
    emit: &mut dyn FnMut(SheetRow) -> bool,
) -> Result<(), InputError> {
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(path)
        .map_err(|error: calamine::XlsxError| failed(source_name, error))?;
    let name = chosen_sheet(workbook.sheets_metadata(), sheet, source_name)?;
    let (hidden, _) = sheet_pass(path, &name, false, hidden_rows, source_name)?;
    let mut emit_seen = |row: SheetRow| hidden.contains(&row.row) || emit(row);
    let mut cells = workbook
        .worksheet_cells_reader(&name)
        .map_err(|error| failed(source_name, error))?;
    // Read with their formulas' presence, in the same one pass, so that a formula without a
    // saved value is told from an empty cell.
    let next_cell = || {
        let record = cells
            .next_cell_with_formula_metadata()
            .map_err(|error| failed(source_name, error))?;
        Ok(record.map(|record| {
            let cell = match (&record.value, &record.formula) {
                (DataRef::Empty, Some(_)) => Cell::UnsavedFormula,
                (value, _) => Cell::of(Data::from(value.clone())),
            };
            (record.pos, cell)
        }))
    };
    gather_rows(next_cell, Vec::new(), &name, source_name, &mut emit_seen)
}

/// An `.xlsb` sheet, cell by cell, with the cells calamine passes over put back in place.
fn read_xlsb(
    path: &Path,
    (sheet, hidden_rows): (Option<&str>, HiddenRowsChoice),
    source_name: &str,
    emit: &mut dyn FnMut(SheetRow) -> bool,
) -> Result<(), InputError> {
    let mut workbook: calamine::Xlsb<_> = calamine::open_workbook(path)
        .map_err(|error: calamine::XlsbError| failed(source_name, error))?;
    let name = chosen_sheet(workbook.sheets_metadata(), sheet, source_name)?;
    let (hidden, passed_over) = sheet_pass(path, &name, true, hidden_rows, source_name)?;
    let mut emit_seen = |row: SheetRow| hidden.contains(&row.row) || emit(row);
    let mut cells = workbook
        .worksheet_cells_reader(&name)
        .map_err(|error| failed(source_name, error))?;
    let next_cell = || {
        let cell = cells
            .next_cell()
            .map_err(|error| failed(source_name, error))?;
        Ok(cell.map(|cell| {
            (
                cell.get_position(),
                Cell::of(Data::from(cell.get_value().clone())),
            )
        }))
    };
    let passed_over = passed_over
        .into_iter()
        .map(|(position, cell)| {
            let cell = match cell {
                PassedOver::Error(error) => Cell::Error(error),
                PassedOver::Text(text) => Cell::Text(text),
            };
            (position, cell)
        })
        .collect();
    gather_rows(next_cell, passed_over, &name, source_name, &mut emit_seen)
}

/// A sheet of a format calamine reads whole (`.xls`, `.ods`), given the rows each sheet of
/// the file hides, in order.
fn read_whole(
    path: &Path,
    hidden_by_sheet: Vec<HiddenRows>,
    (sheet, hidden_rows): (Option<&str>, HiddenRowsChoice),
    source_name: &str,
    emit: &mut dyn FnMut(SheetRow) -> bool,
) -> Result<(), InputError> {
    let mut workbook =
        calamine::open_workbook_auto(path).map_err(|error| failed(source_name, error))?;
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
        .map_err(|error| failed(source_name, error))?;
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
        if !row.cells.iter().all(Cell::is_blank) && !left_out.contains(&row.row) && !emit(row) {
            return Ok(());
        }
    }
    Ok(())
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
        Err(Failure::Bound(sentence)) => return Err(failed(source_name, sentence)),
        Err(unread) => {
            tracing::warn!(
                "{source_name}: could not tell which rows of sheet {} are hidden ({}); reading them all",
                super::shown(sheet),
                unread.text()
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
