//! One part of a workbook's zip read within its bound, and the bounds themselves: the
//! primitives the workbook checks (`archive`), the hidden-row pass (`hidden_rows`), the `.ods`
//! walk (`ods_bounds`) and the `.xlsb` walk (`xlsb_sheet`) share, so that none of them imports
//! another for them. Why the bounds are what they are is told in `archive`.

use std::io::{BufRead, Read, Seek};

/// A part may decompress to at most this many bytes.
pub const MOST_PART_BYTES: u64 = 2 << 30;
/// Past `RATIO_FREE_BYTES`, a part may decompress to at most this many times its size in the zip.
pub const MOST_RATIO: u64 = 100;
pub const RATIO_FREE_BYTES: u64 = 16 << 20;
/// Strings a workbook's string table may hold.
pub const MOST_SHARED_STRINGS: u64 = 16_777_216;
/// Excel's limit on the characters of one cell.
pub const MOST_CELL_CHARS: u64 = 32_767;
/// The cells an `.ods` or `.xls` sheet may span from its first value to its last: calamine reads
/// both formats whole, laying out every cell of that span (and as many formula cells) at 32
/// bytes each, so this is a quarter of a gibibyte at most. Excel 97-2003's largest sheet of 64
/// columns (65,536 rows) fits; so do 1,048,575 users of four columns.
pub const MOST_LAID_OUT_CELLS: u64 = 4_194_304;
/// Excel's last row and column, which nothing Excel saves goes past.
pub const MOST_ROWS: u64 = 1_048_576;
pub const MOST_COLUMNS: u64 = 16_384;
/// An `.xlsb` record (a cell, a string) is at most a 32,767-character string and its runs;
/// calamine allocates what a record's length says, up to 256 MiB, before reading it.
pub const MOST_RECORD_BYTES: u64 = 1 << 20;

/// Why a workbook was not read: a sentence naming the part or cell and the bound.
pub type Refusal = String;

/// A part's bytes as they decompress, refused once past the part's bound; in an XML part, also
/// once a run of text without markup is longer than any cell's, since the XML reader holds a
/// whole run in memory before it hands it on.
pub struct Bounded<R> {
    inner: R,
    read: u64,
    most: u64,
    /// In an XML part, the bytes since the last `<`.
    text_run: Option<u64>,
}

/// The longest run of text an XML part may hold between two tags: Excel's longest cell, at
/// four bytes a character.
const MOST_TEXT_RUN: u64 = MOST_CELL_CHARS * 4;

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.read = self.read.saturating_add(count as u64);
        if self.read > self.most {
            return Err(std::io::Error::other(Stop::PastBound));
        }
        if let Some(run) = &mut self.text_run {
            // The run carried in from the last read continues up to this read's first `<`.
            let read = &buffer[..count];
            let mut segment_start = 0;
            for at in memchr::memchr_iter(b'<', read) {
                let before = (at - segment_start) as u64;
                let length = if segment_start == 0 {
                    run.saturating_add(before)
                } else {
                    before
                };
                if length > MOST_TEXT_RUN {
                    return Err(std::io::Error::other(Stop::LongText));
                }
                segment_start = at + 1;
            }
            let tail = (count - segment_start) as u64;
            *run = if segment_start == 0 {
                run.saturating_add(tail)
            } else {
                tail
            };
            if *run > MOST_TEXT_RUN {
                return Err(std::io::Error::other(Stop::LongText));
            }
        }
        Ok(count)
    }
}

/// Why a `Bounded` reader stopped: carried inside the I/O error it returns, and found there
/// again by type (`Failure::from`), whatever reader passed the error on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    #[error("the part is past its bound")]
    PastBound,
    #[error("a text longer than any cell's")]
    LongText,
}

impl Stop {
    /// The `Stop` an I/O error carries, if a `Bounded` reader raised it.
    fn in_error(error: &std::io::Error) -> Option<Self> {
        error.get_ref()?.downcast_ref::<Self>().copied()
    }
}

/// The bound on a part of `compressed` bytes in the zip.
pub fn part_bound(compressed: u64) -> u64 {
    compressed
        .saturating_mul(MOST_RATIO)
        .clamp(RATIO_FREE_BYTES, MOST_PART_BYTES)
}

/// Opens the part `name` to read through its bound.
pub fn open_part<'a, R: Read + Seek>(
    zip: &'a mut zip::ZipArchive<R>,
    name: &str,
) -> Result<Bounded<zip::read::ZipFile<'a, R>>, Refusal> {
    let entry = zip
        .by_name(name)
        .map_err(|error| format!("{name}: {error}"))?;
    let most = part_bound(entry.compressed_size());
    let xml = name.ends_with(".xml") || name.ends_with(".rels");
    Ok(Bounded {
        inner: entry,
        read: 0,
        most,
        text_run: xml.then_some(0),
    })
}

impl<R> Bounded<R> {
    /// The bytes this part may decompress to.
    pub fn most(&self) -> u64 {
        self.most
    }
}

/// A failure reading part `name` (whose bound is `most`) told for what it is: a read that
/// stopped at the bound is the bound's refusal.
pub fn settled(failure: Failure, name: &str, most: u64) -> Failure {
    match failure {
        Failure::Stopped(Stop::PastBound) => Failure::Bound(past_bound(name, most)),
        Failure::Stopped(Stop::LongText) => Failure::Bound(format!(
            "its part {name} holds a text longer than Excel's {MOST_CELL_CHARS} characters a cell, so the file was not read: no workbook Excel saves holds one; save it again from Excel"
        )),
        other => other,
    }
}

fn past_bound(name: &str, most: u64) -> Refusal {
    format!(
        "its part {name} decompresses to more than {} MiB, past this tool's bound (at most {MOST_RATIO} times its size in the file once past {} MiB, never past {} MiB; Excel's largest sheet of users stays far below it), so the file was not read: save it again from Excel, or split it",
        most >> 20,
        RATIO_FREE_BYTES >> 20,
        MOST_PART_BYTES >> 20
    )
}

/// Why a part's check stopped: a read that failed (perhaps at the part's bound), or a bound
/// of its own content.
#[derive(Debug)]
pub enum Failure {
    Io(String),
    Bound(Refusal),
    /// A part's reader stopped at a bound; `settled` says which, naming the part.
    Stopped(Stop),
}

impl Failure {
    /// What a failure says where no part is named to settle it: a stop's own words, or the
    /// read's, or the bound's sentence.
    pub fn text(self) -> String {
        match self {
            Self::Io(text) | Self::Bound(text) => text,
            Self::Stopped(stop) => stop.to_string(),
        }
    }
}

impl From<quick_xml::Error> for Failure {
    fn from(error: quick_xml::Error) -> Self {
        let stop = match &error {
            quick_xml::Error::Io(io) => Stop::in_error(io),
            _ => None,
        };
        stop.map_or_else(|| Self::Io(error.to_string()), Self::Stopped)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Stop::in_error(&error).map_or_else(|| Self::Io(error.to_string()), Self::Stopped)
    }
}

/// What a walk over records does with each: its type and bytes.
pub type EachRecord<'a> = dyn FnMut(u16, &[u8]) -> Result<(), Failure> + 'a;

/// Walks the binary records of an `.xlsb` part (a type and a length, each written in 7-bit
/// groups, then the record), handing each record's type and bytes to `each`; a record longer
/// than any Excel writes is refused before it is held.
pub fn records(
    mut part: impl BufRead,
    name: &str,
    each: &mut EachRecord<'_>,
) -> Result<(), Failure> {
    let mut record = Vec::new();
    loop {
        let Some(kind) = varint(&mut part, 2)? else {
            return Ok(());
        };
        let length = varint(&mut part, 4)?
            .ok_or_else(|| Failure::Io(format!("{name} ends inside a record")))?;
        if u64::from(length) > MOST_RECORD_BYTES {
            return Err(Failure::Bound(format!(
                "its part {name} has a record of {length} bytes, past this tool's bound of {} MiB (a cell of Excel's 32,767 characters takes 64 KiB), so the file was not read: save it again from Excel",
                MOST_RECORD_BYTES >> 20
            )));
        }
        record.resize(length as usize, 0);
        part.read_exact(&mut record)?;
        // A type is at most two groups of 7 bits, so it fits in 14 bits.
        let kind = u16::try_from(kind).unwrap_or(u16::MAX);
        each(kind, &record)?;
    }
}

/// A number written in 7-bit groups, low first, a set high bit meaning another group follows;
/// `None` at the end of the part before its first byte.
fn varint(part: &mut impl BufRead, most_groups: u32) -> Result<Option<u32>, Failure> {
    let mut value = 0_u32;
    for group in 0..most_groups {
        let mut byte = [0_u8];
        match part.read(&mut byte)? {
            0 if group == 0 => return Ok(None),
            0 => {
                return Err(Failure::Io(
                    "the part ends inside a record's header".to_owned(),
                ));
            }
            _ => {}
        }
        value |= u32::from(byte[0] & 0x7F) << (7 * group);
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_bounded_by_its_ratio_past_sixteen_mebibytes_and_by_two_gibibytes() {
        assert_eq!(part_bound(1_000), RATIO_FREE_BYTES);
        assert_eq!(part_bound(1 << 20), 100 << 20);
        assert_eq!(part_bound(1 << 30), MOST_PART_BYTES);
        assert_eq!(part_bound(u64::MAX), MOST_PART_BYTES);
    }

    #[test]
    fn a_bounded_reader_fails_past_its_bound_and_the_failure_names_the_part() {
        let mut bounded = Bounded {
            inner: &[0_u8; 100][..],
            read: 0,
            most: 10,
            text_run: None,
        };
        let error = std::io::copy(&mut bounded, &mut std::io::sink()).unwrap_err();
        let settled = settled(Failure::from(error), "xl/sharedStrings.xml", 10);
        assert!(
            matches!(&settled, Failure::Bound(sentence) if sentence.contains("xl/sharedStrings.xml decompresses to more than")),
            "{settled:?}"
        );
    }

    #[test]
    fn a_bound_reached_under_the_xml_reader_is_told_by_its_type_not_its_words() {
        let xml = b"<sst><si><t>a string of the table</t></si></sst>".repeat(10);
        let bounded = Bounded {
            inner: &xml[..],
            read: 0,
            most: 64,
            text_run: Some(0),
        };
        let mut reader = quick_xml::Reader::from_reader(std::io::BufReader::new(bounded));
        let mut buffer = Vec::new();
        let failure = loop {
            match reader.read_event_into(&mut buffer) {
                Ok(quick_xml::events::Event::Eof) => panic!("the bound was never reached"),
                Ok(_) => buffer.clear(),
                Err(error) => break Failure::from(error),
            }
        };
        assert!(
            matches!(failure, Failure::Stopped(Stop::PastBound)),
            "{failure:?}"
        );
        assert!(matches!(
            settled(failure, "xl/sharedStrings.xml", 64),
            Failure::Bound(sentence) if sentence.starts_with("its part xl/sharedStrings.xml decompresses")
        ));
    }

    #[test]
    fn a_run_of_text_longer_than_a_cell_is_refused_across_reads_but_markup_resets_it() {
        let run = |bytes: Vec<u8>| {
            let mut bounded = Bounded {
                inner: std::io::BufReader::with_capacity(4096, &bytes[..]),
                read: 0,
                most: u64::MAX,
                text_run: Some(0),
            };
            std::io::copy(&mut bounded, &mut std::io::sink()).map_err(Failure::from)
        };
        let long = [
            b"<t>".to_vec(),
            vec![b'A'; MOST_TEXT_RUN as usize + 1],
            b"</t>".to_vec(),
        ]
        .concat();
        assert!(matches!(run(long), Err(Failure::Stopped(Stop::LongText))));
        let many = b"<si><t>a long enough string</t></si>".repeat(100_000);
        assert!(run(many).is_ok());
    }

    #[test]
    fn an_xlsb_record_longer_than_a_mebibyte_is_refused_before_it_is_held() {
        // Type 0x07, length 0x0FFFFFFF (four 7-bit groups of ones).
        let part = [0x07_u8, 0xFF, 0xFF, 0xFF, 0x7F];
        let refused = records(&part[..], "xl/worksheets/sheet1.bin", &mut |_, _| Ok(()));
        assert!(
            matches!(refused, Err(Failure::Bound(sentence)) if sentence.contains("268435455 bytes"))
        );
    }

    #[test]
    fn xlsb_records_are_walked_by_their_seven_bit_type_and_length() {
        // A BrtSSTItem of 2 bytes, then a record of type 0x0181 (two groups) of none.
        let part = [0x13_u8, 0x02, 0xAA, 0xBB, 0x81, 0x03, 0x00];
        let mut seen = Vec::new();
        let walked = records(&part[..], "p", &mut |kind, bytes| {
            seen.push((kind, bytes.len()));
            Ok(())
        });
        assert!(walked.is_ok());
        assert_eq!(seen, vec![(0x13, 2), (0x181, 0)]);
    }
}
