//! Resolving the names admins use (usernames, emails) to the user IDs PingOne's `bypassMFA`
//! needs. Names are looked up in batches (`username eq "a" or username eq "b" …`) under the
//! same throttle, retries, token and stop rules as the PUTs, each distinct name once per run.
//! A name that matches no user, or several (emails are not unique), gets no PUT. If PingOne
//! refuses a batched filter, smaller batches and then single lookups are used for the rest
//! of the run.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::Instrument;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::gateway::Gateway;
use crate::gateway::listing::{ListingFailure, Resolution, list_all};
use crate::pingone::{ListedUser, filter_term};
use crate::plan::UserName;

/// Names per lookup at first. Fifty `email eq "…"` terms keep the URL near 3 KB, well under
/// what HTTP front ends accept, and one page of 200 users holds their answers.
const FIRST_BATCH: usize = 50;
/// Names per lookup after PingOne refuses a batch of more.
const SMALL_BATCH: usize = 10;

/// The name a plan looks up to learn whether PingOne lets it into an environment: no user has
/// it, so the answer is an empty page or a refusal.
const ACCESS_CHECK_NAME: &str = "pingone-bypass access check";

/// Why PingOne will not let the run into an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessRefused {
    pub http_status: u16,
    pub error_code: String,
    pub error_message: String,
}

/// Whether PingOne lets the run into each environment, asked once per environment by a plan
/// (`--dry-run --resolve`): a plan of rows given by ID would otherwise promise grants in an
/// environment the credentials cannot reach (another region, no role there).
pub(crate) struct EnvironmentAccess {
    sender: Arc<Gateway>,
    known: HashMap<Uuid, Option<AccessRefused>>,
}

impl EnvironmentAccess {
    pub(crate) fn new(sender: Arc<Gateway>) -> Self {
        Self {
            sender,
            known: HashMap::new(),
        }
    }

    /// Notes that PingOne answered a lookup in `environment`: the run may enter it.
    pub(crate) fn entered(&mut self, environment: Uuid) {
        self.known.entry(environment).or_insert(None);
    }

    /// PingOne's refusal of `environment`, if it refuses it. An answer that does not decide
    /// (an outage, no answer) refuses nothing: the grant meets it with its own retries.
    pub(crate) async fn refusal(&mut self, environment: Uuid) -> Option<AccessRefused> {
        if let Some(known) = self.known.get(&environment) {
            return known.clone();
        }
        let url = self.sender.client().listing_url(
            environment,
            "users",
            &filter_term("username", ACCESS_CHECK_NAME),
        );
        let refused =
            match list_all::<ListedUser>(&self.sender, environment, url, 0, "access").await {
                Err(ListingFailure::Failed {
                    http_status: Some(http_status @ (401 | 403 | 404)),
                    error_code,
                    error_message,
                }) => Some(AccessRefused {
                    http_status,
                    error_code,
                    error_message,
                }),
                _ => None,
            };
        self.known.insert(environment, refused.clone());
        refused
    }
}

/// Looks names up for a run; shared by the lookups in flight.
pub(crate) struct Lookups {
    sender: Arc<Gateway>,
    /// Names per request: lowered for the rest of the run when PingOne refuses a batch.
    batch_limit: AtomicUsize,
}

impl Lookups {
    pub(crate) fn new(sender: Arc<Gateway>) -> Self {
        Self {
            sender,
            batch_limit: AtomicUsize::new(FIRST_BATCH),
        }
    }

    fn batch_limit(&self) -> usize {
        self.batch_limit.load(Ordering::Relaxed)
    }

    /// Resolves distinct names of one environment.
    async fn resolve(&self, names: Vec<UserName>) -> Vec<(UserName, Resolution)> {
        let mut resolved = Vec::with_capacity(names.len());
        let mut batches = vec![names];
        while let Some(batch) = batches.pop() {
            let limit = self.batch_limit();
            if batch.len() > limit {
                batches.extend(batch.chunks(limit).map(<[UserName]>::to_vec));
                continue;
            }
            match self.look_up(&batch).await {
                Looked::Answered(users) => {
                    let (answered, unexplained) = attribute(&batch, &users);
                    if unexplained && batch.len() > 1 {
                        // PingOne listed a user that matches none of the names as written
                        // (another spelling of a name): the names it might belong to are
                        // looked up one at a time, where every user listed is a match.
                        for (name, resolution) in answered {
                            if resolution == Resolution::NotFound {
                                batches.push(vec![name]);
                            } else {
                                resolved.push((name, resolution));
                            }
                        }
                    } else {
                        resolved.extend(answered);
                    }
                }
                Looked::BatchRefused(message) if batch.len() > 1 => {
                    let smaller = if batch.len() > SMALL_BATCH {
                        SMALL_BATCH
                    } else {
                        1
                    };
                    let before = self.batch_limit.fetch_min(smaller, Ordering::Relaxed);
                    if before > smaller {
                        tracing::warn!(
                            names = batch.len(),
                            "PingOne refused a lookup of several names at once ({message}); looking up at most {smaller} at a time from now on"
                        );
                    }
                    batches.extend(batch.chunks(smaller).map(<[UserName]>::to_vec));
                }
                Looked::BatchRefused(message) => resolved.extend(batch.into_iter().map(|name| {
                    let failed = Resolution::Failed {
                        http_status: Some(400),
                        error_code: "LOOKUP_REFUSED".to_owned(),
                        error_message: format!(
                            "PingOne refused to look up {} {:?}: {message}",
                            name.attribute.as_str(),
                            name.value
                        ),
                    };
                    (name, failed)
                })),
                Looked::Ended(resolution) => {
                    resolved.extend(batch.into_iter().map(|name| (name, resolution.clone())))
                }
            }
        }
        resolved
    }

    async fn look_up(&self, batch: &[UserName]) -> Looked {
        let Some(first) = batch.first() else {
            return Looked::Answered(Vec::new());
        };
        let filter = batch
            .iter()
            .map(|name| filter_term(name.attribute.as_str(), &name.value))
            .collect::<Vec<_>>()
            .join(" or ");
        let url = self
            .sender
            .client()
            .listing_url(first.environment_id, "users", &filter);
        match list_all::<ListedUser>(
            &self.sender,
            first.environment_id,
            url,
            usize::MAX,
            "lookup",
        )
        .await
        {
            Ok(listed) => Looked::Answered(listed.items),
            Err(ListingFailure::Refused {
                http_status,
                message,
            }) => Looked::BatchRefused(format!("HTTP {http_status}: {message}")),
            Err(ListingFailure::Failed {
                http_status,
                error_code,
                error_message,
            }) => Looked::Ended(Resolution::Failed {
                http_status,
                error_code,
                error_message,
            }),
            Err(ListingFailure::Stopped(reason)) => Looked::Ended(Resolution::Stopped(reason)),
        }
    }
}

enum Looked {
    Answered(Vec<ListedUser>),
    BatchRefused(String),
    /// The same for every name of the batch.
    Ended(Resolution),
}

/// Which listed users each name matches (PingOne compares names without regard to case), and
/// whether some listed user matched none of them.
fn attribute(batch: &[UserName], users: &[ListedUser]) -> (Vec<(UserName, Resolution)>, bool) {
    let mut explained = vec![false; users.len()];
    let answered = batch
        .iter()
        .map(|name| {
            let wanted = name.value.to_lowercase();
            let matches: Vec<usize> = users
                .iter()
                .enumerate()
                .filter(|(_, user)| {
                    batch.len() == 1
                        || name
                            .attribute
                            .of(user)
                            .is_some_and(|value| value.trim().to_lowercase() == wanted)
                })
                .map(|(index, _)| index)
                .collect();
            for index in &matches {
                explained[*index] = true;
            }
            let resolution = match matches.as_slice() {
                [] => Resolution::NotFound,
                [only] => match crate::plan::parse_id(&users[*only].id) {
                    Some(id) => Resolution::Found(id),
                    None => Resolution::Failed {
                        http_status: None,
                        error_code: "UNREADABLE_RESPONSE".to_owned(),
                        error_message: format!(
                            "PingOne listed the user with the ID {:?}, which is not a UUID",
                            users[*only].id
                        ),
                    },
                },
                several => Resolution::Ambiguous(several.len()),
            };
            (name.clone(), resolution)
        })
        .collect();
    (answered, explained.contains(&false))
}

/// The key under which a name is looked up once: PingOne compares names without regard to
/// case, so `ADA` and `ada` are one lookup.
fn same_name(name: &UserName) -> UserName {
    UserName {
        value: name.value.to_lowercase(),
        ..name.clone()
    }
}

/// A row waiting for its name, as the planning stage hands it over and takes it back.
pub(crate) struct Waiting<R> {
    pub(crate) name: UserName,
    pub(crate) row: R,
}

/// The planning stage's side of resolution: which names are known, which rows wait for which
/// name, and which names are still to be sent, per environment. Lookups run as tasks of their
/// own; their answers come back through a channel, so that this needs no lock.
pub(crate) struct Resolver<R> {
    lookups: Arc<Lookups>,
    /// Resolutions and waiting rows by `same_name`; the queue holds names as first written,
    /// which is how they are looked up.
    known: HashMap<UserName, Resolution>,
    waiting: HashMap<UserName, Vec<R>>,
    queued: BTreeMap<Uuid, Vec<UserName>>,
    answers_sender: mpsc::UnboundedSender<Vec<(UserName, Resolution)>>,
    answers: mpsc::UnboundedReceiver<Vec<(UserName, Resolution)>>,
    /// Lookup tasks whose answers have not come back.
    in_flight: usize,
}

impl<R> Resolver<R> {
    pub(crate) fn new(lookups: Arc<Lookups>) -> Self {
        let (answers_sender, answers) = mpsc::unbounded_channel();
        Self {
            lookups,
            known: HashMap::new(),
            waiting: HashMap::new(),
            queued: BTreeMap::new(),
            answers_sender,
            answers,
            in_flight: 0,
        }
    }

    /// The name's resolution if it is known; otherwise the row waits for it, and the name is
    /// looked up with others of its environment once there are enough of them.
    pub(crate) fn ask(&mut self, waiting: Waiting<R>) -> Option<(R, Resolution)> {
        let key = same_name(&waiting.name);
        if let Some(resolution) = self.known.get(&key) {
            return Some((waiting.row, resolution.clone()));
        }
        let rows = self.waiting.entry(key).or_default();
        rows.push(waiting.row);
        if rows.len() == 1 {
            let environment = waiting.name.environment_id;
            let queue = self.queued.entry(environment).or_default();
            queue.push(waiting.name);
            if queue.len() >= self.lookups.batch_limit() {
                self.dispatch(environment);
            }
        }
        None
    }

    /// Sends every name still queued: the rows waiting for them must not wait for rows that
    /// may never come.
    pub(crate) fn flush(&mut self) {
        let environments: Vec<Uuid> = self.queued.keys().copied().collect();
        for environment in environments {
            self.dispatch(environment);
        }
    }

    fn dispatch(&mut self, environment: Uuid) {
        let Some(names) = self.queued.remove(&environment) else {
            return;
        };
        if names.is_empty() {
            return;
        }
        self.in_flight += 1;
        let (lookups, answers) = (self.lookups.clone(), self.answers_sender.clone());
        tokio::spawn(
            async move {
                let resolved = lookups.resolve(names).await;
                // Fails only when the planning stage has ended, which takes the rows with it.
                let _ = answers.send(resolved);
            }
            .in_current_span(),
        );
    }

    /// Whether names wait to be sent.
    pub(crate) fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Whether rows wait for lookups that have been sent.
    pub(crate) fn is_waiting(&self) -> bool {
        self.in_flight > 0
    }

    /// The rows whose names the next lookup to finish resolved, with their resolutions; `None`
    /// when no lookup is in flight.
    pub(crate) async fn next(&mut self) -> Option<Vec<(R, Resolution)>> {
        if self.in_flight == 0 {
            return None;
        }
        let resolved = self.answers.recv().await?;
        self.in_flight -= 1;
        let mut rows = Vec::new();
        for (name, resolution) in resolved {
            let key = same_name(&name);
            for row in self.waiting.remove(&key).unwrap_or_default() {
                rows.push((row, resolution.clone()));
            }
            self.known.insert(key, resolution);
        }
        Some(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pingone::NameAttribute;

    fn name(attribute: NameAttribute, value: &str) -> UserName {
        UserName {
            environment_id: Uuid::nil(),
            attribute,
            value: value.to_owned(),
        }
    }

    fn user(id: &str, username: &str, email: &str) -> ListedUser {
        ListedUser {
            id: id.to_owned(),
            username: Some(username.to_owned()),
            email: Some(email.to_owned()),
        }
    }

    const ADA: &str = "0d9a3b52-6c1e-4b8f-9e27-5f3c1a7d8e01";
    const ALAN: &str = "1e8b4c63-7d2f-4c90-8f38-6a4d2b8e9f02";

    #[test]
    fn each_name_of_a_batch_gets_the_users_that_carry_it_regardless_of_case() {
        let batch = [
            name(NameAttribute::Username, "Ada"),
            name(NameAttribute::Email, "shared@example.com"),
            name(NameAttribute::Username, "nobody"),
        ];
        let users = [
            user(ADA, "ada", "shared@example.com"),
            user(ALAN, "alan", "SHARED@example.com"),
        ];
        let (answered, unexplained) = attribute(&batch, &users);
        let resolutions: Vec<_> = answered.into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            resolutions,
            [
                Resolution::Found(Uuid::parse_str(ADA).unwrap_or_default()),
                Resolution::Ambiguous(2),
                Resolution::NotFound,
            ]
        );
        assert!(!unexplained);
    }

    #[test]
    fn a_listed_user_no_name_explains_is_noticed() {
        let batch = [
            name(NameAttribute::Username, "a"),
            name(NameAttribute::Username, "b"),
        ];
        let (_, unexplained) = attribute(&batch, &[user(ADA, "ä", "x@example.com")]);
        assert!(unexplained);
    }

    #[test]
    fn a_single_name_gets_every_user_listed_for_it() {
        let batch = [name(NameAttribute::Username, "strasse")];
        let (answered, _) = attribute(&batch, &[user(ADA, "straße", "x@example.com")]);
        assert_eq!(
            answered[0].1,
            Resolution::Found(Uuid::parse_str(ADA).unwrap_or_default())
        );
    }
}
