//! Pacing every request, retries included, across all rows and environments: a shared
//! schedule of send slots at the configured rate, and a pause gate that a `Retry-After`
//! closes for every sender at once.
//!
//! Written by hand rather than with `governor`: the schedule hands each caller its own slot
//! (so waiters do not wake together and race), a pause applies to slots already handed out,
//! and it sleeps on tokio's clock, so its behaviour can be tested with paused time; governor
//! sleeps on its own clock and its quotas cannot change, which adaptive throttling will need.

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
    interval: Duration,
    /// No slot is used before this instant (set from `Retry-After`).
    paused_until: Instant,
}

impl Throttle {
    /// At most `requests_per_second` sends per second, evenly spaced, with no burst: a slot
    /// not used when it came is not saved up.
    pub fn new(requests_per_second: f64) -> Self {
        let now = Instant::now();
        Self {
            schedule: Mutex::new(Schedule {
                next_slot: now,
                interval: interval_for(requests_per_second),
                paused_until: now,
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
                    schedule.next_slot = slot + schedule.interval;
                    Ok(slot)
                }
            };
            match slot {
                Err(paused_until) => tokio::time::sleep_until(paused_until).await,
                Ok(slot) => {
                    tokio::time::sleep_until(slot).await;
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
}
