//! Spreadsheets as admins have them, through the binary: workbooks read directly (.xlsx, .ods and
//! Excel 97 .xls; sheets, date cells, wrong-typed cells), `--timezone`, Excel's encodings, what
//! Excel leaves below the data, quotes that do not close, leap seconds, and a results file fed
//! back as input (`--only`, and `--resume` after a spreadsheet re-saved it).

use std::collections::HashSet;
use std::process::Output;

use pingone_bypass::simulator::{Population, SimulatorConfig};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
use uuid::Uuid;

use crate::support::{ENV_A, column, read_results, run_command, run_files, start, stderr};

/// `pingone-bypass run <args>` with nothing of PingOne set: dry runs only.
async fn dry_run(input: &std::path::Path, extra: &[&str]) -> Output {
    crate::support::binary()
        .arg("run")
        .arg(input)
        .args(["--dry-run", "--progress", "never"])
        .args(extra)
        .output()
        .await
        .expect("the binary runs")
}

/// Tomorrow's date, `YYYY-MM-DD`, so that expiries stay within the default window.
fn tomorrow() -> String {
    (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string()
}

fn date_cell(text: &str) -> ExcelDateTime {
    ExcelDateTime::parse_from_str(text).expect("a date the workbook can hold")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workbooks_chosen_sheet_is_read_with_its_own_row_numbers_and_date_cells_in_the_zone() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("outage.xlsx");
    let user = Uuid::new_v4();
    let mut workbook = Workbook::new();
    let decoy = workbook.add_worksheet().set_name("Notes").expect("a name");
    decoy.write_string(0, 0, "nothing to see").expect("written");
    let sheet = workbook.add_worksheet().set_name("Users").expect("a name");
    // The header on the sheet's third row, after two empty ones.
    for (index, name) in ["envID", "userID", "until", "seats"].iter().enumerate() {
        sheet.write_string(2, index as u16, *name).expect("written");
    }
    sheet
        .write_string(3, 0, ENV_A.to_string())
        .expect("written");
    sheet.write_string(3, 1, user.to_string()).expect("written");
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    sheet
        .write_datetime_with_format(3, 2, date_cell(&format!("{} 17:00:00", tomorrow())), &date)
        .expect("written");
    sheet.write_number(3, 3, 42).expect("written");
    // A blank row, then another user whose expiry is text.
    sheet
        .write_string(5, 0, ENV_A.to_string())
        .expect("written");
    sheet
        .write_string(5, 1, Uuid::new_v4().to_string())
        .expect("written");
    sheet.write_string(5, 2, "8h").expect("written");
    workbook.save(&path).expect("saved");

    for sheet_named in ["Users", "2", "users"] {
        let output = dry_run(
            &path,
            &[
                "--sheet",
                sheet_named,
                "--timezone",
                "America/New_York",
                "-o",
                &folder.path().join("r.csv").display().to_string(),
                "--overwrite",
            ],
        )
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let rows = read_results(&folder.path().join("r.csv"));
        assert_eq!(
            column(&rows, "row"),
            ["4", "6"],
            "the sheet's own row numbers"
        );
        assert_eq!(rows[0]["user_id"], user.to_string());
        assert_eq!(rows[0]["until"], format!("{} 17:00", tomorrow()));
        assert_eq!(
            rows[0]["requested_until"],
            format!("{}T22:00:00.000Z", tomorrow()),
            "17:00 in New York in winter is 22:00 UTC"
        );
        assert_eq!(rows[0]["seats"], "42", "other cells are carried as text");
    }

    let output = dry_run(&path, &["--sheet", "Staff"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(r#"has no sheet "Staff"; its sheets are 1 "Notes", 2 "Users""#),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_of_the_wrong_type_make_their_row_invalid_with_a_message_an_admin_can_act_on() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("typed.xlsx");
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (index, name) in ["envID", "userID", "until"].iter().enumerate() {
        sheet.write_string(0, index as u16, *name).expect("written");
    }
    let user = Uuid::new_v4().to_string();
    sheet
        .write_string(1, 0, ENV_A.to_string())
        .expect("written");
    sheet.write_number(1, 1, 12345).expect("written");
    sheet.write_string(1, 2, "8h").expect("written");
    sheet
        .write_string(2, 0, ENV_A.to_string())
        .expect("written");
    sheet.write_string(2, 1, &user).expect("written");
    sheet.write_number(2, 2, 46000.5).expect("written");
    sheet
        .write_string(3, 0, ENV_A.to_string())
        .expect("written");
    sheet
        .write_formula(
            3,
            1,
            Formula::new("=VLOOKUP(\"x\",A1:A2,1,FALSE)").set_result("#N/A"),
        )
        .expect("written");
    sheet.write_string(3, 2, "8h").expect("written");
    sheet
        .write_string(4, 0, ENV_A.to_string())
        .expect("written");
    sheet.write_boolean(4, 1, true).expect("written");
    sheet.write_string(4, 2, "8h").expect("written");
    workbook.save(&path).expect("saved");

    let results = folder.path().join("typed.plan.csv");
    let output = dry_run(&path, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&results);
    assert_eq!(column(&rows, "status"), ["invalid"; 4]);
    let messages = column(&rows, "error_message");
    assert!(
        messages[0].starts_with("userID holds the number 12345"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].starts_with("until holds the number 46000.5 where a date"),
        "{}",
        messages[1]
    );
    assert!(
        messages[2].starts_with("userID holds the spreadsheet error #N/A (a formula that failed)"),
        "{}",
        messages[2]
    );
    assert!(
        messages[3].starts_with("userID holds the boolean TRUE"),
        "{}",
        messages[3]
    );
}

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excels_unicode_text_is_read_and_other_encodings_need_naming() {
    let folder = tempfile::tempdir().expect("a folder");
    let user = Uuid::new_v4();
    let unicode = folder.path().join("unicode.txt");
    std::fs::write(
        &unicode,
        utf16le_with_bom(&format!(
            "envID\tuserID\tuntil\tnote\n{ENV_A}\t{user}\t8h\tJosé\n"
        )),
    )
    .expect("written");
    let output = dry_run(&unicode, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&folder.path().join("unicode.plan.csv"));
    assert_eq!(
        (rows[0]["user_id"].as_str(), rows[0]["note"].as_str()),
        (user.to_string().as_str(), "José")
    );

    let western = folder.path().join("western.csv");
    let mut bytes = format!(
        "envID,userID,until,note\n{ENV_A},{},8h,ok\n",
        Uuid::new_v4()
    )
    .into_bytes();
    bytes.extend_from_slice(format!("{ENV_A},{user},8h,Jos").as_bytes());
    bytes.extend_from_slice(b"\xe9\n");
    std::fs::write(&western, bytes).expect("written");
    let output = dry_run(&western, &[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("line 3, is not UTF-8")
            && stderr(&output).contains("--encoding windows-1252"),
        "{}",
        stderr(&output)
    );
    assert!(
        !folder.path().join("western.plan.csv").exists(),
        "nothing written"
    );

    let output = dry_run(&western, &["--encoding", "windows-1252"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&folder.path().join("western.plan.csv"));
    assert_eq!(
        column(&rows, "note"),
        ["ok", "José"],
        "the results are UTF-8"
    );

    let output = dry_run(&western, &["--encoding", "klingon"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--encoding \"klingon\" is not an encoding label"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_excel_leaves_below_the_data_is_skipped_and_rows_keep_excels_numbers() {
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let files = run_files(&format!(
        "envID,userID,until,note\n{ENV_A},{first},8h,\"two\nlines\"\n\n{ENV_A},{second},8h,x\n,,,\n  ,  , ,\n,,,\n"
    ));
    let output = dry_run(&files.input, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&files.plan);
    assert_eq!(column(&rows, "row"), ["2", "4"]);
    assert_eq!(column(&rows, "status"), ["planned", "planned"]);

    let empty = run_files("envID,userID,until\n,,\n\n");
    let output = dry_run(&empty.input, &[]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("has a header but no rows"),
        "{}",
        stderr(&output)
    );
    let output = dry_run(&empty.input, &["--allow-empty"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_that_never_closes_stops_the_run_before_anything_is_sent() {
    let simulator = start(SimulatorConfig::default()).await;
    let mut csv = String::from("envID,userID,until,note\n");
    for n in 0..6 {
        let note = if n == 1 { "\"Smith, John" } else { "fine" };
        csv.push_str(&format!("{ENV_A},{},8h,{note}\n", Uuid::new_v4()));
    }
    let files = run_files(&csv);
    let output = run_command(&simulator, &files.input, &[])
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the quoted cell that opens on line 3 does not close"),
        "{}",
        stderr(&output)
    );
    let stats = simulator.stats();
    assert_eq!((stats.tokens_issued, stats.total_puts()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leap_second_and_a_local_time_the_clocks_skip_are_invalid() {
    let files = run_files(&format!(
        "envID,userID,until\n{ENV_A},{},{}T23:59:60Z\n{ENV_A},{},2027-03-14 02:30\n",
        Uuid::new_v4(),
        tomorrow(),
        Uuid::new_v4()
    ));
    let output = dry_run(
        &files.input,
        &["--timezone", "America/New_York", "--max-window", "366d"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&files.plan);
    assert_eq!(column(&rows, "status"), ["invalid", "invalid"]);
    assert!(
        rows[0]["error_message"].contains("leap second"),
        "{}",
        rows[0]["error_message"]
    );
    assert!(
        rows[1]["error_message"].contains("does not exist in America/New_York"),
        "{}",
        rows[1]["error_message"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_is_an_input_and_only_keeps_the_rows_asked_for() {
    let missing = Uuid::new_v4();
    let simulator = start(SimulatorConfig {
        population: Population::AllExcept(HashSet::from([missing])),
        ..SimulatorConfig::default()
    })
    .await;
    let granted = Uuid::new_v4();
    let files = run_files(&format!(
        "envID,userID,until,ticket\n{ENV_A},{granted},8h,T-1\n{ENV_A},{missing},8h,T-2\n"
    ));
    let output = run_command(&simulator, &files.input, &[])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let retry = files.output.with_file_name("retry.plan.csv");
    let output = run_command(
        &simulator,
        &files.output,
        &[
            "--only",
            "failed,not_attempted",
            "-o",
            &retry.display().to_string(),
        ],
    )
    .output()
    .await
    .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&retry);
    assert_eq!(
        column(&rows, "user_id"),
        [missing.to_string()],
        "only the failed row"
    );
    assert_eq!(
        rows[0]["input_status"], "failed",
        "the earlier columns are carried"
    );
    assert_eq!(rows[0]["ticket"], "T-2");
    assert_eq!(
        simulator.stats().puts_for(ENV_A, granted),
        1,
        "the granted row is left alone"
    );

    let output = run_command(&simulator, &files.input, &["--only", "failed", "-o", "-"])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--only needs a results file"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_reads_results_a_spreadsheet_re_saved() {
    let simulator = start(SimulatorConfig::default()).await;
    let users: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut csv = String::from("envID,userID,until\n");
    for user in &users {
        csv.push_str(&format!("{ENV_A},{user},2d\n"));
    }
    let files = run_files(&csv);
    let output = run_command(&simulator, &files.input, &[])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // As a spreadsheet saves it: a byte-order mark, `;` between cells, and its own spelling of
    // the times it recognised.
    let text = std::fs::read_to_string(&files.output).expect("results");
    let re_saved: String = text
        .lines()
        .map(|line| {
            let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
            for cell in &mut cells {
                if cell.len() == 24 && cell.ends_with('Z') {
                    *cell = cell[..19].replace('T', " ");
                }
            }
            cells.join(";") + "\r\n"
        })
        .collect();
    std::fs::write(&files.output, format!("\u{feff}{re_saved}")).expect("re-saved");

    let output = run_command(&simulator, &files.input, &["--resume"])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(simulator.stats().total_puts(), 3, "nothing was sent again");
    assert_eq!(
        column(&read_results(&files.output), "status"),
        ["succeeded"; 3]
    );
}

/// An OpenDocument spreadsheet of one sheet named `name`, each row a list of cells: `Ok(text)`
/// a string, `Err(date)` a date cell (`YYYY-MM-DDTHH:MM:SS`).
fn write_ods(path: &std::path::Path, name: &str, rows: &[Vec<Result<&str, &str>>]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("created"));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut add = |file: &str, contents: &str| {
        zip.start_file(file, stored).expect("a zip entry");
        zip.write_all(contents.as_bytes()).expect("written");
    };
    add("mimetype", "application/vnd.oasis.opendocument.spreadsheet");
    add(
        "META-INF/manifest.xml",
        r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#,
    );
    let mut table = String::new();
    for row in rows {
        table.push_str("<table:table-row>");
        for cell in row {
            match cell {
                Ok(text) => table.push_str(&format!(
                    r#"<table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell>"#
                )),
                Err(date) => table.push_str(&format!(
                    r#"<table:table-cell office:value-type="date" office:date-value="{date}"><text:p>{date}</text:p></table:table-cell>"#
                )),
            }
        }
        table.push_str("</table:table-row>");
    }
    add(
        "content.xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="{name}">{table}</table:table></office:spreadsheet></office:body></office:document-content>"#
        ),
    );
    zip.finish().expect("the zip is finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opendocument_spreadsheet_is_read_with_its_date_cells() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("staff.ods");
    let user = Uuid::new_v4().to_string();
    let environment = ENV_A.to_string();
    let until = format!("{}T09:30:00", tomorrow());
    write_ods(
        &path,
        "Staff",
        &[
            vec![Ok("env"), Ok("userId"), Ok("expires")],
            vec![Ok(&environment), Ok(&user), Err(&until)],
        ],
    );
    let output = dry_run(&path, &["--timezone", "Europe/Berlin"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&folder.path().join("staff.plan.csv"));
    assert_eq!(rows[0]["user_id"], user);
    assert_eq!(
        rows[0]["requested_until"],
        format!("{}T08:30:00.000Z", tomorrow()),
        "09:30 in Berlin in winter is 08:30 UTC"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_excel_97_workbook_is_read_with_its_sheet_row_numbers_and_date_cells() {
    // Written by tests/fixtures/legacy-xls.py: no Rust crate writes .xls.
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("legacy.xls");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy.xls"),
        &path,
    )
    .expect("the fixture");
    // Its date is in 2099, beyond any window a run allows: the row is refused, and its message
    // shows the instant the date cell was read as.
    let output = dry_run(&path, &["--sheet", "2", "--timezone", "America/New_York"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&folder.path().join("legacy.plan.csv"));
    assert_eq!(
        column(&rows, "row"),
        ["4", "5"],
        "the sheet's own row numbers"
    );
    assert_eq!(column(&rows, "status"), ["invalid", "invalid"]);
    assert!(
        rows[0]["error_message"]
            .contains("means 2099-01-02T22:00:00.000Z, later than --max-window"),
        "17:00 in New York in winter is 22:00 UTC: {}",
        rows[0]["error_message"]
    );
    assert_eq!(rows[0]["seats"], "42", "extra cells carried as text");
    assert!(
        rows[1]["error_message"]
            .contains("userID holds the number 12345 where an ID, as text belongs; format the cell as text and enter the ID again"),
        "{}",
        rows[1]["error_message"]
    );
}
