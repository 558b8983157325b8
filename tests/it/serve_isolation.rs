//! The upload page outlives anything one run does: each run's work happens in a child process,
//! so a hostile workbook uploaded during a grant is refused while the grant goes on, and a
//! grant whose process is killed outright (as an abort or the out-of-memory killer would) is
//! shown as died with what its journal holds, while the server and other runs go on; "Resume"
//! then finishes it without sending any journaled grant again.

use std::time::Duration;

use pingone_bypass::simulator::{Simulator, SimulatorConfig};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::hostile_workbooks::{text, write_xlsx};
use crate::serve::{
    Served, browser, confirm_and_follow, events_until_done, get_page, post_page, serve_in,
    serve_with, sign_in,
};
use crate::support::{ENV_A, eventually, start, worker_app_settings};

fn upload(bytes: Vec<u8>, name: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        )
        .text("until", "8h")
}

fn users(count: usize) -> Vec<u8> {
    let mut csv = String::from("envID,userID\n");
    for _ in 0..count {
        csv.push_str(&format!("{ENV_A},{}\n", Uuid::new_v4()));
    }
    csv.into_bytes()
}

/// A 1.7 KB `.xlsx` whose one cell is at column `FXSHRXW`, far past Excel's last: it once made
/// the reader allocate 64 GiB and abort the whole server.
fn cell_past_the_last_column() -> Vec<u8> {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("export.xlsx");
    write_xlsx(
        &path,
        text(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>envID</t></is></c><c r="B1" t="inlineStr"><is><t>userID</t></is></c></row><row r="3"><c r="FXSHRXW3" t="inlineStr"><is><t>x</t></is></c></row></sheetData></worksheet>"#.to_owned()),
        None,
    );
    std::fs::read(&path).expect("the workbook is written")
}

/// `served` stopped as a kill would, and a new server on its work folder, signed in.
async fn restarted(served: Served, simulator: &Simulator) -> (Served, String) {
    let workdir = served.stop();
    let served = serve_in(workdir, worker_app_settings(simulator), &["--rate", "1000"]).await;
    let cookie = sign_in(&served).await;
    (served, cookie)
}

/// The process granting run `run` of `served` (its command line names the grant's request).
fn grant_process(served: &Served, run: u64) -> Option<u32> {
    let request = served
        .workdir()
        .join(format!("run-{run}"))
        .join("run.request.json")
        .display()
        .to_string();
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let entry = entry.ok()?;
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let command = std::fs::read(entry.path().join("cmdline")).ok()?;
        let arguments: Vec<&[u8]> = command.split(|byte| *byte == 0).collect();
        arguments.contains(&request.as_bytes()).then_some(pid)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_upload_and_a_killed_grant_reach_neither_the_server_nor_another_run() {
    let simulator = start(SimulatorConfig {
        latency: Duration::from_millis(5),
        ..SimulatorConfig::default()
    })
    .await;
    let served = serve_with(worker_app_settings(&simulator), &["--rate", "40"]).await;
    let cookie = sign_in(&served).await;
    let client = browser();

    let plan = post_page(&served, &cookie, "/plan", upload(users(240), "big.csv")).await;
    assert!(plan.contains("240 to grant"), "{plan}");
    let started = client
        .post(format!("{}/runs/1/start", served.base()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    eventually("the first grant is under way", || {
        simulator.stats().total_puts() >= 20
    })
    .await;

    let refused = client
        .post(format!("{}/plan", served.base()))
        .header("cookie", &cookie)
        .multipart(upload(cell_past_the_last_column(), "export.xlsx"))
        .send()
        .await
        .expect("the server answers a hostile upload");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refusal = refused.text().await.expect("the page");
    assert!(refusal.contains("past Excel"), "{refusal}");

    post_page(&served, &cookie, "/plan", upload(users(3), "small.csv")).await;
    let other = confirm_and_follow(&served, &cookie, 3).await;
    assert!(other.contains("\"succeeded\":3"), "{other}");

    let grant = grant_process(&served, 1).expect("the first grant runs in a process of its own");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &grant.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let died = events_until_done(&served, &cookie, 1).await;
    assert!(
        died.contains("\"died\":\"it was ended by signal 9"),
        "{died}"
    );
    let done: serde_json::Value = died
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("data: "))
        .and_then(|data| serde_json::from_str(data).ok())
        .expect("the done event's data");
    let journaled = done["summary"]["succeeded"].as_u64().expect("a count");
    assert!(journaled > 0 && journaled < 240, "{done}");
    let page = get_page(&served, &cookie, "/runs/1").await;
    assert!(
        page.contains("Its journal holds") && page.contains("id=\"resume\">"),
        "the died run offers Resume: {page}"
    );

    let puts_before = simulator.stats().total_puts();
    let resumed = client
        .post(format!("{}/runs/1/resume", served.base()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(resumed.status(), StatusCode::SEE_OTHER);
    let finished = events_until_done(&served, &cookie, 1).await;
    assert!(finished.contains("\"exit_code\":0"), "{finished}");
    assert_eq!(
        simulator.stats().total_puts() - puts_before,
        240 - journaled,
        "no journaled grant is sent again"
    );
    let results = std::fs::read_to_string(served.workdir().join("run-1").join("results.csv"))
        .expect("the results");
    assert_eq!(results.matches(",succeeded,").count(), 240, "{results}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_on_its_work_folder_serve_lists_every_earlier_run_and_overwrites_none() {
    use std::os::unix::fs::PermissionsExt;
    let simulator = start(SimulatorConfig::default()).await;
    let served = serve_with(worker_app_settings(&simulator), &["--rate", "1000"]).await;
    let cookie = sign_in(&served).await;
    post_page(&served, &cookie, "/plan", upload(users(2), "granted.csv")).await;
    let granted = confirm_and_follow(&served, &cookie, 1).await;
    assert!(granted.contains("\"exit_code\":0"), "{granted}");
    post_page(&served, &cookie, "/plan", upload(users(1), "waiting.csv")).await;
    let first_input = std::fs::read(served.workdir().join("run-1").join("input.csv"))
        .expect("run 1's upload is kept");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("it is there")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&served.workdir().join("run-1")), 0o700);
    assert_eq!(
        mode(&served.workdir().join("run-1").join("input.csv")),
        0o600
    );

    let (served, cookie) = restarted(served, &simulator).await;
    let home = get_page(&served, &cookie, "/").await;
    assert!(
        home.contains("granted.csv") && home.contains("finished (exit 0): 2 succeeded"),
        "the finished run is listed with its counts: {home}"
    );
    assert!(
        home.contains("waiting.csv") && home.contains("planned, not started"),
        "{home}"
    );
    let results = browser()
        .get(format!("{}/runs/1/results.csv", served.base()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        results.status(),
        StatusCode::OK,
        "an earlier run's results download"
    );

    post_page(&served, &cookie, "/plan", upload(users(1), "new.csv")).await;
    assert!(
        served.workdir().join("run-3").join("input.csv").exists(),
        "the next upload is numbered after the earlier runs"
    );
    assert_eq!(
        std::fs::read(served.workdir().join("run-1").join("input.csv")).expect("still there"),
        first_input,
        "nothing of an earlier run is overwritten"
    );
    let waiting = confirm_and_follow(&served, &cookie, 2).await;
    assert!(
        waiting.contains("\"succeeded\":1"),
        "a run planned before the restart is granted after it: {waiting}"
    );
}

/// A connection that sends half a request header and then nothing.
async fn half_a_header(served: &Served) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = served.base().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("the server accepts");
    stream
        .write_all(format!("GET / HTTP/1.1\r\nHost: {address}\r\nX-Slow: ").as_bytes())
        .await
        .expect("half a header is sent");
    stream
}

/// Everything the server sends on `stream` until it closes it.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection within 30 s")
        .expect("the connection reads");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The page as the helpdesk asks for it: `GET /` with the session cookie, on a new connection.
async fn the_page(served: &Served, cookie: &str) -> StatusCode {
    tokio::time::timeout(
        Duration::from_secs(10),
        browser()
            .get(format!("{}/", served.base()))
            .header("cookie", cookie)
            .header("connection", "close")
            .send(),
    )
    .await
    .expect("the page answers within 10 s")
    .expect("answers")
    .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_while_a_thousand_connections_sit_half_sent() {
    let served = serve_with(Vec::new(), &["--simulate"]).await;
    let cookie = sign_in(&served).await;
    let mut held = Vec::new();
    for _ in 0..1000 {
        held.push(half_a_header(&served).await);
    }
    assert_eq!(the_page(&served, &cookie).await, StatusCode::OK);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_bound_the_oldest_half_sent_connection_makes_room_for_a_real_request() {
    let served = serve_with(Vec::new(), &["--simulate", "--connections", "64"]).await;
    let cookie = sign_in(&served).await;
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(half_a_header(&served).await);
    }
    assert_eq!(the_page(&served, &cookie).await, StatusCode::OK);
    let cut = until_closed(&mut held[0]).await;
    assert!(
        !cut.contains("200 OK"),
        "a header that never ends gets no page: {cut:?}"
    );
    // Cut to make room, not timed out: one opened just after it is still open.
    let mut probe = [0_u8; 1];
    let newest = held.last().expect("held connections");
    assert!(
        matches!(newest.try_read(&mut probe), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
        "only the oldest half-sent connection was cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_bound_with_every_connection_past_its_header_a_new_one_is_told_busy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let served = serve_with(Vec::new(), &["--simulate", "--connections", "64"]).await;
    let address = served.base().trim_start_matches("http://").to_owned();
    // Each sends a whole request, reads its answer, and stays open (keep-alive).
    let mut held = Vec::new();
    for _ in 0..64 {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("the server accepts");
        stream
            .write_all(format!("GET /page.css HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
            .await
            .expect("a request is sent");
        let mut answer = [0_u8; 256];
        let read = stream.read(&mut answer).await.expect("an answer");
        assert!(answer[..read].starts_with(b"HTTP/1.1 "), "an answer comes");
        held.push(stream);
    }
    let mut past = half_a_header(&served).await;
    let busy = until_closed(&mut past).await;
    assert!(
        busy.starts_with("HTTP/1.1 503") && busy.contains("busy"),
        "a connection past the bound is answered at once: {busy:?}"
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_bound_are_told_busy_and_a_refused_upload_is_not_kept() {
    use tokio::io::AsyncWriteExt;
    let served = serve_with(Vec::new(), &["--simulate"]).await;
    let cookie = sign_in(&served).await;
    let address = served.base().trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..pingone_bypass::serve::MOST_UPLOADS_AT_ONCE {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("the server accepts");
        let head = format!(
            "POST /plan HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.csv\"\r\n\r\nenvID,userID\r\n"
        );
        stream
            .write_all(head.as_bytes())
            .await
            .expect("the start of an upload is sent");
        slow.push(stream);
    }
    let probe = || async {
        browser()
            .post(format!("{}/sheets", served.base()))
            .header("cookie", &cookie)
            .multipart(upload(b"envID,userID\n".to_vec(), "list.xlsx"))
            .send()
            .await
            .expect("answers")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let busy = loop {
        let answer = probe().await;
        if answer.status() == StatusCode::SERVICE_UNAVAILABLE {
            break answer.text().await.expect("the page");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "an upload past the bound is refused while the others are read"
        );
        tokio::task::yield_now().await;
    };
    assert!(
        busy.contains("busy") && busy.contains("Try again"),
        "{busy}"
    );
    drop(slow);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while probe().await.status() == StatusCode::SERVICE_UNAVAILABLE {
        assert!(
            std::time::Instant::now() < deadline,
            "abandoned uploads give their places back"
        );
        tokio::task::yield_now().await;
    }
    let refused = post_page(
        &served,
        &cookie,
        "/plan",
        upload(b"no,header\n".to_vec(), "bad.csv"),
    )
    .await;
    assert!(refused.contains("That did not work"), "{refused}");
    let kept: Vec<_> = std::fs::read_dir(served.workdir())
        .expect("the work folder")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name())
        .collect();
    assert!(
        kept.is_empty(),
        "no folder is kept for uploads that were refused: {kept:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_on_the_page_says_so_on_every_page_and_is_recorded_as_one() {
    let served = serve_with(Vec::new(), &["--simulate"]).await;
    let cookie = sign_in(&served).await;
    let plan = post_page(&served, &cookie, "/plan", upload(users(2), "drill.csv")).await;
    let stream = confirm_and_follow(&served, &cookie, 1).await;
    assert!(stream.contains("\"succeeded\":2"), "{stream}");
    let mut pages = vec![("the plan", plan)];
    for path in ["/", "/status", "/runs/1", "/runs/9"] {
        pages.push((path, get_page(&served, &cookie, path).await));
    }
    for (which, page) in &pages {
        assert!(
            page.contains(pingone_bypass::serve::REHEARSAL_BANNER),
            "{which} says it is a rehearsal: {page}"
        );
    }
    let results = browser()
        .get(format!("{}/runs/1/results.csv", served.base()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        results.headers()["content-disposition"],
        "attachment; filename=\"rehearsal-1-results.csv\""
    );
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(served.workdir().join("run-1").join("results.manifest.json"))
            .expect("the run record"),
    )
    .expect("JSON");
    assert_eq!(record["simulated"], true, "{record}");
}

/// The form's fields, as a browser posts them with `file` named `name`.
fn form_of(bytes: Vec<u8>, name: &str, fields: &[(&str, &str)]) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    for (field, value) in fields {
        form = form.text(field.to_string(), value.to_string());
    }
    form
}

/// What the page shows, without its markup's own double dashes (there are none) or the CSS.
fn assert_no_flag(page: &str) {
    for flag in [
        "--until",
        "--env",
        "--encoding",
        "--hidden-rows",
        "--sheet",
        "unexpected argument",
    ] {
        assert!(
            !page.contains(flag),
            "the page speaks in flags ({flag}): {page}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_words_every_problem_for_its_form_and_takes_any_sheet_name() {
    let simulator = start(SimulatorConfig::default()).await;
    let served = serve_with(worker_app_settings(&simulator), &[]).await;
    let cookie = sign_in(&served).await;
    let user = Uuid::new_v4();

    let no_expiry = post_page(
        &served,
        &cookie,
        "/plan",
        form_of(
            format!("envID,userID\n{ENV_A},{user}\n").into_bytes(),
            "list.csv",
            &[],
        ),
    )
    .await;
    assert!(
        no_expiry.contains("fill in Expiry on the form"),
        "{no_expiry}"
    );
    assert_no_flag(&no_expiry);

    let dashed = post_page(
        &served,
        &cookie,
        "/plan",
        form_of(
            format!("envID,userID\n{ENV_A},{user}\n").into_bytes(),
            "list.csv",
            &[("until", "-1")],
        ),
    )
    .await;
    assert!(dashed.contains("Expiry &quot;-1&quot;"), "{dashed}");
    assert!(
        dashed.contains("Change <strong>Expiry for rows without one</strong> on the form"),
        "the page names the field to change: {dashed}"
    );
    assert_no_flag(&dashed);

    let latin1 = format!("envID,userID,name\n{ENV_A},{user},Ren\u{e9}e\n");
    let latin1: Vec<u8> = latin1.chars().map(|c| c as u8).collect();
    let unread = post_page(
        &served,
        &cookie,
        "/plan",
        form_of(latin1.clone(), "export.csv", &[("until", "8h")]),
    )
    .await;
    assert!(
        unread.contains("choose the file&#39;s encoding on the form")
            && unread.contains("the upload &quot;export.csv&quot;"),
        "{unread}"
    );
    assert_no_flag(&unread);
    assert!(
        unread.contains("Change <strong>The file&#39;s encoding</strong> on the form"),
        "{unread}"
    );
    assert!(
        !unread.contains(&served.workdir().display().to_string()),
        "the server's folders are not shown: {unread}"
    );
    let read = post_page(
        &served,
        &cookie,
        "/plan",
        form_of(
            latin1,
            "export.csv",
            &[("until", "8h"), ("encoding", "windows-1252")],
        ),
    )
    .await;
    assert!(read.contains("1 to grant"), "{read}");

    let mut workbook = rust_xlsxwriter::Workbook::new();
    workbook.add_worksheet().set_name("Notes").expect("a name");
    let sheet = workbook
        .add_worksheet()
        .set_name("-Q4 old")
        .expect("a name");
    for (column, text) in ["envID", "userID"].iter().enumerate() {
        sheet
            .write_string(0, column as u16, *text)
            .expect("written");
    }
    sheet
        .write_string(1, 0, ENV_A.to_string())
        .expect("written");
    sheet.write_string(1, 1, user.to_string()).expect("written");
    let bytes = workbook.save_to_buffer().expect("the workbook");
    let picked = post_page(
        &served,
        &cookie,
        "/plan",
        form_of(
            bytes,
            "export.xlsx",
            &[("until", "8h"), ("sheet", "-Q4 old")],
        ),
    )
    .await;
    assert!(
        picked.contains("1 to grant"),
        "a sheet named with a leading dash is read: {picked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_whose_credentials_are_refused_says_so_and_offers_no_grant() {
    let simulator = start(SimulatorConfig::default()).await;
    let mut settings = worker_app_settings(&simulator);
    for (name, value) in &mut settings {
        if *name == "PINGONE_CLIENT_SECRET" {
            *value = "not-the-secret".to_owned();
        }
    }
    let served = serve_with(settings, &[]).await;
    let cookie = sign_in(&served).await;
    let plan = post_page(&served, &cookie, "/plan", upload(users(1), "list.csv")).await;
    assert!(plan.contains("refused the worker application"), "{plan}");
    assert!(!plan.contains("Grant "), "no grant is offered: {plan}");
    assert_eq!(simulator.stats().total_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_is_replaced_by_a_new_key_without_a_restart() {
    let served = serve_with(Vec::new(), &["--simulate"]).await;
    let lost = sign_in(&served).await;
    let asked = crate::support::binary()
        .args(["serve", "--new-key", "--workdir"])
        .arg(served.workdir())
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(
        asked.status.code(),
        Some(0),
        "{}",
        crate::support::stderr(&asked)
    );
    let url = String::from_utf8_lossy(&asked.stdout)
        .trim()
        .strip_prefix("url: ")
        .expect("the line is `url: ...`")
        .to_owned();
    assert!(url.starts_with(served.base()) && url != served.url, "{url}");
    let answer = browser().get(&url).send().await.expect("answers");
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let cookie = answer.headers()["set-cookie"]
        .to_str()
        .expect("a cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let home = |cookie: String| {
        let base = served.base().to_owned();
        async move {
            browser()
                .get(format!("{base}/"))
                .header("cookie", cookie)
                .send()
                .await
                .expect("answers")
                .status()
        }
    };
    assert_eq!(home(cookie).await, StatusCode::OK);
    assert_eq!(
        home(lost).await,
        StatusCode::UNAUTHORIZED,
        "the lost session ends when the new key is used"
    );
    let nobody = tempfile::tempdir().expect("a folder");
    let refused = crate::support::binary()
        .args(["serve", "--new-key", "--workdir"])
        .arg(nobody.path())
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        crate::support::stderr(&refused).contains("no serve is running"),
        "{}",
        crate::support::stderr(&refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_in_an_environment_pingone_refuses_says_so_and_grants_only_the_others() {
    let simulator = start(SimulatorConfig {
        forbidden_environments: [crate::support::ENV_B].into_iter().collect(),
        ..SimulatorConfig::default()
    })
    .await;
    let served = serve_with(worker_app_settings(&simulator), &["--rate", "1000"]).await;
    let cookie = sign_in(&served).await;
    let csv = format!(
        "envID,userID\n{ENV_A},{}\n{},{}\n",
        Uuid::new_v4(),
        crate::support::ENV_B,
        Uuid::new_v4()
    );
    let plan = post_page(
        &served,
        &cookie,
        "/plan",
        upload(csv.into_bytes(), "two.csv"),
    )
    .await;
    assert!(
        plan.contains("id=\"refused\"") && plan.contains("access to the environment of 1 rows"),
        "{plan}"
    );
    assert!(plan.contains("Grant 1 bypass until"), "{plan}");
    let only_refused = format!(
        "envID,userID\n{},{}\n",
        crate::support::ENV_B,
        Uuid::new_v4()
    );
    let plan = post_page(
        &served,
        &cookie,
        "/plan",
        upload(only_refused.into_bytes(), "b.csv"),
    )
    .await;
    assert!(
        plan.contains("id=\"refused\"") && !plan.contains("Grant "),
        "{plan}"
    );
    let granted = confirm_and_follow(&served, &cookie, 1).await;
    assert!(granted.contains("\"succeeded\":1"), "{granted}");
    assert_eq!(
        simulator.stats().total_puts(),
        1,
        "nothing is sent to the refused environment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_told_to_stop_records_its_grants_before_it_ends_and_offers_to_resume_them() {
    let simulator = start(SimulatorConfig {
        latency: Duration::from_millis(5),
        ..SimulatorConfig::default()
    })
    .await;
    let mut served = serve_with(worker_app_settings(&simulator), &["--rate", "40"]).await;
    let cookie = sign_in(&served).await;
    post_page(&served, &cookie, "/plan", upload(users(240), "big.csv")).await;
    let started = browser()
        .post(format!("{}/runs/1/start", served.base()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    eventually("the grant is under way", || {
        simulator.stats().total_puts() >= 20
    })
    .await;
    let code = tokio::task::block_in_place(|| served.terminate());
    assert_eq!(code, Some(0));
    assert!(
        grant_process(&served, 1).is_none(),
        "no grant outlives the server"
    );
    let results = std::fs::read_to_string(served.workdir().join("run-1").join("results.csv"))
        .expect("the grant wrote its results before the server ended");
    let granted = results.matches(",succeeded,").count();
    assert_eq!(
        granted + results.matches(",not_attempted,").count(),
        240,
        "every row is recorded: {results}"
    );
    assert_eq!(granted as u64, simulator.stats().total_puts());

    let (served, cookie) = restarted(served, &simulator).await;
    let page = get_page(&served, &cookie, "/runs/1").await;
    assert!(
        page.contains("finished (exit 130)") && page.contains("id=\"resume\">"),
        "{page}"
    );
}
