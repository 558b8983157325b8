//! Every secret this process has held (the worker application's client secret, a token it was
//! given, every token it obtained), so that any text leaving the process can be cleared of them
//! by value, whatever their length and whoever quoted them back: a PingOne error body, a
//! listing's error, a proxy's page. A pattern for "looks like a token" misses short secrets;
//! the values themselves miss nothing. Process-wide because the secrets are: every run, log
//! line and page of one process shares them.

use std::sync::RwLock;

use secrecy::{ExposeSecret, SecretString};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Tokens obtained are kept this many at a time, the newest: PingOne's tokens last an hour and
/// are renewed well before, so an older one has expired and grants nothing. The secrets the
/// process was given are always kept.
const MOST_OBTAINED_TOKENS: usize = 64;

struct Held {
    /// The client secret and any token given; never dropped.
    given: Vec<SecretString>,
    /// Tokens from the token endpoint, oldest first.
    obtained: Vec<SecretString>,
}

static HELD: RwLock<Held> = RwLock::new(Held {
    given: Vec::new(),
    obtained: Vec::new(),
});

fn held() -> std::sync::RwLockReadGuard<'static, Held> {
    // Holds plain values that no panic can leave half-written.
    HELD.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn held_mut() -> std::sync::RwLockWriteGuard<'static, Held> {
    HELD.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn is_held(held: &Held, value: &str) -> bool {
    held.given
        .iter()
        .chain(&held.obtained)
        .any(|secret| secret.expose_secret() == value)
}

/// Remembers a secret the process was given (a client secret, a token from the environment or
/// `--token-file`).
pub fn hold_given(secret: &SecretString) {
    let value = secret.expose_secret();
    if value.is_empty() {
        return;
    }
    let mut held = held_mut();
    if !is_held(&held, value) {
        held.given.push(secret.clone());
    }
}

/// Remembers a token the process obtained.
pub fn hold_obtained(token: &SecretString) {
    let value = token.expose_secret();
    if value.is_empty() {
        return;
    }
    let mut held = held_mut();
    if !is_held(&held, value) {
        if held.obtained.len() >= MOST_OBTAINED_TOKENS {
            held.obtained.remove(0);
        }
        held.obtained.push(token.clone());
    }
}

/// `text` with every secret held replaced by `[redacted]`, as written and as JSON writes it
/// inside a string (a secret with a quote or a backslash in it is escaped there), longest
/// first so that one secret holding another is removed whole.
pub fn scrub(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let held = held();
    let mut values: Vec<&str> = held
        .given
        .iter()
        .chain(&held.obtained)
        .map(|secret| secret.expose_secret())
        .filter(|value| !value.is_empty())
        .collect();
    if values.is_empty() {
        return text.to_owned();
    }
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    let mut scrubbed = text.to_owned();
    for value in values {
        if scrubbed.contains(value) {
            scrubbed = scrubbed.replace(value, REDACTED);
        }
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped
            .strip_prefix('"')
            .and_then(|inner| inner.strip_suffix('"'))
            .unwrap_or(value);
        if escaped != value && scrubbed.contains(escaped) {
            scrubbed = scrubbed.replace(escaped, REDACTED);
        }
    }
    scrubbed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_secret_of_any_length_is_removed_wherever_it_is_quoted() {
        hold_given(&SecretString::from("s3cr3t-Q"));
        hold_given(&SecretString::from("tok\"en"));
        assert_eq!(
            scrub("invalid value s3cr3t-Q for field x"),
            "invalid value [redacted] for field x"
        );
        assert_eq!(
            scrub(r#"{"message":"bad tok\"en"}"#),
            r#"{"message":"bad [redacted]"}"#,
            "the JSON-escaped form is removed too"
        );
        assert_eq!(scrub("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn only_the_newest_obtained_tokens_are_kept_and_given_secrets_always() {
        hold_given(&SecretString::from("given-secret-kept"));
        for n in 0..=MOST_OBTAINED_TOKENS {
            hold_obtained(&SecretString::from(format!("obtained-token-{n:03}")));
        }
        assert_eq!(scrub("obtained-token-000"), "obtained-token-000");
        assert_eq!(
            scrub(&format!("obtained-token-{MOST_OBTAINED_TOKENS:03}")),
            REDACTED
        );
        assert_eq!(scrub("given-secret-kept"), REDACTED);
    }
}
