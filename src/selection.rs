//! Whole populations and groups instead of a file (`--population`, `--group`): the collection
//! is found by ID or name, its members are listed (paging through PingOne's cursor), and the
//! listing becomes the run's input, one row per member in the order PingOne lists them, so
//! that every later stage is the one a file goes through. `--max-users` bounds the selection:
//! a larger one sends nothing.

use uuid::Uuid;

use crate::gateway::Gateway;
use crate::gateway::listing::{Listed, ListingFailure, list_all};
use crate::input::{InputError, InputReader};
use crate::pingone::{ListedCollection, ListedUser, filter_term};
use crate::plan::parse_id;

/// Which kind of collection a selection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Population,
    Group,
}

impl Collection {
    fn singular(self) -> &'static str {
        match self {
            Self::Population => "population",
            Self::Group => "group",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Self::Population => "populations",
            Self::Group => "groups",
        }
    }

    /// The user filter that lists the members of the collection with this ID.
    fn members_filter(self, id: Uuid) -> String {
        match self {
            Self::Population => filter_term("population.id", &id.to_string()),
            Self::Group => format!("memberOfGroups[{}]", filter_term("id", &id.to_string())),
        }
    }
}

/// The users of one population or group, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub collection: Collection,
    /// The population's or group's ID, or its name, as given.
    pub named: String,
    pub environment_id: Uuid,
    /// `--max-users`: a selection of more sends nothing.
    pub max_users: usize,
}

impl Selection {
    pub fn describe(&self) -> String {
        format!(
            "{} {:?} in environment {}",
            self.collection.singular(),
            self.named,
            self.environment_id
        )
    }

    /// The stem of the default results file: `population-Contractors`, with anything but
    /// letters, digits, `.`, `_` and `-` made a `_`, so that a name cannot reach another
    /// folder.
    pub fn file_stem(&self) -> String {
        let name: String = self
            .named
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}-{name}", self.collection.singular())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error(
        "no {kind} is named {name:?} in environment {environment}; check the name in the admin console, or pass the {kind}'s ID"
    )]
    NotFound {
        kind: &'static str,
        name: String,
        environment: Uuid,
    },
    #[error(
        "{count} {kinds} are named {name:?} in environment {environment} ({ids}); pass the ID of the one meant"
    )]
    SameName {
        count: usize,
        kinds: &'static str,
        name: String,
        environment: Uuid,
        ids: String,
    },
    #[error(
        "the {what} holds {count} users, more than --max-users {max_users}; nothing was sent. Raise --max-users if every one of them should get a bypass"
    )]
    TooMany {
        what: String,
        /// PingOne's count, or "at least" the users listed before listing stopped.
        count: String,
        max_users: usize,
    },
    #[error("cannot list the {what}: {message}; nothing was sent")]
    Listing { what: String, message: String },
    /// No access token could be had.
    #[error("cannot list the {what}: the run stopped because {reason}")]
    NoToken { what: String, reason: String },
    #[error(transparent)]
    Input(#[from] InputError),
    /// A dry run without `--resolve` has no connection to list with.
    #[error("the {0} can only be listed with a connection: add --resolve to a --dry-run")]
    NotConnected(String),
}

impl SelectionError {
    /// Whether the selection failed for want of an access token (exit 3) rather than for
    /// what was asked (exit 2).
    pub fn is_no_token(&self) -> bool {
        matches!(self, Self::NoToken { .. })
    }
}

/// Lists the selection's members, within `--max-users`, as an input of `userID`, `username`
/// and `email` columns, numbered from row 2 in PingOne's order; and how many there are.
pub(crate) async fn list_members(
    selection: &Selection,
    sender: &Gateway,
) -> Result<(InputReader, u64), SelectionError> {
    let what = selection.describe();
    let id = find_collection(selection, sender).await?;
    let url = sender.client().listing_url(
        selection.environment_id,
        "users",
        &selection.collection.members_filter(id),
    );
    let (members, total) = match list_all::<ListedUser>(
        sender,
        selection.environment_id,
        url,
        selection.max_users,
        "members",
    )
    .await
    {
        Ok(Listed { items, total }) => (items, total),
        Err(failure) => return Err(listing_failed(what, failure, sender)),
    };
    let listed = u64::try_from(members.len()).unwrap_or(u64::MAX);
    let most = u64::try_from(selection.max_users).unwrap_or(u64::MAX);
    if listed.max(total.unwrap_or(0)) > most {
        let count = match total {
            Some(total) if total >= listed => total.to_string(),
            _ => format!("at least {listed}"),
        };
        return Err(SelectionError::TooMany {
            what,
            count,
            max_users: selection.max_users,
        });
    }
    if members.is_empty() {
        tracing::warn!(selection = %what, "the selection has no members; nothing to send");
    } else {
        tracing::info!(selection = %what, members = members.len(), "listed the selection's members");
    }
    let mut table = csv::Writer::from_writer(Vec::new());
    let write = |table: &mut csv::Writer<Vec<u8>>, cells: [&str; 3]| {
        table
            .write_record(cells)
            .map_err(|error| SelectionError::Listing {
                what: selection.describe(),
                message: error.to_string(),
            })
    };
    write(&mut table, ["userID", "username", "email"])?;
    for member in &members {
        write(
            &mut table,
            [
                &member.id,
                member.username.as_deref().unwrap_or(""),
                member.email.as_deref().unwrap_or(""),
            ],
        )?;
    }
    let bytes = table
        .into_inner()
        .map_err(|error| SelectionError::Listing {
            what: selection.describe(),
            message: error.to_string(),
        })?;
    let reader =
        InputReader::from_reader(Box::new(std::io::Cursor::new(bytes)), selection.describe())?;
    Ok((reader, listed))
}

/// The ID of the selected population or group: as given, or found by its name.
async fn find_collection(selection: &Selection, sender: &Gateway) -> Result<Uuid, SelectionError> {
    if let Some(id) = parse_id(selection.named.trim()) {
        return Ok(id);
    }
    let kind = selection.collection;
    let name = selection.named.trim();
    let url = sender.client().listing_url(
        selection.environment_id,
        kind.plural(),
        &filter_term("name", name),
    );
    let found = match list_all::<ListedCollection>(
        sender,
        selection.environment_id,
        url,
        usize::MAX,
        "find",
    )
    .await
    {
        Ok(listed) => listed.items,
        Err(failure) => {
            return Err(listing_failed(
                format!(
                    "{} in environment {}",
                    kind.plural(),
                    selection.environment_id
                ),
                failure,
                sender,
            ));
        }
    };
    let named: Vec<&ListedCollection> = found
        .iter()
        .filter(|collection| collection.name.to_lowercase() == name.to_lowercase())
        .collect();
    match named.as_slice() {
        [] => Err(SelectionError::NotFound {
            kind: kind.singular(),
            name: name.to_owned(),
            environment: selection.environment_id,
        }),
        [only] => parse_id(&only.id).ok_or_else(|| SelectionError::Listing {
            what: selection.describe(),
            message: format!("PingOne gave it the ID {:?}, which is not a UUID", only.id),
        }),
        several => Err(SelectionError::SameName {
            count: several.len(),
            kinds: kind.plural(),
            name: name.to_owned(),
            environment: selection.environment_id,
            ids: several
                .iter()
                .map(|collection| collection.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn listing_failed(what: String, failure: ListingFailure, sender: &Gateway) -> SelectionError {
    match failure {
        ListingFailure::Refused {
            http_status,
            message,
        } => SelectionError::Listing {
            what,
            message: format!("PingOne refused the listing (HTTP {http_status}): {message}"),
        },
        ListingFailure::Failed {
            http_status,
            error_code,
            error_message,
        } => SelectionError::Listing {
            what,
            message: format!(
                "{}{error_code} {error_message}",
                http_status.map_or_else(String::new, |status| format!("HTTP {status} "))
            ),
        },
        ListingFailure::Stopped(reason) => match sender.stopped_because() {
            Some(no_token) => SelectionError::NoToken {
                what,
                reason: no_token,
            },
            None => SelectionError::Listing {
                what,
                message: reason.message,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_listed_with_pingones_filters() {
        let id = Uuid::nil();
        assert_eq!(
            Collection::Population.members_filter(id),
            r#"population.id eq "00000000-0000-0000-0000-000000000000""#
        );
        assert_eq!(
            Collection::Group.members_filter(id),
            r#"memberOfGroups[id eq "00000000-0000-0000-0000-000000000000"]"#
        );
    }

    #[test]
    fn a_selections_results_file_stays_in_the_folder_whatever_its_name() {
        let selection = Selection {
            collection: Collection::Group,
            named: "../Help desk/Tier 1".to_owned(),
            environment_id: Uuid::nil(),
            max_users: 1,
        };
        assert_eq!(selection.file_stem(), "group-.._Help_desk_Tier_1");
    }
}
