//! Decides, for one API request, how long it takes and whether it is answered by a fault.
//!
//! Decisions are drawn from a generator seeded by (simulator seed, the request's key, how many
//! times that key was seen before), never from a shared stream: with one shared stream the
//! faults would depend on the order in which concurrent requests happen to arrive, and a
//! rehearsal or a test could not be replayed.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::config::SimulatorConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status500,
    Status502,
    Status503,
    Reset,
    Hang,
}

/// What the simulator does with one request before (or instead of) serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPlan {
    pub latency: Duration,
    pub fault: Option<Fault>,
}

/// Draws the plan for the `occurrence`-th request (counted from 0) whose key is `key`.
pub fn plan_request(config: &SimulatorConfig, key: &impl Hash, occurrence: u64) -> RequestPlan {
    // SipHash with fixed keys: the same on every run of the same build, which is the
    // reproducibility a seed promises.
    let mut hasher = std::hash::DefaultHasher::new();
    config.seed.hash(&mut hasher);
    key.hash(&mut hasher);
    occurrence.hash(&mut hasher);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(hasher.finish());

    let jitter = if config.jitter.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_nanos(rng.random_range(0..=duration_nanos(config.jitter)))
    };
    let draw: f64 = rng.random();
    let chances = &config.faults;
    let ladder = [
        (chances.reset, Fault::Reset),
        (chances.hang, Fault::Hang),
        (chances.status_500, Fault::Status500),
        (chances.status_502, Fault::Status502),
        (chances.status_503, Fault::Status503),
    ];
    let mut threshold = 0.0;
    let mut fault = None;
    for (chance, candidate) in ladder {
        threshold += chance;
        if draw < threshold {
            fault = Some(candidate);
            break;
        }
    }
    RequestPlan {
        latency: config.latency + jitter,
        fault,
    }
}

fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::config::FaultChances;

    fn config(seed: u64, faults: FaultChances) -> SimulatorConfig {
        SimulatorConfig {
            seed,
            faults,
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            ..SimulatorConfig::default()
        }
    }

    #[test]
    fn the_same_seed_key_and_occurrence_give_the_same_plan() {
        let faults = FaultChances {
            status_503: 0.5,
            ..FaultChances::default()
        };
        let first: Vec<_> = (0..50)
            .map(|n| plan_request(&config(7, faults), &("PUT", n % 5), n / 5))
            .collect();
        let again: Vec<_> = (0..50)
            .map(|n| plan_request(&config(7, faults), &("PUT", n % 5), n / 5))
            .collect();
        let other_seed: Vec<_> = (0..50)
            .map(|n| plan_request(&config(8, faults), &("PUT", n % 5), n / 5))
            .collect();
        assert_eq!(first, again);
        assert_ne!(first, other_seed);
    }

    #[test]
    fn latency_stays_within_base_plus_jitter_and_varies() {
        let plans: Vec<_> = (0..200)
            .map(|n| plan_request(&config(1, FaultChances::default()), &n, 0))
            .collect();
        assert!(
            plans.iter().all(|p| p.latency >= Duration::from_millis(20)
                && p.latency <= Duration::from_millis(30))
        );
        let distinct: std::collections::HashSet<_> = plans.iter().map(|p| p.latency).collect();
        assert!(
            distinct.len() > 100,
            "jitter drew only {} values",
            distinct.len()
        );
    }

    #[test]
    fn faults_occur_in_proportion_to_their_chances() {
        let faults = FaultChances {
            status_500: 0.1,
            status_502: 0.1,
            status_503: 0.2,
            reset: 0.05,
            hang: 0.05,
        };
        let trials = 20_000;
        let plans: Vec<_> = (0..trials)
            .map(|n| plan_request(&config(3, faults), &n, 0).fault)
            .collect();
        let share =
            |fault| plans.iter().filter(|f| **f == Some(fault)).count() as f64 / f64::from(trials);
        for (fault, expected) in [
            (Fault::Status500, 0.1),
            (Fault::Status502, 0.1),
            (Fault::Status503, 0.2),
            (Fault::Reset, 0.05),
            (Fault::Hang, 0.05),
        ] {
            let observed = share(fault);
            assert!(
                (observed - expected).abs() < 0.015,
                "{fault:?}: {observed} instead of about {expected}"
            );
        }
    }

    #[test]
    fn no_chances_means_no_faults() {
        assert!((0..1000).all(|n| {
            plan_request(&config(5, FaultChances::default()), &n, 0)
                .fault
                .is_none()
        }));
    }
}
