//! What the admin sees in the workbook is what gets granted, and no workbook costs more than its
//! size, through the binary: a hidden first sheet is passed over (and read only when named), a
//! cell past Excel's last column is refused before it is laid out in memory, a file that is not
//! what its name says is named for what it is, a time without a date is refused, and a header
//! pasted with a no-break space is matched.

use std::io::Write;

use rust_xlsxwriter::Workbook;
use uuid::Uuid;

use crate::support::{ENV_A, column, dry_run_until_8h, read_results, stderr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_first_sheet_is_passed_over_and_read_only_when_named() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("outage.xlsx");
    let (hidden_user, seen_user) = (Uuid::new_v4(), Uuid::new_v4());
    let mut workbook = Workbook::new();
    let old = workbook.add_worksheet().set_name("Old").expect("a name");
    old.write_string(0, 0, "envID").expect("written");
    old.write_string(0, 1, "userID").expect("written");
    old.write_string(1, 0, ENV_A.to_string()).expect("written");
    old.write_string(1, 1, hidden_user.to_string())
        .expect("written");
    old.set_hidden(true);
    let users = workbook.add_worksheet().set_name("Users").expect("a name");
    users.write_string(0, 0, "envID").expect("written");
    users.write_string(0, 1, "userID").expect("written");
    users
        .write_string(1, 0, ENV_A.to_string())
        .expect("written");
    users
        .write_string(1, 1, seen_user.to_string())
        .expect("written");
    users.set_active(true);
    workbook.save(&path).expect("saved");

    let output = dry_run_until_8h(&path, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = read_results(&folder.path().join("outage.plan.csv"));
    assert_eq!(
        column(&plan, "user_id"),
        [seen_user.to_string()],
        "only the sheet the admin sees"
    );
    assert!(
        stderr(&output).contains("\"Old\" (hidden)") && stderr(&output).contains("\"Users\""),
        "says which sheet it read and which it passed over: {}",
        stderr(&output)
    );

    let named = dry_run_until_8h(&path, &["--sheet", "Old"]).await;
    assert_eq!(named.status.code(), Some(0), "{}", stderr(&named));
    let plan = read_results(&folder.path().join("outage.plan.csv"));
    assert_eq!(column(&plan, "user_id"), [hidden_user.to_string()]);
}

/// A workbook of one sheet whose cells are `cells` (`(reference, text)`), written by hand: no
/// library writes a cell past Excel's limits.
fn write_xlsx(path: &std::path::Path, cells: &[(&str, &str)]) {
    let mut data = String::new();
    for (reference, text) in cells {
        let row: String = reference.chars().filter(char::is_ascii_digit).collect();
        data.push_str(&format!(
            r#"<row r="{row}"><c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c></row>"#
        ));
    }
    write_xlsx_sheet_data(path, &data);
}

/// A workbook of one sheet whose `<sheetData>` is `data`, as written.
fn write_xlsx_sheet_data(path: &std::path::Path, data: &str) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("created"));
    let deflated = zip::write::SimpleFileOptions::default();
    let mut add = |file: &str, contents: &str| {
        zip.start_file(file, deflated).expect("a zip entry");
        zip.write_all(contents.as_bytes()).expect("written");
    };
    add(
        "[Content_Types].xml",
        r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
    );
    add(
        "_rels/.rels",
        r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    );
    add(
        "xl/workbook.xml",
        r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Users" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    );
    add(
        "xl/_rels/workbook.xml.rels",
        r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
    );
    add(
        "xl/worksheets/sheet1.xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#
        ),
    );
    zip.finish().expect("the zip is finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_past_excels_last_column_is_refused_before_it_is_laid_out_in_memory() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("hostile.xlsx");
    let user = Uuid::new_v4().to_string();
    let env = ENV_A.to_string();
    write_xlsx(
        &path,
        &[
            ("A1", "envID"),
            ("B1", "userID"),
            ("A2", &env),
            ("B2", &user),
            ("FXSHRXW3", "x"),
        ],
    );
    assert!(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < 4096);
    let output = dry_run_until_8h(&path, &[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("past Excel's last row (1,048,576) or column (16,384, XFD)"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("row 3"),
        "names the cell: {}",
        stderr(&output)
    );

    let past_last_row = folder.path().join("rows.xlsx");
    write_xlsx(
        &past_last_row,
        &[("A1", "envID"), ("B1", "userID"), ("A1048577", &env)],
    );
    let output = dry_run_until_8h(&past_last_row, &[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("row 1048577"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_what_its_name_says_is_named_for_what_it_is() {
    let folder = tempfile::tempdir().expect("a folder");
    let ole = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0, 0, 0];
    let utf16: Vec<u8> = format!("envID,userID\n{ENV_A},{}\n", Uuid::new_v4())
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for (name, bytes, says) in [
        ("export.xls", b"<!DOCTYPE html><html><table><tr><td>envID</td></tr></table></html>".to_vec(), "is an HTML page, not a workbook"),
        ("tabs.xls", b"envID\tuserID\n".to_vec(), "is text, not a workbook: if it is a CSV or tab-separated file, rename it .csv"),
        ("locked.xlsx", ole.to_vec(), "is password protected"),
        ("renamed.csv", b"PK\x03\x04\x14\x00".to_vec(), "is a workbook (.xlsx, .xlsm, .xlsb or .ods) named as text"),
        ("old.csv", ole.to_vec(), "is an Excel 97 workbook (or an encrypted one) named as text"),
        ("unicode.csv", utf16, "pass --encoding utf-16le"),
        ("spreadsheet2003.xls", b"<?xml version=\"1.0\"?><Workbook xmlns=\"urn:schemas-microsoft-com:office:spreadsheet\">".to_vec(), "Excel 2003 XML spreadsheet"),
    ] {
        let path = folder.path().join(name);
        std::fs::write(&path, bytes).expect("written");
        let output = dry_run_until_8h(&path, &[]).await;
        assert_eq!(output.status.code(), Some(2), "{name}: {}", stderr(&output));
        assert!(stderr(&output).contains(says), "{name}: {}", stderr(&output));
        assert!(!stderr(&output).contains('\0'), "{name}: no NUL in a message");
    }
    let unicode = folder.path().join("unicode.csv");
    let decoded = dry_run_until_8h(&unicode, &["--encoding", "utf-16le"]).await;
    assert_eq!(decoded.status.code(), Some(0), "{}", stderr(&decoded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_without_a_date_is_refused_and_a_header_with_a_no_break_space_is_matched() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("times.xlsx");
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    // Pasted from a web page: a no-break space inside "user ID", a zero-width one in "until".
    for (index, name) in ["env", "user\u{a0}ID", "un\u{200b}til"].iter().enumerate() {
        sheet.write_string(0, index as u16, *name).expect("written");
    }
    let time = rust_xlsxwriter::ExcelDateTime::from_hms(17, 0, 0).expect("a time");
    let time_format = rust_xlsxwriter::Format::new().set_num_format("hh:mm");
    sheet
        .write_string(1, 0, ENV_A.to_string())
        .expect("written");
    sheet
        .write_string(1, 1, Uuid::new_v4().to_string())
        .expect("written");
    sheet
        .write_datetime_with_format(1, 2, &time, &time_format)
        .expect("written");
    workbook.save(&path).expect("saved");

    let output = crate::support::binary()
        .arg("run")
        .arg(&path)
        .args(["--dry-run", "--progress", "never"])
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&folder.path().join("times.plan.csv"));
    assert_eq!(column(&rows, "status"), ["invalid"]);
    assert!(
        rows[0]["error_message"].contains("holds the time 17:00 without a date"),
        "not 1899-12-31 17:00: {}",
        rows[0]["error_message"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formula_saved_without_its_value_is_never_filled_by_until_or_env() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("scripted.xlsx");
    let text = |reference: &str, text: &str| {
        format!(r#"<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>"#)
    };
    let (first, second, third) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // As openpyxl writes them: formulas with no cached value.
    let data = format!(
        r#"<row r="1">{}{}{}</row><row r="2">{}{}<c r="C2"><f>TODAY()+1</f></c></row><row r="3"><c r="A3"><f>NA()</f></c>{}</row><row r="4">{}{}<c r="C4" t="str"><f>"8h"</f><v>8h</v></c></row>"#,
        text("A1", "envID"),
        text("B1", "userID"),
        text("C1", "until"),
        text("A2", &ENV_A.to_string()),
        text("B2", &first.to_string()),
        text("B3", &second.to_string()),
        text("A4", &ENV_A.to_string()),
        text("B4", &third.to_string()),
    );
    write_xlsx_sheet_data(&path, &data);
    let output = dry_run_until_8h(&path, &["--env", &ENV_A.to_string()]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&folder.path().join("scripted.plan.csv"));
    assert_eq!(column(&rows, "status"), ["invalid", "invalid", "planned"]);
    for row in &rows[..2] {
        assert!(
            row["error_message"].contains("formula saved without its value")
                && row["error_message"].contains("open and save the workbook in Excel"),
            "{row:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_hidden_by_a_filter_are_refused_unless_skipped_or_included_by_name() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("filtered.xlsx");
    let users: Vec<String> = (0..3).map(|_| Uuid::new_v4().to_string()).collect();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet().set_name("Users").expect("a name");
    sheet.write_string(0, 0, "envID").expect("written");
    sheet.write_string(0, 1, "userID").expect("written");
    for (index, user) in users.iter().enumerate() {
        let row = index as u32 + 1;
        sheet
            .write_string(row, 0, ENV_A.to_string())
            .expect("written");
        sheet.write_string(row, 1, user).expect("written");
    }
    sheet.autofilter(0, 0, 3, 1).expect("a filter");
    sheet.set_row_hidden(2).expect("hidden");
    workbook.save(&path).expect("saved");

    let refused = dry_run_until_8h(&path, &[]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("sheet \"Users\" hides rows 3 (it has a filter)")
            && stderr(&refused).contains("--hidden-rows skip"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !folder.path().join("filtered.plan.csv").exists(),
        "nothing planned"
    );

    let skipped = dry_run_until_8h(&path, &["--hidden-rows", "skip"]).await;
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    let plan = read_results(&folder.path().join("filtered.plan.csv"));
    assert_eq!(column(&plan, "row"), ["2", "4"], "as Excel shows the sheet");

    let included = dry_run_until_8h(&path, &["--hidden-rows", "include"]).await;
    assert_eq!(included.status.code(), Some(0), "{}", stderr(&included));
    let plan = read_results(&folder.path().join("filtered.plan.csv"));
    assert_eq!(column(&plan, "row"), ["2", "3", "4"]);
}
