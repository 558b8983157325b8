//! PingOne as one room: every request any stage makes (a row's PUT or GET, a lookup, a
//! population's listing) goes through [`Gateway::send`], which takes a slot from the shared
//! throttle and a place among the requests in flight before every attempt, sends with the shared
//! token and the run's correlation headers, retries what PingOne says may be retried, renews the
//! token on a 401, waits out an outage behind the circuit, and stops when the credentials are
//! rejected, an environment keeps answering 403, the results cannot be written, or the run is
//! interrupted. The stages are handed the gateway; none of them imports another to send.

pub(crate) mod attempt;
pub mod auth;
pub(crate) mod circuit;
pub mod client;
pub(crate) mod listing;
pub(crate) mod proxy;
pub(crate) mod stop;
pub(crate) mod throttle;
pub(crate) mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use secrecy::SecretString;
use uuid::Uuid;

use auth::TokenSource;
use circuit::{Admission, Circuit, ProbeGuard};
use client::{Attempt, PingOneClient, RetryPolicy, Transaction};
use stop::Stop;
use throttle::Throttle;

/// Why a request was not sent (or not sent again): the `error_code` and message of the row it
/// was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotSent {
    pub code: &'static str,
    pub message: String,
}

/// What the gateway counts while the run goes on; the run's live counters hold them, so that
/// progress, the page and the summary read the same numbers.
#[derive(Debug, Default)]
pub struct RequestCounts {
    /// Requests sent, retries and lookups included.
    pub requests: AtomicU64,
    /// Requests that looked users (or a population or group) up; part of `requests`.
    pub lookups: AtomicU64,
    pub retries: AtomicU64,
    /// 429 answers.
    pub throttled: AtomicU64,
    /// Tokens renewed because PingOne refused one it had accepted.
    pub token_renewals: AtomicU64,
}

impl RequestCounts {
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }
}

/// `error_code` of a row not sent because PingOne was down for longer than the run waits.
pub const PINGONE_DOWN: &str = "PINGONE_DOWN";

/// How long senders wait for the first answer that proves the credentials before going on
/// without it.
const PROBE_PATIENCE: Duration = Duration::from_secs(1);

/// One request to PingOne, sent once per attempt.
pub(crate) trait Request {
    /// What a successful answer carries.
    type Answer;
    fn send_once(
        &self,
        client: &PingOneClient,
        token: &SecretString,
        transaction: &Transaction,
    ) -> impl Future<Output = Attempt<Self::Answer>> + Send;
}

/// How sending one request ended.
pub(crate) enum Sent<T> {
    /// The last answer (or failure to get one) and how many attempts were made.
    Answered(Attempt<T>, u32),
    /// The run or the environment stopped before (another) attempt; PingOne's last answer
    /// and the attempts made, if it was sent at all.
    Stopped(NotSent, Option<(Attempt<T>, u32)>),
}

/// Sends requests (a row's PUT or GET, the lookups that resolve names): one throttle slot before
/// every attempt, at most `in_flight` requests at once, retries with backoff, a 429's `Retry-After` pausing every sender and any other delaying its
/// row, token renewal on 401, and a stop when no token can be had or an environment keeps
/// answering 403.
pub struct Gateway {
    client: PingOneClient,
    tokens: TokenSource,
    throttle: Throttle,
    /// Opens when PingOne seems down: rows then wait for it instead of spending retries.
    circuit: Circuit,
    in_flight: Semaphore,
    /// Until some answer shows that PingOne accepts the token in use (the first, or one that
    /// replaced a refused one), one request at a time probes: wrong credentials then cost one
    /// PUT, not one per sender.
    probe: tokio::sync::Mutex<()>,
    retry: RetryPolicy,
    counts: Arc<RequestCounts>,
    stop: Arc<Stop>,
}

/// What became of a row's turn in a slot.
enum InSlot<T> {
    /// Sent with this token at this instant.
    Sent(auth::Bearer, Instant, Attempt<T>),
    /// Not sent this time; the row goes back to wait for admission.
    Again,
    Stopped(NotSent),
}

/// Where a gateway sends and as whom.
pub(crate) struct Endpoint<'a> {
    pub api_url: &'a str,
    /// Sent as `X-Ping-External-Session-ID` with every request.
    pub run_id: Uuid,
    pub credentials: auth::Credentials,
    pub timeout: Duration,
    /// `--ca-file`'s certificates, trusted beside the system's.
    pub extra_roots: &'a [reqwest::Certificate],
}

/// How fast and how patiently a gateway sends.
pub(crate) struct Pace {
    pub rate: f64,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub outage_patience: Duration,
}

impl Gateway {
    /// A gateway to `endpoint` at `pace`, counting into `counts` and stopping with `stop`.
    pub(crate) fn connect(
        endpoint: Endpoint<'_>,
        pace: Pace,
        counts: Arc<RequestCounts>,
        stop: Arc<Stop>,
    ) -> Result<Self, client::ClientError> {
        Ok(Self {
            client: PingOneClient::new(
                endpoint.api_url,
                endpoint.run_id,
                endpoint.timeout,
                pace.concurrency,
                endpoint.extra_roots,
            )?,
            tokens: TokenSource::new(endpoint.credentials, endpoint.timeout, endpoint.extra_roots)?,
            throttle: Throttle::new(pace.rate),
            circuit: Circuit::new(pace.outage_patience),
            in_flight: Semaphore::new(pace.concurrency.max(1)),
            probe: tokio::sync::Mutex::new(()),
            retry: pace.retry,
            counts,
            stop,
        })
    }
}

impl Gateway {
    /// The HTTP client, for the URLs and transactions of a request to make.
    pub(crate) fn client(&self) -> &PingOneClient {
        &self.client
    }

    /// Why the whole run stopped sending (no token can be had, a proxy refused), once it has.
    pub(crate) fn stopped_because(&self) -> Option<String> {
        self.stop.aborted()
    }

    /// A token, or why none can be had. A run that only reads (a plan) asks first, so that no
    /// plan shows rows to grant that its credentials could never grant.
    pub(crate) async fn check_token(&self) -> Result<(), auth::AuthError> {
        self.tokens.bearer().await.map(|_| ())
    }

    /// Makes one request in `environment` under the run's rules, as often as they allow.
    pub(crate) async fn send<R: Request>(
        &self,
        environment: Uuid,
        request: &R,
        transaction: &Transaction,
    ) -> Sent<R::Answer> {
        let mut attempts = 0;
        // Attempts that count against `--retries`: not those that met an outage.
        let mut spent = 0;
        let mut last_answer: Option<Attempt<R::Answer>> = None;
        let mut probe = None;
        loop {
            let outage_probe = match self.admission(environment).await {
                Ok(outage_probe) => outage_probe,
                Err(reason) => {
                    return Sent::Stopped(reason, last_answer.map(|answer| (answer, attempts)));
                }
            };
            if probe.is_none() && !self.credentials_proven() {
                // A probe that hangs must not hold the whole run back for a full timeout.
                probe = tokio::time::timeout(PROBE_PATIENCE, self.probe.lock())
                    .await
                    .ok()
                    // The probe before this one may have proven the credentials meanwhile.
                    .filter(|_| !self.credentials_proven());
            }
            let (bearer, sent_at, attempt) = match self
                .attempt_in_slot(environment, request, transaction, outage_probe.is_some())
                .await
            {
                InSlot::Sent(bearer, sent_at, attempt) => (bearer, sent_at, attempt),
                InSlot::Again => continue,
                InSlot::Stopped(reason) => {
                    return Sent::Stopped(reason, last_answer.map(|answer| (answer, attempts)));
                }
            };
            attempts += 1;
            spent += 1;
            if attempts > 1 {
                RequestCounts::add(&self.counts.retries, 1);
            }
            let http_status = attempt.http_status();
            if http_status.is_none()
                && let Some(reason) = self.stopped_by_proxy(environment)
            {
                return Sent::Stopped(reason, last_answer.map(|answer| (answer, attempts - 1)));
            }
            if http_status == Some(401) {
                // The probe, if this row holds it, is kept through the renewal: the renewed
                // token is tried before anyone else sends.
                if !self.renewed(&bearer).await {
                    return Sent::Answered(attempt, attempts);
                }
                last_answer = Some(attempt);
                continue;
            }
            probe = None;
            self.note_answer(environment, &bearer, &attempt, sent_at);
            // PingOne failing (5xx) or unreachable: a sporadic failure is the row's to retry;
            // a run of them is an outage, which the circuit rides out for every row.
            let failed = matches!(http_status, Some(500..) | None);
            let outage = self
                .circuit
                .answered(failed, attempt.retry_after(), outage_probe);
            if outage && failed {
                spent -= 1;
                last_answer = Some(attempt);
                continue;
            }
            if !attempt.may_retry() || spent > self.retry.retries {
                return Sent::Answered(attempt, attempts);
            }
            self.wait_to_retry(http_status, attempt.retry_after(), attempts)
                .await;
            last_answer = Some(attempt);
        }
    }

    /// One attempt in a place among the requests in flight, once the throttle gives a slot:
    /// sent with the current token, or to be tried again (the circuit opened meanwhile, or the
    /// token had to be renewed), or not at all (the run or the environment stopped).
    async fn attempt_in_slot<R: Request>(
        &self,
        environment: Uuid,
        request: &R,
        transaction: &Transaction,
        probing: bool,
    ) -> InSlot<R::Answer> {
        // The semaphore is never closed, so this always holds a permit.
        let _permit = self.in_flight.acquire().await.ok();
        // A run that has stopped must not keep rows waiting for slots it will not use.
        if let Some(reason) = self.stop.reason_not_to_send(environment) {
            return InSlot::Stopped(reason);
        }
        self.until_interrupted(self.throttle.acquire()).await;
        // Checked at the last moment: the run or this environment may have stopped while this
        // row waited for its slot.
        if let Some(reason) = self.stop.reason_not_to_send(environment) {
            return InSlot::Stopped(reason);
        }
        // PingOne may have gone down while this row waited: only a probe goes then.
        if !probing && self.circuit.is_open() {
            return InSlot::Again;
        }
        let bearer = match self.tokens.bearer().await {
            Ok(bearer) => bearer,
            Err(error) => {
                self.stop.abort(&error);
                return InSlot::Again;
            }
        };
        RequestCounts::add(&self.counts.requests, 1);
        let sent_at = Instant::now();
        let attempt = request
            .send_once(&self.client, &bearer.token, transaction)
            .await;
        InSlot::Sent(bearer, sent_at, attempt)
    }

    /// What an answer (never a 401) tells the run beyond its row: PingOne took the token, how
    /// the environment answers, and whether the rate must come down (a 429) or may go up again. Every answer
    /// but a 429 or a server error passed whatever limiter stands in front of the API (a 404
    /// too), and so counts toward the rate it accepts.
    fn note_answer<T>(
        &self,
        environment: Uuid,
        bearer: &auth::Bearer,
        attempt: &Attempt<T>,
        sent_at: Instant,
    ) {
        let http_status = attempt.http_status();
        if http_status.is_some() {
            self.tokens.accepted(bearer);
            self.stop.record_answer(environment, http_status);
        }
        match http_status {
            Some(429) => {
                RequestCounts::add(&self.counts.throttled, 1);
                self.throttle.limited(sent_at, attempt.retry_after());
            }
            Some(status) if status < 500 => self.throttle.passed(sent_at),
            _ => {}
        }
    }

    /// After an attempt that got no answer: when it was a proxy refusing the tunnel, the run
    /// stops, since nothing passes it, and why this row was not sent.
    fn stopped_by_proxy(&self, environment: Uuid) -> Option<NotSent> {
        let refusal = self.client.proxy_refusal()?;
        self.stop
            .abort(&auth::AuthError::ProxyRefused(refusal.to_owned()));
        Some(
            self.stop
                .reason_not_to_send(environment)
                .unwrap_or(NotSent {
                    code: "PROXY_REFUSED",
                    message: refusal.to_owned(),
                }),
        )
    }

    /// After PingOne refused `bearer` with 401: whether a token to try next could be had (one
    /// renewed, counted when PingOne had taken the refused one); when not, the run stops.
    async fn renewed(&self, bearer: &auth::Bearer) -> bool {
        match self.tokens.renew_after_rejection(bearer).await {
            Ok((_, renewal)) => {
                if renewal == auth::Renewal::AfterUse {
                    RequestCounts::add(&self.counts.token_renewals, 1);
                }
                true
            }
            Err(error) => {
                self.stop.abort(&error);
                false
            }
        }
    }

    /// Waits before a row's next attempt. A 429's Retry-After is about the license's shared
    /// limit: every sender pauses. Any other Retry-After (a 503's) is about this request: only
    /// this row waits; without one, the backoff for the `attempts` made.
    async fn wait_to_retry(
        &self,
        http_status: Option<u16>,
        retry_after: Option<Duration>,
        attempts: u32,
    ) {
        let wait = match (http_status, retry_after) {
            (Some(429), Some(after)) => {
                self.throttle
                    .pause_until(Instant::now() + after.min(self.retry.max_delay));
                None
            }
            (_, Some(after)) => Some(self.retry.at_least(after)),
            (_, None) => Some(self.retry.backoff(attempts)),
        };
        if let Some(wait) = wait {
            self.until_interrupted(tokio::time::sleep(wait)).await;
        }
    }

    /// Waits until the circuit lets this row send (at once while PingOne answers), with the
    /// probe when it is this row's turn to probe an outage; or says why the row is not sent.
    async fn admission(&self, environment: Uuid) -> Result<Option<ProbeGuard<'_>>, NotSent> {
        let admission = tokio::select! {
            admission = self.circuit.admit() => admission,
            () = self.stop.halt.cancelled() => {
                return Err(self.stop.reason_not_to_send(environment).unwrap_or(NotSent {
                    code: "INTERRUPTED",
                    message: "the run stopped".to_owned(),
                }));
            }
        };
        match admission {
            Admission::Send => Ok(None),
            Admission::Probe(probe) => Ok(Some(probe)),
            Admission::GaveUp { down_for } => Err(NotSent {
                code: PINGONE_DOWN,
                message: format!(
                    "PingOne answered no request for {} (--outage-patience); run again with --resume once it is back",
                    humantime::format_duration(Duration::from_secs(down_for.as_secs()))
                ),
            }),
        }
    }

    /// Waits for `wait` unless the run is interrupted first; either way the caller then checks
    /// whether it may still send.
    async fn until_interrupted(&self, wait: impl std::future::Future<Output = ()>) {
        tokio::select! {
            () = wait => {}
            () = self.stop.halt.cancelled() => {}
        }
    }

    fn credentials_proven(&self) -> bool {
        self.tokens.current_is_accepted()
    }
}
