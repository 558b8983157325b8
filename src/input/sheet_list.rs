//! A workbook's sheet names, for the page's sheet picker, read from the part that lists them:
//! no cell and no string table is read, so that choosing a workbook on the page costs what its
//! list of sheets costs (a workbook of sixty million strings took 49 s and 3.7 GB to list when
//! calamine opened it whole). An `.ods` lists its sheets only where they begin in its one content
//! part, which is walked through its bounds; an `.xls`'s list is walked through its records.

use std::io::{BufReader, Cursor, Read, Seek};

use super::zip_part::{Failure, open_part, settled};

/// Why a file's sheets could not be listed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotListed {
    #[error("not a workbook this tool reads (.xlsx, .xlsm, .xlsb, .xls, .ods): {0}")]
    NotAWorkbook(String),
    /// Past one of this tool's bounds: the sentence naming the part and the bound.
    #[error("{0}")]
    Bound(String),
}

impl From<Failure> for NotListed {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Bound(sentence) => Self::Bound(sentence),
            unread => Self::NotAWorkbook(unread.text()),
        }
    }
}

/// The names of the workbook's sheets in `bytes`, in order; the error says what the file is not.
pub fn sheet_names(bytes: &[u8]) -> Result<Vec<String>, NotListed> {
    if bytes.starts_with(b"PK") {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|error| NotListed::NotAWorkbook(error.to_string()))?;
        return Ok(zipped_names(&mut zip)?);
    }
    Ok(super::xls_bounds::check(Cursor::new(bytes))?.names)
}

fn zipped_names<R: Read + Seek>(zip: &mut zip::ZipArchive<R>) -> Result<Vec<String>, Failure> {
    let has = |zip: &zip::ZipArchive<R>, name: &str| zip.index_for_name(name).is_some();
    let names = if has(zip, "xl/workbook.xml") {
        super::hidden_rows::sheets_listed(zip)?
    } else if has(zip, "xl/workbook.bin") {
        super::xlsb_sheet::sheets_listed(zip, "xl/workbook.bin")?
    } else if has(zip, "content.xml") {
        let part = open_part(zip, "content.xml").map_err(Failure::Io)?;
        let most = part.most();
        return super::ods_bounds::check_content(BufReader::new(part))
            .map(|sheets| sheets.into_iter().map(|(name, _)| name).collect())
            .map_err(|failure| settled(failure, "content.xml", most));
    } else {
        return Err(Failure::Io(
            "a zip archive without a workbook's parts".to_owned(),
        ));
    };
    Ok(names.into_iter().map(|(name, _)| name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in parts {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("a zip entry");
            zip.write_all(bytes).expect("written");
        }
        zip.finish().expect("finished").into_inner()
    }

    #[test]
    fn an_xlsx_lists_its_sheets_without_its_string_table_being_read() {
        // A string table that would be refused (or cost gigabytes) is never opened.
        let bomb = vec![b'A'; 20 << 20];
        let workbook = zip_of(&[
            (
                "xl/workbook.xml",
                br#"<workbook><sheets><sheet name="Old &amp; hidden" state="hidden" r:id="rId1"/><sheet name="Users" r:id="rId2"/></sheets></workbook>"#,
            ),
            ("xl/sharedStrings.xml", &bomb),
        ]);
        assert_eq!(
            sheet_names(&workbook),
            Ok(vec!["Old & hidden".to_owned(), "Users".to_owned()])
        );
    }

    #[test]
    fn an_ods_lists_the_sheets_its_content_begins() {
        let workbook = zip_of(&[(
            "content.xml",
            br#"<office:document-content><office:body><office:spreadsheet><table:table table:name="A"/><table:table table:name="B"><table:table-row/></table:table></office:spreadsheet></office:body></office:document-content>"#,
        )]);
        assert_eq!(
            sheet_names(&workbook),
            Ok(vec!["A".to_owned(), "B".to_owned()])
        );
    }

    #[test]
    fn text_is_not_a_workbook_and_says_so() {
        let listed = sheet_names(b"envID,userID\n");
        assert!(listed.is_err_and(|message| message.to_string().contains("not a workbook")));
    }
}
