//! `GET .../users?filter=`: the lookups by username and email (one term, or several joined by
//! `or`) that later work resolves names with, from the built-in directory or a users file, with
//! cursor paging.

use pingone_bypass::simulator::{DirectoryUser, Population, SimulatorConfig, directory_object_id};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::support::{ENV_A, ENV_B, client, detail_codes, json_of, pingone_error, start};

async fn lookup(
    simulator: &pingone_bypass::simulator::Simulator,
    environment: Uuid,
    filter: &str,
) -> reqwest::Response {
    client()
        .get(format!(
            "{}/environments/{environment}/users",
            simulator.api_url()
        ))
        .bearer_auth(simulator.issue_token())
        .query(&[("filter", filter)])
        .send()
        .await
        .expect("the simulator answers")
}

fn usernames(page: &Value) -> Vec<String> {
    page["_embedded"]["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .filter_map(|user| user["username"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_username_lookup_finds_the_user_in_the_built_in_directory() {
    let simulator = start(SimulatorConfig::default()).await;
    let page = json_of(lookup(&simulator, ENV_A, r#"username eq "ada.lovelace""#).await).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["size"], 1);
    let user = &page["_embedded"]["users"][0];
    assert_eq!(user["username"], "ada.lovelace");
    assert_eq!(user["environment"]["id"], ENV_A.to_string());
    assert!(Uuid::try_parse(user["id"].as_str().unwrap_or_default()).is_ok());
}

#[tokio::test]
async fn an_email_lookup_ignores_case() {
    let simulator = start(SimulatorConfig::default()).await;
    let page = json_of(
        lookup(
            &simulator,
            ENV_B,
            r#"email eq "Barbara.Liskov@Example.com""#,
        )
        .await,
    )
    .await;
    assert_eq!(usernames(&page), ["barbara.liskov"]);
}

#[tokio::test]
async fn a_lookup_in_another_environment_or_without_a_match_is_an_empty_page() {
    let simulator = start(SimulatorConfig::default()).await;
    for (environment, filter) in [
        (ENV_B, r#"username eq "ada.lovelace""#),
        (ENV_A, r#"username eq "nobody""#),
    ] {
        let response = lookup(&simulator, environment, filter).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = json_of(response).await;
        assert_eq!(page["count"], 0);
        assert!(usernames(&page).is_empty());
    }
}

#[tokio::test]
async fn an_unsupported_filter_is_refused_as_invalid_data() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = lookup(&simulator, ENV_A, r#"name.given sw "A""#).await;
    let body = pingone_error(response, StatusCode::BAD_REQUEST, "INVALID_DATA").await;
    assert_eq!(detail_codes(&body), ["INVALID_FILTER"]);
}

#[tokio::test]
async fn a_lookup_needs_a_valid_token() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = client()
        .get(format!(
            "{}/environments/{ENV_A}/users",
            simulator.api_url()
        ))
        .send()
        .await
        .expect("the simulator answers");
    pingone_error(response, StatusCode::UNAUTHORIZED, "ACCESS_FAILED").await;
}

#[tokio::test]
async fn a_users_file_replaces_the_directory_and_pages_follow_next_links() {
    let users: Vec<_> = (0..5)
        .map(|n| DirectoryUser {
            environment_id: ENV_A,
            id: Uuid::new_v4(),
            username: format!("user{n}"),
            email: format!("user{n}@example.org"),
            ..DirectoryUser::default()
        })
        .collect();
    let simulator = start(SimulatorConfig {
        population: Population::Only(users),
        ..SimulatorConfig::default()
    })
    .await;
    let gone = json_of(lookup(&simulator, ENV_A, r#"username eq "ada.lovelace""#).await).await;
    assert_eq!(gone["count"], 0);

    let token = simulator.issue_token();
    let mut next = Some(format!(
        "{}/environments/{ENV_A}/users?limit=2",
        simulator.api_url()
    ));
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(url) = next {
        let page = json_of(
            client()
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .expect("the simulator answers"),
        )
        .await;
        assert_eq!(page["count"], 5);
        seen.extend(usernames(&page));
        next = page["_links"]["next"]["href"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["user0", "user1", "user2", "user3", "user4"]);
}

#[tokio::test]
async fn terms_joined_by_or_find_every_user_any_of_them_names() {
    let simulator = start(SimulatorConfig::default()).await;
    let page = json_of(
        lookup(
            &simulator,
            ENV_A,
            r#"username eq "ada.lovelace" or username eq "nobody" or email eq "Alan.Turing@example.com""#,
        )
        .await,
    )
    .await;
    let mut found = usernames(&page);
    found.sort();
    assert_eq!(
        found,
        ["a.turing", "ada.lovelace", "alan.turing"],
        "a.turing shares alan.turing's email"
    );
}

#[tokio::test]
async fn a_value_that_tries_to_change_the_filter_is_only_a_value() {
    let simulator = start(SimulatorConfig::default()).await;
    let page =
        json_of(lookup(&simulator, ENV_A, r#"username eq "x\" or username pr \"""#).await).await;
    assert_eq!(page["count"], 0, "{page}");
}

#[tokio::test]
async fn a_tenant_that_refuses_or_filters_answers_them_with_400_and_single_terms_with_200() {
    let simulator = start(SimulatorConfig {
        refuse_or_filters: true,
        ..SimulatorConfig::default()
    })
    .await;
    let batched = lookup(
        &simulator,
        ENV_A,
        r#"username eq "ada.lovelace" or username eq "alan.turing""#,
    )
    .await;
    let body = pingone_error(batched, StatusCode::BAD_REQUEST, "INVALID_DATA").await;
    assert_eq!(detail_codes(&body), ["INVALID_FILTER"]);
    let single = lookup(&simulator, ENV_A, r#"username eq "ada.lovelace""#).await;
    assert_eq!(single.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_page_holds_at_most_200_users_whatever_limit_asks() {
    let users: Vec<_> = (0..450)
        .map(|n| DirectoryUser {
            environment_id: ENV_A,
            id: Uuid::new_v4(),
            username: format!("user{n}"),
            email: "shared@example.org".to_owned(),
            ..DirectoryUser::default()
        })
        .collect();
    let simulator = start(SimulatorConfig {
        population: Population::Only(users),
        ..SimulatorConfig::default()
    })
    .await;
    let response = client()
        .get(format!(
            "{}/environments/{ENV_A}/users",
            simulator.api_url()
        ))
        .bearer_auth(simulator.issue_token())
        .query(&[
            ("filter", r#"email eq "shared@example.org""#),
            ("limit", "1000"),
        ])
        .send()
        .await
        .expect("the simulator answers");
    let page = json_of(response).await;
    assert_eq!(page["count"], 450, "an email may be shared by many users");
    assert_eq!(page["size"], 200);
    assert!(page["_links"]["next"]["href"].is_string());
}

async fn listing(
    simulator: &pingone_bypass::simulator::Simulator,
    environment: Uuid,
    collection: &str,
    filter: &str,
) -> Value {
    json_of(
        client()
            .get(format!(
                "{}/environments/{environment}/{collection}",
                simulator.api_url()
            ))
            .bearer_auth(simulator.issue_token())
            .query(&[("filter", filter)])
            .send()
            .await
            .expect("the simulator answers"),
    )
    .await
}

#[tokio::test]
async fn populations_and_groups_are_found_by_name_and_list_their_members_by_id() {
    let simulator = start(SimulatorConfig::default()).await;
    let contractors = listing(&simulator, ENV_A, "populations", r#"name eq "contractors""#).await;
    assert_eq!(contractors["count"], 1);
    let population = &contractors["_embedded"]["populations"][0];
    assert_eq!(population["name"], "Contractors");
    let population_id = population["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        population_id,
        directory_object_id(ENV_A, "Contractors").to_string()
    );
    let members = json_of(
        lookup(
            &simulator,
            ENV_A,
            &format!(r#"population.id eq "{population_id}""#),
        )
        .await,
    )
    .await;
    let mut names = usernames(&members);
    names.sort();
    assert_eq!(names, ["a.turing", "edsger.dijkstra", "grace.hopper"]);

    let helpdesk = listing(&simulator, ENV_A, "groups", r#"name eq "Helpdesk""#).await;
    let group_id = helpdesk["_embedded"]["groups"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let members = json_of(
        lookup(
            &simulator,
            ENV_A,
            &format!(r#"memberOfGroups[id eq "{group_id}"]"#),
        )
        .await,
    )
    .await;
    let mut names = usernames(&members);
    names.sort();
    assert_eq!(names, ["ada.lovelace", "grace.hopper"]);

    let elsewhere = listing(&simulator, ENV_B, "populations", r#"name eq "Contractors""#).await;
    assert_eq!(
        elsewhere["count"], 0,
        "populations belong to one environment"
    );
}

#[tokio::test]
async fn an_email_two_users_share_finds_both() {
    let simulator = start(SimulatorConfig::default()).await;
    let page =
        json_of(lookup(&simulator, ENV_A, r#"email eq "alan.turing@example.com""#).await).await;
    let mut names = usernames(&page);
    names.sort();
    assert_eq!(names, ["a.turing", "alan.turing"]);
}

#[tokio::test]
async fn a_users_file_gives_users_their_population_and_groups() {
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("users.csv");
    let user = Uuid::new_v4();
    std::fs::write(
        &path,
        format!(
            "environment_id,user_id,username,email,population,groups\n{ENV_A},{user},kim,kim@example.org,Night shift,Helpdesk; On call\n"
        ),
    )
    .expect("written");
    let users = pingone_bypass::simulator::read_users_file(&path).expect("the file reads");
    assert_eq!(users[0].population, "Night shift");
    assert_eq!(users[0].groups, ["Helpdesk", "On call"]);
}
