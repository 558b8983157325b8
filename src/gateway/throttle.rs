//! Pacing every request, retries included, across all rows and environments: a shared
//! schedule of send slots, a pause gate that a `Retry-After` closes for every sender at once,
//! and an adaptive rate that finds what the limiter in front of the API accepts, whatever that
//! limiter is: PingOne's own token bucket with `Retry-After`, or a gateway's, a WAF's or an
//! egress proxy's leaky bucket that answers 429 with an HTML page and no wait at all.
//!
//! The rate comes down to what was measured, not to a guess. Each answer is weighed with the
//! instant its request was sent, and only answers to requests sent at the rate in force count:
//! a 429 to one sent before the rate last changed is the same storm. Once enough answers have
//! come back at a rate (16, or a second's worth), a 429 lowers it to a little below the share
//! of them the limiter let through, over the time their requests actually span: never an
//! assumed full second, since the first 429 can come a few milliseconds into a run. A rate
//! that goes half a second without a 429 is proven and climbs, by a share that doubles while
//! nothing pushes back (so that a limit that rose, when another client on the license
//! finished, is found again within about ten seconds), or halfway to the rate last met by a
//! 429 when that is further. A 429 above a proven rate goes back to it at once: a leaky bucket
//! met a little above its limit refuses every other request, so what it accepts then says
//! little of its limit, while the proven rate is known to pass.
//!
//! An outage does not touch the rate: the circuit (`circuit.rs`) holds rows back while
//! PingOne is down, so that the rate is the run's again the moment it answers.
//!
//! Written by hand rather than with `governor`: the schedule hands each caller its own slot
//! (so waiters do not wake together and race), a pause or a new rate applies to slots already
//! handed out, and it sleeps on tokio's clock, so its behaviour can be tested with paused time;
//! governor sleeps on its own clock and its quotas cannot change, which the adaptive rate needs.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Shared by every sender of a run.
pub struct Throttle {
    schedule: Mutex<Schedule>,
    /// Wakes every sender waiting for a slot when the rate changes.
    rescheduled: tokio::sync::Notify,
}

struct Schedule {
    /// The earliest instant the next slot may be handed out at.
    next_slot: Instant,
    /// No slot is used before this instant (set from `Retry-After`).
    paused_until: Instant,
    /// The configured `--rate`, never exceeded.
    ceiling: f64,
    /// The rate in force now.
    rate: f64,
    /// The evidence for the next lowering: answers to requests sent at the rate in force,
    /// within `EVIDENCE` of now, in the order they came back.
    answers: VecDeque<Answered>,
    /// How many of `answers` the limiter let through.
    passed: usize,
    /// When the rate in force was put in force (the first slot, for the configured rate):
    /// answers to requests sent before it speak of another rate, and are not weighed.
    changed_at: Option<Instant>,
    /// A 429 to a request sent at the rate in force has come back since it was put in force
    /// or last proven: it has not held.
    limited_since_change: bool,
    /// No climb before this: `RAISE_EVERY` after the rate last changed, `raise_wait` after a
    /// small climb met a 429, `NEXT_LONG_STEP` after a long one did.
    next_raise: Instant,
    /// The share the rate climbs by at its next raise.
    climb: f64,
    /// The last rate that went `RAISE_EVERY` without a 429: a 429 above it goes back to it at
    /// once, with no need of more evidence.
    proven: Option<f64>,
    /// How long after a small climb met a 429 the next climb waits: doubled each time, so that
    /// a limit just found is probed less often, and back to `RAISE_EVERY` once a climb holds.
    raise_wait: Duration,
    /// The lowest rate lately met by a 429: a climb from far below it goes halfway there
    /// rather than a small step at a time (a leaky bucket met a little above its limit lets
    /// only every other request through, so the rate it lowers to can be half its limit).
    over: Option<f64>,
}

#[derive(Clone, Copy)]
struct Answered {
    sent_at: Instant,
    passed: bool,
}

/// The longest span of answers a lowering weighs: long enough to average a limiter's bursts
/// out, short enough that a limit that changed is not hidden by what it was before.
const EVIDENCE: Duration = Duration::from_secs(2);
/// Before this many answers at the present rate (or this long), one more 429 is not enough to
/// say what is accepted: a leaky bucket's first two answers would say half.
const ENOUGH_ANSWERS: usize = 16;
const ENOUGH_TIME: Duration = Duration::from_secs(1);
/// After a 429, the rate goes a little below what was being accepted, so that the limiter's
/// bucket can refill and a strict one is not met by every request that arrives a little early.
const BELOW_ACCEPTED: f64 = 0.95;
/// However few of the requests were accepted, one lowering divides the rate by at most this.
const MOST_LOWERED_AT_ONCE: f64 = 8.0;
const LOWEST_RATE: f64 = 0.5;
/// The climb: after this long without a 429 (and since the rate last changed), the rate is
/// proven and rises by `climb`, which starts at `FIRST_CLIMB` after a lowering and doubles
/// with each raise up to `MOST_CLIMB`: 2% and 4% probe just above a limit just found; a rate
/// far below a risen limit is back within about ten seconds. A small climb that met a 429
/// makes the next one wait twice as long, up to `MOST_RAISE_WAIT`.
const RAISE_EVERY: Duration = Duration::from_millis(500);
const MOST_RAISE_WAIT: Duration = Duration::from_secs(4);
/// A climb of at most this factor that meets a 429 has found the limit; after a longer one
/// that met a 429, the next step (a shorter one) is tried this soon.
const SMALL_CLIMB: f64 = 1.1;
const NEXT_LONG_STEP: Duration = Duration::from_millis(250);
const FIRST_CLIMB: f64 = 0.02;
const MOST_CLIMB: f64 = 0.64;

impl Throttle {
    /// At most `requests_per_second` sends per second, evenly spaced, with no burst: a slot
    /// not used when it came is not saved up.
    pub fn new(requests_per_second: f64) -> Self {
        let now = Instant::now();
        Self {
            schedule: Mutex::new(Schedule {
                next_slot: now,
                paused_until: now,
                ceiling: requests_per_second,
                rate: requests_per_second,
                answers: VecDeque::new(),
                passed: 0,
                changed_at: None,
                limited_since_change: false,
                next_raise: now + RAISE_EVERY,
                climb: FIRST_CLIMB,
                proven: None,
                raise_wait: RAISE_EVERY,
                over: None,
            }),
            rescheduled: tokio::sync::Notify::new(),
        }
    }

    /// Waits for this caller's send slot. Call it before every attempt.
    pub async fn acquire(&self) {
        loop {
            // Made before the slot is taken, so that a lowering between the two still wakes it.
            let rescheduled = self.rescheduled.notified();
            let slot = {
                let mut schedule = self.lock();
                let now = Instant::now();
                if schedule.paused_until > now {
                    Err(schedule.paused_until)
                } else {
                    let slot = schedule.next_slot.max(now);
                    schedule.next_slot = slot + interval_for(schedule.rate);
                    schedule.changed_at.get_or_insert(slot);
                    Ok(slot)
                }
            };
            match slot {
                Err(paused_until) => tokio::time::sleep_until(paused_until).await,
                Ok(slot) => {
                    // A slot already due needs no timer, which matters when the rate is high.
                    if slot > Instant::now() {
                        tokio::select! {
                            () = tokio::time::sleep_until(slot) => {}
                            // Slots handed out at a rate since lowered are taken again at the
                            // new one: a queue of senders would otherwise go on at the old rate.
                            () = rescheduled => continue,
                        }
                    }
                    // A pause that began while this caller waited for its slot applies to it too.
                    if self.lock().paused_until <= Instant::now() {
                        return;
                    }
                }
            }
        }
    }

    /// Holds every sender back until `until` (never shortens a pause already in force).
    pub fn pause_until(&self, until: Instant) {
        let mut schedule = self.lock();
        schedule.paused_until = schedule.paused_until.max(until);
    }

    /// The rate in force now, in requests per second (what the specifications watch).
    #[cfg(test)]
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    /// The limiter let through the request sent at `sent_at` (any answer but a 429 or a
    /// server error): evidence for the next lowering. A rate that has gone `RAISE_EVERY` (or,
    /// back at a proven rate, `raise_wait`) without a 429 is proven and climbs: by `climb`, or
    /// halfway (geometrically) to the lowest rate lately met by a 429 when that is further.
    pub fn passed(&self, sent_at: Instant) {
        let now = Instant::now();
        let mut schedule = self.lock();
        schedule.weigh(sent_at, true, now);
        if now < schedule.next_raise {
            return;
        }
        if schedule.limited_since_change {
            // A 429 too little to decide on came at this rate: it has not held this time.
            schedule.limited_since_change = false;
            schedule.next_raise = now + RAISE_EVERY;
            return;
        }
        if schedule.proven.is_none_or(|proven| schedule.rate > proven) {
            // A climb that held: the next may come as soon as ever.
            schedule.raise_wait = RAISE_EVERY;
        }
        schedule.proven = Some(schedule.rate);
        schedule.next_raise = now + RAISE_EVERY;
        if schedule.rate >= schedule.ceiling {
            return;
        }
        let climbed = schedule.rate * (1.0 + schedule.climb);
        schedule.climb = (schedule.climb * 2.0).min(MOST_CLIMB);
        let raised = match schedule.over.filter(|over| *over > climbed) {
            Some(over) => (schedule.rate * over).sqrt().max(climbed),
            None => {
                schedule.over = None;
                climbed
            }
        }
        .min(schedule.ceiling);
        self.reschedule(schedule, raised, now + RAISE_EVERY);
    }

    /// A 429 came back for the request sent at `sent_at`, asking (or not) to wait
    /// `retry_after`. Above a proven rate, the rate goes
    /// back to it at once; at or below it, once the answers at this rate are enough evidence,
    /// the rate goes to a little below the rate they were accepted at, measured over the time
    /// their requests span.
    pub fn limited(&self, sent_at: Instant, retry_after: Option<Duration>) {
        let now = Instant::now();
        let mut schedule = self.lock();
        if !schedule.weigh(sent_at, false, now) {
            return;
        }
        schedule.limited_since_change = true;
        let rate = schedule.rate;
        let (lowered, wait) = match schedule.proven.filter(|proven| *proven < rate) {
            // A small climb that failed has found the limit: probe it less and less often. A
            // long step that failed has only narrowed the distance to it: go on narrowing.
            Some(proven) if rate <= proven * SMALL_CLIMB => {
                schedule.raise_wait = (schedule.raise_wait * 2).min(MOST_RAISE_WAIT);
                (proven, schedule.raise_wait)
            }
            Some(proven) => (proven, NEXT_LONG_STEP),
            None => {
                let Some(accepted) = schedule.accepted_rate(now, retry_after) else {
                    return;
                };
                // What was proven no longer holds: the limit came down.
                schedule.proven = None;
                schedule.raise_wait = RAISE_EVERY;
                let lowered = (accepted * BELOW_ACCEPTED)
                    .max(rate / MOST_LOWERED_AT_ONCE)
                    .max(LOWEST_RATE)
                    .min(rate);
                (lowered, RAISE_EVERY)
            }
        };
        schedule.over = Some(schedule.over.map_or(rate, |over| over.min(rate)));
        schedule.climb = FIRST_CLIMB;
        if schedule.proven.is_some_and(|proven| proven == lowered) {
            tracing::debug!(rate = lowered, "a climb met a 429; back to the proven rate");
        } else {
            tracing::info!(
                rate = lowered,
                "the API is limiting requests; lowering the rate to what it was seen to accept"
            );
        }
        let next_raise = now.max(schedule.paused_until) + wait;
        self.reschedule(schedule, lowered, next_raise);
    }

    /// Puts `rate` in force from now, to be raised no sooner than `next_raise`: the evidence
    /// starts again, and slots handed out at the old rate are taken again at the new one, or
    /// a queue of senders would go on at the old rate for as many slots as it holds.
    fn reschedule(
        &self,
        mut schedule: std::sync::MutexGuard<'_, Schedule>,
        rate: f64,
        next_raise: Instant,
    ) {
        let now = Instant::now();
        schedule.rate = rate;
        schedule.changed_at = Some(now);
        schedule.limited_since_change = false;
        schedule.answers.clear();
        schedule.passed = 0;
        schedule.next_raise = next_raise;
        // The last send was no later than now: the next one is an interval of the new rate on.
        schedule.next_slot = now + interval_for(rate);
        drop(schedule);
        self.rescheduled.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Schedule> {
        // The schedule holds plain values that no panic can leave half-updated.
        self.schedule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Schedule {
    /// Keeps an answer as evidence, unless its request was sent before the rate in force was;
    /// says whether it was kept. Answers older than `EVIDENCE` are let go.
    fn weigh(&mut self, sent_at: Instant, passed: bool, now: Instant) -> bool {
        if self
            .changed_at
            .is_some_and(|changed_at| sent_at < changed_at)
        {
            return false;
        }
        self.answers.push_back(Answered { sent_at, passed });
        self.passed += usize::from(passed);
        while self
            .answers
            .front()
            .is_some_and(|answer| now.saturating_duration_since(answer.sent_at) > EVIDENCE)
        {
            if self.answers.pop_front().is_some_and(|answer| answer.passed) {
                self.passed -= 1;
            }
        }
        true
    }

    /// Requests accepted per second at the rate in force, from when it was put in force (or
    /// `EVIDENCE` ago) to the last answered request's send plus one interval, so that evenly
    /// spaced sends measure exactly their rate and a pause the limiter asked for counts as
    /// time it had; then as long again as the limiter now asks to wait (`retry_after`), in
    /// which it will accept nothing. `None` while that is too little to go by.
    fn accepted_rate(&self, now: Instant, retry_after: Option<Duration>) -> Option<f64> {
        let last = self.answers.iter().map(|answer| answer.sent_at).max()?;
        let window = now.checked_sub(EVIDENCE);
        let start = match (self.changed_at, window) {
            (Some(changed_at), Some(window)) => changed_at.max(window),
            (Some(changed_at), None) => changed_at,
            (None, _) => self.answers.iter().map(|answer| answer.sent_at).min()?,
        };
        if self.answers.len() < ENOUGH_ANSWERS && now.saturating_duration_since(start) < ENOUGH_TIME
        {
            return None;
        }
        let span = last.saturating_duration_since(start)
            + interval_for(self.rate)
            + retry_after.unwrap_or(Duration::ZERO);
        (!span.is_zero()).then(|| self.passed as f64 / span.as_secs_f64())
    }
}

fn interval_for(requests_per_second: f64) -> Duration {
    if requests_per_second.is_finite() && requests_per_second > 0.0 {
        Duration::from_secs_f64(1.0 / requests_per_second)
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests;
