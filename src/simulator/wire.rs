//! What every simulated endpoint reads of a request the same way: the tenant's state, IDs as
//! PingOne spells them, and the content type.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use uuid::Uuid;

use super::state::TenantState;

/// The tenant a handler answers for.
pub(super) type Tenant = State<Arc<TenantState>>;

/// PingOne IDs are hyphenated UUIDs; the `uuid` crate also takes braced, URN and bare-hex
/// spellings, which PingOne would not find.
pub(super) fn parse_id(text: &str) -> Option<Uuid> {
    (text.len() == 36)
        .then(|| Uuid::try_parse(text).ok())
        .flatten()
}

pub(super) fn parse_ids(environment: &str, user: &str) -> Option<(Uuid, Uuid)> {
    parse_id(environment).zip(parse_id(user))
}

pub(super) fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(expected))
}
