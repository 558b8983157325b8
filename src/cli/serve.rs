//! `serve`'s flags, and the `run` flags every run started from the upload page gets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::connection::ConnectionArgs;
use crate::cli::values::parse_max_window;
use crate::defaults;

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

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Refuse any expiry later than run start + this.
    #[arg(long, value_name = "DURATION", default_value = defaults::MAX_WINDOW_TEXT, value_parser = parse_max_window)]
    pub max_window: Duration,
}

impl ServeArgs {
    /// The flags of `run` that only a grant takes: the bound on expiries.
    pub fn grant_flags(&self) -> Vec<String> {
        vec![
            "--max-window".to_owned(),
            humantime::format_duration(self.max_window).to_string(),
        ]
    }

    /// The connection flags every run and status check from the page gets (the simulator's
    /// URLs instead of the region's when `simulator_urls` is given).
    pub fn connection_flags(&self, simulator_urls: Option<(String, String)>) -> Vec<String> {
        let mut flags = vec![
            "--rate".to_owned(),
            self.connection.rate.to_string(),
            "--concurrency".to_owned(),
            self.connection.concurrency.to_string(),
            "--retries".to_owned(),
            self.connection.retries.to_string(),
            "--timeout".to_owned(),
            humantime::format_duration(self.connection.timeout).to_string(),
            "--outage-patience".to_owned(),
            humantime::format_duration(self.connection.outage_patience).to_string(),
            "--region".to_owned(),
            format!("{:?}", self.connection.region).to_ascii_uppercase(),
        ];
        let (api_url, auth_url, token_url) = match simulator_urls {
            Some((api, auth)) => (Some(api), Some(auth), None),
            None => (
                self.connection.api_url.clone(),
                self.connection.auth_url.clone(),
                self.connection.token_url.clone(),
            ),
        };
        for (flag, value) in [
            ("--api-url", api_url),
            ("--auth-url", auth_url),
            ("--token-url", token_url),
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
