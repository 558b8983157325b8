//! Riding out an outage: when PingOne stops answering (several 5xx or unanswered requests in a
//! row, with no success for half a second), the circuit opens. While it is open, one request at
//! a time probes PingOne, once a second, and every other row waits without spending its retries;
//! the first answer that is not a failure closes it, and the waiting rows go on at the run's rate
//! at once. An outage then costs its length, not its length plus a slow climb back, and a dead
//! API gets a probe a second instead of a flood. Past `patience` the rows stop waiting and are
//! recorded as not sent.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Failures in a row that open the circuit, once they have lasted `FAILING_FOR`: a sporadic 2%
/// of 5xx gives five in a row about once in three billion answers, and a PingOne failing even a
/// quarter of its requests, at a rate of ten or more a second, almost never goes half a second
/// without a success; an outage meets both within half a second.
const FAILURES_TO_OPEN: u32 = 5;
const FAILING_FOR: Duration = Duration::from_millis(500);
/// How often an open circuit lets one request probe PingOne.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// The longest a server's `Retry-After` delays the next probe.
const MOST_PROBE_DELAY: Duration = Duration::from_secs(30);

pub struct Circuit {
    state: Mutex<State>,
    /// Bumped whenever the circuit closes or a probe ends, so that waiters look again.
    changes: watch::Sender<u64>,
    patience: Duration,
}

#[derive(Default)]
struct State {
    failures_in_a_row: u32,
    /// When the first of those failures came.
    failing_since: Option<Instant>,
    /// When the circuit opened; `None` while it is closed.
    open_since: Option<Instant>,
    probe_in_flight: bool,
    next_probe_at: Option<Instant>,
}

/// What a row may do now.
pub enum Admission<'a> {
    /// Send as usual.
    Send,
    /// Send: this request probes PingOne for every waiting row. Report its answer with
    /// [`Circuit::answered`]; dropped unanswered, it lets the next probe go.
    Probe(ProbeGuard<'a>),
    /// PingOne has been down for longer than the patience: do not send.
    GaveUp { down_for: Duration },
}

/// Held by the one request probing an open circuit.
pub struct ProbeGuard<'a> {
    circuit: &'a Circuit,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.circuit.lock();
        state.probe_in_flight = false;
        drop(state);
        self.circuit.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Circuit {
    pub fn new(patience: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            changes: watch::Sender::new(0),
            patience,
        }
    }

    /// Whether the circuit is open now.
    pub fn is_open(&self) -> bool {
        self.lock().open_since.is_some()
    }

    /// Waits until the row may send: at once while the circuit is closed; while it is open,
    /// until it closes or this row's turn to probe comes.
    pub async fn admit(&self) -> Admission<'_> {
        let mut changes = self.changes.subscribe();
        loop {
            let wake_at = {
                let mut state = self.lock();
                let Some(open_since) = state.open_since else {
                    return Admission::Send;
                };
                let now = Instant::now();
                let down_for = now.duration_since(open_since);
                if down_for >= self.patience {
                    return Admission::GaveUp { down_for };
                }
                let next_probe_at = state.next_probe_at.unwrap_or(now);
                if !state.probe_in_flight && now >= next_probe_at {
                    state.probe_in_flight = true;
                    return Admission::Probe(ProbeGuard { circuit: self });
                }
                next_probe_at
                    .max(now + Duration::from_millis(1))
                    .min(open_since + self.patience)
            };
            changes.mark_unchanged();
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// Takes in an answer: `failed` for a 5xx or no answer, with the server's `Retry-After`
    /// if it gave one. Returns whether the circuit is open after it, in which case the row's
    /// failure is the outage's, not the row's, and costs it no retry.
    pub fn answered(
        &self,
        failed: bool,
        retry_after: Option<Duration>,
        probe: Option<ProbeGuard<'_>>,
    ) -> bool {
        let was_probe = probe.is_some();
        let mut state = self.lock();
        let now = Instant::now();
        if !failed {
            state.failures_in_a_row = 0;
            state.failing_since = None;
            if let Some(open_since) = state.open_since.take() {
                state.next_probe_at = None;
                tracing::info!(
                    "PingOne answers again after {}s down; sending at the run's rate",
                    now.duration_since(open_since).as_secs()
                );
                drop(state);
                drop(probe);
                self.changes.send_modify(|n| *n = n.wrapping_add(1));
            }
            return false;
        }
        state.failures_in_a_row = state.failures_in_a_row.saturating_add(1);
        let failing_since = *state.failing_since.get_or_insert(now);
        let delay = retry_after.map_or(PROBE_EVERY, |after| {
            after.clamp(PROBE_EVERY, MOST_PROBE_DELAY)
        });
        match state.open_since {
            Some(_) if was_probe => state.next_probe_at = Some(now + delay),
            Some(_) => {}
            None if state.failures_in_a_row >= FAILURES_TO_OPEN
                && now.duration_since(failing_since) >= FAILING_FOR =>
            {
                state.open_since = Some(now);
                state.next_probe_at = Some(now + delay);
                tracing::warn!(
                    "{} requests in a row failed or got no answer: PingOne seems down; probing it once a second while the other rows wait (for up to {})",
                    state.failures_in_a_row,
                    humantime::format_duration(self.patience)
                );
            }
            None => {}
        }
        let open = state.open_since.is_some();
        drop(state);
        drop(probe);
        open
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Holds plain values that no panic can leave half-updated.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open_circuit(circuit: &Circuit) {
        for _ in 0..FAILURES_TO_OPEN {
            circuit.answered(true, None, None);
        }
        tokio::time::advance(FAILING_FOR).await;
        circuit.answered(true, None, None);
    }

    #[tokio::test(start_paused = true)]
    async fn sporadic_failures_leave_it_closed_and_half_a_second_of_nothing_but_failures_opens_it()
    {
        let circuit = Circuit::new(Duration::from_secs(300));
        for _ in 0..10 {
            for _ in 0..FAILURES_TO_OPEN - 1 {
                assert!(!circuit.answered(true, None, None));
            }
            assert!(!circuit.answered(false, None, None));
        }
        for _ in 0..3 * FAILURES_TO_OPEN {
            assert!(
                !circuit.answered(true, None, None),
                "many failures within half a second may be a flaky PingOne, not a dead one"
            );
        }
        tokio::time::advance(FAILING_FOR).await;
        assert!(circuit.answered(true, None, None));
        assert!(circuit.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn while_open_one_probe_a_second_goes_and_the_others_wait_until_it_succeeds() {
        let circuit = std::sync::Arc::new(Circuit::new(Duration::from_secs(300)));
        open_circuit(&circuit).await;
        let started = Instant::now();
        let mut waiting = Vec::new();
        for _ in 0..20 {
            let circuit = circuit.clone();
            waiting.push(tokio::spawn(async move {
                loop {
                    match circuit.admit().await {
                        Admission::Send => return (false, Instant::now()),
                        Admission::GaveUp { .. } => return (true, Instant::now()),
                        Admission::Probe(probe) => {
                            // PingOne comes back after 5 s: each probe before fails.
                            let down = Instant::now() < started + Duration::from_secs(5);
                            circuit.answered(down, None, Some(probe));
                            if !down {
                                return (false, Instant::now());
                            }
                        }
                    }
                }
            }));
        }
        let mut ends = Vec::new();
        for task in waiting {
            ends.push(task.await.unwrap_or((true, started)));
        }
        assert!(ends.iter().all(|(gave_up, _)| !gave_up));
        let last = ends.iter().map(|(_, at)| *at).max().unwrap_or(started);
        assert_eq!(last.duration_since(started), Duration::from_secs(5));
        assert!(!circuit.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn past_its_patience_rows_give_up() {
        let circuit = Circuit::new(Duration::from_secs(10));
        open_circuit(&circuit).await;
        let started = Instant::now();
        loop {
            match circuit.admit().await {
                Admission::Probe(probe) => {
                    circuit.answered(true, None, Some(probe));
                }
                Admission::GaveUp { down_for } => {
                    assert_eq!(down_for, Duration::from_secs(10));
                    break;
                }
                Admission::Send => panic!("the circuit closed by itself"),
            }
        }
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_unanswered_lets_the_next_one_go() {
        let circuit = Circuit::new(Duration::from_secs(300));
        open_circuit(&circuit).await;
        tokio::time::advance(PROBE_EVERY).await;
        match circuit.admit().await {
            Admission::Probe(probe) => drop(probe),
            _ => panic!("no probe"),
        }
        assert!(matches!(circuit.admit().await, Admission::Probe(_)));
    }
}
