//! How the command line writes rates, durations and chances, parsed in one place so that
//! every flag that takes one refuses a bad value with the same advice (`ValueProblem`, which
//! clap prints after the flag's name).

use std::time::Duration;

use crate::defaults;

/// Why a flag's value was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueProblem {
    #[error("{text:?} is not a number of requests per second from {least} to {most}")]
    Rate { text: String, least: f64, most: f64 },
    #[error(
        "{text:?} is not a number of audit requests per second from {least} to {most}, PingOne's own limit for its audit API"
    )]
    AuditRate { text: String, least: f64, most: f64 },
    #[error("{reason}; write a duration such as 500ms, 30s, 2m or 1h")]
    NotADuration { reason: String },
    #[error("must be longer than zero")]
    Zero,
    #[error("{text:?} is longer than {most}, the most it may be")]
    TooLong { text: String, most: &'static str },
    #[error(
        "{text:?} is shorter than 30s, the least an ended bypass may still last (room for the PUT's trip and for clocks that differ)"
    )]
    EndTooSoon { text: String },
    #[error("{text:?} is longer than {most}, the most rows may wait for PingOne to come back")]
    PatienceTooLong { text: String, most: String },
    #[error("{text:?} is not a number; write a chance between 0 and 1, such as 0.01")]
    NotAChance { text: String },
    #[error("{chance} is not between 0 and 1")]
    ChanceOutOfRange { chance: f64 },
}

pub fn parse_rate(text: &str) -> Result<f64, ValueProblem> {
    let (least, most) = defaults::RATE_RANGE;
    match text.parse::<f64>() {
        Ok(rate) if (least..=most).contains(&rate) => Ok(rate),
        _ => Err(ValueProblem::Rate {
            text: text.to_owned(),
            least,
            most,
        }),
    }
}

/// A duration longer than zero (or zero, when allowed) and at most `most`, written `most_text`.
fn parse_bounded_duration(
    text: &str,
    zero_allowed: bool,
    (most, most_text): (Duration, &'static str),
) -> Result<Duration, ValueProblem> {
    let duration = parse_duration(text)?;
    if duration.is_zero() && !zero_allowed {
        Err(ValueProblem::Zero)
    } else if duration > most {
        Err(ValueProblem::TooLong {
            text: text.to_owned(),
            most: most_text,
        })
    } else {
        Ok(duration)
    }
}

/// `--max-window`: longer than zero, at most a year and a day.
pub fn parse_max_window(text: &str) -> Result<Duration, ValueProblem> {
    parse_bounded_duration(text, false, (defaults::MOST_MAX_WINDOW, "366d"))
}

/// `--timeout`: longer than zero, at most an hour.
pub fn parse_timeout(text: &str) -> Result<Duration, ValueProblem> {
    parse_bounded_duration(text, false, (defaults::MOST_TIMEOUT, "1h"))
}

/// `end --in`: from half a minute to an hour.
pub fn parse_end_in(text: &str) -> Result<Duration, ValueProblem> {
    let within = parse_bounded_duration(text, false, (defaults::MOST_END_IN, "1h"))?;
    if within < defaults::LEAST_END_IN {
        return Err(ValueProblem::EndTooSoon {
            text: text.to_owned(),
        });
    }
    Ok(within)
}

/// `--resume-margin`: zero up to a year and a day.
pub fn parse_resume_margin(text: &str) -> Result<Duration, ValueProblem> {
    parse_bounded_duration(text, true, (defaults::MOST_RESUME_MARGIN, "366d"))
}

pub fn parse_duration(text: &str) -> Result<Duration, ValueProblem> {
    humantime::parse_duration(text).map_err(|error| ValueProblem::NotADuration {
        reason: error.to_string(),
    })
}

/// `--outage-patience`: zero (rows give up as soon as PingOne seems down) up to a day.
pub fn parse_outage_patience(text: &str) -> Result<Duration, ValueProblem> {
    let patience = parse_duration(text)?;
    if patience > defaults::MOST_OUTAGE_PATIENCE {
        Err(ValueProblem::PatienceTooLong {
            text: text.to_owned(),
            most: humantime::format_duration(defaults::MOST_OUTAGE_PATIENCE).to_string(),
        })
    } else {
        Ok(patience)
    }
}

pub fn parse_chance(text: &str) -> Result<f64, ValueProblem> {
    let chance: f64 = text.parse().map_err(|_| ValueProblem::NotAChance {
        text: text.to_owned(),
    })?;
    if (0.0..=1.0).contains(&chance) {
        Ok(chance)
    } else {
        Err(ValueProblem::ChanceOutOfRange { chance })
    }
}

/// `verify --pingone --rate`: more than zero, at most the audit API's own limit.
pub fn parse_audit_rate(text: &str) -> Result<f64, ValueProblem> {
    let (least, most) = (defaults::RATE_RANGE.0, defaults::MOST_AUDIT_RATE);
    match text.parse::<f64>() {
        Ok(rate) if (least..=most).contains(&rate) => Ok(rate),
        _ => Err(ValueProblem::AuditRate {
            text: text.to_owned(),
            least,
            most,
        }),
    }
}

/// `--audit-wait`: zero (no second look) up to half an hour.
pub fn parse_audit_wait(text: &str) -> Result<Duration, ValueProblem> {
    parse_bounded_duration(text, true, (defaults::MOST_AUDIT_WAIT, "30m"))
}
