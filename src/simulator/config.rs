//! What a simulated PingOne looks like: latency, limits, faults, who exists, how clients
//! authenticate. One plain struct, so tests build exactly the tenant they need and the CLI
//! fills the same struct from flags.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::Duration;

use uuid::Uuid;

/// A limit of `requests` per `period`, metered as `SimulatorConfig::limiter` says (by default
/// a token bucket that holds `requests` tokens, so a full second's worth may arrive at once, as
/// PingOne's per-second license limits allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: NonZeroU32,
    pub period: Duration,
}

impl RateLimit {
    pub fn per_second(requests: NonZeroU32) -> Self {
        Self {
            requests,
            period: Duration::from_secs(1),
        }
    }
}

/// PingOne's audit API limit: requests a second (group rlgAuditRps).
pub const AUDIT_REQUESTS_PER_SECOND: u32 = 10;

/// The most activities a simulated audit page holds unless a specification says fewer.
pub const AUDIT_PAGE_SIZE: usize = 1000;

/// How a rate limiter meters requests and words its 429: PingOne's own, or the API gateway,
/// WAF or egress proxy in front of it that a real deployment may have. The client must find
/// the limit of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LimiterShape {
    /// PingOne's own: a token bucket that holds one period's worth, and its JSON 429 with
    /// `Retry-After`.
    #[default]
    Pingone,
    /// The same token bucket behind a gateway that drops `Retry-After` from the 429.
    TokenBucket,
    /// An edge's leaky bucket with no burst (nginx's `limit_req` without `burst`): one request
    /// an interval, any earlier one refused with an HTML 429 and no `Retry-After`.
    LeakyBucket,
    /// The same with a burst of a tenth of a period's worth (`limit_req burst=N nodelay`).
    LeakyBurst,
}

impl LimiterShape {
    /// Requests that may arrive at once, beyond the steady spacing, for a limit of `requests`
    /// a period.
    pub fn burst(self, requests: NonZeroU32) -> NonZeroU32 {
        match self {
            Self::Pingone | Self::TokenBucket => requests,
            Self::LeakyBucket => NonZeroU32::MIN,
            Self::LeakyBurst => NonZeroU32::new(requests.get() / 10).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// Chances, each in `0.0..=1.0` and together at most `1.0`, that an API request is answered by
/// a fault instead of by the service.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultChances {
    pub status_500: f64,
    pub status_502: f64,
    pub status_503: f64,
    /// The connection is reset (TCP RST) without an answer.
    pub reset: f64,
    /// No answer for `SimulatorConfig::hang_for`, then the connection is reset.
    pub hang: f64,
}

impl FaultChances {
    pub fn total(&self) -> f64 {
        self.status_500 + self.status_502 + self.status_503 + self.reset + self.hang
    }
}

/// How the worker application authenticates at the token endpoint. A real PingOne application
/// is configured for one method and refuses the other with `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: HTTP Basic (PingOne's default for worker applications).
    #[default]
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` as form fields.
    Post,
    /// Either of the two.
    Any,
}

/// A user the directory knows by name (for `GET .../users?filter=`), with the population and
/// groups it belongs to (by name; their IDs are derived from the environment and the name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryUser {
    pub environment_id: Uuid,
    pub id: Uuid,
    pub username: String,
    pub email: String,
    /// Empty when the user is in no population the simulator knows.
    pub population: String,
    pub groups: Vec<String>,
}

impl DirectoryUser {
    /// The ID of the population this user is in, if any.
    pub fn population_id(&self) -> Option<Uuid> {
        (!self.population.is_empty())
            .then(|| directory_object_id(self.environment_id, &self.population))
    }

    pub fn group_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.groups
            .iter()
            .map(|group| directory_object_id(self.environment_id, group))
    }
}

/// The stable ID of a population or group named `name` in `environment`: the same name always
/// has the same ID, so tests and rehearsals can rely on it.
pub fn directory_object_id(environment: Uuid, name: &str) -> Uuid {
    Uuid::new_v5(&environment, name.as_bytes())
}

/// Which users exist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Population {
    /// Every user ID exists in every environment; the directory is the built-in sample one.
    #[default]
    Everyone,
    /// Only these users exist, and they are the directory.
    Only(Vec<DirectoryUser>),
    /// Every user exists except these IDs (in any environment); the directory is the built-in one.
    AllExcept(HashSet<Uuid>),
}

/// How the simulated API words its answers, within what Ping's published schemas allow: the
/// client must read every one of them the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AnswerShape {
    /// As Ping's one documented example: `_links.self` and `_links.user`, the expiry with
    /// milliseconds and `Z`, `canBypassMFA`, and an `id` in every error body.
    #[default]
    Full,
    /// As lean as the schemas allow: no `_links`, no `canBypassMFA`, the expiry without a
    /// fraction when it has none (`2026-12-02T10:00:00Z`), error bodies without `id` or
    /// `details`.
    Lean,
    /// Within the schemas but unlike the example: `_links.self` only, the expiry at a `+02:00`
    /// offset with microseconds, fields the tool does not know, error bodies without `id`.
    Varied,
}

/// An outage: from `from` after the simulator started, for `lasting`, every API request is
/// answered 503 without `Retry-After` (the token endpoint stays up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub from: Duration,
    pub lasting: Duration,
}

/// Everything that shapes a simulated tenant.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Added to every API answer (faults and 429s included).
    pub latency: Duration,
    /// A uniformly drawn extra `0..=jitter` on top of `latency`.
    pub jitter: Duration,
    /// Shared by all environments, as a license limit is.
    pub rate_limit: Option<RateLimit>,
    /// Applied to each environment separately, on top of `rate_limit`.
    pub environment_rate_limit: Option<RateLimit>,
    /// How both limits meter and answer.
    pub limiter: LimiterShape,
    pub faults: FaultChances,
    /// `Retry-After` sent with an injected 503, in whole seconds.
    pub retry_after_503: Duration,
    /// How long a hanging request stays unanswered before its connection is reset.
    pub hang_for: Duration,
    /// Environments in which the worker application has no role: 403 `INSUFFICIENT_PERMISSIONS`.
    pub forbidden_environments: HashSet<Uuid>,
    /// The environments the tenant has, besides those of `Population::Only`'s users. Once it
    /// knows any, an environment it does not know is answered 403 `ACCESS_FAILED`, as PingOne
    /// answers for one that does not exist or is in another region.
    pub environments: HashSet<Uuid>,
    pub answer_shape: AnswerShape,
    /// A 429 gives its wait only in its body's `innerError.retryAfter`, without the header.
    pub retry_after_in_body: bool,
    pub outage: Option<Outage>,
    pub population: Population,
    /// The `expires_in` of issued tokens, and how long they work unless revoked sooner.
    pub token_ttl: Duration,
    /// Tokens stop working this long after they were issued, whatever their `expires_in`
    /// says: a token revoked mid-run, or an authorization server whose tokens are shorter-lived
    /// than they claim.
    pub token_revoked_after: Option<Duration>,
    pub client_auth: ClientAuthMethod,
    /// When set, an expiry later than now + this is shortened to it, as a tenant policy might;
    /// the response then reports the shortened expiry.
    pub max_bypass: Option<Duration>,
    /// User lookups whose filter joins terms with `or` are answered 400 INVALID_DATA.
    pub refuse_or_filters: bool,
    /// Serve HTTPS, with a certificate signed by an authority made at start.
    pub tls: bool,
    /// How long an activity takes to show in the audit log after its request: PingOne caches
    /// audit messages before they can be read.
    pub audit_lag: Duration,
    /// The audit API's own limit (PingOne's is 10 requests a second), apart from the license's.
    pub audit_rate_limit: Option<RateLimit>,
    /// The most activities a page of the audit log holds, whatever `limit` asks: a client must
    /// follow `_links.next`.
    pub audit_page_size: usize,
    /// The largest `limit` the activities endpoint takes; a larger one is answered 400, as a
    /// PingOne whose largest page is smaller than asked might.
    pub audit_largest_limit: Option<usize>,
    /// Users whose first PUT is granted and logged, and then never answered: the connection
    /// hangs for `hang_for` and is reset, as when an answer is lost on its way back.
    pub first_answer_lost: HashSet<Uuid>,
    /// Whether the worker application may read the audit log (`audit_reporting:read:activity`);
    /// without it, the activities endpoint answers 403.
    pub audit_permission: bool,
    /// Makes faults, jitter and the generated IDs and secret reproducible. Fault decisions are
    /// drawn per (request, how many times that same request was seen), so they do not depend on
    /// the order in which concurrent requests arrive.
    pub seed: u64,
}

impl Default for SimulatorConfig {
    /// A fast, faultless, unlimited tenant in which everybody exists: what most tests start from.
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_limit: None,
            environment_rate_limit: None,
            limiter: LimiterShape::Pingone,
            faults: FaultChances::default(),
            retry_after_503: Duration::from_secs(1),
            hang_for: Duration::from_secs(300),
            forbidden_environments: HashSet::new(),
            environments: HashSet::new(),
            answer_shape: AnswerShape::Full,
            retry_after_in_body: false,
            outage: None,
            population: Population::Everyone,
            token_ttl: Duration::from_secs(3600),
            token_revoked_after: None,
            client_auth: ClientAuthMethod::Basic,
            max_bypass: None,
            refuse_or_filters: false,
            tls: false,
            audit_lag: Duration::ZERO,
            audit_rate_limit: NonZeroU32::new(AUDIT_REQUESTS_PER_SECOND).map(RateLimit::per_second),
            audit_page_size: AUDIT_PAGE_SIZE,
            audit_largest_limit: None,
            first_answer_lost: HashSet::new(),
            audit_permission: true,
            seed: 0,
        }
    }
}
