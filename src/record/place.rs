//! The results file's whole lifecycle, in one type: claimed (locked, leftovers of an
//! unfinished run refused, earlier results loaded and checked on `--resume`), written to its
//! own partial file when resuming, the run record saved beside it, and completed (a resumed
//! run's results take the earlier ones' place; the journals and partial files they make
//! redundant are removed, the rename made durable first).

use std::path::{Path, PathBuf};

use super::in_order::RecordError;
use super::journal::Journal;
use super::lock::{LockError, ResultsLock};
use super::manifest::{Manifest, ManifestError, RunRecord};
use super::resume::{ApiIdentity, EarlierResults, ResumeError, leftovers, new_partial_path};
use super::writer::OutputTarget;

/// Why the results' place cannot be claimed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// The results file this run owns: locked for the whole run, with what earlier runs left
/// there, and where this run writes until it is complete.
pub struct ResultsPlace {
    _lock: Option<ResultsLock>,
    pub(crate) earlier: Option<EarlierResults>,
    pub(crate) written_to: OutputTarget,
}

impl ResultsPlace {
    /// Claims `output`; `resume` is `Some` for `--resume`, with the API this run sends to and
    /// whether results made against another are taken (`--resume-any-api`).
    pub fn claim(
        output: &OutputTarget,
        resume: Option<(&ApiIdentity, bool)>,
        report: crate::row::Report,
    ) -> Result<Self, PlaceError> {
        let OutputTarget::File(path) = output else {
            if resume.is_some() {
                return Err(ResumeError::Stdout.into());
            }
            return Ok(Self {
                _lock: None,
                earlier: None,
                written_to: OutputTarget::Stdout,
            });
        };
        let lock = ResultsLock::acquire(path)?;
        let Some((identity, any_api)) = resume else {
            if let Some(left) = leftovers(path)?.into_iter().next() {
                return Err(ResumeError::Unfinished {
                    results: path.clone(),
                    left,
                }
                .into());
            }
            return Ok(Self {
                _lock: Some(lock),
                earlier: None,
                written_to: output.clone(),
            });
        };
        let earlier = EarlierResults::load(path, report)?;
        earlier.check_api(path, identity, any_api)?;
        if earlier.sources.is_empty() {
            tracing::warn!(results = %path.display(), "no earlier results to resume; every row will be processed");
        } else {
            tracing::info!(
                succeeded = earlier.succeeded_rows(),
                "resuming: rows whose earlier bypass still holds will not be sent again"
            );
        }
        Ok(Self {
            _lock: Some(lock),
            earlier: Some(earlier),
            written_to: OutputTarget::File(new_partial_path(path)),
        })
    }

    /// Writes `run`'s record beside the results before anything is sent, keeping the records
    /// of the runs this one resumes.
    pub fn save_record(
        &self,
        output: &OutputTarget,
        run: RunRecord,
    ) -> Result<Option<Manifest>, PlaceError> {
        let OutputTarget::File(path) = output else {
            return Ok(None);
        };
        let resumed = self
            .earlier
            .as_ref()
            .and_then(|earlier| earlier.manifest().cloned());
        let manifest = Manifest::new(run, resumed);
        manifest.save(path)?;
        Ok(Some(manifest))
    }

    /// The results are complete and on the disk: a resumed run's take the earlier ones'
    /// place, and the journals and partial files they make redundant are removed.
    pub fn complete(
        &self,
        output: &OutputTarget,
        earlier_sources: Vec<PathBuf>,
    ) -> Result<(), Box<RecordError>> {
        let (OutputTarget::File(written), OutputTarget::File(output)) = (&self.written_to, output)
        else {
            return Ok(());
        };
        let redundant: Vec<PathBuf> = earlier_sources
            .into_iter()
            .chain([Journal::path_for(written)])
            .filter(|source| source != output)
            .collect();
        if written != output {
            std::fs::rename(written, output)
                .map_err(|source| RecordError::finishing(written.display().to_string(), source))?;
            sync_folder(output);
        }
        for file in redundant {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(file = %file.display(), %error, "could not remove a file the complete results make redundant");
                }
            }
        }
        Ok(())
    }
}

/// Makes a rename in `file`'s folder durable before the files it replaces are removed.
fn sync_folder(file: &Path) {
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(folder) = std::fs::File::open(folder) {
        let _ = folder.sync_all();
    }
}
