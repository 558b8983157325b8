//! The upload page in a real browser (Debian's `chromium`, driven through `chromedriver` with
//! WebDriver): upload a file with invalid rows, read the plan, confirm, wait for the run to
//! finish, download the results and compare them with the simulator's state; a workbook's
//! sheets listed when it is chosen, and the one picked planned; and a request without the key,
//! or from a foreign origin, refused; and the end checked against PingOne's audit log. Screenshots of the steps are written to
//! `docs/screenshots/`.
//!
//! These need the browser, so they are `#[ignore]`d in `cargo test`; `.ci/run` installs
//! `chromium` and `chromium-driver` and runs them with `--ignored browser`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use pingone_bypass::simulator::{Population, Simulator, SimulatorConfig};
use uuid::Uuid;

use crate::support::{ENV_A, start};

/// A process killed when the test ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `chromedriver` on the port it picks itself (`--port=0`, read back from the line it prints),
/// and a headless Chromium session through it.
async fn browser() -> (Process, Client) {
    use std::io::BufRead;
    let mut driver = Command::new("chromedriver")
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is installed (apt-get install chromium chromium-driver)");
    let stdout = driver.stdout.take().expect("stdout is piped");
    let driver = Process(driver);
    let mut said = String::new();
    let mut lines = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok);
    let port = lines
        .by_ref()
        .find_map(|line| {
            said.push_str(&line);
            said.push('\n');
            line.split("started successfully on port ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok())
        })
        .unwrap_or_else(|| panic!("chromedriver named no port; it said: {said}"));
    // Whatever it prints later is read, so that a full pipe never stops it.
    std::thread::spawn(move || lines.for_each(drop));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(error) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no browser session: {error}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// `serve` against `simulator`, and the URL it printed.
fn serve(simulator: &Simulator, workdir: &std::path::Path) -> (Process, String) {
    use std::io::BufRead;
    let mut child = crate::support::binary_blocking()
        .args(["serve", "--rate", "1000", "--workdir"])
        .arg(workdir)
        .envs(crate::support::worker_app_settings(simulator))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the url line");
    let url = line.trim().trim_start_matches("url: ").to_owned();
    (Process(child), url)
}

/// Chooses `path` in the upload form's file picker, once the page shows it.
async fn choose_file(browser: &Client, path: &std::path::Path) {
    browser
        .wait()
        .for_element(Locator::Css("input[type=file]"))
        .await
        .expect("the file picker")
        .send_keys(&path.display().to_string())
        .await
        .expect("the file is chosen");
}

/// Presses "Check the file" and returns the plan's counts line.
async fn check_the_file(browser: &Client) -> String {
    browser
        .find(Locator::Css("#upload button"))
        .await
        .expect("the check button")
        .click()
        .await
        .expect("clicked");
    browser
        .wait()
        .for_element(Locator::Id("counts"))
        .await
        .expect("the plan")
        .text()
        .await
        .expect("its text")
}

fn screenshot(name: &str, png: &[u8]) {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/screenshots");
    let _ = std::fs::create_dir_all(folder);
    std::fs::write(format!("{folder}/{name}.png"), png).expect("the screenshot is written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver; .ci/run runs it"]
async fn browser_uploads_plans_confirms_and_downloads_results_that_match_the_tenant() {
    let missing = Uuid::new_v4();
    let simulator = start(SimulatorConfig {
        population: Population::AllExcept([missing].into_iter().collect()),
        latency: Duration::from_millis(20),
        ..SimulatorConfig::default()
    })
    .await;
    let workdir = tempfile::tempdir().expect("a work folder");
    let (_server, url) = serve(&simulator, workdir.path());
    let base = url.split("/?key=").next().unwrap_or_default().to_owned();
    let users: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let mut csv = String::from("envID,userID,until,ticket\n");
    for user in &users {
        csv.push_str(&format!("{ENV_A},{user},8h,INC-7\n"));
    }
    csv.push_str(&format!(
        "{ENV_A},jdoe@example.com,8h,INC-7\n{ENV_A},{},30d,INC-7\n{ENV_A},{missing},8h,INC-7\n",
        Uuid::new_v4()
    ));
    let upload = workdir.path().join("outage.csv");
    std::fs::write(&upload, csv).expect("the upload");

    let (_driver, browser) = browser().await;
    browser.goto(&url).await.expect("the page opens");
    assert_eq!(
        browser.current_url().await.expect("a url").as_str(),
        format!("{base}/"),
        "the key is gone from the address bar"
    );
    screenshot(
        "1-upload",
        &browser.screenshot().await.expect("a screenshot"),
    );
    choose_file(&browser, &upload).await;
    let counts = check_the_file(&browser).await;
    assert_eq!(
        counts,
        "8 rows: 6 to grant, 2 invalid, 0 skipped, 0 not found or ambiguous."
    );
    let page = browser.source().await.expect("the plan page");
    assert!(page.contains("is not a UUID"), "the invalid rows are shown");
    assert!(
        page.contains("later than this server allows (7days from now at most)"),
        "with their messages, in the page's words"
    );
    screenshot("2-plan", &browser.screenshot().await.expect("a screenshot"));
    let confirm = browser
        .find(Locator::Id("confirm"))
        .await
        .expect("the confirm button");
    assert!(
        confirm
            .text()
            .await
            .expect("its label")
            .starts_with("Grant 6 bypasses until "),
        "the button says what it does"
    );
    confirm.click().await.expect("confirmed");
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("body[data-finished=true]"))
        .await
        .expect("the run finishes");
    let numbers = browser
        .find(Locator::Id("numbers"))
        .await
        .expect("the numbers")
        .text()
        .await
        .expect("their text");
    assert_eq!(
        numbers,
        "6 rows: 5 succeeded, 1 failed, 0 invalid, 0 not attempted"
    );
    let attention = browser
        .find_all(Locator::Css("#attention tbody tr"))
        .await
        .expect("the rows that need attention");
    assert!(
        !browser
            .find(Locator::Id("stop"))
            .await
            .expect("the stop button")
            .is_displayed()
            .await
            .expect("its visibility"),
        "a finished run offers no stop"
    );
    assert_eq!(attention.len(), 1, "the one user that does not exist");
    let listed = attention[0].text().await.expect("its text");
    assert!(
        listed.contains(&missing.to_string()) && listed.contains("failed"),
        "{listed}"
    );
    screenshot(
        "3-finished",
        &browser.screenshot().await.expect("a screenshot"),
    );

    // The download, with the browser's own session.
    let cookie = browser
        .get_all_cookies()
        .await
        .expect("the cookies")
        .into_iter()
        .map(|cookie| format!("{}={}", cookie.name(), cookie.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let href = browser
        .find(Locator::Id("results"))
        .await
        .expect("the download link")
        .attr("href")
        .await
        .expect("an href")
        .expect("a link");
    let results = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client")
        .get(format!("{base}{href}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("the download")
        .text()
        .await
        .expect("the results");
    let mut reader = csv::Reader::from_reader(results.as_bytes());
    let header = reader.headers().expect("a header").clone();
    let at = |name: &str| header.iter().position(|column| column == name).expect(name);
    let (status, user, until) = (at("status"), at("user_id"), at("bypass_mfa_enabled_until"));
    let mut succeeded = 0;
    for record in reader.records().map(|record| record.expect("a row")) {
        let id = Uuid::parse_str(&record[user]).expect("a user ID");
        match &record[status] {
            "succeeded" => {
                succeeded += 1;
                assert_eq!(
                    simulator
                        .bypass(ENV_A, id)
                        .map(pingone_bypass::pingone::format_bypass_until)
                        .as_deref(),
                    Some(&record[until])
                );
            }
            _ => assert_eq!((id, simulator.bypass(ENV_A, id)), (missing, None)),
        }
    }
    assert_eq!(succeeded, 5);

    // The incident is over: the finished run's page, open all along, now offers its end.
    let end = browser
        .find(Locator::Css("#end button"))
        .await
        .expect("the end button");
    assert!(
        end.is_displayed().await.expect("its visibility"),
        "a run that granted offers to end its bypasses once it finishes"
    );
    end.click().await.expect("the end is planned");
    let counts = browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Id("counts"))
        .await
        .expect("the end's plan")
        .text()
        .await
        .expect("its counts");
    assert_eq!(
        counts,
        "6 rows: 5 to end, 1 skipped (1 not granted by the run, 0 with no bypass, 0 ending sooner, 0 changed since), 0 failed, 0 invalid."
    );
    assert_eq!(
        simulator.stats().total_puts(),
        6,
        "planning an end PUTs nothing"
    );
    screenshot(
        "4-end-plan",
        &browser.screenshot().await.expect("a screenshot"),
    );
    let confirm = browser
        .find(Locator::Id("confirm"))
        .await
        .expect("the confirm button");
    assert_eq!(
        confirm.text().await.expect("its label"),
        "End 5 bypasses in 1 minute"
    );
    confirm.click().await.expect("confirmed");
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("body[data-finished=true]"))
        .await
        .expect("the end finishes");
    let numbers = browser
        .find(Locator::Id("numbers"))
        .await
        .expect("the numbers")
        .text()
        .await
        .expect("their text");
    assert_eq!(
        numbers,
        "6 rows: 5 ended, 1 skipped, 0 failed, 0 invalid, 0 not attempted"
    );
    screenshot(
        "5-ended",
        &browser.screenshot().await.expect("a screenshot"),
    );

    // The auditor's question: PingOne's own record of the end, checked from its page.
    let audit = browser
        .find(Locator::Css("#audit button"))
        .await
        .expect("the audit check's button");
    assert!(
        audit.is_displayed().await.expect("its visibility"),
        "a finished end offers the check against PingOne's audit log"
    );
    audit.click().await.expect("the check starts");
    let confirmed = browser
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Id("confirmed"))
        .await
        .expect("the verdicts")
        .text()
        .await
        .expect("the count");
    assert_eq!(confirmed, "5", "every end is in PingOne's audit log");
    let verdict = browser
        .find(Locator::Id("audit-verdict"))
        .await
        .expect("the verdict")
        .text()
        .await
        .expect("its text");
    assert!(
        verdict.starts_with("PingOne's audit log agrees"),
        "{verdict}"
    );
    screenshot(
        "6-audit",
        &browser.screenshot().await.expect("a screenshot"),
    );
    let within_a_minute = chrono::Utc::now() + chrono::Duration::minutes(1);
    for user in &users {
        let until = simulator.bypass(ENV_A, *user).expect("a bypass");
        assert!(
            until <= within_a_minute,
            "{user}'s bypass ends within the minute"
        );
    }
    browser.close().await.expect("the session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver; .ci/run runs it"]
async fn browser_without_the_key_or_from_another_origin_is_refused() {
    let simulator = start(SimulatorConfig::default()).await;
    let workdir = tempfile::tempdir().expect("a work folder");
    let (_server, url) = serve(&simulator, workdir.path());
    let base = url.split("/?key=").next().unwrap_or_default().to_owned();
    let (_driver, browser) = browser().await;
    browser
        .goto(&format!("{base}/"))
        .await
        .expect("the page answers");
    // Waited for, as every page read here is: a loaded machine may still be loading it.
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//body[contains(., 'open the address serve printed')]",
        ))
        .await
        .expect("without the key, the page says how to sign in");
    browser.goto(&url).await.expect("signed in");
    let heading = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("h1"))
        .await
        .expect("with the key, the page opens")
        .text()
        .await
        .expect("its heading");
    assert_eq!(heading, "Grant MFA bypasses from a file");
    // Another site's page sending its request here: its Origin is refused.
    let foreign = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client")
        .get(format!("{base}/"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("answers");
    assert_eq!(foreign.status(), reqwest::StatusCode::FORBIDDEN);
    browser.close().await.expect("the session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver; .ci/run runs it"]
async fn browser_lists_a_chosen_workbooks_sheets_and_plans_the_one_picked() {
    let simulator = start(SimulatorConfig::default()).await;
    let workdir = tempfile::tempdir().expect("a work folder");
    let (_server, url) = serve(&simulator, workdir.path());
    let users: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    let upload = workdir.path().join("export.xlsx");
    std::fs::write(&upload, crate::serve::two_sheet_workbook(&users)).expect("the upload");
    let (_driver, browser) = browser().await;
    browser.goto(&url).await.expect("the page opens");
    choose_file(&browser, &upload).await;
    let sheets = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("select.sheets[data-listed=true]"))
        .await
        .expect("the workbook's sheets are listed");
    assert_eq!(
        sheets.text().await.expect("the choices"),
        "1. Notes\n2. Locked out"
    );
    sheets
        .select_by_value("Locked out")
        .await
        .expect("the second sheet is picked");
    let counts = check_the_file(&browser).await;
    assert_eq!(
        counts,
        "2 rows: 2 to grant, 0 invalid, 0 skipped, 0 not found or ambiguous."
    );
    browser.close().await.expect("the session ends");
}
