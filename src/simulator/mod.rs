//! A PingOne simulator: the token endpoint, `bypassMFA` and user lookups, with latency, rate
//! limits and faults to rehearse on. Nobody can rehearse an outage runbook against their real
//! tenant, and tests cannot reach PingOne, so this is part of the product: `simulate` serves it,
//! `run --simulate` embeds it, and every test and benchmark stands on it.

mod audit;
mod audit_log;
mod config;
mod directory;
mod faults;
mod gate;
mod refusal;
mod routes;
mod saved;
mod server;
mod state;
mod tls;
mod token;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use audit_log::{AddedActivity, AuditActivity, READABLE_DAYS};
pub use config::{
    AUDIT_PAGE_SIZE, AUDIT_REQUESTS_PER_SECOND, AnswerShape, ClientAuthMethod, DirectoryUser,
    FaultChances, LimiterShape, Outage, Population, RateLimit, SimulatorConfig,
    directory_object_id,
};
pub use directory::{
    SAMPLE_PARTNER_ENVIRONMENT, SAMPLE_WORKFORCE_ENVIRONMENT, UsersFileError,
    read_missing_users_file, read_users_file,
};
pub use routes::INTROSPECTION_PREFIX;
pub use saved::{SAVED_TENANT_NAME, SavedTenantError};
pub use state::{Credentials, PutArrivals, Stats, StoredBypass, UserPutCount};

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    InvalidConfig(String),
    #[error("cannot set up the simulator's HTTPS: {0}")]
    Tls(String),
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    address: SocketAddr,
    /// The authority's certificate (PEM) when it serves HTTPS.
    ca_pem: Option<String>,
    state: Arc<state::TenantState>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free port) and serves until `shutdown` or drop.
    pub async fn start(
        config: SimulatorConfig,
        listen: SocketAddr,
    ) -> Result<Self, SimulatorError> {
        validate(&config)?;
        let listener =
            TcpListener::bind(listen)
                .await
                .map_err(|source| SimulatorError::Listen {
                    address: listen,
                    source,
                })?;
        let address = listener
            .local_addr()
            .map_err(|source| SimulatorError::Listen {
                address: listen,
                source,
            })?;
        let identity = config.tls.then(tls::generate).transpose()?;
        let scheme = if identity.is_some() { "https" } else { "http" };
        let state = Arc::new(state::TenantState::new(
            config,
            format!("{scheme}://{address}/v1"),
        ));
        let shutdown = CancellationToken::new();
        let ca_pem = identity.as_ref().map(|identity| identity.ca_pem.clone());
        let server = tokio::spawn(server::serve(
            listener,
            identity.map(|identity| identity.acceptor),
            routes::router(state.clone()),
            shutdown.clone(),
        ));
        Ok(Self {
            address,
            ca_pem,
            state,
            shutdown,
            server: Some(server),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The API base, `/v1` included, as `--api-url` takes it.
    pub fn api_url(&self) -> String {
        self.state.api_url.clone()
    }

    /// The auth base, as `--auth-url` takes it.
    pub fn auth_url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.address)
    }

    /// With `tls`, the certificate (PEM) of the authority that signed the simulator's own: what
    /// `run --ca-file` must trust to reach it.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The token endpoint of the worker application's environment.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/as/token",
            self.auth_url(),
            self.state.credentials.environment_id
        )
    }

    pub fn credentials(&self) -> &Credentials {
        &self.state.credentials
    }

    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// When PUTs arrived, for measuring achieved rates and their busiest windows.
    pub fn put_arrivals(&self) -> PutArrivals {
        self.state.put_arrivals()
    }

    /// The bypass the simulator holds for one user, if any.
    pub fn bypass(&self, environment_id: Uuid, user_id: Uuid) -> Option<DateTime<Utc>> {
        self.state.bypass(environment_id, user_id)
    }

    pub fn bypasses(&self) -> Vec<StoredBypass> {
        self.state.bypasses()
    }

    /// Gives a user a bypass until `until` (past or future), as if it had been granted earlier:
    /// for rehearsing and specifying what `status` reads back.
    pub fn store_bypass(&self, environment_id: Uuid, user_id: Uuid, until: DateTime<Utc>) {
        self.state.store_bypass(environment_id, user_id, until);
    }

    /// Every activity of the audit log, shown or not yet, in the order they were recorded.
    pub fn activities(&self) -> Vec<AuditActivity> {
        self.state.audit.all()
    }

    /// Takes every activity of `transaction_id` out of the audit log, as if PingOne had not
    /// logged its request; how many there were.
    pub fn lose_activity(&self, transaction_id: &str) -> usize {
        self.state.audit.lose(transaction_id)
    }

    /// Adds an activity the tool never caused, as if PingOne had logged a request of its.
    pub fn add_activity(&self, added: AddedActivity) {
        self.state.add_activity(added);
    }

    /// Makes every token issued so far invalid (a rotated secret, a revoked grant).
    pub fn revoke_tokens(&self) {
        self.state.revoke_tokens();
    }

    /// Every token issued so far, so tests can check that none leaked.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.issued_tokens()
    }

    /// Issues a token directly, for tests that are not about authentication.
    pub fn issue_token(&self) -> String {
        self.state.issue_token()
    }

    /// Stops accepting, drops every connection and waits for the server to end.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take()
            && let Err(error) = server.await
        {
            tracing::warn!(%error, "simulator server task failed");
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn validate(config: &SimulatorConfig) -> Result<(), SimulatorError> {
    let chances = &config.faults;
    for (name, chance) in [
        ("500", chances.status_500),
        ("502", chances.status_502),
        ("503", chances.status_503),
        ("reset", chances.reset),
        ("hang", chances.hang),
    ] {
        if !(0.0..=1.0).contains(&chance) {
            return Err(SimulatorError::InvalidConfig(format!(
                "the chance of a {name} fault must be between 0 and 1, not {chance}"
            )));
        }
    }
    if chances.total() > 1.0 + f64::EPSILON {
        return Err(SimulatorError::InvalidConfig(format!(
            "the fault chances add up to {}, more than 1",
            chances.total()
        )));
    }
    for limit in [
        config.rate_limit,
        config.environment_rate_limit,
        config.audit_rate_limit,
    ]
    .into_iter()
    .flatten()
    {
        if limit.period.is_zero() {
            return Err(SimulatorError::InvalidConfig(
                "a rate limit's period must be longer than zero".to_owned(),
            ));
        }
    }
    Ok(())
}
