//! `run`, `status` and `end` from the command line: the validated configuration, the rehearsal
//! tenant of `--simulate` (kept between commands), the signals that interrupt a run, and what
//! the outcome says on standard error (the summary line, and every granted bypass that could
//! not be recorded).

use serde_json::Map;

use crate::cli::connection::CredentialSettings;
use crate::cli::request::RunRequest;
use crate::cli::simulate::{rehearse_on, simulated_tenant};
use crate::commands::CommandError;
use crate::commands::signals::Signals;
use crate::outcome::{RunError, exit};
use crate::record::in_order::GrantedBypass;
use crate::record::log_format::{Level, LogFormat};
use crate::simulator::Simulator;

/// Runs the pipeline on `request`, with the time it starts and the credentials the process
/// environment holds (or, with `--simulate`, against a simulator started for it), and returns
/// its exit code.
pub async fn run(mut request: RunRequest, format: LogFormat) -> Result<u8, CommandError> {
    // Kept until the run ends: dropping it stops the simulator.
    let (rehearsal, settings) = if request.rows.simulate && request.mode.connects() {
        let simulator = Simulator::start(simulated_tenant(), ([127, 0, 0, 1], 0).into()).await?;
        tracing::info!(api_url = %simulator.api_url(), "running against the built-in PingOne simulator");
        let settings = rehearse_on(&simulator, &mut request.rows.connection.endpoint);
        request.rows.simulate = false;
        request.rows.rehearsal = true;
        (Some(simulator), settings)
    } else {
        (None, CredentialSettings::from_process_environment())
    };
    let mut config = match request.to_config(chrono::Utc::now(), &settings) {
        Ok(config) => config,
        Err(error) => {
            format.error_about(&error.to_string(), error.setting());
            return Ok(exit::USAGE);
        }
    };
    config.log_format = format;
    let saved_tenant = match &rehearsal {
        Some(simulator) => {
            let input = match &config.input {
                crate::config::Rows::Input(crate::input::InputSource::File(path)) => {
                    Some(path.as_path())
                }
                _ => None,
            };
            let Some(path) =
                saved_tenant_path(request.rows.simulate_state.clone(), &config.output, input)
            else {
                format.error(NO_TENANT_FOLDER);
                return Ok(exit::USAGE);
            };
            if let Err(error) = restore_tenant(simulator, &path) {
                format.error(&error.to_string());
                return Ok(exit::USAGE);
            }
            Some(path)
        }
        None => None,
    };
    crate::record::log_format::name_run(config.run_id);
    let mut signals = Signals::listen()?;
    // Without a handler, a file-size limit (`ulimit -f`) kills the process at the first
    // write past it; with one, that write fails and the run stops sending and says where
    // every granted bypass is recorded.
    #[cfg(unix)]
    let _file_size_limit =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ))
            .map_err(|source| CommandError::Signal {
                signal: "SIGXFSZ (a file-size limit)",
                source,
            })?;
    let interrupt = config.interrupt.clone();
    tokio::spawn(async move {
        signals.next().await;
        format.say(
            Level::Warn,
            "interrupted: letting requests in flight finish and recording the other rows as not_attempted (interrupt again to stop at once)",
            Map::new(),
        );
        interrupt.cancel();
        signals.next().await;
        format.say(
            Level::Warn,
            "stopped at once; every row answered so far is in the results or the journal",
            Map::new(),
        );
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
    let ran = crate::run::run(config).await;
    if let (Some(simulator), Some(path)) = (&rehearsal, &saved_tenant)
        && let Err(error) = simulator.save_bypasses(path)
    {
        format.say(Level::Warn, &error.to_string(), Map::new());
    }
    Ok(said(format, ran))
}

/// What the run's end says on standard error (the summary line and what went wrong, or the
/// error that stopped it and every granted bypass no file took), and its exit code.
fn said(format: LogFormat, ran: Result<crate::outcome::RunOutcome, RunError>) -> u8 {
    match ran {
        Ok(outcome) => {
            let mut lines = outcome.report().into_iter();
            if let Some(summary) = lines.next() {
                let mut fields = match outcome.summary.json(outcome.report) {
                    serde_json::Value::Object(fields) => fields,
                    _ => Map::new(),
                };
                fields.insert("results".to_owned(), outcome.results.clone().into());
                fields.insert("exit_code".to_owned(), outcome.exit_code().into());
                format.say(Level::Info, &summary, fields);
            }
            for line in lines {
                format.say(Level::Error, &line, Map::new());
            }
            outcome.exit_code()
        }
        Err(error) => {
            format.error_about(&error.to_string(), error.setting());
            if let RunError::Record(record) = &error {
                say_unrecorded(format, &record.unrecorded);
            }
            error.exit_code()
        }
    }
}

/// Why a rehearsal with no file to keep its tenant beside does not start.
const NO_TENANT_FOLDER: &str = "--simulate with the results on standard output (-o -) and the rows not from a file has no folder to keep the rehearsal tenant in: name its file with --simulate-state PATH, or write the results to a file with -o PATH";

/// Gives the rehearsal's simulator the tenant an earlier `--simulate` command left at `path`.
pub(super) fn restore_tenant(
    simulator: &Simulator,
    path: &std::path::Path,
) -> Result<(), crate::simulator::SavedTenantError> {
    let bypasses = simulator.restore_bypasses(path)?;
    tracing::info!(path = %path.display(), bypasses, "the rehearsal tenant's bypasses are kept in this file between --simulate commands");
    Ok(())
}

/// Where a rehearsal's tenant is kept: `--simulate-state`, or beside the results, or, when they
/// go to standard output, beside the input file; never the current folder unasked. `None` when
/// there is no such file to keep it beside (standard output, and standard input or a
/// selection).
fn saved_tenant_path(
    chosen: Option<std::path::PathBuf>,
    output: &crate::record::writer::OutputTarget,
    input: Option<&std::path::Path>,
) -> Option<std::path::PathBuf> {
    use crate::record::writer::OutputTarget;
    if chosen.is_some() {
        return chosen;
    }
    let beside = match output {
        OutputTarget::File(results) => results.as_path(),
        OutputTarget::Stdout => input?,
    };
    let folder = beside
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    Some(folder.join(crate::simulator::SAVED_TENANT_NAME))
}

/// Every bypass PingOne granted that no file could record, one line each, so that the audit
/// trail survives in the terminal or the log collector.
fn say_unrecorded(format: LogFormat, rows: &[GrantedBypass]) {
    for row in rows {
        let mut fields = Map::new();
        fields.insert(
            "environment_id".to_owned(),
            row.environment_id.clone().into(),
        );
        fields.insert("user_id".to_owned(), row.user_id.clone().into());
        fields.insert(
            "bypass_mfa_enabled_until".to_owned(),
            row.bypass_mfa_enabled_until.clone().into(),
        );
        format.say(
            Level::Error,
            &format!(
                "{}, not recorded: environment_id={} user_id={} bypass_mfa_enabled_until={}",
                row.change, row.environment_id, row.user_id, row.bypass_mfa_enabled_until
            ),
            fields,
        );
    }
}
