//! Which sheet of a workbook is read, and Excel's own limits on where a cell may be: the sheet
//! `--sheet` names, or the first visible worksheet, with the sheets passed over said.

use super::InputError;

/// The sheets a message lists, at most.
const LISTED_SHEETS: usize = 20;

/// Excel's own limits (1,048,576 rows, 16,384 columns, to `XFD`), which no sheet Excel saves
/// goes past: a cell beyond them is a file made by something else, or made to hurt.
pub(super) const MOST_ROWS: u32 = 1_048_576;
pub(super) const MOST_COLUMNS: u32 = 16_384;

/// A cell at (row, column), both from 0, inside Excel's limits; or the error naming it.
pub(super) fn within_excels_limits(
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
pub(super) fn chosen_sheet(
    sheets: &[calamine::Sheet],
    asked: Option<&str>,
    source_name: &str,
) -> Result<String, InputError> {
    match asked {
        None => first_visible_worksheet(sheets, source_name),
        Some(asked) => named_sheet(sheets, asked, source_name),
    }
}

/// The workbook's sheets for messages: number, name and kind, the first `LISTED_SHEETS`.
fn listed(sheets: &[calamine::Sheet]) -> String {
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
}

fn first_visible_worksheet(
    sheets: &[calamine::Sheet],
    source_name: &str,
) -> Result<String, InputError> {
    let Some(first) = sheets.iter().position(is_visible_worksheet) else {
        return Err(InputError::Workbook {
            source_name: source_name.to_owned(),
            message: format!(
                "it has no visible worksheet; name the sheet to read with --sheet (its sheets are {})",
                listed(sheets)
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
    Ok(name)
}

fn named_sheet(
    sheets: &[calamine::Sheet],
    asked: &str,
    source_name: &str,
) -> Result<String, InputError> {
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
        .ok_or_else(|| InputError::NoSuchSheet {
            source_name: source_name.to_owned(),
            asked: asked.to_owned(),
            sheets: listed(sheets),
        })?;
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
                listed(sheets)
            ),
        });
    }
    Ok(found.name.clone())
}

pub(super) fn is_visible_worksheet(sheet: &calamine::Sheet) -> bool {
    matches!(sheet.visible, calamine::SheetVisible::Visible)
        && matches!(sheet.typ, calamine::SheetType::WorkSheet)
}

/// How a sheet differs from a visible worksheet, for messages: ` (hidden)`, ` (chart)`, ….
pub(super) fn sheet_kind(sheet: &calamine::Sheet) -> &'static str {
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
