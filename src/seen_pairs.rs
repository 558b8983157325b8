//! Remembers the first row that asked for each (environment, user) pair, so that repeats are
//! found, in memory that stays within bounds for a million rows.
//!
//! Written by hand because a hash map is the wrong shape at this size: its table doubles, so a
//! million 24-byte entries sit in two million slots (about 50 MB) and the doubling itself
//! briefly holds both tables. Here new pairs collect in a small map and are merged, in place,
//! into one sorted vector with no slack (24 MB for a million); lookups in the vector use
//! interpolation search, which suits keys that are uniformly spread hashes.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use uuid::Uuid;

/// The earlier row that asked for a pair, and the expiry it asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstRequest {
    pub row: u64,
    pub until_millis: i64,
}

#[derive(Clone, Copy)]
struct Settled {
    key: u64,
    first: FirstRequest,
}

/// New pairs gather here before a merge; small enough to cost little, large enough that merges
/// are rare.
const RECENT_CAPACITY: usize = 32 * 1024;

pub struct SeenPairs {
    /// Pairs are keyed by a 64-bit keyed hash rather than their 32 bytes, which halves the
    /// memory. Two different pairs share a key with a chance of about n²/2⁶⁵ (3 in 100 million
    /// for a million rows); the hash key is random per run, so such a collision cannot be
    /// arranged and does not repeat on a re-run. Its effect would be one row refused with a
    /// message naming the other row, never a request.
    hasher: RandomState,
    recent: HashMap<u64, FirstRequest>,
    settled: Vec<Settled>,
}

impl Default for SeenPairs {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            recent: HashMap::with_capacity(RECENT_CAPACITY),
            settled: Vec::new(),
        }
    }
}

impl SeenPairs {
    /// The first request for this pair if there was one; otherwise records this one.
    pub fn check_in(
        &mut self,
        environment: Uuid,
        user: Uuid,
        first: FirstRequest,
    ) -> Option<FirstRequest> {
        let key = self.hasher.hash_one((environment, user));
        if let Some(earlier) = self.recent.get(&key).or_else(|| self.find_settled(key)) {
            return Some(*earlier);
        }
        self.recent.insert(key, first);
        if self.recent.len() >= RECENT_CAPACITY {
            self.settle();
        }
        None
    }

    fn find_settled(&self, key: u64) -> Option<&FirstRequest> {
        let entries = &self.settled;
        let (mut low, mut high) = (0_usize, entries.len());
        // Interpolation search over [low, high): the keys are outputs of a randomly keyed hash,
        // so they are uniform and a guess proportional to the key lands close (a handful of
        // probes for a million entries, where a binary search needs twenty cache misses).
        while low < high {
            let (low_key, high_key) = (entries[low].key, entries[high - 1].key);
            if key < low_key || key > high_key {
                return None;
            }
            let span = u128::from(high_key - low_key).max(1);
            let offset = (u128::from(key - low_key) * (high - 1 - low) as u128 / span) as usize;
            let probe = (low + offset).min(high - 1);
            match entries[probe].key.cmp(&key) {
                std::cmp::Ordering::Equal => return Some(&entries[probe].first),
                std::cmp::Ordering::Less => low = probe + 1,
                std::cmp::Ordering::Greater => high = probe,
            }
        }
        None
    }

    /// Merges the recent pairs into the sorted vector, from the back, without a second vector.
    fn settle(&mut self) {
        let mut incoming: Vec<Settled> = self
            .recent
            .drain()
            .map(|(key, first)| Settled { key, first })
            .collect();
        incoming.sort_unstable_by_key(|entry| entry.key);
        let mut old = self.settled.len();
        self.settled.reserve_exact(incoming.len());
        self.settled.extend_from_slice(&incoming);
        let mut new = incoming.len();
        let mut write = self.settled.len();
        while new > 0 {
            write -= 1;
            if old > 0 && self.settled[old - 1].key > incoming[new - 1].key {
                self.settled[write] = self.settled[old - 1];
                old -= 1;
            } else {
                self.settled[write] = incoming[new - 1];
                new -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_is_found_again_across_many_merges_and_new_pairs_are_not() {
        let mut seen = SeenPairs::default();
        let environment = Uuid::new_v4();
        let users: Vec<Uuid> = (0..(3 * RECENT_CAPACITY + 17))
            .map(|_| Uuid::new_v4())
            .collect();
        for (row, user) in users.iter().enumerate() {
            let first = FirstRequest {
                row: row as u64,
                until_millis: row as i64 * 7,
            };
            assert_eq!(
                seen.check_in(environment, *user, first),
                None,
                "row {row} seen before"
            );
        }
        for (row, user) in users.iter().enumerate() {
            let again = FirstRequest {
                row: 0,
                until_millis: 0,
            };
            assert_eq!(
                seen.check_in(environment, *user, again),
                Some(FirstRequest {
                    row: row as u64,
                    until_millis: row as i64 * 7
                }),
                "row {row} forgotten"
            );
        }
        assert_eq!(
            seen.check_in(
                Uuid::new_v4(),
                users[0],
                FirstRequest {
                    row: 1,
                    until_millis: 1
                }
            ),
            None
        );
        assert!(
            seen.settled
                .windows(2)
                .all(|pair| pair[0].key < pair[1].key)
        );
    }
}
