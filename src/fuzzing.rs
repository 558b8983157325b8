//! The entry points of the fuzz targets (`fuzz/`): one function per parser of outside data,
//! taking raw bytes, doing what the tool does with such bytes, and dropping the result. A panic,
//! an abort or a hang in one is a bug; anything else is an answer. The same functions replay
//! the kept corpus in the test suite (`tests/it/fuzz_corpus.rs`), so that CI, which has no
//! nightly toolchain, still runs every input that ever found a bug.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{TimeZone, Utc};

/// A target's entry point.
pub type Entry = fn(&[u8]);

/// The targets, by the names of their folders under `fuzz/corpus`.
pub const TARGETS: [(&str, Entry); 6] = [
    ("expiry", expiry),
    ("csv", csv),
    ("header", header),
    ("workbook", workbook),
    ("resume", resume),
    ("pingone_answers", pingone_answers),
];

/// An expiry as a cell or `--until` may write it, and every duration flag.
pub fn expiry(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 23, 0, 0).single();
    let zones = [
        crate::expiry::Zone::Utc,
        crate::expiry::Zone::Named(chrono_tz::America::New_York),
        crate::expiry::Zone::Named(chrono_tz::Australia::Lord_Howe),
    ];
    if let Some(start) = start {
        for zone in zones {
            let _ = crate::expiry::parse_until(&text, start, zone);
        }
    }
    let _ = crate::expiry::parse_naive(&text);
    let _ = crate::expiry::parse_recorded_instant(&text);
    let _ = crate::expiry::Zone::parse(&text);
    let _ = crate::pingone::parse_instant(&text);
    let _ = crate::pingone::parse_exact_bypass_until(&text);
    use crate::cli::values;
    let _ = values::parse_max_window(&text);
    let _ = values::parse_timeout(&text);
    let _ = values::parse_resume_margin(&text);
    let _ = values::parse_outage_patience(&text);
    let _ = values::parse_duration(&text);
    let _ = values::parse_rate(&text);
}

/// A CSV as a file (checked whole first, then read) and as standard input (read as it comes).
pub fn csv(data: &[u8]) {
    read_all(&written(data, "input.csv"));
    if let Ok(mut input) = crate::input::InputReader::from_reader(
        Box::new(Cursor::new(data.to_vec())),
        "fuzz".to_owned(),
    ) {
        while let Some(Ok(_)) = input.next_record() {}
    }
}

/// A header row: the names from the bytes' first line, split on commas, as a header read from
/// any format is interpreted.
pub fn header(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let names: Vec<String> = line
        .lines()
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_owned)
        .collect();
    let _ = crate::input::interpret_header(&names, "fuzz");
}

/// A workbook in each format the tool reads (the first byte picks the name it is given, so
/// that one corpus serves all five readers), and its sheet list as the page reads it.
///
/// calamine panics on some files that lie (an index the file gives, used unchecked); the tool
/// catches such a panic on its reading thread and stops with an error naming the file. So a
/// panic raised inside calamine unwinds here as it does in the tool, and only a panic anywhere
/// else, or an abort, is a crash.
pub fn workbook(data: &[u8]) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |panic| {
            if !crate::input::panicked_in_reader(panic) {
                fuzzer_hook(panic);
            }
        }));
    });
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let extension = ["xlsx", "xlsb", "xls", "ods", "xlsm"][usize::from(pick) % 5];
    let _ = crate::input::sheet_names(bytes);
    read_all(&written(bytes, &format!("input.{extension}")));
}

/// An earlier run's files as `--resume` reads them: the first byte picks whether the rest is the
/// results, a completion journal, or the run record.
pub fn resume(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let folder = scratch().join("resume");
    let _ = std::fs::remove_dir_all(&folder);
    if std::fs::create_dir_all(&folder).is_err() {
        return;
    }
    let results = folder.join("outage.results.csv");
    let target = match pick % 3 {
        0 => results.clone(),
        1 => crate::record::journal::Journal::path_for(&results),
        _ => crate::record::manifest::Manifest::path_for(&results),
    };
    if std::fs::write(&target, bytes).is_ok() {
        let _ = crate::record::resume::EarlierResults::load(&results, crate::row::Report::Grants);
    }
}

/// Every answer of PingOne's the client decodes: a bypass answer, an error body (as the row's
/// message is made of it), a listing page of each kind, a token answer and a token error.
pub fn pingone_answers(data: &[u8]) {
    let _ = crate::pingone::BypassState::read(data);
    let _ = crate::pingone::ErrorAnswer::read(data).map(|answer| answer.retry_after());
    for status in [400_u16, 403, 404, 429, 500, 503] {
        if let Ok(status) = reqwest::StatusCode::from_u16(status) {
            let _ = crate::gateway::client::describe_error_body(
                status,
                data,
                "https://api.pingone.com/v1",
            );
        }
    }
    let _ = serde_json::from_slice::<crate::pingone::ListPage<crate::pingone::ListedUser>>(data);
    let _ =
        serde_json::from_slice::<crate::pingone::ListPage<crate::pingone::ListedCollection>>(data);
    let _ = serde_json::from_slice::<crate::pingone::TokenResponse>(data);
    let _ = serde_json::from_slice::<crate::pingone::OAuthErrorBody>(data);
    let _ = crate::pingone::quote_bytes(data, crate::pingone::QUOTED_BYTES);
}

/// Opens the input at `path` as `run` does and reads every row.
fn read_all(path: &std::path::Path) {
    let source = crate::input::InputSource::File(path.to_owned());
    if let Ok(mut input) =
        crate::input::InputReader::open(&source, &crate::input::ReadOptions::default())
    {
        while let Some(Ok(_)) = input.next_record() {}
    }
}

/// `data` written to a file of this process's scratch folder.
fn written(data: &[u8], name: &str) -> PathBuf {
    let path = scratch().join(name);
    let _ = std::fs::write(&path, data);
    path
}

/// A folder of this process's own, made once.
fn scratch() -> PathBuf {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER
        .get_or_init(|| {
            let folder =
                std::env::temp_dir().join(format!("pingone-bypass-fuzz-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&folder);
            folder
        })
        .clone()
}
