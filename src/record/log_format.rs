//! `--log-format text|json`: what the run says on standard error (logs, status lines, the
//! final summary) as plain lines for a person, or one JSON object a line for a log collector.
//! Logs go through `tracing`; the lines the run writes itself go through `say`, which writes
//! them in the same shape as `tracing-subscriber`'s JSON (`timestamp`, `level`, `fields`,
//! `target`), so a collector parses every line the same way. Every line goes around the
//! progress bar, when one is drawn, so that neither tears the other.

use std::io::Write;

use serde_json::{Map, Value, json};

use indicatif::ProgressBar;

/// How lines on standard error are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// How serious a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }
}

impl LogFormat {
    /// Writes `text` as one line on standard error; in JSON, as the message, with `fields`
    /// beside it.
    pub fn say(self, level: Level, text: &str, fields: Map<String, Value>) {
        let line = match self {
            Self::Text => text.to_owned(),
            Self::Json => json_line(level, text, fields),
        };
        let mut stderr = LogWriter.line();
        // Standard error is where the run reports; if it is gone there is no one to tell.
        let _ = writeln!(stderr, "{line}");
    }

    /// An error that ends a command: `error: <message>`.
    pub fn error(self, message: &str) {
        self.say(Level::Error, &format!("error: {message}"), Map::new());
    }

    /// An error that ends a command, with the setting that would fix it (`setting` in JSON).
    pub fn error_about(self, message: &str, setting: Option<impl serde::Serialize>) {
        let mut fields = Map::new();
        if let Some(setting) = setting.and_then(|setting| serde_json::to_value(setting).ok()) {
            fields.insert("setting".to_owned(), setting);
        }
        self.say(Level::Error, &format!("error: {message}"), fields);
    }
}

/// The ID of the one run a command-line process makes, which every line it writes itself
/// carries as `run_id` (the run's log events carry it in their span).
static RUN_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the process's run in every line written from now on; the first name stays.
pub fn name_run(run_id: uuid::Uuid) {
    let _ = RUN_ID.set(run_id.to_string());
}

/// One line in `tracing-subscriber`'s JSON shape.
pub fn json_line(level: Level, message: &str, mut fields: Map<String, Value>) -> String {
    fields.insert("message".to_owned(), Value::String(message.to_owned()));
    if let Some(run_id) = RUN_ID.get() {
        fields
            .entry("run_id")
            .or_insert_with(|| Value::String(run_id.clone()));
    }
    json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": level.as_str(),
        "fields": fields,
        "target": "pingone_bypass",
    })
    .to_string()
}

/// The bar on screen, if one is. Log lines are written through it (`ProgressBar::suspend`),
/// so that neither tears the other; it is process-wide because the log subscriber is.
pub(crate) fn active_bar() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    static ACTIVE_BAR: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);
    // Holds a handle that no panic can leave half-written.
    ACTIVE_BAR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where log lines go: standard error, around the progress bar when one is drawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl LogWriter {
    /// A line to write, written out whole when dropped.
    pub fn line(self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One log line, written out whole when dropped.
pub struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        // Every log line, the tool's own and its libraries', is cleared of every secret the
        // process holds on its way out.
        let line = crate::secrets::scrub(&String::from_utf8_lossy(&self.0));
        let write = || {
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        };
        let bar = active_bar().clone();
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> Self::Writer {
        LogLine(Vec::with_capacity(256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_carries_the_message_and_the_fields_in_tracings_shape() {
        let mut fields = Map::new();
        fields.insert("succeeded".to_owned(), json!(3));
        let line: Value =
            serde_json::from_str(&json_line(Level::Warn, "done", fields)).expect("one JSON object");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["message"], "done");
        assert_eq!(line["fields"]["succeeded"], 3);
        assert_eq!(line["target"], "pingone_bypass");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
