//! `--resume`: what earlier runs already granted (or, for `end`, ended). Their results file,
//! the partial files of resumes that were killed, and the completion journals of runs that were
//! killed are read by header name; the latest success for each (environment, user) is kept. An
//! input row whose earlier success still holds (the same request, and a bypass in force beyond
//! a margin; for `end`, any earlier end) is recorded again and not sent; any other row is
//! processed. Earlier successes whose rows are
//! gone from the input stay in the results, marked, so no granted bypass drops out of the
//! record.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::expiry::{is_relative_until, parse_naive, parse_recorded_instant};
use crate::input::{UserColumn, user_column_of};
use crate::pingone::NameAttribute;
use crate::record::journal::JOURNAL_SUFFIX;
use crate::record::manifest::{Manifest, ManifestError};
use crate::row::{RecordedCells, Report, ResultRow, RowOrigin};

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot read earlier results {path} for --resume: {message}")]
    Read { path: PathBuf, message: String },
    #[error(
        "{path} is not a pingone-bypass results file (its header lacks {missing}); point -o/--output at the results of the earlier run"
    )]
    NotResults { path: PathBuf, missing: String },
    #[error("cannot list {folder} for partial results and journals: {source}")]
    List {
        folder: PathBuf,
        source: std::io::Error,
    },
    #[error("--resume needs a results file: -o - (standard output) cannot be resumed")]
    Stdout,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "the earlier results {results} were made against {earlier}, not {now}; resume them against the same API (or pass --resume-any-api if that is really meant)"
    )]
    OtherApi {
        results: PathBuf,
        earlier: String,
        now: String,
    },
    #[error(
        "{results} records bypasses granted on {earlier}, but this end sends to {now}; end them where they were granted (with --simulate for a rehearsal's), or pass --any-api if that is really meant"
    )]
    EndElsewhere {
        results: PathBuf,
        earlier: String,
        now: String,
    },
    #[error(
        "cannot tell which API the earlier results {results} were made against: their run record {manifest} is missing; pass --resume-any-api to resume them anyway"
    )]
    UnknownApi { results: PathBuf, manifest: PathBuf },
    #[error(
        "an earlier run of {results} left {left} behind (it was stopped before it finished); continue it with --resume, which reads it, or move it away to start afresh"
    )]
    Unfinished { results: PathBuf, left: PathBuf },
}

/// Where this run sends, to compare with where earlier runs sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiIdentity {
    DryRun,
    Simulator,
    PingOne(String),
}

impl ApiIdentity {
    fn describe(&self) -> String {
        match self {
            Self::DryRun => "no API (a dry run)".to_owned(),
            Self::Simulator => "the built-in simulator".to_owned(),
            Self::PingOne(url) => url.clone(),
        }
    }

    fn of(run: &crate::record::manifest::RunRecord) -> Self {
        match (&run.api_url, run.simulated) {
            (_, true) => Self::Simulator,
            (Some(url), false) => Self::PingOne(url.clone()),
            (None, false) => Self::DryRun,
        }
    }

    fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::PingOne(a), Self::PingOne(b)) => a
                .trim_end_matches('/')
                .eq_ignore_ascii_case(b.trim_end_matches('/')),
            (a, b) => a == b,
        }
    }
}

/// What resuming decides for one input row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No earlier success for this row: process it.
    New,
    /// Granted before and still in force: record it again, send nothing.
    Done(Box<ResultRow>),
    /// Granted before, but the bypass has ended (or ends within the margin), or the row now
    /// asks for another expiry: process it; `earlier` describes the earlier grant.
    Again { earlier: String },
}

/// How a resumed run judges an earlier success.
#[derive(Debug, Clone)]
pub struct ResumeRules {
    pub now: DateTime<Utc>,
    /// An earlier bypass that ends within this is granted again.
    pub margin: Duration,
    /// `--until` as given to this run, for rows whose until cell is empty.
    pub default_until: Option<String>,
    /// `end`: an earlier end of a row's bypass stands as it was (ending it again would only
    /// read it again and find it ending sooner).
    pub ending: bool,
}

struct Grant {
    row: ResultRow,
    /// The input row that matched it, if any did.
    matched: bool,
}

/// Earlier successes, and the files and run record they came from.
#[derive(Default)]
pub struct EarlierResults {
    /// The latest success for each (environment, user ID).
    grants: HashMap<(String, String), Grant>,
    /// (environment, attribute, name) of each success's username and email cells, lowercased
    /// as PingOne compares them, to the user ID key of its grant.
    names: HashMap<(String, NameAttribute, String), (String, String)>,
    /// Files read: the results file, partial files of killed resumes and journals of killed
    /// runs. Once the resumed results are complete, all but the results file are removed.
    pub sources: Vec<PathBuf>,
    manifest: Option<Manifest>,
    /// The report the results were written as: their columns.
    report: Report,
}

fn key(environment: &str, user: &str) -> (String, String) {
    (
        environment.trim().to_ascii_lowercase(),
        user.trim().to_ascii_lowercase(),
    )
}

fn name_key(
    environment: &str,
    attribute: NameAttribute,
    name: &str,
) -> (String, NameAttribute, String) {
    (
        environment.trim().to_ascii_lowercase(),
        attribute,
        name.trim().to_lowercase(),
    )
}

impl EarlierResults {
    /// Reads the results at `output` (of `report`), every partial file and journal a killed
    /// run left beside it, and the run record.
    pub fn load(output: &Path, report: Report) -> Result<Self, ResumeError> {
        let mut earlier = Self {
            manifest: Manifest::load(output)?,
            report,
            ..Self::default()
        };
        let mut files = Vec::new();
        if output.exists() {
            files.push(output.to_owned());
        }
        files.extend(leftovers(output)?);
        for path in files {
            earlier.read_file(&path)?;
            earlier.sources.push(path);
        }
        Ok(earlier)
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    pub fn succeeded_rows(&self) -> usize {
        self.grants.len()
    }

    /// Refuses results made against another API than `now`'s, unless `any_api`.
    pub fn check_api(
        &self,
        results: &Path,
        now: &ApiIdentity,
        any_api: bool,
    ) -> Result<(), ResumeError> {
        if any_api || self.grants.is_empty() || *now == ApiIdentity::DryRun {
            return Ok(());
        }
        let Some(manifest) = &self.manifest else {
            return Err(ResumeError::UnknownApi {
                results: results.to_owned(),
                manifest: Manifest::path_for(results),
            });
        };
        match made_elsewhere(manifest, now) {
            Some(earlier) => Err(ResumeError::OtherApi {
                results: results.to_owned(),
                earlier: earlier.describe(),
                now: now.describe(),
            }),
            None => Ok(()),
        }
    }

    /// What to do with an input row that validation would send as `requested_until`, by its
    /// user cell as written (an ID, a username or an email).
    pub fn decide(
        &mut self,
        origin: &RowOrigin,
        requested_until: &str,
        rules: &ResumeRules,
    ) -> Decision {
        let grant_key = match origin.named_by {
            UserColumn::Id => Some(key(&origin.environment_id, &origin.user)),
            UserColumn::Name(attribute) => self
                .names
                .get(&name_key(&origin.environment_id, attribute, &origin.user))
                .cloned(),
        };
        self.judge(grant_key, origin, requested_until, rules)
    }

    /// What to do with a row whose name resolved to `origin.user_id`, when its name matched
    /// no earlier success.
    pub fn decide_resolved(
        &mut self,
        origin: &RowOrigin,
        requested_until: &str,
        rules: &ResumeRules,
    ) -> Decision {
        let grant_key = key(&origin.environment_id, &origin.user_id);
        self.judge(Some(grant_key), origin, requested_until, rules)
    }

    fn judge(
        &mut self,
        grant_key: Option<(String, String)>,
        origin: &RowOrigin,
        requested_until: &str,
        rules: &ResumeRules,
    ) -> Decision {
        let Some(grant) = grant_key.and_then(|grant_key| self.grants.get_mut(&grant_key)) else {
            return Decision::New;
        };
        grant.matched = true;
        let earlier = &grant.row;
        if rules.ending {
            return Decision::Done(Box::new(earlier.clone()));
        }
        let then_text = if earlier.until.trim().is_empty() {
            self.manifest
                .as_ref()
                .and_then(|manifest| manifest.run_at(earlier.completed_at))
                .and_then(|run| run.until.clone())
        } else {
            Some(earlier.until.trim().to_owned())
        };
        let now_text = if origin.until.trim().is_empty() {
            rules.default_until.clone()
        } else {
            Some(origin.until.trim().to_owned())
        };
        // A date or time without a zone means another instant under another --timezone, so
        // for such a cell only the instant counts.
        let same_text = now_text.is_some()
            && now_text == then_text
            && now_text.as_deref().and_then(parse_naive).is_none();
        let same_instant = now_text
            .as_deref()
            .is_some_and(|text| !is_relative_until(text))
            && parse_recorded_instant(requested_until).is_some()
            && parse_recorded_instant(requested_until)
                == parse_recorded_instant(&earlier.requested_until);
        let ends = parse_recorded_instant(&earlier.bypass_mfa_enabled_until)
            .or_else(|| parse_recorded_instant(&earlier.requested_until));
        let margin = chrono::Duration::from_std(rules.margin).unwrap_or(chrono::Duration::MAX);
        let in_force = earlier.can_bypass_mfa != Some(false)
            && ends.is_some_and(|ends| ends > rules.now + margin);
        let ends_text = ends.map_or_else(
            || "an unknown time".to_owned(),
            crate::pingone::format_bypass_until,
        );
        if !(same_text || same_instant) {
            return Decision::Again {
                earlier: format!(
                    "an earlier run granted a bypass until {ends_text} for another expiry ({})",
                    then_text.as_deref().unwrap_or("unknown")
                ),
            };
        }
        if !in_force {
            return Decision::Again {
                earlier: format!(
                    "an earlier run granted a bypass until {ends_text}, which has ended or ends within the --resume-margin"
                ),
            };
        }
        Decision::Done(Box::new(earlier.clone()))
    }

    /// Earlier successes no input row matched, in the order they were first recorded, to be
    /// kept after the input's rows.
    pub fn not_in_input(&self, extra_columns: usize) -> Vec<ResultRow> {
        let mut rows: Vec<&ResultRow> = self
            .grants
            .values()
            .filter(|grant| !grant.matched)
            .map(|grant| &grant.row)
            .collect();
        rows.sort_by_key(|row| (row.row.unwrap_or(u64::MAX), row.completed_at));
        rows.into_iter()
            .map(|row| ResultRow::carried_over(row, extra_columns))
            .collect()
    }

    /// Takes in the successes the results file at `path` recorded (the latest for each user),
    /// and the names its rows gave their users.
    fn read_file(&mut self, path: &Path) -> Result<(), ResumeError> {
        let read_error = |error: csv::Error| ResumeError::Read {
            path: path.to_owned(),
            message: error.to_string(),
        };
        let bytes = std::fs::read(path).map_err(|error| ResumeError::Read {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        let mut reader = whole_lines_reader(&bytes);
        let header = reader.headers().map_err(read_error)?.clone();
        let columns = self.report.columns();
        let missing: Vec<&str> = columns
            .iter()
            .map(|column| column.name())
            .filter(|name| !header.iter().any(|column| column == *name))
            .collect();
        if !missing.is_empty() {
            return Err(ResumeError::NotResults {
                path: path.to_owned(),
                missing: missing.join(", "),
            });
        }
        let name_columns: Vec<(usize, NameAttribute)> = header
            .iter()
            .enumerate()
            .skip(columns.len())
            .filter_map(|(index, name)| match user_column_of(name) {
                Some(UserColumn::Name(attribute)) => Some((index, attribute)),
                _ => None,
            })
            .collect();
        for record in reader.records() {
            let Ok(record) = record else { continue };
            if record.len() < header.len() {
                continue;
            }
            let names: Vec<(NameAttribute, String)> = name_columns
                .iter()
                .filter_map(|(index, attribute)| {
                    let name = crate::row::unescape_formula(record.get(*index)?.trim());
                    (!name.is_empty()).then(|| (*attribute, name.to_owned()))
                })
                .collect();
            let Ok(cells) = record.deserialize::<RecordedCells>(Some(&header)) else {
                continue;
            };
            let Some(row) = cells.into_row() else {
                continue;
            };
            if !row.granted() {
                continue;
            }
            let key = key(&row.environment_id, &row.user_id);
            for (attribute, name) in names {
                self.names
                    .insert(name_key(&row.environment_id, attribute, &name), key.clone());
            }
            match self.grants.get(&key) {
                Some(known) if known.row.completed_at >= row.completed_at => {}
                _ => {
                    self.grants.insert(
                        key,
                        Grant {
                            row,
                            matched: false,
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

/// Refuses to end the bypasses of `results` on another API than the one their run record says
/// they were granted on (a rehearsal's on PingOne, or a real run's on the simulator), unless
/// `any_api`: its users are not that API's, and their bypasses, if any, not that run's. Results
/// without a run record (copied on their own) are not refused: `CHANGED_SINCE` still guards
/// every row.
pub fn check_end_api(results: &Path, now: &ApiIdentity, any_api: bool) -> Result<(), ResumeError> {
    if any_api || *now == ApiIdentity::DryRun {
        return Ok(());
    }
    let Some(manifest) = Manifest::load(results)? else {
        return Ok(());
    };
    match made_elsewhere(&manifest, now) {
        Some(earlier) => Err(ResumeError::EndElsewhere {
            results: results.to_owned(),
            earlier: earlier.describe(),
            now: now.describe(),
        }),
        None => Ok(()),
    }
}

/// The API, other than `now`, that a run `manifest` records sent to, if any did (a dry run
/// sent nowhere).
fn made_elsewhere(manifest: &Manifest, now: &ApiIdentity) -> Option<ApiIdentity> {
    manifest
        .runs()
        .map(ApiIdentity::of)
        .find(|earlier| *earlier != ApiIdentity::DryRun && !earlier.same_as(now))
}

/// Partial files of killed resumes and journals of killed runs beside `output`, oldest first.
pub fn leftovers(output: &Path) -> Result<Vec<PathBuf>, ResumeError> {
    let folder = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(
        "{}.",
        output.file_name().unwrap_or_default().to_string_lossy()
    );
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(source) => return Err(ResumeError::List { folder, source }),
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy())
                .is_some_and(|name| {
                    name.starts_with(&prefix)
                        && (name.ends_with(PARTIAL_SUFFIX) || name.ends_with(JOURNAL_SUFFIX))
                })
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Where a resumed run writes until it is complete: beside the results, named so that the next
/// resume finds it if this one is killed.
pub fn new_partial_path(output: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{stamp}.{}{PARTIAL_SUFFIX}", std::process::id()));
    output.with_file_name(name)
}

const PARTIAL_SUFFIX: &str = ".partial";

/// A reader of a results file's whole lines, whatever delimiter and byte-order mark a
/// spreadsheet saved it with. Every line this tool writes ends with a line break: a last line
/// without one was cut off by a kill mid-write, and is not a success however much of it is
/// there.
fn whole_lines_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let bytes = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..=end],
        None => &bytes[..0],
    };
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| first_line.iter().filter(|b| *b == d).count())
        .unwrap_or(b',');
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(bytes)
}

#[cfg(test)]
mod tests;
