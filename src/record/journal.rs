//! The completion journal: every row's outcome, in the order PingOne answered, handed to the
//! operating system within milliseconds of the answer, before the in-order results file is
//! built. The results file can only write a row once every row before it is done, so a row
//! stuck in retries holds finished rows behind it in memory; the journal is where those rows
//! survive `kill -9`, and `--resume` reads it. It is synced to the disk every
//! `SYNC_EVERY` and at the end, and removed once the results it backs are complete on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::record::writer::{OutputError, OutputTarget, ResultsWriter};

/// How often written rows are forced to the disk (against power loss; `kill -9` needs only the
/// write).
const SYNC_EVERY: Duration = Duration::from_millis(250);

/// Ends a journal's name; `--resume` looks for files ending so beside the results.
pub const JOURNAL_SUFFIX: &str = ".journal";

pub struct Journal {
    writer: ResultsWriter,
    path: PathBuf,
    /// Something was written since the last sync.
    dirty: Arc<AtomicBool>,
    /// Dropping the sender stops the syncing thread at once.
    syncing: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Journal {
    /// The journal of results written to `results`.
    pub fn path_for(results: &Path) -> PathBuf {
        let mut name = results.file_name().unwrap_or_default().to_os_string();
        name.push(JOURNAL_SUFFIX);
        results.with_file_name(name)
    }

    /// Creates the journal of results written to `results`; one left by another run is never
    /// replaced.
    pub fn create<'a>(
        results: &Path,
        report: crate::row::Report,
        extra_columns: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, OutputError> {
        let path = Self::path_for(results);
        let writer = ResultsWriter::create(
            &OutputTarget::File(path.clone()),
            false,
            report,
            extra_columns,
        )?;
        let dirty = Arc::new(AtomicBool::new(false));
        // A thread of its own, so that a slow disk delays neither the writer nor the senders.
        let syncing = writer.file_handle().map(|file| {
            let (stop, stopped) = std::sync::mpsc::channel::<()>();
            let dirty = dirty.clone();
            let thread = std::thread::spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(SYNC_EVERY)
                {
                    if dirty.swap(false, Ordering::AcqRel) && file.sync_data().is_err() {
                        // The next write or the final sync reports the disk's trouble.
                        dirty.store(true, Ordering::Release);
                    }
                }
            });
            (stop, thread)
        });
        Ok(Self {
            writer,
            path,
            dirty,
            syncing,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes encoded lines and hands them to the operating system before returning.
    pub fn append<'a>(
        &mut self,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), OutputError> {
        for line in lines {
            self.writer.write(line)?;
        }
        self.writer.flush()?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Stops the periodic syncing and syncs what is left.
    pub fn finish(mut self) -> Result<(), OutputError> {
        if let Some((stop, thread)) = self.syncing.take() {
            drop(stop);
            let _ = thread.join();
        }
        self.writer.finish()
    }
}
