//! The simulated tenant's audit log, as PingOne keeps one: every `bypassMFA` PUT that reached
//! the service (granted or refused) becomes an activity with the request's external IDs as
//! PingOne records them, readable at `/environments/{id}/activities` (GET, or POST with the
//! filter in a JSON body) after a lag, by a filter that must hold a date range within the last
//! 14 days, page by page, under the audit API's own rate limit. A specification can take an
//! activity away or add one the tool never caused, so that `verify --pingone` is specified
//! against every disagreement it must find.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::audit_log::{AddedActivity, AuditActivity, READABLE_DAYS, recorded_external_id};
use super::gate::{admit_audit, authorize_and_find};
use super::refusal::Refusal;
use super::state::TenantState;
use super::wire::Tenant;
use crate::pingone::format_bypass_until;

/// Activities a page holds when the request does not say, and the most it may ask for.
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

impl TenantState {
    /// Logs one bypass PUT that reached the service, with the headers it carried.
    pub(super) fn log_put(
        &self,
        (environment_id, user_id): (Uuid, Uuid),
        headers: &HeaderMap,
        outcome: Result<(), &Refusal>,
    ) {
        let external = |name: &str| {
            headers
                .get(name)
                .map(|value| recorded_external_id(value.as_bytes()))
        };
        self.audit.record(AuditActivity {
            id: Uuid::new_v4(),
            recorded_at: Utc::now(),
            environment_id,
            user_id,
            client_id: self.credentials.client_id,
            correlation_id: Uuid::new_v4(),
            session_id: external(crate::pingone::SESSION_HEADER),
            transaction_id: external(crate::pingone::TRANSACTION_HEADER),
            succeeded: outcome.is_ok(),
            description: match outcome {
                Ok(()) => "Passed".to_owned(),
                Err(refusal) => refusal.audit_description().to_owned(),
            },
        });
    }

    pub(super) fn add_activity(&self, added: AddedActivity) {
        self.audit.record(AuditActivity {
            id: Uuid::new_v4(),
            recorded_at: Utc::now(),
            environment_id: added.environment_id,
            user_id: added.user_id,
            client_id: self.credentials.client_id,
            correlation_id: Uuid::new_v4(),
            session_id: Some(recorded_external_id(added.session_id.as_bytes())),
            transaction_id: Some(recorded_external_id(added.transaction_id.as_bytes())),
            succeeded: added.succeeded,
            description: "Passed".to_owned(),
        });
    }
}

/// What a filter may compare, and how.
#[derive(Debug, Default, PartialEq)]
struct ActivityFilter {
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    /// `attribute eq "value"` terms, attribute lower-cased.
    equal: Vec<(String, String)>,
}

/// Attributes Ping documents `eq` for on activities.
const EQUAL_ATTRIBUTES: [&str; 7] = [
    "actors.client.id",
    "actors.user.id",
    "resources.id",
    "resources.type",
    "action.type",
    "correlationid",
    "resources.population.id",
];

/// Why a filter was refused, in PingOne's words for its 400.
#[derive(Debug, PartialEq, Eq)]
enum FilterProblem {
    Syntax,
    NoDateRange,
    OlderThanReadable,
}

impl FilterProblem {
    fn refusal(&self) -> Refusal {
        Refusal::InvalidData {
            detail_code: "INVALID_FILTER",
            target: "filter",
            message: match self {
                Self::Syntax => {
                    "The filter is not valid: use recordedat or createdat gt/ge/lt/le, and actors.client.id, actors.user.id, resources.id, resources.type, action.type or correlationid eq, joined by and."
                }
                Self::NoDateRange => {
                    "The filter must hold a date range: recordedat (or createdat) gt \"...\" and lt \"...\"."
                }
                Self::OlderThanReadable => {
                    "The date range reaches back more than 14 days; older activities must be restored first."
                }
            },
        }
    }
}

impl ActivityFilter {
    /// Reads `text` (terms joined by `and`); a date range within the last 14 days is required.
    fn parse(text: &str, now: DateTime<Utc>) -> Result<Self, FilterProblem> {
        let mut filter = Self::default();
        let mut rest = text.trim();
        loop {
            let (attribute, after_attribute) = rest.split_once(' ').ok_or(FilterProblem::Syntax)?;
            let (operator, after_operator) = after_attribute
                .trim_start()
                .split_once(' ')
                .ok_or(FilterProblem::Syntax)?;
            let (value, after_value) = quoted(after_operator.trim_start())?;
            filter.add(&attribute.to_ascii_lowercase(), operator, value)?;
            let after_value = after_value.trim_start();
            if after_value.is_empty() {
                break;
            }
            let (joiner, next) = after_value.split_once(' ').ok_or(FilterProblem::Syntax)?;
            if !joiner.eq_ignore_ascii_case("and") {
                return Err(FilterProblem::Syntax);
            }
            rest = next.trim_start();
        }
        let (Some(after), Some(_)) = (filter.after, filter.before) else {
            return Err(FilterProblem::NoDateRange);
        };
        if after < now - chrono::Duration::days(READABLE_DAYS) {
            return Err(FilterProblem::OlderThanReadable);
        }
        Ok(filter)
    }

    fn add(&mut self, attribute: &str, operator: &str, value: String) -> Result<(), FilterProblem> {
        let operator = operator.to_ascii_lowercase();
        if attribute == "recordedat" || attribute == "createdat" {
            let instant = DateTime::parse_from_rfc3339(&value)
                .map_err(|_| FilterProblem::Syntax)?
                .with_timezone(&Utc);
            match operator.as_str() {
                "gt" | "ge" => self.after = Some(instant),
                "lt" | "le" => self.before = Some(instant),
                _ => return Err(FilterProblem::Syntax),
            }
            return Ok(());
        }
        if operator != "eq" || !EQUAL_ATTRIBUTES.contains(&attribute) {
            return Err(FilterProblem::Syntax);
        }
        self.equal.push((attribute.to_owned(), value));
        Ok(())
    }

    fn selects(&self, activity: &AuditActivity) -> bool {
        let in_range = self.after.is_none_or(|after| activity.recorded_at >= after)
            && self
                .before
                .is_none_or(|before| activity.recorded_at <= before);
        in_range
            && self.equal.iter().all(|(attribute, value)| {
                let same = |id: Uuid| id.to_string().eq_ignore_ascii_case(value);
                match attribute.as_str() {
                    "actors.client.id" => same(activity.client_id),
                    "resources.id" => same(activity.user_id),
                    "correlationid" => same(activity.correlation_id),
                    "resources.type" => value.eq_ignore_ascii_case("USER"),
                    // No user acts in these (a worker application does), and the action's type
                    // is the simulator's own guess at PingOne's.
                    _ => false,
                }
            })
    }
}

/// A double-quoted value with `\"` and `\\` escapes, and what follows it.
fn quoted(text: &str) -> Result<(String, &str), FilterProblem> {
    let inner = text.strip_prefix('"').ok_or(FilterProblem::Syntax)?;
    let mut value = String::new();
    let mut characters = inner.char_indices();
    while let Some((at, c)) = characters.next() {
        match c {
            '"' => return Ok((value, &inner[at + 1..])),
            '\\' => value.push(characters.next().ok_or(FilterProblem::Syntax)?.1),
            _ => value.push(c),
        }
    }
    Err(FilterProblem::Syntax)
}

/// `GET .../activities?filter=…&limit=…&cursor=…`.
pub(super) async fn list_activities(
    state: Tenant,
    Path(environment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, Refusal> {
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    activities_page(state, &environment, &query, &headers).await
}

/// `POST .../activities` with `{"filter": …, "limit": …}`, which keeps the filter out of URLs.
pub(super) async fn search_activities(
    state: Tenant,
    Path(environment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, Refusal> {
    #[derive(Deserialize)]
    struct Search {
        filter: Option<String>,
        limit: Option<serde_json::Value>,
    }
    let search: Search = serde_json::from_slice(&body).map_err(|_| Refusal::UnparsableJson)?;
    let mut query = HashMap::new();
    if let Some(filter) = search.filter {
        query.insert("filter".to_owned(), filter);
    }
    if let Some(limit) = search.limit {
        query.insert(
            "limit".to_owned(),
            limit.to_string().trim_matches('"').to_owned(),
        );
    }
    activities_page(state, &environment, &query, &headers).await
}

async fn activities_page(
    State(state): Tenant,
    environment: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Json<serde_json::Value>, Refusal> {
    admit_audit(&state).await?;
    let environment = authorize_and_find(&state, headers, environment)?;
    if !state.config.audit_permission {
        return Err(Refusal::Forbidden);
    }
    let now = Utc::now();
    let text = query
        .get("filter")
        .ok_or_else(|| FilterProblem::NoDateRange.refusal())?;
    let filter = ActivityFilter::parse(text, now).map_err(|problem| problem.refusal())?;
    let asked = query
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok());
    if let (Some(asked), Some(largest)) = (asked, state.config.audit_largest_limit)
        && asked > largest
    {
        return Err(Refusal::InvalidData {
            detail_code: "INVALID_VALUE",
            target: "limit",
            message: "The limit is larger than this endpoint serves.",
        });
    }
    let limit = asked
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE.min(state.config.audit_page_size.max(1)));
    let offset = query
        .get("cursor")
        .and_then(|cursor| cursor.parse::<usize>().ok())
        .unwrap_or(0);
    let matching = state.audit.matching(
        |activity| activity.environment_id == environment && filter.selects(activity),
        now,
        state.config.audit_lag,
    );
    let page: Vec<_> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|activity| activity_body(&state, activity))
        .collect();
    let list_href = format!("{}/environments/{environment}/activities", state.api_url);
    let mut links = json!({ "self": { "href": list_href } });
    let shown = offset.saturating_add(page.len());
    if shown < matching.len() {
        let next = [
            ("filter", text.clone()),
            ("limit", limit.to_string()),
            ("cursor", shown.to_string()),
        ];
        let next_query = serde_urlencoded::to_string(next).unwrap_or_default();
        links["next"] = json!({ "href": format!("{list_href}?{next_query}") });
    }
    Ok(Json(json!({
        "_links": links,
        "_embedded": { "activities": page },
        "count": matching.len(),
        "size": page.len(),
    })))
}

/// An activity as PingOne's audit API words one. Which `action.type` a bypass change is logged
/// with is not published; the simulator's guess varies with the answer shape, so that a client
/// relying on it fails here.
fn activity_body(state: &TenantState, activity: &AuditActivity) -> serde_json::Value {
    let environment = activity.environment_id;
    let action = match state.config.answer_shape {
        super::config::AnswerShape::Varied => ("MFA_SETTINGS.UPDATED", "MFA Settings Updated"),
        _ => ("USER.UPDATED", "User Updated"),
    };
    let mut body = json!({
        "_links": { "self": { "href": format!(
            "{}/environments/{environment}/activities/{}", state.api_url, activity.id
        ) } },
        "id": activity.id,
        "recordedAt": format_bypass_until(activity.recorded_at),
        "createdAt": format_bypass_until(activity.recorded_at),
        "correlationId": activity.correlation_id,
        "action": { "type": action.0, "description": action.1 },
        "actors": { "client": {
            "id": activity.client_id,
            "name": "pingone-bypass rehearsal worker",
            "type": "CLIENT",
            "environment": { "id": state.credentials.environment_id },
        } },
        "resources": [{
            "type": "USER",
            "id": activity.user_id,
            "name": activity.user_id,
            "environment": { "id": environment },
            "href": format!("{}/environments/{environment}/users/{}", state.api_url, activity.user_id),
        }],
        "result": {
            "status": if activity.succeeded { "SUCCESS" } else { "FAILED" },
            "description": activity.description,
        },
        "tags": ["adminIdentityEvent"],
    });
    if activity.session_id.is_some() || activity.transaction_id.is_some() {
        body["externalCorrelation"] = json!({
            "sessionId": activity.session_id,
            "transactionId": activity.transaction_id,
        });
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-08T12:00:00Z")
            .map(|instant| instant.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_filter_needs_a_date_range_within_fourteen_days_and_only_known_attributes() {
        let range = r#"recordedat gt "2026-12-08T10:00:00.000Z" and recordedat lt "2026-12-08T11:00:00.000Z""#;
        assert!(ActivityFilter::parse(range, now()).is_ok());
        assert!(
            ActivityFilter::parse(
                &format!(
                    r#"{range} AND actors.client.id eq "6b3e4c1a-0000-4000-8000-000000000001""#
                ),
                now()
            )
            .is_ok()
        );
        for (filter, problem) in [
            (
                r#"actors.client.id eq "x""#.to_owned(),
                FilterProblem::NoDateRange,
            ),
            (
                r#"recordedat gt "2026-12-08T10:00:00.000Z""#.to_owned(),
                FilterProblem::NoDateRange,
            ),
            (format!(r#"{range} and user.name eq "x""#), FilterProblem::Syntax),
            (format!(r#"{range} or resources.id eq "x""#), FilterProblem::Syntax),
            (format!(r#"{range} and resources.id sw "x""#), FilterProblem::Syntax),
            (
                r#"recordedat gt "2026-11-20T10:00:00.000Z" and recordedat lt "2026-12-08T11:00:00.000Z""#
                    .to_owned(),
                FilterProblem::OlderThanReadable,
            ),
        ] {
            assert_eq!(ActivityFilter::parse(&filter, now()), Err(problem), "{filter}");
        }
    }

    #[test]
    fn external_ids_are_recorded_as_pingone_records_them() {
        assert_eq!(
            recorded_external_id(b"run-1.a/b@c=d#e+f_g"),
            "run-1.a/b@c=d#e+f_g"
        );
        assert_eq!(recorded_external_id("a b;c\u{e9}".as_bytes()), "a_b_c_");
        assert_eq!(recorded_external_id(&[b'x'; 150]).len(), 100);
    }
}
