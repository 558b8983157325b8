//! `verify`: a results file held against the SHA-256 its run record keeps, and with
//! `--pingone` against PingOne's own audit log (`audit`), on PingOne or, for a rehearsal's
//! results, on the rehearsal tenant's simulator.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::audit::{AuditRequest, checked_record, reconcile};
use crate::cli::VerifyArgs;
use crate::cli::connection::{CredentialSettings, check_proxy_settings};
use crate::cli::simulate::{rehearse_on, simulated_tenant};
use crate::commands::CommandError;
use crate::commands::run::restore_tenant;
use crate::outcome::exit;
use crate::record::log_format::{Level, LogFormat};
use crate::record::manifest::{Manifest, Verified, verify as check};
use crate::simulator::Simulator;

/// Says on standard output whether `args.results` is what its run wrote (and, with
/// `--pingone`, what PingOne's audit log says of it); the exit code says it too.
pub async fn verify(args: VerifyArgs, format: LogFormat) -> Result<u8, CommandError> {
    if args.pingone {
        return against_pingone(args, format).await;
    }
    Ok(against_record(&args.results, format))
}

fn against_record(results: &Path, format: LogFormat) -> u8 {
    match check(results) {
        Ok(Verified::Matches { sha256, what }) => {
            say(&format!(
                "{}: matches its run record, of {what} (SHA-256 {sha256})",
                results.display()
            ));
            exit::SUCCESS
        }
        Ok(Verified::Altered {
            recorded,
            found,
            what,
        }) => {
            say(&format!(
                "{}: ALTERED since the run wrote it (SHA-256 {found}, the run record of {what} says {recorded})",
                results.display()
            ));
            exit::UNFINISHED
        }
        Err(error) => {
            format.error(&error.to_string());
            exit::USAGE
        }
    }
}

async fn against_pingone(mut args: VerifyArgs, format: LogFormat) -> Result<u8, CommandError> {
    // Kept until the reconciliation ends: dropping it stops the simulator.
    let (rehearsal, settings) = if args.simulate {
        let simulator = Simulator::start(simulated_tenant(), ([127, 0, 0, 1], 0).into()).await?;
        // The rehearsal's tenant, as its commands kept it beside the results.
        let path = args.simulate_state.clone().unwrap_or_else(|| {
            args.results
                .with_file_name(crate::simulator::SAVED_TENANT_NAME)
        });
        if let Err(error) = restore_tenant(&simulator, &path) {
            format.error(&error.to_string());
            return Ok(exit::USAGE);
        }
        let settings = rehearse_on(&simulator, &mut args.endpoint);
        (Some(simulator), settings)
    } else {
        (None, CredentialSettings::from_process_environment())
    };
    let simulated = rehearsal.is_some() || args.rehearsal;
    let request = match audit_request(&args, &settings, format, simulated) {
        Ok(request) => request,
        Err((message, code)) => {
            format.error(&message);
            return Ok(code);
        }
    };
    let summary_json = args.summary_json.clone();
    match reconcile(request).await {
        Ok(outcome) => {
            say(&format!(
                "{}: matches its run record, of {}",
                args.results.display(),
                outcome.what
            ));
            let fields = match outcome.json() {
                serde_json::Value::Object(fields) => fields,
                _ => serde_json::Map::new(),
            };
            if let Some(path) = &summary_json
                && let Err(error) = std::fs::write(path, format!("{}\n", outcome.json()))
            {
                format.error(&format!(
                    "cannot write --summary-json {}: {error}",
                    path.display()
                ));
                return Ok(exit::USAGE);
            }
            format.say(Level::Info, &outcome.summary(), fields);
            Ok(outcome.exit_code())
        }
        Err(error) => {
            format.error(&error.to_string());
            Ok(error.exit_code())
        }
    }
}

/// The reconciliation `args` ask for, the run record and every setting checked before anything
/// is sent; or what is wrong, with the exit code it ends with.
fn audit_request(
    args: &VerifyArgs,
    settings: &CredentialSettings,
    format: LogFormat,
    simulated: bool,
) -> Result<AuditRequest, (String, u8)> {
    let usage = |error: &dyn std::fmt::Display| (error.to_string(), exit::USAGE);
    check_proxy_settings().map_err(|error| usage(&error))?;
    let endpoint = &args.endpoint;
    let api_url = endpoint.api_url().map_err(|error| usage(&error))?;
    let manifest = checked_record(&args.results, &api_url, simulated)
        .map_err(|error| (error.to_string(), error.exit_code()))?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| audit_path_for(&args.results));
    for (taken, what) in [
        (args.results.clone(), "results"),
        (Manifest::path_for(&args.results), "run record"),
    ] {
        if output == taken {
            return Err(usage(&format!(
                "-o {} is the {what}; choose another path for the reconciliation",
                output.display()
            )));
        }
    }
    Ok(AuditRequest {
        results: args.results.clone(),
        manifest,
        output,
        api_url,
        credentials: endpoint
            .credentials(settings)
            .map_err(|error| usage(&error))?,
        timeout: args.timeout,
        extra_roots: endpoint.extra_roots().map_err(|error| usage(&error))?,
        rate: args.rate,
        retries: args.retries,
        audit_wait: args.audit_wait,
        log_format: format,
    })
}

/// `x.results.csv` → `x.results.audit.csv`.
pub fn audit_path_for(results: &Path) -> PathBuf {
    let stem = results.file_stem().unwrap_or_default().to_string_lossy();
    results.with_file_name(format!("{stem}.audit.csv"))
}

/// The verdict on standard output; if that is gone (a closed pipe), the exit code still says it.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}
