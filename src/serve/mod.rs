//! `pingone-bypass serve`: a page on loopback for the people who hold the spreadsheet during an
//! outage. Upload a file, see the plan (who, until when, where), confirm, watch the progress,
//! download the results; then end those bypasses the same way. Every step is the pipeline
//! itself: the plan is `run --dry-run --resolve`, the grant is `run`, an end is `end`, each a
//! typed request built from the server's options and the
//! form with the uploaded file as INPUT and run as a child process (`child`), so the page adds
//! no second implementation of anything and nothing a run does can stop the server. This file
//! starts the server and guards every request; `uploads` answers the form, `runs` a planned
//! run's pages, `ends` the end of a run's bypasses, `audits` a finished run's check against
//! PingOne's audit log, `state` holds what they share. The page is safe by default: loopback
//! only, a one-time launch key exchanged for a `SameSite=Strict`, `HttpOnly` cookie, `Host` and
//! `Origin` checked against the listen address, a strict Content-Security-Policy, capped uploads.

mod audits;
mod child;
mod connections;
mod ends;
mod history;
mod pages;
mod runs;
mod state;
mod uploads;

pub use pages::REHEARSAL_BANNER;
pub use state::{
    KeyRenewal, MOST_RUNS_AT_ONCE, MOST_UPLOAD_BYTES, MOST_UPLOADS_AT_ONCE, ServeConfig,
};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use runs::{download, events, phase_label, resume_run, run_page, start_run, stop_run};
use state::{Keys, Server, Shared, refuse, secured, session_cookie};
use uploads::{plan, sheets, status, status_form};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "--listen {0} is not a loopback address: the page may only be served to this machine (use 127.0.0.1 or [::1])"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the work folder {path}: {source}")]
    Workdir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds the listen address and returns the URL with its launch key, the way to a new key,
/// and the server.
pub async fn start(
    config: ServeConfig,
) -> Result<
    (
        String,
        KeyRenewal,
        impl std::future::Future<Output = std::io::Result<()>>,
    ),
    ServeError,
> {
    if !config.listen.ip().is_loopback() {
        return Err(ServeError::NotLoopback(config.listen));
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.workdir)
            .map_err(|source| ServeError::Workdir {
                path: config.workdir.clone(),
                source,
            })?;
    }
    let (runs, highest) = history::earlier(&config.workdir);
    let next_run = highest.saturating_add(1);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            address: config.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ServeError::Listen {
        address: config.listen,
        source,
    })?;
    if config.rehearsal {
        pages::mark_rehearsal();
    }
    let keys = Keys::new();
    let url = format!("http://{address}/?key={}", keys.launch);
    let server = Arc::new(Server {
        config,
        address,
        keys: Mutex::new(keys),
        runs: Mutex::new(runs),
        next_run: AtomicU64::new(next_run),
        uploads: Arc::new(tokio::sync::Semaphore::new(MOST_UPLOADS_AT_ONCE)),
        children: Arc::new(tokio::sync::Semaphore::new(MOST_RUNS_AT_ONCE)),
    });
    let app = Router::new()
        .route("/", get(home))
        .route("/page.js", get(script))
        .route("/page.css", get(style))
        .route("/plan", post(plan))
        .route("/sheets", post(sheets))
        .route("/status", get(status_form).post(status))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/start", post(start_run))
        .route("/runs/{id}/stop", post(stop_run))
        .route("/runs/{id}/resume", post(resume_run))
        .route("/runs/{id}/end", post(ends::plan_end))
        .route("/runs/{id}/audit", post(audits::check_audit))
        .route("/runs/{id}/events", get(events))
        .route("/runs/{id}/{file}", get(download))
        .layer(DefaultBodyLimit::max(MOST_UPLOAD_BYTES))
        .layer(axum::middleware::from_fn_with_state(server.clone(), guard))
        .with_state(server.clone());
    let bound = connections::bound(server.config.connections);
    tracing::debug!(bound, "the page keeps at most this many connections open");
    Ok((
        url,
        KeyRenewal(server),
        connections::serve(listener, app, bound),
    ))
}

/// Every request: the `Host` (and any `Origin`) must be the listen address, so that a page
/// elsewhere cannot reach this one through DNS rebinding; then the session cookie, which only
/// the launch key's first use hands out.
async fn guard(State(server): Shared, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let ours = |value: Option<&HeaderValue>, with_scheme: bool| {
        value
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let value = if with_scheme {
                    value.strip_prefix("http://").unwrap_or("")
                } else {
                    value
                };
                let port = server.address.port();
                value == format!("127.0.0.1:{port}")
                    || value == format!("localhost:{port}")
                    || value == format!("[::1]:{port}")
                    || value == server.address.to_string()
            })
    };
    if !ours(headers.get(header::HOST), false) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this page answers only at its own address",
        );
    }
    if headers.contains_key(header::ORIGIN) && !ours(headers.get(header::ORIGIN), true) {
        return refuse(
            StatusCode::FORBIDDEN,
            "requests from other sites are refused",
        );
    }
    if let Some(key) = launch_key(request.uri().query()) {
        let session = {
            let mut keys = server.keys();
            let fits = key == keys.launch && !keys.used;
            keys.used |= fits;
            fits.then(|| keys.session.clone())
        };
        if let Some(session) = session {
            let mut response = Redirect::to(request.uri().path()).into_response();
            let cookie = format!(
                "{}={session}; HttpOnly; SameSite=Strict; Path=/",
                session_cookie(server.address.port()),
            );
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            return secured(response);
        }
        return refuse(
            StatusCode::FORBIDDEN,
            "this launch key has been used or is wrong; open the page from the browser that used it, or ask for a new key (pingone-bypass serve --workdir <its folder> --new-key)",
        );
    }
    let session = server.keys().session.clone();
    if session_of(headers, server.address.port()).as_deref() != Some(session.as_str()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "open the address serve printed (with its key) first",
        );
    }
    secured(next.run(request).await)
}

fn launch_key(query: Option<&str>) -> Option<String> {
    serde_urlencoded::from_str::<BTreeMap<String, String>>(query?)
        .ok()?
        .remove("key")
}

fn session_of(headers: &HeaderMap, port: u16) -> Option<String> {
    let name = session_cookie(port);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.to_owned())
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("page.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("page.css"),
    )
}

async fn home(State(server): Shared) -> Html<String> {
    let runs = server.runs();
    let listed: Vec<(u64, String, String)> = runs
        .iter()
        .rev()
        .map(|(id, entry)| (*id, entry.name.clone(), phase_label(entry)))
        .collect();
    Html(pages::home(&server.config.target, &listed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launch_key_and_the_session_are_read_from_where_a_browser_sends_them() {
        assert_eq!(launch_key(Some("key=abc&x=1")).as_deref(), Some("abc"));
        assert_eq!(launch_key(Some("x=1")), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static(
                "other=1; pingone_bypass_session_8001=theirs; pingone_bypass_session_8002=s3cr3t",
            ),
        );
        assert_eq!(
            session_of(&headers, 8002).as_deref(),
            Some("s3cr3t"),
            "another serve's session on the same host is not this one's"
        );
        assert_eq!(session_of(&headers, 8003), None);
    }
}
