//! An Excel 97-2003 (`.xls`) workbook walked before calamine reads it. calamine parses every
//! sheet when it opens such a file and lays each out whole, reserving what a sheet's
//! DIMENSIONS record claims before a cell is read: a 6 KB file with one stray value at `IV65536`
//! cost a gibibyte. It also reads a workbook protected by Excel's weakest password scheme (XOR)
//! as if it were not, and fails on the scrambled bytes with a message about code pages. And it
//! does not say which rows a sheet hides. Here the workbook stream's records are walked once,
//! holding nothing but counts, so that such a file is refused naming what to do, and hidden rows
//! are known, before calamine opens it.

use std::io::{BufRead, Read};

use super::sheet_facts::HiddenRows;
use super::zip_part::{Failure, MOST_LAID_OUT_CELLS};
use super::{u16_at, u32_at, utf16_le};

const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const FILEPASS: u16 = 0x002F;
const BOUNDSHEET: u16 = 0x0085;
const DIMENSIONS: u16 = 0x0200;
const ROW: u16 = 0x0208;
const AUTOFILTERINFO: u16 = 0x009D;
/// Records calamine lays out as a cell (not blanks, which it passes over): each starts with
/// its row and column.
const CELLS: [u16; 8] = [
    0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD, 0x0006, 0x00BD,
];
const MULRK: u16 = 0x00BD;

/// What the walk found, sheet by sheet in the workbook's order (calamine's too).
#[derive(Debug, Default)]
pub struct XlsFacts {
    /// The sheets' names (for messages and the page's sheet list; a name in an Excel 5.0 file
    /// is read as Windows-1252).
    pub names: Vec<String>,
    pub hidden: Vec<HiddenRows>,
}

/// A sheet's extent of values, rows and columns from 0.
#[derive(Default)]
struct Extent {
    rows: Option<(u32, u32)>,
    columns: Option<(u32, u32)>,
}

impl Extent {
    fn add(&mut self, row: u32, first_column: u32, last_column: u32) {
        self.rows = Some(
            self.rows
                .map_or((row, row), |(top, bottom)| (top.min(row), bottom.max(row))),
        );
        self.columns = Some(
            self.columns
                .map_or((first_column, last_column), |(left, right)| {
                    (left.min(first_column), right.max(last_column))
                }),
        );
    }

    fn cells(&self) -> u64 {
        match (self.rows, self.columns) {
            (Some((top, bottom)), Some((left, right))) => {
                u64::from(bottom - top + 1).saturating_mul(u64::from(right - left + 1))
            }
            _ => 0,
        }
    }
}

/// Walks the `.xls` in `reader`; `Failure::Bound` says why it must not be read.
pub fn check<R: Read>(mut reader: R) -> Result<XlsFacts, Failure> {
    let mut file = Vec::new();
    reader.read_to_end(&mut file)?;
    let container = super::xls_container::read(&file).map_err(Failure::Io)?;
    if container.encrypted_package {
        return Err(password_protected());
    }
    walk(&container.workbook[..])
}

fn password_protected() -> Failure {
    Failure::Bound(
        "it is password protected, and a protected workbook cannot be read: open it in Excel, remove the password (File > Info > Protect Workbook > Encrypt with Password, cleared), and save it again".to_owned(),
    )
}

fn walk(mut stream: impl BufRead) -> Result<XlsFacts, Failure> {
    let mut walk = Walk {
        in_globals: true,
        biff8: true,
        ..Walk::default()
    };
    let mut data = Vec::new();
    loop {
        let mut header = [0_u8; 4];
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(walk.facts);
            }
            Err(error) => return Err(error.into()),
        }
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let length = u16::from_le_bytes([header[2], header[3]]);
        data.resize(usize::from(length), 0);
        stream.read_exact(&mut data)?;
        walk.record(kind, &data)?;
    }
}

/// Where the walk over the workbook stream stands.
#[derive(Default)]
struct Walk {
    facts: XlsFacts,
    /// 0 before the globals' BOF; then the substream's nesting: 1 in the globals or a sheet.
    depth: u32,
    in_globals: bool,
    sheet: Option<usize>,
    extent: Extent,
    biff8: bool,
}

impl Walk {
    /// Takes in one record.
    fn record(&mut self, kind: u16, data: &[u8]) -> Result<(), Failure> {
        match kind {
            BOF => {
                if self.depth == 0 && self.in_globals {
                    self.biff8 = data.get(..2) == Some(&0x0600_u16.to_le_bytes()[..]);
                }
                self.depth = self.depth.saturating_add(1);
                if self.depth == 1 && !self.in_globals {
                    self.sheet = Some(self.sheet.map_or(0, |index| index + 1));
                    self.facts.hidden.push(HiddenRows::default());
                    self.extent = Extent::default();
                }
            }
            EOF => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.in_globals = false;
                }
            }
            _ if self.depth != 1 => {}
            FILEPASS if self.in_globals => return Err(password_protected()),
            BOUNDSHEET if self.in_globals => {
                self.facts.names.push(sheet_name(data, self.biff8));
            }
            _ if self.in_globals => {}
            DIMENSIONS => self.dimensions(data)?,
            ROW => {
                // fDyZero, bit 5 of the options at byte 12: the row's height is zero.
                if let (Some(row), Some(options), Some(hidden)) =
                    (u16_at(data, 0), data.get(12), self.hidden())
                    && options & 0x20 != 0
                {
                    hidden.rows.push(u64::from(row) + 1);
                }
            }
            AUTOFILTERINFO => {
                if let Some(hidden) = self.hidden() {
                    hidden.filtered = true;
                }
            }
            kind if CELLS.contains(&kind) => self.cell(kind, data)?,
            _ => {}
        }
        Ok(())
    }

    /// The rows the sheet being walked hides.
    fn hidden(&mut self) -> Option<&mut HiddenRows> {
        self.sheet
            .and_then(|index| self.facts.hidden.get_mut(index))
    }

    /// A sheet's DIMENSIONS record, refused when what it claims would be laid out whole.
    fn dimensions(&self, data: &[u8]) -> Result<(), Failure> {
        // BIFF8: first row, last row + 1 (32 bits each), first column, last column + 1.
        if let (Some(first_row), Some(end_row), Some(first_column), Some(end_column)) = (
            u32_at(data, 0),
            u32_at(data, 4),
            u16_at(data, 8).map(u32::from),
            u16_at(data, 10).map(u32::from),
        ) {
            let claimed = u64::from(end_row.saturating_sub(first_row))
                .saturating_mul(u64::from(end_column.saturating_sub(first_column)));
            if claimed > MOST_LAID_OUT_CELLS {
                return Err(too_many_cells(
                    &self.facts.names,
                    self.sheet,
                    claimed,
                    end_row,
                    end_column,
                ));
            }
        }
        Ok(())
    }

    /// A record calamine lays out as a cell (or, `MULRK`, a run of them), added to the extent.
    fn cell(&mut self, kind: u16, data: &[u8]) -> Result<(), Failure> {
        let (Some(row), Some(column)) = (u16_at(data, 0), u16_at(data, 2)) else {
            return Ok(());
        };
        let (row, column) = (u32::from(row), u32::from(column));
        let last_column = match kind {
            MULRK => data
                .len()
                .checked_sub(2)
                .and_then(|at| u16_at(data, at))
                .map_or(column, u32::from),
            _ => column,
        };
        self.extent.add(row, column, last_column.max(column));
        let cells = self.extent.cells();
        if cells > MOST_LAID_OUT_CELLS {
            return Err(too_many_cells(
                &self.facts.names,
                self.sheet,
                cells,
                row + 1,
                last_column + 1,
            ));
        }
        Ok(())
    }
}

fn too_many_cells(
    names: &[String],
    sheet: Option<usize>,
    cells: u64,
    row: u32,
    column: u32,
) -> Failure {
    let name = sheet.and_then(|index| names.get(index)).map_or_else(
        || "a sheet".to_owned(),
        |name| format!("sheet {}", super::shown(name)),
    );
    Failure::Bound(format!(
        "{name} spans {cells} cells, out to row {row}, column {column}, past this tool's bound of {MOST_LAID_OUT_CELLS} for an Excel 97-2003 sheet, which is read whole; so the file was not read: delete the stray values far from the table, or save the workbook as .xlsx (read as it streams)"
    ))
}

/// A BOUNDSHEET record's sheet name: a count, in BIFF8 a flag for two-byte characters, the
/// characters.
fn sheet_name(data: &[u8], biff8: bool) -> String {
    let Some(&count) = data.get(6) else {
        return String::new();
    };
    let flags = if biff8 {
        data.get(7).copied().unwrap_or(0)
    } else {
        0
    };
    let characters = data.get(if biff8 { 8 } else { 7 }..).unwrap_or_default();
    if flags & 1 == 1 {
        utf16_le(&characters[..characters.len().min(usize::from(count) * 2)])
    } else {
        characters
            .iter()
            .take(usize::from(count))
            .map(|&byte| char::from(byte))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u16, data: &[u8]) -> Vec<u8> {
        [
            &kind.to_le_bytes()[..],
            &(data.len() as u16).to_le_bytes(),
            data,
        ]
        .concat()
    }

    fn number(row: u16, column: u16) -> Vec<u8> {
        record(
            0x0203,
            &[&row.to_le_bytes()[..], &column.to_le_bytes(), &[0; 10]].concat(),
        )
    }

    fn workbook(sheet: &[Vec<u8>]) -> Vec<u8> {
        let biff8 = [&0x0600_u16.to_le_bytes()[..], &[0; 14]].concat();
        let mut stream = record(BOF, &biff8);
        stream.extend(record(
            BOUNDSHEET,
            &[&[0_u8; 6][..], &[5, 0], b"Users"].concat(),
        ));
        stream.extend(record(EOF, &[]));
        stream.extend(record(BOF, &[0; 16]));
        stream.extend(sheet.concat());
        stream.extend(record(EOF, &[]));
        stream
    }

    #[test]
    fn a_stray_value_at_iv65536_is_refused_naming_the_sheet_and_where() {
        let stream = workbook(&[number(0, 0), number(65_535, 255)]);
        let refused = walk(&stream[..]);
        assert!(
            matches!(&refused, Err(Failure::Bound(sentence)) if sentence.contains("sheet \"Users\" spans 16777216 cells, out to row 65536, column 256")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_dimensions_record_claiming_the_whole_sheet_is_refused_before_calamine_reserves_it() {
        let dimensions = record(
            DIMENSIONS,
            &[
                &0_u32.to_le_bytes()[..],
                &65_536_u32.to_le_bytes(),
                &0_u16.to_le_bytes(),
                &256_u16.to_le_bytes(),
                &[0, 0],
            ]
            .concat(),
        );
        assert!(matches!(
            walk(&workbook(&[dimensions])[..]),
            Err(Failure::Bound(_))
        ));
    }

    #[test]
    fn hidden_rows_a_filter_and_a_password_are_found() {
        let mut row = vec![0_u8; 16];
        row[..2].copy_from_slice(&4_u16.to_le_bytes());
        row[12] = 0x20;
        let facts = walk(
            &workbook(&[
                number(0, 0),
                record(ROW, &row),
                record(AUTOFILTERINFO, &[1, 0]),
            ])[..],
        );
        let hidden = facts.ok().map(|facts| facts.hidden).unwrap_or_default();
        assert_eq!(
            hidden,
            vec![HiddenRows {
                rows: vec![5],
                filtered: true
            }]
        );

        let mut protected = record(BOF, &[0; 16]);
        protected.extend(record(FILEPASS, &[0, 0, 0x34, 0x12, 0x78, 0x56]));
        assert!(
            matches!(walk(&protected[..]), Err(Failure::Bound(sentence)) if sentence.contains("password protected"))
        );
    }
}
