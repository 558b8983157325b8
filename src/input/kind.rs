//! What a file is, from its first bytes, whatever its name says: a web app's "Export to Excel"
//! is often an HTML page named `.xls`, a workbook is sometimes renamed `.csv`, and an encrypted
//! workbook is an OLE container whatever its extension. Told apart before a reader is chosen,
//! so that the admin hears what the file is and what to do, not a parser's error.

use std::io::Read;
use std::path::Path;

/// What a file's first bytes show it to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A zip: `.xlsx`, `.xlsm`, `.xlsb` or `.ods`.
    Zip,
    /// An OLE compound file: an Excel 97 `.xls`, or an encrypted (password-protected) workbook
    /// of any later format.
    Ole,
    Html,
    /// XML that is not HTML: an Excel 2003 "XML Spreadsheet".
    Xml,
    /// UTF-16 text without a byte-order mark (NULs between the letters of ASCII text).
    Utf16WithoutBom,
    /// Anything else: text to read as a CSV.
    Other,
}

const SNIFFED: usize = 512;

/// Reads the first bytes of `path`; a file that cannot be read is `Other`, and its reader
/// reports the error.
pub fn of_file(path: &Path) -> Kind {
    let mut start = Vec::with_capacity(SNIFFED);
    match std::fs::File::open(path) {
        Ok(file) => {
            let _ = file.take(SNIFFED as u64).read_to_end(&mut start);
        }
        Err(_) => return Kind::Other,
    }
    of_bytes(&start)
}

pub fn of_bytes(start: &[u8]) -> Kind {
    if start.starts_with(b"PK\x03\x04") {
        return Kind::Zip;
    }
    if start.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Kind::Ole;
    }
    let has_bom = start.starts_with(&[0xFF, 0xFE]) || start.starts_with(&[0xFE, 0xFF]);
    let nuls = start.iter().filter(|&&byte| byte == 0).count();
    if !has_bom && start.len() >= 4 && nuls * 3 >= start.len() {
        return Kind::Utf16WithoutBom;
    }
    let text = start.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(start);
    let skipped = text
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(text.len());
    let head: Vec<u8> = text[skipped..]
        .iter()
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    if head.starts_with(b"<!doctype html") || head.starts_with(b"<html") {
        return Kind::Html;
    }
    if head.starts_with(b"<?xml") {
        // An HTML page may open with an XML declaration too.
        let rest: Vec<u8> = text.iter().map(u8::to_ascii_lowercase).collect();
        if rest.windows(5).any(|window| window == b"<html") {
            return Kind::Html;
        }
        return Kind::Xml;
    }
    Kind::Other
}

/// What to tell the admin about a file of `kind` named with `extension` (lowercase, without
/// the dot; `csv` for anything read as text), when the two do not go together.
pub fn mismatch(kind: Kind, extension: &str) -> Option<&'static str> {
    let zipped = matches!(extension, "xlsx" | "xlsm" | "xlsb" | "ods");
    let text = extension == "csv";
    match kind {
        Kind::Html => Some(
            "is an HTML page, not a workbook (a web app's \"Export to Excel\" often writes one): open it in Excel and save it as .xlsx",
        ),
        Kind::Xml => Some(
            "is an Excel 2003 XML spreadsheet, which this tool does not read: open it in Excel and save it as .xlsx",
        ),
        Kind::Ole if zipped => Some(
            "is password protected (an encrypted workbook is stored this way): open it in Excel, remove the password under File > Info > Protect Workbook, and save it again",
        ),
        Kind::Ole if text => Some(
            "is an Excel 97 workbook (or an encrypted one) named as text: rename it .xls, or save it from Excel as .xlsx",
        ),
        Kind::Zip if extension == "xls" => Some("is an .xlsx workbook named .xls: rename it .xlsx"),
        Kind::Zip if text => Some(
            "is a workbook (.xlsx, .xlsm, .xlsb or .ods) named as text: rename it with the extension Excel gave it",
        ),
        Kind::Utf16WithoutBom if text => Some(
            "is UTF-16 text without a byte-order mark: pass --encoding utf-16le (or utf-16be), or save it from Excel as \"CSV UTF-8\"",
        ),
        Kind::Other | Kind::Utf16WithoutBom if !text => {
            Some("is text, not a workbook: if it is a CSV or tab-separated file, rename it .csv")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_told_by_its_first_bytes() {
        assert_eq!(of_bytes(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(
            of_bytes(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0]),
            Kind::Ole
        );
        assert_eq!(of_bytes(b"\n  <!DOCTYPE html><html>"), Kind::Html);
        assert_eq!(
            of_bytes(b"<?xml version=\"1.0\"?><html xmlns=\"x\">"),
            Kind::Html
        );
        assert_eq!(of_bytes(b"<?xml version=\"1.0\"?><Workbook>"), Kind::Xml);
        assert_eq!(of_bytes(b"e\0n\0v\0,\0u\0s\0e\0r\0"), Kind::Utf16WithoutBom);
        assert_eq!(
            of_bytes(b"\xFF\xFEe\0n\0v\0"),
            Kind::Other,
            "a BOM is decoded as UTF-16"
        );
        assert_eq!(of_bytes(b"envID,userID\n"), Kind::Other);
    }

    #[test]
    fn only_a_name_that_does_not_fit_the_bytes_is_said() {
        assert_eq!(mismatch(Kind::Zip, "xlsx"), None);
        assert_eq!(mismatch(Kind::Ole, "xls"), None);
        assert_eq!(mismatch(Kind::Other, "csv"), None);
        assert!(mismatch(Kind::Ole, "xlsx").is_some_and(|m| m.contains("password")));
        assert!(mismatch(Kind::Zip, "csv").is_some_and(|m| m.contains("rename")));
        assert!(mismatch(Kind::Other, "xls").is_some_and(|m| m.contains("rename it .csv")));
    }
}
