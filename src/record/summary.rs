//! The run's outcome in numbers, as the final line and `--summary-json` give it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::row::{
    CHANGED_SINCE, ENDS_SOONER, NO_BYPASS, NOT_ACTIVE, NOT_GRANTED, NOT_IN_INPUT, Report,
    ResultRow, RowStatus, SHORTENED,
};

/// The keys of `status`'s summary JSON.
const STATUS_KEYS: [&str; 9] = [
    "run_id",
    "total",
    "active",
    "none",
    "failed",
    "invalid",
    "not_attempted",
    "requests",
    "elapsed_seconds",
];

/// The keys of `end`'s summary JSON.
const END_KEYS: [&str; 18] = [
    "run_id",
    "total",
    "ended",
    "skipped",
    "not_granted",
    "no_bypass",
    "ends_sooner",
    "changed_since",
    "failed",
    "invalid",
    "not_attempted",
    "planned",
    "requests",
    "retries",
    "throttled",
    "token_renewals",
    "elapsed_seconds",
    "rate_per_second",
];

/// The keys only `end`'s summary JSON has.
const END_ONLY_KEYS: [&str; 5] = [
    "ended",
    "not_granted",
    "no_bypass",
    "ends_sooner",
    "changed_since",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    /// The run's ID (`X-Ping-External-Session-ID` of its requests).
    pub run_id: String,
    /// Rows of this run's input.
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub invalid: u64,
    pub skipped: u64,
    pub not_attempted: u64,
    pub planned: u64,
    /// `status`: rows whose user can bypass MFA now.
    pub active: u64,
    /// `status`: rows whose user has no bypass in force.
    pub none: u64,
    /// `end`: rows whose bypass PingOne ended.
    pub ended: u64,
    /// `end`: skipped rows of a results file that its run did not grant (`NOT_GRANTED`).
    pub not_granted: u64,
    /// `end`: skipped rows whose user has no bypass in force (`NO_BYPASS`).
    pub no_bypass: u64,
    /// `end`: skipped rows whose bypass ends no later than an end would (`ENDS_SOONER`).
    pub ends_sooner: u64,
    /// `end`: skipped rows whose bypass changed since its run recorded it (`CHANGED_SINCE`).
    pub changed_since: u64,
    /// Succeeded rows whose bypass ends earlier than asked (`SHORTENED`).
    pub shortened: u64,
    /// Succeeded rows for which PingOne says the user cannot bypass MFA now (`NOT_ACTIVE`).
    pub not_active: u64,
    /// Earlier successes kept in the results although this input no longer has their rows
    /// (`NOT_IN_INPUT`); not part of `total`.
    pub carried_over: u64,
    /// Requests sent, retries and lookups included.
    pub requests: u64,
    /// Requests that looked users up by name, or listed a population or group.
    pub lookups: u64,
    /// Requests sent after a row's first attempt.
    pub retries: u64,
    /// 429 answers.
    pub throttled: u64,
    /// Tokens renewed because PingOne refused one it had accepted (revoked mid-run).
    pub token_renewals: u64,
    pub elapsed_seconds: f64,
    /// `requests` divided by `elapsed_seconds`.
    pub rate_per_second: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write summary JSON {path}: {source}")]
pub struct SummaryError {
    path: PathBuf,
    source: std::io::Error,
}

impl Summary {
    pub fn count(&mut self, row: &ResultRow) {
        if row.error_code == NOT_IN_INPUT {
            self.carried_over += 1;
            return;
        }
        self.total += 1;
        let slot = match row.status {
            RowStatus::Succeeded => &mut self.succeeded,
            RowStatus::Failed => &mut self.failed,
            RowStatus::Invalid => &mut self.invalid,
            RowStatus::Skipped => &mut self.skipped,
            RowStatus::NotAttempted => &mut self.not_attempted,
            RowStatus::Planned => &mut self.planned,
            RowStatus::Active => &mut self.active,
            RowStatus::NoBypass => &mut self.none,
            RowStatus::Ended => &mut self.ended,
        };
        *slot += 1;
        if row.status == RowStatus::Skipped {
            match row.error_code.as_str() {
                NOT_GRANTED => self.not_granted += 1,
                NO_BYPASS => self.no_bypass += 1,
                ENDS_SOONER => self.ends_sooner += 1,
                CHANGED_SINCE => self.changed_since += 1,
                _ => {}
            }
        }
        if row.status == RowStatus::Succeeded {
            match row.error_code.as_str() {
                SHORTENED => self.shortened += 1,
                NOT_ACTIVE => self.not_active += 1,
                _ => {}
            }
        }
    }

    /// `end`'s rows in words: ended (or, in a dry run, to be ended), and each reason to skip.
    fn end_rows(&self, dry_run: bool) -> String {
        let done = if dry_run {
            format!("{} would be ended", self.planned)
        } else {
            format!("{} ended", self.ended)
        };
        let mut rows = format!(
            "{} rows: {done}, {} skipped ({} not granted by the run, {} with no bypass, {} ending sooner, {} changed since), {} failed, {} invalid",
            self.total,
            self.skipped,
            self.not_granted,
            self.no_bypass,
            self.ends_sooner,
            self.changed_since,
            self.failed,
            self.invalid
        );
        if self.not_attempted > 0 {
            rows.push_str(&format!(", {} not attempted", self.not_attempted));
        }
        rows
    }

    /// Takes the request counts from the run's live counters, over `elapsed`.
    pub fn add_requests(
        &mut self,
        counters: &crate::record::progress::LiveCounters,
        elapsed: std::time::Duration,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        self.requests = counters.sent.requests.load(Relaxed);
        self.lookups = counters.sent.lookups.load(Relaxed);
        self.retries = counters.sent.retries.load(Relaxed);
        self.throttled = counters.sent.throttled.load(Relaxed);
        self.token_renewals = counters.sent.token_renewals.load(Relaxed);
        self.elapsed_seconds = elapsed.as_secs_f64();
        self.rate_per_second = if self.elapsed_seconds > 0.0 {
            self.requests as f64 / self.elapsed_seconds
        } else {
            0.0
        };
    }

    /// Rows that need the admin's attention: failed, invalid or not attempted.
    pub fn unfinished(&self) -> u64 {
        self.failed + self.invalid + self.not_attempted
    }

    /// The keys each report's summary JSON has (docs/cli.md).
    pub fn json(&self, report: Report) -> serde_json::Value {
        let mut all = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(all)) => all,
            _ => serde_json::Map::new(),
        };
        match report {
            Report::Grants => {
                all.remove("active");
                all.remove("none");
                all.retain(|key, _| !END_ONLY_KEYS.contains(&key.as_str()));
            }
            Report::Status => all.retain(|key, _| STATUS_KEYS.contains(&key.as_str())),
            Report::Ends => all.retain(|key, _| END_KEYS.contains(&key.as_str())),
        }
        serde_json::Value::Object(all)
    }

    pub fn write_json(&self, path: &Path, report: Report) -> Result<(), SummaryError> {
        let write = || -> std::io::Result<()> {
            let mut file = BufWriter::new(File::create(path)?);
            let text = serde_json::to_string_pretty(&self.json(report))?;
            file.write_all(crate::secrets::scrub(&text).as_bytes())?;
            file.write_all(b"\n")?;
            file.flush()
        };
        write().map_err(|source| SummaryError {
            path: path.to_owned(),
            source,
        })
    }

    /// The one line a log or a person reads at the end.
    pub fn line(&self, dry_run: bool, report: Report) -> String {
        let rows = if report == Report::Ends {
            self.end_rows(dry_run)
        } else if report == Report::Status {
            let mut rows = format!(
                "{} rows checked: {} active, {} none, {} failed, {} invalid",
                self.total, self.active, self.none, self.failed, self.invalid
            );
            if self.not_attempted > 0 {
                rows.push_str(&format!(", {} not attempted", self.not_attempted));
            }
            rows
        } else if dry_run {
            let mut rows = format!(
                "{} rows checked: {} planned, {} invalid, {} skipped",
                self.total, self.planned, self.invalid, self.skipped
            );
            if self.failed + self.not_attempted > 0 {
                rows.push_str(&format!(
                    ", {} failed and {} not attempted (their users were not resolved)",
                    self.failed, self.not_attempted
                ));
            }
            rows
        } else {
            let mut rows = format!(
                "{} rows: {} succeeded, {} failed, {} invalid, {} skipped, {} not attempted",
                self.total,
                self.succeeded,
                self.failed,
                self.invalid,
                self.skipped,
                self.not_attempted
            );
            if self.shortened + self.not_active > 0 {
                rows.push_str(&format!(
                    " ({} granted shorter than asked, {} not active)",
                    self.shortened, self.not_active
                ));
            }
            if self.carried_over > 0 {
                rows.push_str(&format!(
                    "; {} earlier successes kept although no longer in the input",
                    self.carried_over
                ));
            }
            rows
        };
        let lookups = if self.lookups > 0 {
            format!("{} lookups, ", self.lookups)
        } else {
            String::new()
        };
        format!(
            "{rows}; {} requests ({lookups}{} retries, {} throttled) in {:.1}s, {:.1} requests/s",
            self.requests, self.retries, self.throttled, self.elapsed_seconds, self.rate_per_second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: RowStatus, error_code: &str) -> ResultRow {
        ResultRow {
            row: Some(2),
            environment_id: String::new(),
            user_id: String::new(),
            until: String::new(),
            requested_until: String::new(),
            status,
            http_status: None,
            can_bypass_mfa: None,
            bypass_mfa_enabled_until: String::new(),
            previous_until: String::new(),
            attempts: 0,
            error_code: error_code.to_owned(),
            error_message: String::new(),
            completed_at: chrono::Utc::now(),
            extras: Vec::new(),
        }
    }

    #[test]
    fn the_summary_line_names_every_count() {
        let mut summary = Summary::default();
        summary.count(&row(RowStatus::Succeeded, SHORTENED));
        summary.count(&row(RowStatus::Failed, ""));
        summary.count(&row(RowStatus::NotAttempted, "INTERRUPTED"));
        summary.count(&row(RowStatus::Succeeded, NOT_IN_INPUT));
        assert_eq!(summary.unfinished(), 2);
        assert_eq!(
            (summary.total, summary.shortened, summary.carried_over),
            (3, 1, 1)
        );
        let line = summary.line(false, Report::Grants);
        assert!(
            line.starts_with(
                "3 rows: 1 succeeded, 1 failed, 0 invalid, 0 skipped, 1 not attempted (1 granted shorter than asked, 0 not active); 1 earlier successes kept"
            ),
            "{line}"
        );
    }
}
