//! One writer per results file: a run holds an exclusive lock beside its results for as long
//! as it runs, so that a second run on the same file (a second `--resume` started by mistake,
//! a scheduled job overlapping a manual one) stops before it reads, sends or writes anything.
//! The lock file stays when the run ends (removing it would let two later runs lock two
//! different files); it names the process that holds it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const LOCK_SUFFIX: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "results file {results} is in use by another run ({holder}); wait for it to finish, or write elsewhere with -o/--output"
    )]
    Busy { results: PathBuf, holder: String },
    #[error("cannot lock {path} for the results: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for the whole run; dropping it releases the lock.
#[derive(Debug)]
pub struct ResultsLock {
    _file: File,
}

impl ResultsLock {
    pub fn path_for(results: &Path) -> PathBuf {
        let mut name = results.file_name().unwrap_or_default().to_os_string();
        name.push(LOCK_SUFFIX);
        results.with_file_name(name)
    }

    /// Takes the lock on `results`, or says who holds it.
    pub fn acquire(results: &Path) -> Result<Self, LockError> {
        let path = Self::path_for(results);
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Busy {
                    results: results.to_owned(),
                    holder: if holder.is_empty() {
                        "a process that has not said who it is".to_owned()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(fs4::TryLockError::Error(source)) => return Err(io_error(source)),
        }
        let holder = format!(
            "pid {} on {}, started {}",
            std::process::id(),
            crate::record::manifest::operator(),
            crate::pingone::format_bypass_until(chrono::Utc::now())
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(io_error)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_results_is_refused_naming_the_holder() {
        let folder = tempfile::tempdir().expect("a folder");
        let results = folder.path().join("users.results.csv");
        let first = ResultsLock::acquire(&results).expect("the first run locks");
        let second = ResultsLock::acquire(&results).expect_err("the second run is refused");
        let message = second.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        ResultsLock::acquire(&results).expect("the lock is free again once the first run ends");
    }
}
