//! What an exchange with PingOne's servers said below the level of its answers, in words an
//! admin acts on: a transport error (TLS, proxy, timeout, refused connection) named for its
//! cause, a redirect's target, a `Retry-After` read, a 403's three meanings, token-like text
//! taken out of anything quoted, and which URLs are this machine's own. The client and the
//! token source both use them.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// What a 403 in an environment may mean, for the row's message and the stop's.
pub fn forbidden_meaning(api_host: &str) -> String {
    format!(
        "a 403 means the environment does not exist, or is in another region than {api_host} serves (check --region or --api-url), or the worker application lacks a role such as Identity Data Admin there"
    )
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

/// The proxy the environment sets for `url`, by host and port (never its user or password).
fn proxy_for(url: &reqwest::Url) -> Option<String> {
    super::proxy::proxy_url_for(url).and_then(|proxy| super::proxy::shown_as(&proxy))
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

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

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
}
