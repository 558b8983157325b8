//! Ctrl-C and SIGTERM for the commands that run until stopped or must stop cleanly: listened
//! for from the moment the listener is made, so that a signal that comes early is not lost.

use crate::commands::CommandError;

/// Ctrl-C and, on Unix, SIGTERM (what a service manager or `kill` sends).
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn listen() -> Result<Self, CommandError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind, signal_name| {
                signal(kind).map_err(|source| CommandError::Signal {
                    signal: signal_name,
                    source,
                })
            };
            Ok(Self {
                interrupt: listen(SignalKind::interrupt(), "Ctrl-C")?,
                terminate: listen(SignalKind::terminate(), "SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next Ctrl-C or SIGTERM.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            // Without the listener there is nothing to wait for but the process's end.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
