//! `serve`'s flags: where to listen and keep runs, and the connection and bound every run
//! started from the upload page gets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::connection::ConnectionArgs;
use crate::cli::values::{parse_audit_wait, parse_max_window};
use crate::defaults;
use crate::defaults::{FEWEST_PAGE_CONNECTIONS, MOST_PAGE_CONNECTIONS};

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

    /// Ask the serve already running on --workdir for a fresh one-time key, print its page's
    /// address, and exit; the first use of the new key ends the earlier browser session.
    #[arg(long)]
    pub new_key: bool,

    /// The most connections the page keeps open at once (64 to 8192); by default, what the
    /// process's descriptor limit allows. At the bound, the oldest connection that has not yet
    /// sent a whole request is cut to make room.
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(FEWEST_PAGE_CONNECTIONS as u64..=MOST_PAGE_CONNECTIONS as u64))]
    pub connections: Option<usize>,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Refuse any expiry later than run start + this.
    #[arg(long, value_name = "DURATION", default_value = defaults::MAX_WINDOW_TEXT, value_parser = parse_max_window)]
    pub max_window: Duration,

    /// How long the page's "Check against PingOne's audit log" looks again for changes PingOne
    /// has not shown yet (verify --pingone --audit-wait); at most 30m.
    #[arg(long, value_name = "DURATION", default_value = defaults::AUDIT_WAIT_TEXT, value_parser = parse_audit_wait)]
    pub audit_wait: Duration,
}
