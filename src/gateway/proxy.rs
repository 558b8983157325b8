//! A proxy's refusal, told as the proxy's: a forward proxy that answers the tunnel (`CONNECT`)
//! with 407 wants credentials (or other ones), and one that answers 403 refuses the
//! destination. Neither is PingOne being down, and no retry changes either, so the run stops
//! at once with a message that names the proxy by host and port, never its user or password.
//!
//! reqwest (through hyper-util's tunnel) tells a 407 apart ("proxy authorization required")
//! but words every other refusal "unsuccessful", hiding the proxy's status. So when a tunnel
//! fails that way, this asks the proxy once more itself: one `CONNECT` of its own, with the
//! same credentials, reading only the status line of the answer. Written by hand because no
//! crate exposes the status of a failed tunnel; it is a few lines of HTTP/1.1 over a socket.

use std::time::Duration;

use base64::Engine;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a proxy said to a tunnel it would not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyRefusal {
    /// 407: it wants credentials, or other ones than those given.
    Credentials {
        proxy: String,
        had_credentials: bool,
    },
    /// 403: it will not open a tunnel to this destination.
    Destination { proxy: String, destination: String },
}

impl std::fmt::Display for ProxyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Credentials {
                proxy,
                had_credentials: true,
            } => write!(
                f,
                "the proxy {proxy} refused the credentials in its URL (407 Proxy Authentication Required): check the user and password in HTTPS_PROXY (percent-encoded, e.g. %40 for @)"
            ),
            Self::Credentials {
                proxy,
                had_credentials: false,
            } => write!(
                f,
                "the proxy {proxy} wants credentials (407 Proxy Authentication Required): put them in HTTPS_PROXY as http://USER:PASSWORD@{proxy}"
            ),
            Self::Destination { proxy, destination } => write!(
                f,
                "the proxy {proxy} refused to open a tunnel to {destination} (403 Forbidden): ask its administrators to allow {destination}, or set NO_PROXY if this host must not go through it"
            ),
        }
    }
}

/// The longest the proxy is given to answer our own `CONNECT`.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// A status line and headers longer than this are not a proxy's answer to `CONNECT`.
const MOST_ANSWER: usize = 16 * 1024;

/// Whether `error`, met sending to `url`, was a proxy refusing the tunnel, and what it said.
/// `None` when it was not a tunnel's failure, or the proxy's answer was not a refusal (a 502
/// when it could not reach the destination is the network's, and may be retried).
pub async fn refusal_of(error: &reqwest::Error, url: &reqwest::Url) -> Option<ProxyRefusal> {
    let chain = error_chain(error);
    if !chain.contains("tunnel error") {
        return None;
    }
    let proxy = proxy_url_for(url)?;
    let shown = shown_as(&proxy)?;
    let had_credentials = !proxy.username().is_empty();
    if chain.contains("proxy authorization required") {
        return Some(ProxyRefusal::Credentials {
            proxy: shown,
            had_credentials,
        });
    }
    let destination = format!("{}:{}", url.host_str()?, url.port_or_known_default()?);
    match tunnel_status(&proxy, &destination).await? {
        407 => Some(ProxyRefusal::Credentials {
            proxy: shown,
            had_credentials,
        }),
        403 => Some(ProxyRefusal::Destination {
            proxy: shown,
            destination,
        }),
        _ => None,
    }
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain.to_ascii_lowercase()
}

/// The proxy the environment sets for `url`, as reqwest reads it: `HTTPS_PROXY` (then
/// `ALL_PROXY`) for https, `HTTP_PROXY` (then `ALL_PROXY`) for http, either spelling, a URL
/// without a scheme taken as `http://`. Loopback destinations never go through one.
pub fn proxy_url_for(url: &reqwest::Url) -> Option<reqwest::Url> {
    if is_loopback_url(url.as_str()) {
        return None;
    }
    let names: &[&str] = if url.scheme() == "https" {
        &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    };
    let value = names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))?;
    reqwest::Url::parse(&value)
        .ok()
        .filter(|proxy| proxy.has_host())
        .or_else(|| reqwest::Url::parse(&format!("http://{value}")).ok())
}

/// A proxy as a message names it: host and port, never its user or password.
pub fn shown_as(proxy: &reqwest::Url) -> Option<String> {
    let host = proxy.host_str()?;
    Some(match proxy.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The status a plain-HTTP proxy answers `CONNECT destination` with, given the credentials
/// of its URL; `None` when it cannot be asked (an https proxy, no answer, no status line).
async fn tunnel_status(proxy: &reqwest::Url, destination: &str) -> Option<u16> {
    if proxy.scheme() != "http" {
        return None;
    }
    let address = format!("{}:{}", proxy.host_str()?, proxy.port_or_known_default()?);
    let mut request = format!("CONNECT {destination} HTTP/1.1\r\nHost: {destination}\r\n");
    if !proxy.username().is_empty() {
        // reqwest decodes the URL's user and password the same way before it sends them.
        let decode = |text: &str| percent_decode_str(text).decode_utf8_lossy().into_owned();
        let credentials = format!(
            "{}:{}",
            decode(proxy.username()),
            decode(proxy.password().unwrap_or_default())
        );
        request.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ));
    }
    request.push_str("\r\n");
    tokio::time::timeout(ASK_TIMEOUT, async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        let mut chunk = [0_u8; 1024];
        while !answer.windows(2).any(|pair| pair == b"\r\n") && answer.len() < MOST_ANSWER {
            let read = stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..read]);
        }
        status_of(&answer)
    })
    .await
    .ok()
    .flatten()
}

/// The status code of an HTTP/1.x status line at the start of `answer`.
fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|&byte| byte == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts
        .next()
        .filter(|version| version.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
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

    #[test]
    fn a_status_line_is_read_and_anything_else_is_not() {
        assert_eq!(
            status_of(b"HTTP/1.1 407 Proxy Authentication Required\r\n"),
            Some(407)
        );
        assert_eq!(
            status_of(b"HTTP/1.0 403 Forbidden\r\nVia: squid\r\n"),
            Some(403)
        );
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b""), None);
    }

    #[test]
    fn a_proxy_is_shown_by_host_and_port_only() {
        let proxy = reqwest::Url::parse("http://alice:s3cr%40t@proxy.corp:3128").ok();
        assert_eq!(
            proxy.as_ref().and_then(shown_as).as_deref(),
            Some("proxy.corp:3128")
        );
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
