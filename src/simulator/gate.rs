//! What every simulated endpoint checks before it serves: the token, then the environment the
//! path names (as PingOne answers a missing or foreign one), and for the audit log its own
//! admission (an outage, the audit API's own rate limit, the latency).

use axum::http::{HeaderMap, header};
use uuid::Uuid;

use super::faults::plan_request;
use super::refusal::Refusal;
use super::state::TenantState;
use super::wire::parse_id;

/// An environment the tenant does not have answers 403 as PingOne's does (it cannot tell a
/// missing environment from one the worker application may not see), and so does one where
/// the application lacks a role.
pub(super) fn check_environment(state: &TenantState, environment: Uuid) -> Result<(), Refusal> {
    if !state.environment_exists(environment) {
        return Err(Refusal::UnknownEnvironment);
    }
    if state.config.forbidden_environments.contains(&environment) {
        return Err(Refusal::Forbidden);
    }
    Ok(())
}

/// The token checked, then the environment the path names.
pub(super) fn authorize_and_find(
    state: &TenantState,
    headers: &HeaderMap,
    environment: &str,
) -> Result<Uuid, Refusal> {
    authorize(state, headers)?;
    let environment = parse_id(environment).ok_or(Refusal::NotFound)?;
    check_environment(state, environment)?;
    Ok(environment)
}

/// What an audit request meets first: an outage, the audit API's own rate limit (not the
/// license's), then the latency.
pub(super) async fn admit_audit(state: &TenantState) -> Result<(), Refusal> {
    if state.in_outage() {
        return Err(Refusal::Outage);
    }
    let limited = state.check_audit_rate_limit();
    let plan = plan_request(&state.config, &"audit", state.next_unkeyed_request());
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    limited.map_err(|limited| Refusal::RateLimited {
        retry_after_seconds: limited.retry_after_seconds,
    })
}

pub(super) fn authorize(state: &TenantState, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if token.is_some_and(|token| state.token_is_valid(token)) {
        Ok(())
    } else {
        Err(Refusal::InvalidToken)
    }
}
