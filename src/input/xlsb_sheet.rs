//! What an `.xlsb` sheet holds that calamine's cell reader does not say, found in one walk over
//! the sheet's binary records before calamine reads it: rows hidden by hand or by an AutoFilter
//! (a flag on each row's header record), formulas whose value is an error (`BrtFmlaError`,
//! which calamine passes over, so that a `VLOOKUP` giving `#N/A` would read as an empty cell
//! that `--until` fills), rich-text strings (`BrtCellRString`, passed over the same way), and
//! cells in the short form some exporters write (SheetJS, the "Export to Excel" of many web
//! apps), which calamine passes over whole columns of. Short cells are refused rather than
//! read here: one of their kinds needs the string table, which calamine holds and does not
//! share, and a sheet read in part is worse than one not read.

use std::io::{BufRead, Read, Seek};

use super::sheet_facts::{PassedOver, SheetFacts};
use super::zip_part::{Failure, open_part, records};
use super::{u32_at, utf16_le};

const BRT_ROW_HDR: u16 = 0x0000;
const BRT_FMLA_ERROR: u16 = 0x000B;
/// `BrtShortRk` to `BrtShortIsst`; `BrtShortBlank` (0x000C) holds nothing to pass over.
const BRT_SHORT_CELLS: std::ops::RangeInclusive<u16> = 0x000D..=0x0012;
const BRT_CELL_RSTRING: u16 = 0x003E;
const BRT_BEGIN_AFILTER: u16 = 0x00A1;
const BRT_BUNDLE_SH: u16 = 0x009C;

/// The sheets the workbook part lists, in order: each name and relationship ID.
pub fn sheets_listed<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    workbook: &str,
) -> Result<Vec<(String, Option<String>)>, Failure> {
    let part = open_part(zip, workbook).map_err(Failure::Io)?;
    let mut sheets = Vec::new();
    records(
        std::io::BufReader::new(part),
        workbook,
        &mut |kind, record| {
            if kind == BRT_BUNDLE_SH {
                // hsState and iTabID, then the relationship ID and the name.
                let mut at = 8;
                let relationship = wide_string(record, &mut at);
                if let Some(name) = wide_string(record, &mut at) {
                    sheets.push((name, relationship));
                }
            }
            Ok(())
        },
    )?;
    Ok(sheets)
}

/// The relationship ID of the sheet named `sheet` in the workbook part's sheet list.
pub fn sheet_relationship<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    workbook: &str,
    sheet: &str,
) -> Result<String, Failure> {
    sheets_listed(zip, workbook)?
        .into_iter()
        .find_map(|(name, relationship)| if name == sheet { relationship } else { None })
        .ok_or_else(|| Failure::Io(format!("no sheet {} in {workbook}", super::shown(sheet))))
}

/// Walks the sheet part's records for what calamine passes over.
pub fn facts_of(part: impl BufRead, name: &str, sheet: &str) -> Result<SheetFacts, Failure> {
    let mut facts = SheetFacts::default();
    let mut row = 0_u32;
    records(part, name, &mut |kind, record| {
        let column = || u32_at(record, 0);
        match kind {
            BRT_ROW_HDR => {
                if let Some(number) = u32_at(record, 0) {
                    row = number;
                }
                // fDyZero: the row's height is zero, which is how Excel hides it.
                if record.get(11).is_some_and(|flags| flags & 0x10 != 0) {
                    facts.hidden.rows.push(u64::from(row) + 1);
                }
            }
            BRT_FMLA_ERROR => {
                if let (Some(column), Some(code)) = (column(), record.get(8)) {
                    facts
                        .passed_over
                        .push(((row, column), PassedOver::Error(error_text(*code))));
                }
            }
            BRT_CELL_RSTRING => {
                let mut at = 9;
                if let (Some(column), Some(text)) = (column(), wide_string(record, &mut at)) {
                    facts
                        .passed_over
                        .push(((row, column), PassedOver::Text(text)));
                }
            }
            kind if BRT_SHORT_CELLS.contains(&kind) => {
                return Err(Failure::Bound(format!(
                    "sheet {} stores its cells from row {} in the short form some exporters write (SheetJS, a web app's \"Export to Excel\"), which this tool's .xlsb reader would read as empty cells; so the file was not read: open it in Excel and save it as .xlsx",
                    super::shown(sheet),
                    u64::from(row) + 1
                )));
            }
            BRT_BEGIN_AFILTER => facts.hidden.filtered = true,
            _ => {}
        }
        Ok(())
    })?;
    // The merge with calamine's cells takes them in sheet order.
    facts.passed_over.sort_by_key(|(position, _)| *position);
    Ok(facts)
}

/// An `XLWideString` at `at` (a length in characters, then UTF-16), moving `at` past it;
/// `None` when the record is too short for it or it is the null string.
fn wide_string(record: &[u8], at: &mut usize) -> Option<String> {
    let characters = u32_at(record, *at)?;
    let start = at.checked_add(4)?;
    let end = start.checked_add(usize::try_from(characters).ok()?.checked_mul(2)?)?;
    let text = utf16_le(record.get(start..end)?);
    *at = end;
    Some(text)
}

/// How Excel shows an error code of MS-XLSB's `BErr`.
fn error_text(code: u8) -> String {
    match code {
        0x00 => "#NULL!",
        0x07 => "#DIV/0!",
        0x0F => "#VALUE!",
        0x17 => "#REF!",
        0x1D => "#NAME?",
        0x24 => "#NUM!",
        0x2A => "#N/A",
        0x2B => "#GETTING_DATA",
        _ => "an unknown error",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as `.xlsb` writes one: its type and length in 7-bit groups, then its bytes.
    fn record(kind: u16, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if kind < 0x80 {
            out.push(kind as u8);
        } else {
            out.extend([(kind & 0x7F) as u8 | 0x80, (kind >> 7) as u8]);
        }
        let mut length = bytes.len();
        loop {
            let group = (length & 0x7F) as u8;
            length >>= 7;
            out.push(if length > 0 { group | 0x80 } else { group });
            if length == 0 {
                break;
            }
        }
        out.extend_from_slice(bytes);
        out
    }

    fn row_header(row: u32, hidden: bool) -> Vec<u8> {
        let mut bytes = vec![0; 17];
        bytes[..4].copy_from_slice(&row.to_le_bytes());
        bytes[11] = if hidden { 0x10 } else { 0 };
        record(BRT_ROW_HDR, &bytes)
    }

    #[test]
    fn hidden_rows_error_formulas_and_rich_strings_are_found() {
        let mut part = row_header(0, false);
        part.extend(row_header(3, true));
        // A formula giving #N/A in column C: column, style and flags, the error, its flags.
        let mut error = vec![2, 0, 0, 0, 0, 0, 0, 0, 0x2A, 0, 0];
        error.extend([0; 4]);
        part.extend(record(BRT_FMLA_ERROR, &error));
        let mut rich = vec![1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0];
        rich.extend("ok".encode_utf16().flat_map(u16::to_le_bytes));
        part.extend(record(BRT_CELL_RSTRING, &rich));
        part.extend(record(BRT_BEGIN_AFILTER, &[0; 16]));
        let facts = facts_of(&part[..], "sheet1.bin", "Users");
        let facts = facts.ok().unwrap_or_default();
        assert_eq!(facts.hidden.rows, vec![4]);
        assert!(facts.hidden.filtered);
        assert_eq!(
            facts.passed_over,
            vec![
                ((3, 1), PassedOver::Text("ok".to_owned())),
                ((3, 2), PassedOver::Error("#N/A".to_owned()))
            ]
        );
    }

    #[test]
    fn a_short_cell_record_refuses_the_sheet_naming_its_row() {
        let mut part = row_header(6, false);
        part.extend(record(0x0012, &[0; 8]));
        let refused = facts_of(&part[..], "sheet1.bin", "Users");
        assert!(
            matches!(&refused, Err(Failure::Bound(sentence)) if sentence.contains("from row 7") && sentence.contains("save it as .xlsx")),
            "{refused:?}"
        );
    }
}
