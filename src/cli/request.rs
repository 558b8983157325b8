//! The one typed request every front end builds: what to read, what to do to each row (grant,
//! check, plan), where requests go and how fast. The command line makes one of its flags
//! (`cli::run`); the upload page builds one of its own options and the form's fields and hands
//! it to its child process as JSON, so that no typed value is turned back into command-line
//! text. `to_config` checks it, once, into the `RunConfig` the pipeline runs, and every
//! mistake names the flag (or, through `setting`, the form field) to fix.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::cli::connection::{
    ACCESS_TOKEN_VARIABLE, CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE, ConnectionError,
    CredentialSettings, ENVIRONMENT_ID_VARIABLE, check_proxy_settings,
};
use crate::cli::run::{EndArgs, GrantArgs, RowsArgs, RunArgs, StatusArgs};
use crate::config::{Mode, Rows, RunConfig, Target};
use crate::expiry::{UntilProblem, Zone, parse_until};
use crate::gateway::client::RetryPolicy;
use crate::input::{InputSource, ReadOptions};
use crate::plan::{Rules, parse_id};
use crate::record::progress::ProgressMode;
use crate::record::writer::OutputTarget;
use crate::selection::{Collection, Selection};

/// The request format's version. A page and the child process it starts may be of different
/// builds (the binary replaced while the page runs): a request of another version is refused,
/// saying both, rather than read as something it is not. Raised whenever a field changes.
pub const REQUEST_VERSION: u32 = 1;

/// A run as a front end asks for it: typed values, not yet checked against each other or the
/// machine (files, credentials).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunRequest {
    /// `REQUEST_VERSION` of the build that wrote it.
    pub version: u32,
    pub mode: Mode,
    /// The rows, where the report goes, and the connection.
    pub rows: RowsArgs,
    /// The expiry, its bound and resuming; a check takes the defaults.
    pub grant: GrantArgs,
}

impl RunArgs {
    /// The run these flags ask for: a grant, or with `--dry-run` a plan.
    pub fn request(&self) -> RunRequest {
        RunRequest {
            version: REQUEST_VERSION,
            mode: if self.dry_run {
                Mode::Plan {
                    lookups: self.resolve,
                }
            } else {
                Mode::Grant
            },
            rows: self.rows.clone(),
            grant: self.grant.clone(),
        }
    }
}

impl StatusArgs {
    /// The read-back these flags ask for: `run`'s pipeline with a GET for each row.
    pub fn request(&self) -> RunRequest {
        RunRequest {
            version: REQUEST_VERSION,
            mode: Mode::Check,
            rows: self.rows.clone(),
            grant: GrantArgs::default(),
        }
    }
}

impl EndArgs {
    /// The end these flags ask for: `run`'s pipeline with a GET for each row, and the PUT that
    /// ends the bypass where the row decides so (none with `--dry-run`).
    pub fn request(&self) -> RunRequest {
        RunRequest {
            version: REQUEST_VERSION,
            mode: Mode::End {
                ending: crate::row::Ending {
                    within: self.within,
                    force: self.force,
                },
                dry_run: self.dry_run,
            },
            rows: self.rows.clone(),
            grant: GrantArgs {
                timezone: self.timezone.clone(),
                resume: self.resume,
                resume_any_api: self.any_api,
                ..GrantArgs::default()
            },
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
    UntilWindow(crate::plan::WindowProblem),
    /// `--simulate` reached the conversion with no simulator started for it: the front end
    /// starts one and points the connection at it before converting.
    #[error("--simulate: the built-in simulator was not started for this run")]
    SimulatorNotStarted,
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

impl RunRequest {
    /// The run this request describes, with relative expiries resolved against `run_start` and
    /// credentials from `settings`: every setting checked before anything is read or sent.
    pub fn to_config(
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
        let target = self.target(settings)?;
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
            rehearsal: self.rows.rehearsal,
            read: self.read_options()?,
            mode: self.mode,
            extra_roots: self.rows.connection.endpoint.extra_roots()?,
            ..RunConfig::new(input, output, target)
        })
    }

    /// Where requests go: PingOne with the credentials `settings` give, or, for a plan that
    /// sends nothing, a description of where a real run would send.
    fn target(&self, settings: &CredentialSettings) -> Result<Target, RunConfigError> {
        let connects = self.mode.connects();
        if self.rows.simulate {
            if connects {
                return Err(RunConfigError::SimulatorNotStarted);
            }
            return Ok(Target::Offline {
                would_send: "to the built-in simulator".to_owned(),
            });
        }
        let api_url = self.rows.connection.endpoint.api_url()?;
        Ok(
            match (
                !connects,
                self.rows.connection.endpoint.credentials(settings),
            ) {
                (false, credentials) => Target::PingOne {
                    api_url,
                    credentials: credentials?,
                },
                // A dry run goes through every check that needs no network, so that a "dry
                // run first" runbook catches a configuration mistake; it names what it would
                // use, never a value.
                (true, Ok(credentials)) => Target::Offline {
                    would_send: format!(
                        "to {api_url} with {}",
                        self.rows.connection.endpoint.describe(&credentials)
                    ),
                },
                (true, Err(ConnectionError::NoCredentials)) => Target::Offline {
                    would_send: format!(
                        "to {api_url}, but no credentials are set: a real run needs {CLIENT_ID_VARIABLE}, {CLIENT_SECRET_VARIABLE} and {ENVIRONMENT_ID_VARIABLE}, or {ACCESS_TOKEN_VARIABLE}, or --token-file"
                    ),
                },
                (true, Err(error)) => return Err(error.into()),
            },
        )
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
        if self.mode == Mode::Grant && self.grant.until.is_none() {
            return Err(RunConfigError::SelectionNeedsUntil(flag));
        }
        if self.mode == (Mode::Plan { lookups: false }) {
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
    /// its own; a dry run's plan too, so that the real run that follows it goes ahead.
    fn results_suffix(&self) -> &'static str {
        if self.mode == Mode::Check {
            "status.csv"
        } else if let Mode::End { dry_run, .. } = self.mode {
            if dry_run { "end-plan.csv" } else { "end.csv" }
        } else if self.mode.is_plan() {
            "plan.csv"
        } else if self.rows.simulate || self.rows.rehearsal {
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
        args.request()
            .to_config(Utc::now(), settings)
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
            .request()
            .to_config(Utc::now(), &CredentialSettings::default())
            .expect("a dry run needs no credentials");
        let new = RunConfig::new(
            InputSource::Stdin,
            OutputTarget::Stdout,
            Target::Offline {
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

    #[test]
    fn a_request_built_by_hand_takes_the_command_lines_defaults() {
        // The upload page builds its requests from `RowsArgs::default()`: a field whose default
        // drifted from the flag's would change what the page's runs do.
        let parsed = run_args(&[]);
        let (parsed, by_hand) = (
            serde_json::to_value(&parsed.rows).expect("serialises"),
            serde_json::to_value(RowsArgs {
                input: Some("users.csv".to_owned()),
                ..RowsArgs::default()
            })
            .expect("serialises"),
        );
        assert_eq!(parsed, by_hand);
        assert_eq!(
            serde_json::to_value(run_args(&[]).grant).expect("serialises"),
            serde_json::to_value(GrantArgs::default()).expect("serialises")
        );
    }

    #[test]
    fn a_request_crosses_a_process_boundary_as_json_unchanged() {
        let request = run_args(&[
            "--dry-run",
            "--resolve",
            "--until",
            "+4h",
            "--sheet=-Q4 old",
            "--hidden-rows",
            "skip",
            "--region",
            "eu",
            "--rate",
            "12.5",
            "--timeout",
            "2m",
        ])
        .request();
        let json = serde_json::to_string(&request).expect("serialises");
        let read: RunRequest = serde_json::from_str(&json).expect("reads back");
        assert_eq!(read.mode, Mode::Plan { lookups: true });
        assert_eq!(
            serde_json::to_value(&read).expect("serialises"),
            serde_json::to_value(&request).expect("serialises")
        );
        let config = read
            .to_config(Utc::now(), &worker_app())
            .expect("a valid request");
        assert_eq!(config.mode, Mode::Plan { lookups: true });
        assert_eq!(config.read.sheet.as_deref(), Some("-Q4 old"));
        assert_eq!(config.rate, 12.5);
        assert_eq!(config.timeout, std::time::Duration::from_secs(120));
        assert!(
            matches!(config.target, Target::PingOne { api_url, .. } if api_url == "https://api.pingone.eu/v1")
        );
    }

    #[test]
    fn a_plan_without_lookups_never_connects_and_a_simulated_grant_needs_its_simulator() {
        let plan = run_args(&["--dry-run"]).request();
        let config = plan
            .to_config(Utc::now(), &worker_app())
            .expect("a valid plan");
        assert!(matches!(config.target, Target::Offline { .. }));
        let rehearsal = run_args(&["--simulate"]).request();
        assert!(matches!(
            rehearsal.to_config(Utc::now(), &CredentialSettings::default()),
            Err(RunConfigError::SimulatorNotStarted)
        ));
    }
}
