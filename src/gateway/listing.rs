//! Reading a PingOne listing (`/users`, `/populations`, `/groups`) to its end: every page,
//! following `_links.next` only while it stays on the same listing of the same API (a link
//! elsewhere would take the token with it), each page one request through the gateway.

use secrecy::SecretString;
use uuid::Uuid;

use super::client::{Attempt, PingOneClient, Transaction};
use super::{Gateway, NotSent, Request, RequestCounts, Sent};
use crate::pingone::ListPage;

/// Pages followed for one name lookup before giving up on it: 20,000 users at 200 a page. Only
/// a name shared by that many users gets there. A bounded listing (a population) is bounded by
/// its items instead.
const MOST_PAGES: usize = 100;

/// What a user's name came to when it was looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Found(Uuid),
    NotFound,
    /// This many users have the name.
    Ambiguous(usize),
    /// The lookup failed for good: PingOne's last answer, or why there was none.
    Failed {
        http_status: Option<u16>,
        error_code: String,
        error_message: String,
    },
    /// The run, or the name's environment, stopped before the lookup was made.
    Stopped(NotSent),
}

/// A listing read to its end: the items, and how many PingOne said there are, when it said.
pub(crate) struct Listed<T> {
    pub items: Vec<T>,
    pub total: Option<u64>,
}

/// Why a listing could not be read to its end.
pub(crate) enum ListingFailure {
    /// PingOne refused the request itself (400 or 414): its filter or URL.
    Refused {
        http_status: u16,
        message: String,
    },
    Failed {
        http_status: Option<u16>,
        error_code: String,
        error_message: String,
    },
    Stopped(NotSent),
}

/// Reads every page of the listing at `url` in `environment`, following `_links.next` only
/// while it stays on the same listing, and stopping early once more than `most` items are
/// known to be there (PingOne's `count`, or the items read so far).
pub(crate) async fn list_all<T: serde::de::DeserializeOwned + Send>(
    sender: &Gateway,
    environment: Uuid,
    url: String,
    most: usize,
    what: &str,
) -> Result<Listed<T>, ListingFailure> {
    let mut items = Vec::new();
    let mut total = None;
    let mut next = Some(url.clone());
    let most_pages = if most == usize::MAX {
        MOST_PAGES
    } else {
        most.saturating_add(1)
    };
    let mut pages = 0;
    // Every page and retry of one listing is one transaction in PingOne's audit log.
    let transaction = sender.client.new_transaction(what);
    while let Some(page_url) = next.take() {
        pages += 1;
        if pages > most_pages {
            return Err(ListingFailure::Failed {
                http_status: None,
                error_code: "TOO_MANY_MATCHES".to_owned(),
                error_message: format!(
                    "the listing went on for more than {most_pages} pages; narrow it down"
                ),
            });
        }
        let request = PageRequestOf::<T>::new(page_url);
        let sent = sender.send(environment, &request, &transaction).await;
        let attempts = match &sent {
            Sent::Answered(_, attempts) => u64::from(*attempts),
            Sent::Stopped(_, answer) => answer.as_ref().map_or(0, |(_, n)| u64::from(*n)),
        };
        RequestCounts::add(&sender.counts.lookups, attempts);
        let page = page_of(sent)?;
        total = total.or(page.count);
        if page.embedded.items.is_empty() {
            // An empty page ends a listing whatever its links say: following them could go on
            // for ever.
            break;
        }
        items.extend(page.embedded.items);
        let known = total.map_or(0, |count| usize::try_from(count).unwrap_or(usize::MAX));
        if items.len().max(known) > most {
            return Ok(Listed { items, total });
        }
        if let Some(link) = page.links.next {
            match sender.client.next_page_url(&url, &link.href) {
                Some(next_url) => next = Some(next_url),
                None => {
                    return Err(ListingFailure::Failed {
                        http_status: None,
                        error_code: "FOREIGN_LINK".to_owned(),
                        error_message: format!(
                            "PingOne's next-page link {:?} leads away from the listing; it was not followed, so the token stays where it belongs",
                            link.href
                        ),
                    });
                }
            }
        }
    }
    Ok(Listed { items, total })
}

/// A page PingOne answered with, or what the listing came to instead: refused as asked (a
/// filter PingOne will not take, 400 or 414), failed, or stopped.
pub(crate) fn page_of<T>(sent: Sent<ListPage<T>>) -> Result<ListPage<T>, ListingFailure> {
    match sent {
        Sent::Answered(Attempt::Success { answer, .. }, _) => Ok(answer),
        Sent::Answered(
            Attempt::Refused {
                http_status: http_status @ (400 | 414),
                error_message,
                ..
            },
            _,
        ) => Err(ListingFailure::Refused {
            http_status,
            message: error_message,
        }),
        Sent::Answered(
            Attempt::Refused {
                http_status,
                error_code,
                error_message,
                ..
            },
            _,
        ) => Err(ListingFailure::Failed {
            http_status: Some(http_status),
            error_code,
            error_message,
        }),
        Sent::Answered(Attempt::NoAnswer { error_message }, attempts) => {
            Err(ListingFailure::Failed {
                http_status: None,
                error_code: "NO_ANSWER".to_owned(),
                error_message: format!("{error_message} (after {attempts} attempts)"),
            })
        }
        Sent::Stopped(reason, _) => Err(ListingFailure::Stopped(reason)),
    }
}

/// `GET` of one page of a listing of `T`s.
pub(crate) struct PageRequestOf<T> {
    url: String,
    items: std::marker::PhantomData<fn() -> T>,
}

impl<T> PageRequestOf<T> {
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            items: std::marker::PhantomData,
        }
    }
}

impl<T: serde::de::DeserializeOwned + Send> Request for PageRequestOf<T> {
    type Answer = ListPage<T>;
    fn send_once(
        &self,
        client: &PingOneClient,
        token: &SecretString,
        transaction: &Transaction,
    ) -> impl Future<Output = Attempt<Self::Answer>> + Send {
        client.get_page(&self.url, token, transaction)
    }
}
