//! Which rows of an `.xlsx` sheet the admin does not see: rows hidden by hand or by an
//! AutoFilter are marked `hidden="1"` on their `<row>` in the sheet's XML, which calamine does
//! not expose. Read here in one streaming pass over that part (the workbook's own zip, through
//! the crates calamine uses), so that a row nobody saw is never granted silently.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

use quick_xml::events::{BytesStart, Event};

/// The rows of a sheet its XML marks hidden (numbers from 1), and whether it has an AutoFilter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HiddenRows {
    pub rows: Vec<u64>,
    pub filtered: bool,
}

/// The hidden rows of the sheet named `sheet` in the `.xlsx`/`.xlsm` at `path`; `Err` says
/// why they could not be found out.
pub fn of_sheet(path: &Path, sheet: &str) -> Result<HiddenRows, String> {
    let file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|error| error.to_string())?;
    let relationship = sheet_relationship(&mut zip, sheet)?;
    let targets = relationship_targets(&mut zip)?;
    let target = targets
        .get(&relationship)
        .ok_or_else(|| format!("no part for sheet {sheet:?}"))?;
    let part = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_owned(),
        None => format!("xl/{target}"),
    };
    let entry = zip
        .by_name(&part)
        .map_err(|error| format!("{part}: {error}"))?;
    hidden_in(BufReader::new(entry))
}

fn part_reader<'a, R: Read + std::io::Seek>(
    zip: &'a mut zip::ZipArchive<R>,
    name: &str,
) -> Result<quick_xml::Reader<BufReader<zip::read::ZipFile<'a, R>>>, String> {
    let entry = zip
        .by_name(name)
        .map_err(|error| format!("{name}: {error}"))?;
    Ok(quick_xml::Reader::from_reader(BufReader::new(entry)))
}

/// The attribute whose local name is `name` (`r:id` is `id`).
fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .attributes()
        .filter_map(Result::ok)
        .find(|attribute| attribute.key.local_name().as_ref() == name)
        .map(|attribute| attribute.value.to_string())
}

/// The relationship ID of the sheet named `sheet` in `xl/workbook.xml`.
fn sheet_relationship<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    sheet: &str,
) -> Result<String, String> {
    let mut xml = part_reader(zip, "xl/workbook.xml")?;
    let mut buffer = Vec::new();
    loop {
        match xml.read_event_into(&mut buffer) {
            Ok(Event::Start(element) | Event::Empty(element))
                if element.local_name().as_ref() == "sheet" =>
            {
                let name = attribute(&element, "name").map(|name| unescaped(&name));
                if name.as_deref() == Some(sheet)
                    && let Some(id) = attribute(&element, "id")
                {
                    return Ok(id);
                }
            }
            Ok(Event::Eof) => return Err(format!("no sheet {sheet:?} in xl/workbook.xml")),
            Err(error) => return Err(error.to_string()),
            _ => {}
        }
        buffer.clear();
    }
}

/// The targets of `xl/_rels/workbook.xml.rels`, by relationship ID.
fn relationship_targets<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
) -> Result<HashMap<String, String>, String> {
    let mut xml = part_reader(zip, "xl/_rels/workbook.xml.rels")?;
    let mut buffer = Vec::new();
    let mut targets = HashMap::new();
    loop {
        match xml.read_event_into(&mut buffer) {
            Ok(Event::Start(element) | Event::Empty(element))
                if element.local_name().as_ref() == "Relationship" =>
            {
                if let (Some(id), Some(target)) =
                    (attribute(&element, "Id"), attribute(&element, "Target"))
                {
                    targets.insert(id, target);
                }
            }
            Ok(Event::Eof) => return Ok(targets),
            Err(error) => return Err(error.to_string()),
            _ => {}
        }
        buffer.clear();
    }
}

/// Rows marked hidden, and whether an `<autoFilter>` is there, in a sheet part's XML.
fn hidden_in(part: impl std::io::BufRead) -> Result<HiddenRows, String> {
    let mut xml = quick_xml::Reader::from_reader(part);
    let mut buffer = Vec::new();
    let mut hidden = HiddenRows::default();
    // Rows without `r` follow the one before.
    let mut row_number = 0_u64;
    loop {
        match xml.read_event_into(&mut buffer) {
            Ok(Event::Start(element) | Event::Empty(element)) => {
                match element.local_name().as_ref() {
                    "row" => {
                        row_number = attribute(&element, "r")
                            .and_then(|r| r.trim().parse().ok())
                            .unwrap_or_else(|| row_number.saturating_add(1));
                        if attribute(&element, "hidden")
                            .is_some_and(|value| matches!(value.trim(), "1" | "true"))
                        {
                            hidden.rows.push(row_number);
                        }
                    }
                    "autoFilter" => hidden.filtered = true,
                    _ => {}
                }
            }
            Ok(Event::Eof) => return Ok(hidden),
            Err(error) => return Err(error.to_string()),
            _ => {}
        }
        buffer.clear();
    }
}

/// XML's five escapes, as a sheet name in `workbook.xml` may hold them (`R&amp;D`).
fn unescaped(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_rows_and_a_filter_are_found_in_a_sheets_xml() {
        let xml = br#"<worksheet><sheetData><row r="1"/><row r="2" hidden="1"><c r="A2"/></row><row spans="1:2" hidden="true"/><x:row r="9" hidden="0"/></sheetData><autoFilter ref="A1:B9"/></worksheet>"#;
        let found = hidden_in(&xml[..]);
        assert_eq!(
            found,
            Ok(HiddenRows {
                rows: vec![2, 3],
                filtered: true
            })
        );
    }
}
