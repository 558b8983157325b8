//! What the binary prints besides its results, set up once at its start: log lines on standard
//! error (text, or one JSON object a line), calamine's warnings counted rather than printed, and
//! the panics of a workbook's reader kept quiet (the run reports them in its own words).

use std::io::IsTerminal;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::record::log_format::{LogFormat, LogWriter};

/// calamine panics on some files that lie (an index the file gives, used unchecked); the reading
/// thread catches the panic and the run stops with an error naming the file and what to do, so
/// the panic's own message and backtrace (the library's source paths) are not printed. Any other
/// panic is printed as Rust prints it.
pub fn quiet_reader_panics() {
    let printed = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |panic| {
        if !crate::input::panicked_in_reader(panic) {
            printed(panic);
        }
    }));
}

/// Counts the workbook reader's warnings into `input::READER_WARNINGS`.
struct ReaderWarnings;

impl<S: tracing::Subscriber> Layer<S> for ReaderWarnings {
    fn on_event(
        &self,
        _event: &tracing::Event<'_>,
        _context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        crate::input::READER_WARNINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Log lines in `format` on standard error, at `RUST_LOG`'s levels (info by default).
/// calamine warns once per odd thing in a file, which a hostile file makes millions of: its
/// warnings are counted (the reader says how many) and printed only when `RUST_LOG` asks for
/// them.
pub fn init(format: LogFormat) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => tracing_subscriber::EnvFilter::try_new(&directives)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        Err(_) => tracing_subscriber::EnvFilter::new("info,calamine=off"),
    };
    let counted = tracing_subscriber::filter::filter_fn(|metadata| {
        metadata.target().starts_with("calamine") && *metadata.level() <= tracing::Level::WARN
    });
    let registry = tracing_subscriber::registry().with(ReaderWarnings.with_filter(counted));
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(LogWriter)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_filter(filter),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(LogWriter)
                    .with_filter(filter),
            )
            .init(),
    }
}
