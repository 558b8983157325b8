//! The PingOne wire format, in one place, so that the simulator and the client agree on it by
//! construction: the one date format `bypassMFA` accepts, request and response bodies, and the
//! error body every PingOne API error carries (docs/pingone.md).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// PingOne's regions and their API and auth bases (`--region`, `PINGONE_REGION_CODE`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "UPPER")]
pub enum Region {
    /// North America (pingone.com)
    #[default]
    Na,
    /// Europe (pingone.eu)
    Eu,
    /// Canada (pingone.ca)
    Ca,
    /// Australia (pingone.com.au)
    Au,
    /// Singapore (pingone.sg)
    Sg,
    /// Asia-Pacific (pingone.asia)
    Ap,
}

impl Region {
    fn domain(self) -> &'static str {
        match self {
            Self::Na => "pingone.com",
            Self::Eu => "pingone.eu",
            Self::Ca => "pingone.ca",
            Self::Au => "pingone.com.au",
            Self::Sg => "pingone.sg",
            Self::Ap => "pingone.asia",
        }
    }

    /// The API base, `/v1` included.
    pub fn api_url(self) -> String {
        format!("https://api.{}/v1", self.domain())
    }

    /// The auth base: token URLs are `<auth base>/<environment>/as/token`.
    pub fn auth_url(self) -> String {
        format!("https://auth.{}", self.domain())
    }
}

/// PingOne's audit log keeps these two request headers with each event (up to 100 characters
/// each): the run's ID, and the row (or lookup) that a request was made for.
pub const SESSION_HEADER: &str = "x-ping-external-session-id";
pub const TRANSACTION_HEADER: &str = "x-ping-external-transaction-id";

/// The only `bypassMFAEnabledUntil` shape PingOne accepts: UTC, milliseconds, `Z`.
const BYPASS_UNTIL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";
/// `2025-11-30T00:00:00.000Z` is exactly this long; chrono's `%Y` and `%.3f` are more lenient
/// when parsing (signs, five-digit years, other fraction widths), so the length pins the shape.
const BYPASS_UNTIL_LEN: usize = 24;

/// Formats an instant the one way PingOne accepts (`2025-11-30T00:00:00.000Z`).
pub fn format_bypass_until(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serde adapter writing an instant in the PingOne format.
pub fn serialize_bypass_until<S: serde::Serializer>(
    instant: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_bypass_until(*instant))
}

/// Parses a `bypassMFAEnabledUntil` value only if it has exactly PingOne's shape and names a real
/// calendar instant; any other spelling of a date is `None`.
pub fn parse_exact_bypass_until(text: &str) -> Option<DateTime<Utc>> {
    if text.len() != BYPASS_UNTIL_LEN || !text.is_ascii() {
        return None;
    }
    let digits_at = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
    let bytes = text.as_bytes();
    if !digits_at.iter().all(|&i| bytes[i].is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(text, BYPASS_UNTIL_FORMAT)
        .ok()
        .map(|naive| naive.and_utc())
}

/// Body of `PUT .../bypassMFA`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BypassRequest {
    #[serde(rename = "bypassMFAEnabledUntil")]
    pub bypass_mfa_enabled_until: String,
}

/// Body of a successful `PUT` or `GET .../bypassMFA`. Both fields are absent on a `GET` for a
/// user who has never had a bypass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BypassResponse {
    #[serde(rename = "_links")]
    pub links: BypassLinks,
    #[serde(
        rename = "bypassMFAEnabledUntil",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bypass_mfa_enabled_until: Option<String>,
    #[serde(
        rename = "canBypassMFA",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub can_bypass_mfa: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BypassLinks {
    #[serde(rename = "self")]
    pub self_link: Link,
    pub user: Link,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
}

/// The body of a PingOne API error as the simulator writes it in its full shape (`{"id",
/// "code", "message", "details": [...]}`); the client reads errors with [`ErrorAnswer`], which
/// needs none of these fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub message: String,
    /// Ping's docs spell it `innererror`, its SDKs `innerError`: both are read.
    #[serde(
        rename = "innerError",
        alias = "innererror",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inner_error: Option<serde_json::Value>,
}

/// What the tool reads from a `bypassMFA` answer (PUT or GET): the expiry and `canBypassMFA`,
/// and nothing else. Ping documents only the request's date format, so the expiry is read as any
/// RFC 3339 instant (`Z` or an offset, 0 to 9 fraction digits) and kept to the milliseconds
/// PingOne stores; `_links` and every other field are ignored. Reading never fails: a body that
/// cannot be read says why in `unreadable`, since for a PUT a 2xx means PingOne granted it
/// whatever the body says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BypassState {
    pub until: Option<DateTime<Utc>>,
    /// Absent in some answers: then whether the bypass is in force follows from `until`.
    pub can_bypass_mfa: Option<bool>,
    /// Why the body could not be read, when it could not.
    pub unreadable: Option<String>,
}

impl BypassState {
    pub fn read(body: &[u8]) -> Self {
        let unreadable = |why: String| Self {
            unreadable: Some(why),
            ..Self::default()
        };
        let value = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(fields)) => fields,
            Ok(_) => return unreadable("the answer is JSON but not an object".to_owned()),
            Err(_) if body.iter().all(u8::is_ascii_whitespace) => {
                return unreadable("the answer has no body".to_owned());
            }
            Err(_) => {
                return unreadable(format!(
                    "the answer is not JSON: {}",
                    quote_bytes(body, QUOTED_BYTES)
                ));
            }
        };
        let can_bypass_mfa = value
            .get("canBypassMFA")
            .and_then(serde_json::Value::as_bool);
        match value.get("bypassMFAEnabledUntil") {
            None | Some(serde_json::Value::Null) => Self {
                until: None,
                can_bypass_mfa,
                unreadable: None,
            },
            Some(serde_json::Value::String(text)) => match parse_instant(text) {
                Some(until) => Self {
                    until: Some(until),
                    can_bypass_mfa,
                    unreadable: None,
                },
                None => unreadable(format!(
                    "its bypassMFAEnabledUntil {} is not a date and time",
                    quote_bytes(text.as_bytes(), QUOTED_BYTES)
                )),
            },
            Some(_) => unreadable("its bypassMFAEnabledUntil is not a string".to_owned()),
        }
    }

    /// Whether the bypass is in force at `now`: PingOne's `canBypassMFA` when it gives one
    /// (a stored expiry may still be refused by policy), and an expiry still to come either way.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.can_bypass_mfa != Some(false) && self.until.is_some_and(|until| until > now)
    }
}

/// Any RFC 3339 instant (`Z` or an offset, any number of fraction digits), cut to milliseconds:
/// how an expiry is read from what PingOne answers, and compared (as an instant, not as text).
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    use chrono::SubsecRound;
    parse_exact_bypass_until(text).or_else(|| {
        DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|instant| instant.with_timezone(&Utc).trunc_subsecs(3))
    })
}

/// How many bytes of a body a message quotes.
pub const QUOTED_BYTES: usize = 120;

/// The first `limit` bytes of `bytes`, as text a message can carry: control characters and
/// bytes that are not UTF-8 are shown escaped, and a cut is marked.
pub fn quote_bytes(bytes: &[u8], limit: usize) -> String {
    let shown = &bytes[..bytes.len().min(limit)];
    let text = String::from_utf8_lossy(shown);
    let mut quoted: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if bytes.len() > limit {
        quoted.push('…');
    }
    format!("\"{quoted}\"")
}

/// A PingOne error body as the client reads it: every field optional (Ping's schema leaves `id`
/// out of 403 and 429 bodies and requires nothing of a 502/503 body), read field by field so
/// that one of an unexpected type loses only itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorAnswer {
    /// PingOne's error ID: what Ping support asks for.
    pub id: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub details: Vec<ErrorAnswerDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorAnswerDetail {
    pub code: Option<String>,
    pub target: Option<String>,
    pub message: Option<String>,
    /// `innerError.retryAfter` of a 429: when the limit lets requests through again.
    pub retry_after: Option<RetryAt>,
}

/// A 429 detail's `retryAfter`: Ping's schema gives a date-time; a number of seconds is read too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAt {
    Instant(DateTime<Utc>),
    Seconds(u64),
}

impl ErrorAnswer {
    /// `None` when the body is not a JSON object (a proxy's HTML page, an empty body).
    pub fn read(body: &[u8]) -> Option<Self> {
        let serde_json::Value::Object(fields) = serde_json::from_slice(body).ok()? else {
            return None;
        };
        let text = |fields: &serde_json::Map<String, serde_json::Value>, name: &str| {
            fields
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let details = fields
            .get("details")
            .and_then(serde_json::Value::as_array)
            .map(|details| {
                details
                    .iter()
                    .filter_map(serde_json::Value::as_object)
                    .map(|detail| ErrorAnswerDetail {
                        code: text(detail, "code"),
                        target: text(detail, "target"),
                        message: text(detail, "message"),
                        retry_after: detail
                            .get("innerError")
                            .or_else(|| detail.get("innererror"))
                            .and_then(|inner| inner.get("retryAfter"))
                            .and_then(read_retry_at),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            id: text(&fields, "id"),
            code: text(&fields, "code"),
            message: text(&fields, "message"),
            details,
        })
    }

    /// Whether any detail has this code (`LICENSE_EXCEEDED`, `INSUFFICIENT_PERMISSIONS`).
    pub fn has_detail(&self, code: &str) -> bool {
        self.details
            .iter()
            .any(|detail| detail.code.as_deref() == Some(code))
    }

    /// The first `innerError.retryAfter` any detail gives.
    pub fn retry_after(&self) -> Option<RetryAt> {
        self.details.iter().find_map(|detail| detail.retry_after)
    }
}

fn read_retry_at(value: &serde_json::Value) -> Option<RetryAt> {
    match value {
        serde_json::Value::Number(seconds) => seconds.as_u64().map(RetryAt::Seconds),
        serde_json::Value::String(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .map(RetryAt::Seconds)
            .or_else(|| parse_instant(text).map(RetryAt::Instant)),
        _ => None,
    }
}

/// The attributes a row may name its user by, besides the ID, as PingOne's user filters spell
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameAttribute {
    Username,
    Email,
}

impl NameAttribute {
    /// The attribute in a SCIM filter, and the column name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
        }
    }

    /// The attribute's value in a listed user.
    pub fn of(self, user: &ListedUser) -> Option<&str> {
        match self {
            Self::Username => user.username.as_deref(),
            Self::Email => user.email.as_deref(),
        }
    }
}

/// `attribute eq "value"`, with the value's `\` and `"` escaped: whatever a cell holds, it
/// stays one quoted value and cannot add a term to the filter.
pub fn filter_term(attribute: &str, value: &str) -> String {
    let mut term = String::with_capacity(attribute.len() + value.len() + 8);
    term.push_str(attribute);
    term.push_str(" eq \"");
    for c in value.chars() {
        if matches!(c, '\\' | '"') {
            term.push('\\');
        }
        term.push(c);
    }
    term.push('"');
    term
}

/// One page of `GET .../users` (or `/populations`, `/groups`): the items under `_embedded`,
/// the total `count` when PingOne gives it, and the cursor link to the next page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListPage<T> {
    #[serde(rename = "_embedded", default = "Embedded::default")]
    pub embedded: Embedded<T>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(rename = "_links", default)]
    pub links: ListLinks,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Embedded<T> {
    /// `users`, `populations`, `groups` or `activities`, after the collection listed.
    #[serde(
        rename = "users",
        alias = "populations",
        alias = "groups",
        alias = "activities",
        default = "Vec::new"
    )]
    pub items: Vec<T>,
}

impl<T> Default for Embedded<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ListLinks {
    #[serde(default)]
    pub next: Option<Link>,
}

/// A user as a listing shows it; only what the tool reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedUser {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A population or group as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedCollection {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// Answer of the token endpoint (`POST {auth}/{envId}/as/token`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Error answer of the token endpoint, which follows OAuth 2.0 rather than PingOne's API shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn each_region_has_its_documented_bases() {
        assert_eq!(Region::Na.api_url(), "https://api.pingone.com/v1");
        assert_eq!(Region::Eu.api_url(), "https://api.pingone.eu/v1");
        assert_eq!(Region::Eu.auth_url(), "https://auth.pingone.eu");
        assert_eq!(Region::Au.api_url(), "https://api.pingone.com.au/v1");
        assert_eq!(Region::Ap.api_url(), "https://api.pingone.asia/v1");
    }

    #[test]
    fn formats_with_milliseconds_and_z() {
        let instant = Utc.with_ymd_and_hms(2025, 11, 30, 0, 0, 0).single();
        assert_eq!(
            instant.map(format_bypass_until).as_deref(),
            Some("2025-11-30T00:00:00.000Z")
        );
    }

    #[test]
    fn exact_format_round_trips() {
        let parsed = parse_exact_bypass_until("2025-11-30T12:34:56.789Z");
        assert_eq!(
            parsed.map(format_bypass_until).as_deref(),
            Some("2025-11-30T12:34:56.789Z")
        );
    }

    #[test]
    fn every_other_spelling_of_a_date_is_refused() {
        for text in [
            "2025-11-30",
            "2025-11-30T00:00:00Z",
            "2025-11-30T00:00:00.0Z",
            "2025-11-30T00:00:00.0000Z",
            "2025-11-30T00:00:00.000+00:00",
            "2025-11-30T00:00:00.000z",
            "2025-11-30 00:00:00.000Z",
            "+2025-11-30T00:00:00.00Z",
            "2025-02-30T00:00:00.000Z",
            "2025-11-30T24:00:00.000Z",
            "２025-11-30T00:00:00.000Z",
            "",
        ] {
            assert_eq!(
                parse_exact_bypass_until(text),
                None,
                "{text:?} was accepted"
            );
        }
    }
}
