//! Validation and normalisation of each row before anything is sent: IDs must be UUIDs (nothing
//! else ever reaches a URL path), every accepted spelling of an expiry becomes PingOne's one
//! format, expiries outside (run start, run start + max window] are refused, and repeated
//! (environment, user) pairs are skipped or refused. Every refusal says which column, which
//! value and which rule, so the admin can fix the spreadsheet.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::expiry::{UntilProblem, Zone, parse_until};
use crate::input::{InputRecord, UserColumn};
use crate::mode::Mode;
use crate::pingone::{NameAttribute, format_bypass_until};
use crate::seen_pairs::{FirstRequest, SeenPairs};

mod problem;
pub use problem::{OutsideWindow, RowProblem, WindowProblem};

/// A row that will be sent: only checked values, nothing from the input as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub environment_id: Uuid,
    pub user_id: Uuid,
    /// Exactly what is sent as `bypassMFAEnabledUntil` (empty for `status` and `end`, which
    /// ask nothing of a row).
    pub requested_until: String,
    /// `end` of a results file: the expiry its run recorded for this row, when it recorded one.
    pub granted_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    Skipped,
    /// `end` of a results file: a row its run did not grant, which is not ended.
    NotGranted,
}

/// A user named by username or email, to be resolved in an environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName {
    pub environment_id: Uuid,
    pub attribute: NameAttribute,
    /// As written, without surrounding white space.
    pub value: String,
}

/// A valid row that names its user by username or email: sent once the name resolves to
/// exactly one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub name: UserName,
    pub until: DateTime<Utc>,
}

impl Unresolved {
    pub fn requested_until(&self) -> String {
        format_bypass_until(self.until)
    }
}

/// What validation decided for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Send(Job),
    Resolve(Unresolved),
    Refuse(Refused),
}

/// Why a row is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub kind: Refusal,
    /// The normalised expiry, when the row got far enough to have one.
    pub requested_until: Option<String>,
    pub message: String,
}

/// How the input's columns are named, for messages that name the column to fix.
#[derive(Debug, Clone)]
pub struct ColumnNames {
    pub environment: String,
    /// The user columns, in the order they are tried.
    pub users: Vec<(UserColumn, String)>,
    pub until: String,
}

impl ColumnNames {
    fn user(&self, column: UserColumn) -> &str {
        self.users
            .iter()
            .find(|(candidate, _)| *candidate == column)
            .map_or("user", |(_, name)| name.as_str())
    }
}

impl ColumnNames {
    /// The names as the input's header gives them, or the flag that stands in for a missing
    /// column.
    pub fn of(header: &crate::input::Header) -> Self {
        Self {
            environment: header
                .environment
                .as_ref()
                .map_or_else(|| "--env".to_owned(), |(_, name)| name.clone()),
            users: header
                .users
                .iter()
                .map(|(column, _, name)| (*column, name.clone()))
                .collect(),
            until: header
                .until
                .as_ref()
                .map_or_else(|| "--until".to_owned(), |(_, name)| name.clone()),
        }
    }
}

impl Default for ColumnNames {
    fn default() -> Self {
        Self {
            environment: "environment".to_owned(),
            users: vec![(UserColumn::Id, "user".to_owned())],
            until: "until".to_owned(),
        }
    }
}

/// The rules every row is checked against, fixed at run start.
#[derive(Debug, Clone)]
pub struct Rules {
    pub run_start: DateTime<Utc>,
    pub max_window: Duration,
    pub max_window_text: String,
    /// From `--env`, for rows that leave the environment empty.
    pub default_environment: Option<Uuid>,
    /// From `--until`, for rows that leave the expiry empty: the text and its normalised value.
    pub default_until: Option<(String, DateTime<Utc>)>,
    /// `--timezone`: what a date or time written without a zone means.
    pub zone: Zone,
}

impl Rules {
    /// `--until` as given, for the run record and for `--resume` to compare with.
    pub fn default_until_text(&self) -> Option<String> {
        self.default_until.as_ref().map(|(text, _)| text.clone())
    }

    pub fn latest_allowed(&self) -> DateTime<Utc> {
        // The flag is bounded to a year, but a window from elsewhere (the library) must not
        // overflow either: past what dates hold, nothing is later.
        chrono::Duration::from_std(self.max_window)
            .ok()
            .and_then(|window| self.run_start.checked_add_signed(window))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Checks an expiry against the window, naming `what` (a column or a flag) when it fails.
    pub fn check_window(
        &self,
        what: &str,
        text: &str,
        until: DateTime<Utc>,
    ) -> Result<(), WindowProblem> {
        let problem = |kind| WindowProblem {
            kind,
            what: what.to_owned(),
            text: text.to_owned(),
            until: format_bypass_until(until),
        };
        if until <= self.run_start {
            return Err(problem(OutsideWindow::NotAfterStart {
                start: format_bypass_until(self.run_start),
            }));
        }
        if until > self.latest_allowed() {
            return Err(problem(OutsideWindow::PastMaxWindow {
                max_window: self.max_window_text.clone(),
                latest: format_bypass_until(self.latest_allowed()),
            }));
        }
        Ok(())
    }
}

/// Validates rows in input order, remembering pairs already seen.
pub struct Planner {
    rules: Rules,
    columns: ColumnNames,
    mode: Mode,
    /// An end whose input is a results file: only the rows it records as granted are ended.
    ends_results: bool,
    seen: SeenPairs,
    parsed_untils: HashMap<String, Result<DateTime<Utc>, UntilProblem>>,
}

/// Distinct expiry spellings remembered at once; a file with more simply parses some again.
const PARSED_UNTILS_KEPT: usize = 1024;

impl Planner {
    pub fn new(rules: Rules, columns: ColumnNames) -> Self {
        Self {
            rules,
            columns,
            mode: Mode::Grant,
            ends_results: false,
            seen: SeenPairs::default(),
            parsed_untils: HashMap::new(),
        }
    }

    /// A planner for `mode`'s rows (a grant's, unless told otherwise), read from a results file
    /// of this tool when `input_is_results`.
    pub fn for_mode(self, mode: Mode, input_is_results: bool) -> Self {
        Self {
            mode,
            ends_results: mode.ends_bypasses() && input_is_results,
            ..self
        }
    }

    /// Most files repeat a few expiries ("8h", one date) on every row; each is parsed once.
    fn parse_until_cached(&mut self, text: &str) -> Result<DateTime<Utc>, UntilProblem> {
        if let Some(parsed) = self.parsed_untils.get(text) {
            return *parsed;
        }
        let parsed = parse_until(text, self.rules.run_start, self.rules.zone);
        if self.parsed_untils.len() >= PARSED_UNTILS_KEPT {
            self.parsed_untils.clear();
        }
        self.parsed_untils.insert(text.to_owned(), parsed);
        parsed
    }

    pub fn plan(&mut self, record: &InputRecord) -> Verdict {
        if self.ends_results && record.status != "succeeded" {
            let status = match record.status.as_str() {
                "" => "no status",
                status => status,
            };
            return Verdict::Refuse(Refused {
                kind: Refusal::NotGranted,
                requested_until: None,
                message: format!("its run did not grant it (status {status}), so it is not ended"),
            });
        }
        match self.check(record) {
            Ok((environment_id, User::Id(user_id), until)) => {
                match self.deduplicate(record.row, environment_id, user_id, until) {
                    Ok(job) => Verdict::Send(Job {
                        granted_until: self
                            .ends_results
                            .then(|| crate::expiry::parse_recorded_instant(&record.granted_until))
                            .flatten(),
                        ..job
                    }),
                    Err(refused) => Verdict::Refuse(refused),
                }
            }
            Ok((environment_id, User::Name(attribute, value), until)) => {
                Verdict::Resolve(Unresolved {
                    name: UserName {
                        environment_id,
                        attribute,
                        value,
                    },
                    until,
                })
            }
            Err(problem) => Verdict::Refuse(Refused {
                kind: Refusal::Invalid,
                requested_until: None,
                message: problem.to_string(),
            }),
        }
    }

    /// The verdict on a row whose name resolved to `user_id`: sent, unless an earlier row
    /// already asks for the same user.
    pub fn resolved(
        &mut self,
        row: u64,
        unresolved: &Unresolved,
        user_id: Uuid,
    ) -> Result<Job, Refused> {
        self.deduplicate(
            row,
            unresolved.name.environment_id,
            user_id,
            unresolved.until,
        )
    }

    fn check(&mut self, record: &InputRecord) -> Result<(Uuid, User, DateTime<Utc>), RowProblem> {
        if let Some(defect) = &record.defect {
            return Err(RowProblem::Defect(defect.clone()));
        }
        let environment_id = match (record.environment.trim(), self.rules.default_environment) {
            ("", Some(default)) => default,
            ("", None) => {
                return Err(RowProblem::NoEnvironment {
                    column: self.columns.environment.clone(),
                });
            }
            (text, _) => parse_id(text).ok_or_else(|| RowProblem::NotAUuid {
                column: self.columns.environment.clone(),
                text: text.to_owned(),
            })?,
        };
        let user_text = record.user.trim();
        if user_text.is_empty() {
            let names: Vec<&str> = self
                .columns
                .users
                .iter()
                .map(|(_, name)| name.as_str())
                .collect();
            return Err(RowProblem::NoUser {
                columns: names.join(" and "),
                all: names.len() > 1,
            });
        }
        let user = match record.named_by {
            UserColumn::Id => {
                let column = self.columns.user(UserColumn::Id);
                let id = parse_id(user_text).ok_or_else(|| RowProblem::UserNotAUuid {
                    column: column.to_owned(),
                    text: user_text.to_owned(),
                })?;
                User::Id(id)
            }
            UserColumn::Name(attribute) => User::Name(attribute, user_text.to_owned()),
        };
        let until = match (record.until.trim(), &self.rules.default_until) {
            _ if !self.mode.asks_expiry() => self.rules.run_start,
            ("", Some((_, default))) => *default,
            ("", None) => {
                return Err(RowProblem::NoUntil {
                    column: self.columns.until.clone(),
                });
            }
            (text, _) => {
                let until =
                    self.parse_until_cached(text)
                        .map_err(|problem| RowProblem::UntilForm {
                            column: self.columns.until.clone(),
                            text: text.to_owned(),
                            problem: problem.explain(),
                        })?;
                self.rules.check_window(&self.columns.until, text, until)?;
                until
            }
        };
        Ok((environment_id, user, until))
    }

    fn deduplicate(
        &mut self,
        row: u64,
        environment_id: Uuid,
        user_id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<Job, Refused> {
        if !self.mode.sends_a_user_once() {
            return Ok(Job {
                environment_id,
                user_id,
                requested_until: String::new(),
                granted_until: None,
            });
        }
        let requested_until = if self.mode.asks_expiry() {
            format_bypass_until(until)
        } else {
            String::new()
        };
        let until_millis = until.timestamp_millis();
        let this = FirstRequest { row, until_millis };
        match self.seen.check_in(environment_id, user_id, this) {
            Some(first) if first.until_millis == until_millis => Err(Refused {
                kind: Refusal::Skipped,
                requested_until: Some(requested_until),
                message: format!("duplicate of row {}", first.row),
            }),
            Some(first) => Err(Refused {
                kind: Refusal::Invalid,
                requested_until: Some(requested_until),
                message: format!(
                    "conflicts with row {}, which asks {} for the same environment and user; keep one of the two",
                    first.row,
                    DateTime::from_timestamp_millis(first.until_millis)
                        .map_or_else(String::new, format_bypass_until)
                ),
            }),
            None => Ok(Job {
                environment_id,
                user_id,
                requested_until,
                granted_until: None,
            }),
        }
    }
}

/// How a valid row names its user.
enum User {
    Id(Uuid),
    Name(NameAttribute, String),
}

/// Only the hyphenated UUID spelling is accepted: it is what PingOne's IDs look like, and it
/// leaves nothing (braces, `urn:uuid:`, slashes) that could change a URL path.
pub fn parse_id(text: &str) -> Option<Uuid> {
    (text.len() == 36)
        .then(|| Uuid::try_parse(text).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("a valid instant")
    }

    fn rules() -> Rules {
        Rules {
            run_start: start(),
            max_window: Duration::from_secs(7 * 86_400),
            max_window_text: "7d".to_owned(),
            default_environment: None,
            default_until: None,
            zone: Zone::Utc,
        }
    }

    const ENV: &str = "4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01";
    const USER: &str = "0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01";

    fn record(row: u64, environment: &str, user: &str, until: &str) -> InputRecord {
        InputRecord {
            row,
            environment: environment.to_owned(),
            user: user.to_owned(),
            until: until.to_owned(),
            ..InputRecord::default()
        }
    }

    fn refusal(verdict: Verdict) -> (Refusal, String) {
        match verdict {
            Verdict::Refuse(Refused { kind, message, .. }) => (kind, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_row_becomes_a_job_with_checked_values_only() {
        let mut planner = Planner::new(rules(), ColumnNames::default());
        let verdict = planner.plan(&record(2, ENV, &USER.to_uppercase(), "8h"));
        assert_eq!(
            verdict,
            Verdict::Send(Job {
                environment_id: Uuid::parse_str(ENV).unwrap_or_default(),
                user_id: Uuid::parse_str(USER).unwrap_or_default(),
                requested_until: "2026-11-29T20:00:00.000Z".to_owned(),
                granted_until: None,
            })
        );
    }

    #[test]
    fn ids_that_are_not_hyphenated_uuids_are_refused_naming_the_column_and_value() {
        let columns = ColumnNames {
            environment: "envID".into(),
            users: vec![(UserColumn::Id, "userID".into())],
            until: "until".into(),
        };
        let mut planner = Planner::new(rules(), columns);
        for (environment, user, column, value) in [
            (ENV, "../../environments", "userID", "../../environments"),
            (ENV, &format!("{{{USER}}}")[..], "userID", ""),
            (
                ENV,
                "0d9a3b526c1e4b8f9e275f3c1a7d8e01",
                "userID",
                "0d9a3b526c1e4b8f9e275f3c1a7d8e01",
            ),
            ("prod", USER, "envID", "prod"),
            (&format!("{ENV}/x")[..], USER, "envID", ""),
        ] {
            let (kind, message) = refusal(planner.plan(&record(2, environment, user, "8h")));
            assert_eq!(kind, Refusal::Invalid);
            assert!(
                message.starts_with(column) && message.contains("is not a UUID"),
                "{message}"
            );
            assert!(message.contains(value), "{message}");
        }
    }

    #[test]
    fn empty_cells_use_the_defaults_or_say_which_flag_would_fill_them() {
        let mut planner = Planner::new(rules(), ColumnNames::default());
        let (_, message) = refusal(planner.plan(&record(2, "", USER, "8h")));
        assert!(message.contains("--env"), "{message}");
        let (_, message) = refusal(planner.plan(&record(3, ENV, USER, "")));
        assert!(message.contains("--until"), "{message}");

        let default_until = start() + chrono::Duration::hours(4);
        let mut planner = Planner::new(
            Rules {
                default_environment: Uuid::parse_str(ENV).ok(),
                default_until: Some(("4h".into(), default_until)),
                ..rules()
            },
            ColumnNames::default(),
        );
        assert!(matches!(
            planner.plan(&record(2, "", USER, "")),
            Verdict::Send(Job { requested_until, .. }) if requested_until == "2026-11-29T16:00:00.000Z"
        ));
    }

    #[test]
    fn expiries_in_the_past_or_beyond_the_window_are_refused_with_the_limit() {
        let mut planner = Planner::new(rules(), ColumnNames::default());
        let (_, past) = refusal(planner.plan(&record(2, ENV, USER, "2026-11-29 11:59")));
        assert!(past.contains("not after the run start"), "{past}");
        let (_, now) = refusal(planner.plan(&record(3, ENV, USER, "0s")));
        assert!(now.contains("not after the run start"), "{now}");
        let (_, late) = refusal(planner.plan(&record(4, ENV, USER, "7d1ms")));
        assert!(
            late.contains("--max-window 7d") && late.contains("2026-12-06T12:00:00.000Z"),
            "{late}"
        );
        assert!(matches!(
            planner.plan(&record(5, ENV, USER, "7d")),
            Verdict::Send(_)
        ));
    }

    #[test]
    fn a_repeated_pair_is_skipped_when_it_asks_the_same_and_refused_when_it_conflicts() {
        let mut planner = Planner::new(rules(), ColumnNames::default());
        assert!(matches!(
            planner.plan(&record(2, ENV, USER, "8h")),
            Verdict::Send(_)
        ));
        let (kind, message) = refusal(planner.plan(&record(3, ENV, USER, "2026-11-29T20:00:00Z")));
        assert_eq!(
            (kind, message.as_str()),
            (Refusal::Skipped, "duplicate of row 2")
        );
        let (kind, message) = refusal(planner.plan(&record(4, ENV, USER, "9h")));
        assert_eq!(kind, Refusal::Invalid);
        assert!(message.starts_with("conflicts with row 2"), "{message}");
        let other_env = "9b2f7c3d-6e8a-4f10-8c5d-2e4b6a7c9d02";
        assert!(matches!(
            planner.plan(&record(5, other_env, USER, "9h")),
            Verdict::Send(_)
        ));
    }

    #[test]
    fn an_invalid_row_does_not_claim_its_pair() {
        let mut planner = Planner::new(rules(), ColumnNames::default());
        assert!(matches!(
            planner.plan(&record(2, ENV, USER, "30d")),
            Verdict::Refuse(_)
        ));
        assert!(matches!(
            planner.plan(&record(3, ENV, USER, "8h")),
            Verdict::Send(_)
        ));
    }

    #[test]
    fn a_defective_row_is_invalid_with_its_defect() {
        let mut planner = Planner::new(rules(), ColumnNames::default());
        let mut defective = record(2, ENV, USER, "8h");
        defective.defect = Some("the row has 2 cells but the header has 3".into());
        let (kind, message) = refusal(planner.plan(&defective));
        assert_eq!(
            (kind, message.as_str()),
            (Refusal::Invalid, "the row has 2 cells but the header has 3")
        );
    }
}
