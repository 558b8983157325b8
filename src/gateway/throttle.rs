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
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// Send instants of `count` acquisitions by `tasks` concurrent tasks, relative to the start.
    async fn send_times(throttle: Arc<Throttle>, tasks: usize, count: usize) -> Vec<Duration> {
        let start = Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for task in 0..tasks {
            let (throttle, times) = (throttle.clone(), times.clone());
            let share = count / tasks + usize::from(task < count % tasks);
            handles.push(tokio::spawn(async move {
                for _ in 0..share {
                    throttle.acquire().await;
                    times.lock().map(|mut t| t.push(start.elapsed())).ok();
                }
            }));
        }
        for handle in handles {
            handle.await.ok();
        }
        let mut times = times.lock().map(|t| t.clone()).unwrap_or_default();
        times.sort();
        times
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_senders_share_one_evenly_spaced_schedule() {
        let times = send_times(Arc::new(Throttle::new(100.0)), 8, 200).await;
        assert_eq!(times.len(), 200);
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(10),
                "{:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(times[199], Duration::from_millis(1990));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_spell_is_not_saved_up_as_a_burst() {
        let throttle = Throttle::new(10.0);
        throttle.acquire().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = Instant::now();
        throttle.acquire().await;
        throttle.acquire().await;
        assert_eq!(before.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_back_every_sender_including_those_already_waiting() {
        let throttle = Arc::new(Throttle::new(1000.0));
        let start = Instant::now();
        throttle.pause_until(start + Duration::from_secs(2));
        let times = send_times(throttle, 4, 40).await;
        assert!(
            times.iter().all(|t| *t >= Duration::from_secs(2)),
            "{times:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_never_shortens_one_in_force() {
        let throttle = Throttle::new(1000.0);
        let start = Instant::now();
        throttle.pause_until(start + Duration::from_secs(3));
        throttle.pause_until(start + Duration::from_secs(1));
        throttle.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    /// Answers for `count` requests sent evenly at `rate` from `start`; `passes` says which
    /// the limiter let through, by their number.
    fn answer_at(
        throttle: &Throttle,
        start: Instant,
        rate: f64,
        count: u32,
        passes: impl Fn(u32) -> bool,
    ) {
        for index in 0..count {
            let sent_at = start + Duration::from_secs_f64(f64::from(index) / rate);
            if passes(index) {
                throttle.passed(sent_at);
            } else {
                throttle.limited(sent_at, None);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_comes_down_to_a_little_below_the_accepted_share_of_what_was_sent() {
        let throttle = Throttle::new(300.0);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Sent at 300/s, one in three let through: 100/s accepted. The decision comes at the
        // 17th answer (6 let through in 17 intervals of 300/s), 0.95 of that.
        answer_at(&throttle, start, 300.0, 30, |index| index % 3 == 0);
        let expected = 0.95 * 6.0 / (17.0 / 300.0);
        assert!(
            (throttle.rate() - expected).abs() < 0.01,
            "{} (expected {expected})",
            throttle.rate()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_that_asks_to_wait_counts_the_wait_as_time_in_which_nothing_is_accepted() {
        let throttle = Throttle::new(500.0);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A full bucket of 100 let through in a fifth of a second, then "come back in 1 s":
        // 100 in 1.2 s is what the limiter accepts, not 500/s.
        answer_at(&throttle, start, 500.0, 100, |_| true);
        throttle.limited(
            start + Duration::from_millis(200),
            Some(Duration::from_secs(1)),
        );
        let expected = 0.95 * 100.0 / 1.2;
        assert!(
            (throttle.rate() - expected).abs() < 1.0,
            "{} (expected about {expected})",
            throttle.rate()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_answers_of_a_run_are_not_yet_evidence() {
        let throttle = Throttle::new(300.0);
        let start = Instant::now();
        // A leaky bucket's first two answers: one through, one refused. Half of 300 is not
        // what it accepts, so nothing is decided on two answers.
        answer_at(&throttle, start, 300.0, 2, |index| index == 0);
        assert_eq!(throttle.rate(), 300.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_storm_of_429s_to_requests_sent_before_the_lowering_changes_nothing_more() {
        let throttle = Throttle::new(500.0);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(200)).await;
        answer_at(&throttle, start, 500.0, 100, |index| index % 5 != 4);
        let lowered = throttle.rate();
        assert!((lowered - 380.0).abs() < 0.01, "{lowered}");
        // Requests sent before the lowering were in flight; their 429s are the same storm.
        for index in 0..200 {
            throttle.limited(start + Duration::from_millis(index), None);
        }
        assert_eq!(throttle.rate(), lowered);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_never_drops_more_than_eightfold_at_once() {
        let throttle = Throttle::new(800.0);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for index in 0..20 {
            throttle.limited(start + Duration::from_millis(index), None);
        }
        assert_eq!(throttle.rate(), 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_climb_goes_halfway_back_then_doubles_its_step_up_to_the_configured_rate() {
        let throttle = Throttle::new(400.0);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Half let through: the decision at the 16th answer, 8 of them in 16 intervals.
        answer_at(&throttle, start, 400.0, 200, |index| index % 2 == 0);
        assert!(
            (throttle.rate() - 190.0).abs() < 0.01,
            "{}",
            throttle.rate()
        );
        let mut rates = Vec::new();
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            throttle.passed(Instant::now());
            rates.push(throttle.rate().round());
        }
        // Halfway (geometrically) to the 400/s that met the 429s while that is further than the
        // climb, then past it by 2%, 4%, ... of the rate, never beyond --rate.
        assert_eq!(rates[..3], [276.0, 332.0, 364.0]);
        assert!(rates.windows(2).all(|pair| pair[1] >= pair[0]), "{rates:?}");
        assert_eq!(rates[7], 400.0, "{rates:?}");
    }

    /// A throttle at `rate` lowered by 16 answers, one in `one_in` refused (the last), then
    /// proven and raised once a second later: the throttle, its proven rate and the probe.
    async fn probing_from(rate: f64, one_in: u32) -> (Throttle, f64, f64) {
        let throttle = Throttle::new(rate);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        answer_at(&throttle, start, rate, 16, |index| {
            index % one_in != one_in - 1
        });
        let found = throttle.rate();
        tokio::time::sleep(Duration::from_secs(1)).await;
        throttle.passed(Instant::now());
        let probe = throttle.rate();
        assert!(probe > found, "{probe} after {found}");
        (throttle, found, probe)
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_to_a_long_step_goes_back_at_once_and_a_shorter_step_follows_soon() {
        let (throttle, found, probe) = probing_from(400.0, 2).await;
        assert!(probe > found * 1.1, "{probe} is a long step from {found}");
        // One 429 at the probe, on no more evidence than itself: back to the proven rate.
        throttle.limited(Instant::now(), None);
        assert_eq!(throttle.rate(), found);
        tokio::time::sleep(Duration::from_millis(250)).await;
        throttle.passed(Instant::now());
        let shorter = throttle.rate();
        assert!(
            shorter > found && shorter < probe,
            "{shorter} between {found} and {probe}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_to_a_small_climb_goes_back_at_once_and_the_next_climb_waits_twice_as_long() {
        let (throttle, found, probe) = probing_from(100.0, 16).await;
        assert!(
            probe <= found * 1.1,
            "{probe} is a small climb from {found}"
        );
        throttle.limited(Instant::now(), None);
        assert_eq!(throttle.rate(), found);
        // Twice the half second a climb waits after one that held.
        tokio::time::sleep(Duration::from_millis(900)).await;
        throttle.passed(Instant::now());
        assert_eq!(throttle.rate(), found);
        tokio::time::sleep(Duration::from_millis(200)).await;
        throttle.passed(Instant::now());
        assert!(throttle.rate() > found);
    }

    /// A limiter in front of the API, as the generic cell rate algorithm meters one: a token
    /// bucket holding `burst` requests refilled at `per_second`, which with a burst of one is
    /// a leaky bucket that lets one request through per interval and refuses any earlier.
    struct Limiter {
        interval: Duration,
        tolerance: Duration,
        theoretical_arrival: Instant,
    }

    impl Limiter {
        fn new(per_second: u32, burst: u32) -> Self {
            let interval = Duration::from_secs(1) / per_second;
            Self {
                interval,
                tolerance: interval * burst.saturating_sub(1),
                theoretical_arrival: Instant::now(),
            }
        }

        fn admit(&mut self, at: Instant) -> bool {
            let due = self.theoretical_arrival.max(at);
            if due.saturating_duration_since(at) > self.tolerance {
                return false;
            }
            self.theoretical_arrival = due + self.interval;
            true
        }
    }

    struct Drive {
        elapsed: Duration,
        limited: u64,
    }

    /// Sends `rows` requests through `throttle` from 32 senders, each answered 30 ms after it
    /// was sent by whichever limiter `limiter_at` gives for the time it arrives; a row met by a
    /// 429 waits a quarter of a second (a retry's backoff) and goes again.
    async fn drive(
        throttle: Arc<Throttle>,
        rows: usize,
        limiter_at: impl Fn(Duration) -> usize + Send + Sync + 'static,
        limiters: Vec<Limiter>,
    ) -> Drive {
        let start = Instant::now();
        let limiters = Arc::new(Mutex::new(limiters));
        let limiter_at = Arc::new(limiter_at);
        let next_row = Arc::new(AtomicUsize::new(0));
        let limited = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::new();
        for _ in 0..32 {
            let (throttle, limiters, limiter_at) =
                (throttle.clone(), limiters.clone(), limiter_at.clone());
            let (next_row, limited) = (next_row.clone(), limited.clone());
            senders.push(tokio::spawn(async move {
                while next_row.fetch_add(1, Ordering::Relaxed) < rows {
                    loop {
                        throttle.acquire().await;
                        let sent_at = Instant::now();
                        tokio::time::sleep(Duration::from_millis(15)).await;
                        let which = limiter_at(start.elapsed());
                        let passed = limiters
                            .lock()
                            .map(|mut all| all[which].admit(Instant::now()))
                            .unwrap_or(false);
                        tokio::time::sleep(Duration::from_millis(15)).await;
                        if passed {
                            throttle.passed(sent_at);
                            break;
                        }
                        limited.fetch_add(1, Ordering::Relaxed);
                        throttle.limited(sent_at, None);
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }));
        }
        for sender in senders {
            sender.await.ok();
        }
        Drive {
            elapsed: start.elapsed(),
            limited: limited.load(Ordering::Relaxed),
        }
    }

    async fn drive_against(limiter: Limiter, rate: f64, rows: usize) -> Drive {
        drive(Arc::new(Throttle::new(rate)), rows, |_| 0, vec![limiter]).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_leaky_bucket_without_retry_after_is_found_from_its_first_milliseconds() {
        let run = drive_against(Limiter::new(50, 1), 150.0, 600).await;
        assert!(
            run.elapsed <= Duration::from_secs(12).mul_f64(1.15),
            "{:?}, {} limited",
            run.elapsed,
            run.limited
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_leaky_bucket_with_a_burst_is_found() {
        let run = drive_against(Limiter::new(50, 10), 150.0, 600).await;
        assert!(
            run.elapsed <= Duration::from_secs(12).mul_f64(1.15),
            "{:?}, {} limited",
            run.elapsed,
            run.limited
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_bucket_that_starts_full_is_found_when_its_429s_name_no_wait() {
        let run = drive_against(Limiter::new(50, 50), 150.0, 600).await;
        assert!(
            run.elapsed <= Duration::from_secs(12).mul_f64(1.15),
            "{:?}, {} limited",
            run.elapsed,
            run.limited
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_first_met_after_a_long_quiet_spell_is_found_as_fast() {
        // 40/s is accepted for 100 s; then another client takes half of a limit of 60: 30/s.
        let limiters = vec![Limiter::new(1000, 1), Limiter::new(30, 1)];
        let switch = Duration::from_secs(100);
        let throttle = Arc::new(Throttle::new(40.0));
        let run = drive(
            throttle.clone(),
            4000 + 600,
            move |at| usize::from(at >= switch),
            limiters,
        )
        .await;
        let after_switch = run.elapsed.saturating_sub(switch);
        assert!(
            after_switch <= Duration::from_secs(20).mul_f64(1.15),
            "600 rows took {after_switch:?} after the limit fell to 30/s, {} limited",
            run.limited
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_that_rose_is_found_again_within_about_ten_seconds() {
        // 50/s for 10 s, then the other client on the license finishes: 150/s.
        let limiters = vec![Limiter::new(50, 1), Limiter::new(150, 1)];
        let switch = Duration::from_secs(10);
        let throttle = Arc::new(Throttle::new(200.0));
        let watched = throttle.clone();
        let watch = tokio::spawn(async move {
            tokio::time::sleep(switch + Duration::from_secs(12)).await;
            watched.rate()
        });
        drive(
            throttle,
            500 + 150 * 20,
            move |at| usize::from(at >= switch),
            limiters,
        )
        .await;
        let rate = watch.await.unwrap_or_default();
        assert!(
            rate >= 0.85 * 150.0,
            "12 s after the limit rose to 150/s the rate was {rate}"
        );
    }
}
