//! The specifications of reading earlier results back for `--resume`.

use super::*;
use crate::pingone::parse_exact_bypass_until;

const HEADER: &str = "row,environment_id,user_id,until,requested_until,status,http_status,can_bypass_mfa,bypass_mfa_enabled_until,attempts,error_code,error_message,completed_at,ticket\n";
const ENV: &str = "4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01";
const USER: &str = "0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01";
const LATER: &str = "2030-01-01T00:00:00.000Z";

fn line(user: &str, until: &str, status: &str) -> String {
    format!(
        "2,{ENV},{user},{until},{LATER},{status},200,true,{LATER},1,,,2026-11-29T00:00:00.000Z,INC-1\n"
    )
}

fn load(contents: &str) -> Result<EarlierResults, ResumeError> {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("users.results.csv");
    std::fs::write(&path, contents).expect("written");
    EarlierResults::load(&path, crate::row::Report::Grants)
}

fn origin(user: &str, until: &str) -> RowOrigin {
    RowOrigin {
        row: 5,
        environment_id: ENV.to_uppercase(),
        user_id: user.to_owned(),
        user: user.to_owned(),
        named_by: crate::input::UserColumn::Id,
        until: until.to_owned(),
        extras: Vec::new(),
        earlier_grant: None,
    }
}

fn rules_at(now: &str) -> ResumeRules {
    ResumeRules {
        now: parse_exact_bypass_until(now).expect("an instant"),
        margin: Duration::from_secs(15 * 60),
        default_until: None,
        ending: false,
    }
}

#[test]
fn a_row_naming_its_user_matches_the_earlier_name_as_written_or_the_id_it_resolves_to() {
    let header = HEADER.replace(",ticket", ",ticket,Login");
    let named = line(USER, "8h", "succeeded").replace(",INC-1", ",INC-1, Ada ");
    let rules = rules_at("2029-01-01T00:00:00.000Z");
    let mut by_name = origin("", "8h");
    by_name.user = "ADA".to_owned();
    by_name.named_by = UserColumn::Name(NameAttribute::Username);

    let mut earlier = load(&format!("{header}{named}")).expect("loads");
    let decision = earlier.decide(&by_name, LATER, &rules);
    assert!(matches!(decision, Decision::Done(_)), "{decision:?}");
    let mut by_email = by_name.clone();
    by_email.named_by = UserColumn::Name(NameAttribute::Email);
    assert_eq!(
        earlier.decide(&by_email, LATER, &rules),
        Decision::New,
        "a username is not an email"
    );

    let mut earlier = load(&format!("{HEADER}{}", line(USER, "8h", "succeeded"))).expect("loads");
    assert_eq!(earlier.decide(&by_name, LATER, &rules), Decision::New);
    by_name.user_id = USER.to_owned();
    let decision = earlier.decide_resolved(&by_name, LATER, &rules);
    assert!(matches!(decision, Decision::Done(_)), "{decision:?}");
    assert!(
        earlier.not_in_input(1).is_empty(),
        "matched by its resolved ID, the earlier success is not carried over"
    );
}

#[test]
fn a_zone_less_cell_that_reads_the_same_but_means_another_instant_is_sent_again() {
    let earlier_line = format!(
        "2,{ENV},{USER},2029-06-01 12:00,2029-06-01T12:00:00.000Z,succeeded,200,true,2029-06-01T12:00:00.000Z,1,,,2026-11-29T00:00:00.000Z,INC-1\n"
    );
    let mut earlier = load(&format!("{HEADER}{earlier_line}")).expect("loads");
    let rules = rules_at("2029-01-01T00:00:00.000Z");
    let in_new_york = earlier.decide(
        &origin(USER, "2029-06-01 12:00"),
        "2029-06-01T16:00:00.000Z",
        &rules,
    );
    assert!(
        matches!(in_new_york, Decision::Again { .. }),
        "{in_new_york:?}"
    );
    let in_utc = earlier.decide(
        &origin(USER, "2029-06-01 12:00"),
        "2029-06-01T12:00:00.000Z",
        &rules,
    );
    assert!(matches!(in_utc, Decision::Done(_)), "{in_utc:?}");
}

#[test]
fn a_relative_cell_that_reads_the_same_is_done_while_its_bypass_holds() {
    let mut earlier =
        load(&format!("{HEADER}{}", line(USER, "'+90m", "succeeded"))).expect("loads");
    let decision = earlier.decide(
        &origin(USER, " +90m "),
        "2029-06-01T00:00:00.000Z",
        &rules_at("2029-01-01T00:00:00.000Z"),
    );
    assert!(matches!(decision, Decision::Done(_)), "{decision:?}");
}

#[test]
fn an_earlier_bypass_that_ends_within_the_margin_is_granted_again() {
    let mut earlier = load(&format!("{HEADER}{}", line(USER, "8h", "succeeded"))).expect("loads");
    let decision = earlier.decide(
        &origin(USER, "8h"),
        LATER,
        &rules_at("2029-12-31T23:50:00.000Z"),
    );
    assert!(matches!(decision, Decision::Again { .. }), "{decision:?}");
}

#[test]
fn a_row_asking_another_absolute_expiry_is_sent_again() {
    let mut earlier = load(&format!("{HEADER}{}", line(USER, LATER, "succeeded"))).expect("loads");
    let decision = earlier.decide(
        &origin(USER, "2029-12-31"),
        "2029-12-31T00:00:00.000Z",
        &rules_at("2029-01-01T00:00:00.000Z"),
    );
    assert!(matches!(decision, Decision::Again { .. }), "{decision:?}");
    let same_instant = earlier.decide(
        &origin(USER, "2030-01-01"),
        LATER,
        &rules_at("2029-01-01T00:00:00.000Z"),
    );
    assert!(
        matches!(same_instant, Decision::Done(_)),
        "another spelling of the same instant is the same request"
    );
}

#[test]
fn only_succeeded_rows_are_remembered_and_unmatched_ones_are_carried_over() {
    let other = "1e8b4c63-7d2f-4c90-8f38-6a4d2b8e9f02";
    let mut earlier = load(&format!(
        "{HEADER}{}{}",
        line(USER, "8h", "succeeded"),
        line(other, "8h", "failed")
    ))
    .expect("loads");
    assert_eq!(earlier.succeeded_rows(), 1);
    assert_eq!(
        earlier.decide(
            &origin(other, "8h"),
            LATER,
            &rules_at("2029-01-01T00:00:00.000Z")
        ),
        Decision::New
    );
    let carried = earlier.not_in_input(1);
    assert_eq!(carried.len(), 1);
    assert_eq!(
        (
            carried[0].row,
            carried[0].user_id.as_str(),
            carried[0].extras.len()
        ),
        (None, USER, 1)
    );
}

#[test]
fn a_partial_last_line_is_not_a_success() {
    let full = line(USER, "8h", "succeeded");
    let cut = &full[..full.len() - 20];
    let earlier = load(&format!("{HEADER}{cut}")).expect("loads");
    assert_eq!(earlier.succeeded_rows(), 0);
}

#[test]
fn results_a_spreadsheet_saved_with_semicolons_and_reordered_columns_still_read() {
    let header = "status;row;environment_id;user_id;until;requested_until;http_status;can_bypass_mfa;bypass_mfa_enabled_until;attempts;error_code;error_message;completed_at\n";
    let row = format!(
        "succeeded;2;{ENV};{USER};8h;{LATER};200;true;{LATER};1;;;2026-11-29T00:00:00.000Z\n"
    );
    let earlier = load(&format!("{header}{row}")).expect("loads");
    assert_eq!(earlier.succeeded_rows(), 1);
}

#[test]
fn a_file_that_is_not_results_is_refused_naming_what_it_lacks() {
    let error = load("env,user,until\n").err().expect("refused");
    assert!(matches!(error, ResumeError::NotResults { .. }));
    assert!(error.to_string().contains("requested_until"), "{error}");
}

#[test]
fn partial_files_and_journals_of_killed_runs_are_read_too() {
    let folder = tempfile::tempdir().expect("a folder");
    let output = folder.path().join("users.results.csv");
    std::fs::write(&output, HEADER).expect("written");
    let partial = new_partial_path(&output);
    std::fs::write(
        &partial,
        format!("{HEADER}{}", line(USER, "8h", "succeeded")),
    )
    .expect("written");
    let journal = crate::record::journal::Journal::path_for(&output);
    let other = "1e8b4c63-7d2f-4c90-8f38-6a4d2b8e9f02";
    std::fs::write(
        &journal,
        format!("{HEADER}{}", line(other, "8h", "succeeded")),
    )
    .expect("written");
    std::fs::write(folder.path().join("other.results.csv.1.partial"), "x").expect("written");
    let earlier = EarlierResults::load(&output, crate::row::Report::Grants).expect("loads");
    assert_eq!(earlier.succeeded_rows(), 2);
    assert_eq!(earlier.sources.len(), 3);
    assert_eq!(earlier.sources[0], output);
}
