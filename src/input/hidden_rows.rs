//! Which rows of an `.xlsx` sheet the admin does not see: rows hidden by hand or by an
//! AutoFilter are marked `hidden="1"` on their `<row>` in the sheet's XML, which calamine does
//! not expose. Read here in one streaming pass over that part (the workbook's own zip, through
//! the crates calamine uses), so that a row nobody saw is never granted silently. The same pass
//! holds the part to its bound (`zip_part`) before calamine reads it; for an `.xlsb` sheet it
//! hands the part to `xlsb_sheet`'s walk, which finds hidden rows and passed-over cells there.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

use quick_xml::events::Event;

use super::sheet_facts::{HiddenRows, SheetFacts, attribute};
use super::zip_part::{Bounded, Failure, open_part, settled};

/// The hidden rows of the sheet named `sheet` in the `.xlsx`/`.xlsm` (or, with `binary`, the
/// `.xlsb`) at `path`: `Failure::Io` says why they could not be found out, `Failure::Bound`
/// why the sheet must not be read.
pub fn of_sheet(path: &Path, sheet: &str, binary: bool) -> Result<SheetFacts, Failure> {
    let file = std::fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|error| Failure::Io(error.to_string()))?;
    let (workbook, rels) = if binary {
        ("xl/workbook.bin", "xl/_rels/workbook.bin.rels")
    } else {
        ("xl/workbook.xml", "xl/_rels/workbook.xml.rels")
    };
    let relationship = if binary {
        super::xlsb_sheet::sheet_relationship(&mut zip, workbook, sheet)?
    } else {
        sheet_relationship(&mut zip, sheet)?
    };
    let targets = relationship_targets(&mut zip, rels)?;
    let target = targets
        .get(&relationship)
        .ok_or_else(|| Failure::Io(format!("no part for sheet {}", super::shown(sheet))))?;
    let part = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_owned(),
        None => format!("xl/{target}"),
    };
    let entry = open_part(&mut zip, &part).map_err(Failure::Io)?;
    let most = entry.most();
    let read = if binary {
        super::xlsb_sheet::facts_of(BufReader::new(entry), &part, sheet)
    } else {
        hidden_in(BufReader::new(entry)).map(|hidden| SheetFacts {
            hidden,
            ..SheetFacts::default()
        })
    };
    // A bound the part's reading reached does not name the sheet; the walk's own do.
    read.map_err(|failure| match failure {
        unsettled @ (Failure::Io(_) | Failure::Stopped(_)) => match settled(unsettled, &part, most)
        {
            Failure::Bound(sentence) => {
                Failure::Bound(format!("sheet {}: {sentence}", super::shown(sheet)))
            }
            other => other,
        },
        bound => bound,
    })
}

fn part_reader<'a, R: Read + std::io::Seek>(
    zip: &'a mut zip::ZipArchive<R>,
    name: &str,
) -> Result<quick_xml::Reader<BufReader<Bounded<zip::read::ZipFile<'a, R>>>>, Failure> {
    Ok(quick_xml::Reader::from_reader(BufReader::new(
        open_part(zip, name).map_err(Failure::Io)?,
    )))
}

/// The sheets `xl/workbook.xml` lists, in order: each name and relationship ID.
pub fn sheets_listed<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
) -> Result<Vec<(String, Option<String>)>, Failure> {
    let mut xml = part_reader(zip, "xl/workbook.xml")?;
    let mut buffer = Vec::new();
    let mut sheets = Vec::new();
    loop {
        match xml.read_event_into(&mut buffer) {
            Ok(Event::Start(element) | Event::Empty(element))
                if element.local_name().as_ref() == "sheet" =>
            {
                if let Some(name) = attribute(&element, "name") {
                    sheets.push((name, attribute(&element, "id")));
                }
            }
            Ok(Event::Eof) => return Ok(sheets),
            Err(error) => return Err(Failure::from(error)),
            _ => {}
        }
        buffer.clear();
    }
}

/// The relationship ID of the sheet named `sheet` in `xl/workbook.xml`.
fn sheet_relationship<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    sheet: &str,
) -> Result<String, Failure> {
    sheets_listed(zip)?
        .into_iter()
        .find_map(|(name, id)| if name == sheet { id } else { None })
        .ok_or_else(|| {
            Failure::Io(format!(
                "no sheet {} in xl/workbook.xml",
                super::shown(sheet)
            ))
        })
}

/// The targets of the workbook's relationships part, by relationship ID.
fn relationship_targets<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    rels: &str,
) -> Result<HashMap<String, String>, Failure> {
    let mut xml = part_reader(zip, rels)?;
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
            Err(error) => return Err(Failure::from(error)),
            _ => {}
        }
        buffer.clear();
    }
}

/// Rows marked hidden, and whether an `<autoFilter>` is there, in a sheet part's XML.
fn hidden_in(part: impl std::io::BufRead) -> Result<HiddenRows, Failure> {
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
            Err(error) => return Err(Failure::from(error)),
            _ => {}
        }
        buffer.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_rows_and_a_filter_are_found_in_a_sheets_xml() {
        let xml = br#"<worksheet><sheetData><row r="1"/><row r="2" hidden="1"><c r="A2"/></row><row spans="1:2" hidden="true"/><x:row r="9" hidden="0"/></sheetData><autoFilter ref="A1:B9"/></worksheet>"#;
        let found = hidden_in(&xml[..]);
        assert_eq!(
            found.ok(),
            Some(HiddenRows {
                rows: vec![2, 3],
                filtered: true
            })
        );
    }
}
