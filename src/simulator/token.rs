//! The simulated token endpoint: the client credentials grant, with the worker application's
//! ID and secret in the body or in HTTP Basic as the tenant is configured, answered as
//! PingOne's authorization server answers it.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use uuid::Uuid;

use super::config::ClientAuthMethod;
use super::refusal::{Refusal, oauth_error};
use super::state::TenantState;
use super::wire::{Tenant, content_type_is, parse_id};
use crate::pingone::TokenResponse;

pub(super) async fn issue_token(
    State(state): Tenant,
    Path(environment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if parse_id(&environment) != Some(state.credentials.environment_id) {
        return Refusal::NotFound.into_response();
    }
    if !content_type_is(&headers, "application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body could not be parsed",
        );
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported",
        );
    }
    let method = state.config.client_auth;
    let basic = basic_credentials(&headers);
    let posted = form
        .get("client_id")
        .zip(form.get("client_secret"))
        .map(|(id, secret)| (id.clone(), secret.clone()));
    let presented = match (basic, posted) {
        (Some(pair), _) if method != ClientAuthMethod::Post => pair,
        (_, Some(pair)) if method != ClientAuthMethod::Basic => pair,
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Request denied: Unsupported authentication method",
            );
        }
    };
    if !client_matches(&state, &presented.0, &presented.1) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Request denied: Invalid client credentials",
        );
    }
    let token = TokenResponse {
        access_token: state.issue_token(),
        token_type: "Bearer".to_owned(),
        expires_in: state.config.token_ttl.as_secs(),
        scope: None,
    };
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(token),
    )
        .into_response()
}

fn client_matches(state: &TenantState, client_id: &str, client_secret: &str) -> bool {
    use secrecy::ExposeSecret;
    Uuid::try_parse(client_id).ok() == Some(state.credentials.client_id)
        && client_secret == state.credentials.client_secret.expose_secret()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}
