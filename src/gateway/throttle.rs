//! Pacing every request, retries included, across all rows and environments: a shared
//! schedule of send slots, a pause gate that a `Retry-After` closes for every sender at once,
//! and an adaptive rate: 429s bring it down to what PingOne was accepting, sustained success
//! brings it back up, a step at a time, toward the configured rate. An outage does not touch
//! the rate: the circuit (`circuit.rs`) holds rows back while PingOne is down, so that the rate
//! is the run's again the moment it answers.
//!
//! Written by hand rather than with `governor`: the schedule hands each caller its own slot
//! (so waiters do not wake together and race), a pause applies to slots already handed out,
//! and it sleeps on tokio's clock, so its behaviour can be tested with paused time; governor
//! sleeps on its own clock and its quotas cannot change, which adaptive throttling will need.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Shared by every sender of a run.
pub struct Throttle {
    schedule: Mutex<Schedule>,
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
    /// How much the rate climbs each second without a 429, once it has been lowered.
    step: f64,
    last_lowered: Option<Instant>,
    last_raised: Instant,
    /// Successes within the last second: what PingOne was accepting when a 429 came.
    recent_successes: VecDeque<Instant>,
}

/// 429s within this long after the rate was lowered (plus their pause) are the same storm:
/// requests that were already in flight, not news about the limit.
const STORM: Duration = Duration::from_secs(1);
/// After a 429, the rate goes a little below what was being accepted, so that the limiter's
/// bucket can refill.
const BELOW_ACCEPTED: f64 = 0.95;
/// The climb back, per second, as a share of the rate that was being accepted: slow enough
/// that the limit is met again only after many seconds at full use.
const STEP_SHARE: f64 = 0.01;
const LOWEST_RATE: f64 = 0.5;
const MOST_LOWERED_AT_ONCE: f64 = 8.0;

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
                step: 0.0,
                last_lowered: None,
                last_raised: now,
                recent_successes: VecDeque::new(),
            }),
        }
    }

    /// Waits for this caller's send slot. Call it before every attempt.
    pub async fn acquire(&self) {
        loop {
            let slot = {
                let mut schedule = self.lock();
                let now = Instant::now();
                if schedule.paused_until > now {
                    Err(schedule.paused_until)
                } else {
                    let slot = schedule.next_slot.max(now);
                    schedule.next_slot = slot + interval_for(schedule.rate);
                    Ok(slot)
                }
            };
            match slot {
                Err(paused_until) => tokio::time::sleep_until(paused_until).await,
                Ok(slot) => {
                    // A slot already due needs no timer, which matters when the rate is high.
                    if slot > Instant::now() {
                        tokio::time::sleep_until(slot).await;
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

    /// A request was accepted: counts toward the accepted rate and, after a second without a
    /// 429, raises a lowered rate by one step.
    pub fn succeeded(&self) {
        let now = Instant::now();
        let mut schedule = self.lock();
        schedule.recent_successes.push_back(now);
        while schedule
            .recent_successes
            .front()
            .is_some_and(|at| now.duration_since(*at) > Duration::from_secs(1))
        {
            schedule.recent_successes.pop_front();
        }
        if schedule.rate < schedule.ceiling
            && now.duration_since(schedule.last_raised) >= Duration::from_secs(1)
        {
            schedule.rate = (schedule.rate + schedule.step).min(schedule.ceiling);
            schedule.last_raised = now;
        }
    }

    /// A 429 came back: the first of a storm lowers the rate to a little below what PingOne
    /// accepted in the last second (but by at most eight times, in case that second was not
    /// typical); the rest of the storm changes nothing.
    pub fn throttled(&self) {
        let now = Instant::now();
        let mut schedule = self.lock();
        let storm_ends = schedule
            .last_lowered
            .map(|lowered| lowered.max(schedule.paused_until) + STORM);
        if storm_ends.is_some_and(|ends| now < ends) {
            return;
        }
        let accepted = schedule.recent_successes.len() as f64;
        let lowered = (accepted * BELOW_ACCEPTED)
            .max(schedule.rate / MOST_LOWERED_AT_ONCE)
            .min(schedule.rate)
            .max(LOWEST_RATE);
        schedule.rate = lowered;
        schedule.step = (accepted * STEP_SHARE).max(LOWEST_RATE);
        schedule.last_lowered = Some(now);
        schedule.last_raised = now.max(schedule.paused_until);
        tracing::info!(
            rate = lowered,
            "PingOne is limiting requests; lowering the rate"
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Schedule> {
        // The schedule holds plain values that no panic can leave half-updated.
        self.schedule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    #[tokio::test(start_paused = true)]
    async fn a_storm_of_429s_lowers_the_rate_once_to_below_what_was_accepted() {
        let throttle = Throttle::new(500.0);
        for _ in 0..100 {
            throttle.acquire().await;
            throttle.succeeded();
        }
        for _ in 0..30 {
            throttle.throttled();
        }
        assert_eq!(throttle.rate(), 95.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_storm_after_the_first_has_passed_lowers_it_again() {
        let throttle = Throttle::new(1000.0);
        for _ in 0..100 {
            throttle.succeeded();
        }
        throttle.throttled();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for _ in 0..40 {
            throttle.succeeded();
        }
        throttle.throttled();
        assert_eq!(throttle.rate(), 38.0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_never_drops_more_than_eightfold_at_once() {
        let throttle = Throttle::new(800.0);
        throttle.succeeded();
        throttle.throttled();
        assert_eq!(throttle.rate(), 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn sustained_success_climbs_back_a_step_a_second_up_to_the_configured_rate() {
        let throttle = Throttle::new(100.0);
        for _ in 0..100 {
            throttle.succeeded();
        }
        throttle.throttled();
        assert_eq!(throttle.rate(), 95.0);
        let mut rates = Vec::new();
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            throttle.succeeded();
            rates.push(throttle.rate());
        }
        assert_eq!(rates, [96.0, 97.0, 98.0, 99.0, 100.0, 100.0, 100.0, 100.0]);
    }
}
