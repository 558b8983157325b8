//! The page's connections, bounded so that none can lock the page. `axum::serve` has no bound
//! at all (300 connections each sending half a header once held 20,000 descriptors for good);
//! hyper's connection builder closes a connection whose request header has not arrived within
//! `HEADER_READ_TIMEOUT`, which also ends an idle keep-alive connection.
//!
//! The bound is sized by the process's descriptor limit (thousands: an idle connection costs a
//! few KiB in tokio, where a thread per connection would not), and at the bound a new
//! connection does not wait behind the ones that send nothing: the oldest connection that has
//! not yet sent a whole request header is cut to make room. A local process that holds open
//! hundreds of half-sent requests, and reopens them as they are cut, so never keeps the
//! helpdesk out. Only when every connection is in a request (a download, a run's events) is a
//! new one told "busy, try again".

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::defaults::{FEWEST_PAGE_CONNECTIONS, MOST_PAGE_CONNECTIONS};

/// Descriptors kept for everything but connections: the listener, the work folder's files
/// and journals, the control socket, the pipes of the runs' child processes.
const DESCRIPTORS_KEPT: u64 = 256;

/// The longest a request's header may take to arrive, and a connection may sit idle between
/// requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the "busy" answer may take to write to a connection past the bound.
const BUSY_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// After a failed accept (out of descriptors), the wait before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const BUSY: &str = "The page is busy: too many connections are open. Try again in a few seconds.\n";

/// How many connections may be open at once: `requested` (`serve --connections`), or what the
/// descriptor limit leaves once `DESCRIPTORS_KEPT` are set aside, raising the process's soft
/// limit to its hard one first (as Go's runtime does) so that a default of 1,024 is not the
/// bound; never fewer than `FEWEST_PAGE_CONNECTIONS` nor more than `MOST_PAGE_CONNECTIONS`.
pub fn bound(requested: Option<usize>) -> usize {
    let sized = requested.unwrap_or_else(|| {
        let descriptors = raised_descriptor_limit();
        usize::try_from(descriptors.saturating_sub(DESCRIPTORS_KEPT)).unwrap_or(usize::MAX)
    });
    sized.clamp(FEWEST_PAGE_CONNECTIONS, MOST_PAGE_CONNECTIONS)
}

/// The soft descriptor limit, raised to the hard limit where it was lower (never past what
/// `MOST_PAGE_CONNECTIONS` needs).
fn raised_descriptor_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return FEWEST_PAGE_CONNECTIONS as u64 + DESCRIPTORS_KEPT;
    };
    let wanted = (MOST_PAGE_CONNECTIONS as u64 + DESCRIPTORS_KEPT).min(hard);
    if soft < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        return wanted;
    }
    soft
}

/// The open connections, oldest first, each with whether it has sent a whole request header
/// yet and the token that cuts it.
#[derive(Default)]
struct Open {
    next: u64,
    connections: BTreeMap<u64, Tracked>,
}

struct Tracked {
    header_seen: Arc<AtomicBool>,
    cut: CancellationToken,
}

struct Connections {
    open: Mutex<Open>,
    bound: usize,
}

impl Connections {
    /// A place for a new connection: free, or made by cutting the oldest connection that has
    /// not sent a whole header; `None` when every open one is in a request.
    fn admit(&self) -> Option<(u64, Arc<AtomicBool>, CancellationToken)> {
        let mut open = self.lock();
        if open.connections.len() >= self.bound {
            let idle = open
                .connections
                .iter()
                .find(|(_, tracked)| !tracked.header_seen.load(Ordering::Acquire))
                .map(|(id, _)| *id)?;
            if let Some(cut) = open.connections.remove(&idle) {
                cut.cut.cancel();
            }
        }
        let id = open.next;
        open.next += 1;
        let tracked = Tracked {
            header_seen: Arc::new(AtomicBool::new(false)),
            cut: CancellationToken::new(),
        };
        let admitted = (id, tracked.header_seen.clone(), tracked.cut.clone());
        open.connections.insert(id, tracked);
        Some(admitted)
    }

    fn closed(&self, id: u64) {
        self.lock().connections.remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // Holds plain values that no panic can leave half-written.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Serves `app` on `listener`, at most `bound` connections at once, until the process ends.
pub async fn serve(listener: TcpListener, app: Router, bound: usize) -> std::io::Result<()> {
    let connections = Arc::new(Connections {
        open: Mutex::default(),
        bound,
    });
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
        let Some((id, header_seen, cut)) = connections.admit() else {
            tokio::spawn(busy(stream));
            continue;
        };
        let (app, connections) = (app.clone(), connections.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = serve_connection(stream, app, header_seen) => {}
                () = cut.cancelled() => {}
            }
            connections.closed(id);
        });
    }
}

async fn serve_connection(stream: TcpStream, app: Router, header_seen: Arc<AtomicBool>) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        // hyper calls this once a whole request header has arrived.
        header_seen.store(true, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_what_is_asked_within_its_limits() {
        assert_eq!(bound(Some(1000)), 1000);
        assert_eq!(bound(Some(1)), FEWEST_PAGE_CONNECTIONS);
        assert_eq!(bound(Some(1_000_000)), MOST_PAGE_CONNECTIONS);
    }

    #[test]
    fn at_the_bound_the_oldest_connection_without_a_header_makes_room() {
        let connections = Connections {
            open: Mutex::default(),
            bound: 3,
        };
        let admitted: Vec<_> = (0..3).filter_map(|_| connections.admit()).collect();
        admitted[0].1.store(true, Ordering::Release);
        let fourth = connections.admit();
        assert!(fourth.is_some());
        assert!(!admitted[0].2.is_cancelled(), "one in a request is kept");
        assert!(
            admitted[1].2.is_cancelled(),
            "the oldest without a header is cut"
        );
        assert!(!admitted[2].2.is_cancelled());
    }

    #[test]
    fn at_the_bound_with_every_connection_in_a_request_a_new_one_is_turned_away() {
        let connections = Connections {
            open: Mutex::default(),
            bound: 2,
        };
        for (_, header_seen, _) in (0..2).filter_map(|_| connections.admit()) {
            header_seen.store(true, Ordering::Release);
        }
        assert!(connections.admit().is_none());
    }
}
