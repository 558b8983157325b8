//! What one attempt at a request came to (an answer, a refusal and whether it may be retried,
//! or no answer), and the retry policy's waits: what the client makes of each exchange and
//! what the gateway, the row and the stages read.

use std::time::Duration;

use rand::RngExt;

use crate::pingone::BypassState;

/// What one attempt came to; `T` is the body a successful answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<T = BypassState> {
    /// PingOne answered with success and a body this call understands (a `bypassMFA` answer
    /// is a success whatever its body: [`BypassState`] says when it could not be read).
    Success { http_status: u16, answer: T },
    /// PingOne answered with an error status.
    Refused {
        http_status: u16,
        error_code: String,
        error_message: String,
        retry: Retry,
    },
    /// No answer: the connection failed or the request timed out. PUT is idempotent, so
    /// another attempt is always safe.
    NoAnswer { error_message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Never,
    /// Worth another attempt; `after` is the server's `Retry-After`, when it gave one.
    Allowed {
        after: Option<Duration>,
    },
}

impl<T> Attempt<T> {
    pub fn may_retry(&self) -> bool {
        match self {
            Self::Success { .. } => false,
            Self::Refused { retry, .. } => matches!(retry, Retry::Allowed { .. }),
            Self::NoAnswer { .. } => true,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Refused {
                retry: Retry::Allowed { after },
                ..
            } => *after,
            _ => None,
        }
    }

    /// The HTTP status of the answer; `None` when there was none.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Success { http_status, .. } | Self::Refused { http_status, .. } => {
                Some(*http_status)
            }
            Self::NoAnswer { .. } => None,
        }
    }
}

/// Retries after the first attempt, with exponential backoff and full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retries: u32,
    /// The first retry waits up to this long; each later one up to twice the one before.
    pub base_delay: Duration,
    /// No single wait, backoff or `Retry-After`, is longer (Ping's SDKs cap at 30 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: crate::defaults::RETRIES,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A server's own delay for one request (a 503's `Retry-After`): at least that long,
    /// capped like every wait, plus up to a quarter again at random so that rows told the same
    /// delay do not come back together.
    pub fn at_least(&self, after: Duration) -> Duration {
        after
            .min(self.max_delay)
            .mul_f64(1.0 + 0.25 * rand::rng().random::<f64>())
    }

    /// "Full jitter": uniform in zero to the exponential ceiling, so that rows failing
    /// together do not come back together.
    pub fn backoff(&self, retry_number: u32) -> Duration {
        let exponent = retry_number.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        ceiling.mul_f64(rand::rng().random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_an_exponential_ceiling_capped_at_the_maximum() {
        let policy = RetryPolicy {
            retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..200 {
            assert!(policy.backoff(1) <= Duration::from_millis(100));
            assert!(policy.backoff(3) <= Duration::from_millis(400));
            assert!(policy.backoff(30) <= Duration::from_secs(1));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(4)).collect();
        assert!(spread.len() > 40, "backoff is not jittered");
    }
}
