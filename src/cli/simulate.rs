//! `simulate`'s flags and the simulator configuration they describe, and the tenant that
//! `run --simulate` and `serve --simulate` rehearse against.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use uuid::Uuid;

use crate::cli::connection::{CredentialSettings, EndpointArgs};
use crate::cli::values::{parse_chance, parse_duration};
use crate::simulator::{
    AUDIT_PAGE_SIZE, AUDIT_REQUESTS_PER_SECOND, AnswerShape, ClientAuthMethod, FaultChances,
    LimiterShape, Outage, Population, RateLimit, Simulator, SimulatorConfig, UsersFileError,
    read_missing_users_file, read_users_file,
};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Added to every API answer, e.g. `40ms`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub latency: Duration,

    /// A random extra of up to this much on top of --latency.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub jitter: Duration,

    /// Requests per second allowed across all environments, as a license limit; more are
    /// answered with 429 REQUEST_LIMITED and Retry-After.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<NonZeroU32>,

    /// Requests per second allowed in each environment, on top of --rate-limit.
    #[arg(long, value_name = "N")]
    pub env_rate_limit: Option<NonZeroU32>,

    /// How the rate limits meter and answer: `pingone` (a token bucket of a second's worth, a
    /// JSON 429 with Retry-After), `token-bucket` (the same without Retry-After, as behind a
    /// gateway that drops it), `leaky-bucket` (an edge's: one request an interval, an HTML 429
    /// without Retry-After), `leaky-burst` (the same with a burst of a tenth of a second's worth).
    #[arg(long, value_enum, default_value_t = LimiterShape::Pingone)]
    pub limiter: LimiterShape,

    /// Chance (0 to 1) that an API request is answered 500 UNEXPECTED_ERROR.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_500: f64,

    /// Chance (0 to 1) that an API request is answered 502.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_502: f64,

    /// Chance (0 to 1) that an API request is answered 503 with Retry-After.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_503: f64,

    /// Chance (0 to 1) that an API request's connection is reset without an answer.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_reset: f64,

    /// Chance (0 to 1) that an API request hangs for --hang-for, then its connection is reset.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_hang: f64,

    /// Retry-After sent with an injected 503 (whole seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub retry_after_503: Duration,

    /// How long a hanging request stays unanswered.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub hang_for: Duration,

    /// An environment in which the worker app lacks a role: 403 INSUFFICIENT_PERMISSIONS
    /// (repeatable).
    #[arg(long = "forbidden-env", value_name = "UUID")]
    pub forbidden_environments: Vec<Uuid>,

    /// An environment the tenant has (repeatable). Once any is named (here or through
    /// --users-file), an environment it does not have is answered 403 ACCESS_FAILED, as PingOne
    /// answers for one that does not exist or is in another region.
    #[arg(long = "environment", value_name = "UUID")]
    pub environments: Vec<Uuid>,

    /// How answers are worded, within what Ping's published schemas allow: `full` as Ping's
    /// example, `lean` (no _links, no canBypassMFA, no fraction, error bodies without id),
    /// `varied` (_links.self only, a +02:00 offset with microseconds, unknown fields).
    #[arg(long, value_enum, default_value_t = AnswerShape::Full)]
    pub answer_shape: AnswerShape,

    /// 429s give their wait only in the body's innerError.retryAfter, not in Retry-After.
    #[arg(long)]
    pub retry_after_in_body: bool,

    /// An outage: every API request is answered 503 without Retry-After from this long after
    /// start, for --outage-for.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "outage_for")]
    pub outage_from: Option<Duration>,

    /// How long the outage of --outage-from lasts.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "outage_from")]
    pub outage_for: Option<Duration>,

    /// CSV of the only users that exist (environment_id,user_id,username,email, optionally
    /// population,groups with groups separated by ;); they are
    /// also the directory that user lookups search. Without it every user exists.
    #[arg(long, value_name = "PATH", conflicts_with = "missing_users_file")]
    pub users_file: Option<PathBuf>,

    /// File of user IDs (one a line) that do not exist; every other user does.
    #[arg(long, value_name = "PATH")]
    pub missing_users_file: Option<PathBuf>,

    /// Lifetime of issued access tokens.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    pub token_ttl: Duration,

    /// Issued tokens stop working this long after they were issued, whatever their expires_in
    /// (--token-ttl) says, as tokens revoked mid-run do.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub token_revoked_after: Option<Duration>,

    /// How the worker application must authenticate at the token endpoint.
    #[arg(long, value_enum, default_value_t = ClientAuthMethod::Basic)]
    pub client_auth: ClientAuthMethod,

    /// Shorten any expiry later than now + this, as a tenant policy might.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_bypass: Option<Duration>,

    /// Answer user lookups whose filter joins several terms with `or` with 400, as a tenant
    /// that does not support batched lookups would.
    #[arg(long)]
    pub refuse_or_filters: bool,

    /// Serve HTTPS with a certificate made at start, and print one more line,
    /// `ca-file: <PATH>`: the certificate authority (PEM) that `run --ca-file` must trust.
    #[arg(long)]
    pub tls: bool,

    /// How long an activity of the audit log takes to show after its request, as PingOne's
    /// cached audit messages do.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub audit_lag: Duration,

    /// Audit requests (/activities) per second, PingOne's own limit for them by default; more
    /// are answered 429 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = NonZeroU32::new(AUDIT_REQUESTS_PER_SECOND).unwrap_or(NonZeroU32::MIN))]
    pub audit_rate_limit: NonZeroU32,

    /// The worker application may not read the audit log (no audit_reporting:read:activity):
    /// /activities answers 403.
    #[arg(long)]
    pub no_audit_permission: bool,

    /// Seed that makes faults, jitter and the generated credentials reproducible; random if
    /// not given.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateConfigError {
    #[error(transparent)]
    Users(#[from] UsersFileError),
    #[error(
        "--chance-500, --chance-502, --chance-503, --chance-reset and --chance-hang add up to {0}; together they may be at most 1"
    )]
    FaultChancesAboveOne(f64),
}

impl SimulateArgs {
    /// The simulator configuration these flags describe, with the seed they fix (drawn at
    /// random when `--seed` is absent, and returned so that a run can be replayed).
    pub fn to_config(&self) -> Result<SimulatorConfig, SimulateConfigError> {
        let faults = FaultChances {
            status_500: self.chance_500,
            status_502: self.chance_502,
            status_503: self.chance_503,
            reset: self.chance_reset,
            hang: self.chance_hang,
        };
        if faults.total() > 1.0 + f64::EPSILON {
            return Err(SimulateConfigError::FaultChancesAboveOne(faults.total()));
        }
        let population = match (&self.users_file, &self.missing_users_file) {
            (Some(path), _) => Population::Only(read_users_file(path)?),
            (None, Some(path)) => Population::AllExcept(read_missing_users_file(path)?),
            (None, None) => Population::Everyone,
        };
        Ok(SimulatorConfig {
            latency: self.latency,
            jitter: self.jitter,
            rate_limit: self.rate_limit.map(RateLimit::per_second),
            environment_rate_limit: self.env_rate_limit.map(RateLimit::per_second),
            limiter: self.limiter,
            faults,
            retry_after_503: self.retry_after_503,
            hang_for: self.hang_for,
            forbidden_environments: self
                .forbidden_environments
                .iter()
                .copied()
                .collect::<HashSet<_>>(),
            environments: self.environments.iter().copied().collect(),
            answer_shape: self.answer_shape,
            retry_after_in_body: self.retry_after_in_body,
            outage: self
                .outage_from
                .zip(self.outage_for)
                .map(|(from, lasting)| Outage { from, lasting }),
            population,
            token_ttl: self.token_ttl,
            token_revoked_after: self.token_revoked_after,
            client_auth: self.client_auth,
            max_bypass: self.max_bypass,
            refuse_or_filters: self.refuse_or_filters,
            tls: self.tls,
            audit_lag: self.audit_lag,
            audit_rate_limit: Some(RateLimit::per_second(self.audit_rate_limit)),
            audit_permission: !self.no_audit_permission,
            audit_page_size: AUDIT_PAGE_SIZE,
            audit_largest_limit: None,
            first_answer_lost: HashSet::new(),
            seed: self.seed.unwrap_or_else(rand::random),
        })
    }
}

/// The tenant `run --simulate` rehearses against: tens of milliseconds of latency with
/// jitter, a rate limit above the default `--rate`, and about 1% transient 503s so that a
/// newcomer sees retries happen.
pub fn simulated_tenant() -> SimulatorConfig {
    SimulatorConfig {
        latency: Duration::from_millis(30),
        jitter: Duration::from_millis(20),
        rate_limit: NonZeroU32::new(100).map(RateLimit::per_second),
        faults: FaultChances {
            status_503: 0.01,
            ..FaultChances::default()
        },
        seed: rand::random(),
        ..SimulatorConfig::default()
    }
}

/// Points `connection` at `simulator` and gives the settings of its worker application, so
/// that a rehearsal is a run like any other, against the simulator's URLs (what `--simulate`
/// and `serve --simulate` do before converting a request).
pub fn rehearse_on(simulator: &Simulator, connection: &mut EndpointArgs) -> CredentialSettings {
    connection.api_url = Some(simulator.api_url());
    connection.auth_url = Some(simulator.auth_url());
    connection.token_url = None;
    connection.token_file = None;
    let worker = simulator.credentials();
    CredentialSettings {
        client_id: Some(worker.client_id.to_string()),
        client_secret: Some(worker.client_secret.clone()),
        environment_id: Some(worker.environment_id.to_string()),
        access_token: None,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Simulate {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn simulate_args(args: &[&str]) -> Result<SimulateArgs, clap::Error> {
        let mut argv = vec!["simulate"];
        argv.extend_from_slice(args);
        Simulate::try_parse_from(argv).map(|parsed| parsed.args)
    }

    #[test]
    fn defaults_describe_a_fast_faultless_tenant_on_loopback() {
        let config = simulate_args(&["--seed", "9"]).map(|args| args.to_config());
        let Ok(Ok(config)) = config else {
            panic!("defaults did not parse: {config:?}");
        };
        assert_eq!(config.latency, Duration::ZERO);
        assert_eq!(config.rate_limit, None);
        assert_eq!(config.faults, FaultChances::default());
        assert_eq!(config.token_ttl, Duration::from_secs(3600));
        assert_eq!(config.seed, 9);
    }

    #[test]
    fn flags_fill_the_simulator_config() {
        let env = "4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01";
        let parsed = simulate_args(&[
            "--latency",
            "40ms",
            "--jitter",
            "10ms",
            "--rate-limit",
            "100",
            "--env-rate-limit",
            "35",
            "--chance-503",
            "0.01",
            "--forbidden-env",
            env,
            "--token-ttl",
            "2s",
            "--client-auth",
            "post",
            "--max-bypass",
            "1d",
        ])
        .map(|args| args.to_config());
        let Ok(Ok(config)) = parsed else {
            panic!("flags did not parse: {parsed:?}");
        };
        assert_eq!(config.latency, Duration::from_millis(40));
        assert_eq!(config.jitter, Duration::from_millis(10));
        assert_eq!(config.rate_limit.map(|l| l.requests.get()), Some(100));
        assert_eq!(
            config.environment_rate_limit.map(|l| l.requests.get()),
            Some(35)
        );
        assert_eq!(config.faults.status_503, 0.01);
        assert!(
            config
                .forbidden_environments
                .contains(&Uuid::parse_str(env).unwrap_or_default())
        );
        assert_eq!(config.token_ttl, Duration::from_secs(2));
        assert_eq!(config.client_auth, ClientAuthMethod::Post);
        assert_eq!(config.max_bypass, Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn answer_shapes_environments_body_waits_and_an_outage_fill_the_config() {
        let env = "4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01";
        let parsed = simulate_args(&[
            "--answer-shape",
            "lean",
            "--environment",
            env,
            "--retry-after-in-body",
            "--outage-from",
            "4s",
            "--outage-for",
            "30s",
        ])
        .map(|args| args.to_config());
        let Ok(Ok(config)) = parsed else {
            panic!("the flags parse: {parsed:?}");
        };
        assert_eq!(config.answer_shape, AnswerShape::Lean);
        assert_eq!(
            config.environments,
            [Uuid::try_parse(env).unwrap_or_default()].into()
        );
        assert!(config.retry_after_in_body);
        assert_eq!(
            config.outage,
            Some(Outage {
                from: Duration::from_secs(4),
                lasting: Duration::from_secs(30)
            })
        );
        assert!(
            simulate_args(&["--outage-from", "4s"]).is_err(),
            "an outage needs its length"
        );
    }

    #[test]
    fn a_chance_outside_zero_to_one_names_the_flag() {
        let error = simulate_args(&["--chance-503", "1.5"])
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("--chance-503") && e.contains("between 0 and 1")),
            "{error:?}"
        );
    }

    #[test]
    fn chances_adding_up_to_more_than_one_are_refused() {
        let error = simulate_args(&["--chance-500", "0.6", "--chance-hang", "0.6"])
            .map(|args| args.to_config().err().map(|e| e.to_string()));
        assert!(
            matches!(&error, Ok(Some(message)) if message.contains("at most 1")),
            "{error:?}"
        );
    }

    #[test]
    fn a_bad_duration_says_how_to_write_one() {
        let error = simulate_args(&["--latency", "fast"])
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("--latency") && e.contains("such as 500ms")),
            "{error:?}"
        );
    }

    #[test]
    fn the_sample_population_files_load() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
        let only = simulate_args(&["--users-file", &format!("{samples}/users.csv")])
            .map(|args| args.to_config().map(|config| config.population));
        assert!(
            matches!(&only, Ok(Ok(Population::Only(users))) if users.len() == 3),
            "{only:?}"
        );
        let missing = simulate_args(&[
            "--missing-users-file",
            &format!("{samples}/missing-users.txt"),
        ])
        .map(|args| args.to_config().map(|config| config.population));
        assert!(
            matches!(&missing, Ok(Ok(Population::AllExcept(users))) if users.len() == 1),
            "{missing:?}"
        );
    }

    #[test]
    fn users_file_and_missing_users_file_exclude_each_other() {
        let result = simulate_args(&["--users-file", "a.csv", "--missing-users-file", "b.txt"]);
        assert!(result.is_err());
    }
}
