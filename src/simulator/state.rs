//! The simulated tenant's memory: issued tokens, stored bypasses, the directory, rate limiters
//! and the counters tests read back. Shared by every connection, so everything here is either
//! atomic or sharded; the hot path (one PUT) takes no global lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::distr::Alphanumeric;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use super::config::{DirectoryUser, LimiterShape, Population, RateLimit, SimulatorConfig};
use super::directory::built_in_directory;

/// What a client needs to get a token from the simulator, as `simulate` prints it.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The worker application's environment (`PINGONE_ENVIRONMENT_ID`).
    pub environment_id: Uuid,
    pub client_id: Uuid,
    pub client_secret: SecretString,
}

/// A bypass as the simulator holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoredBypass {
    pub environment_id: Uuid,
    pub user_id: Uuid,
    #[serde(serialize_with = "crate::pingone::serialize_bypass_until")]
    pub bypass_mfa_enabled_until: DateTime<Utc>,
}

/// How many PUTs one user received, whatever their outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UserPutCount {
    pub environment_id: Uuid,
    pub user_id: Uuid,
    pub puts: u64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Answered requests by HTTP status (token and API requests; not introspection).
    pub responses_by_status: BTreeMap<u16, u64>,
    /// Requests whose connection was reset instead of answered.
    pub resets: u64,
    /// Requests that were left hanging.
    pub hangs: u64,
    pub tokens_issued: u64,
    /// Requests being served right now, and the most ever served at once.
    pub in_flight: u64,
    pub peak_in_flight: u64,
    /// Every `PUT .../bypassMFA` received, per user, sorted by environment then user.
    pub puts_per_user: Vec<UserPutCount>,
    /// `GET .../users` pages served, and the filter terms they answered (a batched lookup of
    /// 50 names is one listing of 50 terms).
    pub user_listings: u64,
    pub user_filter_terms: u64,
    /// API requests by their `X-Ping-External-Session-ID` (`""` for those without one).
    pub session_ids: BTreeMap<String, u64>,
    /// API requests by their `X-Ping-External-Transaction-ID` (`""` for those without one).
    pub transaction_ids: BTreeMap<String, u64>,
    /// API requests whose correlation headers PingOne would not record: over 100 characters or
    /// not ASCII.
    pub malformed_correlation: u64,
}

impl Stats {
    pub fn responses(&self, status: u16) -> u64 {
        self.responses_by_status.get(&status).copied().unwrap_or(0)
    }

    pub fn total_puts(&self) -> u64 {
        self.puts_per_user.iter().map(|count| count.puts).sum()
    }

    pub fn puts_for(&self, environment_id: Uuid, user_id: Uuid) -> u64 {
        self.puts_per_user
            .iter()
            .find(|count| count.environment_id == environment_id && count.user_id == user_id)
            .map_or(0, |count| count.puts)
    }
}

/// Why a request was refused by a rate limit, and when to come back.
pub struct Limited {
    pub retry_after_seconds: u64,
}

/// When PUTs arrived, counted in 10 ms buckets from the simulator's start: enough to find the
/// busiest one-second window of a run to within a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutArrivals {
    per_bucket: Vec<u32>,
}

impl PutArrivals {
    pub const BUCKET: Duration = Duration::from_millis(10);

    pub fn total(&self) -> u64 {
        self.per_bucket.iter().map(|&count| u64::from(count)).sum()
    }

    /// PUTs per 10 ms bucket from the simulator's start.
    pub fn per_bucket(&self) -> &[u32] {
        &self.per_bucket
    }

    /// Time from the first arrival's bucket to the last one's (zero for fewer than two buckets).
    pub fn span(&self) -> Duration {
        let first = self.per_bucket.iter().position(|&count| count > 0);
        let last = self.per_bucket.iter().rposition(|&count| count > 0);
        match (first, last) {
            (Some(first), Some(last)) => {
                Self::BUCKET * u32::try_from(last - first).unwrap_or(u32::MAX)
            }
            _ => Duration::ZERO,
        }
    }

    /// The most PUTs that arrived within any `window` (a whole number of buckets).
    pub fn busiest(&self, window: Duration) -> u64 {
        let width = (window.as_millis() / Self::BUCKET.as_millis()).max(1) as usize;
        let mut in_window: u64 = 0;
        let mut busiest = 0;
        for (index, &count) in self.per_bucket.iter().enumerate() {
            in_window += u64::from(count);
            if index >= width {
                in_window -= u64::from(self.per_bucket[index - width]);
            }
            busiest = busiest.max(in_window);
        }
        busiest
    }
}

const LOWEST_STATUS: usize = 100;
const STATUS_SLOTS: usize = 500;

pub struct TenantState {
    pub config: SimulatorConfig,
    pub credentials: Credentials,
    pub api_url: String,
    directory: Vec<DirectoryUser>,
    existing_users: Option<HashSet<(Uuid, Uuid)>>,
    /// Empty when the tenant was told of no environment: then every environment exists.
    known_environments: HashSet<Uuid>,
    session_ids: DashMap<String, u64>,
    transaction_ids: DashMap<String, u64>,
    malformed_correlation: AtomicU64,
    tokens: RwLock<HashMap<String, Instant>>,
    /// Every token ever issued, expired ones included, for tests that check none leaked.
    issued: std::sync::Mutex<Vec<String>>,
    bypasses: DashMap<(Uuid, Uuid), DateTime<Utc>>,
    puts: DashMap<(Uuid, Uuid), u64>,
    started: Instant,
    put_arrivals: std::sync::Mutex<Vec<u32>>,
    unkeyed_requests: AtomicU64,
    global_limiter: Option<DefaultDirectRateLimiter>,
    audit_limiter: Option<DefaultDirectRateLimiter>,
    pub(super) audit: super::audit_log::AuditLog,
    environment_limiter: Option<DefaultKeyedRateLimiter<Uuid>>,
    responses_by_status: Box<[AtomicU64]>,
    resets: AtomicU64,
    hangs: AtomicU64,
    tokens_issued: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    user_listings: AtomicU64,
    user_filter_terms: AtomicU64,
}

impl TenantState {
    pub fn new(config: SimulatorConfig, api_url: String) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        let credentials = Credentials {
            environment_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
            client_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
            client_secret: SecretString::from(random_text(&mut rng, 64)),
        };
        let (directory, existing_users) = match &config.population {
            Population::Only(users) => (
                users.clone(),
                Some(users.iter().map(|u| (u.environment_id, u.id)).collect()),
            ),
            Population::Everyone | Population::AllExcept(_) => (built_in_directory(), None),
        };
        let known_environments = config
            .environments
            .iter()
            .copied()
            .chain(directory_environments(&config.population))
            .collect();
        Self {
            known_environments,
            session_ids: DashMap::new(),
            transaction_ids: DashMap::new(),
            malformed_correlation: AtomicU64::new(0),
            audit_limiter: config
                .audit_rate_limit
                .map(|limit| RateLimiter::direct(quota(limit, LimiterShape::Pingone))),
            audit: super::audit_log::AuditLog::default(),
            global_limiter: config
                .rate_limit
                .map(|limit| RateLimiter::direct(quota(limit, config.limiter))),
            environment_limiter: config
                .environment_rate_limit
                .map(|limit| RateLimiter::keyed(quota(limit, config.limiter))),
            config,
            credentials,
            api_url,
            directory,
            existing_users,
            tokens: RwLock::new(HashMap::new()),
            issued: std::sync::Mutex::new(Vec::new()),
            bypasses: DashMap::new(),
            puts: DashMap::new(),
            started: Instant::now(),
            put_arrivals: std::sync::Mutex::new(Vec::new()),
            unkeyed_requests: AtomicU64::new(0),
            responses_by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            resets: AtomicU64::new(0),
            hangs: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            user_listings: AtomicU64::new(0),
            user_filter_terms: AtomicU64::new(0),
        }
    }

    /// Counts a page of users served for a filter of `terms` terms.
    pub fn count_user_listing(&self, terms: usize) {
        self.user_listings.fetch_add(1, Ordering::Relaxed);
        self.user_filter_terms
            .fetch_add(terms as u64, Ordering::Relaxed);
    }

    pub fn user_exists(&self, environment_id: Uuid, user_id: Uuid) -> bool {
        match (&self.config.population, &self.existing_users) {
            (_, Some(existing)) => existing.contains(&(environment_id, user_id)),
            (Population::AllExcept(missing), None) => !missing.contains(&user_id),
            (_, None) => true,
        }
    }

    /// Whether the tenant has this environment: any, when it was told of none.
    pub fn environment_exists(&self, environment_id: Uuid) -> bool {
        self.known_environments.is_empty() || self.known_environments.contains(&environment_id)
    }

    /// Whether the outage window is in force now.
    pub fn in_outage(&self) -> bool {
        self.config.outage.is_some_and(|outage| {
            let elapsed = self.started.elapsed();
            elapsed >= outage.from && elapsed < outage.from.saturating_add(outage.lasting)
        })
    }

    /// Counts the correlation headers of one API request.
    pub fn count_correlation(&self, session: Option<&[u8]>, transaction: Option<&[u8]>) {
        let mut malformed = false;
        for (value, counts) in [
            (session, &self.session_ids),
            (transaction, &self.transaction_ids),
        ] {
            let text = match value {
                None => String::new(),
                Some(bytes) => {
                    malformed |= bytes.len() > 100 || !bytes.is_ascii();
                    String::from_utf8_lossy(bytes).into_owned()
                }
            };
            *counts.entry(text).or_insert(0) += 1;
        }
        if malformed {
            self.malformed_correlation.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn directory(&self, environment_id: Uuid) -> impl Iterator<Item = &DirectoryUser> {
        self.directory
            .iter()
            .filter(move |user| user.environment_id == environment_id)
    }

    pub fn issue_token(&self) -> String {
        let token = random_text(&mut rand::rng(), 48);
        let now = Instant::now();
        // A token revoked early stops working before the `expires_in` it was issued with.
        let expires_at = now
            + self
                .config
                .token_revoked_after
                .map_or(self.config.token_ttl, |revoked| {
                    revoked.min(self.config.token_ttl)
                });
        let mut tokens = self
            .tokens
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(token.clone(), expires_at);
        self.issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(token.clone());
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
        token
    }

    /// Forgets every issued token, as PingOne does when an application's secret is rotated.
    pub fn revoke_tokens(&self) {
        self.tokens
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    /// Every token issued so far, expired and revoked ones included.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn token_is_valid(&self, token: &str) -> bool {
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens
            .get(token)
            .is_some_and(|expires_at| *expires_at > Instant::now())
    }

    /// Counts a PUT for this user and returns how many came before it.
    pub fn record_put(&self, environment_id: Uuid, user_id: Uuid) -> u64 {
        let bucket =
            (self.started.elapsed().as_millis() / PutArrivals::BUCKET.as_millis()) as usize;
        {
            let mut arrivals = self
                .put_arrivals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if arrivals.len() <= bucket {
                arrivals.resize(bucket + 1, 0);
            }
            arrivals[bucket] += 1;
        }
        let mut count = self.puts.entry((environment_id, user_id)).or_insert(0);
        let before = *count;
        *count += 1;
        before
    }

    /// A sequence number for requests that are not about one user.
    pub fn next_unkeyed_request(&self) -> u64 {
        self.unkeyed_requests.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes one request from the shared limit and, if given, the environment's limit.
    pub fn check_rate_limits(&self, environment_id: Option<Uuid>) -> Result<(), Limited> {
        let clock = DefaultClock::default();
        if let Some(limiter) = &self.global_limiter {
            limiter.check().map_err(|not_until| Limited {
                retry_after_seconds: whole_seconds_at_least_one(
                    not_until.wait_time_from(clock.now()),
                ),
            })?;
        }
        if let (Some(limiter), Some(environment_id)) = (&self.environment_limiter, environment_id) {
            limiter
                .check_key(&environment_id)
                .map_err(|not_until| Limited {
                    retry_after_seconds: whole_seconds_at_least_one(
                        not_until.wait_time_from(clock.now()),
                    ),
                })?;
        }
        Ok(())
    }

    /// Takes one request from the audit API's limit.
    pub fn check_audit_rate_limit(&self) -> Result<(), Limited> {
        let Some(limiter) = &self.audit_limiter else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| Limited {
            retry_after_seconds: whole_seconds_at_least_one(
                not_until.wait_time_from(DefaultClock::default().now()),
            ),
        })
    }

    pub fn store_bypass(&self, environment_id: Uuid, user_id: Uuid, until: DateTime<Utc>) {
        self.bypasses.insert((environment_id, user_id), until);
    }

    pub fn bypass(&self, environment_id: Uuid, user_id: Uuid) -> Option<DateTime<Utc>> {
        self.bypasses
            .get(&(environment_id, user_id))
            .map(|until| *until)
    }

    /// Every stored bypass, sorted by environment then user.
    pub fn bypasses(&self) -> Vec<StoredBypass> {
        let mut all: Vec<_> = self
            .bypasses
            .iter()
            .map(|entry| StoredBypass {
                environment_id: entry.key().0,
                user_id: entry.key().1,
                bypass_mfa_enabled_until: *entry.value(),
            })
            .collect();
        all.sort_by_key(|bypass| (bypass.environment_id, bypass.user_id));
        all
    }

    /// Marks a request as being served until the returned guard is dropped, which also happens
    /// when the request's connection is reset mid-way.
    pub fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight { state: self }
    }

    pub fn count_response(&self, status: u16) {
        if let Some(slot) = usize::from(status)
            .checked_sub(LOWEST_STATUS)
            .and_then(|index| self.responses_by_status.get(index))
        {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count_reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_hang(&self) {
        self.hangs.fetch_add(1, Ordering::Relaxed);
    }

    pub fn put_arrivals(&self) -> PutArrivals {
        PutArrivals {
            per_bucket: self
                .put_arrivals
                .lock()
                .map(|arrivals| arrivals.clone())
                .unwrap_or_else(|poisoned| poisoned.into_inner().clone()),
        }
    }

    pub fn stats(&self) -> Stats {
        let responses_by_status = self
            .responses_by_status
            .iter()
            .enumerate()
            .filter_map(|(index, count)| {
                let count = count.load(Ordering::Relaxed);
                let status = u16::try_from(index + LOWEST_STATUS).ok()?;
                (count > 0).then_some((status, count))
            })
            .collect();
        let mut puts_per_user: Vec<_> = self
            .puts
            .iter()
            .map(|entry| UserPutCount {
                environment_id: entry.key().0,
                user_id: entry.key().1,
                puts: *entry.value(),
            })
            .collect();
        puts_per_user.sort_by_key(|count| (count.environment_id, count.user_id));
        Stats {
            responses_by_status,
            resets: self.resets.load(Ordering::Relaxed),
            hangs: self.hangs.load(Ordering::Relaxed),
            tokens_issued: self.tokens_issued.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            puts_per_user,
            user_listings: self.user_listings.load(Ordering::Relaxed),
            user_filter_terms: self.user_filter_terms.load(Ordering::Relaxed),
            session_ids: counted(&self.session_ids),
            transaction_ids: counted(&self.transaction_ids),
            malformed_correlation: self.malformed_correlation.load(Ordering::Relaxed),
        }
    }
}

pub struct InFlight<'a> {
    state: &'a TenantState,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn quota(limit: RateLimit, shape: LimiterShape) -> Quota {
    let interval = limit.period / limit.requests.get();
    Quota::with_period(interval.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(limit.requests))
        .allow_burst(shape.burst(limit.requests))
}

/// `Retry-After` carries whole seconds; rounding down would invite a client back too early.
fn whole_seconds_at_least_one(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

fn random_text(rng: &mut impl rand::Rng, len: usize) -> String {
    rng.sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn counted(counts: &DashMap<String, u64>) -> BTreeMap<String, u64> {
    counts
        .iter()
        .map(|entry| (entry.key().clone(), *entry.value()))
        .collect()
}

/// The environments a directory of only these users has.
fn directory_environments(population: &Population) -> Vec<Uuid> {
    match population {
        Population::Only(users) => users.iter().map(|user| user.environment_id).collect(),
        Population::Everyone | Population::AllExcept(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_window_slides_across_bucket_boundaries() {
        let mut per_bucket = vec![0; 300];
        per_bucket[50] = 3;
        per_bucket[149] = 4;
        per_bucket[150] = 5;
        per_bucket[249] = 1;
        let arrivals = PutArrivals { per_bucket };
        assert_eq!(arrivals.total(), 13);
        assert_eq!(arrivals.busiest(Duration::from_secs(1)), 9);
        assert_eq!(arrivals.busiest(Duration::from_millis(10)), 5);
        assert_eq!(arrivals.span(), Duration::from_millis(1990));
    }
}
