//! Writes the workbooks the README and the benchmarks use, so that none is a binary of unknown
//! origin:
//!
//! - `cargo run --example workbooks -- sample` writes `samples/workbook.xlsx`: two sheets, with
//!   date cells counted from today (so that they are always within the default `--max-window`).
//! - `cargo run --release --example workbooks -- large ROWS PATH` writes one sheet of ROWS
//!   users (a new UUID each, the expiry a date cell), with shared strings as Excel writes them,
//!   for the workbook benchmark.
//! - `cargo run --example workbooks -- stray-xls PATH` writes an Excel 97-2003 workbook of one
//!   user and one stray value at `IV65536`, the last cell of such a sheet, for the hostile-file
//!   figures (`benches/hostile_files.py`); no crate writes `.xls`, so its records are written here.

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};

const WORKFORCE: &str = "4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["sample"] => sample("samples/workbook.xlsx"),
        ["large", rows, path] => large(rows.parse()?, path),
        ["stray-xls", path] => stray_xls(path),
        _ => Err(
            "usage: workbooks sample | workbooks large ROWS PATH | workbooks stray-xls PATH".into(),
        ),
    }
}

/// Tomorrow at `hour`:00, as a date cell's value.
fn tomorrow_at(hour: u16) -> Result<ExcelDateTime, XlsxError> {
    let tomorrow = chrono::Local::now().date_naive() + chrono::Duration::days(1);
    ExcelDateTime::parse_from_str(&format!("{} {hour:02}:00:00", tomorrow.format("%Y-%m-%d")))
}

fn sample(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm");

    let outage = workbook.add_worksheet().set_name("Outage")?;
    for (column, name) in ["environmentId", "userId", "until", "ticket"]
        .iter()
        .enumerate()
    {
        outage.write_string(0, column as u16, *name)?;
    }
    let users = [
        "0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01",
        "1e8b4c63-7d2f-4c90-8f38-6a4d2b8e9f02",
        "2f7c5d74-8e3a-4da1-9a49-7b5e3c9fa003",
    ];
    for (index, user) in users.iter().enumerate() {
        let row = index as u32 + 1;
        outage.write_string(row, 0, WORKFORCE)?;
        outage.write_string(row, 1, *user)?;
        outage.write_datetime_with_format(row, 2, tomorrow_at(17)?, &date)?;
        outage.write_string(row, 3, "INC-4711")?;
    }
    // A duration is text, as in a CSV.
    outage.write_string(4, 0, WORKFORCE)?;
    outage.write_string(4, 1, "3a6d6e85-9f4b-4eb2-8b5a-8c6f4daab104")?;
    outage.write_string(4, 2, "8h")?;
    outage.write_string(4, 3, "INC-4711")?;

    let contractors = workbook.add_worksheet().set_name("Contractors")?;
    for (column, name) in ["username", "until", "note"].iter().enumerate() {
        contractors.write_string(0, column as u16, *name)?;
    }
    for (index, (username, hour, note)) in [
        ("grace.hopper", 9, "until 9:00 tomorrow, local time"),
        ("edsger.dijkstra", 12, "until noon tomorrow"),
        ("a.turing", 18, "until 18:00 tomorrow"),
    ]
    .iter()
    .enumerate()
    {
        let row = index as u32 + 1;
        contractors.write_string(row, 0, *username)?;
        contractors.write_datetime_with_format(row, 1, tomorrow_at(*hour)?, &date)?;
        contractors.write_string(row, 2, *note)?;
    }
    workbook.save(path)?;
    println!("wrote {path}");
    Ok(())
}

fn large(rows: u32, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    let sheet = workbook.add_worksheet().set_name("Users")?;
    for (column, name) in ["environmentId", "userId", "until", "ticket"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, column as u16, *name)?;
    }
    let until = tomorrow_at(17)?;
    for row in 1..=rows {
        sheet.write_string(row, 0, WORKFORCE)?;
        sheet.write_string(row, 1, uuid::Uuid::new_v4().to_string())?;
        sheet.write_datetime_with_format(row, 2, &until, &date)?;
        sheet.write_string(row, 3, format!("INC-{}", row % 100))?;
    }
    workbook.save(path)?;
    println!("wrote {path}: {rows} rows");
    Ok(())
}

/// A BIFF8 record: its type, its length, its data.
fn biff(kind: u16, data: &[u8]) -> Vec<u8> {
    [
        &kind.to_le_bytes()[..],
        &(data.len() as u16).to_le_bytes(),
        data,
    ]
    .concat()
}

fn stray_xls(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let bof = |kind: u16| {
        biff(
            0x0809,
            &[&0x0600_u16.to_le_bytes()[..], &kind.to_le_bytes(), &[0; 12]].concat(),
        )
    };
    let boundsheet = |position: u32| {
        biff(
            0x0085,
            &[&position.to_le_bytes()[..], &[0, 0, 5, 0], b"Users"].concat(),
        )
    };
    let mut globals = bof(0x0005);
    let sheet_at = (globals.len() + boundsheet(0).len() + biff(0x000A, &[]).len()) as u32;
    globals.extend(boundsheet(sheet_at));
    globals.extend(biff(0x000A, &[]));
    let mut sheet = bof(0x0010);
    let label = |row: u16, column: u16, text: &str| {
        let place = [&row.to_le_bytes()[..], &column.to_le_bytes(), &[0, 0]].concat();
        biff(
            0x0204,
            &[
                place,
                (text.len() as u16).to_le_bytes().to_vec(),
                vec![0],
                text.as_bytes().to_vec(),
            ]
            .concat(),
        )
    };
    sheet.extend(label(0, 0, "envID"));
    sheet.extend(label(0, 1, "userID"));
    sheet.extend(label(1, 0, WORKFORCE));
    sheet.extend(label(1, 1, &uuid::Uuid::new_v4().to_string()));
    sheet.extend(label(65_535, 255, "x"));
    sheet.extend(biff(0x000A, &[]));
    let mut file = cfb::create(path)?;
    let mut stream = file.create_stream("/Workbook")?;
    stream.write_all(&[globals, sheet].concat())?;
    drop(stream);
    file.flush()?;
    println!("wrote {path}");
    Ok(())
}
