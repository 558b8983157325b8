//! A proxy that refuses is the proxy's refusal: a forward proxy of our own on loopback answers
//! every tunnel (`CONNECT`) with 407 or 403, and the run stops at once (exit 3, nothing sent to
//! PingOne, every row `not_attempted` with `PROXY_REFUSED`), naming the proxy by host and port
//! and never its user or password, and asking it again no more than once.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{ENV_A, binary, column, read_results, run_files, stderr, users_csv};

/// A forward proxy on loopback that answers every `CONNECT` with `status_line`: its port, and
/// the request heads it was sent, in lowercase.
async fn refusing_proxy(status_line: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0_u8; 1024];
                while !head.windows(4).any(|end| end == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&chunk[..read]),
                    }
                }
                // Header names as lowercase, whoever wrote them.
                seen.lock()
                    .expect("not poisoned")
                    .push(String::from_utf8_lossy(&head).to_ascii_lowercase());
                let answer = format!(
                    "{status_line}\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, heads)
}

/// `run` of 5 rows through the proxy at `port`, with `credentials` (the worker application's,
/// or a ready token) and PingOne's real host names, which only the proxy would reach.
async fn run_through_proxy(
    port: u16,
    credentials: &[(&str, &str)],
) -> (
    std::process::Output,
    Vec<std::collections::BTreeMap<String, String>>,
) {
    let files = run_files(&users_csv(5, ENV_A, "8h"));
    let output = binary()
        .arg("run")
        .arg(&files.input)
        .args(["--progress", "never"])
        .env(
            "HTTPS_PROXY",
            format!("http://alice:hunter2@127.0.0.1:{port}"),
        )
        .env("PINGONE_API_URL", "https://api.pingone.com/v1")
        .env("PINGONE_AUTH_URL", "https://auth.pingone.com")
        .envs(credentials.iter().copied())
        .output()
        .await
        .expect("the run runs");
    (output, read_results(&files.output))
}

const WORKER_APP: [(&str, &str); 3] = [
    ("PINGONE_CLIENT_ID", "a-client"),
    ("PINGONE_CLIENT_SECRET", "a-secret-of-the-worker-app"),
    (
        "PINGONE_ENVIRONMENT_ID",
        "6f1c2b9e-0d4a-4c3b-9e8f-1a2b3c4d5e6f",
    ),
];

fn assert_stopped_by_the_proxy(
    output: &std::process::Output,
    rows: &[std::collections::BTreeMap<String, String>],
    says: &str,
) {
    let log = stderr(output);
    assert_eq!(output.status.code(), Some(3), "{log}");
    assert!(log.contains(says), "{log}");
    assert!(
        !log.contains("hunter2") && !log.contains("alice"),
        "the proxy's user and password stay out: {log}"
    );
    assert!(!log.contains("check the network"), "{log}");
    assert_eq!(rows.len(), 5);
    assert!(column(rows, "status").iter().all(|s| *s == "not_attempted"));
    assert!(
        column(rows, "error_code")
            .iter()
            .all(|c| *c == "PROXY_REFUSED")
    );
    assert!(
        column(rows, "error_message")
            .iter()
            .all(|m| !m.contains("hunter2") && m.contains(says)),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_wants_other_credentials_is_named_and_asked_only_once() {
    let (port, heads) = refusing_proxy("HTTP/1.1 407 Proxy Authentication Required").await;
    let (output, rows) = run_through_proxy(port, &WORKER_APP).await;
    assert_stopped_by_the_proxy(
        &output,
        &rows,
        &format!("the proxy 127.0.0.1:{port} refused the credentials in its URL (407"),
    );
    let heads = heads.lock().expect("not poisoned").clone();
    // reqwest says a 407 is one: no CONNECT of our own, and no retry of the token request.
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with("connect auth.pingone.com:443 "),
        "{heads:?}"
    );
    assert!(heads[0].contains("proxy-authorization: basic"), "{heads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_refuses_the_destination_says_so_after_one_question_of_our_own() {
    let (port, heads) = refusing_proxy("HTTP/1.1 403 Forbidden").await;
    let (output, rows) = run_through_proxy(port, &WORKER_APP).await;
    assert_stopped_by_the_proxy(
        &output,
        &rows,
        &format!(
            "the proxy 127.0.0.1:{port} refused to open a tunnel to auth.pingone.com:443 (403"
        ),
    );
    // reqwest hides a 403 as "unsuccessful": the one CONNECT of our own finds it out.
    let heads = heads.lock().expect("not poisoned").clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(
        heads
            .iter()
            .all(|head| head.starts_with("connect auth.pingone.com:443 ")
                && head.contains("proxy-authorization: basic ywxpy2u6ahvudgvymg==")),
        "{heads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_refusing_the_api_stops_a_run_with_a_ready_token_at_its_first_request() {
    let (port, heads) = refusing_proxy("HTTP/1.1 403 Forbidden").await;
    let token = "a-ready-access-token-0123456789abcdef0123456789";
    let (output, rows) = run_through_proxy(port, &[("PINGONE_API_ACCESS_TOKEN", token)]).await;
    assert_stopped_by_the_proxy(
        &output,
        &rows,
        &format!("the proxy 127.0.0.1:{port} refused to open a tunnel to api.pingone.com:443 (403"),
    );
    assert!(!stderr(&output).contains(token));
    let heads = heads.lock().expect("not poisoned").clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
}
