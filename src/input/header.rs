//! A header row read for what each column is: the environment, the user (by ID, username or
//! email, under any of their documented spellings), the expiry, a results file's own columns
//! (`status` for `--only`), and every other column carried through; a header that names no
//! user column, or one twice, refused naming what it found.

use super::{InputError, text_check};
use crate::pingone::NameAttribute;

/// The columns a header row names, by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The environment column's index and its name as written, if the file has one.
    pub environment: Option<(usize, String)>,
    /// The columns that may name a row's user, in the order they are tried (ID, username,
    /// email), with their indexes and names as written; at least one.
    pub users: Vec<(UserColumn, usize, String)>,
    pub until: Option<(usize, String)>,
    /// Every other column, carried through to the results unchanged, in file order. The
    /// username and email columns are among them: the results show the name as written beside
    /// the ID it resolved to.
    pub extras: Vec<(usize, String)>,
    /// The `status` column of a results file used as input (for `--only`, and for `end`: only
    /// its succeeded rows are ended).
    pub status: Option<usize>,
    /// The `bypass_mfa_enabled_until` column of a results file used as input: the expiry its
    /// run recorded, which `end` compares with the one in force.
    pub granted_until: Option<usize>,
    pub field_count: usize,
}

impl Header {
    pub fn extra_names(&self) -> impl Iterator<Item = &str> {
        self.extras.iter().map(|(_, name)| name.as_str())
    }
}

/// Which of its columns a row names its user by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum UserColumn {
    /// PingOne's user ID: sent as it is, once checked to be a UUID.
    #[default]
    Id,
    /// A username or email, resolved to an ID before anything is sent.
    Name(NameAttribute),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Environment,
    User(UserColumn),
    Until,
}

impl Role {
    fn of(name: &str) -> Option<Self> {
        match normalised(name).as_str() {
            "envid" | "environmentid" | "environment" | "env" => Some(Self::Environment),
            "userid" | "user" => Some(Self::User(UserColumn::Id)),
            "username" | "login" => Some(Self::User(UserColumn::Name(NameAttribute::Username))),
            "email" | "mail" | "emailaddress" => {
                Some(Self::User(UserColumn::Name(NameAttribute::Email)))
            }
            "until" | "bypassmfaenableduntil" | "expires" | "expiry" => Some(Self::Until),
            _ => None,
        }
    }

    /// A column of a results file read as input: its environment, user ID and the expiry it
    /// asked for are used; the rest (the names among it) is carried.
    fn of_results_column(name: &str) -> Option<Self> {
        match name {
            "environment_id" => Some(Self::Environment),
            "user_id" => Some(Self::User(UserColumn::Id)),
            "requested_until" => Some(Self::Until),
            _ => match Self::of(name) {
                Some(Self::User(UserColumn::Name(attribute))) => {
                    Some(Self::User(UserColumn::Name(attribute)))
                }
                _ => None,
            },
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::User(UserColumn::Id) => "user ID",
            Self::User(UserColumn::Name(NameAttribute::Username)) => "username",
            Self::User(UserColumn::Name(NameAttribute::Email)) => "email",
            Self::Until => "until",
        }
    }
}

/// A header name as it is matched: without white space of any kind (a no-break space pasted
/// from a web page looks like a space), zero-width characters, `_` and `-`, in lower case.
fn normalised(name: &str) -> String {
    name.chars()
        .filter(|c| {
            !(c.is_whitespace()
                || matches!(
                    c,
                    '_' | '-' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}'
                ))
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The user column a header name stands for, if any (by the same matching rules as the input).
pub fn user_column_of(name: &str) -> Option<UserColumn> {
    match Role::of(name) {
        Some(Role::User(column)) => Some(column),
        _ => None,
    }
}

/// The columns that make a header a results file of this tool: all of them, by their exact
/// names (the results' fixed columns, docs/cli.md).
const RESULTS_OWN_COLUMNS: [&str; 6] = [
    "row",
    "environment_id",
    "user_id",
    "requested_until",
    "status",
    "completed_at",
];

/// The roles of a header's columns. A header holding every one of a results file's own columns
/// is read as one: its `environment_id`, `user_id` and `requested_until` are used.
pub(crate) fn interpret_header(names: &[String], source_name: &str) -> Result<Header, InputError> {
    if names.len() > text_check::MOST_COLUMNS {
        return Err(InputError::TooManyColumns {
            source_name: source_name.to_owned(),
        });
    }
    let is_results = RESULTS_OWN_COLUMNS
        .iter()
        .all(|own| names.iter().any(|name| name == own));
    let role_of = if is_results {
        Role::of_results_column
    } else {
        Role::of
    };
    let mut environment: Option<(usize, String)> = None;
    let mut user_id: Option<(usize, String)> = None;
    let mut username: Option<(usize, String)> = None;
    let mut email: Option<(usize, String)> = None;
    let mut until: Option<(usize, String)> = None;
    let mut extras = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let role = role_of(name);
        let slot = match role {
            Some(Role::Environment) => &mut environment,
            Some(Role::User(UserColumn::Id)) => &mut user_id,
            Some(Role::User(UserColumn::Name(NameAttribute::Username))) => &mut username,
            Some(Role::User(UserColumn::Name(NameAttribute::Email))) => &mut email,
            Some(Role::Until) => &mut until,
            // A column without a name holds nothing an admin meant to carry: it is left out
            // rather than named `input_` in the results.
            None if name.trim().is_empty() => continue,
            None => {
                extras.push((index, name.clone()));
                continue;
            }
        };
        if let Some((_, first)) = slot {
            return Err(InputError::RepeatedColumn {
                source_name: source_name.to_owned(),
                role: role.map_or("", Role::label),
                first: first.clone(),
                second: name.clone(),
            });
        }
        *slot = Some((index, name.clone()));
        if matches!(role, Some(Role::User(UserColumn::Name(_)))) {
            extras.push((index, name.clone()));
        }
    }
    let users: Vec<(UserColumn, usize, String)> = [
        (UserColumn::Id, user_id),
        (UserColumn::Name(NameAttribute::Username), username),
        (UserColumn::Name(NameAttribute::Email), email),
    ]
    .into_iter()
    .filter_map(|(column, found)| found.map(|(index, name)| (column, index, name)))
    .collect();
    if users.is_empty() {
        return Err(InputError::NoUserColumn {
            source_name: source_name.to_owned(),
            found: names.join(", "),
        });
    }
    let own_column = |own: &str| {
        is_results
            .then(|| names.iter().position(|name| name == own))
            .flatten()
    };
    Ok(Header {
        environment,
        users,
        until,
        extras,
        status: own_column("status"),
        granted_until: own_column("bypass_mfa_enabled_until"),
        field_count: names.len(),
    })
}
