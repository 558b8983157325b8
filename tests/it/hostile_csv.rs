//! No CSV costs more than its size, through the binary: a header past Excel's 16,384 columns or a
//! row of more than 4 MiB is refused before it is interpreted, a header of thousands of columns
//! is read in time proportional to them, and header cells without a name are not carried.

use std::process::Output;

use crate::support::{ENV_A, read_results, run_files, stderr};

fn dry_run(input: &std::path::Path) -> Output {
    crate::support::binary_blocking()
        .arg("run")
        .arg(input)
        .args(["--dry-run", "--until", "8h", "--overwrite"])
        .output()
        .expect("the binary runs")
}

/// A CSV whose header is `envID,userID` and then `extra` names, with one row.
fn wide(extra: &[String]) -> String {
    let user = uuid::Uuid::new_v4();
    let names = extra.join(",");
    let cells = vec!["x"; extra.len()].join(",");
    format!("envID,userID,{names}\n{ENV_A},{user},{cells}\n")
}

#[test]
fn a_header_past_excels_columns_is_refused_and_one_within_them_is_read() {
    let too_wide = run_files(&wide(
        &(0..100_000).map(|n| format!("c{n}")).collect::<Vec<_>>(),
    ));
    let output = dry_run(&too_wide.input);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("more than Excel's 16,384 columns"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).len() < 500,
        "the message quotes no header: {}",
        stderr(&output)
    );

    let repeated = run_files(&wide(&vec!["note".to_owned(); 16_000]));
    let output = dry_run(&repeated.input);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&repeated.plan);
    assert_eq!(rows[0]["note"], "x");
    assert_eq!(
        rows[0]["input_note_15999"], "x",
        "each repeat gets a name of its own"
    );
}

#[test]
fn header_cells_without_a_name_are_not_carried() {
    let files = run_files(&wide(&["".to_owned(), "ticket".to_owned(), " ".to_owned()]));
    let output = dry_run(&files.input);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let header = std::fs::read_to_string(&files.plan)
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(header.ends_with(",completed_at,ticket"), "{header}");
}

#[test]
fn a_row_of_more_than_4_mib_is_refused_naming_its_line() {
    let user = uuid::Uuid::new_v4();
    let long_note = "y".repeat(5 << 20);
    let files = run_files(&format!(
        "envID,userID,note\n{ENV_A},{user},short\n{ENV_A},{user},{long_note}\n"
    ));
    let output = dry_run(&files.input);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("line 3 is longer than 4 MiB"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).len() < 500, "{}", stderr(&output));
}
