//! The page's connections, bounded: at most `MOST_CONNECTIONS` open at once (past it, a short
//! "busy, try again" answer and the connection closed), and each closed when its request's
//! header has not arrived within `HEADER_READ_TIMEOUT`, which also ends an idle keep-alive
//! connection. `axum::serve` has neither bound, so that 300 connections each sending half a
//! header once held 20,000 descriptors forever; hyper's own connection builder has both.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Connections open at once. A browser opens about six to a host; the page's runs each hold
/// one for their events.
pub const MOST_CONNECTIONS: usize = 64;

/// The longest a request's header may take to arrive, and a connection may sit idle between
/// requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the "busy" answer may take to write to a connection past the bound.
const BUSY_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// After a failed accept (out of descriptors), the wait before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const BUSY: &str = "The page is busy: too many connections are open. Try again in a few seconds.\n";

/// Serves `app` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(MOST_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, or a connection reset before it was accepted: the server
                // goes on, and the next accept may succeed.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        match open.clone().try_acquire_owned() {
            Ok(permit) => {
                let app = app.clone();
                tokio::spawn(async move {
                    serve_connection(stream, app).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(busy(stream));
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, app: Router) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        async move {
            Ok::<_, Infallible>(
                app.oneshot(request.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|never| match never {}),
            )
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, "a page connection ended with an error");
    }
}

/// Tells a connection past the bound to come back, and closes it.
async fn busy(mut stream: TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{BUSY}",
        BUSY.len()
    );
    let _ = tokio::time::timeout(BUSY_WRITE_TIMEOUT, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // What the client sent is read and dropped before the socket closes: closing with it
        // unread would reset the connection, and the client would lose the answer.
        let mut sink = [0_u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
