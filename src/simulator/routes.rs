//! The simulated PingOne endpoints: `bypassMFA` (PUT and GET), the user, population and group
//! listings, and the reserved `/__simulator/` introspection paths, with the token endpoint
//! (`token`) routed beside them and every refusal rendered by `refusal`. Each API request first
//! passes `admit`, where the rate limits, latency and injected faults act, in that order, as
//! they would at PingOne's edge.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

use super::config::{AnswerShape, DirectoryUser, LimiterShape, directory_object_id};
use super::directory::{UserFilter, parse_name_filter};
use super::faults::{Fault, plan_request};
use super::gate::{authorize, authorize_and_find, check_environment};
use super::refusal::Refusal;
use super::server::ConnectionControl;
use super::state::TenantState;
use super::token::issue_token;
use super::wire::{Tenant, content_type_is, parse_id, parse_ids};
use crate::pingone::{
    BypassLinks, BypassResponse, Link, SESSION_HEADER, TRANSACTION_HEADER, format_bypass_until,
    parse_exact_bypass_until,
};

/// The reserved prefix of the introspection paths; no PingOne path starts with it.
pub const INTROSPECTION_PREFIX: &str = "/__simulator";

const DEFAULT_PAGE_SIZE: usize = 100;
/// PingOne pages `/users` at most 200 at a time, whatever `limit` asks: a client must follow
/// `_links.next`.
const MAX_PAGE_SIZE: usize = 200;
const UNTIL_FIELD: &str = "bypassMFAEnabledUntil";

pub fn router(state: Arc<TenantState>) -> Router {
    let service = Router::new()
        .route("/{environment}/as/token", post(issue_token))
        .route(
            "/v1/environments/{environment}/users/{user}/bypassMFA",
            get(get_bypass).put(put_bypass),
        )
        .route("/v1/environments/{environment}/users", get(list_users))
        .route(
            "/v1/environments/{environment}/populations",
            get(list_populations),
        )
        .route("/v1/environments/{environment}/groups", get(list_groups))
        .route(
            "/v1/environments/{environment}/activities",
            get(super::audit::list_activities).post(super::audit::search_activities),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), track));
    let introspection = Router::new()
        .route(&format!("{INTROSPECTION_PREFIX}/stats"), get(stats))
        .route(&format!("{INTROSPECTION_PREFIX}/state"), get(stored_state));
    service.merge(introspection).with_state(state)
}

/// Counts every answered request by status and every API request's correlation headers,
/// keeps the in-flight gauge, and words refusals in the tenant's answer shape.
async fn track(State(state): Tenant, request: Request, next: Next) -> Response {
    let _in_flight = state.enter();
    if request.uri().path().starts_with("/v1/") {
        let headers = request.headers();
        state.count_correlation(
            headers.get(SESSION_HEADER).map(HeaderValue::as_bytes),
            headers.get(TRANSACTION_HEADER).map(HeaderValue::as_bytes),
        );
    }
    let mut response = next.run(request).await;
    if let Some(refusal) = response.extensions().get::<Refusal>().copied() {
        response = refusal.render(state.config.answer_shape, state.config.retry_after_in_body);
    }
    state.count_response(response.status().as_u16());
    response
}

async fn put_bypass(
    State(state): Tenant,
    Extension(connection): Extension<ConnectionControl>,
    Path((environment, user)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>, Refusal> {
    let ids = parse_ids(&environment, &user);
    let occurrence =
        ids.map(|(environment, user)| (environment, user, state.record_put(environment, user)));
    admit(&state, &connection, ids.map(|(e, _)| e), occurrence).await?;
    authorize(&state, &headers)?;
    let (environment, user) = ids.ok_or(Refusal::NotFound)?;
    check_environment(&state, environment)?;
    // Every PUT that reaches the service is in its audit log, granted or refused.
    let stored = change_bypass(&state, (environment, user), &headers, &body);
    state.log_put((environment, user), &headers, stored.as_ref().map(|_| ()));
    let stored = stored?;
    let first_put = occurrence.is_some_and(|(_, _, before)| before == 0);
    if first_put && state.config.first_answer_lost.contains(&user) {
        // Granted and logged, and then the answer never comes: what a client killed between
        // PingOne's answer and its record, or cut off by the network, leaves behind.
        state.count_hang();
        tokio::time::sleep(state.config.hang_for).await;
        connection.reset();
        return std::future::pending().await;
    }
    Ok(axum::Json(bypass_body(
        &state,
        environment,
        user,
        Some(stored),
    )))
}

/// The service's part of a PUT: the user's bypass set to the expiry the body asks (cut to the
/// tenant's policy), or why not.
fn change_bypass(
    state: &TenantState,
    (environment, user): (Uuid, Uuid),
    headers: &HeaderMap,
    body: &[u8],
) -> Result<chrono::DateTime<Utc>, Refusal> {
    if !content_type_is(headers, "application/json") {
        return Err(Refusal::UnsupportedMediaType);
    }
    if !state.user_exists(environment, user) {
        return Err(Refusal::NotFound);
    }
    let requested = requested_until(body)?;
    // PingOne keeps milliseconds, so a shortened expiry is cut to them too.
    let stored = match state.config.max_bypass {
        Some(max) => requested.min((Utc::now() + max).trunc_subsecs(3)),
        None => requested,
    };
    state.store_bypass(environment, user, stored);
    Ok(stored)
}

/// Reads `bypassMFAEnabledUntil` from a PUT body; it must be present and in the one accepted
/// format.
fn requested_until(body: &[u8]) -> Result<chrono::DateTime<Utc>, Refusal> {
    let value =
        serde_json::from_slice::<serde_json::Value>(body).map_err(|_| Refusal::UnparsableJson)?;
    match value.get(UNTIL_FIELD) {
        None | Some(serde_json::Value::Null) => Err(Refusal::InvalidData {
            detail_code: "REQUIRED_VALUE",
            target: UNTIL_FIELD,
            message: "bypassMFAEnabledUntil is required.",
        }),
        Some(serde_json::Value::String(text)) => {
            parse_exact_bypass_until(text).ok_or(Refusal::InvalidData {
                detail_code: "INVALID_VALUE",
                target: UNTIL_FIELD,
                message: "bypassMFAEnabledUntil must be a date in the format yyyy-MM-dd'T'HH:mm:ss.SSS'Z'.",
            })
        }
        Some(_) => Err(Refusal::InvalidData {
            detail_code: "INVALID_VALUE",
            target: UNTIL_FIELD,
            message: "bypassMFAEnabledUntil must be a string.",
        }),
    }
}

async fn get_bypass(
    State(state): Tenant,
    Extension(connection): Extension<ConnectionControl>,
    Path((environment, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, Refusal> {
    let ids = parse_ids(&environment, &user);
    admit(&state, &connection, ids.map(|(e, _)| e), None).await?;
    authorize(&state, &headers)?;
    let (environment, user) = ids.ok_or(Refusal::NotFound)?;
    check_environment(&state, environment)?;
    if !state.user_exists(environment, user) {
        return Err(Refusal::NotFound);
    }
    let stored = state.bypass(environment, user);
    Ok(axum::Json(bypass_body(&state, environment, user, stored)))
}

/// A `bypassMFA` answer in the tenant's answer shape.
fn bypass_body(
    state: &TenantState,
    environment: Uuid,
    user: Uuid,
    stored: Option<chrono::DateTime<Utc>>,
) -> serde_json::Value {
    let user_href = format!("{}/environments/{environment}/users/{user}", state.api_url);
    let can_bypass = stored.map(|until| until > Utc::now());
    match state.config.answer_shape {
        AnswerShape::Full => json!(BypassResponse {
            links: BypassLinks {
                self_link: Link {
                    href: format!("{user_href}/bypassMFA"),
                },
                user: Link { href: user_href },
            },
            bypass_mfa_enabled_until: stored.map(format_bypass_until),
            can_bypass_mfa: can_bypass,
        }),
        AnswerShape::Lean => match stored {
            None => json!({}),
            Some(until) => json!({
                UNTIL_FIELD: until.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
            }),
        },
        AnswerShape::Varied => {
            let mut body = json!({
                "_links": { "self": { "href": format!("{user_href}/bypassMFA") } },
                "environment": { "id": environment },
                "user": { "id": user },
                "lastUpdated": { "by": "worker", "count": 1 },
            });
            if let Some(until) = stored {
                body[UNTIL_FIELD] = json!(match chrono::FixedOffset::east_opt(2 * 3600) {
                    Some(offset) => until
                        .with_timezone(&offset)
                        .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
                        .to_string(),
                    None => format_bypass_until(until),
                });
                body["canBypassMFA"] = json!(can_bypass);
            }
            body
        }
    }
}

async fn list_users(
    State(state): Tenant,
    Extension(connection): Extension<ConnectionControl>,
    Path(environment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, Refusal> {
    let (environment, query) =
        admit_listing(&state, &connection, &environment, query, &headers).await?;
    let filter = match query.get("filter") {
        None => None,
        Some(text) => Some(UserFilter::parse(text).ok_or(Refusal::InvalidData {
            detail_code: "INVALID_FILTER",
            target: "filter",
            message: "Only username eq, email eq, population.id eq and memberOfGroups[id eq] filters, joined by or, are supported.",
        })?),
    };
    if state.config.refuse_or_filters
        && filter.as_ref().is_some_and(|filter| filter.terms.len() > 1)
    {
        return Err(Refusal::InvalidData {
            detail_code: "INVALID_FILTER",
            target: "filter",
            message: "This tenant does not support or in user filters.",
        });
    }
    state.count_user_listing(filter.as_ref().map_or(0, |filter| filter.terms.len()));
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let offset = query
        .get("cursor")
        .and_then(|cursor| cursor.parse::<usize>().ok())
        .unwrap_or(0);
    let matching: Vec<&DirectoryUser> = state
        .directory(environment)
        .filter(|user| filter.as_ref().is_none_or(|filter| filter.matches(user)))
        .collect();
    let page: Vec<_> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|user| directory_user_body(&state, user))
        .collect();
    let list_href = format!("{}/environments/{environment}/users", state.api_url);
    let mut links = json!({ "self": { "href": list_href } });
    if offset + page.len() < matching.len() {
        let mut next = Vec::new();
        if let Some(filter) = query.get("filter") {
            next.push(("filter", filter.clone()));
        }
        next.push(("limit", limit.to_string()));
        next.push(("cursor", (offset + page.len()).to_string()));
        let next_query = serde_urlencoded::to_string(&next).unwrap_or_default();
        links["next"] = json!({ "href": format!("{list_href}?{next_query}") });
    }
    Ok(axum::Json(json!({
        "_links": links,
        "_embedded": { "users": page },
        "count": matching.len(),
        "size": page.len(),
    })))
}

/// Which named collection of users a listing is about.
#[derive(Clone, Copy)]
enum Collection {
    Populations,
    Groups,
}

async fn list_populations(
    state: Tenant,
    connection: Extension<ConnectionControl>,
    environment: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, Refusal> {
    list_collection(
        Collection::Populations,
        state,
        connection,
        environment,
        query,
        headers,
    )
    .await
}

async fn list_groups(
    state: Tenant,
    connection: Extension<ConnectionControl>,
    environment: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, Refusal> {
    list_collection(
        Collection::Groups,
        state,
        connection,
        environment,
        query,
        headers,
    )
    .await
}

/// What every listing checks first: limits and faults, the token, the environment; then its
/// query's parameters.
async fn admit_listing(
    state: &TenantState,
    connection: &ConnectionControl,
    environment: &str,
    query: Option<String>,
    headers: &HeaderMap,
) -> Result<(Uuid, HashMap<String, String>), Refusal> {
    admit(state, connection, parse_id(environment), None).await?;
    let environment = authorize_and_find(state, headers, environment)?;
    let query = serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    Ok((environment, query))
}

/// `GET /populations` or `/groups`, optionally with `filter=name eq "..."`: the populations or
/// groups the directory's users of that environment belong to, each with its stable ID.
async fn list_collection(
    collection: Collection,
    State(state): Tenant,
    Extension(connection): Extension<ConnectionControl>,
    Path(environment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, Refusal> {
    let (environment, query) =
        admit_listing(&state, &connection, &environment, query, &headers).await?;
    let wanted = match query.get("filter") {
        None => None,
        Some(text) => Some(parse_name_filter(text).ok_or(Refusal::InvalidData {
            detail_code: "INVALID_FILTER",
            target: "filter",
            message: "Only filters of the form name eq \"...\" are supported.",
        })?),
    };
    let mut names: Vec<&str> = state
        .directory(environment)
        .flat_map(|user| match collection {
            Collection::Populations => vec![user.population.as_str()],
            Collection::Groups => user.groups.iter().map(String::as_str).collect(),
        })
        .filter(|name| !name.is_empty())
        .filter(|name| {
            wanted
                .as_deref()
                .is_none_or(|wanted| name.eq_ignore_ascii_case(wanted))
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let kind = match collection {
        Collection::Populations => "populations",
        Collection::Groups => "groups",
    };
    let items: Vec<_> = names
        .iter()
        .map(|name| {
            let id = directory_object_id(environment, name);
            json!({
                "_links": { "self": { "href": format!(
                    "{}/environments/{environment}/{kind}/{id}", state.api_url
                ) } },
                "id": id,
                "name": name,
                "environment": { "id": environment },
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "_links": { "self": { "href": format!("{}/environments/{environment}/{kind}", state.api_url) } },
        "_embedded": { kind: items },
        "count": items.len(),
        "size": items.len(),
    })))
}

fn directory_user_body(state: &TenantState, user: &DirectoryUser) -> serde_json::Value {
    json!({
        "_links": { "self": { "href": format!(
            "{}/environments/{}/users/{}", state.api_url, user.environment_id, user.id
        ) } },
        "id": user.id,
        "environment": { "id": user.environment_id },
        "username": user.username,
        "email": user.email,
        "population": user.population_id().map(|id| json!({ "id": id })),
        "enabled": true,
    })
}

/// Applies the rate limits, the planned latency and any injected fault. `Ok` means the request
/// goes on to be served; resets and hangs never return.
async fn admit(
    state: &TenantState,
    connection: &ConnectionControl,
    environment: Option<Uuid>,
    put_occurrence: Option<(Uuid, Uuid, u64)>,
) -> Result<(), Refusal> {
    if state.in_outage() {
        return Err(Refusal::Outage);
    }
    let limited = state.check_rate_limits(environment);
    let plan = match put_occurrence {
        Some((environment, user, occurrence)) => {
            plan_request(&state.config, &(environment, user), occurrence)
        }
        None => plan_request(&state.config, &"unkeyed", state.next_unkeyed_request()),
    };
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if let Err(limited) = limited {
        return Err(match state.config.limiter {
            LimiterShape::Pingone => Refusal::RateLimited {
                retry_after_seconds: limited.retry_after_seconds,
            },
            LimiterShape::TokenBucket => Refusal::LimitedInFront { html: false },
            LimiterShape::LeakyBucket | LimiterShape::LeakyBurst => {
                Refusal::LimitedInFront { html: true }
            }
        });
    }
    match plan.fault {
        None => Ok(()),
        Some(Fault::Status500) => Err(Refusal::Injected500),
        Some(Fault::Status502) => Err(Refusal::Injected502),
        Some(Fault::Status503) => Err(Refusal::Injected503 {
            retry_after_seconds: state.config.retry_after_503.as_secs(),
        }),
        Some(Fault::Reset) => {
            state.count_reset();
            connection.reset();
            std::future::pending().await
        }
        Some(Fault::Hang) => {
            state.count_hang();
            tokio::time::sleep(state.config.hang_for).await;
            connection.reset();
            std::future::pending().await
        }
    }
}

async fn not_found() -> Refusal {
    Refusal::NotFound
}

async fn method_not_allowed() -> Refusal {
    Refusal::MethodNotAllowed
}

async fn stats(State(state): Tenant) -> Response {
    axum::Json(state.stats()).into_response()
}

async fn stored_state(State(state): Tenant) -> Response {
    axum::Json(json!({ "bypasses": state.bypasses() })).into_response()
}
