//! HTTP to PingOne: the `bypassMFA` PUT and the user, population and group listings, reading
//! their answers, and deciding what an answer means: done, refused for good, or worth another
//! attempt (and after how long).

use std::time::Duration;

use rand::RngExt;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};

use crate::pingone::{BypassRequest, BypassResponse, ErrorBody, ListPage};
use crate::plan::Job;

/// What one attempt came to; `T` is the body a successful answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<T = BypassResponse> {
    /// PingOne answered with success and a body this call understands.
    Success { http_status: u16, answer: T },
    /// PingOne answered with an error status.
    Refused {
        http_status: u16,
        error_code: String,
        error_message: String,
        retry: Retry,
    },
    /// No answer: the connection failed or the request timed out. PUT is idempotent, so
    /// another attempt is always safe.
    NoAnswer { error_message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Never,
    /// Worth another attempt; `after` is the server's `Retry-After`, when it gave one.
    Allowed {
        after: Option<Duration>,
    },
}

impl<T> Attempt<T> {
    pub fn may_retry(&self) -> bool {
        match self {
            Self::Success { .. } => false,
            Self::Refused { retry, .. } => matches!(retry, Retry::Allowed { .. }),
            Self::NoAnswer { .. } => true,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Refused {
                retry: Retry::Allowed { after },
                ..
            } => *after,
            _ => None,
        }
    }

    /// The HTTP status of the answer; `None` when there was none.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Success { http_status, .. } | Self::Refused { http_status, .. } => {
                Some(*http_status)
            }
            Self::NoAnswer { .. } => None,
        }
    }
}

/// Retries after the first attempt, with exponential backoff and full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retries: u32,
    /// The first retry waits up to this long; each later one up to twice the one before.
    pub base_delay: Duration,
    /// No single wait, backoff or `Retry-After`, is longer (Ping's SDKs cap at 30 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: crate::defaults::RETRIES,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A server's own delay for one request (a 503's `Retry-After`): at least that long,
    /// capped like every wait, plus up to half again at random so that rows told the same
    /// delay do not come back together.
    pub fn at_least(&self, after: Duration) -> Duration {
        after
            .min(self.max_delay)
            .mul_f64(1.0 + 0.5 * rand::rng().random::<f64>())
    }

    /// "Full jitter": uniform in zero to the exponential ceiling, so that rows failing
    /// together do not come back together.
    pub fn backoff(&self, retry_number: u32) -> Duration {
        let exponent = retry_number.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        ceiling.mul_f64(rand::rng().random::<f64>())
    }
}

/// Talks to one PingOne API base.
pub struct PingOneClient {
    http: reqwest::Client,
    api_url: String,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl PingOneClient {
    /// `api_url` includes `/v1`; `connections` sizes the idle-connection pool; `extra_roots`
    /// are trusted beside the system's certificates (`--ca-file`).
    pub fn new(
        api_url: &str,
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
        })
    }

    /// One PUT for one row. The URL is built only from the job's checked UUIDs.
    /// The row's `bypassMFA` URL, built only from the job's checked UUIDs.
    fn bypass_url(&self, job: &Job) -> String {
        format!(
            "{}/environments/{}/users/{}/bypassMFA",
            self.api_url, job.environment_id, job.user_id
        )
    }

    pub async fn put_bypass(&self, job: &Job, token: &SecretString) -> Attempt {
        let url = self.bypass_url(job);
        let body = BypassRequest {
            bypass_mfa_enabled_until: job.requested_until.clone(),
        };
        let sent = self
            .http
            .put(url)
            .bearer_auth(token.expose_secret())
            .json(&body)
            .send()
            .await;
        self.answer_of(
            sent,
            token,
            "a bypassMFA answer; check the bypass with GET before retrying",
        )
        .await
    }

    /// One GET of a user's bypass state (`status`). The URL is built only from the job's
    /// checked UUIDs.
    pub async fn get_bypass(&self, job: &Job, token: &SecretString) -> Attempt {
        self.get(&self.bypass_url(job), token, "a bypassMFA answer")
            .await
    }

    /// The URL of `/environments/{environment}/{collection}` (`users`, `populations`,
    /// `groups`) with `filter` and the largest page PingOne serves. Built only from a checked
    /// UUID; the filter is a query value, encoded as one.
    pub fn listing_url(&self, environment: uuid::Uuid, collection: &str, filter: &str) -> String {
        let base = format!("{}/environments/{environment}/{collection}", self.api_url);
        let query = [("filter", filter), ("limit", LISTING_PAGE_SIZE)];
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
    ) -> Attempt<ListPage<T>> {
        self.get(url, token, "a listing").await
    }

    /// One GET of `url`, its answer read as `what`.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        token: &SecretString,
        what: &str,
    ) -> Attempt<T> {
        let sent = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .send()
            .await;
        self.answer_of(sent, token, what).await
    }

    async fn answer_of<T: serde::de::DeserializeOwned>(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
        token: &SecretString,
        expected: &str,
    ) -> Attempt<T> {
        match sent {
            Ok(response) => self.read_answer(response, token, expected).await,
            Err(error) => Attempt::NoAnswer {
                error_message: describe_transport_error(&error, self.timeout),
            },
        }
    }

    async fn read_answer<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        token: &SecretString,
        expected: &str,
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
            return match serde_json::from_slice::<T>(&body) {
                Ok(answer) => Attempt::Success {
                    http_status: status.as_u16(),
                    answer,
                },
                Err(error) => Attempt::Refused {
                    http_status: status.as_u16(),
                    error_code: "UNREADABLE_RESPONSE".to_owned(),
                    error_message: format!(
                        "PingOne answered {status} with a body that is not {expected} ({error})"
                    ),
                    retry: Retry::Never,
                },
            };
        }
        let (error_code, error_message) = describe_error_body(status, &body);
        let error_message = redact_secret(&error_message, token.expose_secret());
        Attempt::Refused {
            http_status: status.as_u16(),
            error_code,
            error_message,
            retry: if is_retryable(status) {
                Retry::Allowed { after: retry_after }
            } else {
                Retry::Never
            },
        }
    }
}

/// The largest page PingOne serves for `/users`; it may serve fewer, which paging follows.
const LISTING_PAGE_SIZE: &str = "200";

/// Ping's guidance: retry 408, 429, 500, 502, 503 and 504; classify by status, since codes
/// within a class may change.
fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// PingOne's `code`, and its message followed by each detail's message, with anything that
/// looks like a token taken out.
fn describe_error_body(status: StatusCode, body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => {
            let mut message = error.message;
            for detail in &error.details {
                message.push_str(" | ");
                if let Some(target) = &detail.target {
                    message.push_str(target);
                    message.push_str(": ");
                }
                message.push_str(&detail.message);
            }
            (redact_token_like(&error.code), redact_token_like(&message))
        }
        Err(_) => (
            String::new(),
            format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_owned(),
        ),
    }
}

/// Replaces every run of 32 or more token characters that mixes letters and digits (a bearer
/// token, a JWT, a client secret) with `[redacted]`, so that an error body quoting one cannot
/// carry it into the results or a log. UUIDs are kept: they name environments and users.
pub fn redact_token_like(text: &str) -> String {
    const MIN_SECRET_LEN: usize = 32;
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let mut redacted = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_token_char) {
        redacted.push_str(&rest[..start]);
        let run_len = rest[start..]
            .find(|c: char| !is_token_char(c))
            .unwrap_or(rest.len() - start);
        let run = &rest[start..start + run_len];
        let mixed = run.contains(|c: char| c.is_ascii_digit())
            && run.contains(|c: char| c.is_ascii_alphabetic());
        let is_uuid = run.len() == 36 && uuid::Uuid::try_parse(run).is_ok();
        if run.len() >= MIN_SECRET_LEN && mixed && !is_uuid {
            redacted.push_str("[redacted]");
        } else {
            redacted.push_str(run);
        }
        rest = &rest[start + run_len..];
    }
    redacted.push_str(rest);
    redacted
}

/// Replaces `secret` wherever it appears, so that a server quoting back a token or a secret of
/// any length cannot carry it into the results or a log.
pub fn redact_secret(text: &str, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) {
        return text.to_owned();
    }
    text.replace(secret, "[redacted]")
}

/// Where a 3xx answer points: the host of its `Location`, or that it had none.
pub fn redirect_target(headers: &HeaderMap) -> String {
    let Some(location) = headers
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
    else {
        return "nowhere (no Location header)".to_owned();
    };
    match reqwest::Url::parse(location) {
        Ok(url) => format!(
            "host {}",
            url.host_str()
                .map_or_else(|| location.to_owned(), str::to_owned)
        ),
        Err(_) => format!("{location:?} on the same host"),
    }
}

/// Why a request got no answer when TLS refused the server's certificate: waiting does not
/// change that, so a token request that meets it is not tried again.
pub const UNTRUSTED_CERTIFICATE: &str = "TLS failed: the server's certificate is not trusted (a corporate proxy's CA goes in --ca-file)";

/// Why a request got no answer, in the admin's terms: refused, DNS, TLS, timeout or the proxy,
/// with the underlying error after it.
pub fn describe_transport_error(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!(
            "no answer within {} (--timeout)",
            humantime::format_duration(timeout)
        );
    }
    let mut causes = Vec::new();
    let mut refused = false;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        causes.push(cause.to_string());
        source = cause.source();
    }
    let detail = causes.join(": ");
    let lower = detail.to_ascii_lowercase();
    let kind = if lower.contains("proxy") || lower.contains("tunnel") {
        "the proxy failed"
    } else if refused || lower.contains("connection refused") {
        "connection refused"
    } else if lower.contains("dns") || lower.contains("lookup address") {
        "DNS lookup failed"
    } else if lower.contains("certificate") {
        UNTRUSTED_CERTIFICATE
    } else if lower.contains("tls") || lower.contains("handshake") {
        "TLS failed"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    let through = error
        .url()
        .and_then(proxy_for)
        .map_or_else(String::new, |proxy| format!(" (through the proxy {proxy})"));
    if detail.is_empty() {
        format!("{kind}{through}")
    } else {
        format!("{kind}{through}: {detail}")
    }
}

/// The proxy the environment sets for `url`, as reqwest reads it (`HTTPS_PROXY`,
/// `ALL_PROXY`, `HTTP_PROXY`), unless `url` is loopback, which never goes through one.
fn proxy_for(url: &reqwest::Url) -> Option<String> {
    if is_loopback_url(url.as_str()) {
        return None;
    }
    let names: &[&str] = if url.scheme() == "https" {
        &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    };
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .map(|value| match reqwest::Url::parse(&value) {
            Ok(proxy) => proxy.host_str().unwrap_or(&value).to_owned(),
            Err(_) => value,
        })
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Loopback hosts: `localhost`, `127.0.0.0/8` and `::1`.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(7)));
        let in_a_minute = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc2822();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&in_a_minute).unwrap_or(HeaderValue::from_static("")),
        );
        let wait = parse_retry_after(&headers).unwrap_or_default();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn only_pingones_transient_statuses_are_retried() {
        let retried: Vec<u16> = (400..600)
            .filter(|code| StatusCode::from_u16(*code).is_ok_and(is_retryable))
            .collect();
        assert_eq!(retried, [408, 429, 500, 502, 503, 504]);
    }

    #[test]
    fn backoff_stays_under_an_exponential_ceiling_capped_at_the_maximum() {
        let policy = RetryPolicy {
            retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..200 {
            assert!(policy.backoff(1) <= Duration::from_millis(100));
            assert!(policy.backoff(3) <= Duration::from_millis(400));
            assert!(policy.backoff(30) <= Duration::from_secs(1));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(4)).collect();
        assert!(spread.len() > 40, "backoff is not jittered");
    }

    #[test]
    fn error_bodies_give_pingones_code_and_every_message() {
        let body = br#"{"id":"1","code":"INVALID_DATA","message":"Bad.","details":[{"code":"INVALID_VALUE","target":"bypassMFAEnabledUntil","message":"Wrong format."}]}"#;
        assert_eq!(
            describe_error_body(StatusCode::BAD_REQUEST, body),
            (
                "INVALID_DATA".to_owned(),
                "Bad. | bypassMFAEnabledUntil: Wrong format.".to_owned()
            )
        );
        assert_eq!(
            describe_error_body(StatusCode::BAD_GATEWAY, b"<html>"),
            (String::new(), "HTTP 502 Bad Gateway".to_owned())
        );
    }

    #[test]
    fn token_like_text_is_redacted_and_ordinary_text_kept() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlMTIzNDU2Nzg5MA";
        let message = format!(
            "Token {jwt} rejected for user 0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01 at 2025-11-30T00:00:00.000Z; secret=Zq3xR8vK1mP0sT5wY7bN2cD4fG6hJ9lA."
        );
        assert_eq!(
            redact_token_like(&message),
            "Token [redacted] rejected for user 0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01 at 2025-11-30T00:00:00.000Z; [redacted]"
        );
        let plain = "The request could not be completed. bypassMFAEnabledUntil: wrong format.";
        assert_eq!(redact_token_like(plain), plain);
    }

    #[test]
    fn loopback_urls_are_recognised() {
        for (url, loopback) in [
            ("http://127.0.0.1:8080/v1", true),
            ("http://127.9.9.9/v1", true),
            ("http://localhost/v1", true),
            ("http://[::1]:80/v1", true),
            ("https://api.pingone.com/v1", false),
            ("http://10.0.0.1/v1", false),
            ("not a url", false),
        ] {
            assert_eq!(is_loopback_url(url), loopback, "{url}");
        }
    }
}
