//! An `.ods` sheet's size as calamine will lay it out, found before it does. OpenDocument
//! writes a run of equal rows or cells once with a repeat count, so a few bytes can stand for a
//! million rows of sixteen thousand cells; calamine expands the runs that hold values, caps
//! rows past 1,048,576 and columns past 16,384 with a warning each, and drops them. Here the
//! runs are added up, without expanding them, so that such a sheet is refused naming where it
//! goes past Excel's limits, instead of costing gigabytes or losing rows with no error.

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use super::sheet_facts::{HiddenRows, attribute};
use super::zip_part::{Failure, MOST_CELL_CHARS, MOST_COLUMNS, MOST_LAID_OUT_CELLS, MOST_ROWS};

/// The extent of one sheet's values, rows and columns from 0.
#[derive(Debug, Default)]
struct Extent {
    name: String,
    rows: Option<(u64, u64)>,
    columns: Option<(u64, u64)>,
}

/// Checks every sheet of an `.ods` file's `content.xml`, and finds each one's name and the rows
/// it hides (by hand or by a filter: `table:visibility` on the row), in order.
pub fn check_content(part: impl BufRead) -> Result<Vec<(String, HiddenRows)>, Failure> {
    let mut xml = quick_xml::Reader::from_reader(part);
    let mut buffer = Vec::new();
    let mut walk = ContentWalk {
        row_repeats: 1,
        ..ContentWalk::default()
    };
    loop {
        let event = xml.read_event_into(&mut buffer)?;
        match &event {
            Event::Start(element) => walk.opened(element, true),
            Event::Empty(element) => walk.opened(element, false),
            _ => {}
        }
        if walk.read(&event)? {
            return Ok(walk.sheets);
        }
        buffer.clear();
    }
}

/// Where the walk over `content.xml` stands.
#[derive(Default)]
struct ContentWalk {
    sheets: Vec<(String, HiddenRows)>,
    sheet: Extent,
    /// Where the row being read starts and how often it repeats; where its next cell is.
    row: u64,
    row_repeats: u64,
    column: u64,
    row_columns: Option<(u64, u64)>,
    text_bytes: u64,
    in_row: bool,
    in_cell: bool,
}

impl ContentWalk {
    /// An element opens (`has_content`) or stands empty.
    fn opened(&mut self, element: &BytesStart, has_content: bool) {
        match element.name().as_ref() {
            "table:table" => {
                self.sheet = Extent {
                    name: attribute(element, "name").unwrap_or_default(),
                    ..Extent::default()
                };
                self.sheets
                    .push((self.sheet.name.clone(), HiddenRows::default()));
                self.row = 0;
            }
            "table:table-row" => self.row_opened(element, has_content),
            "table:table-cell" | "table:covered-table-cell" => {
                let count = repeats(element, "number-columns-repeated");
                let holds_value = has_content
                    || attribute(element, "value-type").is_some()
                    || attribute(element, "formula").is_some();
                if holds_value {
                    let last = self.column.saturating_add(count - 1);
                    self.row_columns = Some(match self.row_columns {
                        None => (self.column, last),
                        Some((first, _)) => (first, last),
                    });
                }
                self.column = self.column.saturating_add(count);
                self.text_bytes = 0;
                self.in_cell = has_content;
            }
            _ => {}
        }
    }

    fn row_opened(&mut self, element: &BytesStart, has_content: bool) {
        self.in_row = has_content;
        self.row_repeats = repeats(element, "number-rows-repeated");
        (self.column, self.row_columns) = (0, None);
        let visibility = attribute(element, "visibility");
        if let (Some("collapse" | "filter"), Some((_, sheet))) =
            (visibility.as_deref(), self.sheets.last_mut())
        {
            // A run of hidden rows past Excel's last row is refused by the extent's check when
            // it holds values; only the rows it can name.
            let last = self.row.saturating_add(self.row_repeats).min(MOST_ROWS);
            sheet
                .rows
                .extend((self.row.saturating_add(1)..=last).take(MOST_ROWS as usize));
        }
        if !has_content {
            self.row = self.row.saturating_add(self.row_repeats);
        }
    }

    /// Takes in what an event says of text and of elements ending; true at the end of the part.
    fn read(&mut self, event: &Event) -> Result<bool, Failure> {
        match event {
            // calamine's reader takes nothing but cells inside a row, so a row laid out with line
            // breaks between its cells (SheetJS's .ods export) fails there with an XML message.
            Event::Text(_) if self.in_row && !self.in_cell => {
                return Err(Failure::Bound(format!(
                    "sheet {} is laid out with line breaks between the cells of row {} (as SheetJS's .ods export writes it), which this tool's .ods reader cannot read; so the file was not read: open it in LibreOffice or Excel and save it again, or export it as .xlsx",
                    super::shown(&self.sheet.name),
                    self.row.saturating_add(1)
                )));
            }
            Event::Text(text) => {
                self.text_bytes = self.text_bytes.saturating_add(text.len() as u64);
                if self.text_bytes > MOST_CELL_CHARS.saturating_mul(4) {
                    return Err(Failure::Bound(format!(
                        "sheet {} has a cell at row {}, column {} longer than Excel's {MOST_CELL_CHARS} characters, so the file was not read: no workbook Excel saves holds one",
                        super::shown(&self.sheet.name),
                        self.row.saturating_add(1),
                        self.column
                    )));
                }
            }
            Event::End(end)
                if matches!(
                    end.name().as_ref(),
                    "table:table-cell" | "table:covered-table-cell"
                ) =>
            {
                self.in_cell = false;
            }
            Event::End(end) if end.name().as_ref() == "table:table-row" => self.row_ended()?,
            Event::Eof => return Ok(true),
            _ => {}
        }
        Ok(false)
    }

    fn row_ended(&mut self) -> Result<(), Failure> {
        self.in_row = false;
        if let Some((first, last)) = self.row_columns.take() {
            let last_row = self.row.saturating_add(self.row_repeats - 1);
            self.sheet.rows = Some((self.sheet.rows.map_or(self.row, |(top, _)| top), last_row));
            self.sheet.columns = Some(match self.sheet.columns {
                None => (first, last),
                Some((left, right)) => (left.min(first), right.max(last)),
            });
            within_bounds(&self.sheet)?;
        }
        self.row = self.row.saturating_add(self.row_repeats);
        Ok(())
    }
}

/// The sheet's values inside Excel's last row and column, and few enough cells to lay out.
fn within_bounds(sheet: &Extent) -> Result<(), Failure> {
    let (Some((top, bottom)), Some((left, right))) = (sheet.rows, sheet.columns) else {
        return Ok(());
    };
    if bottom >= MOST_ROWS || right >= MOST_COLUMNS {
        return Err(Failure::Bound(format!(
            "sheet {} has values down to row {} and across to column {}, past Excel's last row (1,048,576) or column (16,384, XFD), which the reader would drop with no error; so the file was not read: save it again from Excel or LibreOffice without the repeated rows or columns",
            super::shown(&sheet.name),
            bottom.saturating_add(1),
            right.saturating_add(1)
        )));
    }
    let cells = (bottom - top + 1).saturating_mul(right - left + 1);
    if cells > MOST_LAID_OUT_CELLS {
        return Err(Failure::Bound(format!(
            "sheet {} spans {cells} cells from its first value to its last (rows {} to {}, columns {} to {}), past this tool's bound of {MOST_LAID_OUT_CELLS} for an .ods sheet, which is read whole; so the file was not read: save it as .xlsx (read as it streams), or delete the stray values far from the table",
            super::shown(&sheet.name),
            top + 1,
            bottom + 1,
            left + 1,
            right + 1
        )));
    }
    Ok(())
}

/// A repeat count (by the attribute's local name), 1 when absent or unreadable (as calamine treats the common case), never 0.
fn repeats(element: &BytesStart<'_>, name: &str) -> u64 {
    attribute(element, name)
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(rows: &str) -> String {
        format!(
            r#"<office:document-content><office:body><office:spreadsheet><table:table table:name="Users">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
        )
    }

    #[test]
    fn trailing_empty_runs_as_libreoffice_writes_them_pass() {
        let xml = content(
            r#"<table:table-row><table:table-cell office:value-type="string"><text:p>userID</text:p></table:table-cell><table:table-cell table:number-columns-repeated="16383"/></table:table-row><table:table-row table:number-rows-repeated="1048575"><table:table-cell table:number-columns-repeated="16384"/></table:table-row>"#,
        );
        assert_eq!(
            check_content(xml.as_bytes()).ok(),
            Some(vec![("Users".to_owned(), HiddenRows::default())])
        );
    }

    #[test]
    fn rows_hidden_by_hand_or_by_a_filter_are_found() {
        let xml = content(
            r#"<table:table-row><table:table-cell/></table:table-row><table:table-row table:visibility="collapse" table:number-rows-repeated="2"/><table:table-row table:visibility="filter"><table:table-cell office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row><table:table-row table:visibility="visible"/>"#,
        );
        let hidden = check_content(xml.as_bytes()).ok();
        assert_eq!(
            hidden,
            Some(vec![(
                "Users".to_owned(),
                HiddenRows {
                    rows: vec![2, 3, 4],
                    filtered: false
                }
            )])
        );
    }

    #[test]
    fn line_breaks_between_a_rows_cells_are_refused_naming_the_exporter() {
        let xml = content(
            "<table:table-row>\n  <table:table-cell office:value-type=\"string\"><text:p>a b</text:p></table:table-cell>\n</table:table-row>",
        );
        let refused = check_content(xml.as_bytes());
        assert!(
            matches!(&refused, Err(Failure::Bound(sentence)) if sentence.contains("SheetJS") && sentence.contains("row 1")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_run_of_values_past_excels_last_row_is_refused_naming_it() {
        let xml = content(
            r#"<table:table-row table:number-rows-repeated="2000000"><table:table-cell office:value-type="float" office:value="1"/></table:table-row>"#,
        );
        let refused = check_content(xml.as_bytes());
        assert!(
            matches!(&refused, Err(Failure::Bound(sentence)) if sentence.contains("down to row 2000000")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_stray_value_far_from_the_table_is_refused_by_the_cells_it_spans() {
        let xml = content(
            r#"<table:table-row><table:table-cell office:value-type="string"><text:p>a</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="999998"/><table:table-row><table:table-cell table:number-columns-repeated="16000"/><table:table-cell office:value-type="string"><text:p>b</text:p></table:table-cell></table:table-row>"#,
        );
        let refused = check_content(xml.as_bytes());
        assert!(
            matches!(&refused, Err(Failure::Bound(sentence)) if sentence.contains("rows 1 to 1000000")),
            "{refused:?}"
        );
    }
}
