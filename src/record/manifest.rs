//! The run record beside each results file (`<results stem>.manifest.json`): which tool made
//! the results, against which API (or the simulator) and environments, by whom, when, with
//! which settings, the SHA-256 of the input and of the final results, and what came of it, for
//! this run and every earlier run the results were resumed from. `--resume` reads it to refuse
//! results made against another API, and to know which `--until` filled an empty cell in an
//! earlier run; `verify` reads it to tell whether the results were altered. It never holds a
//! secret.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::summary::Summary;

/// What a run did to each row, as its record names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Grant,
    Check,
    Plan,
    /// `end`, or with `dry_run` its plan.
    End,
}

impl RecordKind {
    /// How the record names `mode`: the one mapping from the run's mode to its record.
    pub fn of(mode: crate::mode::Mode) -> Self {
        use crate::mode::Mode;
        match mode {
            Mode::Grant => Self::Grant,
            Mode::Check => Self::Check,
            Mode::Plan { .. } => Self::Plan,
            Mode::End { .. } => Self::End,
        }
    }
}

/// One run that wrote (part of) the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's ID, sent as `X-Ping-External-Session-ID` with every request it made, so
    /// PingOne's audit log shows which events are this run's. Absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The client the run's requests were made as (`actors.client.id` in PingOne's audit log):
    /// the worker application, or a ready token's `client_id` claim. Absent in older records
    /// and when it could not be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub tool_version: String,
    /// The API base requests went to; `None` for a dry run, which sends nothing.
    pub api_url: Option<String>,
    /// Whether that API was the built-in simulator.
    pub simulated: bool,
    pub dry_run: bool,
    /// What the run did to each row; absent in older records, whose `dry_run` tells a plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RecordKind>,
    /// `user@host` of whoever ran it.
    pub operator: String,
    pub input: String,
    /// SHA-256 (hex) of the input file's bytes; `None` for standard input or a selection.
    #[serde(default)]
    pub input_sha256: Option<String>,
    /// `--until`, as given: what an empty until cell meant.
    pub until: Option<String>,
    /// The settings that shape the outcome.
    #[serde(default)]
    pub settings: Settings,
    /// The environments of the rows that were valid, sorted.
    #[serde(default)]
    pub environments: Vec<String>,
    pub started_at: DateTime<Utc>,
    /// `None` while the run goes on, or if it was killed.
    pub finished_at: Option<DateTime<Utc>>,
    /// SHA-256 (hex) of the final results file; `None` until it is complete.
    #[serde(default)]
    pub results_sha256: Option<String>,
    pub summary: Option<Summary>,
}

/// The settings a run's outcome depends on, as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub rate: f64,
    pub concurrency: usize,
    pub retries: u32,
    pub max_window: String,
    pub timezone: String,
    /// `--population` / `--group`, when the rows were a selection: what and its bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    pub resolve: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The latest run.
    #[serde(flatten)]
    pub run: RunRecord,
    /// Runs before it whose results this one resumed, oldest first.
    #[serde(default)]
    pub earlier_runs: Vec<RunRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot write the run record {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot read the run record {path} ({message}); it says which API the results were made against. Restore it, or pass --resume-any-api to resume without that check"
    )]
    Read { path: PathBuf, message: String },
}

impl Manifest {
    /// `x.results.csv` → `x.results.manifest.json`.
    pub fn path_for(results: &Path) -> PathBuf {
        let stem = results.file_stem().unwrap_or_default().to_string_lossy();
        results.with_file_name(format!("{stem}.manifest.json"))
    }

    /// The record of `results`, if there is one.
    pub fn load(results: &Path) -> Result<Option<Self>, ManifestError> {
        let path = Self::path_for(results);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(ManifestError::Read {
                    path,
                    message: error.to_string(),
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| ManifestError::Read {
                path,
                message: error.to_string(),
            })
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> impl Iterator<Item = &RunRecord> {
        self.earlier_runs.iter().chain(std::iter::once(&self.run))
    }

    /// The run that was going on at `instant`: the last one started by then.
    pub fn run_at(&self, instant: DateTime<Utc>) -> Option<&RunRecord> {
        self.runs().filter(|run| run.started_at <= instant).last()
    }

    /// A new record for `run`, keeping the runs of `resumed` before it.
    pub fn new(run: RunRecord, resumed: Option<Self>) -> Self {
        let earlier_runs = resumed
            .map(|earlier| {
                let mut runs = earlier.earlier_runs;
                runs.push(earlier.run);
                runs
            })
            .unwrap_or_default();
        Self { run, earlier_runs }
    }

    /// Replaces the record atomically: a reader sees the old one or the new one, never half.
    pub fn save(&self, results: &Path) -> Result<(), ManifestError> {
        let path = Self::path_for(results);
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let write = || -> std::io::Result<()> {
            let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
            let mut text = crate::secrets::scrub(&text);
            text.push('\n');
            std::fs::write(&temporary, text)?;
            std::fs::rename(&temporary, &path)
        };
        write().map_err(|source| {
            let _ = std::fs::remove_file(&temporary);
            ManifestError::Write {
                path: path.clone(),
                source,
            }
        })
    }
}

/// SHA-256 of a file's bytes, as lowercase hex.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The results are byte for byte what the run recorded; `what` says what that run was.
    Matches { sha256: String, what: String },
    /// They are not.
    Altered {
        recorded: String,
        found: String,
        what: String,
    },
}

impl RunRecord {
    /// What the run was, for `verify`: a grant, a status check, an end or a dry run's plan, and whether
    /// it was a rehearsal on the built-in simulator.
    pub fn what(&self) -> String {
        let kind = match (self.kind, self.dry_run) {
            (Some(RecordKind::Plan), _) | (None, true) => "a dry run's plan (nothing was sent)",
            (Some(RecordKind::Grant), _) => "a grant",
            (Some(RecordKind::Check), _) => "a status check",
            (Some(RecordKind::End), false) => "an end of bypasses",
            (Some(RecordKind::End), true) => "a dry run of an end (nothing was ended)",
            (None, false) => "a run",
        };
        if self.simulated {
            format!("{kind}, rehearsed on the built-in simulator")
        } else {
            kind.to_owned()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "{0} has no run record beside it ({1}); only results written to a file by a finished run can be verified"
    )]
    NoRecord(PathBuf, PathBuf),
    #[error(transparent)]
    Record(#[from] ManifestError),
    #[error(
        "the run record {0} holds no SHA-256 of the results: the run did not finish, so there is nothing to verify against"
    )]
    Unfinished(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Checks the results file at `results` against the SHA-256 its run record holds.
pub fn verify(results: &Path) -> Result<Verified, VerifyError> {
    let manifest = Manifest::load(results)?
        .ok_or_else(|| VerifyError::NoRecord(results.to_owned(), Manifest::path_for(results)))?;
    let what = manifest.run.what();
    let recorded = manifest
        .run
        .results_sha256
        .ok_or_else(|| VerifyError::Unfinished(Manifest::path_for(results)))?;
    let found = sha256_of(results).map_err(|source| VerifyError::Read {
        path: results.to_owned(),
        source,
    })?;
    Ok(if found == recorded {
        Verified::Matches {
            sha256: found,
            what,
        }
    } else {
        Verified::Altered {
            recorded,
            found,
            what,
        }
    })
}

/// `user@host`, from the environment; only for the record, never for a decision.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_sits_beside_the_results_under_their_stem() {
        assert_eq!(
            Manifest::path_for(Path::new("runs/x.results.csv")),
            Path::new("runs/x.results.manifest.json")
        );
    }
}
