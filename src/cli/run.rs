//! `run`'s and `status`'s flags, and their conversion, once, into a validated `RunConfig`, so
//! that every mistake on the command line is reported before anything runs and names the flag
//! to fix.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use uuid::Uuid;

use crate::cli::connection::{
    ACCESS_TOKEN_VARIABLE, CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE, ConnectionArgs,
    ConnectionError, CredentialSettings, ENVIRONMENT_ID_VARIABLE, check_proxy_settings,
};
use crate::cli::simulate::simulated_tenant;
use crate::cli::values::{parse_max_window, parse_resume_margin};
use crate::config::{Rows, RunConfig, Target};
use crate::defaults;
use crate::expiry::{UntilProblem, Zone, parse_until};
use crate::gateway::client::RetryPolicy;
use crate::input::{HiddenRowsChoice, InputSource, ReadOptions};
use crate::plan::{Rules, parse_id};
use crate::record::progress::ProgressMode;
use crate::record::writer::OutputTarget;
use crate::row::Report;
use crate::selection::{Collection, Selection};

/// The rows a command reads, where its report goes and how requests reach PingOne: what `run`
/// and `status` share.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").args(["population", "group"])))]
pub struct RowsArgs {
    /// The users: a CSV path, or - for standard input. Rows name users by userID, username or
    /// email. Instead of INPUT: --population or --group.
    #[arg(
        value_name = "INPUT",
        required_unless_present = "selection",
        conflicts_with = "selection"
    )]
    pub input: Option<String>,

    /// Instead of INPUT: every member of this population (its ID or name) in --env, in the
    /// order PingOne lists them. Needs --max-users (and, to grant, --until).
    #[arg(long, value_name = "ID|NAME", requires = "max_users")]
    pub population: Option<String>,

    /// Instead of INPUT: every member of this group (its ID or name) in --env. Needs
    /// --max-users (and, to grant, --until).
    #[arg(long, value_name = "ID|NAME", requires = "max_users")]
    pub group: Option<String>,

    /// With --population or --group: the most users the selection may hold. A larger one
    /// sends nothing and exits 2, saying how many users it holds.
    #[arg(long, value_name = "N", requires = "selection", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_users: Option<u32>,

    /// Results CSV; - for standard output. Default, beside the input: <input stem>.results.csv
    /// (bypass.results.csv for standard input); with --simulate,
    /// <input stem>.rehearsal.results.csv, so a rehearsal never takes a real run's place; for
    /// status, <input stem>.status.csv.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<String>,

    /// Replace the results file if it already exists.
    #[arg(long)]
    pub overwrite: bool,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Environment for rows that leave it empty, or for files without that column.
    #[arg(long = "env", value_name = "UUID")]
    pub environment: Option<String>,

    /// The sheet of a workbook INPUT (.xlsx, .xlsm, .xlsb, .xls, .ods) to read: its name, or
    /// its number (1 = the first). Default: the first sheet.
    #[arg(long, value_name = "NAME|N")]
    pub sheet: Option<String>,

    /// Rows a workbook's sheet hides (by hand or by a filter): refuse the sheet naming them,
    /// skip them as Excel shows the sheet, or include them.
    #[arg(long, value_enum, default_value_t = HiddenRowsChoice::Refuse)]
    pub hidden_rows: HiddenRowsChoice,

    /// Decode a CSV INPUT that is not UTF-8 from this encoding (any WHATWG label, e.g.
    /// windows-1252); UTF-16 with a byte-order mark is read without it.
    #[arg(long, value_name = "LABEL")]
    pub encoding: Option<String>,

    /// Accept an INPUT with a header and no data rows (otherwise exit 2, "no rows").
    #[arg(long)]
    pub allow_empty: bool,

    /// With a results file of this tool as INPUT: keep only the rows with these statuses, e.g.
    /// failed,not_attempted.
    #[arg(long, value_name = "STATUS,…", value_delimiter = ',', value_parser = ["succeeded", "failed", "invalid", "skipped", "not_attempted", "planned"])]
    pub only: Vec<String>,

    /// Run against the built-in PingOne simulator; needs no credentials.
    #[arg(long)]
    pub simulate: bool,

    /// The API is a simulator another process of this tool started (`serve --simulate` runs
    /// each of its runs so): the run is recorded as a rehearsal. Not for people.
    #[arg(long, hide = true)]
    pub rehearsal: bool,

    /// Also write the summary as JSON here (not the input or the results; an existing file
    /// only with --overwrite).
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,

    /// Progress bar on standard error; auto = only on a terminal.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

/// The flags of granting alone: the expiry, its bound, resuming and dry runs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Granting")]
pub struct GrantArgs {
    /// Expiry for rows that leave it empty, or for files without that column.
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub until: Option<String>,

    /// What a date or time written without a zone means (date cells of a workbook, and
    /// YYYY-MM-DD[ HH:MM[:SS]] in a CSV): UTC, local, or an IANA name such as America/New_York.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub timezone: String,

    /// Refuse any expiry later than run start + this; at most 366d.
    #[arg(long, value_name = "DURATION", default_value = defaults::MAX_WINDOW_TEXT, value_parser = parse_max_window)]
    pub max_window: Duration,

    /// Validate and write the plan; send nothing, not even a token request.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: also get a token and look usernames, emails, populations and groups up
    /// (reads only, never a PUT), so that the plan shows the user ID each row would grant.
    #[arg(long, requires = "dry_run")]
    pub resolve: bool,

    /// Continue an earlier run from its results file (-o/--output), its journal and partial
    /// files: a row an earlier run granted is not sent again while that bypass holds and the
    /// row asks the same expiry; every other row is processed.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,

    /// With --resume: an earlier bypass that ends within this is granted again.
    #[arg(long, value_name = "DURATION", default_value = defaults::RESUME_MARGIN_TEXT, value_parser = parse_resume_margin)]
    pub resume_margin: Duration,

    /// With --resume: resume results that were made against another API (or the simulator).
    #[arg(long, requires = "resume")]
    pub resume_any_api: bool,
}

/// `run`: the rows, and how to grant them.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub rows: RowsArgs,

    #[command(flatten)]
    pub grant: GrantArgs,
}

/// `status`: the rows only; nothing is granted, so no expiry, resume or dry run applies.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub rows: RowsArgs,
}

impl Default for GrantArgs {
    /// What a command that grants nothing stands on: no expiry, the default bound.
    fn default() -> Self {
        Self {
            until: None,
            timezone: "UTC".to_owned(),
            max_window: defaults::MAX_WINDOW,
            dry_run: false,
            resolve: false,
            resume: false,
            resume_margin: defaults::RESUME_MARGIN,
            resume_any_api: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunConfigError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(
        "--env {0:?} is not a UUID (expected 8-4-4-4-12 hex digits, like 4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01)"
    )]
    Environment(String),
    #[error("--until {0:?} {1}")]
    UntilForm(String, String),
    #[error(
        "--timezone {0:?} is not a time zone: write UTC, local, or an IANA name such as America/New_York or Europe/Berlin"
    )]
    Timezone(String),
    #[error(
        "--encoding {0:?} is not an encoding label: write one such as windows-1252, iso-8859-1, shift_jis or utf-16le"
    )]
    Encoding(String),

    #[error("{0}")]
    UntilWindow(String),
    #[error("--{0} needs --env <UUID>: the environment to list it in")]
    SelectionNeedsEnvironment(&'static str),
    #[error("--{0} needs --until <WHEN>: every member gets the same expiry")]
    SelectionNeedsUntil(&'static str),
    #[error(
        "--dry-run sends nothing, so it cannot list the members of --{0}; add --resolve to list them (reads only, never a PUT)"
    )]
    SelectionDryRun(&'static str),
    #[error("the results file {0} would overwrite the input; choose another with -o/--output")]
    OutputIsInput(PathBuf),
    #[error(
        "--progress events writes its events on standard output, where -o - would write the results; write the results to a file with -o PATH"
    )]
    EventsOnStdout,
    #[error("--summary-json {path} is the {what}; choose another path")]
    SummaryIsRunFile { path: PathBuf, what: &'static str },
    #[error(
        "--summary-json {0} already exists; pass --overwrite to replace it, or choose another path"
    )]
    SummaryExists(PathBuf),
}

impl RunConfigError {
    /// The setting that would fix this error, if one would.
    pub fn setting(&self) -> Option<crate::outcome::Setting> {
        use crate::outcome::Setting;
        match self {
            Self::Environment(_) => Some(Setting::Environment),
            Self::UntilForm(..) | Self::UntilWindow(_) => Some(Setting::Expiry),
            Self::Timezone(_) => Some(Setting::TimeZone),
            Self::Encoding(_) => Some(Setting::Encoding),
            _ => None,
        }
    }
}

impl RunArgs {
    /// The run these flags describe, with relative expiries resolved against `run_start` and
    /// credentials from `settings`.
    pub fn to_config(
        &self,
        run_start: DateTime<Utc>,
        settings: &CredentialSettings,
    ) -> Result<RunConfig, RunConfigError> {
        Flags {
            rows: &self.rows,
            grant: &self.grant,
            report: Report::Grants,
        }
        .to_config(run_start, settings)
    }
}

impl StatusArgs {
    /// The read-back these flags describe: `run`'s pipeline with a GET for each row.
    pub fn to_config(
        &self,
        run_start: DateTime<Utc>,
        settings: &CredentialSettings,
    ) -> Result<RunConfig, RunConfigError> {
        Flags {
            rows: &self.rows,
            grant: &GrantArgs::default(),
            report: Report::Status,
        }
        .to_config(run_start, settings)
    }
}

/// One command's flags seen together, whichever command gave them.
struct Flags<'a> {
    rows: &'a RowsArgs,
    grant: &'a GrantArgs,
    report: Report,
}

impl Flags<'_> {
    fn to_config(
        &self,
        run_start: DateTime<Utc>,
        settings: &CredentialSettings,
    ) -> Result<RunConfig, RunConfigError> {
        let default_environment = self
            .rows
            .environment
            .as_deref()
            .map(|text| {
                parse_id(text.trim()).ok_or_else(|| RunConfigError::Environment(text.to_owned()))
            })
            .transpose()?;
        let input = self.input_source(default_environment)?;
        let output = self.output_target(&input)?;
        self.check_summary_path(&input, &output)?;
        let zone = Zone::parse(&self.grant.timezone)
            .ok_or_else(|| RunConfigError::Timezone(self.grant.timezone.clone()))?;
        let rules = Rules {
            run_start,
            max_window: self.grant.max_window,
            max_window_text: humantime::format_duration(self.grant.max_window).to_string(),
            default_environment,
            default_until: None,
            zone,
        };
        let default_until = match &self.grant.until {
            None => None,
            Some(text) => {
                let until =
                    parse_until(text, run_start, zone).map_err(|problem: UntilProblem| {
                        RunConfigError::UntilForm(text.clone(), problem.explain())
                    })?;
                rules
                    .check_window("--until", text, until)
                    .map_err(RunConfigError::UntilWindow)?;
                Some((text.clone(), until))
            }
        };
        check_proxy_settings()?;
        let connects = !self.grant.dry_run || self.grant.resolve;
        let target = if self.rows.simulate && connects {
            Target::Simulator(Box::new(simulated_tenant()))
        } else if self.rows.simulate {
            Target::DryRun {
                would_send: "to the built-in simulator".to_owned(),
            }
        } else {
            let api_url = self.rows.connection.api_url()?;
            match (!connects, self.rows.connection.credentials(settings)) {
                (false, credentials) => Target::PingOne {
                    api_url,
                    credentials: credentials?,
                },
                // A dry run goes through every check that needs no network, so that a "dry
                // run first" runbook catches a configuration mistake; it names what it would
                // use, never a value.
                (true, Ok(credentials)) => Target::DryRun {
                    would_send: format!(
                        "to {api_url} with {}",
                        self.rows.connection.describe(&credentials)
                    ),
                },
                (true, Err(ConnectionError::NoCredentials)) => Target::DryRun {
                    would_send: format!(
                        "to {api_url}, but no credentials are set: a real run needs {CLIENT_ID_VARIABLE}, {CLIENT_SECRET_VARIABLE} and {ENVIRONMENT_ID_VARIABLE}, or {ACCESS_TOKEN_VARIABLE}, or --token-file"
                    ),
                },
                (true, Err(error)) => return Err(error.into()),
            }
        };
        Ok(RunConfig {
            overwrite: self.rows.overwrite,
            rate: self.rows.connection.rate,
            concurrency: usize::from(self.rows.connection.concurrency),
            retry: RetryPolicy {
                retries: self.rows.connection.retries,
                ..RetryPolicy::default()
            },
            timeout: self.rows.connection.timeout,
            outage_patience: self.rows.connection.outage_patience,
            rules: Rules {
                default_until,
                ..rules
            },
            progress: self.rows.progress,
            summary_json: self.rows.summary_json.clone(),
            resume: self.grant.resume,
            resume_margin: self.grant.resume_margin,
            resume_any_api: self.grant.resume_any_api,
            reads_only: self.grant.dry_run && self.grant.resolve,
            rehearsal: self.rows.rehearsal,
            read: self.read_options()?,
            report: self.report,
            extra_roots: self.rows.connection.extra_roots()?,
            ..RunConfig::new(input, output, target)
        })
    }

    fn read_options(&self) -> Result<ReadOptions, RunConfigError> {
        let encoding = self
            .rows
            .encoding
            .as_deref()
            .map(|label| {
                encoding_rs::Encoding::for_label(label.trim().as_bytes())
                    .ok_or_else(|| RunConfigError::Encoding(label.to_owned()))
            })
            .transpose()?;
        Ok(ReadOptions {
            sheet: self.rows.sheet.clone(),
            encoding,
            allow_empty: self.rows.allow_empty,
            only: self.rows.only.clone(),
            hidden_rows: self.rows.hidden_rows,
        })
    }

    /// The file or standard input, or the population or group whose members are the rows.
    fn input_source(&self, environment: Option<Uuid>) -> Result<Rows, RunConfigError> {
        let (collection, named, flag) = match (&self.rows.population, &self.rows.group) {
            (Some(named), _) => (Collection::Population, named, "population"),
            (None, Some(named)) => (Collection::Group, named, "group"),
            (None, None) => {
                return Ok(Rows::Input(InputSource::from_argument(
                    self.rows.input.as_deref().unwrap_or("-"),
                )));
            }
        };
        let Some(environment_id) = environment else {
            return Err(RunConfigError::SelectionNeedsEnvironment(flag));
        };
        if self.report == Report::Grants && self.grant.until.is_none() {
            return Err(RunConfigError::SelectionNeedsUntil(flag));
        }
        if self.grant.dry_run && !self.grant.resolve {
            return Err(RunConfigError::SelectionDryRun(flag));
        }
        Ok(Rows::Selection(Selection {
            collection,
            named: named.clone(),
            environment_id,
            max_users: self.rows.max_users.map_or(0, |most| most as usize),
        }))
    }

    fn output_target(&self, input: &Rows) -> Result<OutputTarget, RunConfigError> {
        let target = match (self.rows.output.as_deref(), input) {
            (Some("-"), _) => OutputTarget::Stdout,
            (Some(path), _) => OutputTarget::File(PathBuf::from(path)),
            (None, Rows::Input(InputSource::Stdin)) => {
                OutputTarget::File(PathBuf::from(format!("bypass.{}", self.results_suffix())))
            }
            (None, Rows::Selection(selection)) => OutputTarget::File(PathBuf::from(format!(
                "{}.{}",
                selection.file_stem(),
                self.results_suffix()
            ))),
            (None, Rows::Input(InputSource::File(path))) => {
                let stem = path
                    .file_stem()
                    .map_or_else(|| "bypass".into(), |stem| stem.to_string_lossy());
                OutputTarget::File(path.with_file_name(format!("{stem}.{}", self.results_suffix())))
            }
        };
        if target == OutputTarget::Stdout && self.rows.progress == ProgressMode::Events {
            return Err(RunConfigError::EventsOnStdout);
        }
        if let (OutputTarget::File(output), Rows::Input(InputSource::File(input))) =
            (&target, input)
            && same_file(output, input)
        {
            return Err(RunConfigError::OutputIsInput(output.clone()));
        }
        Ok(target)
    }

    /// A rehearsal's results are named apart, so that a real `--resume` never takes them for
    /// its own.
    fn results_suffix(&self) -> &'static str {
        if self.report == Report::Status {
            "status.csv"
        } else if self.rows.simulate && !self.grant.dry_run {
            "rehearsal.results.csv"
        } else {
            "results.csv"
        }
    }

    fn check_summary_path(
        &self,
        input: &Rows,
        output: &OutputTarget,
    ) -> Result<(), RunConfigError> {
        let Some(summary) = &self.rows.summary_json else {
            return Ok(());
        };
        let named = |what| RunConfigError::SummaryIsRunFile {
            path: summary.clone(),
            what,
        };
        if let Rows::Input(InputSource::File(input)) = input
            && (summary == input || same_file(summary, input))
        {
            return Err(named("input"));
        }
        if let OutputTarget::File(results) = output
            && (summary == results || same_file(summary, results))
        {
            return Err(named("results file"));
        }
        if summary.exists() && !self.rows.overwrite {
            return Err(RunConfigError::SummaryExists(summary.clone()));
        }
        Ok(())
    }
}

/// Whether two paths name one file, however it is reached (another spelling, a symbolic or a
/// hard link): on Unix by device and inode.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
            return false;
        };
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use secrecy::SecretString;

    use super::*;
    use crate::gateway::auth::Credentials;

    #[derive(Debug, clap::Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn run_args(args: &[&str]) -> RunArgs {
        let mut argv = vec!["run", "users.csv"];
        argv.extend_from_slice(args);
        match Run::try_parse_from(argv) {
            Ok(parsed) => parsed.args,
            Err(error) => panic!("not a run: {error}"),
        }
    }

    fn worker_app() -> CredentialSettings {
        CredentialSettings {
            access_token: None,
            client_id: Some("client".into()),
            client_secret: Some(SecretString::from("secret".to_owned())),
            environment_id: Some("4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01".into()),
        }
    }

    fn credentials_of(
        args: &RunArgs,
        settings: &CredentialSettings,
    ) -> Result<Credentials, RunConfigError> {
        args.to_config(Utc::now(), settings)
            .map(|config| match config.target {
                Target::PingOne { credentials, .. } => credentials,
                _ => panic!("not a PingOne target"),
            })
    }

    #[test]
    fn client_credentials_use_the_regions_token_url_unless_auth_url_is_given() {
        let eu = credentials_of(&run_args(&["--region", "eu"]), &worker_app());
        assert!(
            matches!(&eu, Ok(Credentials::Client(c)) if c.token_url == "https://auth.pingone.eu/4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01/as/token"),
            "{:?}",
            eu.as_ref().err()
        );
        let own = credentials_of(
            &run_args(&["--auth-url", "https://auth.example.org/"]),
            &worker_app(),
        );
        assert!(
            matches!(&own, Ok(Credentials::Client(c)) if c.token_url == "https://auth.example.org/4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01/as/token")
        );
    }

    #[test]
    fn a_ready_token_wins_over_client_credentials() {
        let settings = CredentialSettings {
            access_token: Some(SecretString::from("ready".to_owned())),
            ..worker_app()
        };
        assert!(matches!(
            credentials_of(&run_args(&[]), &settings),
            Ok(Credentials::Token(_))
        ));
    }

    #[test]
    fn the_api_url_must_be_https_unless_it_is_loopback() {
        for (url, accepted) in [
            ("https://api.pingone.ca/v1", true),
            ("http://127.0.0.1:8080/v1", true),
            ("http://localhost/v1", true),
            ("http://api.pingone.com/v1", false),
            ("ftp://api.pingone.com/v1", false),
            ("not a url", false),
        ] {
            let result = credentials_of(&run_args(&["--api-url", url]), &worker_app());
            assert_eq!(result.is_ok(), accepted, "{url}");
        }
    }

    #[test]
    fn a_command_line_without_flags_runs_with_the_defaults_of_run_config_new() {
        let config = run_args(&["--dry-run"])
            .to_config(Utc::now(), &CredentialSettings::default())
            .expect("a dry run needs no credentials");
        let new = RunConfig::new(
            InputSource::Stdin,
            OutputTarget::Stdout,
            Target::DryRun {
                would_send: String::new(),
            },
        );
        assert_eq!(
            (
                config.rate,
                config.concurrency,
                config.retry,
                config.timeout,
                config.rules.max_window,
                config.resume_margin,
                config.reorder_window,
            ),
            (
                new.rate,
                new.concurrency,
                new.retry,
                new.timeout,
                new.rules.max_window,
                new.resume_margin,
                new.reorder_window,
            )
        );
    }
}
