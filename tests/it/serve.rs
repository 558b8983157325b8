//! `pingone-bypass serve` through the binary and HTTP: the launch key exchanged for a cookie,
//! refusals without it or from another origin or host, the security headers, the flow
//! (upload, plan, confirm, progress, results) against a simulator whose state the results must
//! match, and a workbook's sheets listed for the form to pick from.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pingone_bypass::simulator::{Population, Simulator, SimulatorConfig};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{ENV_A, start};

pub(crate) struct Served {
    child: Child,
    pub(crate) url: String,
    /// Held until `stop` hands it on.
    workdir: Option<tempfile::TempDir>,
    /// Where the server's standard error goes.
    log: tempfile::NamedTempFile,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    pub(crate) fn base(&self) -> &str {
        self.url.split("/?key=").next().unwrap_or_default()
    }

    pub(crate) fn workdir(&self) -> &std::path::Path {
        self.workdir
            .as_ref()
            .map_or(std::path::Path::new(""), tempfile::TempDir::path)
    }

    /// Asks the server to stop (SIGTERM) and waits for it: its exit code.
    pub(crate) fn terminate(&mut self) -> Option<i32> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        self.child.wait().expect("the server ends").code()
    }

    /// Stops the server as a kill would, and hands back its work folder.
    pub(crate) fn stop(mut self) -> tempfile::TempDir {
        self.workdir
            .take()
            .expect("the work folder is held until now")
    }

    /// What the server has written to standard error so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

/// `serve` against `simulator` as its worker application, and the URL it printed.
async fn serve(simulator: &Simulator, extra: &[&str]) -> Served {
    serve_with(crate::support::worker_app_settings(simulator), extra).await
}

/// `serve <extra>` with only `settings` in its environment, and the URL it printed.
pub(crate) async fn serve_with(
    settings: impl IntoIterator<Item = (&'static str, String)>,
    extra: &[&str],
) -> Served {
    serve_in(tempfile::tempdir().expect("a work folder"), settings, extra).await
}

/// `serve <extra>` on the work folder `workdir` (one an earlier server used, say).
pub(crate) async fn serve_in(
    workdir: tempfile::TempDir,
    settings: impl IntoIterator<Item = (&'static str, String)>,
    extra: &[&str],
) -> Served {
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let mut child = crate::support::binary_blocking()
        .arg("serve")
        .arg("--workdir")
        .arg(workdir.path())
        .args(extra)
        .envs(settings)
        .stdout(Stdio::piped())
        .stderr(log.reopen().expect("the log file opens"))
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let line = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        }),
    )
    .await
    .expect("the url arrives within ten seconds")
    .expect("the reader finishes")
    .expect("stdout is readable");
    let url = line
        .trim()
        .strip_prefix("url: ")
        .expect("the line is `url: ...`")
        .to_owned();
    Served {
        child,
        url,
        workdir: Some(workdir),
        log,
    }
}

pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// The page a multipart `form` posted to `path` answers with.
pub(crate) async fn post_page(
    served: &Served,
    cookie: &str,
    path: &str,
    form: reqwest::multipart::Form,
) -> String {
    browser()
        .post(format!("{}{path}", served.base()))
        .header("cookie", cookie)
        .multipart(form)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("the page")
}

/// The page at `path`, as the signed-in browser gets it.
pub(crate) async fn get_page(served: &Served, cookie: &str, path: &str) -> String {
    browser()
        .get(format!("{}{path}", served.base()))
        .header("cookie", cookie)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("the page")
}

/// Presses run `run`'s confirm button and follows its events until it is done.
pub(crate) async fn confirm_and_follow(served: &Served, cookie: &str, run: u64) -> String {
    let started = browser()
        .post(format!("{}/runs/{run}/start", served.base()))
        .header("cookie", cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    events_until_done(served, cookie, run).await
}

/// Run `run`'s server-sent events, read until its `done` event.
pub(crate) async fn events_until_done(served: &Served, cookie: &str, run: u64) -> String {
    let mut events = browser()
        .get(format!("{}/runs/{run}/events", served.base()))
        .header("cookie", cookie)
        .send()
        .await
        .expect("answers");
    let mut stream = String::new();
    while !stream.contains("event: done") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), events.chunk())
            .await
            .expect("progress within twenty seconds")
            .expect("the stream is readable")
            .expect("the stream goes on until done");
        stream.push_str(&String::from_utf8_lossy(&chunk));
    }
    stream
}

/// Opens the printed URL and returns the session cookie it sets.
pub(crate) async fn sign_in(served: &Served) -> String {
    let response = browser().get(&served.url).send().await.expect("answers");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"].to_str().ok(),
        Some("/"),
        "the key leaves the address bar"
    );
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("a cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_launch_keys_browser_from_this_address_gets_in() {
    let simulator = start(SimulatorConfig::default()).await;
    let served = serve(&simulator, &[]).await;
    let client = browser();
    let home = format!("{}/", served.base());
    assert_eq!(
        client.get(&home).send().await.expect("answers").status(),
        StatusCode::UNAUTHORIZED
    );
    let cookie = sign_in(&served).await;
    assert_eq!(
        client
            .get(&served.url)
            .send()
            .await
            .expect("answers")
            .status(),
        StatusCode::FORBIDDEN,
        "the key works once"
    );
    let page = client
        .get(&home)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
        "{policy}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    for (name, value) in [("origin", "http://evil.example"), ("host", "evil.example")] {
        let refused = client
            .get(&home)
            .header("cookie", &cookie)
            .header(name, value)
            .send()
            .await
            .expect("answers");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{name}: {value}");
    }
    let name = cookie.split('=').next().unwrap_or_default();
    let refused = client
        .post(format!("{}/plan", served.base()))
        .header("cookie", format!("{name}=guessed"))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_listen_address_is_refused() {
    let simulator = start(SimulatorConfig::default()).await;
    let output = crate::support::binary()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env("PINGONE_API_URL", simulator.api_url())
        .env("PINGONE_API_ACCESS_TOKEN", "a-token")
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a loopback address"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_planned_confirmed_granted_and_its_results_match_the_tenant() {
    let missing = Uuid::new_v4();
    let simulator = start(SimulatorConfig {
        population: Population::AllExcept([missing].into_iter().collect()),
        ..SimulatorConfig::default()
    })
    .await;
    let served = serve(&simulator, &["--rate", "1000"]).await;
    let cookie = sign_in(&served).await;
    let client = browser();
    let users: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut csv = String::from("envID,userID,ticket\n");
    for user in &users {
        csv.push_str(&format!("{ENV_A},{user},T\n"));
    }
    csv.push_str(&format!("{ENV_A},not-a-user,T\n{ENV_A},{missing},T\n"));
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("outage.csv"),
        )
        .text("until", "8h");
    let plan = client
        .post(format!("{}/plan", served.base()))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .await
        .expect("answers");
    assert_eq!(plan.status(), StatusCode::OK);
    let page = plan.text().await.expect("the plan page");
    assert!(page.contains("5 rows: 4 to grant, 1 invalid"), "{page}");
    assert!(page.contains("Grant 4 bypasses until "), "{page}");
    assert!(page.contains("not-a-user&quot; is not a UUID"), "{page}");
    assert_eq!(simulator.stats().total_puts(), 0, "the plan grants nothing");

    let stream = confirm_and_follow(&served, &cookie, 1).await;
    assert!(stream.contains("\"succeeded\":3"), "{stream}");
    let attention = format!("\"status\":\"failed\",\"user_id\":\"{missing}\"");
    assert!(
        stream.contains(&attention),
        "the row that failed is listed as it finishes: {stream}"
    );
    let late = events_until_done(&served, &cookie, 1).await;
    assert!(
        late.contains(&attention) && late.contains("\"attention_from\":0"),
        "a page opened after the run still lists it, from the first: {late}"
    );

    let results = client
        .get(format!("{}/runs/1/results.csv", served.base()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("the results");
    let mut reader = csv::Reader::from_reader(results.as_bytes());
    let header = reader.headers().expect("a header").clone();
    let status_at = header
        .iter()
        .position(|name| name == "status")
        .expect("status");
    let user_at = header
        .iter()
        .position(|name| name == "user_id")
        .expect("user_id");
    let until_at = header
        .iter()
        .position(|name| name == "bypass_mfa_enabled_until")
        .expect("until");
    let mut granted = 0;
    for record in reader.records() {
        let record = record.expect("a row");
        let user = Uuid::parse_str(&record[user_at]).expect("a user ID");
        if &record[status_at] == "succeeded" {
            granted += 1;
            let stored = simulator
                .bypass(ENV_A, user)
                .expect("the tenant has the bypass");
            assert_eq!(
                pingone_bypass::pingone::format_bypass_until(stored),
                record[until_at]
            );
        } else {
            assert_eq!(user, missing);
            assert_eq!(simulator.bypass(ENV_A, user), None);
        }
    }
    assert_eq!(granted, 3);
    assert_eq!(simulator.stats().total_puts(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_reads_the_uploaded_users_bypasses_back() {
    let simulator = start(SimulatorConfig::default()).await;
    let (active, none) = (Uuid::new_v4(), Uuid::new_v4());
    simulator.store_bypass(
        ENV_A,
        active,
        chrono::Utc::now() + chrono::Duration::hours(2),
    );
    let served = serve(&simulator, &[]).await;
    let cookie = sign_in(&served).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(
            format!("envID,userID\n{ENV_A},{active}\n{ENV_A},{none}\n").into_bytes(),
        )
        .file_name("check.csv"),
    );
    let page = post_page(&served, &cookie, "/status", form).await;
    assert!(
        page.contains("2 rows: 1 active, 1 none, 0 failed, 0 invalid"),
        "{page}"
    );
    assert_eq!(simulator.stats().total_puts(), 0);
}

/// A workbook of two sheets whose second holds the users, as the helpdesk's export might.
pub fn two_sheet_workbook(users: &[Uuid]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let notes = workbook.add_worksheet().set_name("Notes").expect("a name");
    notes.write_string(0, 0, "read me").expect("written");
    let sheet = workbook
        .add_worksheet()
        .set_name("Locked out")
        .expect("a name");
    for (column, name) in ["envID", "userID", "until"].iter().enumerate() {
        sheet
            .write_string(0, column as u16, *name)
            .expect("written");
    }
    for (index, user) in users.iter().enumerate() {
        let row = index as u32 + 1;
        sheet
            .write_string(row, 0, ENV_A.to_string())
            .expect("written");
        sheet
            .write_string(row, 1, user.to_string())
            .expect("written");
        sheet.write_string(row, 2, "8h").expect("written");
    }
    workbook.save_to_buffer().expect("the workbook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_a_workbooks_sheets_and_plans_the_one_picked() {
    let simulator = start(SimulatorConfig::default()).await;
    let served = serve(&simulator, &[]).await;
    let cookie = sign_in(&served).await;
    let users: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    let workbook = two_sheet_workbook(&users);
    let upload = |bytes: Vec<u8>, name: &str| {
        reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        )
    };
    let listed: serde_json::Value = browser()
        .post(format!("{}/sheets", served.base()))
        .header("cookie", &cookie)
        .multipart(upload(workbook.clone(), "export.xlsx"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed["sheets"], serde_json::json!(["Notes", "Locked out"]));

    let not_a_workbook = browser()
        .post(format!("{}/sheets", served.base()))
        .header("cookie", &cookie)
        .multipart(upload(b"envID,userID\n".to_vec(), "export.xlsx"))
        .send()
        .await
        .expect("answers");
    assert_eq!(not_a_workbook.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: serde_json::Value = not_a_workbook.json().await.expect("JSON");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|message| message.contains("not a workbook")),
        "{error}"
    );

    let plan = post_page(
        &served,
        &cookie,
        "/plan",
        upload(workbook, "export.xlsx").text("sheet", "Locked out"),
    )
    .await;
    assert!(plan.contains("2 rows: 2 to grant, 0 invalid"), "{plan}");
    assert!(plan.contains(&users[1].to_string()), "{plan}");
    assert_eq!(
        simulator.stats().total_puts(),
        0,
        "listing and planning grant nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_simulate_needs_no_credentials_and_grants_on_its_own_simulator() {
    // Nothing of PingOne in the environment: the page runs against the simulator it starts.
    let served = serve_with(Vec::new(), &["--simulate"]).await;
    let cookie = sign_in(&served).await;
    let home = browser()
        .get(format!("{}/", served.base()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("the page");
    assert!(
        home.contains("Requests go to the built-in simulator started with this server."),
        "{home}"
    );
    let mut csv = String::from("envID,userID\n");
    for _ in 0..3 {
        csv.push_str(&format!("{ENV_A},{}\n", Uuid::new_v4()));
    }
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("outage.csv"),
        )
        .text("until", "2h");
    let plan = post_page(&served, &cookie, "/plan", form).await;
    assert!(plan.contains("3 rows: 3 to grant, 0 invalid"), "{plan}");
    let stream = confirm_and_follow(&served, &cookie, 1).await;
    assert!(stream.contains("\"succeeded\":3"), "{stream}");
}

/// Posts an empty form to `path` (a button of the page), as the signed-in browser does.
async fn press(served: &Served, cookie: &str, path: &str) -> reqwest::Response {
    browser()
        .post(format!("{}{path}", served.base()))
        .header("cookie", cookie)
        .send()
        .await
        .expect("answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_grant_is_ended_from_its_page_through_a_plan_and_a_confirmation() {
    // A user the tenant does not have: its grant fails, so the end does not touch it.
    let missing = Uuid::new_v4();
    let simulator = start(SimulatorConfig {
        population: Population::AllExcept([missing].into_iter().collect()),
        ..SimulatorConfig::default()
    })
    .await;
    let served = serve(&simulator, &["--rate", "1000"]).await;
    let cookie = sign_in(&served).await;
    let users: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut csv = String::from("envID,userID\n");
    for user in &users {
        csv.push_str(&format!("{ENV_A},{user}\n"));
    }
    csv.push_str(&format!("{ENV_A},{missing}\n"));
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("outage.csv"),
        )
        .text("until", "8h");
    let plan = post_page(&served, &cookie, "/plan", form).await;
    assert!(plan.contains("4 rows: 4 to grant, 0 invalid"), "{plan}");
    confirm_and_follow(&served, &cookie, 1).await;
    let finished = get_page(&served, &cookie, "/runs/1").await;
    assert!(
        finished.contains("action=\"/runs/1/end\" id=\"end\">"),
        "a finished grant offers its end, shown: {finished}"
    );

    let end_plan = press(&served, &cookie, "/runs/1/end").await;
    assert_eq!(end_plan.status(), StatusCode::OK);
    let end_plan = end_plan.text().await.expect("the end's plan");
    assert!(
        end_plan.contains("End 3 bypasses in 1 minute"),
        "{end_plan}"
    );
    assert!(
        end_plan.contains("4 rows: 3 to end, 1 skipped (1 not granted by the run"),
        "{end_plan}"
    );
    assert_eq!(
        simulator.stats().total_puts(),
        4,
        "the plan of an end PUTs nothing"
    );

    let stream = confirm_and_follow(&served, &cookie, 2).await;
    assert!(stream.contains("\"ended\":3"), "{stream}");
    let results = get_page(&served, &cookie, "/runs/2/results.csv").await;
    let mut reader = csv::Reader::from_reader(results.as_bytes());
    let statuses: Vec<String> = reader
        .records()
        .map(|record| record.expect("a row")[3].to_owned())
        .collect();
    assert_eq!(statuses, ["ended", "ended", "ended", "skipped"]);
    let within_a_minute = chrono::Utc::now() + chrono::Duration::minutes(1);
    for user in &users {
        let until = simulator.bypass(ENV_A, *user).expect("a bypass");
        assert!(
            until <= within_a_minute,
            "{user} ends within the minute: {until}"
        );
    }
    assert_eq!(
        simulator.stats().total_puts(),
        7,
        "three ends, none for the user not granted"
    );

    let workdir = served.stop();
    let restarted = serve_in(
        workdir,
        crate::support::worker_app_settings(&simulator),
        &[],
    )
    .await;
    let cookie = sign_in(&restarted).await;
    let home = get_page(&restarted, &cookie, "/").await;
    assert!(
        home.contains("Run 2: end of outage.csv</a> — finished (exit 0): 3 ended, 1 skipped"),
        "a restarted server lists the end: {home}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_pages_active_bypasses_can_be_ended_the_same_way() {
    let simulator = start(SimulatorConfig::default()).await;
    let (active, none) = (Uuid::new_v4(), Uuid::new_v4());
    simulator.store_bypass(
        ENV_A,
        active,
        chrono::Utc::now() + chrono::Duration::hours(2),
    );
    let served = serve(&simulator, &[]).await;
    let cookie = sign_in(&served).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(
            format!("envID,userID\n{ENV_A},{active}\n{ENV_A},{none}\n").into_bytes(),
        )
        .file_name("check.csv"),
    );
    let page = post_page(&served, &cookie, "/status", form).await;
    assert!(page.contains("action=\"/runs/1/end\""), "{page}");
    let end_plan = press(&served, &cookie, "/runs/1/end")
        .await
        .text()
        .await
        .expect("the end's plan");
    assert!(end_plan.contains("End 1 bypass in 1 minute"), "{end_plan}");
    assert!(end_plan.contains("1 with no bypass"), "{end_plan}");
    let stream = confirm_and_follow(&served, &cookie, 2).await;
    assert!(stream.contains("\"ended\":1"), "{stream}");
    assert_eq!(simulator.stats().puts_for(ENV_A, active), 1);
    assert_eq!(
        simulator.stats().puts_for(ENV_A, none),
        0,
        "no bypass is created"
    );
}
