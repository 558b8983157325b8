//! The compound file (OLE2) an `.xls` is stored in, read by hand to reach its workbook stream.
//! By hand because neither reader at hand reads what real files hold safely: calamine's follows
//! a sector chain without checking it, so a 5.7 KB file whose chain loops made it allocate
//! until memory ran out (found by fuzzing); the `cfb` crate refuses files SheetJS writes (its
//! allocation table is longer than the file), which calamine reads right. Here the file is read
//! as calamine reads it, and refused only where calamine would loop or read past the file: every
//! chain of the allocation tables is checked to end, and no stream is longer than the file.

use super::{u16_at, u32_at, utf16_le};

/// Why the container cannot be read.
pub type Unreadable = String;

const SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
/// Sector numbers from here up are markers, not sectors.
const FIRST_MARKER: u32 = 0xFFFF_FFFA;
const HEADER_DIFAT: usize = 109;
const DIRECTORY_ENTRY: usize = 128;
const MINI_SECTOR: usize = 64;

/// What the container holds that the workbook's walk needs.
pub struct Container {
    /// The workbook stream (`Workbook`, or `Book` in Excel 5.0 files).
    pub workbook: Vec<u8>,
    /// Whether it carries an encrypted Office 2007+ package (a password-protected `.xlsx`).
    pub encrypted_package: bool,
}

/// Reads the container in `file`, the whole file's bytes.
pub fn read(file: &[u8]) -> Result<Container, Unreadable> {
    if file.get(..8) != Some(&SIGNATURE[..]) {
        return Err("it is not an OLE2 compound file".to_owned());
    }
    let sectors = Sectors::of(file)?;
    let fat = sectors.allocation_table()?;
    let directory = sectors.chain(&fat, header_u32(file, 0x30)?, usize::MAX)?;
    let entries: Vec<&[u8]> = directory.chunks_exact(DIRECTORY_ENTRY).collect();
    let encrypted_package = entries.iter().any(|entry| {
        matches!(
            name_of(entry).as_str(),
            "EncryptionInfo" | "EncryptedPackage"
        )
    });
    let stream = entries
        .iter()
        .find(|entry| {
            entry.get(66) == Some(&2) && matches!(name_of(entry).as_str(), "Workbook" | "Book")
        })
        .copied();
    let Some(stream) = stream else {
        if encrypted_package {
            return Ok(Container {
                workbook: Vec::new(),
                encrypted_package,
            });
        }
        return Err("it holds no workbook stream".to_owned());
    };
    let size = sectors.size_of(stream);
    if size > file.len() {
        return Err(format!(
            "its workbook stream claims {size} bytes, more than the file"
        ));
    }
    let start = u32_at(stream, 116).unwrap_or(FIRST_MARKER);
    let workbook = if size >= header_u32(file, 0x38)? as usize {
        sectors.chain(&fat, start, size)?
    } else {
        let root = entries
            .first()
            .ok_or_else(|| "it has no root entry".to_owned())?;
        sectors.small_stream(&fat, root, start, size)?
    };
    Ok(Container {
        workbook,
        encrypted_package,
    })
}

/// A number of the container's header, or why the file is too short to hold it.
fn header_u32(file: &[u8], at: usize) -> Result<u32, Unreadable> {
    u32_at(file, at).ok_or_else(ends_in_header)
}

fn ends_in_header() -> Unreadable {
    "it ends inside its header".to_owned()
}

/// The name of a directory entry.
fn name_of(entry: &[u8]) -> String {
    let length = usize::from(u16_at(entry, 64).unwrap_or(0)).min(64);
    let name = utf16_le(&entry[..length]);
    name.split('\0').next().unwrap_or_default().to_owned()
}

/// Table entries (sector numbers) in the bytes of a sector or stream.
fn numbers(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .filter_map(|entry| entry.try_into().ok().map(u32::from_le_bytes))
}

/// The file seen as its sectors.
struct Sectors<'a> {
    file: &'a [u8],
    sector_size: usize,
}

impl<'a> Sectors<'a> {
    fn of(file: &'a [u8]) -> Result<Self, Unreadable> {
        let shift = u16_at(file, 0x1E).ok_or_else(ends_in_header)?;
        let sector_size = match shift {
            9 => 512,
            12 => 4096,
            shift => {
                return Err(format!(
                    "its sector size 2^{shift} is not 512 or 4,096 bytes"
                ));
            }
        };
        Ok(Self { file, sector_size })
    }

    fn sector(&self, id: u32) -> Result<&'a [u8], Unreadable> {
        let start = (id as usize + 1).checked_mul(self.sector_size);
        start
            .and_then(|start| self.file.get(start..start.checked_add(self.sector_size)?))
            .ok_or_else(|| format!("sector {id} is past the end of the file"))
    }

    /// The allocation table, checked to hold no loop. Its own sectors are 109 numbers in the
    /// header, then a chain of DIFAT sectors, each ending with the next one's number.
    fn allocation_table(&self) -> Result<Vec<u32>, Unreadable> {
        let mut fat_sectors: Vec<u32> = (0..HEADER_DIFAT)
            .filter_map(|index| u32_at(self.file, 0x4C + 4 * index))
            .collect();
        let mut next = header_u32(self.file, 0x44)?;
        let mut difat_sectors = 0_usize;
        while next < FIRST_MARKER {
            difat_sectors += 1;
            if difat_sectors > self.file.len() / self.sector_size {
                return Err("its chain of allocation-table sectors loops".to_owned());
            }
            let entries: Vec<u32> = numbers(self.sector(next)?).collect();
            let (last, rest) = entries.split_last().ok_or_else(ends_in_header)?;
            fat_sectors.extend_from_slice(rest);
            next = *last;
        }
        let mut fat = Vec::new();
        for id in fat_sectors.into_iter().filter(|id| *id < FIRST_MARKER) {
            fat.extend(numbers(self.sector(id)?));
        }
        without_loops(&fat, "allocation table")?;
        Ok(fat)
    }

    /// The bytes of the chain of sectors from `start`, at most `most` of them.
    fn chain(&self, fat: &[u32], start: u32, most: usize) -> Result<Vec<u8>, Unreadable> {
        let mut bytes = Vec::new();
        let mut id = start;
        while id < FIRST_MARKER && bytes.len() < most {
            bytes.extend_from_slice(self.sector(id)?);
            id = *fat
                .get(id as usize)
                .ok_or_else(|| format!("sector {id} is past the allocation table"))?;
        }
        bytes.truncate(most);
        Ok(bytes)
    }

    /// A directory entry's stream size.
    fn size_of(&self, entry: &[u8]) -> usize {
        let low = u32_at(entry, 120).unwrap_or(0) as usize;
        // Version 3 files keep only the low 32 bits; the high ones may hold anything.
        let high = if self.sector_size == 4096 {
            u32_at(entry, 124).unwrap_or(0) as usize
        } else {
            0
        };
        low | (high << 32)
    }

    /// A small stream of `size` bytes from `start`: it lives in 64-byte sectors of the root
    /// entry's stream, chained by the small-stream allocation table.
    fn small_stream(
        &self,
        fat: &[u32],
        root: &[u8],
        start: u32,
        size: usize,
    ) -> Result<Vec<u8>, Unreadable> {
        let mini_stream = self.chain(
            fat,
            u32_at(root, 116).unwrap_or(FIRST_MARKER),
            self.size_of(root).min(self.file.len()),
        )?;
        let mini_fat: Vec<u32> =
            numbers(&self.chain(fat, header_u32(self.file, 0x3C)?, usize::MAX)?).collect();
        without_loops(&mini_fat, "small-stream allocation table")?;
        let mut bytes = Vec::new();
        let mut id = start;
        while id < FIRST_MARKER && bytes.len() < size {
            let at = id as usize * MINI_SECTOR;
            bytes.extend_from_slice(
                mini_stream
                    .get(at..at + MINI_SECTOR)
                    .ok_or_else(|| format!("small sector {id} is past the small-stream area"))?,
            );
            id = *mini_fat
                .get(id as usize)
                .ok_or_else(|| format!("small sector {id} is past its allocation table"))?;
        }
        bytes.truncate(size);
        Ok(bytes)
    }
}

/// Every chain of the table `next` (each entry the number of the one after it) ends: in a table
/// where each entry has one successor, a loop is found by walking from each entry not yet known
/// to end, marking the entries on the way.
fn without_loops(next: &[u32], table: &str) -> Result<(), Unreadable> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unseen,
        OnThisWalk,
        Ends,
    }
    let mut marks = vec![Mark::Unseen; next.len()];
    let mut walk = Vec::new();
    for start in 0..next.len() {
        let mut at = start;
        while marks.get(at) == Some(&Mark::Unseen) {
            marks[at] = Mark::OnThisWalk;
            walk.push(at);
            at = next[at] as usize;
        }
        if marks.get(at) == Some(&Mark::OnThisWalk) {
            return Err(format!("a chain of its {table} loops back on itself"));
        }
        for entry in walk.drain(..) {
            marks[entry] = Mark::Ends;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_that_loops_is_found_and_chains_that_end_pass() {
        let ends = [1, 2, 0xFFFF_FFFE, 0xFFFF_FFFF, 3];
        assert!(without_loops(&ends, "t").is_ok());
        let loops = [1, 2, 0, 0xFFFF_FFFE];
        assert!(without_loops(&loops, "t").is_err_and(|why| why.contains("loops")));
        let to_itself = [0xFFFF_FFFE, 1];
        assert!(without_loops(&to_itself, "t").is_err());
    }

    #[test]
    fn a_file_without_the_signature_is_not_a_compound_file() {
        assert!(read(b"<html>").is_err_and(|why| why.contains("not an OLE2")));
    }
}
