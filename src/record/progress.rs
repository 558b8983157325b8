//! Signs of life during a run: a progress bar on a terminal, otherwise a status line every ten
//! seconds so that a runbook's log shows the job is moving. Both read the same live counters,
//! which, for the upload page, also keep the first rows that need attention as they come.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::record::log_format::{Level, LogFormat};
use crate::row::{Report, ResultRow, StatusGroup};

/// When to draw the bar (`--progress`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ProgressMode {
    /// Only when standard error is a terminal.
    #[default]
    Auto,
    Always,
    Never,
    /// No bar; one JSON object a line on standard output instead: `{"event":"progress",...}`
    /// with the counters twice a second and at the end, and `{"event":"attention",...}` for
    /// each row needing attention as it finishes (the first 1,000), for a program following the
    /// run. The upload page runs each of its runs as a child process and follows it so.
    Events,
}

/// How often `--progress events` writes the counters.
const EVENT_EVERY: Duration = Duration::from_millis(500);

const STATUS_LINE_EVERY: Duration = Duration::from_secs(10);

/// Counters that senders and the writer update while the run goes on.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Rows in the input, once counted (0 until then).
    pub total: AtomicU64,
    /// What the gateway counts: requests, lookups, retries, 429s.
    pub sent: std::sync::Arc<crate::gateway::RequestCounts>,
    pub rows_done: AtomicU64,
    pub succeeded: AtomicU64,
    /// Failed, invalid or not attempted.
    pub unfinished: AtomicU64,
    /// For a page that lists them (`keeping_attention`): the first `MOST_ATTENTION_ROWS` of
    /// those, in the order they finished. A run from the command line keeps none.
    attention: Option<Mutex<Vec<AttentionRow>>>,
}

/// How many rows that need attention are kept while a run goes on: enough to act on at once;
/// the results file holds every one.
pub const MOST_ATTENTION_ROWS: usize = 1000;

/// A row that failed, is invalid or was not attempted, as the upload page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttentionRow {
    pub row: Option<u64>,
    pub user_id: String,
    pub status: String,
    pub error_code: String,
    pub error_message: String,
}

impl LiveCounters {
    /// Counters that also keep the first rows needing attention, for a page to list.
    pub fn keeping_attention() -> Self {
        Self {
            attention: Some(Mutex::default()),
            ..Self::default()
        }
    }

    /// The kept rows needing attention from position `from` on.
    pub fn attention_from(&self, from: usize) -> Vec<AttentionRow> {
        self.kept_attention(|kept| kept.get(from..).unwrap_or_default().to_vec())
    }

    /// Every kept row needing attention, taken out.
    pub fn take_attention(&self) -> Vec<AttentionRow> {
        self.kept_attention(std::mem::take)
    }

    fn kept_attention<T: Default>(&self, with: impl FnOnce(&mut Vec<AttentionRow>) -> T) -> T {
        self.attention.as_ref().map_or_else(T::default, |kept| {
            // Plain data behind the lock: a panic cannot leave it half-written.
            with(&mut kept.lock().unwrap_or_else(PoisonError::into_inner))
        })
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// Keeps a row needing attention that another process reported (`--progress events`).
    pub fn keep(&self, row: AttentionRow) {
        self.kept_attention(|kept| {
            if kept.len() < MOST_ATTENTION_ROWS {
                kept.push(row);
            }
        });
    }

    /// The counters as `--progress events` writes them (and the page sends them on).
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            rows_done: Self::get(&self.rows_done),
            total: Self::get(&self.total),
            succeeded: Self::get(&self.succeeded),
            need_attention: Self::get(&self.unfinished),
            requests: Self::get(&self.sent.requests),
        }
    }

    /// Takes on the counters another process reported.
    pub fn set(&self, snapshot: &ProgressSnapshot) {
        self.rows_done.store(snapshot.rows_done, Ordering::Relaxed);
        self.total.store(snapshot.total, Ordering::Relaxed);
        self.succeeded.store(snapshot.succeeded, Ordering::Relaxed);
        self.unfinished
            .store(snapshot.need_attention, Ordering::Relaxed);
        self.sent
            .requests
            .store(snapshot.requests, Ordering::Relaxed);
    }
}

/// A run's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProgressSnapshot {
    pub rows_done: u64,
    pub total: u64,
    pub succeeded: u64,
    pub need_attention: u64,
    pub requests: u64,
}

/// One line of `--progress events`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    Progress(ProgressSnapshot),
    Attention(AttentionRow),
}

impl ProgressEvent {
    /// Writes the event as one line on standard output, cleared of every secret held.
    fn write(&self) {
        use std::io::Write;
        let Ok(line) = serde_json::to_string(self) else {
            return;
        };
        let line = crate::secrets::scrub(&line);
        // Whoever follows the run reads standard output; if it is gone, so is the follower.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    }
}

pub struct Progress {
    bar: Option<ProgressBar>,
    counters: Arc<LiveCounters>,
    /// What the rows counted as `succeeded` did, in the report's word.
    done: &'static str,
    status_lines: Option<tokio::task::JoinHandle<()>>,
    /// `--progress events`: the task writing the counters.
    events: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(
        mode: ProgressMode,
        format: LogFormat,
        counters: Arc<LiveCounters>,
        report: Report,
    ) -> Self {
        let done = report.done_word();
        let events = (mode == ProgressMode::Events).then(|| {
            let counters = counters.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(EVENT_EVERY);
                loop {
                    ticks.tick().await;
                    ProgressEvent::Progress(counters.snapshot()).write();
                }
            })
        });
        // A collector reading JSON lines has no use for a bar drawn over them.
        let mode = match format {
            LogFormat::Json => ProgressMode::Never,
            LogFormat::Text => mode,
        };
        let target = match mode {
            ProgressMode::Never | ProgressMode::Events => None,
            ProgressMode::Auto => Some(ProgressDrawTarget::stderr_with_hz(10)),
            ProgressMode::Always => Some(ProgressDrawTarget::term_like_with_hz(
                Box::new(console::Term::stderr()),
                10,
            )),
        }
        .filter(|target| !target.is_hidden());
        let bar = target.map(|target| {
            let bar = ProgressBar::with_draw_target(None, target);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} rows, {per_sec}, ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        *crate::record::log_format::active_bar() = bar.clone();
        let status_lines = bar.is_none().then(|| {
            let counters = counters.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut ticks = tokio::time::interval(STATUS_LINE_EVERY);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    let elapsed = started.elapsed();
                    format.say(
                        Level::Info,
                        &status_line(&counters, elapsed, done),
                        status_fields(&counters, elapsed),
                    );
                }
            })
        });
        Self {
            bar,
            counters,
            done,
            status_lines,
            events,
        }
    }

    /// The number of rows, once known (the input is counted while the run starts).
    pub fn set_total(&self, total: u64) {
        self.counters.total.store(total, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Called by the writer for each row it writes.
    pub fn row_done(&self, row: &ResultRow) {
        LiveCounters::add(&self.counters.rows_done, 1);
        match row.status.group() {
            StatusGroup::Done => {
                LiveCounters::add(&self.counters.succeeded, 1);
            }
            StatusGroup::NeedsAttention => {
                // Only the writer counts rows, so the count before this one says whether the
                // kept list has room, without taking its lock.
                let earlier = self.counters.unfinished.fetch_add(1, Ordering::Relaxed);
                if earlier < MOST_ATTENTION_ROWS as u64 {
                    let attention = AttentionRow {
                        row: row.row,
                        user_id: row.user_id.clone(),
                        status: row.status.as_str().to_owned(),
                        error_code: row.error_code.clone(),
                        error_message: row.error_message.clone(),
                    };
                    if self.events.is_some() {
                        ProgressEvent::Attention(attention.clone()).write();
                    }
                    self.counters.kept_attention(|kept| kept.push(attention));
                }
            }
            StatusGroup::Neither => {}
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!(
                "| {} {}, {} need attention",
                LiveCounters::get(&self.counters.succeeded),
                self.done,
                LiveCounters::get(&self.counters.unfinished)
            ));
        }
    }

    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            crate::record::log_format::active_bar().take();
            bar.finish_and_clear();
        }
        if let Some(task) = &self.status_lines {
            task.abort();
        }
        if let Some(task) = &self.events {
            task.abort();
            ProgressEvent::Progress(self.counters.snapshot()).write();
        }
    }
}

/// A status line's numbers, for JSON.
fn status_fields(
    counters: &LiveCounters,
    elapsed: Duration,
) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    for (name, counter) in [
        ("rows_done", &counters.rows_done),
        ("total", &counters.total),
        ("succeeded", &counters.succeeded),
        ("need_attention", &counters.unfinished),
        ("requests", &counters.sent.requests),
        ("retries", &counters.sent.retries),
        ("throttled", &counters.sent.throttled),
    ] {
        fields.insert(name.to_owned(), LiveCounters::get(counter).into());
    }
    fields.insert("elapsed_seconds".to_owned(), elapsed.as_secs_f64().into());
    fields
}

fn status_line(counters: &LiveCounters, elapsed: Duration, did: &str) -> String {
    let requests = LiveCounters::get(&counters.sent.requests);
    let done = LiveCounters::get(&counters.rows_done);
    let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
    let rows = match LiveCounters::get(&counters.total) {
        0 => format!("{done} rows done"),
        total => {
            let eta = match done {
                0 => "unknown".to_owned(),
                _ => humantime::format_duration(Duration::from_secs(
                    (total.saturating_sub(done) as f64 * seconds / done as f64).ceil() as u64,
                ))
                .to_string(),
            };
            format!(
                "{done} of {total} rows done ({:.0}%, ETA {eta})",
                done as f64 * 100.0 / total as f64
            )
        }
    };
    format!(
        "progress: {rows} ({} {did}, {} need attention), {} requests ({} retries, {} throttled), {:.1} requests/s",
        LiveCounters::get(&counters.succeeded),
        LiveCounters::get(&counters.unfinished),
        requests,
        LiveCounters::get(&counters.sent.retries),
        LiveCounters::get(&counters.sent.throttled),
        requests as f64 / seconds,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_for_a_counted_input_gives_done_of_total_percentage_rate_and_eta() {
        let counters = LiveCounters::default();
        LiveCounters::add(&counters.total, 2000);
        LiveCounters::add(&counters.rows_done, 500);
        LiveCounters::add(&counters.sent.requests, 500);
        let line = status_line(
            &counters,
            Duration::from_secs(5),
            Report::Grants.done_word(),
        );
        assert!(
            line.contains("500 of 2000 rows done (25%, ETA 15s)")
                && line.contains("(0 succeeded, 0 need attention)")
                && line.contains("100.0 requests/s"),
            "{line}"
        );
        let ending = status_line(&counters, Duration::from_secs(5), Report::Ends.done_word());
        assert!(ending.contains("(0 ended, 0 need attention)"), "{ending}");
    }
}
