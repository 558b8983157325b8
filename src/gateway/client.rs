//! HTTP to PingOne: the `bypassMFA` PUT and GET, the user, population and group listings and
//! the audit log's activities,
//! reading their answers, and deciding what an answer means: done, refused for good, or worth
//! another attempt (and after how long).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

pub use super::attempt::{Attempt, Retry, RetryPolicy};
use super::proxy::is_loopback_url;
use super::transport::{
    describe_transport_error, forbidden_meaning, parse_retry_after, redact_token_like,
    redirect_target,
};
use crate::pingone::{
    BypassRequest, BypassState, ErrorAnswer, ListPage, QUOTED_BYTES, RetryAt, SESSION_HEADER,
    TRANSACTION_HEADER,
};

/// Talks to one PingOne API base.
pub struct PingOneClient {
    http: reqwest::Client,
    api_url: String,
    timeout: Duration,
    /// `X-Ping-External-Session-ID` of every request: the run's ID.
    session: HeaderValue,
    /// Numbers the lookups and listings, which name no row, for their transaction IDs.
    requests_named: std::sync::atomic::AtomicU64,
    /// Set when a proxy refused a tunnel: the run stops, since no request will pass it.
    proxy_refusal: std::sync::OnceLock<String>,
}

/// `X-Ping-External-Transaction-ID` of a request: the same on every retry of the same row or
/// lookup, so PingOne's log shows the retries as one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction(HeaderValue);

impl Transaction {
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl PingOneClient {
    /// `api_url` includes `/v1`; `connections` sizes the idle-connection pool; `extra_roots`
    /// are trusted beside the system's certificates (`--ca-file`).
    pub fn new(
        api_url: &str,
        run_id: uuid::Uuid,
        timeout: Duration,
        connections: usize,
        extra_roots: &[reqwest::Certificate],
    ) -> Result<Self, ClientError> {
        // PingOne never redirects this call: a 3xx is a misconfigured URL or someone in the
        // middle, and following it would send the token (or the PUT) elsewhere.
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("pingone-bypass/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true);
        if is_loopback_url(api_url) {
            // A proxy from the environment must not capture traffic meant for this machine.
            builder = builder.no_proxy();
        }
        Ok(Self {
            http: builder
                .tls_certs_merge(extra_roots.iter().cloned())
                .build()?,
            api_url: api_url.trim_end_matches('/').to_owned(),
            timeout,
            session: header_value(&run_id.to_string()),
            requests_named: std::sync::atomic::AtomicU64::new(0),
            proxy_refusal: std::sync::OnceLock::new(),
        })
    }

    /// The transaction of the input row numbered `row`: `<run id>-row-<row>`.
    pub fn row_transaction(&self, row: u64) -> Transaction {
        Transaction(header_value(&format!("{}-row-{row}", self.run_id())))
    }

    /// A transaction of its own for a request that names no row: `<run id>-<what>-<n>`.
    pub fn new_transaction(&self, what: &str) -> Transaction {
        let number = self
            .requests_named
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .saturating_add(1);
        Transaction(header_value(&format!("{}-{what}-{number}", self.run_id())))
    }

    fn run_id(&self) -> &str {
        self.session.to_str().unwrap_or_default()
    }

    /// A user's `bypassMFA` URL, built only from checked UUIDs.
    fn bypass_url(&self, environment: uuid::Uuid, user: uuid::Uuid) -> String {
        format!(
            "{}/environments/{environment}/users/{user}/bypassMFA",
            self.api_url
        )
    }

    /// One PUT of a user's bypass expiry, `until` in PingOne's one format. A 2xx is a success
    /// whatever its body: PingOne granted it.
    pub async fn put_bypass(
        &self,
        (environment, user): (uuid::Uuid, uuid::Uuid),
        until: &str,
        token: &SecretString,
        transaction: &Transaction,
    ) -> Attempt {
        let body = BypassRequest {
            bypass_mfa_enabled_until: until.to_owned(),
        };
        let sent = self
            .correlated(
                self.http.put(self.bypass_url(environment, user)),
                transaction,
            )
            .bearer_auth(token.expose_secret())
            .json(&body)
            .send()
            .await;
        self.answer_of(sent, |body| Ok(BypassState::read(body)))
            .await
    }

    /// One GET of a user's bypass state. The body must be read to know the state, so one
    /// that cannot be read is not a success here.
    pub async fn get_bypass(
        &self,
        (environment, user): (uuid::Uuid, uuid::Uuid),
        token: &SecretString,
        transaction: &Transaction,
    ) -> Attempt {
        self.get(
            &self.bypass_url(environment, user),
            token,
            transaction,
            |body| {
                let state = BypassState::read(body);
                match state.unreadable {
                    Some(why) => Err(NotTheAnswer::Bypass(why)),
                    None => Ok(state),
                }
            },
        )
        .await
    }

    fn correlated(
        &self,
        request: reqwest::RequestBuilder,
        transaction: &Transaction,
    ) -> reqwest::RequestBuilder {
        request
            .header(SESSION_HEADER, self.session.clone())
            .header(TRANSACTION_HEADER, transaction.0.clone())
    }

    /// The URL of `/environments/{environment}/{collection}` (`users`, `populations`,
    /// `groups`) with `filter` and the largest page PingOne serves. Built only from a checked
    /// UUID; the filter is a query value, encoded as one.
    pub fn listing_url(&self, environment: uuid::Uuid, collection: &str, filter: &str) -> String {
        let page_size = if collection == "activities" {
            ACTIVITIES_PAGE_SIZE
        } else {
            LISTING_PAGE_SIZE
        };
        let base = format!("{}/environments/{environment}/{collection}", self.api_url);
        let query = [("filter", filter), ("limit", page_size)];
        match serde_urlencoded::to_string(query) {
            Ok(query) => format!("{base}?{query}"),
            Err(_) => base,
        }
    }

    /// A listing's `next` link, if it leads to the same listing on this API base: a link
    /// elsewhere would take the token with it, so it is not followed.
    pub fn next_page_url(&self, listing_url: &str, next: &str) -> Option<String> {
        let listing = reqwest::Url::parse(listing_url).ok()?;
        let next_url = reqwest::Url::parse(next).ok()?;
        (next_url.scheme() == listing.scheme()
            && next_url.host() == listing.host()
            && next_url.port_or_known_default() == listing.port_or_known_default()
            && next_url.path() == listing.path()
            && next_url.username().is_empty())
        .then(|| next.to_owned())
    }

    /// One page of a listing.
    pub async fn get_page<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        token: &SecretString,
        transaction: &Transaction,
    ) -> Attempt<ListPage<T>> {
        self.get(url, token, transaction, |body| {
            serde_json::from_slice(body).map_err(NotTheAnswer::Listing)
        })
        .await
    }

    /// One GET of `url`, its answer read by `decode`.
    async fn get<T>(
        &self,
        url: &str,
        token: &SecretString,
        transaction: &Transaction,
        decode: impl FnOnce(&[u8]) -> Result<T, NotTheAnswer>,
    ) -> Attempt<T> {
        let sent = self
            .correlated(self.http.get(url), transaction)
            .bearer_auth(token.expose_secret())
            .send()
            .await;
        self.answer_of(sent, decode).await
    }

    async fn answer_of<T>(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
        decode: impl FnOnce(&[u8]) -> Result<T, NotTheAnswer>,
    ) -> Attempt<T> {
        let error = match sent {
            Ok(response) => return self.read_answer(response, decode).await,
            Err(error) => error,
        };
        let refusal = match error.url() {
            Some(url) => super::proxy::refusal_of(&error, url).await,
            None => None,
        };
        if let Some(refusal) = refusal {
            let message = refusal.to_string();
            let _ = self.proxy_refusal.set(message.clone());
            return Attempt::NoAnswer {
                error_message: message,
            };
        }
        Attempt::NoAnswer {
            error_message: crate::secrets::scrub(&describe_transport_error(&error, self.timeout)),
        }
    }

    /// What a proxy said when it refused a tunnel, once one has.
    pub(crate) fn proxy_refusal(&self) -> Option<&str> {
        self.proxy_refusal.get().map(String::as_str)
    }

    async fn read_answer<T>(
        &self,
        response: reqwest::Response,
        decode: impl FnOnce(&[u8]) -> Result<T, NotTheAnswer>,
    ) -> Attempt<T> {
        let status = response.status();
        if status.is_redirection() {
            return Attempt::Refused {
                http_status: status.as_u16(),
                error_code: "REDIRECTED".to_owned(),
                error_message: format!(
                    "answered HTTP {} redirecting to {}; PingOne never redirects this call, so it was not followed: check --api-url / --region and any proxy in between",
                    status.as_u16(),
                    redirect_target(response.headers())
                ),
                retry: Retry::Never,
            };
        }
        let retry_after = parse_retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => {
                return Attempt::NoAnswer {
                    error_message: format!(
                        "the answer (HTTP {}) broke off: {}",
                        status.as_u16(),
                        describe_transport_error(&error, self.timeout)
                    ),
                };
            }
        };
        if status.is_success() {
            return match decode(&body) {
                Ok(answer) => Attempt::Success {
                    http_status: status.as_u16(),
                    answer,
                },
                Err(expected) => Attempt::Refused {
                    http_status: status.as_u16(),
                    error_code: UNREADABLE_RESPONSE.to_owned(),
                    error_message: crate::secrets::scrub(&redact_token_like(&format!(
                        "PingOne answered {status} with a body that is not {expected}"
                    ))),
                    retry: Retry::Never,
                },
            };
        }
        let error = describe_error_body(status, &body, &self.api_url);
        // Ping's schema lets a 429 give its wait only in the body (`innerError.retryAfter`).
        let retry_after = retry_after.or(error.retry_after);
        Attempt::Refused {
            http_status: status.as_u16(),
            error_code: error.code,
            error_message: crate::secrets::scrub(&error.message),
            retry: if is_retryable(status) {
                Retry::Allowed { after: retry_after }
            } else {
                Retry::Never
            },
        }
    }
}

/// What a successful answer's body was expected to be and was not: the end of the sentence
/// "PingOne answered 200 OK with a body that is not …".
#[derive(Debug, thiserror::Error)]
pub enum NotTheAnswer {
    #[error("a bypassMFA answer: {0}")]
    Bypass(String),
    #[error("a listing ({0})")]
    Listing(serde_json::Error),
}

/// `error_code` of an answer whose body could not be read: on a success to a PUT, a warning
/// (PingOne granted it); on anything else, a failure.
pub const UNREADABLE_RESPONSE: &str = "UNREADABLE_RESPONSE";

/// A header value of the tool's own making (a UUID, digits, letters and `-`), kept to the 100
/// characters PingOne records.
fn header_value(text: &str) -> HeaderValue {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(100)
        .collect();
    HeaderValue::from_str(&kept).unwrap_or(HeaderValue::from_static("pingone-bypass"))
}

/// The largest page PingOne serves for `/users`; it may serve fewer, which paging follows.
const LISTING_PAGE_SIZE: &str = "200";

/// The page of audit activities asked for: Ping publishes no largest page for `/activities`,
/// and may serve fewer, which paging follows; fewer, larger pages spend less of its low limit.
const ACTIVITIES_PAGE_SIZE: &str = "1000";

/// Ping's guidance: retry 408, 429, 500, 502, 503 and 504; classify by status, since codes
/// within a class may change.
fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// What an error answer says, as the results record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DescribedError {
    code: String,
    message: String,
    retry_after: Option<Duration>,
}

/// PingOne's `code`, and its message followed by each detail's (target first), then what a 403
/// may mean and PingOne's error ID, with anything that looks like a token taken out. A body that
/// is not PingOne's JSON (a proxy's page) is described by its status and its first bytes.
pub(crate) fn describe_error_body(
    status: StatusCode,
    body: &[u8],
    api_url: &str,
) -> DescribedError {
    let status_line = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned();
    let Some(error) = ErrorAnswer::read(body) else {
        let message = if body.iter().all(u8::is_ascii_whitespace) {
            status_line
        } else {
            format!(
                "{status_line}; the answer is not PingOne's (a proxy in between?): {}",
                crate::pingone::quote_bytes(body, QUOTED_BYTES)
            )
        };
        return DescribedError {
            code: String::new(),
            message: redact_token_like(&with_forbidden_hint(
                status,
                &ErrorAnswer::default(),
                message,
                api_url,
            )),
            retry_after: None,
        };
    };
    let mut message = error.message.clone().unwrap_or_else(|| status_line.clone());
    for detail in &error.details {
        let Some(text) = detail.message.as_deref().or(detail.code.as_deref()) else {
            continue;
        };
        message.push_str(" | ");
        if let Some(target) = &detail.target {
            message.push_str(target);
            message.push_str(": ");
        }
        message.push_str(text);
    }
    let mut message = with_forbidden_hint(status, &error, message, api_url);
    if let Some(id) = error.id.as_deref().filter(|id| !id.trim().is_empty()) {
        message.push_str(" [PingOne error id ");
        message.push_str(id.trim());
        message.push(']');
    }
    let retry_after = error.retry_after().map(|at| match at {
        RetryAt::Seconds(seconds) => Duration::from_secs(seconds),
        RetryAt::Instant(instant) => (instant - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO),
    });
    DescribedError {
        code: redact_token_like(error.code.as_deref().unwrap_or("")),
        message: redact_token_like(&message),
        retry_after,
    }
}

/// A 403 from PingOne means one of three things, and the admin must know all three; a license
/// limit is named as such.
fn with_forbidden_hint(
    status: StatusCode,
    error: &ErrorAnswer,
    message: String,
    api_url: &str,
) -> String {
    if status != StatusCode::FORBIDDEN {
        return message;
    }
    if error.has_detail("LICENSE_EXCEEDED") {
        return format!(
            "{message} (LICENSE_EXCEEDED: the PingOne license's limit is reached; ask your PingOne administrator)"
        );
    }
    let host = reqwest::Url::parse(api_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| api_url.to_owned());
    format!("{message} ({})", forbidden_meaning(&host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pingones_transient_statuses_are_retried() {
        let retried: Vec<u16> = (400..600)
            .filter(|code| StatusCode::from_u16(*code).is_ok_and(is_retryable))
            .collect();
        assert_eq!(retried, [408, 429, 500, 502, 503, 504]);
    }

    #[test]
    fn error_bodies_give_pingones_code_and_every_message() {
        let body = br#"{"id":"1","code":"INVALID_DATA","message":"Bad.","details":[{"code":"INVALID_VALUE","target":"bypassMFAEnabledUntil","message":"Wrong format."}]}"#;
        let described = describe_error_body(StatusCode::BAD_REQUEST, body, API);
        assert_eq!(
            (described.code.as_str(), described.message.as_str()),
            (
                "INVALID_DATA",
                "Bad. | bypassMFAEnabledUntil: Wrong format. [PingOne error id 1]"
            )
        );
        let proxy = describe_error_body(
            StatusCode::BAD_GATEWAY,
            b"<html>\n<body>\x00Bad\tgateway</body></html>",
            API,
        );
        assert_eq!(
            (proxy.code.as_str(), proxy.message.as_str()),
            (
                "",
                "HTTP 502 Bad Gateway; the answer is not PingOne's (a proxy in between?): \"<html> <body> Bad gateway</body></html>\""
            )
        );
    }

    const API: &str = "https://api.pingone.eu/v1";

    #[test]
    fn a_page_that_is_not_pingones_has_token_like_text_taken_out() {
        let page = b"<html>session eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl expired</html>";
        let described = describe_error_body(StatusCode::BAD_GATEWAY, page, API);
        assert!(
            described.message.contains("[redacted]"),
            "{}",
            described.message
        );
        assert!(!described.message.contains("eyJ"), "{}", described.message);
    }

    #[test]
    fn an_error_body_without_id_or_message_keeps_its_code_and_details() {
        let described = describe_error_body(
            StatusCode::NOT_FOUND,
            br#"{"code":"NOT_FOUND","details":[{"target":"user"},{"code":"X","message":5}]}"#,
            API,
        );
        assert_eq!(described.code, "NOT_FOUND");
        assert_eq!(described.message, "HTTP 404 Not Found | X");
    }

    #[test]
    fn a_403_names_every_thing_it_may_mean_and_a_license_limit_as_such() {
        let forbidden = describe_error_body(
            StatusCode::FORBIDDEN,
            br#"{"code":"ACCESS_FAILED","message":"No access."}"#,
            API,
        );
        for meaning in [
            "does not exist",
            "another region than api.pingone.eu",
            "Identity Data Admin",
        ] {
            assert!(forbidden.message.contains(meaning), "{}", forbidden.message);
        }
        let license = describe_error_body(
            StatusCode::FORBIDDEN,
            br#"{"code":"ACCESS_FAILED","message":"No.","details":[{"code":"LICENSE_EXCEEDED","message":"Over."}]}"#,
            API,
        );
        assert!(
            license
                .message
                .contains("LICENSE_EXCEEDED: the PingOne license"),
            "{}",
            license.message
        );
    }

    #[test]
    fn a_429_without_retry_after_waits_as_its_body_says() {
        let in_seconds = describe_error_body(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"code":"REQUEST_LIMITED","details":[{"code":"LIMIT_EXCEEDED","innerError":{"retryAfter":"7"}}]}"#,
            API,
        );
        assert_eq!(in_seconds.retry_after, Some(Duration::from_secs(7)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(20))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let body = format!(
            r#"{{"code":"REQUEST_LIMITED","details":[{{"code":"LIMIT_EXCEEDED","innererror":{{"retryAfter":"{soon}"}}}}]}}"#
        );
        let at_an_instant =
            describe_error_body(StatusCode::TOO_MANY_REQUESTS, body.as_bytes(), API);
        let wait = at_an_instant.retry_after.unwrap_or_default();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
    }
}
