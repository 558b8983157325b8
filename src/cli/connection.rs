//! Where requests go and with which credentials: the connection flags `run`, `status` and
//! `serve` share, credentials read from the process environment (never the command line), and
//! the URL and proxy policy every connection must meet.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

use crate::cli::values::{parse_outage_patience, parse_rate, parse_timeout};
use crate::defaults;
use crate::gateway::auth::{ClientCredentials, Credentials};
use crate::gateway::proxy::is_loopback_url;
use crate::pingone::Region;
use crate::plan::parse_id;

/// Where requests go and with which credentials: what every command that talks to PingOne
/// shares, `verify --pingone` included, which paces itself by the audit API's own limit.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
pub struct EndpointArgs {
    /// PingOne region: picks the API and auth bases.
    #[arg(long, value_enum, env = "PINGONE_REGION_CODE", hide_env_values = true, default_value_t = Region::Na, ignore_case = true)]
    pub region: Region,

    /// API base, https://api.pingone.com/v1 or as Ping's newer pages write it, without /v1
    /// (then /v1 is added); overrides --region.
    #[arg(
        long,
        value_name = "URL",
        env = "PINGONE_API_URL",
        hide_env_values = true
    )]
    pub api_url: Option<String>,

    /// Auth base; the token URL is <auth-url>/<PINGONE_ENVIRONMENT_ID>/as/token. Overrides
    /// --region.
    #[arg(
        long,
        value_name = "URL",
        env = "PINGONE_AUTH_URL",
        hide_env_values = true
    )]
    pub auth_url: Option<String>,

    /// The whole token endpoint URL, for a custom domain (https://<custom domain>/as/token,
    /// with no environment ID in it); instead of --auth-url.
    #[arg(
        long,
        value_name = "URL",
        env = "PINGONE_TOKEN_URL",
        hide_env_values = true,
        conflicts_with = "auth_url"
    )]
    pub token_url: Option<String>,

    /// Read a ready access token from this file. Otherwise PINGONE_API_ACCESS_TOKEN, otherwise
    /// the worker application in PINGONE_CLIENT_ID, PINGONE_CLIENT_SECRET and
    /// PINGONE_ENVIRONMENT_ID (its environment). Secrets are read only from these.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// PEM certificates to trust beside the system's, for a corporate proxy that inspects TLS.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
}

/// Where requests go, with which credentials, how fast and how patiently: the options `run`,
/// `status`, `end` and `serve` share.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
pub struct ConnectionArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub endpoint: EndpointArgs,

    /// Most requests per second, all environments together.
    #[arg(long, value_name = "N", default_value_t = defaults::RATE, value_parser = parse_rate)]
    pub rate: f64,

    /// Most requests in flight.
    #[arg(long, value_name = "N", default_value_t = defaults::CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=defaults::MOST_CONCURRENCY))]
    pub concurrency: u16,

    /// Retries per row after the first attempt.
    #[arg(long, value_name = "N", default_value_t = defaults::RETRIES)]
    pub retries: u32,

    /// Per-request timeout, e.g. 30s or 2m; at most 1h.
    #[arg(long, value_name = "DURATION", default_value = defaults::TIMEOUT_TEXT, value_parser = parse_timeout)]
    pub timeout: Duration,

    /// How long rows wait for a PingOne that answers nothing (probed once a second meanwhile,
    /// no retries spent) before the rest are recorded not_attempted, PINGONE_DOWN. At most 1d.
    #[arg(long, value_name = "DURATION", default_value = defaults::OUTAGE_PATIENCE_TEXT, value_parser = parse_outage_patience)]
    pub outage_patience: Duration,
}

impl Default for ConnectionArgs {
    /// What the command line gives with none of these flags and none of their variables set.
    fn default() -> Self {
        Self {
            endpoint: EndpointArgs::default(),
            rate: defaults::RATE,
            concurrency: defaults::CONCURRENCY,
            retries: defaults::RETRIES,
            timeout: defaults::TIMEOUT,
            outage_patience: defaults::OUTAGE_PATIENCE,
        }
    }
}

impl EndpointArgs {
    /// The API base: `--api-url`, or the region's; https unless it is loopback; `/v1` added
    /// to a URL without a path, and required at the end of one with a path.
    pub fn api_url(&self) -> Result<String, ConnectionError> {
        match &self.api_url {
            Some(api_url) => api_base("--api-url", api_url.trim()),
            None => Ok(self.region.api_url()),
        }
    }

    /// The certificates of `--ca-file`: at least one, in PEM.
    pub fn extra_roots(&self) -> Result<Vec<reqwest::Certificate>, ConnectionError> {
        let Some(path) = &self.ca_file else {
            return Ok(Vec::new());
        };
        let problem = |problem: String| ConnectionError::CaFile {
            path: path.clone(),
            problem,
        };
        let pem = std::fs::read(path).map_err(|error| problem(error.to_string()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|error| problem(format!("it is not PEM ({error})")))?;
        if certificates.is_empty() {
            return Err(problem(
                "it holds no certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
            ));
        }
        Ok(certificates)
    }

    /// First match wins: `--token-file`, `PINGONE_API_ACCESS_TOKEN`, client credentials.
    pub fn credentials(
        &self,
        settings: &CredentialSettings,
    ) -> Result<Credentials, ConnectionError> {
        if let Some(path) = &self.token_file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConnectionError::TokenFile {
                    path: path.clone(),
                    source,
                })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(ConnectionError::EmptyTokenFile(path.clone()));
            }
            let token = SecretString::from(token.to_owned());
            crate::secrets::hold_given(&token);
            return Ok(Credentials::Token(token));
        }
        if let Some(token) = &settings.access_token {
            return Ok(Credentials::Token(token.clone()));
        }
        // A custom domain's token endpoint names no environment: the worker application's
        // environment is then not needed.
        let environment_needed = self.token_url.is_none();
        let (client_id, client_secret, environment_id) = match (
            &settings.client_id,
            &settings.client_secret,
            &settings.environment_id,
        ) {
            (None, None, None) => return Err(ConnectionError::NoCredentials),
            (Some(id), Some(secret), environment)
                if environment.is_some() || !environment_needed =>
            {
                (id, secret, environment)
            }
            (id, secret, environment) => {
                let missing: Vec<&str> = [
                    (id.is_none(), CLIENT_ID_VARIABLE),
                    (secret.is_none(), CLIENT_SECRET_VARIABLE),
                    (
                        environment.is_none() && environment_needed,
                        ENVIRONMENT_ID_VARIABLE,
                    ),
                ]
                .into_iter()
                .filter_map(|(missing, name)| missing.then_some(name))
                .collect();
                return Err(ConnectionError::IncompleteClientCredentials(
                    missing.join(" and "),
                ));
            }
        };
        let token_url = match (&self.token_url, environment_id) {
            (Some(token_url), _) => token_endpoint(token_url.trim())?,
            (None, Some(environment_id)) => {
                let environment_id = parse_id(environment_id.trim())
                    .ok_or_else(|| ConnectionError::WorkerEnvironment(environment_id.clone()))?;
                let auth_url = self
                    .auth_url
                    .clone()
                    .unwrap_or_else(|| self.region.auth_url());
                check_url("--auth-url", &auth_url)?;
                format!(
                    "{}/{environment_id}/as/token",
                    auth_url.trim_end_matches('/')
                )
            }
            (None, None) => {
                return Err(ConnectionError::IncompleteClientCredentials(
                    ENVIRONMENT_ID_VARIABLE.to_owned(),
                ));
            }
        };
        Ok(Credentials::Client(ClientCredentials {
            token_url,
            client_id: client_id.trim().to_owned(),
            client_secret: client_secret.clone(),
        }))
    }

    /// Which credentials a run would use, by the names of their settings, never their values.
    pub fn describe(&self, credentials: &Credentials) -> String {
        match (credentials, &self.token_file) {
            (Credentials::Token(_), Some(path)) => {
                format!("the access token in {}", path.display())
            }
            (Credentials::Token(_), None) => format!("the access token in {ACCESS_TOKEN_VARIABLE}"),
            (Credentials::Client(client), _) => format!(
                "the worker application in {CLIENT_ID_VARIABLE} and {CLIENT_SECRET_VARIABLE}, its token from {}",
                client.token_url
            ),
        }
    }
}

/// The settings that hold credentials, named as Ping's own tools name them.
pub const ACCESS_TOKEN_VARIABLE: &str = "PINGONE_API_ACCESS_TOKEN";
pub const CLIENT_ID_VARIABLE: &str = "PINGONE_CLIENT_ID";
pub const CLIENT_SECRET_VARIABLE: &str = "PINGONE_CLIENT_SECRET";
pub const ENVIRONMENT_ID_VARIABLE: &str = "PINGONE_ENVIRONMENT_ID";

/// Credentials as the process environment gives them; never from the command line, so that
/// they do not show in `ps`, shell history or `--help`.
#[derive(Default)]
pub struct CredentialSettings {
    pub access_token: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub environment_id: Option<String>,
}

impl CredentialSettings {
    pub fn from_process_environment() -> Self {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        let settings = Self {
            // A token pasted, or read with $(cat file), often ends in a line break; no token
            // has white space at either end.
            access_token: read(ACCESS_TOKEN_VARIABLE)
                .map(|token| SecretString::from(token.trim().to_owned())),
            client_id: read(CLIENT_ID_VARIABLE),
            client_secret: read(CLIENT_SECRET_VARIABLE).map(SecretString::from),
            environment_id: read(ENVIRONMENT_ID_VARIABLE),
        };
        for secret in settings.access_token.iter().chain(&settings.client_secret) {
            crate::secrets::hold_given(secret);
        }
        settings
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("{setting} {url:?} {problem}")]
    Url {
        setting: &'static str,
        url: String,
        problem: &'static str,
    },
    #[error("cannot read --token-file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--token-file {0} is empty")]
    EmptyTokenFile(PathBuf),
    #[error(
        "no credentials: set {CLIENT_ID_VARIABLE}, {CLIENT_SECRET_VARIABLE} and {ENVIRONMENT_ID_VARIABLE} for a worker application, or {ACCESS_TOKEN_VARIABLE}, or pass --token-file PATH (or use --dry-run or --simulate)"
    )]
    NoCredentials,
    #[error(
        "incomplete client credentials: {0} not set; a worker application needs {CLIENT_ID_VARIABLE}, {CLIENT_SECRET_VARIABLE} and {ENVIRONMENT_ID_VARIABLE}"
    )]
    IncompleteClientCredentials(String),
    #[error(
        "{ENVIRONMENT_ID_VARIABLE} {0:?} is not a UUID; it must be the ID of the worker application's environment"
    )]
    WorkerEnvironment(String),
    #[error("cannot use --ca-file {path}: {problem}")]
    CaFile { path: PathBuf, problem: String },
    #[error(
        "{0} is set but is not a proxy URL such as http://proxy.example.com:3128; fix it or unset it"
    )]
    Proxy(&'static str),
}

/// The proxy settings reqwest honours. reqwest passes over one it cannot use, which would send
/// requests straight out instead of through the proxy the admin set: refuse it instead. The
/// check is written here because reqwest's own proxy parser accepts schemes it cannot use.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub fn check_proxy_settings() -> Result<(), ConnectionError> {
    for name in PROXY_VARIABLES {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        let value = value.trim();
        if !value.is_empty() && !is_usable_proxy(value) {
            return Err(ConnectionError::Proxy(name));
        }
    }
    Ok(())
}

/// A proxy URL as curl and reqwest take it: a scheme they speak (`http://` assumed when
/// there is none) and a host.
fn is_usable_proxy(value: &str) -> bool {
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    url::Url::parse(&with_scheme).is_ok_and(|url| {
        matches!(
            url.scheme(),
            "http" | "https" | "socks4" | "socks4a" | "socks5" | "socks5h"
        ) && url.host_str().is_some_and(|host| !host.is_empty())
    })
}

/// An API base as admins copy it from Ping's pages: `https://api.pingone.com/v1`, or
/// `https://api.pingone.com` (newer pages write `{{apiPath}}/v1/...`), which gets `/v1`. Any
/// other path would send every request to the wrong place, where each row would fail as if the
/// user did not exist, so it is refused before anything is sent.
fn api_base(setting: &'static str, url: &str) -> Result<String, ConnectionError> {
    check_url(setting, url)?;
    let refuse = |problem: &'static str| ConnectionError::Url {
        setting,
        url: url.to_owned(),
        problem,
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| refuse("is not a URL"))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(refuse(
            "has a query or fragment; write only the API base, like https://api.pingone.com/v1",
        ));
    }
    let path = parsed.path().trim_end_matches('/');
    let origin = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let scheme = parsed.scheme();
    if path.is_empty() {
        return Ok(format!("{scheme}://{origin}/v1"));
    }
    if path.ends_with("/v1") {
        return Ok(format!("{scheme}://{origin}{path}"));
    }
    Err(refuse(
        "must end in /v1 (like https://api.pingone.com/v1), or have no path at all, to which /v1 is added",
    ))
}

/// A custom domain's whole token endpoint, `https://<custom domain>/as/token`.
fn token_endpoint(url: &str) -> Result<String, ConnectionError> {
    check_url("--token-url", url)?;
    let ends_right = reqwest::Url::parse(url).is_ok_and(|parsed| {
        parsed.query().is_none() && parsed.path().trim_end_matches('/').ends_with("/as/token")
    });
    if !ends_right {
        return Err(ConnectionError::Url {
            setting: "--token-url",
            url: url.to_owned(),
            problem: "must be the whole token endpoint, ending in /as/token (like https://auth.example.com/as/token)",
        });
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// PingOne is only ever reached over https; plain http is allowed to loopback, for the
/// simulator and local rehearsals.
fn check_url(setting: &'static str, url: &str) -> Result<(), ConnectionError> {
    let problem = match reqwest::Url::parse(url) {
        Err(_) => Some("is not a URL; write it like https://api.pingone.com/v1"),
        Ok(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => Some(
            "carries a user name or password; credentials go in PINGONE_CLIENT_ID and PINGONE_CLIENT_SECRET, never in a URL",
        ),
        Ok(parsed) => match parsed.scheme() {
            "https" if parsed.host().is_some() => None,
            "http" if is_loopback_url(url) => None,
            "http" => Some(
                "uses plain http to a host that is not loopback; PingOne must be reached over https",
            ),
            _ => Some("must start with https://"),
        },
    };
    match problem {
        Some(problem) => Err(ConnectionError::Url {
            setting,
            url: url.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}
