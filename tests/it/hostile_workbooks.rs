//! Workbooks made to hurt, and `.xlsb` sheets as exporters write them, through the binary: a
//! part that decompresses past its bound (one huge string, millions of tiny ones, a sheet of
//! nothing but blank rows) is refused before it is held; an `.ods` whose repeated rows run past
//! Excel's last row, or whose stray value spans too many cells, is refused instead of costing
//! gigabytes or losing rows; an `.xlsb` formula whose value is an error is never filled by
//! `--until`, a rich-text cell is read, short cell records and hidden rows are refused, and a
//! file that makes the workbook reader panic is an error (the panic itself not printed) rather
//! than a sheet read in part. Excel 97-2003 files: a stray value at `IV65536`, Excel's weakest
//! password, hidden rows and text with NULs between its letters; hidden `.ods` rows.
//!
//! The hostile files are written by each test, scaled down to what shows the bound: a bound on
//! the ratio of a part's size to its compressed size is met by 64 MiB as by 2 GiB.

use std::io::Write;
use std::process::Output;

use uuid::Uuid;

use crate::support::{ENV_A, column, dry_run_until_8h, read_results, stderr};

/// A part's contents, written by a closure so that a large one is streamed.
pub(crate) type Part = Box<dyn Fn(&mut dyn Write)>;

/// A zip of `parts`.
fn write_zip(path: &std::path::Path, parts: Vec<(&str, Part)>) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("created"));
    for (name, write) in parts {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("a zip entry");
        write(&mut zip);
    }
    zip.finish().expect("the zip is finished");
}

pub(crate) fn text(contents: String) -> Part {
    Box::new(move |out| out.write_all(contents.as_bytes()).expect("written"))
}

/// `times` copies of `piece` between `before` and `after`.
fn repeated(before: &'static str, piece: &'static str, times: usize, after: &'static str) -> Part {
    Box::new(move |out| {
        out.write_all(before.as_bytes()).expect("written");
        let chunk = piece.repeat(65_536 / piece.len().max(1));
        let per_chunk = 65_536 / piece.len().max(1);
        let mut left = times;
        while left >= per_chunk {
            out.write_all(chunk.as_bytes()).expect("written");
            left -= per_chunk;
        }
        out.write_all(piece.repeat(left).as_bytes())
            .expect("written");
        out.write_all(after.as_bytes()).expect("written");
    })
}

/// An `.xlsx` of one sheet `Users`, its sheet data and string table as given.
pub(crate) fn write_xlsx(path: &std::path::Path, sheet_data: Part, shared_strings: Option<Part>) {
    let mut parts: Vec<(&str, Part)> = vec![
        ("[Content_Types].xml", text(r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#.to_owned())),
        ("_rels/.rels", text(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned())),
        ("xl/workbook.xml", text(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Users" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_owned())),
        ("xl/_rels/workbook.xml.rels", text(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#.to_owned())),
        ("xl/worksheets/sheet1.xml", sheet_data),
    ];
    if let Some(strings) = shared_strings {
        parts.push(("xl/sharedStrings.xml", strings));
    }
    write_zip(path, parts);
}

const SHEET_START: &str = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>userID</t></is></c></row>"#;
const SHEET_END: &str = "</sheetData></worksheet>";

fn assert_refused(output: &Output, naming: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    for words in naming {
        assert!(
            stderr(output).contains(words),
            "names {words:?}: {}",
            stderr(output)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_string_in_a_small_xlsx_is_refused_before_it_is_held() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("huge-string.xlsx");
    write_xlsx(
        &path,
        text(format!("{SHEET_START}{SHEET_END}")),
        Some(repeated(
            r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>"#,
            "A",
            64 << 20,
            "</t></si></sst>",
        )),
    );
    assert!(std::fs::metadata(&path).expect("written").len() < 1 << 20);

    let output = dry_run_until_8h(&path, &[]).await;
    assert_refused(
        &output,
        &[
            "xl/sharedStrings.xml",
            "longer than Excel's 32767 characters",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_longer_than_excels_cell_limit_is_refused_whatever_it_compresses_to() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("long-string.xlsx");
    // Distinct IDs do not compress: the table is within its ratio, the string is not a cell's.
    let long: String = (0..5_000)
        .map(|_| Uuid::new_v4().simple().to_string())
        .collect();
    write_xlsx(
        &path,
        text(format!("{SHEET_START}{SHEET_END}")),
        Some(text(format!(
            r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>envID</t></si><si><t>{long}</t></si></sst>"#
        ))),
    );

    let output = dry_run_until_8h(&path, &[]).await;
    assert_refused(
        &output,
        &[
            "xl/sharedStrings.xml",
            "longer than Excel's 32767 characters",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millions_of_tiny_strings_in_a_small_xlsx_are_refused_before_they_are_held() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("many-strings.xlsx");
    write_xlsx(
        &path,
        text(format!("{SHEET_START}{SHEET_END}")),
        Some(repeated(
            r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>envID</t></si>"#,
            "<si><t>x</t></si>",
            4_000_000,
            "</sst>",
        )),
    );

    let output = dry_run_until_8h(&path, &[]).await;
    assert_refused(&output, &["xl/sharedStrings.xml decompresses to more than"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_of_nothing_but_blank_rows_is_refused_before_it_is_read() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("blank-rows.xlsx");
    write_xlsx(
        &path,
        repeated(SHEET_START, "<row/>", 12_000_000, SHEET_END),
        Some(text(r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>envID</t></si></sst>"#.to_owned())),
    );

    for hidden_rows in ["refuse", "include"] {
        let output = dry_run_until_8h(&path, &["--hidden-rows", hidden_rows]).await;
        assert_refused(
            &output,
            &[
                "sheet \"Users\"",
                "xl/worksheets/sheet1.xml decompresses to more than",
            ],
        );
    }
}

/// An `.ods` of one sheet `Users` whose `<table:table>` holds `rows`.
fn write_ods(path: &std::path::Path, rows: &str) {
    write_ods_with(path, rows, Vec::new());
}

/// The same, with `more` parts.
fn write_ods_with(path: &std::path::Path, rows: &str, more: Vec<(&str, Part)>) {
    write_zip(
        path,
        vec![
            ("mimetype", text("application/vnd.oasis.opendocument.spreadsheet".to_owned())),
            ("META-INF/manifest.xml", text(r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#.to_owned())),
            ("content.xml", text(format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Users">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
            ))),
        ].into_iter().chain(more).collect(),
    );
}

fn ods_row(cells: &[&str]) -> String {
    let cells: String = cells
        .iter()
        .map(|text| format!(r#"<table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell>"#))
        .collect();
    format!("<table:table-row>{cells}</table:table-row>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ods_as_libreoffice_saves_it_with_its_trailing_empty_runs_is_read() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("libreoffice.ods");
    let user = Uuid::new_v4().to_string();
    write_ods(
        &path,
        &format!(
            r#"{}{}<table:table-row table:number-rows-repeated="1048574"><table:table-cell table:number-columns-repeated="16384"/></table:table-row>"#,
            ods_row(&["envID", "userID"]),
            ods_row(&[&ENV_A.to_string(), &user]),
        ),
    );

    let output = dry_run_until_8h(&path, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = read_results(&folder.path().join("libreoffice.plan.csv"));
    assert_eq!(column(&plan, "user_id"), [user.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ods_laid_out_with_line_breaks_between_cells_as_sheetjs_writes_it_is_named_so() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("export.ods");
    let pretty = |row: String| row.replace("<table:table-cell", "\n          <table:table-cell");
    write_ods(
        &path,
        &format!(
            "\n{}\n{}\n",
            pretty(ods_row(&["envID", "userID"])),
            pretty(ods_row(&[&ENV_A.to_string(), &Uuid::new_v4().to_string()]))
        ),
    );

    let output = dry_run_until_8h(&path, &[]).await;
    assert_refused(
        &output,
        &[
            "line breaks between the cells of row 1",
            "SheetJS",
            "save it again",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ods_whose_repeated_rows_run_past_excels_last_row_is_refused_not_cut_short() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("repeated.ods");
    write_ods(
        &path,
        &format!(
            r#"{}<table:table-row table:number-rows-repeated="2000000"><table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell></table:table-row>"#,
            ods_row(&["envID", "userID"]),
            ENV_A,
            Uuid::new_v4()
        ),
    );

    let output = dry_run_until_8h(&path, &[]).await;
    assert_refused(
        &output,
        &["sheet \"Users\"", "down to row 2000001", "1,048,576"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ods_with_a_stray_value_far_from_its_table_is_refused_by_the_cells_it_spans() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("stray.ods");
    write_ods(
        &path,
        &format!(
            r#"{}{}<table:table-row table:number-rows-repeated="1000000"/><table:table-row><table:table-cell table:number-columns-repeated="16000"/><table:table-cell office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>"#,
            ods_row(&["envID", "userID"]),
            ods_row(&[&ENV_A.to_string(), &Uuid::new_v4().to_string()]),
        ),
    );

    let output = dry_run_until_8h(&path, &[]).await;
    assert_refused(&output, &["sheet \"Users\" spans", "save it as .xlsx"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workbook_readers_warnings_are_counted_not_printed() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("properties.ods");
    let user = Uuid::new_v4().to_string();
    // Properties past the size calamine reads them to: it warns, and reads the sheet.
    write_ods_with(
        &path,
        &format!(
            "{}{}",
            ods_row(&["envID", "userID"]),
            ods_row(&[&ENV_A.to_string(), &user])
        ),
        vec![(
            "meta.xml",
            repeated(
                "<office:document-meta>",
                "<meta:keyword>outage</meta:keyword>",
                100_000,
                "</office:document-meta>",
            ),
        )],
    );

    let output = dry_run_until_8h(&path, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the workbook reader noted 1 oddities")
            && !stderr(&output).contains("ignoring document properties"),
        "{}",
        stderr(&output)
    );
    let plan = read_results(&folder.path().join("properties.plan.csv"));
    assert_eq!(column(&plan, "user_id"), [user.as_str()]);
}

/// An `.xlsb` record: its type and length in 7-bit groups, then its bytes.
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

fn wide(text: &str) -> Vec<u8> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut out = (units.len() as u32).to_le_bytes().to_vec();
    out.extend(units.iter().flat_map(|unit| unit.to_le_bytes()));
    out
}

/// The part of an `.xlsb` cell record before its value: its column and style (none).
fn cell(column: u32) -> Vec<u8> {
    let mut out = column.to_le_bytes().to_vec();
    out.extend([0, 0, 0, 0]);
    out
}

/// An `.xlsb` cell record.
#[derive(Clone)]
enum XlsbCell {
    Text(&'static str),
    Owned(String),
    /// A shared string by its number (the table holds `envID` only, as 0).
    Shared(u32),
    /// A formula whose value is the error with this code (`0x2A` is `#N/A`).
    FormulaError(u8),
    RichText(String),
    /// `BrtShortSt`, as SheetJS writes it: no column, the next after the one before.
    Short(&'static str),
}

fn xlsb_cell(column: u32, value: &XlsbCell) -> Vec<u8> {
    match value {
        XlsbCell::Text(text) => record(0x0006, &[cell(column), wide(text)].concat()),
        XlsbCell::Owned(text) => record(0x0006, &[cell(column), wide(text)].concat()),
        XlsbCell::Shared(number) => record(
            0x0007,
            &[cell(column), number.to_le_bytes().to_vec()].concat(),
        ),
        XlsbCell::FormulaError(code) => {
            // The value, the formula's flags, an empty formula and no extra data.
            record(
                0x000B,
                &[cell(column), vec![*code, 0, 0], vec![0; 4], vec![0; 4]].concat(),
            )
        }
        XlsbCell::RichText(text) => record(0x003E, &[cell(column), vec![0], wide(text)].concat()),
        XlsbCell::Short(text) => record(0x0011, &[vec![0, 0, 0, 0], wide(text)].concat()),
    }
}

/// An `.xlsb` of one sheet `Users` of `rows` (hidden ones marked), as Excel lays the parts out.
fn write_xlsb(path: &std::path::Path, rows: &[(bool, Vec<XlsbCell>)]) {
    let mut workbook = record(0x0083, &[]);
    workbook.extend(record(0x008F, &[]));
    workbook.extend(record(
        0x009C,
        &[
            vec![0; 4],
            1_u32.to_le_bytes().to_vec(),
            wide("rId1"),
            wide("Users"),
        ]
        .concat(),
    ));
    workbook.extend(record(0x0090, &[]));
    workbook.extend(record(0x0084, &[]));
    let mut strings = record(0x009F, &[1_u32.to_le_bytes(), 1_u32.to_le_bytes()].concat());
    strings.extend(record(0x0013, &[vec![0], wide("envID")].concat()));
    strings.extend(record(0x00A0, &[]));
    let mut sheet = record(0x0081, &[]);
    sheet.extend(record(
        0x0094,
        &[
            0_u32.to_le_bytes(),
            (rows.len() as u32).to_le_bytes(),
            0_u32.to_le_bytes(),
            2_u32.to_le_bytes(),
        ]
        .concat(),
    ));
    sheet.extend(record(0x0091, &[]));
    for (number, (hidden, cells)) in rows.iter().enumerate() {
        let mut header = vec![0; 17];
        header[..4].copy_from_slice(&(number as u32).to_le_bytes());
        header[11] = if *hidden { 0x10 } else { 0 };
        sheet.extend(record(0x0000, &header));
        for (column, value) in cells.iter().enumerate() {
            sheet.extend(xlsb_cell(column as u32, value));
        }
    }
    sheet.extend(record(0x0092, &[]));
    sheet.extend(record(0x0082, &[]));
    let binary =
        |bytes: Vec<u8>| -> Part { Box::new(move |out| out.write_all(&bytes).expect("written")) };
    write_zip(
        path,
        vec![
            ("[Content_Types].xml", text(r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="bin" ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/></Types>"#.to_owned())),
            ("xl/_rels/workbook.bin.rels", text(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.bin"/></Relationships>"#.to_owned())),
            ("xl/workbook.bin", binary(workbook)),
            ("xl/sharedStrings.bin", binary(strings)),
            ("xl/worksheets/sheet1.bin", binary(sheet)),
        ],
    );
}

fn header_row() -> (bool, Vec<XlsbCell>) {
    (
        false,
        vec![
            XlsbCell::Shared(0),
            XlsbCell::Text("userID"),
            XlsbCell::Text("until"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsb_formula_whose_value_is_an_error_is_invalid_never_filled_by_until() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("lookup.xlsb");
    let (failed_lookup, rich) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    write_xlsb(
        &path,
        &[
            header_row(),
            (
                false,
                vec![
                    XlsbCell::Owned(ENV_A.to_string()),
                    XlsbCell::Owned(failed_lookup.clone()),
                    XlsbCell::FormulaError(0x2A),
                ],
            ),
            (
                false,
                vec![
                    XlsbCell::Owned(ENV_A.to_string()),
                    XlsbCell::RichText(rich.clone()),
                ],
            ),
        ],
    );

    let output = dry_run_until_8h(&path, &[]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "one row is invalid: {}",
        stderr(&output)
    );
    let plan = read_results(&folder.path().join("lookup.plan.csv"));
    assert_eq!(
        column(&plan, "user_id"),
        [failed_lookup.as_str(), rich.as_str()],
        "the rich-text ID is read"
    );
    assert_eq!(column(&plan, "status"), ["invalid", "planned"]);
    assert!(
        column(&plan, "error_message")[0].contains("#N/A"),
        "{:?}",
        column(&plan, "error_message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsb_of_short_cell_records_is_refused_instead_of_read_as_empty_cells() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("export.xlsb");
    write_xlsb(
        &path,
        &[
            header_row(),
            (
                false,
                vec![
                    XlsbCell::Short("00000000-0000-0000-0000-00000000000a"),
                    XlsbCell::Text("x"),
                ],
            ),
        ],
    );

    let output = dry_run_until_8h(&path, &[]).await;
    assert_refused(&output, &["short form", "from row 2", "save it as .xlsx"]);
    assert!(
        !stderr(&output).contains("sheet \"Users\": sheet \"Users\""),
        "names the sheet once: {}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_xlsb_rows_are_refused_unless_skipped() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("hidden.xlsb");
    let (hidden, seen) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    write_xlsb(
        &path,
        &[
            header_row(),
            (
                true,
                vec![XlsbCell::Owned(ENV_A.to_string()), XlsbCell::Owned(hidden)],
            ),
            (
                false,
                vec![
                    XlsbCell::Owned(ENV_A.to_string()),
                    XlsbCell::Owned(seen.clone()),
                ],
            ),
        ],
    );

    assert_refused(
        &dry_run_until_8h(&path, &[]).await,
        &["hides rows 2", "--hidden-rows skip"],
    );
    let skipped = dry_run_until_8h(&path, &["--hidden-rows", "skip"]).await;
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    let plan = read_results(&folder.path().join("hidden.plan.csv"));
    assert_eq!(column(&plan, "user_id"), [seen.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_makes_the_workbook_reader_fail_partway_is_an_error_not_the_end_of_the_sheet() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("lying.xlsb");
    let users: Vec<(bool, Vec<XlsbCell>)> = (0..600)
        .map(|_| {
            (
                false,
                vec![
                    XlsbCell::Owned(ENV_A.to_string()),
                    XlsbCell::Owned(Uuid::new_v4().to_string()),
                ],
            )
        })
        .chain(std::iter::once((false, vec![XlsbCell::Shared(99)])))
        .collect();
    write_xlsb(&path, &[vec![header_row()], users].concat());

    let output = dry_run_until_8h(&path, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the workbook reader failed on a cell after row 600")
            && stderr(&output).contains("the rows after it were not read")
            && !stderr(&output).contains("panicked"),
        "{}",
        stderr(&output)
    );
    let plan = read_results(&folder.path().join("lying.plan.csv"));
    assert!(
        column(&plan, "status")
            .iter()
            .all(|status| *status == "planned")
    );
    assert_eq!(
        (plan.len(), column(&plan, "row").last().copied()),
        (599, Some("600")),
        "the rows up to the one it names (the one being read when it failed is not used)"
    );
}

/// An Excel 97-2003 cell as BIFF8 writes it.
enum XlsCell {
    Text(String),
    Number(f64),
}

/// A BIFF8 record.
fn biff(kind: u16, data: &[u8]) -> Vec<u8> {
    [
        &kind.to_le_bytes()[..],
        &(data.len() as u16).to_le_bytes(),
        data,
    ]
    .concat()
}

/// An `.xls` of one sheet `Users`: its cells by (row, column) from 0, the rows it hides, and
/// whether the workbook carries a password (Excel's XOR scheme).
fn write_xls(
    path: &std::path::Path,
    cells: &[((u16, u16), XlsCell)],
    hidden: &[u16],
    password: bool,
) {
    let bof = |kind: u16| {
        biff(
            0x0809,
            &[&0x0600_u16.to_le_bytes()[..], &kind.to_le_bytes(), &[0; 12]].concat(),
        )
    };
    let name = b"Users";
    let boundsheet = |position: u32| {
        biff(
            0x0085,
            &[
                &position.to_le_bytes()[..],
                &[0, 0, name.len() as u8, 0],
                name,
            ]
            .concat(),
        )
    };
    let mut globals = bof(0x0005);
    if password {
        globals.extend(biff(0x002F, &[0, 0, 0x34, 0x12, 0x78, 0x56]));
    }
    globals.extend(biff(0x0042, &1252_u16.to_le_bytes()));
    let sheet_at = (globals.len() + boundsheet(0).len() + biff(0x000A, &[]).len()) as u32;
    globals.extend(boundsheet(sheet_at));
    globals.extend(biff(0x000A, &[]));
    let mut sheet = bof(0x0010);
    for &row in hidden {
        let mut record = vec![0_u8; 16];
        record[..2].copy_from_slice(&row.to_le_bytes());
        record[12] = 0x20;
        sheet.extend(biff(0x0208, &record));
    }
    for ((row, column), value) in cells {
        let place = [&row.to_le_bytes()[..], &column.to_le_bytes(), &[0, 0]].concat();
        sheet.extend(match value {
            XlsCell::Text(text) => biff(
                0x0204,
                &[
                    place,
                    (text.len() as u16).to_le_bytes().to_vec(),
                    vec![0],
                    text.as_bytes().to_vec(),
                ]
                .concat(),
            ),
            XlsCell::Number(number) => {
                biff(0x0203, &[place, number.to_le_bytes().to_vec()].concat())
            }
        });
    }
    sheet.extend(biff(0x000A, &[]));
    let mut file = cfb::create(path).expect("a compound file");
    let mut stream = file.create_stream("/Workbook").expect("a stream");
    stream
        .write_all(&[globals, sheet].concat())
        .expect("written");
    drop(stream);
    file.flush().expect("flushed");
}

fn xls_users(users: &[&str]) -> Vec<((u16, u16), XlsCell)> {
    let mut cells = vec![
        ((0, 0), XlsCell::Text("envID".to_owned())),
        ((0, 1), XlsCell::Text("userID".to_owned())),
    ];
    for (row, user) in users.iter().enumerate() {
        cells.push(((row as u16 + 1, 0), XlsCell::Text(ENV_A.to_string())));
        cells.push(((row as u16 + 1, 1), XlsCell::Text((*user).to_owned())));
    }
    cells
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_value_at_iv65536_of_a_small_xls_is_refused_before_it_is_laid_out() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("stray.xls");
    let user = Uuid::new_v4().to_string();
    let mut cells = xls_users(&[&user]);
    cells.push(((65_535, 255), XlsCell::Number(1.0)));
    write_xls(&path, &cells, &[], false);
    assert!(std::fs::metadata(&path).expect("written").len() < 64 << 10);

    let output = dry_run_until_8h(&path, &[]).await;
    assert_refused(
        &output,
        &[
            "sheet \"Users\" spans",
            "row 65536, column 256",
            "delete the stray values",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xls_behind_excels_weakest_password_is_said_to_be_password_protected() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("protected.xls");
    write_xls(&path, &xls_users(&[&Uuid::new_v4().to_string()]), &[], true);

    let output = dry_run_until_8h(&path, &[]).await;
    assert_refused(&output, &["password protected", "remove the password"]);
    assert!(!stderr(&output).contains("odepage"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xls_whose_allocation_table_marks_its_unused_sectors_as_sheetjs_does_is_read() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("sheetjs.xls");
    let user = Uuid::new_v4().to_string();
    write_xls(&path, &xls_users(&[user.as_str()]), &[], false);
    // SheetJS ends every unused entry of the table with "end of chain" instead of "free", so
    // the table claims sectors the file does not have; calamine reads such files right.
    let mut bytes = std::fs::read(&path).expect("written");
    let shift = u16::from_le_bytes([bytes[0x1E], bytes[0x1F]]);
    let size = 1_usize << shift;
    let table = u32::from_le_bytes(bytes[0x4C..0x50].try_into().expect("four bytes")) as usize;
    let start = (table + 1) * size;
    for entry in bytes[start..start + size].chunks_exact_mut(4) {
        if entry == [0xFF; 4] {
            entry.copy_from_slice(&0xFFFF_FFFE_u32.to_le_bytes());
        }
    }
    std::fs::write(&path, bytes).expect("written");

    let output = dry_run_until_8h(&path, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = read_results(&folder.path().join("sheetjs.plan.csv"));
    assert_eq!(column(&plan, "user_id"), [user.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_xls_rows_are_refused_unless_skipped() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("hidden.xls");
    let (hidden, seen) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    write_xls(&path, &xls_users(&[&hidden, &seen]), &[1], false);

    assert_refused(
        &dry_run_until_8h(&path, &[]).await,
        &["hides rows 2", "--hidden-rows skip"],
    );
    let skipped = dry_run_until_8h(&path, &["--hidden-rows", "skip"]).await;
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    let plan = read_results(&folder.path().join("hidden.plan.csv"));
    assert_eq!(column(&plan, "user_id"), [seen.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xls_text_read_with_a_nul_between_its_letters_is_read_without_them() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("exported.xls");
    let user = Uuid::new_v4().to_string();
    let mut cells = xls_users(&[&user]);
    cells[1].1 = XlsCell::Text("u\0s\0e\0r\0I\0D\0".to_owned());
    write_xls(&path, &cells, &[], false);

    let output = dry_run_until_8h(&path, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = read_results(&folder.path().join("exported.plan.csv"));
    assert_eq!(column(&plan, "user_id"), [user.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_ods_rows_are_refused_unless_skipped() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("hidden.ods");
    let (hidden, seen) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let hidden_row = ods_row(&[&ENV_A.to_string(), &hidden]).replace(
        "<table:table-row>",
        r#"<table:table-row table:visibility="filter">"#,
    );
    write_ods(
        &path,
        &format!(
            "{}{hidden_row}{}",
            ods_row(&["envID", "userID"]),
            ods_row(&[&ENV_A.to_string(), &seen])
        ),
    );

    assert_refused(
        &dry_run_until_8h(&path, &[]).await,
        &["hides rows 2", "--hidden-rows skip"],
    );
    let skipped = dry_run_until_8h(&path, &["--hidden-rows", "skip"]).await;
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    let plan = read_results(&folder.path().join("hidden.plan.csv"));
    assert_eq!(column(&plan, "user_id"), [seen.as_str()]);
}
