//! The page's HTML, rendered on the server: every value from a file or a run is escaped, and
//! the only script is the page's own (`page.js`), as the Content-Security-Policy demands.

use std::collections::BTreeMap;
use std::path::Path;

use crate::record::summary::Summary;

/// Text made safe to put in HTML, inside elements or quoted attributes.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The sheet picker: the first sheet unless the page lists the chosen workbook's sheets here.
const SHEET_CHOICE: &str =
    "<select name=\"sheet\" class=\"sheets\"><option value=\"\">The first sheet</option></select>";

/// Whether this process's page is a rehearsal (`serve --simulate`). One server runs in a
/// process, and every page it renders, errors included, must say so: set once as it starts.
static REHEARSAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Marks every page from now on as a rehearsal's.
pub fn mark_rehearsal() {
    let _ = REHEARSAL.set(true);
}

/// The words every page of a rehearsal opens with.
pub const REHEARSAL_BANNER: &str = "Rehearsal: every request goes to the built-in simulator started with this server; nothing reaches PingOne.";

/// The encodings a CSV from Excel or an older system is saved in, as `--encoding` names them.
const ENCODING_CHOICE: &str = "<select name=\"encoding\"><option value=\"\">UTF-8 (Excel's \"CSV UTF-8\")</option><option value=\"windows-1252\">Windows-1252 (Excel's plain \"CSV\", Western Europe)</option><option value=\"iso-8859-1\">ISO-8859-1 (Latin-1)</option><option value=\"utf-16le\">UTF-16LE (\"Unicode text\")</option><option value=\"utf-16be\">UTF-16BE</option><option value=\"shift_jis\">Shift JIS</option><option value=\"windows-1251\">Windows-1251 (Cyrillic)</option></select>";

/// What to do with rows hidden in a sheet (`--hidden-rows`).
const HIDDEN_ROWS_CHOICE: &str = "<select name=\"hidden_rows\"><option value=\"\">Stop and tell me</option><option value=\"skip\">Leave hidden rows out</option><option value=\"include\">Read hidden rows too</option></select>";

/// A message of the command line's, in the form's words: each flag named as the field that
/// sets it, and the server's own folder as the upload's name. The command line's messages
/// are the one source of every rule; this only renames what they tell the admin to change.
pub fn in_form_words(message: &str, upload: &str, kept_as: &str) -> String {
    const RENAMED: &[(&str, &str)] = &[
        (
            "fill it in or pass --env <UUID>",
            "fill it in, or fill in Environment on the form",
        ),
        (
            "fill it in or pass --until <WHEN>",
            "fill it in, or fill in Expiry on the form",
        ),
        ("no --env was given", "no Environment was filled in"),
        ("no --until was given", "no Expiry was filled in"),
        (
            "pass --encoding utf-16le (or utf-16be)",
            "choose UTF-16LE (or UTF-16BE) as the file's encoding on the form",
        ),
        (
            "or name its encoding with --encoding (for instance --encoding windows-1252)",
            "or choose the file's encoding on the form (for instance Windows-1252)",
        ),
        (
            "pass --hidden-rows skip to leave them out, or --hidden-rows include to read them too",
            "choose \"Leave hidden rows out\" or \"Read hidden rows too\" under Rows hidden in the sheet",
        ),
        ("(--hidden-rows skip)", "(as the form asked)"),
        (
            "name the sheet to read with --sheet",
            "choose the sheet to read on the form",
        ),
        (
            "name one with --sheet to read it",
            "choose one on the form to read it",
        ),
        (
            "(in --timezone, UTC by default)",
            "(in the form's time zone, UTC by default)",
        ),
        (
            "no later than --max-window after the run start",
            "no later than the longest bypass this server allows after now",
        ),
        ("--env ", "Environment "),
        ("--until ", "Expiry "),
        ("--timezone ", "Time zone "),
        ("--encoding ", "Encoding "),
        ("--sheet ", "Sheet "),
    ];
    let mut worded = message.replace(kept_as, &format!("the upload {upload:?}"));
    // "later than --max-window 7days allows" names the server's own setting.
    const WINDOW: &str = "later than --max-window ";
    while let Some(start) = worded.find(WINDOW) {
        let after = start + WINDOW.len();
        let Some(length) = worded[after..].find(" allows") else {
            break;
        };
        let window = worded[after..after + length].to_owned();
        worded.replace_range(
            start..after + length + " allows".len(),
            &format!("later than this server allows ({window} from now at most)"),
        );
    }
    for (flag, field) in RENAMED {
        worded = worded.replace(flag, field);
    }
    worded
}

pub(super) fn layout(title: &str, body: &str) -> String {
    let rehearsal = REHEARSAL.get().copied().unwrap_or(false);
    let (title_prefix, banner) = if rehearsal {
        (
            "Rehearsal · ",
            format!("<p class=\"rehearsal\" id=\"rehearsal\">{REHEARSAL_BANNER}</p>"),
        )
    } else {
        ("", String::new())
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title_prefix}{} · pingone-bypass</title><link rel=\"stylesheet\" href=\"/page.css\"><script src=\"/page.js\" defer></script></head><body><header><a href=\"/\">pingone-bypass</a></header><main>{banner}{body}</main></body></html>",
        escape(title)
    )
}

pub fn home(target: &str, runs: &[(u64, String, String)]) -> String {
    let mut listed = String::new();
    for (id, name, phase) in runs {
        listed.push_str(&format!(
            "<li><a href=\"/runs/{id}\">Run {id}: {}</a> — {}</li>",
            escape(name),
            escape(phase)
        ));
    }
    if listed.is_empty() {
        listed.push_str("<li>None yet.</li>");
    }
    layout(
        "Upload",
        &format!(
            "<h1>Grant MFA bypasses from a file</h1>\
             <p class=\"target\">Requests go {}.</p>\
             <form id=\"upload\" method=\"post\" action=\"/plan\" enctype=\"multipart/form-data\">\
             <label class=\"drop\">CSV or workbook (.csv, .xlsx, .xls, .ods; at most 50 MiB)<input type=\"file\" name=\"file\" required></label>\
             <label>Sheet of a workbook{SHEET_CHOICE}</label>\
             <label>Environment for rows without one<input name=\"env\" placeholder=\"UUID\"></label>\
             <label>Expiry for rows without one<input name=\"until\" placeholder=\"8h, 2025-11-30 17:00\"></label>\
             <label>Time zone of dates without one<input name=\"timezone\" id=\"timezone\" value=\"UTC\"></label>\
             <label>The file's encoding (a CSV not saved as UTF-8){ENCODING_CHOICE}</label>\
             <label>Rows hidden in the sheet{HIDDEN_ROWS_CHOICE}</label>\
             <button type=\"submit\">Check the file</button></form>\
             <p>Checking sends nothing that grants: it reads the file and looks the named users up.</p>\
             <p><a href=\"/status\">Who has a bypass now?</a> Upload a file to read its users' bypasses back.</p>\
             <h2>This server's runs</h2><ul id=\"runs\">{listed}</ul>",
            escape(target)
        ),
    )
}

/// The rows of a plan or results file, by column name.
pub fn read_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    let Ok(header) = reader.headers().cloned() else {
        return Vec::new();
    };
    reader
        .records()
        .filter_map(Result::ok)
        .map(|record| {
            header
                .iter()
                .zip(record.iter())
                .map(|(name, cell)| (name.to_owned(), cell.to_owned()))
                .collect()
        })
        .collect()
}

/// "1 bypass", "412 bypasses": a button's count in words.
fn bypasses(count: u64) -> String {
    match count {
        1 => "1 bypass".to_owned(),
        count => format!("{count} bypasses"),
    }
}

/// A row's cell in `key`'s column, escaped for HTML (empty when the row has none).
fn cell(row: &BTreeMap<String, String>, key: &str) -> String {
    escape(row.get(key).map_or("", String::as_str))
}

pub fn plan(
    id: u64,
    name: &str,
    target: &str,
    summary: &Summary,
    rows: &[BTreeMap<String, String>],
) -> String {
    let mut table = String::new();
    for row in rows {
        table.push_str(&format!(
            "<tr class=\"{status}\"><td>{}</td><td>{status}</td><td>{}</td><td>{}</td><td><time class=\"utc\">{}</time></td><td>{}</td></tr>",
            cell(row, "row"),
            cell(row, "environment_id"),
            cell(row, "user_id"),
            cell(row, "requested_until"),
            cell(row, "error_message"),
            status = cell(row, "status"),
        ));
    }
    let untils: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|row| row.get("status").map(String::as_str) == Some("planned"))
        .filter_map(|row| row.get("requested_until").map(String::as_str))
        .collect();
    let until = match untils.len() {
        0 => "no expiry".to_owned(),
        1 => untils
            .iter()
            .next()
            .map_or(String::new(), |until| format!("until {until}")),
        _ => format!(
            "until {} different times, the latest {}",
            untils.len(),
            untils.iter().last().copied().unwrap_or("")
        ),
    };
    let confirm = if summary.planned > 0 {
        format!(
            "<form method=\"post\" action=\"/runs/{id}/start\"><button type=\"submit\" id=\"confirm\">Grant {} {}</button></form>",
            bypasses(summary.planned),
            escape(&until)
        )
    } else {
        "<p>No row can be granted: fix the file and upload it again.</p>".to_owned()
    };
    let refused = rows
        .iter()
        .filter(|row| {
            row.get("status").map(String::as_str) == Some("failed")
                && matches!(
                    row.get("http_status").map(String::as_str),
                    Some("401" | "403" | "404")
                )
        })
        .count();
    let confirm = if refused > 0 {
        format!(
            "<p class=\"error\" id=\"refused\">PingOne refused this server access to the environment of {refused} rows: they will not be granted. Each says what PingOne answered; check their environment IDs, and the region this server sends to.</p>{confirm}"
        )
    } else {
        confirm
    };
    layout(
        "Plan",
        &format!(
            "<h1>The plan for {}</h1><p class=\"target\">Requests go {}.</p>\
             <p id=\"counts\">{} rows: {} to grant, {} invalid, {} skipped, {} not found or ambiguous.</p>\
             {confirm}<p><a href=\"/runs/{id}/plan.csv\">Download the plan</a></p>\
             <table><thead><tr><th>Row</th><th>Status</th><th>Environment</th><th>User</th><th>Until (UTC; your time below)</th><th>Message</th></tr></thead><tbody>{table}</tbody></table>",
            escape(name),
            escape(target),
            summary.total,
            summary.planned,
            summary.invalid,
            summary.skipped,
            summary.failed,
        ),
    )
}

/// The plan of an end: who would be ended and who skipped and why, and the button that ends
/// them (`within` says how soon each ends, in words).
pub fn end_plan(
    id: u64,
    name: &str,
    target: &str,
    summary: &Summary,
    rows: &[BTreeMap<String, String>],
    within: &str,
) -> String {
    let mut table = String::new();
    for row in rows {
        table.push_str(&format!(
            "<tr class=\"{status}\"><td>{}</td><td>{status}</td><td>{}</td><td>{}</td><td><time class=\"utc\">{}</time></td><td>{}</td></tr>",
            cell(row, "row"),
            cell(row, "error_code"),
            cell(row, "user_id"),
            cell(row, "previous_until"),
            cell(row, "error_message"),
            status = cell(row, "status"),
        ));
    }
    let confirm = if summary.planned > 0 {
        format!(
            "<form method=\"post\" action=\"/runs/{id}/start\"><button type=\"submit\" id=\"confirm\">End {} in {}</button></form>\
             <p>Each bypass is read again when you confirm: one that changed meanwhile is left as it is then.</p>",
            bypasses(summary.planned),
            escape(within)
        )
    } else {
        "<p id=\"nothing\">No bypass here is in force and ends later: nothing to end.</p>"
            .to_owned()
    };
    layout(
        "End",
        &format!(
            "<h1>Ending the bypasses: {}</h1><p class=\"target\">Requests go {}.</p>\
             <p id=\"counts\">{} rows: {} to end, {} skipped ({} not granted by the run, {} with no bypass, {} ending sooner, {} changed since), {} failed, {} invalid.</p>\
             {confirm}<p><a href=\"/runs/{id}/plan.csv\">Download the plan</a></p>\
             <table><thead><tr><th>Row</th><th>Status</th><th>Why</th><th>User</th><th>In force until (UTC)</th><th>Message</th></tr></thead><tbody>{table}</tbody></table>",
            escape(name),
            escape(target),
            summary.total,
            summary.planned,
            summary.skipped,
            summary.not_granted,
            summary.no_bypass,
            summary.ends_sooner,
            summary.changed_since,
            summary.failed,
            summary.invalid,
        ),
    )
}

/// The resume button's words for a run that died or was stopped, and for one with rows not
/// granted (the page's script uses the same).
pub const RESUME: &str = "Resume (rows already granted are not sent again)";
pub const RETRY: &str = "Retry the rows not granted (failed or not attempted)";
/// An end's resume button, whether it died, was stopped or left rows not ended.
pub const RESUME_END: &str = "Resume (rows already ended are not read again)";

/// The button that plans the end of a run's (or a status check's) bypasses.
fn end_offer(id: u64, hidden: bool) -> String {
    format!(
        "<form method=\"post\" action=\"/runs/{id}/end\" id=\"end\"{}><button type=\"submit\">End these bypasses</button> <span>(reads each bypass first and shows who would be ended; nothing ends until you confirm)</span></form>",
        if hidden { " hidden" } else { "" }
    )
}

/// A duration as a button says it: "1 minute", "2 minutes", "90 seconds", "1 hour".
pub fn in_words(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    let (count, unit) = match seconds {
        0 => (0, "second"),
        _ if seconds.is_multiple_of(3600) => (seconds / 3600, "hour"),
        _ if seconds.is_multiple_of(60) => (seconds / 60, "minute"),
        _ => (seconds, "second"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// The button that checks a finished grant's or end's results against PingOne's audit log.
fn audit_offer(id: u64, hidden: bool, wait: std::time::Duration) -> String {
    format!(
        "<form method=\"post\" action=\"/runs/{id}/audit\" id=\"audit\"{}><button type=\"submit\">Check against PingOne's audit log</button> <span>(reads PingOne's own record of this run; waits up to {} for entries PingOne has not shown yet)</span></form>",
        if hidden { " hidden" } else { "" },
        in_words(wait)
    )
}

/// Which run a run's page shows.
pub enum RunPage {
    /// A grant, which offers to end its bypasses: from the start when `end_offered` (it
    /// finished with some granted before the page was opened), otherwise when the script sees
    /// it finish so.
    Grant { end_offered: bool },
    /// An end of bypasses.
    End,
}

/// A run's page; `resume` shows its resume button from the start with those words (a run that
/// ended so before the page was opened), which the script otherwise shows when that happens;
/// `audit_offered` shows the audit check's button from the start, which the script otherwise
/// shows when the run finishes having changed some bypass.
pub fn run(
    id: u64,
    name: &str,
    phase: &str,
    resume: Option<&str>,
    page: RunPage,
    (audit_offered, audit_wait): (bool, std::time::Duration),
) -> String {
    let (kind_name, offer) = match page {
        RunPage::End => ("end", String::new()),
        RunPage::Grant { end_offered } => ("grant", end_offer(id, !end_offered)),
    };
    let offer = offer + &audit_offer(id, !audit_offered, audit_wait);
    layout(
        "Run",
        &format!(
            "<h1>Run {id}: {}</h1><p id=\"phase\">{}</p>\
             <progress id=\"progress\" max=\"1\" value=\"0\"></progress><p id=\"numbers\" data-events=\"/runs/{id}/events\" data-kind=\"{kind_name}\"></p>\
             <table id=\"attention\" hidden><caption>Rows that need attention, as they finish (the first {most}; the results have every row)</caption>\
             <thead><tr><th>Row</th><th>Status</th><th>User ID</th><th>Error</th></tr></thead><tbody></tbody></table>\
             <form method=\"post\" action=\"/runs/{id}/stop\"><button type=\"submit\" id=\"stop\">Stop (rows in flight finish; the rest are not attempted)</button></form>\
             <form method=\"post\" action=\"/runs/{id}/resume\" id=\"resume\"{hidden}><button type=\"submit\">{label}</button></form>\
             <p id=\"downloads\"><a href=\"/runs/{id}/results.csv\" id=\"results\">Download the results</a> · <a href=\"/runs/{id}/summary.json\">the summary</a></p>{offer}",
            escape(name),
            escape(phase),
            most = crate::record::progress::MOST_ATTENTION_ROWS,
            hidden = if resume.is_some() { "" } else { " hidden" },
            label = escape(resume.unwrap_or(RESUME)),
        ),
    )
}

pub fn status_form(target: &str) -> String {
    layout(
        "Who has a bypass",
        &format!(
            "<h1>Who has a bypass now</h1><p class=\"target\">Reads go {}.</p>\
             <form id=\"status\" method=\"post\" action=\"/status\" enctype=\"multipart/form-data\">\
             <label class=\"drop\">CSV or workbook of users<input type=\"file\" name=\"file\" required></label>\
             <label>Sheet of a workbook{SHEET_CHOICE}</label>\
             <label>Environment for rows without one<input name=\"env\" placeholder=\"UUID\"></label>\
             <button type=\"submit\">Read the bypasses</button></form>",
            escape(target)
        ),
    )
}

pub fn status(id: u64, name: &str, summary: &Summary, rows: &[BTreeMap<String, String>]) -> String {
    let mut table = String::new();
    for row in rows {
        table.push_str(&format!(
            "<tr class=\"{status}\"><td>{}</td><td>{status}</td><td>{}</td><td><time class=\"utc\">{}</time></td><td>{}</td><td>{}</td></tr>",
            cell(row, "row"),
            cell(row, "user_id"),
            cell(row, "bypass_mfa_enabled_until"),
            cell(row, "remaining"),
            cell(row, "error_message"),
            status = cell(row, "status"),
        ));
    }
    layout(
        "Who has a bypass",
        &format!(
            "<h1>Bypasses of {}</h1><p id=\"counts\">{} rows: {} active, {} none, {} failed, {} invalid.</p>\
             <p><a href=\"/runs/{id}/status.csv\">Download</a></p>{}\
             <table><thead><tr><th>Row</th><th>Status</th><th>User</th><th>Until (UTC)</th><th>Left</th><th>Message</th></tr></thead><tbody>{table}</tbody></table>",
            escape(name),
            summary.total,
            summary.active,
            summary.none,
            summary.failed,
            summary.invalid,
            if summary.active > 0 {
                end_offer(id, false)
            } else {
                String::new()
            }
        ),
    )
}

/// The form's field for a setting, as its label reads.
pub fn field_of(setting: crate::outcome::Setting) -> &'static str {
    use crate::outcome::Setting;
    match setting {
        Setting::Environment => "Environment for rows without one",
        Setting::Expiry => "Expiry for rows without one",
        Setting::TimeZone => "Time zone of dates without one",
        Setting::Encoding => "The file's encoding",
        Setting::Sheet => "Sheet of a workbook",
        Setting::HiddenRows => "Rows hidden in the sheet",
    }
}

/// A check that refused to start, with the field that fixes it when one does.
pub fn refusal(message: &str, field: Option<&str>) -> String {
    let fix = field.map_or(String::new(), |field| {
        format!(
            "<p id=\"fix\">Change <strong>{}</strong> on the form, then check the file again.</p>",
            escape(field)
        )
    });
    layout(
        "Not checked",
        &format!(
            "<h1>That did not work</h1><p class=\"error\">{}</p>{fix}<p><a href=\"/\">Back to the form</a></p>",
            escape(message)
        ),
    )
}

pub fn error(message: &str) -> String {
    layout(
        "Error",
        &format!(
            "<h1>That did not work</h1><p class=\"error\">{}</p><p><a href=\"/\">Back</a></p>",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_is_said_in_words_as_the_buttons_say_it() {
        for (seconds, words) in [
            (60, "1 minute"),
            (120, "2 minutes"),
            (90, "90 seconds"),
            (3600, "1 hour"),
            (0, "0 seconds"),
        ] {
            assert_eq!(in_words(std::time::Duration::from_secs(seconds)), words);
        }
    }

    #[test]
    fn every_character_that_means_something_in_html_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn command_line_words_become_the_forms_and_the_servers_folder_the_uploads_name() {
        let worded = in_form_words(
            "input /srv/run-3/input.csv: until \"30d\" means 2026-12-31, later than --max-window 7days allows (latest 2026-12-08); fill it in or pass --until <WHEN>",
            "outage.csv",
            "/srv/run-3/input.csv",
        );
        assert_eq!(
            worded,
            "input the upload \"outage.csv\": until \"30d\" means 2026-12-31, later than this server allows (7days from now at most) (latest 2026-12-08); fill it in, or fill in Expiry on the form"
        );
    }
}
