//! The command line: clap definitions, a file for each command's flags, and their
//! conversion, once, into validated configuration. `connection` holds what several commands
//! share: where requests go and with which credentials.

pub(crate) mod connection;
pub(crate) mod request;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod values;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use std::time::Duration;

use crate::cli::connection::EndpointArgs;
use crate::cli::run::{EndArgs, RunArgs, StatusArgs};
use crate::cli::serve::ServeArgs;
use crate::cli::simulate::SimulateArgs;
use crate::cli::values::{parse_audit_rate, parse_audit_wait, parse_timeout};
use crate::defaults;
use crate::record::log_format::LogFormat;

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
    /// connection, rate, retry and credential options; nothing is granted, so run's expiry,
    /// resume and dry-run options are not among its own.
    /// Exit codes: 0 every row was checked; 1 some failed or are invalid; 2 and 3 as for run.
    Status(Box<StatusArgs>),
    /// End the bypasses a run granted: each row's bypass is read (GET .../bypassMFA) and, when
    /// it is in force and ends later, set to end --in from now (default 1m); writes
    /// <input stem>.end.csv: ended, skipped (NOT_GRANTED, NO_BYPASS, ENDS_SOONER, CHANGED_SINCE),
    /// failed or invalid, with the expiry before and after.
    ///
    /// INPUT is a results file of run (only its succeeded rows are ended) or any input run reads
    /// (each named user's bypass is ended, whoever granted it), or --population/--group. Takes
    /// run's connection, rate, retry and credential options.
    /// Exit codes: 0 every row was ended or skipped; 1 some failed, are invalid or were not
    /// attempted; 2, 3 and 130 as for run.
    End(Box<EndArgs>),
    /// Serve an upload page on loopback: upload a file, check the plan, confirm, follow the
    /// progress, download the results. Prints `url: http://127.0.0.1:PORT/?key=...`.
    Serve(Box<ServeArgs>),
    /// Check a results file against the SHA-256 its run record (<results stem>.manifest.json)
    /// holds; with --pingone, also against PingOne's own audit log.
    ///
    /// With --pingone, takes run's connection and credential options, reads the activities of
    /// the run's window in each environment of the results, and writes <results stem>.audit.csv:
    /// each row's verdict (CONFIRMED, NOT_IN_PINGONE, NOT_IN_RESULTS, CONSISTENT), then one
    /// line per activity of the run that names no row.
    ///
    /// Exit codes: 0 the results are what the run wrote (with --pingone: and every line is
    /// CONFIRMED or CONSISTENT); 1 they were altered (or some line is NOT_IN_PINGONE or
    /// NOT_IN_RESULTS, or the audit log could not be read); 2 there is no run record, it holds
    /// no SHA-256 (the run did not finish), it is not a grant's or an end's, or its window is
    /// older than the 14 days PingOne serves; 3 credentials refused, or the audit permission
    /// missing.
    Verify(Box<VerifyArgs>),
    /// Print a shell completion script on standard output.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on standard output, or with --out write one page per command.
    Man(ManArgs),
    /// Run the request a front end wrote as JSON (the upload page starts each of its runs so).
    /// Not for people.
    #[command(hide = true)]
    Request(RequestArgs),
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The request, as JSON.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The results file.
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    /// Also reconcile the results of run or end with PingOne's audit log: every row's request
    /// found by its run and transaction IDs, and every change PingOne logged for the run that
    /// the results do not record. Writes <results stem>.audit.csv.
    #[arg(long, help_heading = "PingOne's audit log")]
    pub pingone: bool,

    #[command(flatten)]
    pub endpoint: EndpointArgs,

    /// With --pingone: most audit requests per second (PingOne's audit API allows 10).
    #[arg(long, value_name = "N", default_value_t = defaults::AUDIT_RATE, value_parser = parse_audit_rate, help_heading = "PingOne's audit log")]
    pub rate: f64,

    /// With --pingone: how long rows whose change PingOne's audit log does not show yet are
    /// looked for again (audit messages arrive late); at most 30m.
    #[arg(long, value_name = "DURATION", default_value = defaults::AUDIT_WAIT_TEXT, value_parser = parse_audit_wait, help_heading = "PingOne's audit log")]
    pub audit_wait: Duration,

    /// With --pingone: retries per audit request after the first attempt.
    #[arg(long, value_name = "N", default_value_t = defaults::RETRIES, help_heading = "PingOne's audit log")]
    pub retries: u32,

    /// With --pingone: per-request timeout, e.g. 30s or 2m; at most 1h.
    #[arg(long, value_name = "DURATION", default_value = defaults::TIMEOUT_TEXT, value_parser = parse_timeout, help_heading = "PingOne's audit log")]
    pub timeout: Duration,

    /// With --pingone: the reconciliation file. Default: <results stem>.audit.csv beside the
    /// results (replaced if it exists).
    #[arg(
        short,
        long,
        value_name = "PATH",
        requires = "pingone",
        help_heading = "PingOne's audit log"
    )]
    pub output: Option<PathBuf>,

    /// With --pingone: also write the summary as JSON here.
    #[arg(
        long,
        value_name = "PATH",
        requires = "pingone",
        help_heading = "PingOne's audit log"
    )]
    pub summary_json: Option<PathBuf>,

    /// With --pingone: check a rehearsal's results against the audit log of the rehearsal
    /// tenant (pingone-bypass.rehearsal-tenant.json beside the results).
    #[arg(long, requires = "pingone", help_heading = "PingOne's audit log")]
    pub simulate: bool,

    /// With --simulate: the rehearsal tenant is kept in this file instead.
    #[arg(
        long,
        value_name = "PATH",
        requires = "simulate",
        help_heading = "PingOne's audit log"
    )]
    pub simulate_state: Option<PathBuf>,

    /// The API is a simulator another process of this tool started (`serve --simulate` checks
    /// its runs so): the results are a rehearsal's. Not for people.
    #[arg(long, hide = true, requires = "pingone", conflicts_with = "simulate")]
    pub rehearsal: bool,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write pingone-bypass.1 and a page for each command (pingone-bypass-run.1, …) into DIR,
    /// created if missing, instead of printing the top page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
