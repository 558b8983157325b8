//! `PUT` and `GET .../bypassMFA`: authorization, content type, user existence, the one date
//! format, the documented answer, and state that persists.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use pingone_bypass::pingone::{BypassResponse, format_bypass_until, parse_exact_bypass_until};
use pingone_bypass::simulator::{DirectoryUser, Population, SimulatorConfig};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::support::{
    ENV_A, ENV_B, EXPIRY, bypass_url, client, detail_codes, pingone_error, put_bypass, start,
};

#[tokio::test]
async fn a_put_without_a_token_is_refused_with_access_failed_invalid_token() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = client()
        .put(bypass_url(&simulator, ENV_A, Uuid::new_v4()))
        .json(&json!({ "bypassMFAEnabledUntil": EXPIRY }))
        .send()
        .await
        .expect("the simulator answers");
    assert!(response.headers().contains_key("www-authenticate"));
    let body = pingone_error(response, StatusCode::UNAUTHORIZED, "ACCESS_FAILED").await;
    assert_eq!(detail_codes(&body), ["INVALID_TOKEN"]);
    assert!(simulator.bypasses().is_empty());
}

#[tokio::test]
async fn a_put_with_a_token_the_simulator_never_issued_is_refused() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = put_bypass(&simulator, "forged", ENV_A, Uuid::new_v4(), EXPIRY).await;
    let body = pingone_error(response, StatusCode::UNAUTHORIZED, "ACCESS_FAILED").await;
    assert_eq!(detail_codes(&body), ["INVALID_TOKEN"]);
}

#[tokio::test]
async fn a_put_that_is_not_json_is_refused_with_415() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = client()
        .put(bypass_url(&simulator, ENV_A, Uuid::new_v4()))
        .bearer_auth(simulator.issue_token())
        .header("content-type", "text/plain")
        .body(format!("{{\"bypassMFAEnabledUntil\":\"{EXPIRY}\"}}"))
        .send()
        .await
        .expect("the simulator answers");
    pingone_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "INVALID_REQUEST",
    )
    .await;
    assert!(simulator.bypasses().is_empty());
}

#[tokio::test]
async fn json_with_a_charset_parameter_is_json() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = client()
        .put(bypass_url(&simulator, ENV_A, Uuid::new_v4()))
        .bearer_auth(simulator.issue_token())
        .header("content-type", "application/json; charset=UTF-8")
        .body(format!("{{\"bypassMFAEnabledUntil\":\"{EXPIRY}\"}}"))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn only_users_in_the_users_file_exist() {
    let listed = Uuid::new_v4();
    let simulator = start(SimulatorConfig {
        population: Population::Only(vec![DirectoryUser {
            environment_id: ENV_A,
            id: listed,
            username: "jdoe".into(),
            email: "jdoe@example.com".into(),
            ..DirectoryUser::default()
        }]),
        ..SimulatorConfig::default()
    })
    .await;
    let token = simulator.issue_token();
    let found = put_bypass(&simulator, &token, ENV_A, listed, EXPIRY).await;
    assert_eq!(found.status(), StatusCode::OK);
    let unlisted = put_bypass(&simulator, &token, ENV_A, Uuid::new_v4(), EXPIRY).await;
    pingone_error(unlisted, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    // An environment the directory does not have is answered as PingOne answers one that does
    // not exist: 403, not 404.
    let other_environment = put_bypass(&simulator, &token, ENV_B, listed, EXPIRY).await;
    pingone_error(other_environment, StatusCode::FORBIDDEN, "ACCESS_FAILED").await;
}

#[tokio::test]
async fn users_on_the_missing_list_do_not_exist_and_everyone_else_does() {
    let gone = Uuid::new_v4();
    let simulator = start(SimulatorConfig {
        population: Population::AllExcept(HashSet::from([gone])),
        ..SimulatorConfig::default()
    })
    .await;
    let token = simulator.issue_token();
    let missing = put_bypass(&simulator, &token, ENV_A, gone, EXPIRY).await;
    pingone_error(missing, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let present = put_bypass(&simulator, &token, ENV_B, Uuid::new_v4(), EXPIRY).await;
    assert_eq!(present.status(), StatusCode::OK);
}

#[tokio::test]
async fn ids_that_are_not_hyphenated_uuids_are_not_found() {
    let simulator = start(SimulatorConfig::default()).await;
    let token = simulator.issue_token();
    let user = Uuid::new_v4();
    for (environment, user) in [
        (ENV_A.to_string(), "not-a-user".to_owned()),
        ("..".to_owned(), user.to_string()),
        (ENV_A.to_string(), user.simple().to_string()),
        (ENV_A.to_string(), user.urn().to_string()),
        (ENV_A.to_string(), "%2e%2e".to_owned()),
    ] {
        let response = client()
            .put(bypass_url(&simulator, &environment, &user))
            .bearer_auth(&token)
            .json(&json!({ "bypassMFAEnabledUntil": EXPIRY }))
            .send()
            .await
            .expect("the simulator answers");
        pingone_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
    assert!(simulator.bypasses().is_empty());
}

#[tokio::test]
async fn every_date_format_but_pingones_is_refused_as_invalid_value() {
    let simulator = start(SimulatorConfig::default()).await;
    let token = simulator.issue_token();
    for until in [
        json!("2031-01-02"),
        json!("2031-01-02T03:04:05Z"),
        json!("2031-01-02T03:04:05.678+00:00"),
        json!("2031-01-02T03:04:05.6789Z"),
        json!("2031-01-02 03:04:05.678Z"),
        json!("2031-02-30T03:04:05.678Z"),
        json!("8h"),
        json!(1_924_571_045_678_u64),
        json!(true),
    ] {
        let response = client()
            .put(bypass_url(&simulator, ENV_A, Uuid::new_v4()))
            .bearer_auth(&token)
            .json(&json!({ "bypassMFAEnabledUntil": until }))
            .send()
            .await
            .expect("the simulator answers");
        let body = pingone_error(response, StatusCode::BAD_REQUEST, "INVALID_DATA").await;
        assert_eq!(detail_codes(&body), ["INVALID_VALUE"], "for {until}");
        assert_eq!(
            body.details[0].target.as_deref(),
            Some("bypassMFAEnabledUntil"),
            "for {until}"
        );
    }
    assert!(simulator.bypasses().is_empty());
}

#[tokio::test]
async fn a_put_without_the_expiry_reports_a_required_value() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = client()
        .put(bypass_url(&simulator, ENV_A, Uuid::new_v4()))
        .bearer_auth(simulator.issue_token())
        .json(&json!({}))
        .send()
        .await
        .expect("the simulator answers");
    let body = pingone_error(response, StatusCode::BAD_REQUEST, "INVALID_DATA").await;
    assert_eq!(detail_codes(&body), ["REQUIRED_VALUE"]);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_an_invalid_request() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = client()
        .put(bypass_url(&simulator, ENV_A, Uuid::new_v4()))
        .bearer_auth(simulator.issue_token())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("the simulator answers");
    pingone_error(response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn a_valid_put_answers_the_documented_body_and_the_bypass_is_kept() {
    let simulator = start(SimulatorConfig::default()).await;
    let user = Uuid::new_v4();
    let response = put_bypass(&simulator, &simulator.issue_token(), ENV_A, user, EXPIRY).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: BypassResponse = response.json().await.expect("the documented body");
    let user_href = format!("{}/environments/{ENV_A}/users/{user}", simulator.api_url());
    assert_eq!(body.links.user.href, user_href);
    assert_eq!(body.links.self_link.href, format!("{user_href}/bypassMFA"));
    assert_eq!(body.bypass_mfa_enabled_until.as_deref(), Some(EXPIRY));
    assert_eq!(body.can_bypass_mfa, Some(true));
    assert_eq!(
        simulator.bypass(ENV_A, user),
        parse_exact_bypass_until(EXPIRY)
    );
    assert_eq!(simulator.bypass(ENV_B, user), None);
}

#[tokio::test]
async fn get_returns_the_stored_bypass_and_a_later_put_replaces_it() {
    let simulator = start(SimulatorConfig::default()).await;
    let token = simulator.issue_token();
    let user = Uuid::new_v4();
    let read = || async {
        let response = client()
            .get(bypass_url(&simulator, ENV_A, user))
            .bearer_auth(&token)
            .send()
            .await
            .expect("the simulator answers");
        assert_eq!(response.status(), StatusCode::OK);
        response
            .json::<BypassResponse>()
            .await
            .expect("the documented body")
    };
    let before = read().await;
    assert_eq!(before.bypass_mfa_enabled_until, None);
    assert_eq!(before.can_bypass_mfa, None);

    put_bypass(&simulator, &token, ENV_A, user, EXPIRY).await;
    assert_eq!(
        read().await.bypass_mfa_enabled_until.as_deref(),
        Some(EXPIRY)
    );

    let later = "2032-06-07T08:09:10.111Z";
    put_bypass(&simulator, &token, ENV_A, user, later).await;
    let after = read().await;
    assert_eq!(after.bypass_mfa_enabled_until.as_deref(), Some(later));
    assert_eq!(after.can_bypass_mfa, Some(true));
}

#[tokio::test]
async fn a_past_expiry_is_stored_but_grants_no_bypass() {
    let simulator = start(SimulatorConfig::default()).await;
    let past = "2020-01-01T00:00:00.000Z";
    let response = put_bypass(
        &simulator,
        &simulator.issue_token(),
        ENV_A,
        Uuid::new_v4(),
        past,
    )
    .await;
    let body: BypassResponse = response.json().await.expect("the documented body");
    assert_eq!(body.bypass_mfa_enabled_until.as_deref(), Some(past));
    assert_eq!(body.can_bypass_mfa, Some(false));
}

#[tokio::test]
async fn a_tenant_maximum_shortens_the_expiry_and_the_answer_reports_what_was_kept() {
    let max = Duration::from_secs(3600);
    let simulator = start(SimulatorConfig {
        max_bypass: Some(max),
        ..SimulatorConfig::default()
    })
    .await;
    let user = Uuid::new_v4();
    let latest_allowed_before = Utc::now() + max;
    let response = put_bypass(&simulator, &simulator.issue_token(), ENV_A, user, EXPIRY).await;
    let latest_allowed_after = Utc::now() + max;
    let body: BypassResponse = response.json().await.expect("the documented body");
    let returned = body
        .bypass_mfa_enabled_until
        .as_deref()
        .and_then(parse_exact_bypass_until)
        .expect("an expiry in PingOne's format");
    let latest_allowed_before =
        parse_exact_bypass_until(&format_bypass_until(latest_allowed_before))
            .expect("a formatted instant parses");
    assert!(
        returned >= latest_allowed_before && returned <= latest_allowed_after,
        "{returned}"
    );
    assert_eq!(simulator.bypass(ENV_A, user), Some(returned));
}

#[tokio::test]
async fn a_forbidden_environment_answers_403_while_others_are_served() {
    let simulator = start(SimulatorConfig {
        forbidden_environments: HashSet::from([ENV_B]),
        ..SimulatorConfig::default()
    })
    .await;
    let token = simulator.issue_token();
    let refused = put_bypass(&simulator, &token, ENV_B, Uuid::new_v4(), EXPIRY).await;
    let body = pingone_error(refused, StatusCode::FORBIDDEN, "ACCESS_FAILED").await;
    assert_eq!(detail_codes(&body), ["INSUFFICIENT_PERMISSIONS"]);
    let served = put_bypass(&simulator, &token, ENV_A, Uuid::new_v4(), EXPIRY).await;
    assert_eq!(served.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_pingone_error_shape() {
    let simulator = start(SimulatorConfig::default()).await;
    let unknown = client()
        .get(format!(
            "{}/environments/{ENV_A}/applications",
            simulator.api_url()
        ))
        .send()
        .await
        .expect("the simulator answers");
    pingone_error(unknown, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let wrong_method = client()
        .delete(bypass_url(&simulator, ENV_A, Uuid::new_v4()))
        .send()
        .await
        .expect("the simulator answers");
    pingone_error(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    )
    .await;
}
