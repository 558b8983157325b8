//! `--log-format text|json`: what the run says on standard error (logs, status lines, the
//! final summary) as plain lines for a person, or one JSON object a line for a log collector.
//! Logs go through `tracing`; the lines the run writes itself go through `say`, which writes
//! them in the same shape as `tracing-subscriber`'s JSON (`timestamp`, `level`, `fields`,
//! `target`), so a collector parses every line the same way.

use std::io::Write;

use serde_json::{Map, Value, json};

use crate::record::progress::LogWriter;

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
}

/// One line in `tracing-subscriber`'s JSON shape.
pub fn json_line(level: Level, message: &str, mut fields: Map<String, Value>) -> String {
    fields.insert("message".to_owned(), Value::String(message.to_owned()));
    json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": level.as_str(),
        "fields": fields,
        "target": "pingone_bypass",
    })
    .to_string()
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
