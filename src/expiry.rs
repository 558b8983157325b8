//! The expiry a row asks for: every spelling an admin may write (docs/cli.md, "Input"), what a
//! date or time written without a zone means (`--timezone`), and the instants PingOne's one
//! format cannot express (leap seconds, years beyond four digits), which are refused rather
//! than sent.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SubsecRound, TimeZone, Timelike, Utc};

use crate::pingone::parse_instant;

/// What a date or time written without a zone means (`--timezone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    #[default]
    Utc,
    /// The machine's own zone.
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `UTC`, `local` or an IANA name such as `America/New_York`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("utc") || text.eq_ignore_ascii_case("z") {
            return Some(Self::Utc);
        }
        if text.eq_ignore_ascii_case("local") {
            return Some(Self::Local);
        }
        text.parse::<chrono_tz::Tz>().ok().map(Self::Named)
    }

    /// As `--timezone` takes it.
    pub fn name(&self) -> String {
        match self {
            Self::Utc => "UTC".to_owned(),
            Self::Local => "local".to_owned(),
            Self::Named(zone) => zone.name().to_owned(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Utc => "UTC".to_owned(),
            Self::Local => "the local time zone".to_owned(),
            Self::Named(zone) => zone.name().to_owned(),
        }
    }

    /// The instant a wall-clock time means here. Of a time that occurs twice (clocks going
    /// back), the first: the shorter bypass.
    fn instant(&self, naive: NaiveDateTime) -> Result<DateTime<Utc>, UntilProblem> {
        let first = match self {
            Self::Utc => return Ok(naive.and_utc()),
            Self::Local => chrono::Local
                .from_local_datetime(&naive)
                .earliest()
                .map(|local| local.with_timezone(&Utc)),
            Self::Named(zone) => zone
                .from_local_datetime(&naive)
                .earliest()
                .map(|local| local.with_timezone(&Utc)),
        };
        first.ok_or(UntilProblem::NoSuchLocalTime(*self))
    }
}

/// Why a cell is not an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UntilProblem {
    /// Not one of the accepted spellings.
    NotRecognised,
    /// A wall-clock time the zone skips (clocks going forward).
    NoSuchLocalTime(Zone),
    /// A leap second, or a year PingOne's four-digit format cannot hold.
    Inexpressible,
    /// A duration counted back from the run start (`-1h`): an expiry must be in the future.
    BeforeTheStart,
    /// A duration so long that no date can be that far from the run start.
    TooFar,
}

impl UntilProblem {
    /// The end of a sentence that starts with the column and the value.
    pub fn explain(&self) -> String {
        match self {
            Self::NotRecognised => format!("is not a date or a duration; {UNTIL_FORMS}"),
            Self::NoSuchLocalTime(zone) => format!(
                "does not exist in {} (the clocks skip it); write a time outside the change, or one with an offset",
                zone.describe()
            ),
            Self::Inexpressible => "cannot be written in PingOne's format (a leap second, or a year outside 0000-9999); write another time".to_owned(),
            Self::BeforeTheStart => "is a duration before the run start; an expiry must be in the future (write 8h, not -8h)".to_owned(),
            Self::TooFar => "is a duration longer than any bypass may last; an expiry must be no later than --max-window after the run start".to_owned(),
        }
    }
}

/// The accepted spellings, for messages.
pub const UNTIL_FORMS: &str = "write 2025-11-30T00:00:00.000Z, an RFC 3339 time with Z or an offset, 2025-11-30, 2025-11-30 08:00[:00] (in --timezone, UTC by default), or a duration from the run start such as 8h, +90m, 2d or 1h30m";

/// Reads an expiry in any accepted spelling as an instant, cut to the milliseconds PingOne
/// keeps. Relative durations count from `run_start`; dates and times without a zone are in
/// `zone`.
pub fn parse_until(
    text: &str,
    run_start: DateTime<Utc>,
    zone: Zone,
) -> Result<DateTime<Utc>, UntilProblem> {
    let instant = read_until(text.trim(), run_start, zone)?;
    expressible(instant).ok_or(UntilProblem::Inexpressible)
}

fn read_until(
    text: &str,
    run_start: DateTime<Utc>,
    zone: Zone,
) -> Result<DateTime<Utc>, UntilProblem> {
    if let Some(instant) = parse_instant(text) {
        return Ok(instant);
    }
    if let Some(naive) = parse_naive(text) {
        return zone.instant(naive);
    }
    if let Some(back) = text.strip_prefix('-')
        && back.starts_with(|c: char| c.is_ascii_digit())
        && humantime::parse_duration(back).is_ok()
    {
        return Err(UntilProblem::BeforeTheStart);
    }
    let duration_text = text.strip_prefix('+').unwrap_or(text);
    // humantime takes "1h 30m" as well as "1h30m"; a leading digit keeps words such as
    // "tomorrow" from being read as durations.
    if duration_text.starts_with(|c: char| c.is_ascii_digit()) {
        let duration =
            humantime::parse_duration(duration_text).map_err(|_| UntilProblem::NotRecognised)?;
        // Checked, not added: a duration of a billion hours must be an error, not a panic.
        let duration = chrono::Duration::from_std(duration).map_err(|_| UntilProblem::TooFar)?;
        return run_start
            .checked_add_signed(duration)
            .filter(|until| until.year() <= 9999)
            .map(|until| until.trunc_subsecs(3))
            .ok_or(UntilProblem::TooFar);
    }
    Err(UntilProblem::NotRecognised)
}

/// `YYYY-MM-DD` (midnight) or `YYYY-MM-DD HH:MM[:SS[.fff]]`, a wall-clock time without a zone.
pub fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    if text.len() == 10 {
        return NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|date| date.and_hms_opt(0, 0, 0));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"]
        .into_iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

/// The instant, if PingOne's format can express it: no leap second, a four-digit year.
fn expressible(instant: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let leap_second = instant.nanosecond() >= 1_000_000_000;
    (!leap_second && (0..=9999).contains(&instant.year())).then_some(instant)
}

/// A UTC instant this tool wrote (`completed_at`, `requested_until`, what PingOne returned), as
/// a spreadsheet may have re-saved it: in PingOne's format, as RFC 3339, or as
/// `YYYY-MM-DD HH:MM[:SS[.fff]]`. Spellings whose day and month could be either way round are
/// not read: a resume then treats the bypass as unknown and grants it again.
pub fn parse_recorded_instant(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    parse_instant(text).or_else(|| parse_naive(text).map(|naive| naive.and_utc()))
}

/// Whether `text` is an expiry counted from the run's start (`8h`, `+90m`), whose instant
/// moves with every run, rather than an absolute one.
pub fn is_relative_until(text: &str) -> bool {
    let text = text.trim();
    let duration_text = text.strip_prefix('+').unwrap_or(text);
    duration_text.starts_with(|c: char| c.is_ascii_digit())
        && humantime::parse_duration(duration_text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pingone::format_bypass_until;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("a valid instant")
    }

    fn read(text: &str, zone: Zone) -> Result<String, UntilProblem> {
        parse_until(text, start(), zone).map(format_bypass_until)
    }

    #[test]
    fn an_instant_reads_the_same_as_an_expiry_as_a_recorded_time_and_as_pingones_answer() {
        // One parser behind all three: a spelling none of them may read differently.
        for (text, expected) in [
            ("2026-12-20T17:00:00.000Z", "2026-12-20T17:00:00.000Z"),
            ("2026-12-20T17:00:00Z", "2026-12-20T17:00:00.000Z"),
            ("2026-12-20T17:00:00.123456789Z", "2026-12-20T17:00:00.123Z"),
            ("2026-12-20T19:00:00.5+02:00", "2026-12-20T17:00:00.500Z"),
            (" 2026-12-20T17:00:00.000Z ", "2026-12-20T17:00:00.000Z"),
        ] {
            let readings = [
                read(text, Zone::Utc).ok(),
                parse_recorded_instant(text).map(format_bypass_until),
                crate::pingone::parse_instant(text).map(format_bypass_until),
            ];
            assert_eq!(
                readings,
                [
                    Some(expected.to_owned()),
                    Some(expected.to_owned()),
                    Some(expected.to_owned())
                ],
                "{text}"
            );
        }
    }

    #[test]
    fn every_accepted_spelling_becomes_pingones_format() {
        for (text, expected) in [
            ("2026-11-30T00:00:00.000Z", "2026-11-30T00:00:00.000Z"),
            ("2026-11-30T01:02:03Z", "2026-11-30T01:02:03.000Z"),
            ("2026-11-30T01:02:03.123456789Z", "2026-11-30T01:02:03.123Z"),
            ("2026-11-30T03:02:03.5+02:00", "2026-11-30T01:02:03.500Z"),
            ("2026-11-30", "2026-11-30T00:00:00.000Z"),
            ("2026-11-30 08:15", "2026-11-30T08:15:00.000Z"),
            ("2026-11-30 08:15:09", "2026-11-30T08:15:09.000Z"),
            ("8h", "2026-11-29T20:00:00.000Z"),
            ("+90m", "2026-11-29T13:30:00.000Z"),
            ("2d", "2026-12-01T12:00:00.000Z"),
            ("1h30m", "2026-11-29T13:30:00.000Z"),
            (" 8h ", "2026-11-29T20:00:00.000Z"),
        ] {
            assert_eq!(read(text, Zone::Utc).as_deref(), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn words_and_malformed_dates_are_not_expiries() {
        for text in [
            "tomorrow",
            "30/11/2026",
            "2026-13-01",
            "2026-11-30T25:00Z",
            "8",
            "h",
        ] {
            assert_eq!(
                read(text, Zone::Utc),
                Err(UntilProblem::NotRecognised),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_time_without_a_zone_is_read_in_the_given_zone_and_one_with_a_zone_is_not() {
        let new_york = Zone::parse("America/New_York").expect("an IANA name");
        assert_eq!(
            read("2026-12-20 17:00", new_york).as_deref(),
            Ok("2026-12-20T22:00:00.000Z")
        );
        assert_eq!(
            read("2026-12-20", new_york).as_deref(),
            Ok("2026-12-20T05:00:00.000Z")
        );
        assert_eq!(
            read("2026-12-20T17:00:00Z", new_york).as_deref(),
            Ok("2026-12-20T17:00:00.000Z")
        );
        assert_eq!(
            read("8h", new_york).as_deref(),
            Ok("2026-11-29T20:00:00.000Z")
        );
    }

    #[test]
    fn a_skipped_local_time_is_refused_and_a_repeated_one_means_the_first() {
        let new_york = Zone::parse("America/New_York").expect("an IANA name");
        assert_eq!(
            read("2027-03-14 02:30", new_york),
            Err(UntilProblem::NoSuchLocalTime(new_york))
        );
        assert_eq!(
            read("2027-11-07 01:30", new_york).as_deref(),
            Ok("2027-11-07T05:30:00.000Z"),
            "01:30 EDT, the earlier of the two"
        );
    }

    #[test]
    fn leap_seconds_are_refused_wherever_they_are_written() {
        for text in [
            "2026-12-31T23:59:60Z",
            "2026-12-31T23:59:60.000Z",
            "2026-12-31 23:59:60",
        ] {
            assert_eq!(
                read(text, Zone::Utc),
                Err(UntilProblem::Inexpressible),
                "{text:?}"
            );
        }
    }

    #[test]
    fn durations_back_from_the_start_or_past_any_date_say_which_rule_they_break() {
        for text in ["-1h", "-90m", "-2d"] {
            assert_eq!(
                read(text, Zone::Utc),
                Err(UntilProblem::BeforeTheStart),
                "{text}"
            );
        }
        for text in [
            "999999999h",
            "+999999999h",
            "300000y",
            "18446744073709551615s",
        ] {
            assert_eq!(read(text, Zone::Utc), Err(UntilProblem::TooFar), "{text}");
        }
        assert!(
            UntilProblem::BeforeTheStart
                .explain()
                .contains("must be in the future")
        );
        assert!(UntilProblem::TooFar.explain().contains("--max-window"));
    }

    #[test]
    fn recorded_instants_are_read_as_a_spreadsheet_may_have_re_saved_them() {
        let expected = Utc.with_ymd_and_hms(2026, 11, 29, 14, 7, 0).single();
        for text in [
            "2026-11-29T14:07:00.000Z",
            "2026-11-29T14:07:00Z",
            "2026-11-29 14:07:00",
            "2026-11-29 14:07",
        ] {
            assert_eq!(parse_recorded_instant(text), expected, "{text:?}");
        }
        assert_eq!(parse_recorded_instant("11/29/2026 14:07"), None);
    }

    #[test]
    fn zones_are_named_as_utc_local_or_iana() {
        assert_eq!(Zone::parse("utc"), Some(Zone::Utc));
        assert_eq!(Zone::parse("LOCAL"), Some(Zone::Local));
        assert!(matches!(Zone::parse("Europe/Berlin"), Some(Zone::Named(_))));
        assert_eq!(Zone::parse("Mars/Olympus"), None);
    }
}
