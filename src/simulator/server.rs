//! The accept loop. `axum::serve` cannot drop one connection on request, and a simulated
//! connection reset must be a real TCP RST that the client sees mid-request; so each connection
//! is served by hyper directly, beside a switch that a handler can flip to reset it.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// A connection's byte stream, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Lets a handler reset the connection its request arrived on.
#[derive(Clone)]
pub struct ConnectionControl {
    reset: CancellationToken,
}

impl ConnectionControl {
    pub fn reset(&self) {
        self.reset.cancel();
    }
}

pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tokio::spawn(serve_connection(
                    stream,
                    tls.clone(),
                    router.clone(),
                    shutdown.clone(),
                ));
            }
            Err(error) => {
                // Running out of file descriptors is the usual cause; pausing lets
                // connections close instead of spinning on the same error.
                tracing::warn!(%error, "simulator could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: CancellationToken,
) {
    // Nagle's algorithm would hold small responses back by up to 40 ms behind delayed ACKs.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    // A second handle on the same socket, so that linger can be set after hyper owns the stream.
    let reset_handle = socket2::SockRef::from(&stream).try_clone();
    let control = ConnectionControl {
        reset: CancellationToken::new(),
    };
    let reset_requested = control.reset.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(control.clone());
        let router = router.clone();
        async move {
            Ok::<_, Infallible>(
                router
                    .oneshot(request.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|never| match never {}),
            )
        }
    });
    let stream: Box<dyn Io> = match tls {
        None => Box::new(stream),
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(stream) => Box::new(stream),
            Err(error) => {
                // A client that does not trust the certificate ends here, as PingOne would.
                tracing::debug!(%error, "TLS handshake failed");
                return;
            }
        },
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "simulator connection ended with an error");
            }
        }
        () = reset_requested.cancelled() => {
            // With a zero linger, closing the socket sends RST instead of FIN.
            match &reset_handle {
                Ok(socket) => {
                    if let Err(error) = socket.set_linger(Some(Duration::ZERO)) {
                        tracing::debug!(%error, "could not arm the connection reset");
                    }
                }
                Err(error) => tracing::debug!(%error, "could not arm the connection reset"),
            }
        }
        () = shutdown.cancelled() => {}
    }
}
