//! `verify`: a results file held against the SHA-256 its run record keeps.

use std::io::Write;

use crate::outcome::exit;
use crate::record::log_format::LogFormat;
use crate::record::manifest::{Verified, verify as check};

/// Says on standard output whether `results` is what its run wrote; the exit code says it too.
pub fn verify(results: &std::path::Path, format: LogFormat) -> u8 {
    match check(results) {
        Ok(Verified::Matches { sha256, what }) => {
            say(&format!(
                "{}: matches its run record, of {what} (SHA-256 {sha256})",
                results.display()
            ));
            exit::SUCCESS
        }
        Ok(Verified::Altered {
            recorded,
            found,
            what,
        }) => {
            say(&format!(
                "{}: ALTERED since the run wrote it (SHA-256 {found}, the run record of {what} says {recorded})",
                results.display()
            ));
            exit::UNFINISHED
        }
        Err(error) => {
            format.error(&error.to_string());
            exit::USAGE
        }
    }
}

/// The verdict on standard output; if that is gone (a closed pipe), the exit code still says it.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}
