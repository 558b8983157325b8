//! The throttle's specifications: the schedule and its pauses, and the adaptive rate against
//! modelled limiters (a leaky bucket, with and without burst, a token bucket, a limit that
//! falls after a quiet spell and one that rises), all on tokio's paused clock.

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

/// 600 rows at `--rate` 150 against `limiter` of 50/s take at most 1.15 times the 12 s that
/// the limit allows, on the paused clock.
async fn found_at_three_times(limiter: Limiter) {
    let run = drive(Arc::new(Throttle::new(150.0)), 600, |_| 0, vec![limiter]).await;
    assert!(
        run.elapsed <= Duration::from_secs(12).mul_f64(1.15),
        "{:?}, {} limited",
        run.elapsed,
        run.limited
    );
}

#[tokio::test(start_paused = true)]
async fn a_leaky_bucket_without_retry_after_is_found_from_its_first_milliseconds() {
    found_at_three_times(Limiter::new(50, 1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_leaky_bucket_with_a_burst_is_found() {
    found_at_three_times(Limiter::new(50, 10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_token_bucket_that_starts_full_is_found_when_its_429s_name_no_wait() {
    found_at_three_times(Limiter::new(50, 50)).await;
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
