//! The record stage: every finished row goes to the journal at once, in the order it finished,
//! then back into input order for the results file, which gets each row as soon as every row
//! before it is done. The first failed write stops all sending (through `halt`), and the error
//! says how many granted bypasses are recorded where, listing any recorded nowhere.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::record::journal::Journal;
use crate::record::progress::Progress;
use crate::record::summary::Summary;
use crate::record::writer::{OutputError, ResultsWriter, RowEncoder};
use crate::row::ResultRow;

/// Rows journalled with one write at most; a burst larger than this is journalled in pieces.
const ROWS_PER_JOURNAL_WRITE: usize = 256;

/// The reorder window's places: a row claims one when planning takes it, and it is released
/// when the recorder writes the row, in input order, which may be long after and in another
/// task. A claimed place is a permit forgotten, not held, since it outlives the claim's scope;
/// this type is the one place that pairs the two.
pub(crate) struct ReorderWindow(Semaphore);

impl ReorderWindow {
    /// A window of `places` rows (at least one).
    pub(crate) fn new(places: usize) -> Self {
        Self(Semaphore::new(places.max(1)))
    }

    /// A place at once: `Some(true)` claimed, `Some(false)` the window closed (the recorder
    /// failed), `None` full.
    pub(crate) fn try_claim(&self) -> Option<bool> {
        match self.0.try_acquire() {
            Ok(place) => {
                place.forget();
                Some(true)
            }
            Err(tokio::sync::TryAcquireError::Closed) => Some(false),
            Err(tokio::sync::TryAcquireError::NoPermits) => None,
        }
    }

    /// Waits for a place: `false` once the window is closed.
    pub(crate) async fn claim(&self) -> bool {
        match self.0.acquire().await {
            Ok(place) => {
                place.forget();
                true
            }
            Err(_) => false,
        }
    }

    fn release(&self) {
        self.0.add_permits(1);
    }

    /// No more places: the recorder can write no more rows.
    fn close(&self) {
        self.0.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

pub(crate) struct Recorder {
    pub(crate) results: ResultsWriter,
    /// `None` when nothing is sent (a dry run) or results go to standard output.
    pub(crate) journal: Option<Journal>,
    /// Places in the reorder window: planning claims one per row, the recorder releases it
    /// once the row is in the results file, and closes it when it can write no more.
    pub(crate) window: Arc<ReorderWindow>,
    pub(crate) progress: Arc<Progress>,
    /// Flush the results whenever every finished row is written; otherwise they reach the file
    /// as the buffer fills, which suits a dry run (a crash loses no record of a request) and a
    /// run with a journal (the journal holds every answer already).
    pub(crate) flush_when_caught_up: bool,
    /// Cancelled at the first failed write: no request is started after it.
    pub(crate) halt: CancellationToken,
    /// Which columns the rows are written with.
    pub(crate) report: crate::row::Report,
}

/// A write failed: what failed, and where the granted bypasses are recorded.
#[derive(Debug)]
pub struct RecordError {
    pub failure: OutputError,
    pub results: String,
    pub granted_in_results: u64,
    pub journal: Option<String>,
    pub granted_in_journal: u64,
    /// Granted bypasses no file holds; the binary prints them so that the admin still has them.
    pub unrecorded: Vec<GrantedBypass>,
}

/// A bypass PingOne granted (or ended), as an error lists one that no file could take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedBypass {
    /// What PingOne did: `granted`, or `ended`.
    pub change: &'static str,
    pub environment_id: String,
    pub user_id: String,
    pub bypass_mfa_enabled_until: String,
}

impl GrantedBypass {
    fn of(row: ResultRow) -> Self {
        Self {
            change: if row.status == crate::row::RowStatus::Ended {
                "ended"
            } else {
                "granted"
            },
            environment_id: row.environment_id,
            user_id: row.user_id,
            bypass_mfa_enabled_until: row.bypass_mfa_enabled_until,
        }
    }
}

impl RecordError {
    /// A failure to finish the results after every row was recorded: no bypass is missing
    /// from them.
    pub fn finishing(results: String, source: std::io::Error) -> Self {
        Self {
            failure: OutputError::Write {
                target: results.clone(),
                source,
            },
            results,
            granted_in_results: 0,
            journal: None,
            granted_in_journal: 0,
            unrecorded: Vec::new(),
        }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; sending stopped at once. Granted bypasses recorded: {} in the results {}",
            self.failure, self.granted_in_results, self.results
        )?;
        if let Some(journal) = &self.journal {
            write!(
                f,
                ", {} in the journal {journal} (--resume reads both)",
                self.granted_in_journal
            )?;
        }
        if !self.unrecorded.is_empty() {
            write!(
                f,
                "; {} granted bypasses are in neither file and are listed below",
                self.unrecorded.len()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.failure)
    }
}

/// Granted rows counted once the file that holds them has them.
#[derive(Default)]
struct Tally {
    in_journal: u64,
    in_results: u64,
    /// Written to the results since the last flush.
    in_results_unflushed: u64,
}

/// A line of the results waiting for its turn, and the bypass it records if one was granted.
struct Line {
    bytes: Vec<u8>,
    granted: Option<GrantedBypass>,
}

impl Line {
    fn granted(&self) -> u64 {
        u64::from(self.granted.is_some())
    }
}

impl Recorder {
    pub(crate) async fn record(
        mut self,
        mut rows: mpsc::Receiver<(u64, ResultRow)>,
    ) -> Result<Summary, RecordError> {
        let mut encoder = RowEncoder::new(self.report);
        let mut waiting: VecDeque<Option<Line>> = VecDeque::new();
        let mut next = 0_u64;
        let mut summary = Summary::default();
        let mut tally = Tally::default();
        let mut batch: Vec<(u64, Line)> = Vec::with_capacity(ROWS_PER_JOURNAL_WRITE);
        while let Some(first) = rows.recv().await {
            let mut take = |(position, row): (u64, ResultRow)| {
                summary.count(&row);
                self.progress.row_done(&row);
                let bytes = encoder.encode(&row);
                let granted = row.granted().then(|| GrantedBypass::of(row));
                (position, Line { bytes, granted })
            };
            batch.push(take(first));
            while batch.len() < ROWS_PER_JOURNAL_WRITE {
                match rows.try_recv() {
                    Ok(item) => batch.push(take(item)),
                    Err(_) => break,
                }
            }
            if let Some(journal) = &mut self.journal {
                if let Err(failure) =
                    journal.append(batch.iter().map(|(_, line)| line.bytes.as_slice()))
                {
                    let unrecorded = batch
                        .drain(..)
                        .filter_map(|(_, line)| line.granted)
                        .collect();
                    return Err(self.fail(failure, tally, unrecorded, rows).await);
                }
                tally.in_journal += batch.iter().map(|(_, line)| line.granted()).sum::<u64>();
            }
            for (position, line) in batch.drain(..) {
                let offset = usize::try_from(position - next).unwrap_or(usize::MAX);
                if waiting.len() <= offset {
                    waiting.resize_with(offset + 1, || None);
                }
                waiting[offset] = Some(line);
            }
            while let Some(Some(_)) = waiting.front() {
                let Some(Some(line)) = waiting.pop_front() else {
                    break;
                };
                if let Err(failure) = self.results.write(&line.bytes) {
                    let unrecorded = self
                        .not_journalled(std::iter::once(line).chain(waiting.drain(..).flatten()));
                    return Err(self.fail(failure, tally, unrecorded, rows).await);
                }
                tally.in_results_unflushed += line.granted();
                next += 1;
                self.window.release();
            }
            if self.flush_when_caught_up && rows.is_empty() {
                if let Err(failure) = self.results.flush() {
                    let unrecorded = self.not_journalled(waiting.drain(..).flatten());
                    return Err(self.fail(failure, tally, unrecorded, rows).await);
                }
                tally.in_results += std::mem::take(&mut tally.in_results_unflushed);
            }
        }
        match self.close(&tally) {
            None => Ok(summary),
            Some(error) => Err(error),
        }
    }

    /// Finishes the results file and the journal once every row is written; a failure to
    /// finish them, saying where the granted bypasses are recorded.
    fn close(self, tally: &Tally) -> Option<RecordError> {
        let results = self.results.describe().to_owned();
        let journal = self
            .journal
            .as_ref()
            .map(|journal| journal.path().display().to_string());
        let finished = self.results.finish().and_then(|()| match self.journal {
            Some(journal) => journal.finish(),
            None => Ok(()),
        });
        let failure = finished.err()?;
        self.halt.cancel();
        Some(RecordError {
            failure,
            results,
            granted_in_results: tally.in_results + tally.in_results_unflushed,
            journal,
            granted_in_journal: tally.in_journal,
            unrecorded: Vec::new(),
        })
    }

    /// The granted bypasses among `lines` that no journal holds: with a journal every line
    /// handed to the results was journalled first.
    fn not_journalled(&self, lines: impl Iterator<Item = Line>) -> Vec<GrantedBypass> {
        if self.journal.is_some() {
            return Vec::new();
        }
        lines.filter_map(|line| line.granted).collect()
    }

    /// Stops all sending, then takes the rows still on their way so that any granted bypass
    /// among them is reported rather than lost.
    async fn fail(
        self,
        failure: OutputError,
        tally: Tally,
        mut unrecorded: Vec<GrantedBypass>,
        mut rows: mpsc::Receiver<(u64, ResultRow)>,
    ) -> RecordError {
        self.halt.cancel();
        self.window.close();
        while let Some((_, row)) = rows.recv().await {
            if row.granted() {
                unrecorded.push(GrantedBypass::of(row));
            }
        }
        RecordError {
            failure,
            results: self.results.describe().to_owned(),
            granted_in_results: tally.in_results,
            journal: self
                .journal
                .as_ref()
                .map(|journal| journal.path().display().to_string()),
            granted_in_journal: tally.in_journal,
            unrecorded,
        }
    }
}
