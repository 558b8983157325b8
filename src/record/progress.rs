//! Signs of life during a run: a progress bar on a terminal, otherwise a status line every ten
//! seconds so that a runbook's log shows the job is moving. Both read the same live counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::row::RowStatus;

/// When to draw the bar (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// Only when standard error is a terminal.
    #[default]
    Auto,
    Always,
    Never,
}

const STATUS_LINE_EVERY: Duration = Duration::from_secs(10);

/// Counters that senders and the writer update while the run goes on.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Rows in the input, once counted (0 until then).
    pub total: AtomicU64,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub rows_done: AtomicU64,
    pub succeeded: AtomicU64,
    /// Failed, invalid or not attempted.
    pub unfinished: AtomicU64,
}

impl LiveCounters {
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }
}

pub struct Progress {
    bar: Option<ProgressBar>,
    counters: Arc<LiveCounters>,
    status_lines: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(mode: ProgressMode, counters: Arc<LiveCounters>) -> Self {
        let target = match mode {
            ProgressMode::Never => None,
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
        let status_lines = bar.is_none().then(|| {
            let counters = counters.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut ticks = tokio::time::interval(STATUS_LINE_EVERY);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    eprintln!("{}", status_line(&counters, started.elapsed()));
                }
            })
        });
        Self {
            bar,
            counters,
            status_lines,
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
    pub fn row_done(&self, status: RowStatus) {
        LiveCounters::add(&self.counters.rows_done, 1);
        match status {
            RowStatus::Succeeded => LiveCounters::add(&self.counters.succeeded, 1),
            RowStatus::Failed | RowStatus::Invalid | RowStatus::NotAttempted => {
                LiveCounters::add(&self.counters.unfinished, 1);
            }
            RowStatus::Skipped | RowStatus::Planned => {}
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!(
                "| {} succeeded, {} need attention",
                LiveCounters::get(&self.counters.succeeded),
                LiveCounters::get(&self.counters.unfinished)
            ));
        }
    }

    pub fn shows_bar(&self) -> bool {
        self.bar.is_some()
    }

    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(task) = &self.status_lines {
            task.abort();
        }
    }
}

fn status_line(counters: &LiveCounters, elapsed: Duration) -> String {
    let requests = LiveCounters::get(&counters.requests);
    let rows = match LiveCounters::get(&counters.total) {
        0 => format!("{} rows done", LiveCounters::get(&counters.rows_done)),
        total => format!(
            "{} of {total} rows done",
            LiveCounters::get(&counters.rows_done)
        ),
    };
    format!(
        "progress: {rows} ({} succeeded, {} need attention), {} requests ({} retries, {} throttled), {:.1} requests/s",
        LiveCounters::get(&counters.succeeded),
        LiveCounters::get(&counters.unfinished),
        requests,
        LiveCounters::get(&counters.retries),
        LiveCounters::get(&counters.throttled),
        requests as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
    )
}
