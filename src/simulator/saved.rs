//! A rehearsal's tenant kept between commands. Every `--simulate` command starts a simulator of
//! its own, so without this a rehearsal could grant with `run` and then find nothing with
//! `status` or `end`: the bypasses the tenant holds are written to a file when a command ends
//! and read back when the next one starts, so that the whole arc (grant, check, end, check) is
//! rehearsed on one tenant, as PingOne would keep it. Its audit log of the last 14 days is kept
//! the same way, so that `verify --pingone` rehearses against it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Simulator;
use crate::pingone::{format_bypass_until, parse_exact_bypass_until};

/// The file's name, in the folder of the rehearsal's results unless `--simulate-state` says
/// otherwise.
pub const SAVED_TENANT_NAME: &str = "pingone-bypass.rehearsal-tenant.json";

/// The most a saved tenant may take: far more than any rehearsal's bypasses (about a hundred
/// bytes each), so that a file that is not one is refused before it is read whole.
const MOST_SAVED_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SavedTenantError {
    #[error(
        "cannot read the rehearsal tenant {path}: {source}; delete it to rehearse on a fresh tenant, or pass --simulate-state with another path"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the rehearsal tenant {path} is not one this tool wrote ({message}); delete it to rehearse on a fresh tenant, or pass --simulate-state with another path"
    )]
    NotATenant { path: PathBuf, message: String },
    #[error("cannot save the rehearsal tenant {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct SavedTenant {
    /// Says what the file is to whoever opens it.
    about: String,
    bypasses: Vec<SavedBypass>,
    /// The audit log's activities of the last 14 days, so that `verify --pingone --simulate`
    /// finds what the rehearsal's earlier commands did. Absent in files of older versions.
    #[serde(default)]
    activities: Vec<super::AuditActivity>,
}

#[derive(Serialize, Deserialize)]
struct SavedBypass {
    environment_id: Uuid,
    user_id: Uuid,
    bypass_mfa_enabled_until: String,
}

impl Simulator {
    /// Gives the tenant the bypasses saved at `path`; a missing file is a fresh tenant (none).
    pub fn restore_bypasses(&self, path: &Path) -> Result<usize, SavedTenantError> {
        let read_error = |source| SavedTenantError::Read {
            path: path.to_owned(),
            source,
        };
        let not_a_tenant = |message: String| SavedTenantError::NotATenant {
            path: path.to_owned(),
            message,
        };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(read_error(error)),
        };
        let size = file.metadata().map_err(read_error)?.len();
        if size > MOST_SAVED_BYTES {
            return Err(not_a_tenant(format!("it holds {size} bytes")));
        }
        let saved: SavedTenant = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|error| not_a_tenant(error.to_string()))?;
        for bypass in &saved.bypasses {
            let until =
                parse_exact_bypass_until(&bypass.bypass_mfa_enabled_until).ok_or_else(|| {
                    not_a_tenant(format!(
                        "the expiry {:?} is not in PingOne's format",
                        bypass.bypass_mfa_enabled_until
                    ))
                })?;
            self.store_bypass(bypass.environment_id, bypass.user_id, until);
        }
        for activity in saved.activities {
            self.state.audit.record(activity);
        }
        Ok(saved.bypasses.len())
    }

    /// Writes the tenant's bypasses to `path`, whole or not at all (a file beside it, renamed).
    pub fn save_bypasses(&self, path: &Path) -> Result<(), SavedTenantError> {
        let saved = SavedTenant {
            about: "The bypasses of the rehearsal tenant of pingone-bypass --simulate, kept between commands; delete this file to rehearse on a fresh tenant.".to_owned(),
            bypasses: self
                .bypasses()
                .into_iter()
                .map(|bypass| SavedBypass {
                    environment_id: bypass.environment_id,
                    user_id: bypass.user_id,
                    bypass_mfa_enabled_until: format_bypass_until(bypass.bypass_mfa_enabled_until),
                })
                .collect(),
            activities: self
                .activities()
                .into_iter()
                .filter(|activity| {
                    activity.recorded_at
                        > chrono::Utc::now() - chrono::Duration::days(super::READABLE_DAYS)
                })
                .collect(),
        };
        let write_error = |source| SavedTenantError::Write {
            path: path.to_owned(),
            source,
        };
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let partial = path.with_file_name(name);
        let text = serde_json::to_vec_pretty(&saved).map_err(std::io::Error::from);
        text.and_then(|text| std::fs::write(&partial, text))
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::SimulatorConfig;

    #[tokio::test]
    async fn a_saved_tenant_gives_the_next_simulator_the_same_bypasses() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let path = folder.path().join(SAVED_TENANT_NAME);
        let start = || Simulator::start(SimulatorConfig::default(), ([127, 0, 0, 1], 0).into());
        let first = start().await.expect("starts");
        assert_eq!(
            first.restore_bypasses(&path).ok(),
            Some(0),
            "no file: fresh"
        );
        let (environment, user) = (Uuid::new_v4(), Uuid::new_v4());
        let until = parse_exact_bypass_until("2031-01-02T03:04:05.678Z").unwrap_or_default();
        first.store_bypass(environment, user, until);
        first.save_bypasses(&path).expect("saves");
        let second = start().await.expect("starts");
        assert_eq!(second.restore_bypasses(&path).ok(), Some(1));
        assert_eq!(second.bypass(environment, user), Some(until));
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_saved_tenant_is_refused_naming_it() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let path = folder.path().join(SAVED_TENANT_NAME);
        std::fs::write(&path, "row,user\n").expect("writes");
        let simulator = Simulator::start(SimulatorConfig::default(), ([127, 0, 0, 1], 0).into())
            .await
            .expect("starts");
        let refused = simulator
            .restore_bypasses(&path)
            .err()
            .map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|message| message.contains(&path.display().to_string())
                    && message.contains("delete it")),
            "{refused:?}"
        );
    }
}
