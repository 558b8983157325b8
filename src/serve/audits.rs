//! "Check against PingOne's audit log" on a finished grant's or end's page: `verify --pingone`
//! on the run's results, in a child process like every run of the page, with the server's
//! connection and credentials; the page shows the count of each verdict and offers the
//! reconciliation file to download (its page rendered here).

use std::ffi::OsString;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::child::audit_in_child;
use super::pages;
use super::state::{ServeConfig, Shared, page_error};

/// The reconciliation file of a run's results, as `verify --pingone` names it.
pub(super) const AUDIT_FILE: &str = "results.audit.csv";

pub(super) async fn check_audit(State(server): Shared, UrlPath(id): UrlPath<u64>) -> Response {
    let found = server.runs().get(&id).map(|entry| {
        (
            entry.audit_offered(),
            entry.folder.clone(),
            entry.name.clone(),
        )
    });
    let (folder, name) = match found {
        None => return page_error(StatusCode::NOT_FOUND, "no such run"),
        Some((false, _, _)) => return Redirect::to(&format!("/runs/{id}")).into_response(),
        Some((true, folder, name)) => (folder, name),
    };
    let _running = match server.run_slot() {
        Ok(slot) => slot,
        Err(busy) => return busy.page(),
    };
    let summary = folder.join("audit-summary.json");
    let args = match verify_args(&server.config, &folder, &summary) {
        Ok(args) => args,
        Err(error) => return page_error(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let args: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    match audit_in_child(&args, &server.config.credentials, &summary).await {
        Ok((exit_code, checked)) => {
            Html(crate::secrets::scrub(&page(id, &name, exit_code, &checked))).into_response()
        }
        Err(why) => page_error(
            StatusCode::BAD_GATEWAY,
            &format!("PingOne's audit log could not be checked: {why}"),
        ),
    }
}

/// `verify RESULTS --pingone` with the server's connection: its API, its token endpoint, its
/// token file and certificates, and, on a rehearsal, the server's simulator as the tenant.
fn verify_args(
    config: &ServeConfig,
    folder: &std::path::Path,
    summary: &std::path::Path,
) -> Result<Vec<OsString>, crate::cli::connection::ConnectionError> {
    let endpoint = &config.connection.endpoint;
    let api_url = endpoint.api_url()?;
    let mut args: Vec<OsString> = vec![
        "verify".into(),
        folder.join("results.csv").into(),
        "--pingone".into(),
        "--audit-wait".into(),
        humantime::format_duration(config.audit_wait)
            .to_string()
            .into(),
        "--summary-json".into(),
        summary.into(),
        "-o".into(),
        folder.join(AUDIT_FILE).into(),
        "--api-url".into(),
        api_url.into(),
    ];
    match (&endpoint.token_url, &endpoint.auth_url) {
        (Some(token_url), _) => args.extend(["--token-url".into(), token_url.into()]),
        (None, Some(auth_url)) => args.extend(["--auth-url".into(), auth_url.into()]),
        (None, None) => args.extend(["--auth-url".into(), endpoint.region.auth_url().into()]),
    }
    for (flag, path) in [
        ("--token-file", &endpoint.token_file),
        ("--ca-file", &endpoint.ca_file),
    ] {
        if let Some(path) = path {
            args.extend([flag.into(), path.into()]);
        }
    }
    if config.rehearsal {
        args.push("--rehearsal".into());
    }
    Ok(args)
}

/// What PingOne's audit log said of run `id`'s results (the summary `verify --pingone` wrote,
/// exiting `exit_code`): the count of each verdict, and the reconciliation to download.
fn page(id: u64, name: &str, exit_code: u8, checked: &serde_json::Value) -> String {
    let count = |key: &str| checked[key].as_u64().unwrap_or(0);
    let verdicts: String = [
        (
            "CONFIRMED",
            "confirmed",
            "the results record a change, and PingOne logged it",
        ),
        (
            "NOT_IN_PINGONE",
            "not_in_pingone",
            "the results record a change PingOne did not log",
        ),
        (
            "NOT_IN_RESULTS",
            "not_in_results",
            "PingOne logged a change the results do not record",
        ),
        (
            "CONSISTENT",
            "consistent",
            "nothing was changed, and PingOne logged no change",
        ),
    ]
    .iter()
    .map(|(verdict, key, meaning)| {
        format!(
            "<tr><th>{verdict}</th><td id=\"{key}\">{}</td><td>{meaning}</td></tr>",
            count(key)
        )
    })
    .collect();
    let said = if exit_code == 0 {
        "PingOne's audit log agrees with the results: every change they record is in it, and it holds no other change by this run."
    } else {
        "PingOne's audit log and the results disagree: the reconciliation's NOT_IN_PINGONE and NOT_IN_RESULTS lines say where."
    };
    let nothing = if checked["nothing_logged"] == true {
        "<p id=\"nothing-logged\">PingOne's audit log holds no activity of this run at all, so nothing could be confirmed: its audit messages may not be written yet (check again later), or this environment does not log bypass changes. This does not show that the grants are missing.</p>"
    } else {
        ""
    };
    pages::layout(
        "Audit check",
        &format!(
            "<h1>Run {id}: {}</h1><p id=\"audit-verdict\">{said}</p>{nothing}\
             <table id=\"verdicts\"><thead><tr><th>Verdict</th><th>Lines</th><th>Meaning</th></tr></thead><tbody>{verdicts}</tbody></table>\
             <p>{} activities read ({} of this run); requests to PingOne's audit log: {}.</p>\
             <p><a href=\"/runs/{id}/results.audit.csv\" id=\"reconciliation\">Download the reconciliation</a> · <a href=\"/runs/{id}\">Back to the run</a></p>",
            pages::escape(name),
            count("activities_read"),
            count("activities_of_run"),
            count("requests"),
        ),
    )
}
