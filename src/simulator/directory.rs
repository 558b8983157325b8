//! Who exists in the simulated tenant: the built-in sample directory, user files for
//! rehearsals, and the one kind of SCIM filter (`username eq "..."`, `email eq "..."`) that
//! user lookups need.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use uuid::Uuid;

use super::config::DirectoryUser;

/// The environments of the built-in directory, which `samples/` uses too.
pub const SAMPLE_WORKFORCE_ENVIRONMENT: Uuid = uuid::uuid!("4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01");
pub const SAMPLE_PARTNER_ENVIRONMENT: Uuid = uuid::uuid!("9b2f7c3d-6e8a-4f10-8c5d-2e4b6a7c9d02");

/// (environment, user, username, population, groups); emails are `<username>@example.com`
/// except where `SHARED_EMAILS` says otherwise.
type BuiltInUser = (
    Uuid,
    Uuid,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const BUILT_IN_USERS: [BuiltInUser; 7] = [
    (
        SAMPLE_WORKFORCE_ENVIRONMENT,
        uuid::uuid!("0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01"),
        "ada.lovelace",
        "Employees",
        &["Helpdesk"],
    ),
    (
        SAMPLE_WORKFORCE_ENVIRONMENT,
        uuid::uuid!("1e8b4c63-7d2f-4c90-8f38-6a4d2b8e9f02"),
        "alan.turing",
        "Employees",
        &[],
    ),
    (
        SAMPLE_WORKFORCE_ENVIRONMENT,
        uuid::uuid!("2f7c5d74-8e3a-4da1-9a49-7b5e3c9fa003"),
        "grace.hopper",
        "Contractors",
        &["Helpdesk"],
    ),
    (
        SAMPLE_WORKFORCE_ENVIRONMENT,
        uuid::uuid!("3a6d6e85-9f4b-4eb2-8b5a-8c6f4daab104"),
        "edsger.dijkstra",
        "Contractors",
        &[],
    ),
    (
        SAMPLE_WORKFORCE_ENVIRONMENT,
        uuid::uuid!("6d3a9bb8-c27e-41e5-9e8d-bf9c7addd407"),
        "a.turing",
        "Contractors",
        &[],
    ),
    (
        SAMPLE_PARTNER_ENVIRONMENT,
        uuid::uuid!("4b5e7f96-a05c-4fc3-9c6b-9d7a5ebbc205"),
        "barbara.liskov",
        "Partners",
        &[],
    ),
    (
        SAMPLE_PARTNER_ENVIRONMENT,
        uuid::uuid!("5c4f8aa7-b16d-40d4-8d7c-ae8b6fccd306"),
        "donald.knuth",
        "Partners",
        &[],
    ),
];

/// Emails are not unique in PingOne: the built-in directory has one shared, so that a lookup by
/// email can be ambiguous.
const SHARED_EMAILS: [(&str, &str); 1] = [("a.turing", "alan.turing@example.com")];

/// The small directory a simulator answers lookups from when no users file is given.
pub fn built_in_directory() -> Vec<DirectoryUser> {
    BUILT_IN_USERS
        .iter()
        .map(
            |(environment_id, id, username, population, groups)| DirectoryUser {
                environment_id: *environment_id,
                id: *id,
                username: (*username).to_owned(),
                email: SHARED_EMAILS
                    .iter()
                    .find(|(user, _)| user == username)
                    .map_or_else(
                        || format!("{username}@example.com"),
                        |(_, email)| (*email).to_owned(),
                    ),
                population: (*population).to_owned(),
                groups: groups.iter().map(|group| (*group).to_owned()).collect(),
            },
        )
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    #[error("cannot read users file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "users file {path}, line {line}: {message} (expected columns environment_id,user_id,username,email, optionally population,groups)"
    )]
    Record {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("missing-users file {path}, line {line}: {value:?} is not a user UUID")]
    MissingUser {
        path: PathBuf,
        line: usize,
        value: String,
    },
}

#[derive(Deserialize)]
struct UsersFileRecord {
    environment_id: Uuid,
    user_id: Uuid,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    population: String,
    #[serde(default)]
    groups: String,
}

/// Reads a CSV of the users that exist (`environment_id,user_id,username,email`, then
/// optionally `population` and `groups`, the groups separated by `;`; all but the first two
/// may be empty).
pub fn read_users_file(path: &Path) -> Result<Vec<DirectoryUser>, UsersFileError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|error| csv_error(path, error))?;
    reader
        .deserialize::<UsersFileRecord>()
        .map(|record| {
            let record = record.map_err(|error| csv_error(path, error))?;
            Ok(DirectoryUser {
                environment_id: record.environment_id,
                id: record.user_id,
                username: record.username,
                email: record.email,
                population: record.population,
                groups: record
                    .groups
                    .split(';')
                    .map(str::trim)
                    .filter(|group| !group.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

fn csv_error(path: &Path, error: csv::Error) -> UsersFileError {
    let line = error.position().map_or(0, csv::Position::line);
    let message = error.to_string();
    match error.into_kind() {
        csv::ErrorKind::Io(source) => UsersFileError::Read {
            path: path.to_owned(),
            source,
        },
        _ => UsersFileError::Record {
            path: path.to_owned(),
            line,
            message,
        },
    }
}

/// Reads user IDs that do not exist: one UUID a line; blank lines and `#` comments are skipped.
pub fn read_missing_users_file(path: &Path) -> Result<HashSet<Uuid>, UsersFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| UsersFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(line_number, line)| {
            Uuid::try_parse(line).map_err(|_| UsersFileError::MissingUser {
                path: path.to_owned(),
                line: line_number,
                value: line.to_owned(),
            })
        })
        .collect()
}

/// The attribute a user lookup filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAttribute {
    Username,
    Email,
    /// `population.id eq "..."`: the members of a population.
    PopulationId,
    /// `memberOfGroups[id eq "..."]`: the members of a group.
    GroupId,
}

/// `username eq "jdoe"` or `email eq "jdoe@example.com"`, or several of these joined by `or`
/// (how lookups are batched): the only filters the tool sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFilter {
    /// A user matches when any term does.
    pub terms: Vec<FilterTerm>,
}

/// One `attribute eq "value"` comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterTerm {
    pub attribute: FilterAttribute,
    pub value: String,
}

impl UserFilter {
    /// Parses the filter; `None` for anything else, which PingOne answers with 400. Written by
    /// hand: the simulator needs only this corner of SCIM's filter language, and a full SCIM
    /// parser crate would accept far more than PingOne's user lookups do.
    pub fn parse(text: &str) -> Option<Self> {
        let mut terms = Vec::new();
        let mut rest = text.trim();
        loop {
            let (term, after) = FilterTerm::parse(rest)?;
            terms.push(term);
            let after = after.trim_start();
            if after.is_empty() {
                return Some(Self { terms });
            }
            let (joiner, next) = after.split_once(char::is_whitespace)?;
            if !joiner.eq_ignore_ascii_case("or") {
                return None;
            }
            rest = next.trim_start();
        }
    }

    pub fn matches(&self, user: &DirectoryUser) -> bool {
        self.terms.iter().any(|term| term.matches(user))
    }
}

impl FilterTerm {
    /// One term at the start of `text`, and what follows it.
    fn parse(text: &str) -> Option<(Self, &str)> {
        const GROUPS: &str = "memberofgroups[";
        if text.len() > GROUPS.len()
            && text.is_char_boundary(GROUPS.len())
            && text[..GROUPS.len()].eq_ignore_ascii_case(GROUPS)
        {
            let (name, value, rest) = parse_comparison(&text[GROUPS.len()..])?;
            let rest = rest.trim_start().strip_prefix(']')?;
            return name.eq_ignore_ascii_case("id").then_some((
                Self {
                    attribute: FilterAttribute::GroupId,
                    value,
                },
                rest,
            ));
        }
        let (name, value, rest) = parse_comparison(text)?;
        let attribute = match name.to_ascii_lowercase().as_str() {
            "username" => FilterAttribute::Username,
            "email" => FilterAttribute::Email,
            "population.id" => FilterAttribute::PopulationId,
            _ => return None,
        };
        Some((Self { attribute, value }, rest))
    }

    fn matches(&self, user: &DirectoryUser) -> bool {
        let field = match self.attribute {
            FilterAttribute::Username => &user.username,
            FilterAttribute::Email => &user.email,
            FilterAttribute::PopulationId => {
                return Uuid::try_parse(&self.value).ok() == user.population_id()
                    && user.population_id().is_some();
            }
            FilterAttribute::GroupId => {
                return Uuid::try_parse(&self.value)
                    .is_ok_and(|group| user.group_ids().any(|id| id == group));
            }
        };
        !field.is_empty() && field.eq_ignore_ascii_case(&self.value)
    }
}

/// `attribute eq "value"` at the start of `text`: the attribute as written, the value with its
/// escapes undone, and what follows the closing quote.
fn parse_comparison(text: &str) -> Option<(&str, String, &str)> {
    let (name, rest) = text.trim_start().split_once(char::is_whitespace)?;
    let (operator, rest) = rest.trim_start().split_once(char::is_whitespace)?;
    if !operator.eq_ignore_ascii_case("eq") {
        return None;
    }
    let quoted = rest.trim_start().strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '"' => return Some((name, value, &quoted[at + 1..])),
            c => value.push(c),
        }
    }
    None
}

/// `name eq "..."`, the one filter the tool sends to `/populations` and `/groups`.
pub fn parse_name_filter(text: &str) -> Option<String> {
    let (name, value, rest) = parse_comparison(text)?;
    (name.eq_ignore_ascii_case("name") && rest.trim().is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(attribute: FilterAttribute, value: &str) -> FilterTerm {
        FilterTerm {
            attribute,
            value: value.to_owned(),
        }
    }

    #[test]
    fn parses_username_and_email_filters_case_insensitively() {
        assert_eq!(
            UserFilter::parse(r#"userName EQ "jdoe""#),
            Some(UserFilter {
                terms: vec![term(FilterAttribute::Username, "jdoe")]
            })
        );
        assert_eq!(
            UserFilter::parse(r#"email eq "a\"b@example.com""#),
            Some(UserFilter {
                terms: vec![term(FilterAttribute::Email, "a\"b@example.com")]
            })
        );
    }

    #[test]
    fn parses_population_and_group_membership_filters() {
        let group = "6d3a9bb8-c27e-41e5-9e8d-bf9c7addd407";
        assert_eq!(
            UserFilter::parse(&format!(
                r#"memberOfGroups[id eq "{group}"] or population.id eq "x""#
            )),
            Some(UserFilter {
                terms: vec![
                    term(FilterAttribute::GroupId, group),
                    term(FilterAttribute::PopulationId, "x"),
                ]
            })
        );
        assert_eq!(
            parse_name_filter(r#"name eq "Contractors""#).as_deref(),
            Some("Contractors")
        );
        assert_eq!(parse_name_filter(r#"name eq "a" or name eq "b""#), None);
    }

    #[test]
    fn parses_terms_joined_by_or_with_quotes_and_or_inside_values() {
        assert_eq!(
            UserFilter::parse(r#"username eq "a or b" OR email eq "x\" or y" or username eq "c""#),
            Some(UserFilter {
                terms: vec![
                    term(FilterAttribute::Username, "a or b"),
                    term(FilterAttribute::Email, "x\" or y"),
                    term(FilterAttribute::Username, "c"),
                ]
            })
        );
    }

    #[test]
    fn refuses_other_attributes_operators_and_unquoted_values() {
        for text in [
            r#"id eq "x""#,
            r#"username sw "x""#,
            "username eq x",
            r#"username eq "x"y""#,
            r#"username eq "x" and email eq "y""#,
            r#"username eq "x" or"#,
            r#"username eq "x" or username pr"#,
            r#"username eq "unterminated"#,
            "",
        ] {
            assert_eq!(UserFilter::parse(text), None, "{text:?} was accepted");
        }
    }

    fn file_with(contents: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), contents).expect("the temporary file is writable");
        file
    }

    #[test]
    fn missing_users_file_names_the_bad_line() {
        let file = file_with("# gone\n4b5e7f96-a05c-4fc3-9c6b-9d7a5ebbc205\n\nnot-a-uuid\n");
        let error = read_missing_users_file(file.path())
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("line 4") && e.contains("not-a-uuid")),
            "{error:?}"
        );
    }

    #[test]
    fn users_file_names_the_bad_line_and_the_expected_columns() {
        let file = file_with(
            "environment_id,user_id,username,email\n\
             4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01,0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01,a,a@x\n\
             4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01,jdoe,b,b@x\n",
        );
        let error = read_users_file(file.path()).err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(
                |e| e.contains("line 3") && e.contains("environment_id,user_id,username,email")
            ),
            "{error:?}"
        );
    }

    #[test]
    fn users_file_rows_may_leave_username_and_email_empty() {
        let file = file_with(
            "environment_id,user_id,username,email\n\
             4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01,0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01,,\n",
        );
        let users = read_users_file(file.path()).map(|users| users.len());
        assert_eq!(users.ok(), Some(1));
    }
}
