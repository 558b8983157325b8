//! The zip inside `.xlsx`, `.xlsm`, `.xlsb` and `.ods` workbooks, bounded before calamine reads
//! it: here, which parts are checked when a workbook opens and how (`zip_part` holds the
//! bounded reading of one part). A zip says nothing trustworthy about what its parts decompress to, and calamine holds a
//! workbook's strings (and an `.ods` sheet's cells) in memory as it reads them: a 2 MB file can
//! hold a 2 GiB string or sixty million of them, and an allocation that fails aborts the
//! process, which no error handling can catch. So every part calamine reads is first streamed
//! through here, counted and dropped, and a workbook past a bound is refused naming the part,
//! the sheet or the cell and the bound, before anything of it is held.
//!
//! The bounds come from the largest workbook this tool is meant for, Excel's largest sheet: a
//! header and 1,048,575 users, each a distinct ID (`examples/workbooks.rs large`). Its sheet
//! part is 189 MiB at 11:1 and its string table 52 MiB at 2.4:1. A part may decompress to at
//! most 100 times its compressed size once past 16 MiB (nine times that sheet's ratio), and to
//! at most 2 GiB in any case; a string table holds at most 16,777,216 strings (sixteen columns
//! of a full sheet, every one distinct), and a run of text between two tags of an XML part is at
//! most Excel's 32,767 characters at four bytes each.

use std::io::{BufReader, Read, Seek};

use super::sheet_facts::HiddenRows;
use super::zip_part::{Failure, MOST_SHARED_STRINGS, Refusal, open_part, records, settled};

/// What a zip-based workbook is, for which parts to check and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zipped {
    /// `.xlsx` and `.xlsm`: XML parts.
    OfficeXml,
    /// `.xlsb`: binary record parts.
    OfficeBinary,
    /// `.ods`: every sheet in `content.xml`.
    OpenDocument,
}

/// Checks every part of the workbook in `reader` that calamine reads when it opens it (all but
/// the sheets, which are checked when one is chosen); for `.ods`, whose sheets are all in one
/// part read at opening, every sheet too, giving each one's name and the rows it hides in order.
pub fn check_workbook<R: Read + Seek>(
    reader: R,
    zipped: Zipped,
) -> Result<Vec<(String, HiddenRows)>, Refusal> {
    let mut hidden = Vec::new();
    let mut zip = zip::ZipArchive::new(reader)
        .map_err(|error| format!("it is not a readable zip archive ({error})"))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .map(std::borrow::Cow::into_owned)
        .collect();
    for name in names.iter().filter(|name| read_at_opening(name, zipped)) {
        let part = open_part(&mut zip, name)?;
        let most = part.most();
        let checked = match (zipped, name.rsplit('/').next().unwrap_or(name)) {
            (Zipped::OfficeXml, "sharedStrings.xml") => shared_strings_xml(part).map(|_| ()),
            (Zipped::OfficeBinary, "sharedStrings.bin") => {
                let mut strings = 0_u64;
                records(BufReader::new(part), name, &mut |kind, _| {
                    if kind == BRT_SST_ITEM {
                        strings = strings.saturating_add(1);
                        within_string_count(strings)?;
                    }
                    Ok(())
                })
            }
            (Zipped::OfficeBinary, _) if name.ends_with(".bin") => {
                records(BufReader::new(part), name, &mut |_, _| Ok(()))
            }
            (Zipped::OpenDocument, "content.xml") => {
                super::ods_bounds::check_content(BufReader::new(part)).map(|found| hidden = found)
            }
            _ => std::io::copy(&mut BufReader::new(part), &mut std::io::sink())
                .map(|_| ())
                .map_err(Failure::from),
        };
        checked.map_err(|failure| match settled(failure, name, most) {
            Failure::Bound(sentence) => sentence,
            unsettled => format!("its part {name} cannot be read ({})", unsettled.text()),
        })?;
    }
    Ok(hidden)
}

/// The parts calamine reads on opening: the workbook's XML and binary parts but its sheets
/// (checked when chosen), and for `.ods` its content, styles and properties.
fn read_at_opening(name: &str, zipped: Zipped) -> bool {
    match zipped {
        Zipped::OpenDocument => matches!(name, "content.xml" | "styles.xml" | "meta.xml"),
        Zipped::OfficeXml | Zipped::OfficeBinary => {
            let sheet = [
                "worksheets/",
                "chartsheets/",
                "macrosheets/",
                "dialogsheets/",
            ]
            .iter()
            .any(|folder| name.starts_with(&format!("xl/{folder}")));
            let kept = name.ends_with(".xml") || name.ends_with(".rels") || name.ends_with(".bin");
            kept && !sheet && !name.ends_with("vbaProject.bin") && !name.starts_with("xl/media/")
        }
    }
}

fn within_string_count(strings: u64) -> Result<(), Failure> {
    if strings > MOST_SHARED_STRINGS {
        return Err(Failure::Bound(format!(
            "its string table holds more than {MOST_SHARED_STRINGS} strings (sixteen columns of Excel's largest sheet, every value distinct), so the file was not read: save it again from Excel, or split it"
        )));
    }
    Ok(())
}

/// Counts the strings of `xl/sharedStrings.xml` (its `<si>` tags, with any namespace prefix)
/// without parsing the rest, which the part's bound and its runs of text already hold: a byte
/// scan, since the XML reader would cost seconds on Excel's largest sheet's table.
fn shared_strings_xml(mut part: impl Read) -> Result<u64, Failure> {
    // A tag is judged once this many bytes after its `<` are read, or at the end.
    const LOOK_AHEAD: usize = 64;
    let mut buffer = vec![0_u8; 1 << 16];
    let (mut kept, mut strings) = (0_usize, 0_u64);
    loop {
        let read = part.read(&mut buffer[kept..])?;
        let filled = kept + read;
        let judged = if read == 0 {
            filled
        } else {
            filled.saturating_sub(LOOK_AHEAD)
        };
        for at in memchr::memchr_iter(b'<', &buffer[..judged]) {
            let after = &buffer[at + 1..filled];
            let name_end = after
                .iter()
                .position(|byte| matches!(byte, b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(after.len());
            let name = &after[..name_end];
            if name == b"si" || name.ends_with(b":si") {
                strings = strings.saturating_add(1);
                within_string_count(strings)?;
            }
        }
        if read == 0 {
            return Ok(strings);
        }
        buffer.copy_within(judged..filled, 0);
        kept = filled - judged;
    }
}

/// `.xlsb`'s string table entry.
const BRT_SST_ITEM: u16 = 0x0013;

#[cfg(test)]
mod tests {
    use std::io::BufRead;

    use super::*;

    #[test]
    fn shared_strings_are_counted_with_any_prefix_across_reads() {
        let mut table = b"<x:sst count=\"3\"><x:si><x:t>a</x:t></x:si>".to_vec();
        table.extend(b"<si><t>b</t></si><si/>".repeat(30_000));
        // Read a few bytes at a time, so that tags fall across reads.
        let reader = std::io::BufReader::with_capacity(7, &table[..]);
        struct Trickle<R>(R);
        impl<R: BufRead> Read for Trickle<R> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let available = self.0.fill_buf()?;
                let count = available.len().min(out.len()).min(5);
                out[..count].copy_from_slice(&available[..count]);
                self.0.consume(count);
                Ok(count)
            }
        }
        let counted = shared_strings_xml(Trickle(reader)).ok();
        assert_eq!(counted, Some(60_001));
    }
}
