//! How the command line writes rates, durations and chances, parsed in one place so that
//! every flag that takes one refuses a bad value with the same advice.

use std::time::Duration;

use crate::defaults;

pub fn parse_rate(text: &str) -> Result<f64, String> {
    let (least, most) = defaults::RATE_RANGE;
    match text.parse::<f64>() {
        Ok(rate) if (least..=most).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a number of requests per second from {least} to {most}"
        )),
    }
}

/// A duration longer than zero (or zero, when allowed) and at most `most`, written `most_text`.
fn parse_bounded_duration(
    text: &str,
    zero_allowed: bool,
    (most, most_text): (Duration, &str),
) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() && !zero_allowed {
        Err("must be longer than zero".to_owned())
    } else if duration > most {
        Err(format!(
            "{text:?} is longer than {most_text}, the most it may be"
        ))
    } else {
        Ok(duration)
    }
}

/// `--max-window`: longer than zero, at most a year and a day.
pub fn parse_max_window(text: &str) -> Result<Duration, String> {
    parse_bounded_duration(text, false, (defaults::MOST_MAX_WINDOW, "366d"))
}

/// `--timeout`: longer than zero, at most an hour.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    parse_bounded_duration(text, false, (defaults::MOST_TIMEOUT, "1h"))
}

/// `end --in`: from half a minute to an hour.
pub fn parse_end_in(text: &str) -> Result<Duration, String> {
    let within = parse_bounded_duration(text, false, (defaults::MOST_END_IN, "1h"))?;
    if within < defaults::LEAST_END_IN {
        return Err(format!(
            "{text:?} is shorter than 30s, the least an ended bypass may still last (room for the PUT's trip and for clocks that differ)"
        ));
    }
    Ok(within)
}

/// `--resume-margin`: zero up to a year and a day.
pub fn parse_resume_margin(text: &str) -> Result<Duration, String> {
    parse_bounded_duration(text, true, (defaults::MOST_RESUME_MARGIN, "366d"))
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("{error}; write a duration such as 500ms, 30s, 2m or 1h"))
}

/// `--outage-patience`: zero (rows give up as soon as PingOne seems down) up to a day.
pub fn parse_outage_patience(text: &str) -> Result<Duration, String> {
    let patience = parse_duration(text)?;
    if patience > defaults::MOST_OUTAGE_PATIENCE {
        Err(format!(
            "{text:?} is longer than {}, the most rows may wait for PingOne to come back",
            humantime::format_duration(defaults::MOST_OUTAGE_PATIENCE)
        ))
    } else {
        Ok(patience)
    }
}

pub fn parse_chance(text: &str) -> Result<f64, String> {
    let chance: f64 = text.parse().map_err(|_| {
        format!("{text:?} is not a number; write a chance between 0 and 1, such as 0.01")
    })?;
    if (0.0..=1.0).contains(&chance) {
        Ok(chance)
    } else {
        Err(format!("{chance} is not between 0 and 1"))
    }
}

/// `verify --pingone --rate`: more than zero, at most the audit API's own limit.
pub fn parse_audit_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate >= defaults::RATE_RANGE.0 && rate <= defaults::MOST_AUDIT_RATE => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a number of audit requests per second from {} to {}, PingOne's own limit for its audit API",
            defaults::RATE_RANGE.0,
            defaults::MOST_AUDIT_RATE
        )),
    }
}

/// `--audit-wait`: zero (no second look) up to half an hour.
pub fn parse_audit_wait(text: &str) -> Result<Duration, String> {
    parse_bounded_duration(text, true, (defaults::MOST_AUDIT_WAIT, "30m"))
}
