//! The binary's edge: parse arguments, set up logging and the runtime, execute the command,
//! and hand back the exit code it ends with (the table in docs/cli.md).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use pingone_bypass::cli::Cli;
use pingone_bypass::outcome::exit;
use pingone_bypass::record::log_format::{LogFormat, LogWriter};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// calamine panics on some files that lie (an index the file gives, used unchecked); the reading
/// thread catches the panic and the run stops with an error naming the file and what to do, so
/// the panic's own message and backtrace (the library's source paths) are not printed. Any other
/// panic is printed as Rust prints it.
fn quiet_reader_panics() {
    let printed = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |panic| {
        if !pingone_bypass::input::panicked_in_reader(panic) {
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
        pingone_bypass::input::READER_WARNINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn main() -> ExitCode {
    quiet_reader_panics();
    let cli = Cli::parse();
    let format = cli.log_format;
    // calamine warns once per odd thing in a file, which a hostile file makes millions of:
    // its warnings are counted (the reader says how many) and printed only when RUST_LOG
    // asks for them.
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
    let code = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime
            .block_on(pingone_bypass::commands::execute(cli.command, format))
            .unwrap_or_else(|error| {
                format.error(&error.to_string());
                error.exit_code()
            }),
        Err(error) => {
            format.error(&format!("cannot start the async runtime: {error}"));
            exit::USAGE
        }
    };
    ExitCode::from(code)
}
