//! The page's "Check against PingOne's audit log" through the binary and HTTP: a finished
//! grant's and end's results are checked in a child process (`verify --pingone`) with the
//! server's connection, the page shows each verdict's count and offers the reconciliation, and a
//! rehearsal's page checks against its own simulator.

use pingone_bypass::simulator::{Population, SimulatorConfig};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::serve::{Served, browser, confirm_and_follow, get_page, post_page, serve_with, sign_in};
use crate::support::{ENV_A, start};

/// Uploads `csv` as outage.csv to be granted for 8 hours, and confirms run `run`'s plan.
async fn grant(served: &Served, cookie: &str, csv: String, run: u64) {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("outage.csv"),
        )
        .text("until", "8h");
    post_page(served, cookie, "/plan", form).await;
    confirm_and_follow(served, cookie, run).await;
}

async fn press(served: &Served, cookie: &str, path: &str) -> (StatusCode, String) {
    let answer = browser()
        .post(format!("{}{path}", served.base()))
        .header("cookie", cookie)
        .send()
        .await
        .expect("answers");
    let status = answer.status();
    (status, answer.text().await.expect("the page"))
}

fn count_of(page: &str, key: &str) -> String {
    page.split(&format!("<td id=\"{key}\">"))
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_grant_and_its_end_are_checked_against_the_audit_log_from_their_pages() {
    let missing = Uuid::new_v4();
    let simulator = start(SimulatorConfig {
        population: Population::AllExcept([missing].into_iter().collect()),
        ..SimulatorConfig::default()
    })
    .await;
    let served = serve_with(
        crate::support::worker_app_settings(&simulator),
        &["--rate", "1000", "--audit-wait", "0s"],
    )
    .await;
    let cookie = sign_in(&served).await;
    let mut csv = String::from("envID,userID\n");
    for _ in 0..3 {
        csv.push_str(&format!("{ENV_A},{}\n", Uuid::new_v4()));
    }
    csv.push_str(&format!("{ENV_A},{missing}\n"));
    grant(&served, &cookie, csv, 1).await;
    let finished = get_page(&served, &cookie, "/runs/1").await;
    assert!(
        finished.contains("action=\"/runs/1/audit\" id=\"audit\">"),
        "a finished grant offers the check, shown: {finished}"
    );

    let (status, checked) = press(&served, &cookie, "/runs/1/audit").await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert!(
        checked.contains("PingOne's audit log agrees with the results"),
        "{checked}"
    );
    assert_eq!(
        (
            count_of(&checked, "confirmed"),
            count_of(&checked, "consistent")
        ),
        ("3".to_owned(), "1".to_owned())
    );
    let reconciliation = get_page(&served, &cookie, "/runs/1/results.audit.csv").await;
    assert!(
        reconciliation.starts_with("row,environment_id,user_id,status,verdict,"),
        "{reconciliation}"
    );
    assert_eq!(reconciliation.lines().count(), 5);

    let (status, _) = press(&served, &cookie, "/runs/1/end").await;
    assert_eq!(status, StatusCode::OK);
    confirm_and_follow(&served, &cookie, 2).await;
    let (status, ended) = press(&served, &cookie, "/runs/2/audit").await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(count_of(&ended, "confirmed"), "3", "{ended}");

    assert_eq!(
        simulator.lose_activity(&format!("{}-row-3", run_id_of(&served, 1))),
        1
    );
    let (_, disagreeing) = press(&served, &cookie, "/runs/1/audit").await;
    assert!(disagreeing.contains("disagree"), "{disagreeing}");
    assert_eq!(count_of(&disagreeing, "not_in_pingone"), "1");
}

/// The run ID in run `run`'s record, in the server's work folder.
fn run_id_of(served: &Served, run: u64) -> String {
    let folder = std::fs::read_dir(served.workdir())
        .expect("the work folder lists")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().ends_with(&format!("-{run}")))
        })
        .expect("the run's folder");
    let record = std::fs::read_to_string(folder.join("results.manifest.json")).expect("a record");
    let record: serde_json::Value = serde_json::from_str(&record).expect("JSON");
    record["run_id"].as_str().expect("a run ID").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsals_page_checks_against_its_own_simulators_audit_log() {
    let served = serve_with(Vec::new(), &["--simulate"]).await;
    let cookie = sign_in(&served).await;
    let mut csv = String::from("envID,userID\n");
    for _ in 0..4 {
        csv.push_str(&format!("{ENV_A},{}\n", Uuid::new_v4()));
    }
    grant(&served, &cookie, csv, 1).await;
    let (status, checked) = press(&served, &cookie, "/runs/1/audit").await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(count_of(&checked, "confirmed"), "4", "{checked}");
    assert!(
        checked.contains("Rehearsal"),
        "every page of a rehearsal says so"
    );
}
