//! Access tokens: a ready token, or a worker application's client credentials exchanged at the
//! token endpoint. One token is shared by every sender and renewed ahead of its expiry by a
//! single request while the others wait, never by a stampede. Secrets stay in `secrecy` types
//! and never reach a message.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::proxy::is_loopback_url;
use super::transport::{describe_transport_error, redact_token_like, redirect_target};
use crate::pingone::{OAuthErrorBody, TokenResponse};

/// How a run proves who it is.
#[derive(Clone)]
pub enum Credentials {
    /// A token obtained elsewhere (`--token-file`, `PINGONE_API_ACCESS_TOKEN`); it cannot be
    /// renewed.
    Token(SecretString),
    /// A worker application (`PINGONE_CLIENT_ID`, `PINGONE_CLIENT_SECRET`,
    /// `PINGONE_ENVIRONMENT_ID`).
    Client(ClientCredentials),
}

impl Credentials {
    /// The client whose requests these are, as PingOne's audit log names it (`actors.client.id`):
    /// the worker application's ID, or a ready token's `client_id` claim. A token is read, never
    /// checked: this only says whose activities to look for, it grants nothing.
    pub fn client_id(&self) -> Option<String> {
        use base64::Engine;
        let token = match self {
            Self::Client(client) => return Some(client.client_id.clone()),
            Self::Token(token) => token.expose_secret(),
        };
        let payload = token.split('.').nth(1)?;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
        let client_id = claims.get("client_id")?.as_str()?;
        // Only a hyphenated UUID, as PingOne writes IDs: it goes into a filter.
        (client_id.len() == 36)
            .then(|| uuid::Uuid::try_parse(client_id).ok())
            .flatten()
            .map(|id| id.to_string())
    }
}

#[derive(Clone)]
pub struct ClientCredentials {
    /// `<auth-url>/<environment>/as/token`.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Why no token can be had; either way the run stops, since no row can be sent without one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// PingOne refused the credentials themselves: nothing will work until they are fixed.
    #[error("{0}")]
    Rejected(String),
    /// The token endpoint could not be reached, or kept failing, through every attempt.
    #[error("{0}")]
    Unreachable(String),
    /// A proxy on the way refused the tunnel (407 or 403): nothing will pass it until its
    /// credentials or rules change. The message names the proxy by host and port only.
    #[error("{0}")]
    ProxyRefused(String),
}

impl AuthError {
    /// The `error_code` of the rows the run could not send because of it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "CREDENTIALS_REJECTED",
            Self::Unreachable(_) => "TOKEN_ENDPOINT_UNREACHABLE",
            Self::ProxyRefused(_) => "PROXY_REFUSED",
        }
    }
}

/// What a renewal after a 401 was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Another sender had already replaced the refused token.
    AlreadyDone,
    /// The refused token was the run's first and PingOne had never taken it.
    FirstRefused,
    /// PingOne had taken the refused token before: it was revoked or outlived.
    AfterUse,
}

/// A token handed to a sender, with the generation that tells a renewal whether someone else
/// already replaced it.
#[derive(Clone)]
pub struct Bearer {
    pub token: SecretString,
    generation: u64,
}

struct Current {
    bearer: Bearer,
    /// `None` for a ready token, which is used until PingOne refuses it.
    renew_at: Option<Instant>,
}

const METHOD_UNKNOWN: u8 = 0;
const METHOD_BASIC: u8 = 1;
const METHOD_POST: u8 = 2;

/// Tokens are renewed when this share of their lifetime has passed: twelve minutes early for
/// PingOne's hour-long tokens, so no request meets an expired one.
const RENEW_AFTER_SHARE: f64 = 0.8;
/// Attempts at the token endpoint when it fails transiently, and the waits between them:
/// about ten seconds at most beyond the attempts themselves, so that a run against an
/// unreachable endpoint stops within seconds rather than trying row after row.
const TOKEN_RETRY_WAITS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(6)];
/// The longest lifetime of a PingOne token (an admin may set 300 s to 30 days).
const MOST_TOKEN_LIFETIME: u64 = 30 * 86_400;
/// The longest a token endpoint's `Retry-After` is waited for (Ping's SDKs cap at 30 s).
const MOST_TOKEN_WAIT: Duration = Duration::from_secs(30);

pub struct TokenSource {
    credentials: Credentials,
    http: reqwest::Client,
    current: Mutex<Option<Current>>,
    /// Held by whoever is fetching a token; the others wait on it and then use that token.
    fetching: tokio::sync::Mutex<()>,
    /// Which client authentication the token endpoint accepted, once known.
    method: AtomicU8,
    /// The generation of the last token fetched because its predecessor was refused.
    renewed_generation: AtomicU64,
    /// One more than the newest generation PingOne has accepted (0: none yet): a refused token
    /// it had accepted was revoked or outlived, and is renewed; a replacement refused before it
    /// was ever accepted says the credentials are wrong.
    accepted_before: AtomicU64,
    /// Set when no token can be had: every later caller gets the same answer at once.
    failed: std::sync::OnceLock<AuthError>,
    timeout: Duration,
}

impl TokenSource {
    /// `extra_roots`: certificates trusted beside the system's (`--ca-file`).
    pub fn new(
        credentials: Credentials,
        timeout: Duration,
        extra_roots: &[reqwest::Certificate],
    ) -> Result<Self, reqwest::Error> {
        // PingOne never redirects a token request; following one would hand the secret to
        // whoever answered.
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("pingone-bypass/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)));
        if let Credentials::Client(client) = &credentials
            && is_loopback_url(&client.token_url)
        {
            builder = builder.no_proxy();
        }
        match &credentials {
            Credentials::Token(token) => crate::secrets::hold_given(token),
            Credentials::Client(client) => crate::secrets::hold_given(&client.client_secret),
        }
        let current = match &credentials {
            Credentials::Token(token) => Some(Current {
                bearer: Bearer {
                    token: token.clone(),
                    generation: 0,
                },
                renew_at: None,
            }),
            Credentials::Client(_) => None,
        };
        Ok(Self {
            credentials,
            http: builder
                .tls_certs_merge(extra_roots.iter().cloned())
                .build()?,
            current: Mutex::new(current),
            fetching: tokio::sync::Mutex::new(()),
            method: AtomicU8::new(METHOD_UNKNOWN),
            renewed_generation: AtomicU64::new(0),
            accepted_before: AtomicU64::new(0),
            failed: std::sync::OnceLock::new(),
            timeout,
        })
    }

    /// The token to send now, fetching one first if there is none or it is due for renewal.
    pub async fn bearer(&self) -> Result<Bearer, AuthError> {
        if let Some(bearer) = self.fresh() {
            return Ok(bearer);
        }
        let _fetching = self.fetching.lock().await;
        if let Some(bearer) = self.fresh() {
            return Ok(bearer);
        }
        if let Some(failed) = self.failed.get() {
            return Err(failed.clone());
        }
        self.fetch().await
    }

    /// PingOne answered a request sent with `bearer` with anything but 401: it took the token.
    pub fn accepted(&self, bearer: &Bearer) {
        self.accepted_before
            .fetch_max(bearer.generation.saturating_add(1), Ordering::AcqRel);
    }

    /// Whether PingOne has accepted the token in use now (false before there is one).
    pub fn current_is_accepted(&self) -> bool {
        let accepted_before = self.accepted_before.load(Ordering::Acquire);
        self.lock()
            .as_ref()
            .is_some_and(|current| accepted_before > current.bearer.generation)
    }

    /// Called when PingOne refused `rejected` with 401. Returns the token to try next: a new
    /// one (and whether it renews one PingOne had accepted), or the replacement another sender
    /// already fetched. A token PingOne had accepted and then refused (revoked, or
    /// shorter-lived than its `expires_in`) is renewed as often as that happens. Refuses (the run must stop) when the credentials cannot be renewed, or
    /// when `rejected` was itself the replacement for a refused token and PingOne never took
    /// it: a fresh token refused before any use means the credentials, not the token, are
    /// wrong.
    pub async fn renew_after_rejection(
        &self,
        rejected: &Bearer,
    ) -> Result<(Bearer, Renewal), AuthError> {
        let Credentials::Client(_) = &self.credentials else {
            return Err(AuthError::Rejected(
                "PingOne refused the access token (401): put a fresh token in PINGONE_API_ACCESS_TOKEN or the --token-file, and check that it was issued for this region".to_owned(),
            ));
        };
        let _fetching = self.fetching.lock().await;
        let was_accepted = self.accepted_before.load(Ordering::Acquire) > rejected.generation;
        if rejected.generation == self.renewed_generation.load(Ordering::Acquire) && !was_accepted {
            return Err(AuthError::Rejected(
                "PingOne refused a freshly issued token (401): check that the worker application is enabled and has a role in the environments of the file, and that PINGONE_ENVIRONMENT_ID and the region (--region, PINGONE_REGION_CODE) are the right ones".to_owned(),
            ));
        }
        if let Some(current) = self.lock().as_ref()
            && current.bearer.generation != rejected.generation
        {
            return Ok((current.bearer.clone(), Renewal::AlreadyDone));
        }
        let renewed = self.fetch().await?;
        self.renewed_generation
            .store(renewed.generation, Ordering::Release);
        if !was_accepted {
            return Ok((renewed, Renewal::FirstRefused));
        }
        tracing::warn!(
            "PingOne refused an access token it had accepted (revoked, or shorter-lived than its expires_in); a new one was obtained and the run goes on"
        );
        Ok((renewed, Renewal::AfterUse))
    }

    fn fresh(&self) -> Option<Bearer> {
        self.lock()
            .as_ref()
            .filter(|current| {
                current
                    .renew_at
                    .is_none_or(|renew_at| Instant::now() < renew_at)
            })
            .map(|current| current.bearer.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        // Holds plain values that no panic can leave half-written.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One token request (retried on transient failures), stored as the current token. When it
    /// cannot be had, that is remembered: the run stops rather than ask again for every row.
    async fn fetch(&self) -> Result<Bearer, AuthError> {
        let Credentials::Client(client) = &self.credentials else {
            return self
                .lock()
                .as_ref()
                .map(|current| current.bearer.clone())
                .ok_or_else(|| AuthError::Rejected("no access token".to_owned()));
        };
        let mut waits = TOKEN_RETRY_WAITS.iter();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let requested_at = Instant::now();
            let failure = match self.request_token(client).await {
                Ok(token) => {
                    // PingOne's tokens last at most 30 days; a longer `expires_in` is not taken
                    // at its word (nor can it overflow the clock).
                    let lifetime = Duration::from_secs(token.expires_in.min(MOST_TOKEN_LIFETIME))
                        .mul_f64(RENEW_AFTER_SHARE);
                    let mut current = self.lock();
                    let generation = current.as_ref().map_or(1, |c| c.bearer.generation + 1);
                    let bearer = Bearer {
                        token: SecretString::from(token.access_token),
                        generation,
                    };
                    crate::secrets::hold_obtained(&bearer.token);
                    *current = Some(Current {
                        bearer: bearer.clone(),
                        renew_at: Some(requested_at + lifetime),
                    });
                    return Ok(bearer);
                }
                Err(TokenRefusal::Unavailable(reason, _))
                    if reason.contains(super::transport::UNTRUSTED_CERTIFICATE) =>
                {
                    AuthError::Unreachable(format!(
                        "cannot get an access token from {}: {reason}",
                        client.token_url
                    ))
                }
                Err(TokenRefusal::Unavailable(reason, retry_after)) => match waits.next() {
                    Some(wait) => {
                        // The endpoint's own Retry-After, when longer, and capped as every
                        // wait is.
                        let wait = retry_after
                            .map_or(*wait, |after| after.min(MOST_TOKEN_WAIT).max(*wait));
                        tracing::warn!(%reason, "token request failed; trying again in {}s", wait.as_secs());
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    None => AuthError::Unreachable(format!(
                        "cannot get an access token from {}: {reason} ({attempts} attempts); check the network, --auth-url / --region and any HTTPS_PROXY",
                        client.token_url
                    )),
                },
                Err(refusal) => refusal.into_auth_error(),
            };
            let _ = self.failed.set(failure.clone());
            return Err(failure);
        }
    }

    /// Client authentication: HTTP Basic first (PingOne's default), then once form fields
    /// when the endpoint says Basic is not the application's method; whichever works is used
    /// from then on. When both are refused, the first answer is the one reported: a wrong
    /// secret is refused as such by Basic, and the form attempt would only add "unsupported
    /// method".
    async fn request_token(
        &self,
        client: &ClientCredentials,
    ) -> Result<TokenResponse, TokenRefusal> {
        let known = self.method.load(Ordering::Relaxed);
        let first = if known == METHOD_POST {
            METHOD_POST
        } else {
            METHOD_BASIC
        };
        let answer = match self.token_request(client, first).await {
            Err(TokenRefusal::InvalidClient(reason))
                if known == METHOD_UNKNOWN
                    && reason.to_ascii_lowercase().contains("unsupported") =>
            {
                let answer = self.token_request(client, METHOD_POST).await;
                if answer.is_ok() {
                    self.method.store(METHOD_POST, Ordering::Relaxed);
                }
                return answer.map_err(|second| match second {
                    TokenRefusal::InvalidClient(_) | TokenRefusal::Refused(_) => {
                        TokenRefusal::InvalidClient(reason)
                    }
                    other => other,
                });
            }
            answer => answer,
        };
        if answer.is_ok() {
            self.method.store(first, Ordering::Relaxed);
        }
        answer
    }

    async fn token_request(
        &self,
        client: &ClientCredentials,
        method: u8,
    ) -> Result<TokenResponse, TokenRefusal> {
        let mut form = vec![("grant_type", "client_credentials")];
        let mut request = self.http.post(&client.token_url);
        if method == METHOD_POST {
            form.push(("client_id", client.client_id.as_str()));
            form.push(("client_secret", client.client_secret.expose_secret()));
        } else {
            request = request.basic_auth(
                &client.client_id,
                Some(client.client_secret.expose_secret()),
            );
        }
        let body = serde_urlencoded::to_string(&form).unwrap_or_default();
        let response = self.post(request, body).await?;
        let status = response.status();
        if status.is_redirection() {
            return Err(TokenRefusal::Redirected(format!(
                "the token endpoint {} answered HTTP {} redirecting to {}; PingOne never redirects a token request, so the redirect was not followed (the secret was not sent on): check --auth-url / --region and any proxy in between",
                client.token_url,
                status.as_u16(),
                redirect_target(response.headers())
            )));
        }
        let retry_after = super::transport::parse_retry_after(response.headers());
        let bytes = response.bytes().await.map_err(|error| {
            TokenRefusal::Unavailable(describe_transport_error(&error, self.timeout), None)
        })?;
        if status.is_success() {
            return serde_json::from_slice::<TokenResponse>(&bytes).map_err(|_| {
                TokenRefusal::Unavailable(
                    format!("the token endpoint answered {status} without a token"),
                    None,
                )
            });
        }
        let oauth = serde_json::from_slice::<OAuthErrorBody>(&bytes).ok();
        let description = oauth
            .as_ref()
            .map(|body| {
                let detail = body.error_description.as_deref().unwrap_or("");
                crate::secrets::scrub(&redact_token_like(
                    format!("{} {detail}", body.error).trim(),
                ))
            })
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        match (
            status.as_u16(),
            oauth.as_ref().map(|body| body.error.as_str()),
        ) {
            (_, Some("invalid_client" | "unauthorized_client")) | (401, _) => {
                Err(TokenRefusal::InvalidClient(description))
            }
            (400..=499, _) if status.as_u16() != 408 && status.as_u16() != 429 => {
                Err(TokenRefusal::Refused(description))
            }
            _ => Err(TokenRefusal::Unavailable(
                format!("the token endpoint answered {description}"),
                retry_after,
            )),
        }
    }

    /// Sends the token request; no answer is `Unavailable` (worth asking again), unless a
    /// proxy refused the tunnel, which no second ask changes.
    async fn post(
        &self,
        request: reqwest::RequestBuilder,
        body: String,
    ) -> Result<reqwest::Response, TokenRefusal> {
        let sent = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await;
        let error = match sent {
            Ok(response) => return Ok(response),
            Err(error) => error,
        };
        let refusal = match error.url() {
            Some(url) => super::proxy::refusal_of(&error, url).await,
            None => None,
        };
        Err(match refusal {
            Some(refusal) => TokenRefusal::Proxy(refusal.to_string()),
            None => TokenRefusal::Unavailable(describe_transport_error(&error, self.timeout), None),
        })
    }
}

enum TokenRefusal {
    InvalidClient(String),
    Refused(String),
    Redirected(String),
    /// A proxy refused the tunnel: not worth asking again.
    Proxy(String),
    /// Worth asking again, after the endpoint's `Retry-After` when it gave one.
    Unavailable(String, Option<Duration>),
}

impl TokenRefusal {
    fn into_auth_error(self) -> AuthError {
        match self {
            Self::InvalidClient(description) | Self::Refused(description) => {
                AuthError::Rejected(format!(
                    "PingOne's token endpoint refused the worker application ({description}): check PINGONE_CLIENT_ID, PINGONE_CLIENT_SECRET, PINGONE_ENVIRONMENT_ID and the region (--region, PINGONE_REGION_CODE or --auth-url)"
                ))
            }
            Self::Redirected(message) => AuthError::Rejected(message),
            Self::Proxy(message) => AuthError::ProxyRefused(message),
            Self::Unavailable(reason, _) => AuthError::Unreachable(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn token_with(claims: &str) -> Credentials {
        let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        Credentials::Token(SecretString::from(format!(
            "{}.{}.signature",
            encode(r#"{"alg":"RS256"}"#),
            encode(claims)
        )))
    }

    #[test]
    fn the_client_a_run_sends_as_is_its_worker_application_or_its_tokens_client_id_claim() {
        let client = Credentials::Client(ClientCredentials {
            token_url: "https://auth.pingone.com/e/as/token".to_owned(),
            client_id: "6b3e4c1a-0000-4000-8000-000000000001".to_owned(),
            client_secret: SecretString::from("s".to_owned()),
        });
        assert_eq!(
            client.client_id().as_deref(),
            Some("6b3e4c1a-0000-4000-8000-000000000001")
        );
        assert_eq!(
            token_with(r#"{"client_id":"6B3E4C1A-0000-4000-8000-000000000002","sub":"x"}"#)
                .client_id()
                .as_deref(),
            Some("6b3e4c1a-0000-4000-8000-000000000002")
        );
        for unreadable in [
            token_with(r#"{"sub":"x"}"#),
            token_with(r#"{"client_id":"\" or 1 eq 1"}"#),
            Credentials::Token(SecretString::from("not-a-jwt".to_owned())),
        ] {
            assert_eq!(
                unreadable.client_id(),
                None,
                "never a filter value unchecked"
            );
        }
    }
}
