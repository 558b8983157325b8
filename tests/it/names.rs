//! Users as admins name them, through the binary: usernames and emails resolved to IDs with
//! batched, escaped lookups (paged, with a fallback when PingOne refuses batches), names that
//! match nobody or several users, `--dry-run --resolve`, whole populations and groups bounded by
//! `--max-users`, and `--resume` by the name as written.

use std::process::Output;

use pingone_bypass::simulator::{DirectoryUser, Population, Simulator, SimulatorConfig};
use uuid::Uuid;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

use crate::support::{
    ENV_A, ENV_B, column, read_results, run_command, run_files, start, stderr, with_worker_app,
};

fn member(environment: Uuid, username: &str, email: &str, population: &str) -> DirectoryUser {
    DirectoryUser {
        environment_id: environment,
        id: Uuid::new_v4(),
        username: username.to_owned(),
        email: email.to_owned(),
        population: population.to_owned(),
        groups: Vec::new(),
    }
}

/// A tenant whose directory is `users`; only they exist.
async fn tenant(users: &[DirectoryUser], refuse_or_filters: bool) -> Simulator {
    start(SimulatorConfig {
        population: Population::Only(users.to_vec()),
        refuse_or_filters,
        ..SimulatorConfig::default()
    })
    .await
}

async fn run(simulator: &Simulator, input: &std::path::Path, extra: &[&str]) -> Output {
    run_command(simulator, input, extra)
        .output()
        .await
        .expect("the binary runs")
}

/// `pingone-bypass run --<flag> <named> --env ENV_A --until 8h --max-users <most> -o
/// <results> <extra>`, without INPUT, as the simulator's worker app.
async fn run_selection(
    simulator: &Simulator,
    [flag, named, most]: [&str; 3],
    results: &std::path::Path,
    extra: &[&str],
) -> Output {
    let mut command = crate::support::binary();
    command
        .arg("run")
        .args(["--progress", "never", flag, named, "--max-users", most])
        .args(["--env", &ENV_A.to_string(), "--until", "8h"])
        .arg("-o")
        .arg(results)
        .args(extra);
    with_worker_app(&mut command, simulator);
    command.kill_on_drop(true);
    command.output().await.expect("the binary runs")
}

/// `pingone-bypass run INPUT` against a mock PingOne, with a ready token.
async fn run_with_token(server: &MockServer, input: &std::path::Path) -> Output {
    crate::support::binary()
        .arg("run")
        .arg(input)
        .args(["--progress", "never"])
        .args(["--api-url", &format!("{}/v1", server.uri())])
        .env("PINGONE_API_ACCESS_TOKEN", "a-token")
        .output()
        .await
        .expect("the binary runs")
}

/// `count` users in `ENV_A`, `user0` … with emails to match.
fn numbered_users(count: usize) -> Vec<DirectoryUser> {
    (0..count)
        .map(|n| {
            member(
                ENV_A,
                &format!("user{n}"),
                &format!("user{n}@example.com"),
                "",
            )
        })
        .collect()
}

fn summary(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the summary is written");
    serde_json::from_str(&text).expect("the summary is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_and_emails_resolve_to_ids_and_only_those_users_get_a_bypass() {
    let ada = member(ENV_A, "ada", "ada@example.com", "");
    let alan = member(ENV_A, "alan", "turing@example.com", "");
    let alan_too = member(ENV_A, "a.turing", "turing@example.com", "");
    let grace = member(ENV_B, "grace", "grace@example.com", "");
    let users = [ada.clone(), alan.clone(), alan_too.clone(), grace.clone()];
    let simulator = tenant(&users, false).await;
    let files = run_files(&format!(
        "envID,userID,userName,E-Mail,until,ticket\n\
         {ENV_A},,ADA,,8h,T-1\n\
         {ENV_A},,,turing@example.com,8h,T-2\n\
         {ENV_A},,nobody,,8h,T-3\n\
         {ENV_B},,,grace@example.com,8h,T-4\n\
         {ENV_A},{},alan,,8h,T-5\n",
        alan.id
    ));
    let summary_path = files.output.with_extension("summary.json");
    let output = run(
        &simulator,
        &files.input,
        &["--summary-json", &summary_path.display().to_string()],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let rows = read_results(&files.output);
    assert_eq!(
        column(&rows, "status"),
        ["succeeded", "failed", "failed", "succeeded", "succeeded"]
    );
    assert_eq!(
        column(&rows, "user_id"),
        [
            ada.id.to_string(),
            String::new(),
            String::new(),
            grace.id.to_string(),
            alan.id.to_string()
        ],
        "resolved IDs fill user_id; unresolved rows leave it empty"
    );
    assert_eq!(
        column(&rows, "error_code"),
        ["", "AMBIGUOUS_USER", "USER_NOT_FOUND", "", ""]
    );
    assert!(
        rows[1]["error_message"].starts_with("2 users have email \"turing@example.com\""),
        "{}",
        rows[1]["error_message"]
    );
    assert_eq!(
        column(&rows, "userName"),
        ["ADA", "", "nobody", "", "alan"],
        "the names are carried through as written"
    );
    assert_eq!(column(&rows, "ticket"), ["T-1", "T-2", "T-3", "T-4", "T-5"]);

    let stats = simulator.stats();
    assert_eq!(
        stats.total_puts(),
        3,
        "no PUT for a name that is not one user"
    );
    for user in [&ada, &grace, &alan] {
        assert_eq!(stats.puts_for(user.environment_id, user.id), 1);
    }
    assert_eq!(stats.puts_for(ENV_A, alan_too.id), 0);
    let summary = summary(&summary_path);
    assert_eq!(
        summary["lookups"], stats.user_listings,
        "every lookup is counted"
    );
    assert_eq!(
        summary["requests"].as_u64(),
        Some(3 + stats.user_listings),
        "lookups count in requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_tries_to_change_the_filter_is_simply_not_found() {
    let simulator = tenant(&[member(ENV_A, "ada", "ada@example.com", "")], false).await;
    let files = run_files(&format!(
        "env,username,until\n{ENV_A},\"x\"\" or username pr \"\"\",8h\n{ENV_A},a\\\"b\\,8h\n"
    ));
    let output = run(&simulator, &files.input, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&files.output);
    assert_eq!(
        column(&rows, "error_code"),
        ["USER_NOT_FOUND", "USER_NOT_FOUND"]
    );
    assert_eq!(simulator.stats().total_puts(), 0);
    assert_eq!(
        simulator.stats().responses(400),
        0,
        "every filter was well formed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_and_backslashes_in_a_name_are_escaped_in_the_filter_sent() {
    let server = MockServer::start().await;
    Mock::given(matchers::method("GET"))
        .and(matchers::path(format!("/v1/environments/{ENV_A}/users")))
        .and(matchers::query_param(
            "filter",
            r#"username eq "x\" or username pr \"" or username eq "a\\\"b\\""#,
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"_embedded": {"users": []}, "count": 0})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let files = run_files(&format!(
        "env,username,until\n{ENV_A},\"x\"\" or username pr \"\"\",8h\n{ENV_A},a\\\"b\\,8h\n"
    ));
    let output = run_with_token(&server, &files.input).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        column(&read_results(&files.output), "error_code"),
        ["USER_NOT_FOUND", "USER_NOT_FOUND"]
    );
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_looked_up_in_batches_each_distinct_name_once() {
    let users = numbered_users(60);
    let simulator = tenant(&users, false).await;
    let mut csv = String::from("env,username,until\n");
    for round in 0..2 {
        for user in &users {
            let name = if round == 0 {
                user.username.clone()
            } else {
                user.username.to_uppercase()
            };
            csv.push_str(&format!("{ENV_A},{name},8h\n"));
        }
    }
    let files = run_files(&csv);
    let output = run(&simulator, &files.input, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&files.output);
    assert_eq!(
        column(&rows, "status")
            .iter()
            .filter(|s| **s == "skipped")
            .count(),
        60,
        "the same user named again is a duplicate"
    );
    let stats = simulator.stats();
    assert_eq!(stats.total_puts(), 60);
    assert_eq!(
        stats.user_filter_terms, 60,
        "60 names, each in two spellings, looked up once each"
    );
    assert!(
        stats.user_listings <= 2,
        "60 names need at most 2 lookups of up to 50, not {}",
        stats.user_listings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_whose_answer_spans_pages_is_read_to_its_end() {
    let mut users: Vec<DirectoryUser> = (0..450)
        .map(|n| member(ENV_A, &format!("shared{n}"), "team@example.com", ""))
        .collect();
    let ada = member(ENV_A, "ada", "ada@example.com", "");
    users.push(ada.clone());
    let simulator = tenant(&users, false).await;
    let files = run_files(&format!(
        "env,email,until\n{ENV_A},team@example.com,8h\n{ENV_A},ada@example.com,8h\n"
    ));
    let output = run(&simulator, &files.input, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "status"), ["failed", "succeeded"]);
    assert!(
        rows[0]["error_message"].starts_with("450 users have email"),
        "{}",
        rows[0]["error_message"]
    );
    assert_eq!(rows[1]["user_id"], ada.id.to_string());
    assert_eq!(
        simulator.stats().user_listings,
        3,
        "451 users at 200 a page are three pages, one lookup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_pingone_refuses_batched_filters_names_are_looked_up_alone_from_then_on() {
    let users = numbered_users(200);
    let simulator = tenant(&users, true).await;
    let mut csv = String::from("env,username,until\n");
    for user in &users {
        csv.push_str(&format!("{ENV_A},{},8h\n", user.username));
    }
    let files = run_files(&csv);
    let output = run(&simulator, &files.input, &["--rate", "10000"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(simulator.stats().total_puts(), 200);
    let refused = simulator.stats().responses(400);
    // Without memory, each of the four batches of 50 would be refused, and so would each of
    // the five batches of 10 it splits into: 24 refusals. With it, the batch size drops for
    // every batch not yet sent; batches already on their way can still meet one refusal each,
    // which, depending on how the names are dispatched, allows at most 17.
    assert!(
        (1..=17).contains(&refused),
        "after a refusal the smaller size is remembered: {refused} batches refused (without memory, 24)"
    );
    assert_eq!(
        simulator.stats().user_filter_terms,
        200,
        "in the end every name was looked up alone, once"
    );
    assert_eq!(
        stderr(&output)
            .matches("PingOne refused a lookup of several names")
            .count(),
        2,
        "the run says once for each step down (50 → 10 → 1)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_resolves_names_only_with_resolve_and_never_puts() {
    let ada = member(ENV_A, "ada", "ada@example.com", "");
    let simulator = tenant(std::slice::from_ref(&ada), false).await;
    let files = run_files(&format!("env,username,until\n{ENV_A},ada,8h\n"));

    let output = run(&simulator, &files.input, &["--dry-run"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&files.plan);
    assert_eq!(
        (rows[0]["status"].as_str(), rows[0]["user_id"].as_str()),
        ("planned", "")
    );
    assert!(rows[0]["error_message"].contains("--dry-run --resolve"));
    assert_eq!(
        (
            simulator.stats().tokens_issued,
            simulator.stats().user_listings
        ),
        (0, 0),
        "--dry-run alone sends nothing at all"
    );

    let output = run(
        &simulator,
        &files.input,
        &["--dry-run", "--resolve", "--overwrite"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&files.plan);
    assert_eq!(
        (rows[0]["status"].as_str(), rows[0]["user_id"].as_str()),
        ("planned", ada.id.to_string().as_str())
    );
    let stats = simulator.stats();
    assert_eq!((stats.user_listings, stats.total_puts()), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_matches_rows_by_the_name_as_written_without_looking_them_up_again() {
    let ada = member(ENV_A, "ada", "ada@example.com", "");
    let simulator = tenant(std::slice::from_ref(&ada), false).await;
    let files = run_files(&format!(
        "env,username,until\n{ENV_A},ada,2d\n{ENV_A},nobody,2d\n"
    ));
    let output = run(&simulator, &files.input, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let looked_up = simulator.stats().user_listings;

    let output = run(&simulator, &files.input, &["--resume"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "status"), ["succeeded", "failed"]);
    assert_eq!(rows[0]["user_id"], ada.id.to_string());
    let stats = simulator.stats();
    assert_eq!(stats.total_puts(), 1, "the granted row is not sent again");
    assert_eq!(
        stats.user_filter_terms,
        2 + 1,
        "only the name that failed is looked up again (lookups before: {looked_up})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_population_by_name_gets_a_bypass_for_each_member_in_listing_order() {
    let members: Vec<DirectoryUser> = (0..3)
        .map(|n| {
            member(
                ENV_A,
                &format!("c{n}"),
                &format!("c{n}@example.com"),
                "Contractors",
            )
        })
        .collect();
    let mut users = members.clone();
    users.push(member(ENV_A, "e0", "e0@example.com", "Employees"));
    let simulator = tenant(&users, false).await;
    let folder = tempfile::tempdir().expect("a folder");
    let output_path = folder.path().join("contractors.results.csv");
    let output = run_selection(
        &simulator,
        ["--population", "Contractors", "3"],
        &output_path,
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = read_results(&output_path);
    assert_eq!(column(&rows, "row"), ["2", "3", "4"]);
    let listed: Vec<String> = members.iter().map(|user| user.id.to_string()).collect();
    assert_eq!(column(&rows, "user_id"), listed);
    assert_eq!(column(&rows, "username"), ["c0", "c1", "c2"]);
    assert_eq!(simulator.stats().total_puts(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_larger_than_max_users_sends_nothing_and_says_how_many_it_holds_and_resumes() {
    let mut members: Vec<DirectoryUser> = (0..5)
        .map(|n| member(ENV_A, &format!("h{n}"), &format!("h{n}@example.com"), ""))
        .collect();
    for user in &mut members {
        user.groups = vec!["Helpdesk".to_owned()];
    }
    let simulator = tenant(&members, false).await;
    let group_id = pingone_bypass::simulator::directory_object_id(ENV_A, "Helpdesk").to_string();
    let folder = tempfile::tempdir().expect("a folder");
    let output_path = folder.path().join("helpdesk.results.csv");
    let output = run_selection(&simulator, ["--group", &group_id, "4"], &output_path, &[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("holds 5 users, more than --max-users 4; nothing was sent"),
        "{}",
        stderr(&output)
    );
    assert_eq!(simulator.stats().total_puts(), 0);
    assert!(
        !output_path.exists(),
        "no results file for a run that sent nothing"
    );

    let output = run_selection(&simulator, ["--group", &group_id, "5"], &output_path, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(simulator.stats().total_puts(), 5);

    let output = run_selection(
        &simulator,
        ["--group", &group_id, "5"],
        &output_path,
        &["--resume"],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        simulator.stats().total_puts(),
        5,
        "a resumed selection sends none of its granted members again"
    );
    assert_eq!(read_results(&output_path).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_population_name_that_matches_nothing_is_a_usage_error() {
    let simulator = tenant(&[member(ENV_A, "a", "a@example.com", "Employees")], false).await;
    let folder = tempfile::tempdir().expect("a folder");
    let output_path = folder.path().join("x.results.csv");
    let output = run_selection(
        &simulator,
        ["--population", "Contractors", "10"],
        &output_path,
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no population is named \"Contractors\""),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_refused_with_403_fails_its_rows_and_other_environments_go_on() {
    let ada = member(ENV_A, "ada", "ada@example.com", "");
    let grace = member(ENV_B, "grace", "grace@example.com", "");
    let simulator = start(SimulatorConfig {
        population: Population::Only(vec![ada.clone(), grace]),
        forbidden_environments: [ENV_B].into_iter().collect(),
        ..SimulatorConfig::default()
    })
    .await;
    let files = run_files(&format!(
        "env,username,until\n{ENV_B},grace,8h\n{ENV_A},ada,8h\n"
    ));
    let output = run(&simulator, &files.input, &[]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "status"), ["failed", "succeeded"]);
    assert_eq!(rows[0]["http_status"], "403");
    assert!(
        rows[0]["error_message"].starts_with("username \"grace\" could not be looked up"),
        "{}",
        rows[0]["error_message"]
    );
    assert_eq!(simulator.stats().total_puts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_while_names_are_looked_up_grants_nothing_more_and_records_every_row() {
    let users = numbered_users(3);
    let simulator = start(SimulatorConfig {
        population: Population::Only(users.clone()),
        latency: std::time::Duration::from_millis(800),
        ..SimulatorConfig::default()
    })
    .await;
    let mut csv = String::from("env,username,until\n");
    for user in &users {
        csv.push_str(&format!("{ENV_A},{},8h\n", user.username));
    }
    let files = run_files(&csv);
    let child = run_command(&simulator, &files.input, &[])
        .spawn()
        .expect("the binary starts");
    crate::support::eventually("a lookup in flight", || simulator.stats().in_flight > 0).await;
    crate::support::signal(&child, "-INT");
    let output = child.wait_with_output().await.expect("the run ends");
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let rows = read_results(&files.output);
    assert_eq!(column(&rows, "status"), ["not_attempted"; 3]);
    assert_eq!(column(&rows, "error_code"), ["INTERRUPTED"; 3]);
    assert_eq!(simulator.stats().total_puts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_page_link_to_another_host_is_not_followed() {
    let elsewhere = MockServer::start().await;
    Mock::given(matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let server = MockServer::start().await;
    Mock::given(matchers::method("GET"))
        .and(matchers::path(format!("/v1/environments/{ENV_A}/users")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "_embedded": {"users": [{"id": Uuid::new_v4(), "username": "someone"}]},
            "_links": {"next": {"href": format!(
                "{}/v1/environments/{ENV_A}/users?cursor=2", elsewhere.uri()
            )}},
        })))
        .expect(1)
        .mount(&server)
        .await;
    let files = run_files(&format!("env,username,until\n{ENV_A},ada,8h\n"));
    let output = run_with_token(&server, &files.input).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let rows = read_results(&files.output);
    assert_eq!(rows[0]["error_code"], "FOREIGN_LINK");
    server.verify().await;
    elsewhere.verify().await;
}
