//! The reconciliation itself: each row of the results beside what PingOne's audit log says of
//! its request, and every activity of the run that no row accounts for. Rows are held once, in
//! a compact form; each activity is folded into its row's finding as its page is read, so that
//! no activity is held beyond its page (only those that name no row are kept, to be written).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use super::activity::Activity;
use crate::record::manifest::Manifest;
use crate::row::RowStatus;
use crate::row::{RecordedCells, escape_formula};

/// What PingOne's record says of a row (or of an activity that names none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The results say the row was changed, and PingOne logged that change.
    Confirmed,
    /// The results say the row was changed; PingOne logged no successful change for it.
    NotInPingone,
    /// PingOne logged a successful change the results do not record as one.
    NotInResults,
    /// Nothing was changed, and PingOne logged nothing successful.
    Consistent,
}

impl Verdict {
    pub const ALL: [Self; 4] = [
        Self::Confirmed,
        Self::NotInPingone,
        Self::NotInResults,
        Self::Consistent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "CONFIRMED",
            Self::NotInPingone => "NOT_IN_PINGONE",
            Self::NotInResults => "NOT_IN_RESULTS",
            Self::Consistent => "CONSISTENT",
        }
    }

    /// Whether the verdict needs no one's attention.
    pub fn agrees(self) -> bool {
        matches!(self, Self::Confirmed | Self::Consistent)
    }
}

/// The columns of the reconciliation file, in order.
pub const AUDIT_COLUMNS: [&str; 10] = [
    "row",
    "environment_id",
    "user_id",
    "status",
    "verdict",
    "pingone_result",
    "pingone_recorded_at",
    "pingone_activity_id",
    "pingone_correlation_id",
    "detail",
];

/// A row of the results, as much of it as reconciling needs.
struct Row {
    /// `None` for an earlier run's success that the input of the run resuming it no longer had.
    row: Option<u64>,
    environment_id: String,
    user_id: String,
    status: RowStatus,
    /// The run (its index in the record) that recorded the row's outcome.
    recorded_by: usize,
}

impl Row {
    /// Whether the results say PingOne changed this row's bypass.
    fn changed(&self) -> bool {
        self.status.changed_a_bypass()
    }
}

/// The activity of a row's own request that says most: a success over a failure.
#[derive(Debug, Clone)]
struct Finding {
    succeeded: bool,
    result: String,
    recorded_at: String,
    activity_id: String,
    correlation_id: String,
    description: String,
}

impl Finding {
    fn of(activity: &Activity) -> Self {
        Self {
            succeeded: activity.succeeded(),
            result: activity.result_status().to_owned(),
            recorded_at: activity.recorded_at.clone().unwrap_or_default(),
            activity_id: activity.id.clone().unwrap_or_default(),
            correlation_id: activity.correlation_id.clone().unwrap_or_default(),
            description: activity.result_description().to_owned(),
        }
    }
}

/// A line for an activity that no row's verdict accounts for.
struct Unaccounted {
    row: Option<u64>,
    environment_id: String,
    user_id: String,
    verdict: Verdict,
    finding: Finding,
    detail: String,
}

/// Why the results could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the results {path}: {message}")]
pub struct ResultsUnreadable {
    path: std::path::PathBuf,
    message: String,
}

pub struct Ledger {
    rows: Vec<Row>,
    by_number: HashMap<u64, usize>,
    /// The changed rows by the run that recorded them and their user (lower case): how a row
    /// is found whose number is not the one its run sent (an input edited before `--resume`,
    /// or an earlier success no longer in it).
    by_run_and_user: HashMap<(usize, String), usize>,
    findings: Vec<Option<Finding>>,
    unaccounted: Vec<Unaccounted>,
    /// Run IDs of the record, by their index.
    runs: HashMap<String, usize>,
    seen: HashSet<String>,
    /// Activities read, and of them those of the record's runs.
    pub activities_read: u64,
    pub activities_of_runs: u64,
}

impl Ledger {
    /// The rows of `results`, each with the run of `manifest` that recorded it.
    pub fn read(results: &Path, manifest: &Manifest) -> Result<Self, ResultsUnreadable> {
        let unreadable = |message: String| ResultsUnreadable {
            path: results.to_owned(),
            message,
        };
        let runs: Vec<_> = manifest.runs().collect();
        let mut reader =
            csv::Reader::from_path(results).map_err(|error| unreadable(error.to_string()))?;
        let mut rows = Vec::new();
        for (index, record) in reader.deserialize::<RecordedCells>().enumerate() {
            let cells = record.map_err(|error| unreadable(error.to_string()))?;
            let Some(row) = cells.into_row() else {
                return Err(unreadable(format!(
                    "line {} has a status this tool does not write",
                    index.saturating_add(2)
                )));
            };
            let recorded_by = runs
                .iter()
                .rposition(|run| run.started_at <= row.completed_at)
                .unwrap_or(runs.len().saturating_sub(1));
            rows.push(Row {
                row: row.row,
                environment_id: row.environment_id,
                user_id: row.user_id,
                status: row.status,
                recorded_by,
            });
        }
        let by_number = rows
            .iter()
            .enumerate()
            .filter_map(|(index, row)| row.row.map(|number| (number, index)))
            .collect();
        let mut by_run_and_user = HashMap::new();
        for (index, row) in rows.iter().enumerate().filter(|(_, row)| row.changed()) {
            by_run_and_user
                .entry((row.recorded_by, row.user_id.trim().to_ascii_lowercase()))
                .or_insert(index);
        }
        Ok(Self {
            findings: vec![None; rows.len()],
            rows,
            by_number,
            by_run_and_user,
            unaccounted: Vec::new(),
            runs: runs
                .iter()
                .enumerate()
                .filter_map(|(index, run)| run.run_id.clone().map(|id| (id, index)))
                .collect(),
            seen: HashSet::new(),
            activities_read: 0,
            activities_of_runs: 0,
        })
    }

    /// The environments the rows name (their IDs as PingOne spells them).
    pub fn environments(&self) -> BTreeSet<uuid::Uuid> {
        self.rows
            .iter()
            .filter_map(|row| crate::plan::parse_id(&row.environment_id))
            .collect()
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Rows the results say were changed whose change PingOne has not shown yet.
    pub fn pending(&self) -> usize {
        self.rows
            .iter()
            .zip(&self.findings)
            .filter(|(row, finding)| {
                row.changed() && !finding.as_ref().is_some_and(|f| f.succeeded)
            })
            .count()
    }

    /// Folds one activity read from `environment`'s log into the findings.
    pub fn note(&mut self, activity: &Activity, environment: uuid::Uuid) {
        if !self.seen.insert(activity.key()) {
            return;
        }
        self.activities_read = self.activities_read.saturating_add(1);
        let Some((session, run)) = activity
            .session()
            .and_then(|session| self.runs.get(session).map(|run| (session, *run)))
        else {
            return;
        };
        self.activities_of_runs = self.activities_of_runs.saturating_add(1);
        let unaccounted = |verdict, row, detail: String| Unaccounted {
            row,
            environment_id: environment.to_string(),
            user_id: activity.user().to_owned(),
            verdict,
            finding: Finding::of(activity),
            detail,
        };
        let change_verdict = if activity.succeeded() {
            Verdict::NotInResults
        } else {
            Verdict::Consistent
        };
        let number = match named_row(activity, session) {
            Ok(number) => number,
            Err(no_row) => {
                self.unaccounted
                    .push(unaccounted(change_verdict, None, no_row.to_string()));
                return;
            }
        };
        let index = match self.row_of(activity, run, number) {
            Ok(index) => index,
            Err(no_row) => {
                self.unaccounted.push(unaccounted(
                    change_verdict,
                    Some(number),
                    no_row.to_string(),
                ));
                return;
            }
        };
        let row = &self.rows[index];
        if run != row.recorded_by {
            if activity.succeeded() {
                self.unaccounted.push(unaccounted(
                    Verdict::NotInResults,
                    Some(number),
                    format!(
                        "run {session} also changed row {number}, and the results hold another run's outcome for it: an answer never recorded (a run killed between PingOne's answer and its record), or a row granted again on --resume"
                    ),
                ));
            }
            return;
        }
        let finding = &mut self.findings[index];
        if finding.as_ref().is_none_or(|found| !found.succeeded) {
            *finding = Some(Finding::of(activity));
        }
    }

    /// The row an activity of `run` naming row `number` is about: that row when its user is the
    /// activity's, or else the row `run` recorded for that user (renumbered since); or why none.
    fn row_of(&self, activity: &Activity, run: usize, number: u64) -> Result<usize, NoRow> {
        let numbered = self.by_number.get(&number).copied();
        let found = numbered
            .filter(|&index| activity.names_user(&self.rows[index].user_id))
            .or_else(|| {
                let user = activity.user().trim().to_ascii_lowercase();
                self.by_run_and_user.get(&(run, user)).copied()
            });
        found.ok_or_else(|| match numbered {
            None => NoRow::NotHeld(number),
            Some(index) => NoRow::OtherUser {
                number,
                logged: activity.user().to_owned(),
                recorded: self.rows[index].user_id.clone(),
            },
        })
    }

    /// Each row's verdict, then each unaccounted activity's, written as the reconciliation file
    /// at `path` (replaced whole); the counts of each verdict.
    pub fn write(
        &self,
        path: &Path,
        nothing_logged: bool,
    ) -> std::io::Result<HashMap<Verdict, u64>> {
        let mut counts: HashMap<Verdict, u64> = Verdict::ALL.iter().map(|v| (*v, 0)).collect();
        let mut partial = path.as_os_str().to_owned();
        partial.push(format!(".{}.partial", std::process::id()));
        let partial = std::path::PathBuf::from(partial);
        let mut writer = csv::Writer::from_path(&partial)?;
        writer.write_record(AUDIT_COLUMNS)?;
        for (row, finding) in self.rows.iter().zip(&self.findings) {
            let (verdict, detail) = judge(row, finding.as_ref(), nothing_logged);
            *counts.entry(verdict).or_default() += 1;
            let number = row.row.map(|row| row.to_string()).unwrap_or_default();
            write_line(
                &mut writer,
                [
                    &number,
                    &row.environment_id,
                    &row.user_id,
                    row.status.as_str(),
                ],
                verdict,
                finding.as_ref(),
                &detail,
            )?;
        }
        for extra in &self.unaccounted {
            *counts.entry(extra.verdict).or_default() += 1;
            let number = extra.row.map(|row| row.to_string()).unwrap_or_default();
            write_line(
                &mut writer,
                [&number, &extra.environment_id, &extra.user_id, ""],
                extra.verdict,
                Some(&extra.finding),
                &extra.detail,
            )?;
        }
        writer.flush()?;
        drop(writer);
        std::fs::rename(&partial, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })?;
        Ok(counts)
    }
}

/// Why an activity of a checked run is about none of the results' rows: the line's `detail`.
#[derive(Debug, thiserror::Error)]
enum NoRow {
    #[error(
        "a request of the run that names no row (transaction {0:?}): a lookup or listing, not a row's change, unless PingOne logged it as one"
    )]
    NoneNamed(String),
    #[error("the transaction {0:?} names no row number")]
    NotANumber(String),
    #[error("PingOne logged a request for row {0}, which the results do not hold")]
    NotHeld(u64),
    #[error(
        "PingOne logged row {number}'s request for user {logged:?}; the results' row {number} is user {recorded}"
    )]
    OtherUser {
        number: u64,
        logged: String,
        recorded: String,
    },
}

/// The row number an activity of the run `session` names in its transaction
/// (`<session>-row-<n>`), or what it names instead.
fn named_row(activity: &Activity, session: &str) -> Result<u64, NoRow> {
    let transaction = activity.transaction().unwrap_or("");
    match transaction
        .strip_prefix(session)
        .and_then(|rest| rest.strip_prefix("-row-"))
    {
        Some(number) => number
            .parse()
            .map_err(|_| NoRow::NotANumber(transaction.to_owned())),
        None => Err(NoRow::NoneNamed(transaction.to_owned())),
    }
}

/// A row's verdict and what explains it.
fn judge(row: &Row, finding: Option<&Finding>, nothing_logged: bool) -> (Verdict, String) {
    match (row.changed(), finding) {
        (true, Some(found)) if found.succeeded => (Verdict::Confirmed, String::new()),
        (true, Some(found)) => (
            Verdict::NotInPingone,
            format!(
                "PingOne logged this row's request as {} ({}), not as a change",
                found.result, found.description
            ),
        ),
        (true, None) if nothing_logged => (
            Verdict::NotInPingone,
            "PingOne's audit log holds no activity of this run at all: nothing could be confirmed (see the summary)".to_owned(),
        ),
        (true, None) => (
            Verdict::NotInPingone,
            "PingOne's audit log holds no activity for this row's request".to_owned(),
        ),
        (false, Some(found)) if found.succeeded => (
            Verdict::NotInResults,
            format!(
                "PingOne logged this row's request as a successful change; the results record it {}",
                row.status.as_str()
            ),
        ),
        (false, _) => (Verdict::Consistent, String::new()),
    }
}

fn write_line(
    writer: &mut csv::Writer<std::fs::File>,
    [row, environment, user, status]: [&str; 4],
    verdict: Verdict,
    finding: Option<&Finding>,
    detail: &str,
) -> csv::Result<()> {
    let found = |cell: fn(&Finding) -> &str| finding.map_or("", cell);
    let cells = [
        row,
        environment,
        user,
        status,
        verdict.as_str(),
        found(|f| &f.result),
        found(|f| &f.recorded_at),
        found(|f| &f.activity_id),
        found(|f| &f.correlation_id),
        detail,
    ];
    let escaped = cells.map(escape_formula);
    writer.write_record(escaped.iter().map(|cell| cell.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: [&str; 5] = [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
        "00000000-0000-4000-8000-000000000004",
        "00000000-0000-4000-8000-000000000005",
    ];
    const ENV: &str = "4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01";

    fn run(id: &str, started_at: &str) -> serde_json::Value {
        serde_json::json!({
            "run_id": id, "tool_version": "0", "api_url": "https://api.pingone.com/v1",
            "simulated": false, "dry_run": false, "kind": "grant", "operator": "o", "input": "i",
            "until": null, "started_at": started_at, "finished_at": null, "summary": null,
        })
    }

    fn activity(session: &str, transaction: &str, user: &str, status: &str) -> Activity {
        serde_json::from_value(serde_json::json!({
            "id": format!("{transaction}/{user}/{status}"),
            "externalCorrelation": { "sessionId": session, "transactionId": transaction },
            "resources": [{ "type": "USER", "id": user }],
            "result": { "status": status },
        }))
        .unwrap_or_default()
    }

    #[test]
    fn each_activity_finds_its_row_by_run_transaction_and_user_even_when_the_input_was_renumbered()
    {
        let folder = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let results = folder.path().join("x.results.csv");
        let (a, b) = ("2026-12-08T10:00:00.000Z", "2026-12-08T11:00:00.000Z");
        let (in_a, in_b) = ("2026-12-08T10:00:01.000Z", "2026-12-08T11:00:01.000Z");
        let mut text = String::from(
            "row,environment_id,user_id,status,http_status,bypass_mfa_enabled_until,error_code,error_message,completed_at\n",
        );
        for (row, user, status, at) in [
            ("2", U[0], "succeeded", in_a),
            ("3", U[1], "succeeded", in_b),
            ("4", U[2], "succeeded", in_a),
            ("5", U[3], "failed", in_b),
            ("", U[4], "succeeded", in_a),
        ] {
            text.push_str(&format!("{row},{ENV},{user},{status},200,,,,{at}\n"));
        }
        std::fs::write(&results, text).unwrap_or_else(|error| panic!("{error}"));
        let manifest: Manifest = serde_json::from_value({
            let mut latest = run("B", b);
            latest["earlier_runs"] = serde_json::json!([run("A", a)]);
            latest
        })
        .unwrap_or_else(|error| panic!("a record: {error}"));
        let mut ledger =
            Ledger::read(&results, &manifest).unwrap_or_else(|error| panic!("{error}"));
        let environment = crate::plan::parse_id(ENV).unwrap_or_default();
        for seen in [
            activity("A", "A-row-2", U[0], "SUCCESS"),
            activity("B", "B-row-3", U[1], "SUCCESS"),
            activity("A", "A-row-3", U[1], "SUCCESS"),
            activity("A", "A-row-9", U[2], "SUCCESS"),
            activity("B", "B-row-5", U[3], "SUCCESS"),
            activity("A", "A-row-7", U[4], "SUCCESS"),
            activity("A", "A-lookup-1", U[0], "FAILED"),
            activity("C", "C-row-2", U[0], "SUCCESS"),
            activity("A", "A-row-2", U[0], "SUCCESS"),
        ] {
            ledger.note(&seen, environment);
        }
        assert_eq!((ledger.activities_read, ledger.activities_of_runs), (8, 7));
        let written = folder.path().join("x.results.audit.csv");
        ledger
            .write(&written, false)
            .unwrap_or_else(|error| panic!("{error}"));
        let mut reader = csv::Reader::from_path(&written).unwrap_or_else(|error| panic!("{error}"));
        let lines: Vec<(String, String, String)> = reader
            .records()
            .map(|record| {
                let record = record.unwrap_or_default();
                (
                    record[0].to_owned(),
                    record[3].to_owned(),
                    record[4].to_owned(),
                )
            })
            .collect();
        let line = |row: &str, status: &str, verdict: &str| {
            (row.to_owned(), status.to_owned(), verdict.to_owned())
        };
        assert_eq!(
            lines,
            [
                line("2", "succeeded", "CONFIRMED"),
                line("3", "succeeded", "CONFIRMED"),
                line("4", "succeeded", "CONFIRMED"),
                line("5", "failed", "NOT_IN_RESULTS"),
                line("", "succeeded", "CONFIRMED"),
                line("3", "", "NOT_IN_RESULTS"),
                line("", "", "CONSISTENT"),
            ]
        );
    }
}
