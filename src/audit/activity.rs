//! An activity of PingOne's audit log, as far as reconciling reads one: its IDs, when it was
//! recorded, the external IDs the tool's request carried, the users it was about and whether
//! it succeeded. Every other field, and `action.type` above all (Ping does not publish which
//! type a bypass change is logged with), is left unread.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Activity {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "recordedAt", default)]
    pub recorded_at: Option<String>,
    /// PingOne's own ID of the request.
    #[serde(rename = "correlationId", default)]
    pub correlation_id: Option<String>,
    #[serde(rename = "externalCorrelation", default)]
    pub external: Option<ExternalCorrelation>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub result: Option<ActivityResult>,
}

/// `X-Ping-External-Session-ID` and `-Transaction-ID` as PingOne recorded them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExternalCorrelation {
    #[serde(rename = "sessionId", default)]
    pub session_id: Option<String>,
    #[serde(rename = "transactionId", default)]
    pub transaction_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Resource {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActivityResult {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl Activity {
    /// Whether PingOne says the request did what it asked.
    pub fn succeeded(&self) -> bool {
        self.result
            .as_ref()
            .and_then(|result| result.status.as_deref())
            .is_some_and(|status| status.trim().eq_ignore_ascii_case("SUCCESS"))
    }

    pub fn session(&self) -> Option<&str> {
        self.external.as_ref()?.session_id.as_deref()
    }

    pub fn transaction(&self) -> Option<&str> {
        self.external.as_ref()?.transaction_id.as_deref()
    }

    /// Whether the activity is about `user` (a resource of type USER, or of no type, with that
    /// ID).
    pub fn names_user(&self, user: &str) -> bool {
        self.resources.iter().any(|resource| {
            resource
                .kind
                .as_deref()
                .is_none_or(|kind| kind.eq_ignore_ascii_case("USER"))
                && resource
                    .id
                    .as_deref()
                    .is_some_and(|id| id.trim().eq_ignore_ascii_case(user.trim()))
        })
    }

    /// The first user it is about, for a line that names no row.
    pub fn user(&self) -> &str {
        self.resources
            .iter()
            .find(|resource| {
                resource
                    .kind
                    .as_deref()
                    .is_none_or(|kind| kind.eq_ignore_ascii_case("USER"))
            })
            .and_then(|resource| resource.id.as_deref())
            .unwrap_or("")
    }

    /// `SUCCESS`, `FAILED`, or whatever PingOne wrote.
    pub fn result_status(&self) -> &str {
        self.result
            .as_ref()
            .and_then(|result| result.status.as_deref())
            .unwrap_or("")
    }

    pub fn result_description(&self) -> &str {
        self.result
            .as_ref()
            .and_then(|result| result.description.as_deref())
            .unwrap_or("")
    }

    /// What tells this activity from every other across the passes that read the log again: its
    /// ID, or when it has none, what it says.
    pub fn key(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!(
                "{}|{}|{}",
                self.correlation_id.as_deref().unwrap_or(""),
                self.transaction().unwrap_or(""),
                self.recorded_at.as_deref().unwrap_or("")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_activity_is_read_by_the_fields_reconciling_uses_whatever_else_it_holds() {
        let activity: Activity = serde_json::from_str(
            r#"{"id":"a","recordedAt":"2026-12-08T10:00:00.000Z","action":{"type":"SOMETHING.NEW"},
                "externalCorrelation":{"sessionId":"s","transactionId":"s-row-2"},
                "resources":[{"type":"USER","id":"U1","environment":{"id":"e"}},{"type":"POPULATION","id":"p"}],
                "result":{"status":"success"},"tags":[1,2]}"#,
        )
        .unwrap_or_default();
        assert!(activity.succeeded());
        assert_eq!(
            (activity.session(), activity.transaction()),
            (Some("s"), Some("s-row-2"))
        );
        assert!(activity.names_user("u1"));
        assert!(!activity.names_user("p"));
        let bare: Activity = serde_json::from_str("{}").unwrap_or_default();
        assert!(!bare.succeeded() && bare.session().is_none() && bare.user().is_empty());
    }
}
