//! The token endpoint: client credentials by HTTP Basic or form fields, as the worker
//! application is configured, and tokens that stop working when their lifetime ends.

use std::time::Duration;

use pingone_bypass::pingone::{OAuthErrorBody, TokenResponse};
use pingone_bypass::simulator::{ClientAuthMethod, Simulator, SimulatorConfig};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::support::{ENV_A, EXPIRY, client, pingone_error, put_bypass, start};

async fn token_by_basic(simulator: &Simulator, id: &str, secret: &str) -> reqwest::Response {
    client()
        .post(simulator.token_url())
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("the token endpoint answers")
}

async fn token_by_form(simulator: &Simulator, id: &str, secret: &str) -> reqwest::Response {
    client()
        .post(simulator.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("the token endpoint answers")
}

fn client_id(simulator: &Simulator) -> String {
    simulator.credentials().client_id.to_string()
}

fn secret(simulator: &Simulator) -> String {
    simulator
        .credentials()
        .client_secret
        .expose_secret()
        .to_owned()
}

async fn assert_invalid_client(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: OAuthErrorBody = response.json().await.expect("an OAuth error body");
    assert_eq!(body.error, "invalid_client");
}

fn with_auth(method: ClientAuthMethod) -> SimulatorConfig {
    SimulatorConfig {
        client_auth: method,
        ..SimulatorConfig::default()
    }
}

#[tokio::test]
async fn http_basic_client_credentials_get_a_bearer_token_with_its_lifetime() {
    let simulator = start(SimulatorConfig {
        token_ttl: Duration::from_secs(1800),
        ..SimulatorConfig::default()
    })
    .await;
    let response = token_by_basic(&simulator, &client_id(&simulator), &secret(&simulator)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token: TokenResponse = response.json().await.expect("a token response");
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 1800);
    let put = put_bypass(
        &simulator,
        &token.access_token,
        ENV_A,
        Uuid::new_v4(),
        EXPIRY,
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
}

#[tokio::test]
async fn form_field_client_credentials_get_a_token_when_the_app_uses_client_secret_post() {
    let simulator = start(with_auth(ClientAuthMethod::Post)).await;
    let response = token_by_form(&simulator, &client_id(&simulator), &secret(&simulator)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token: TokenResponse = response.json().await.expect("a token response");
    assert_eq!(token.token_type, "Bearer");
}

#[tokio::test]
async fn an_app_that_accepts_either_method_takes_both() {
    let simulator = start(with_auth(ClientAuthMethod::Any)).await;
    let (id, secret) = (client_id(&simulator), secret(&simulator));
    assert_eq!(
        token_by_basic(&simulator, &id, &secret).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        token_by_form(&simulator, &id, &secret).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_app_using_basic_refuses_form_fields_with_invalid_client() {
    let simulator = start(with_auth(ClientAuthMethod::Basic)).await;
    assert_invalid_client(
        token_by_form(&simulator, &client_id(&simulator), &secret(&simulator)).await,
    )
    .await;
}

#[tokio::test]
async fn an_app_using_client_secret_post_refuses_http_basic_with_invalid_client() {
    let simulator = start(with_auth(ClientAuthMethod::Post)).await;
    assert_invalid_client(
        token_by_basic(&simulator, &client_id(&simulator), &secret(&simulator)).await,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_client_is_refused_with_invalid_client() {
    let simulator = start(with_auth(ClientAuthMethod::Any)).await;
    let id = client_id(&simulator);
    assert_invalid_client(token_by_basic(&simulator, &id, "not-the-secret").await).await;
    assert_invalid_client(token_by_form(&simulator, &id, "not-the-secret").await).await;
    let stranger = Uuid::new_v4().to_string();
    assert_invalid_client(token_by_basic(&simulator, &stranger, &secret(&simulator)).await).await;
    assert_eq!(simulator.stats().tokens_issued, 0);
}

#[tokio::test]
async fn a_grant_other_than_client_credentials_is_refused() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = client()
        .post(simulator.token_url())
        .basic_auth(client_id(&simulator), Some(secret(&simulator)))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("the token endpoint answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: OAuthErrorBody = response.json().await.expect("an OAuth error body");
    assert_eq!(body.error, "unsupported_grant_type");
}

#[tokio::test]
async fn the_token_endpoint_exists_only_in_the_worker_apps_environment() {
    let simulator = start(SimulatorConfig::default()).await;
    let response = client()
        .post(format!(
            "{}/{}/as/token",
            simulator.auth_url(),
            Uuid::new_v4()
        ))
        .basic_auth(client_id(&simulator), Some(secret(&simulator)))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("the simulator answers");
    pingone_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

#[tokio::test]
async fn a_token_stops_working_when_its_lifetime_ends() {
    let ttl = Duration::from_secs(1);
    let simulator = start(SimulatorConfig {
        token_ttl: ttl,
        ..SimulatorConfig::default()
    })
    .await;
    let response = token_by_basic(&simulator, &client_id(&simulator), &secret(&simulator)).await;
    let token: TokenResponse = response.json().await.expect("a token response");
    assert_eq!(token.expires_in, 1);
    let user = Uuid::new_v4();
    let fresh = put_bypass(&simulator, &token.access_token, ENV_A, user, EXPIRY).await;
    assert_eq!(fresh.status(), StatusCode::OK);
    // The token was issued before its response arrived, so one lifetime after the arrival it
    // has certainly expired.
    tokio::time::sleep(ttl).await;
    let stale = put_bypass(&simulator, &token.access_token, ENV_A, user, EXPIRY).await;
    let body = pingone_error(stale, StatusCode::UNAUTHORIZED, "ACCESS_FAILED").await;
    assert_eq!(crate::support::detail_codes(&body), ["INVALID_TOKEN"]);
}
