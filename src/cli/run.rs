//! `run`'s, `status`'s and `end`'s flags, as clap parses them (`cli::request` makes the
//! `RunRequest` of each): the text of the command line is parsed here and nowhere else.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::connection::ConnectionArgs;
use crate::cli::values::{parse_end_in, parse_max_window, parse_resume_margin};
use crate::defaults;
use crate::input::HiddenRowsChoice;
use crate::record::progress::ProgressMode;

/// The rows a command reads, where its report goes and how requests reach PingOne: what `run`
/// and `status` share.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
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
    /// <input stem>.rehearsal.results.csv, so a rehearsal never takes a real run's place; with
    /// --dry-run, <input stem>.plan.csv; for status, <input stem>.status.csv; for end,
    /// <input stem>.end.csv (with --dry-run, <input stem>.end-plan.csv).
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

    /// Run against the built-in PingOne simulator; needs no credentials. Its tenant's bypasses
    /// and audit log are kept between --simulate commands in
    /// pingone-bypass.rehearsal-tenant.json beside the results (with -o -, beside the input),
    /// so that run, status, end and verify rehearse on one tenant (delete it for a fresh one).
    #[arg(long)]
    pub simulate: bool,

    /// With --simulate: keep the rehearsal tenant's bypasses in this file instead.
    #[arg(long, value_name = "PATH", requires = "simulate")]
    pub simulate_state: Option<PathBuf>,

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
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
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

/// `run`: the rows, and how to grant them (or plan to).
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub rows: RowsArgs,

    #[command(flatten)]
    pub grant: GrantArgs,

    /// Validate and write the plan; send nothing, not even a token request.
    #[arg(long, help_heading = "Granting")]
    pub dry_run: bool,

    /// With --dry-run: also get a token and look usernames, emails, populations and groups up
    /// (reads only, never a PUT), so that the plan shows the user ID each row would grant.
    #[arg(long, requires = "dry_run", help_heading = "Granting")]
    pub resolve: bool,
}

/// `end`: the rows (a results file of `run`, or any input `run` reads), and how to end their
/// bypasses.
#[derive(Debug, Args)]
pub struct EndArgs {
    #[command(flatten)]
    pub rows: RowsArgs,

    /// How long each ended bypass still lasts: the PUT sets an expiry this long after it is
    /// sent. At least 30s, at most 1h.
    #[arg(long = "in", value_name = "DURATION", default_value = defaults::END_IN_TEXT, value_parser = parse_end_in, help_heading = "Ending")]
    pub within: Duration,

    /// With a results file as INPUT: also end a bypass that changed since its run recorded it
    /// (granted again or extended by someone else); without it, such a row is skipped
    /// CHANGED_SINCE.
    #[arg(long, help_heading = "Ending")]
    pub force: bool,

    /// Read each bypass (a token and GETs) and write the plan: who would be ended, who skipped
    /// and why. Never a PUT.
    #[arg(long, help_heading = "Ending")]
    pub dry_run: bool,

    /// What a date or time written without a zone means in a workbook's date cells: UTC, local,
    /// or an IANA name such as America/New_York.
    #[arg(
        long,
        value_name = "ZONE",
        default_value = "UTC",
        help_heading = "Ending"
    )]
    pub timezone: String,

    /// Continue an earlier end from its results file (-o/--output), its journal and partial
    /// files: a row an earlier end ended is kept as it was; every other row is read again.
    #[arg(long, conflicts_with = "overwrite", help_heading = "Ending")]
    pub resume: bool,

    /// End (and resume) results that were made against another API than this one, or on the
    /// simulator: without it, such results are exit 2 and nothing is sent.
    #[arg(long, help_heading = "Ending")]
    pub any_api: bool,
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
            resume: false,
            resume_margin: defaults::RESUME_MARGIN,
            resume_any_api: false,
        }
    }
}
