//! The command line: clap definitions, and their conversion, once, into validated
//! configuration, so that every mistake on the command line is reported before anything runs
//! and names the flag to fix.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use uuid::Uuid;

use crate::auth::{ClientCredentials, Credentials};
use crate::client::{RetryPolicy, is_loopback_url};
use crate::config::{Rows, RunConfig, Target};
use crate::defaults;
use crate::expiry::{UntilProblem, Zone, parse_until};
use crate::input::{InputSource, ReadOptions};
use crate::pingone::Region;
use crate::plan::{Rules, parse_id};
use crate::record::log_format::LogFormat;
use crate::record::progress::ProgressMode;
use crate::record::writer::OutputTarget;
use crate::row::Report;
use crate::selection::{Collection, Selection};
use crate::simulator::{
    ClientAuthMethod, FaultChances, Population, RateLimit, SimulatorConfig, UsersFileError,
    read_missing_users_file, read_users_file,
};

#[derive(Debug, Parser)]
#[command(name = "pingone-bypass", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// How logs, status lines and the summary are written on standard error: text, or one
    /// JSON object a line (for a log collector).
    #[arg(long, global = true, value_enum, env = "PINGONE_BYPASS_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Grant an MFA bypass to every user in a CSV, under a rate limit, with retries, and
    /// write a results CSV with each row's outcome.
    ///
    /// Exit codes: 0 every row succeeded or was skipped (or a dry run found nothing invalid);
    /// 1 some rows failed, are invalid or were not attempted; 2 usage, configuration or input
    /// error, nothing sent; 3 no access token can be had (credentials rejected, or the token endpoint
    /// unreachable); 130 interrupted.
    Run(Box<RunArgs>),
    /// Serve the PingOne simulator on loopback until stopped (Ctrl-C or SIGTERM).
    ///
    /// Prints the API and auth URLs and a worker application's credentials, one per line, so
    /// that a runbook or `run` can be rehearsed against it.
    Simulate(Box<SimulateArgs>),
    /// Read back every row's current bypass (GET .../users/{id}/bypassMFA) and write
    /// <input stem>.status.csv: active, none, failed or invalid, with the time left.
    ///
    /// Takes run's inputs (IDs, usernames, emails, workbooks, --population/--group) and its
    /// connection, rate, retry and credential options; the expiry options do not apply.
    /// Exit codes: 0 every row was checked; 1 some failed or are invalid; 2 and 3 as for run.
    Status(Box<RunArgs>),
    /// Serve an upload page on loopback: upload a file, check the plan, confirm, follow the
    /// progress, download the results. Prints `url: http://127.0.0.1:PORT/?key=...`.
    Serve(Box<ServeArgs>),
    /// Check a results file against the SHA-256 its run record (<results stem>.manifest.json)
    /// holds.
    ///
    /// Exit codes: 0 the results are what the run wrote; 1 they were altered; 2 there is no
    /// run record, or it holds no SHA-256 (the run did not finish).
    Verify(VerifyArgs),
    /// Print a shell completion script on standard output.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on standard output.
    Man,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen; loopback only.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Where uploads, plans, results and their journals are kept, a folder per run.
    #[arg(long, value_name = "DIR", default_value = "./bypass-runs")]
    pub workdir: PathBuf,

    /// Run against a built-in PingOne simulator, started with the server; needs no credentials.
    #[arg(long)]
    pub simulate: bool,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Refuse any expiry later than run start + this.
    #[arg(long, value_name = "DURATION", default_value = defaults::MAX_WINDOW_TEXT, value_parser = parse_positive_duration)]
    pub max_window: Duration,
}

impl ServeArgs {
    /// The `run` flags every run from the page gets (the simulator's URLs instead of the
    /// region's when `simulator_urls` is given).
    pub fn run_flags(&self, simulator_urls: Option<(String, String)>) -> Vec<String> {
        let mut flags = vec![
            "--rate".to_owned(),
            self.connection.rate.to_string(),
            "--concurrency".to_owned(),
            self.connection.concurrency.to_string(),
            "--retries".to_owned(),
            self.connection.retries.to_string(),
            "--timeout".to_owned(),
            humantime::format_duration(self.connection.timeout).to_string(),
            "--max-window".to_owned(),
            humantime::format_duration(self.max_window).to_string(),
            "--region".to_owned(),
            format!("{:?}", self.connection.region).to_ascii_uppercase(),
        ];
        let (api_url, auth_url) = match simulator_urls {
            Some((api, auth)) => (Some(api), Some(auth)),
            None => (
                self.connection.api_url.clone(),
                self.connection.auth_url.clone(),
            ),
        };
        for (flag, value) in [
            ("--api-url", api_url),
            ("--auth-url", auth_url),
            (
                "--token-file",
                self.connection
                    .token_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
            ),
            (
                "--ca-file",
                self.connection
                    .ca_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
            ),
        ] {
            if let Some(value) = value {
                flags.push(flag.to_owned());
                flags.push(value);
            }
        }
        flags
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The results file.
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Where requests go, with which credentials, how fast and how patiently: the options `run`,
/// `status` and `serve` share.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// PingOne region: picks the API and auth bases.
    #[arg(long, value_enum, env = "PINGONE_REGION_CODE", hide_env_values = true, default_value_t = Region::Na, ignore_case = true)]
    pub region: Region,

    /// API base including /v1; overrides --region.
    #[arg(
        long,
        value_name = "URL",
        env = "PINGONE_API_URL",
        hide_env_values = true
    )]
    pub api_url: Option<String>,

    /// Auth base; the token URL is <auth-url>/<PINGONE_ENVIRONMENT_ID>/as/token. Overrides
    /// --region.
    #[arg(
        long,
        value_name = "URL",
        env = "PINGONE_AUTH_URL",
        hide_env_values = true
    )]
    pub auth_url: Option<String>,

    /// Read a ready access token from this file. Otherwise PINGONE_API_ACCESS_TOKEN, otherwise
    /// the worker application in PINGONE_CLIENT_ID, PINGONE_CLIENT_SECRET and
    /// PINGONE_ENVIRONMENT_ID (its environment). Secrets are read only from these.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// PEM certificates to trust beside the system's, for a corporate proxy that inspects TLS.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Most requests per second, all environments together.
    #[arg(long, value_name = "N", default_value_t = defaults::RATE, value_parser = parse_rate)]
    pub rate: f64,

    /// Most requests in flight.
    #[arg(long, value_name = "N", default_value_t = defaults::CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=defaults::MOST_CONCURRENCY))]
    pub concurrency: u16,

    /// Retries per row after the first attempt.
    #[arg(long, value_name = "N", default_value_t = defaults::RETRIES)]
    pub retries: u32,

    /// Per-request timeout, e.g. 30s or 2m.
    #[arg(long, value_name = "DURATION", default_value = defaults::TIMEOUT_TEXT, value_parser = parse_positive_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").args(["population", "group"])))]
pub struct RunArgs {
    /// The users: a CSV path, or - for standard input. Rows name users by userID, username or
    /// email. Instead of INPUT: --population or --group.
    #[arg(
        value_name = "INPUT",
        required_unless_present = "selection",
        conflicts_with = "selection"
    )]
    pub input: Option<String>,

    /// Instead of INPUT: every member of this population (its ID or name) in --env, in the
    /// order PingOne lists them. Needs --until and --max-users.
    #[arg(long, value_name = "ID|NAME", requires = "max_users")]
    pub population: Option<String>,

    /// Instead of INPUT: every member of this group (its ID or name) in --env. Needs --until
    /// and --max-users.
    #[arg(long, value_name = "ID|NAME", requires = "max_users")]
    pub group: Option<String>,

    /// With --population or --group: the most users the selection may hold. A larger one
    /// sends nothing and exits 2, saying how many users it holds.
    #[arg(long, value_name = "N", requires = "selection", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_users: Option<u32>,

    /// Results CSV; - for standard output. Default: <input stem>.results.csv beside the input
    /// (bypass.results.csv for standard input); with --simulate,
    /// <input stem>.rehearsal.results.csv, so a rehearsal never takes a real run's place.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<String>,

    /// Replace the results file if it already exists.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,

    /// Continue an earlier run from its results file (-o/--output), its journal and partial
    /// files: a row an earlier run granted is not sent again while that bypass holds and the
    /// row asks the same expiry; every other row is processed.
    #[arg(long)]
    pub resume: bool,

    /// With --resume: an earlier bypass that ends within this is granted again.
    #[arg(long, value_name = "DURATION", default_value = defaults::RESUME_MARGIN_TEXT, value_parser = parse_duration)]
    pub resume_margin: Duration,

    /// With --resume: resume results that were made against another API (or the simulator).
    #[arg(long, requires = "resume")]
    pub resume_any_api: bool,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Environment for rows that leave it empty, or for files without that column.
    #[arg(long = "env", value_name = "UUID")]
    pub environment: Option<String>,

    /// Expiry for rows that leave it empty, or for files without that column.
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,

    /// What a date or time written without a zone means (date cells of a workbook, and
    /// YYYY-MM-DD[ HH:MM[:SS]] in a CSV): UTC, local, or an IANA name such as America/New_York.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub timezone: String,

    /// The sheet of a workbook INPUT (.xlsx, .xlsm, .xlsb, .xls, .ods) to read: its name, or
    /// its number (1 = the first). Default: the first sheet.
    #[arg(long, value_name = "NAME|N")]
    pub sheet: Option<String>,

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

    /// Refuse any expiry later than run start + this.
    #[arg(long, value_name = "DURATION", default_value = defaults::MAX_WINDOW_TEXT, value_parser = parse_positive_duration)]
    pub max_window: Duration,

    /// Validate and write the plan; send nothing, not even a token request.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: also get a token and look usernames, emails, populations and groups up
    /// (reads only, never a PUT), so that the plan shows the user ID each row would grant.
    #[arg(long, requires = "dry_run")]
    pub resolve: bool,

    /// Run against the built-in PingOne simulator; needs no credentials.
    #[arg(long)]
    pub simulate: bool,

    /// Also write the summary as JSON here (not the input or the results; an existing file
    /// only with --overwrite).
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,

    /// Progress bar on standard error; auto = only on a terminal.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,

    /// Set by the command: `run` grants, `status` reads back.
    #[arg(skip)]
    pub report: Report,
}

/// The settings that hold credentials, named as Ping's own tools name them.
pub const ACCESS_TOKEN_VARIABLE: &str = "PINGONE_API_ACCESS_TOKEN";
pub const CLIENT_ID_VARIABLE: &str = "PINGONE_CLIENT_ID";
pub const CLIENT_SECRET_VARIABLE: &str = "PINGONE_CLIENT_SECRET";
pub const ENVIRONMENT_ID_VARIABLE: &str = "PINGONE_ENVIRONMENT_ID";

/// Credentials as the process environment gives them; never from the command line, so that
/// they do not show in `ps`, shell history or `--help`.
#[derive(Default)]
pub struct CredentialSettings {
    pub access_token: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub environment_id: Option<String>,
}

impl CredentialSettings {
    pub fn from_process_environment() -> Self {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        Self {
            // A token pasted, or read with $(cat file), often ends in a line break; no token
            // has white space at either end.
            access_token: read(ACCESS_TOKEN_VARIABLE)
                .map(|token| SecretString::from(token.trim().to_owned())),
            client_id: read(CLIENT_ID_VARIABLE),
            client_secret: read(CLIENT_SECRET_VARIABLE).map(SecretString::from),
            environment_id: read(ENVIRONMENT_ID_VARIABLE),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunConfigError {
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
    #[error("{setting} {url:?} {problem}")]
    Url {
        setting: &'static str,
        url: String,
        problem: &'static str,
    },
    #[error("cannot read --token-file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--token-file {0} is empty")]
    EmptyTokenFile(PathBuf),
    #[error(
        "no credentials: set {CLIENT_ID_VARIABLE}, {CLIENT_SECRET_VARIABLE} and {ENVIRONMENT_ID_VARIABLE} for a worker application, or {ACCESS_TOKEN_VARIABLE}, or pass --token-file PATH (or use --dry-run or --simulate)"
    )]
    NoCredentials,
    #[error(
        "incomplete client credentials: {0} not set; a worker application needs {CLIENT_ID_VARIABLE}, {CLIENT_SECRET_VARIABLE} and {ENVIRONMENT_ID_VARIABLE}"
    )]
    IncompleteClientCredentials(String),
    #[error(
        "{ENVIRONMENT_ID_VARIABLE} {0:?} is not a UUID; it must be the ID of the worker application's environment"
    )]
    WorkerEnvironment(String),
    #[error(
        "--{0} needs --env <UUID> (the environment to list it in) and --until <WHEN> (every member gets the same expiry)"
    )]
    SelectionNeeds(&'static str),
    #[error(
        "--dry-run sends nothing, so it cannot list the members of --{0}; add --resolve to list them (reads only, never a PUT)"
    )]
    SelectionDryRun(&'static str),
    #[error("cannot use --ca-file {path}: {problem}")]
    CaFile { path: PathBuf, problem: String },
    #[error("status reads bypasses back and grants none: {0} does not apply to it")]
    NotForStatus(&'static str),
    #[error("the results file {0} would overwrite the input; choose another with -o/--output")]
    OutputIsInput(PathBuf),
    #[error(
        "{0} is set but is not a proxy URL such as http://proxy.example.com:3128; fix it or unset it"
    )]
    Proxy(&'static str),
    #[error("--summary-json {path} is the {what}; choose another path")]
    SummaryIsRunFile { path: PathBuf, what: &'static str },
    #[error(
        "--summary-json {0} already exists; pass --overwrite to replace it, or choose another path"
    )]
    SummaryExists(PathBuf),
}

impl RunArgs {
    /// The run these flags describe, with relative expiries resolved against `run_start`.
    /// `access_token` is the value of PINGONE_API_ACCESS_TOKEN, if set.
    pub fn to_config(
        &self,
        run_start: DateTime<Utc>,
        settings: &CredentialSettings,
    ) -> Result<RunConfig, RunConfigError> {
        if self.report == Report::Status {
            for (given, flag) in [
                (self.until.is_some(), "--until"),
                (self.resume, "--resume"),
                (self.dry_run, "--dry-run"),
            ] {
                if given {
                    return Err(RunConfigError::NotForStatus(flag));
                }
            }
        }
        let default_environment = self
            .environment
            .as_deref()
            .map(|text| {
                parse_id(text.trim()).ok_or_else(|| RunConfigError::Environment(text.to_owned()))
            })
            .transpose()?;
        let input = self.input_source(default_environment)?;
        let output = self.output_target(&input)?;
        self.check_summary_path(&input, &output)?;
        let zone = Zone::parse(&self.timezone)
            .ok_or_else(|| RunConfigError::Timezone(self.timezone.clone()))?;
        let rules = Rules {
            run_start,
            max_window: self.max_window,
            max_window_text: humantime::format_duration(self.max_window).to_string(),
            default_environment,
            default_until: None,
            zone,
        };
        let default_until = match &self.until {
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
        let connects = !self.dry_run || self.resolve;
        let target = if self.simulate && connects {
            Target::Simulator(Box::new(simulated_tenant()))
        } else if self.simulate {
            Target::DryRun {
                would_send: "to the built-in simulator".to_owned(),
            }
        } else {
            let api_url = self
                .connection
                .api_url
                .clone()
                .unwrap_or_else(|| self.connection.region.api_url());
            check_url("--api-url", &api_url)?;
            match (!connects, self.credentials(settings)) {
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
                        describe_credentials(&credentials, self)
                    ),
                },
                (true, Err(RunConfigError::NoCredentials)) => Target::DryRun {
                    would_send: format!(
                        "to {api_url}, but no credentials are set: a real run needs {CLIENT_ID_VARIABLE}, {CLIENT_SECRET_VARIABLE} and {ENVIRONMENT_ID_VARIABLE}, or {ACCESS_TOKEN_VARIABLE}, or --token-file"
                    ),
                },
                (true, Err(error)) => return Err(error),
            }
        };
        Ok(RunConfig {
            overwrite: self.overwrite,
            rate: self.connection.rate,
            concurrency: usize::from(self.connection.concurrency),
            retry: RetryPolicy {
                retries: self.connection.retries,
                ..RetryPolicy::default()
            },
            timeout: self.connection.timeout,
            rules: Rules {
                default_until,
                ..rules
            },
            progress: self.progress,
            summary_json: self.summary_json.clone(),
            resume: self.resume,
            resume_margin: self.resume_margin,
            resume_any_api: self.resume_any_api,
            reads_only: self.dry_run && self.resolve,
            read: self.read_options()?,
            report: self.report,
            extra_roots: self.extra_roots()?,
            ..RunConfig::new(input, output, target)
        })
    }

    /// The certificates of `--ca-file`: at least one, in PEM.
    fn extra_roots(&self) -> Result<Vec<reqwest::Certificate>, RunConfigError> {
        let Some(path) = &self.connection.ca_file else {
            return Ok(Vec::new());
        };
        let problem = |problem: String| RunConfigError::CaFile {
            path: path.clone(),
            problem,
        };
        let pem = std::fs::read(path).map_err(|error| problem(error.to_string()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|error| problem(format!("it is not PEM ({error})")))?;
        if certificates.is_empty() {
            return Err(problem(
                "it holds no certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
            ));
        }
        Ok(certificates)
    }

    fn read_options(&self) -> Result<ReadOptions, RunConfigError> {
        let encoding = self
            .encoding
            .as_deref()
            .map(|label| {
                encoding_rs::Encoding::for_label(label.trim().as_bytes())
                    .ok_or_else(|| RunConfigError::Encoding(label.to_owned()))
            })
            .transpose()?;
        Ok(ReadOptions {
            sheet: self.sheet.clone(),
            encoding,
            allow_empty: self.allow_empty,
            only: self.only.clone(),
        })
    }

    /// The file or standard input, or the population or group whose members are the rows.
    fn input_source(&self, environment: Option<Uuid>) -> Result<Rows, RunConfigError> {
        let (collection, named, flag) = match (&self.population, &self.group) {
            (Some(named), _) => (Collection::Population, named, "population"),
            (None, Some(named)) => (Collection::Group, named, "group"),
            (None, None) => {
                return Ok(Rows::Input(InputSource::from_argument(
                    self.input.as_deref().unwrap_or("-"),
                )));
            }
        };
        let until_given = self.until.is_some() || self.report == Report::Status;
        let (Some(environment_id), true) = (environment, until_given) else {
            return Err(RunConfigError::SelectionNeeds(flag));
        };
        if self.dry_run && !self.resolve {
            return Err(RunConfigError::SelectionDryRun(flag));
        }
        Ok(Rows::Selection(Selection {
            collection,
            named: named.clone(),
            environment_id,
            max_users: self.max_users.map_or(0, |most| most as usize),
        }))
    }

    fn output_target(&self, input: &Rows) -> Result<OutputTarget, RunConfigError> {
        let target = match (self.output.as_deref(), input) {
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
        } else if self.simulate && !self.dry_run {
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
        let Some(summary) = &self.summary_json else {
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
        if summary.exists() && !self.overwrite {
            return Err(RunConfigError::SummaryExists(summary.clone()));
        }
        Ok(())
    }

    /// First match wins: `--token-file`, `PINGONE_API_ACCESS_TOKEN`, client credentials.
    fn credentials(&self, settings: &CredentialSettings) -> Result<Credentials, RunConfigError> {
        if let Some(path) = &self.connection.token_file {
            let text =
                std::fs::read_to_string(path).map_err(|source| RunConfigError::TokenFile {
                    path: path.clone(),
                    source,
                })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(RunConfigError::EmptyTokenFile(path.clone()));
            }
            return Ok(Credentials::Token(SecretString::from(token.to_owned())));
        }
        if let Some(token) = &settings.access_token {
            return Ok(Credentials::Token(token.clone()));
        }
        let (client_id, client_secret, environment_id) = match (
            &settings.client_id,
            &settings.client_secret,
            &settings.environment_id,
        ) {
            (None, None, None) => return Err(RunConfigError::NoCredentials),
            (Some(id), Some(secret), Some(environment)) => (id, secret, environment),
            (id, secret, environment) => {
                let missing: Vec<&str> = [
                    (id.is_none(), CLIENT_ID_VARIABLE),
                    (secret.is_none(), CLIENT_SECRET_VARIABLE),
                    (environment.is_none(), ENVIRONMENT_ID_VARIABLE),
                ]
                .into_iter()
                .filter_map(|(missing, name)| missing.then_some(name))
                .collect();
                return Err(RunConfigError::IncompleteClientCredentials(
                    missing.join(" and "),
                ));
            }
        };
        let environment_id = parse_id(environment_id.trim())
            .ok_or_else(|| RunConfigError::WorkerEnvironment(environment_id.clone()))?;
        let auth_url = self
            .connection
            .auth_url
            .clone()
            .unwrap_or_else(|| self.connection.region.auth_url());
        check_url("--auth-url", &auth_url)?;
        Ok(Credentials::Client(ClientCredentials {
            token_url: format!(
                "{}/{environment_id}/as/token",
                auth_url.trim_end_matches('/')
            ),
            client_id: client_id.trim().to_owned(),
            client_secret: client_secret.clone(),
        }))
    }
}

/// Which credentials a run would use, by the names of their settings, never their values.
fn describe_credentials(credentials: &Credentials, args: &RunArgs) -> String {
    match (credentials, &args.connection.token_file) {
        (Credentials::Token(_), Some(path)) => format!("the access token in {}", path.display()),
        (Credentials::Token(_), None) => format!("the access token in {ACCESS_TOKEN_VARIABLE}"),
        (Credentials::Client(client), _) => format!(
            "the worker application in {CLIENT_ID_VARIABLE} and {CLIENT_SECRET_VARIABLE}, its token from {}",
            client.token_url
        ),
    }
}

/// The proxy settings reqwest honours. reqwest passes over one it cannot use, which would send
/// requests straight out instead of through the proxy the admin set: refuse it instead. The
/// check is written here because reqwest's own proxy parser accepts schemes it cannot use.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn check_proxy_settings() -> Result<(), RunConfigError> {
    for name in PROXY_VARIABLES {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        let value = value.trim();
        if !value.is_empty() && !is_usable_proxy(value) {
            return Err(RunConfigError::Proxy(name));
        }
    }
    Ok(())
}

/// A proxy URL as curl and reqwest take it: a scheme they speak (`http://` assumed when
/// there is none) and a host.
fn is_usable_proxy(value: &str) -> bool {
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    url::Url::parse(&with_scheme).is_ok_and(|url| {
        matches!(
            url.scheme(),
            "http" | "https" | "socks4" | "socks4a" | "socks5" | "socks5h"
        ) && url.host_str().is_some_and(|host| !host.is_empty())
    })
}

/// Whether two paths name one file, however it is reached (another spelling, a symbolic or a
/// hard link): on Unix by device and inode.
pub fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
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

/// The tenant `run --simulate` rehearses against: tens of milliseconds of latency with
/// jitter, a rate limit above the default `--rate`, and about 1% transient 503s so that a
/// newcomer sees retries happen.
pub fn simulated_tenant() -> SimulatorConfig {
    SimulatorConfig {
        latency: Duration::from_millis(30),
        jitter: Duration::from_millis(20),
        rate_limit: NonZeroU32::new(100).map(RateLimit::per_second),
        faults: FaultChances {
            status_503: 0.01,
            ..FaultChances::default()
        },
        seed: rand::random(),
        ..SimulatorConfig::default()
    }
}

/// PingOne is only ever reached over https; plain http is allowed to loopback, for the
/// simulator and local rehearsals.
fn check_url(setting: &'static str, url: &str) -> Result<(), RunConfigError> {
    let problem = match reqwest::Url::parse(url) {
        Err(_) => Some("is not a URL; write it like https://api.pingone.com/v1"),
        Ok(parsed) => match parsed.scheme() {
            "https" if parsed.host().is_some() => None,
            "http" if is_loopback_url(url) => None,
            "http" => Some(
                "uses plain http to a host that is not loopback; PingOne must be reached over https",
            ),
            _ => Some("must start with https://"),
        },
    };
    match problem {
        Some(problem) => Err(RunConfigError::Url {
            setting,
            url: url.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let (least, most) = defaults::RATE_RANGE;
    match text.parse::<f64>() {
        Ok(rate) if (least..=most).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a number of requests per second from {least} to {most}"
        )),
    }
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        Err("must be longer than zero".to_owned())
    } else {
        Ok(duration)
    }
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Added to every API answer, e.g. `40ms`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub latency: Duration,

    /// A random extra of up to this much on top of --latency.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub jitter: Duration,

    /// Requests per second allowed across all environments, as a license limit; more are
    /// answered with 429 REQUEST_LIMITED and Retry-After.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<NonZeroU32>,

    /// Requests per second allowed in each environment, on top of --rate-limit.
    #[arg(long, value_name = "N")]
    pub env_rate_limit: Option<NonZeroU32>,

    /// Chance (0 to 1) that an API request is answered 500 UNEXPECTED_ERROR.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_500: f64,

    /// Chance (0 to 1) that an API request is answered 502.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_502: f64,

    /// Chance (0 to 1) that an API request is answered 503 with Retry-After.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_503: f64,

    /// Chance (0 to 1) that an API request's connection is reset without an answer.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_reset: f64,

    /// Chance (0 to 1) that an API request hangs for --hang-for, then its connection is reset.
    #[arg(long, value_name = "P", value_parser = parse_chance, default_value = "0")]
    pub chance_hang: f64,

    /// Retry-After sent with an injected 503 (whole seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub retry_after_503: Duration,

    /// How long a hanging request stays unanswered.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub hang_for: Duration,

    /// An environment in which the worker app lacks a role: 403 INSUFFICIENT_PERMISSIONS
    /// (repeatable).
    #[arg(long = "forbidden-env", value_name = "UUID")]
    pub forbidden_environments: Vec<Uuid>,

    /// CSV of the only users that exist (environment_id,user_id,username,email, optionally
    /// population,groups with groups separated by ;); they are
    /// also the directory that user lookups search. Without it every user exists.
    #[arg(long, value_name = "PATH", conflicts_with = "missing_users_file")]
    pub users_file: Option<PathBuf>,

    /// File of user IDs (one a line) that do not exist; every other user does.
    #[arg(long, value_name = "PATH")]
    pub missing_users_file: Option<PathBuf>,

    /// Lifetime of issued access tokens.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    pub token_ttl: Duration,

    /// How the worker application must authenticate at the token endpoint.
    #[arg(long, value_enum, default_value_t = ClientAuthMethod::Basic)]
    pub client_auth: ClientAuthMethod,

    /// Shorten any expiry later than now + this, as a tenant policy might.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_bypass: Option<Duration>,

    /// Answer user lookups whose filter joins several terms with `or` with 400, as a tenant
    /// that does not support batched lookups would.
    #[arg(long)]
    pub refuse_or_filters: bool,

    /// Serve HTTPS with a certificate made at start, and print one more line,
    /// `ca-file: <PATH>`: the certificate authority (PEM) that `run --ca-file` must trust.
    #[arg(long)]
    pub tls: bool,

    /// Seed that makes faults, jitter and the generated credentials reproducible; random if
    /// not given.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Users(#[from] UsersFileError),
    #[error(
        "--chance-500, --chance-502, --chance-503, --chance-reset and --chance-hang add up to {0}; together they may be at most 1"
    )]
    FaultChancesAboveOne(f64),
}

impl SimulateArgs {
    /// The simulator configuration these flags describe, with the seed they fix (drawn at
    /// random when `--seed` is absent, and returned so that a run can be replayed).
    pub fn to_config(&self) -> Result<SimulatorConfig, ConfigError> {
        let faults = FaultChances {
            status_500: self.chance_500,
            status_502: self.chance_502,
            status_503: self.chance_503,
            reset: self.chance_reset,
            hang: self.chance_hang,
        };
        if faults.total() > 1.0 + f64::EPSILON {
            return Err(ConfigError::FaultChancesAboveOne(faults.total()));
        }
        let population = match (&self.users_file, &self.missing_users_file) {
            (Some(path), _) => Population::Only(read_users_file(path)?),
            (None, Some(path)) => Population::AllExcept(read_missing_users_file(path)?),
            (None, None) => Population::Everyone,
        };
        Ok(SimulatorConfig {
            latency: self.latency,
            jitter: self.jitter,
            rate_limit: self.rate_limit.map(RateLimit::per_second),
            environment_rate_limit: self.env_rate_limit.map(RateLimit::per_second),
            faults,
            retry_after_503: self.retry_after_503,
            hang_for: self.hang_for,
            forbidden_environments: self
                .forbidden_environments
                .iter()
                .copied()
                .collect::<HashSet<_>>(),
            population,
            token_ttl: self.token_ttl,
            client_auth: self.client_auth,
            max_bypass: self.max_bypass,
            refuse_or_filters: self.refuse_or_filters,
            tls: self.tls,
            seed: self.seed.unwrap_or_else(rand::random),
        })
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("{error}; write a duration such as 500ms, 30s, 2m or 1h"))
}

fn parse_chance(text: &str) -> Result<f64, String> {
    let chance: f64 = text.parse().map_err(|_| {
        format!("{text:?} is not a number; write a chance between 0 and 1, such as 0.01")
    })?;
    if (0.0..=1.0).contains(&chance) {
        Ok(chance)
    } else {
        Err(format!("{chance} is not between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_without_flags_runs_with_the_defaults_of_run_config_new() {
        let cli = Cli::try_parse_from(["pingone-bypass", "run", "users.csv", "--dry-run"])
            .expect("a valid command line");
        let Command::Run(args) = cli.command else {
            unreachable!("parsed as run")
        };
        let config = args
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

    fn simulate_args(args: &[&str]) -> Result<SimulateArgs, clap::Error> {
        let mut argv = vec!["pingone-bypass", "simulate"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).and_then(|cli| match cli.command {
            Command::Simulate(args) => Ok(*args),
            _ => Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand)),
        })
    }

    #[test]
    fn defaults_describe_a_fast_faultless_tenant_on_loopback() {
        let config = simulate_args(&["--seed", "9"]).map(|args| args.to_config());
        let Ok(Ok(config)) = config else {
            panic!("defaults did not parse: {config:?}");
        };
        assert_eq!(config.latency, Duration::ZERO);
        assert_eq!(config.rate_limit, None);
        assert_eq!(config.faults, FaultChances::default());
        assert_eq!(config.token_ttl, Duration::from_secs(3600));
        assert_eq!(config.seed, 9);
    }

    #[test]
    fn flags_fill_the_simulator_config() {
        let env = "4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01";
        let parsed = simulate_args(&[
            "--latency",
            "40ms",
            "--jitter",
            "10ms",
            "--rate-limit",
            "100",
            "--env-rate-limit",
            "35",
            "--chance-503",
            "0.01",
            "--forbidden-env",
            env,
            "--token-ttl",
            "2s",
            "--client-auth",
            "post",
            "--max-bypass",
            "1d",
        ])
        .map(|args| args.to_config());
        let Ok(Ok(config)) = parsed else {
            panic!("flags did not parse: {parsed:?}");
        };
        assert_eq!(config.latency, Duration::from_millis(40));
        assert_eq!(config.jitter, Duration::from_millis(10));
        assert_eq!(config.rate_limit.map(|l| l.requests.get()), Some(100));
        assert_eq!(
            config.environment_rate_limit.map(|l| l.requests.get()),
            Some(35)
        );
        assert_eq!(config.faults.status_503, 0.01);
        assert!(
            config
                .forbidden_environments
                .contains(&Uuid::parse_str(env).unwrap_or_default())
        );
        assert_eq!(config.token_ttl, Duration::from_secs(2));
        assert_eq!(config.client_auth, ClientAuthMethod::Post);
        assert_eq!(config.max_bypass, Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn a_chance_outside_zero_to_one_names_the_flag() {
        let error = simulate_args(&["--chance-503", "1.5"])
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("--chance-503") && e.contains("between 0 and 1")),
            "{error:?}"
        );
    }

    #[test]
    fn chances_adding_up_to_more_than_one_are_refused() {
        let error = simulate_args(&["--chance-500", "0.6", "--chance-hang", "0.6"])
            .map(|args| args.to_config().err().map(|e| e.to_string()));
        assert!(
            matches!(&error, Ok(Some(message)) if message.contains("at most 1")),
            "{error:?}"
        );
    }

    #[test]
    fn a_bad_duration_says_how_to_write_one() {
        let error = simulate_args(&["--latency", "fast"])
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("--latency") && e.contains("such as 500ms")),
            "{error:?}"
        );
    }

    #[test]
    fn the_sample_population_files_load() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
        let only = simulate_args(&["--users-file", &format!("{samples}/users.csv")])
            .map(|args| args.to_config().map(|config| config.population));
        assert!(
            matches!(&only, Ok(Ok(Population::Only(users))) if users.len() == 3),
            "{only:?}"
        );
        let missing = simulate_args(&[
            "--missing-users-file",
            &format!("{samples}/missing-users.txt"),
        ])
        .map(|args| args.to_config().map(|config| config.population));
        assert!(
            matches!(&missing, Ok(Ok(Population::AllExcept(users))) if users.len() == 1),
            "{missing:?}"
        );
    }

    fn run_args(args: &[&str]) -> RunArgs {
        let mut argv = vec!["pingone-bypass", "run", "users.csv"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).map(|cli| cli.command) {
            Ok(Command::Run(args)) => *args,
            other => panic!("not a run: {other:?}"),
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
    fn users_file_and_missing_users_file_exclude_each_other() {
        let result = simulate_args(&["--users-file", "a.csv", "--missing-users-file", "b.txt"]);
        assert!(result.is_err());
    }
}
