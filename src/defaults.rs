//! The defaults in one place: the command line's flags and `RunConfig::new` both take them
//! from here, so the two cannot disagree.

use std::time::Duration;

pub const RATE: f64 = 50.0;
pub const CONCURRENCY: u16 = 32;
/// Most requests in flight `--concurrency` allows: far beyond what a PingOne license accepts,
/// and each one costs senders and memory.
pub const MOST_CONCURRENCY: i64 = 1024;
/// `serve --connections`: the fewest connections the page's bound allows, whatever the
/// descriptor limit (a browser opens about six to a host, and the page's runs each hold one for
/// their events), and the most (past it, memory is the limit, not descriptors).
pub const FEWEST_PAGE_CONNECTIONS: usize = 64;
pub const MOST_PAGE_CONNECTIONS: usize = 8192;
/// The `--rate` allowed, in requests per second: from one every 100 seconds to far beyond any
/// license.
pub const RATE_RANGE: (f64, f64) = (0.01, 100_000.0);
pub const RETRIES: u32 = 5;
pub const TIMEOUT_TEXT: &str = "30s";
pub const TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_WINDOW_TEXT: &str = "7d";
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// How long rows wait for a PingOne that answers nothing before they are recorded as not
/// sent: longer than the three minutes Ping's own SDKs ride out.
pub const OUTAGE_PATIENCE_TEXT: &str = "5m";
pub const OUTAGE_PATIENCE: Duration = Duration::from_secs(5 * 60);
/// The longest `--outage-patience` allowed.
pub const MOST_OUTAGE_PATIENCE: Duration = Duration::from_secs(86_400);
/// The longest `--max-window`: a year and a day. No outage lasts longer, and the bound keeps
/// every expiry computed from it far inside what dates can hold.
pub const MOST_MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);
/// The longest `--timeout`: an hour, far past any answer PingOne gives.
pub const MOST_TIMEOUT: Duration = Duration::from_secs(3600);
/// `end --in`: how long an ended bypass still lasts after its PUT is sent, by default and at the
/// least and most. At least half a minute, room for the request's own trip and for clocks that
/// differ; at most an hour, so that an end is an end.
pub const END_IN_TEXT: &str = "1m";
pub const END_IN: Duration = Duration::from_secs(60);
pub const LEAST_END_IN: Duration = Duration::from_secs(30);
pub const MOST_END_IN: Duration = Duration::from_secs(3600);
/// The longest `--resume-margin`, as `--max-window`'s: no bypass lasts longer.
pub const MOST_RESUME_MARGIN: Duration = MOST_MAX_WINDOW;
pub const RESUME_MARGIN_TEXT: &str = "15m";
pub const RESUME_MARGIN: Duration = Duration::from_secs(15 * 60);
/// `verify --pingone`: audit requests a second, by default and at the most. PingOne's audit API
/// allows 10 a second (its own limit, apart from the license's); half of it leaves room for
/// another reader of the same log.
pub const AUDIT_RATE: f64 = 5.0;
pub const MOST_AUDIT_RATE: f64 = 10.0;
/// `verify --pingone --audit-wait`: how long rows not yet in the audit log are looked for
/// again, by default and at the most.
pub const AUDIT_WAIT_TEXT: &str = "2m";
pub const MOST_AUDIT_WAIT: Duration = Duration::from_secs(30 * 60);
/// Rows that may be between "started" and "written" at once. A row stuck in retries holds
/// the rows behind it in memory until this many are waiting, then reading pauses until it
/// ends. At a few hundred bytes a row this bounds the window to a few megabytes; at
/// PingOne's rates it covers minutes of sending, longer than a row's whole retry schedule.
pub const REORDER_WINDOW: usize = 10_000;

#[cfg(test)]
mod tests {
    use super as defaults;

    #[test]
    fn each_default_duration_reads_as_its_text() {
        for (text, duration) in [
            (defaults::TIMEOUT_TEXT, defaults::TIMEOUT),
            (defaults::MAX_WINDOW_TEXT, defaults::MAX_WINDOW),
            (defaults::RESUME_MARGIN_TEXT, defaults::RESUME_MARGIN),
            (defaults::OUTAGE_PATIENCE_TEXT, defaults::OUTAGE_PATIENCE),
            (defaults::END_IN_TEXT, defaults::END_IN),
        ] {
            assert_eq!(
                humantime::parse_duration(text).ok(),
                Some(duration),
                "{text}"
            );
        }
    }
}
