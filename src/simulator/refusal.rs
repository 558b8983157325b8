//! Every way the simulated API refuses a request, and each rendered as PingOne's error body in
//! the tenant's answer shape: a table of status, code, message and details, so that a new
//! refusal is a row of it.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::config::AnswerShape;
use crate::pingone::{ErrorBody, ErrorDetail, OAuthErrorBody};

const NO_ACCESS: &str =
    "The request could not be completed. You do not have access to this resource.";
const INVALID: &str =
    "The request could not be completed. One or more validation errors were in the request.";
const RATE_LIMITED: &str = "The request was rejected because the rate limit was exceeded.";

/// Every way the simulated API refuses a request; each renders as PingOne's error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    InvalidToken,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    UnsupportedMediaType,
    UnparsableJson,
    InvalidData {
        detail_code: &'static str,
        target: &'static str,
        message: &'static str,
    },
    RateLimited {
        retry_after_seconds: u64,
    },
    /// A limiter in front of PingOne: a 429 without `Retry-After`, as PingOne's JSON or as the
    /// edge's own HTML page.
    LimitedInFront {
        html: bool,
    },
    Injected500,
    Injected502,
    Injected503 {
        retry_after_seconds: u64,
    },
    /// The environment is not one the tenant has.
    UnknownEnvironment,
    /// The outage window: a load balancer's page, not PingOne's JSON, and no `Retry-After`.
    Outage,
}

/// A refusal's answer before the tenant's shape is applied.
struct Answer {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    details: Vec<ErrorDetail>,
    header: Option<(HeaderName, HeaderValue)>,
}

impl Answer {
    fn plain(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
            details: Vec::new(),
            header: None,
        }
    }

    fn detailed(mut self, code: &str, target: Option<&str>, message: &str) -> Self {
        self.details = vec![ErrorDetail {
            code: code.to_owned(),
            target: target.map(str::to_owned),
            message: message.to_owned(),
            inner_error: None,
        }];
        self
    }

    fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.header = Some((name, value));
        self
    }
}

/// Rendered in the full shape here; the tracking layer, which knows the tenant, words it again
/// in the tenant's shape.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = self.render(AnswerShape::Full, false);
        response.extensions_mut().insert(self);
        response
    }
}

impl Refusal {
    /// `result.description` of the audit activity of a PUT the service refused.
    pub(super) fn audit_description(&self) -> &'static str {
        match self {
            Self::NotFound => "The requested resource was not found.",
            Self::UnsupportedMediaType => "The request Content-Type is not supported.",
            Self::UnparsableJson => "The request could not be parsed as JSON.",
            Self::InvalidData { message, .. } => message,
            _ => "The request could not be completed.",
        }
    }
}

impl Refusal {
    /// PingOne's error body for this refusal in `shape`; with `wait_in_body`, a 429 says when
    /// to come back in its details instead of `Retry-After`.
    pub(super) fn render(self, shape: AnswerShape, wait_in_body: bool) -> Response {
        if let Some((status, page)) = self.page() {
            return (
                status,
                [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
                page,
            )
                .into_response();
        }
        let Some(answer) = self.answer(wait_in_body) else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let keeps_details = shape != AnswerShape::Lean || wait_in_body;
        let body = ErrorBody {
            id: (shape == AnswerShape::Full).then(|| Uuid::new_v4().to_string()),
            code: answer.code.to_owned(),
            message: answer.message.to_owned(),
            details: if keeps_details {
                answer.details
            } else {
                Vec::new()
            },
        };
        let mut body = json!(body);
        if shape == AnswerShape::Varied {
            body["traceId"] = json!(Uuid::new_v4());
        }
        let mut response = (answer.status, axum::Json(body)).into_response();
        if let Some((name, value)) = answer.header {
            response.headers_mut().insert(name, value);
        }
        response
    }

    /// The refusals that are not PingOne's JSON but a page of the load balancer or edge in
    /// front of it, as nginx words them.
    fn page(self) -> Option<(StatusCode, &'static str)> {
        match self {
            Self::Outage => Some((
                StatusCode::SERVICE_UNAVAILABLE,
                "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
            )),
            Self::LimitedInFront { html: true } => Some((
                StatusCode::TOO_MANY_REQUESTS,
                "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
            )),
            _ => None,
        }
    }

    /// The answer, as PingOne words it; `None` for the pages of `page`.
    fn answer(self, wait_in_body: bool) -> Option<Answer> {
        use StatusCode as S;
        Some(match self {
            Self::InvalidToken => invalid_token(),
            Self::Forbidden => Answer::plain(S::FORBIDDEN, "ACCESS_FAILED", NO_ACCESS).detailed(
                "INSUFFICIENT_PERMISSIONS",
                None,
                "The actor attempting to perform the request does not have sufficient permissions.",
            ),
            Self::NotFound => Answer::plain(
                S::NOT_FOUND,
                "NOT_FOUND",
                "The requested resource was not found.",
            ),
            Self::MethodNotAllowed => Answer::plain(
                S::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "The request method is not supported for this resource.",
            ),
            Self::UnsupportedMediaType => Answer::plain(
                S::UNSUPPORTED_MEDIA_TYPE,
                "INVALID_REQUEST",
                "The request Content-Type is not supported; send application/json.",
            ),
            Self::UnparsableJson => Answer::plain(
                S::BAD_REQUEST,
                "INVALID_REQUEST",
                "The request could not be parsed as JSON.",
            ),
            Self::InvalidData {
                detail_code,
                target,
                message,
            } => Answer::plain(S::BAD_REQUEST, "INVALID_DATA", INVALID).detailed(
                detail_code,
                Some(target),
                message,
            ),
            Self::RateLimited {
                retry_after_seconds,
            } if wait_in_body => rate_limited_with_the_wait_in_the_body(retry_after_seconds),
            Self::RateLimited {
                retry_after_seconds,
            } => Answer::plain(S::TOO_MANY_REQUESTS, "REQUEST_LIMITED", RATE_LIMITED)
                .detailed(
                    "LIMIT_EXCEEDED",
                    None,
                    "Too many requests; retry after the time in Retry-After.",
                )
                .with_header(header::RETRY_AFTER, retry_after_seconds.into()),
            Self::LimitedInFront { html: false } => {
                Answer::plain(S::TOO_MANY_REQUESTS, "REQUEST_LIMITED", RATE_LIMITED)
            }
            Self::UnknownEnvironment => Answer::plain(S::FORBIDDEN, "ACCESS_FAILED", NO_ACCESS),
            Self::Outage | Self::LimitedInFront { html: true } => return None,
            Self::Injected500 => Answer::plain(
                S::INTERNAL_SERVER_ERROR,
                "UNEXPECTED_ERROR",
                "An unexpected error occurred.",
            ),
            Self::Injected502 => Answer::plain(
                S::BAD_GATEWAY,
                "BAD_GATEWAY",
                "The gateway received an invalid response from an upstream service.",
            ),
            Self::Injected503 {
                retry_after_seconds,
            } => Answer::plain(
                S::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "The service is temporarily unavailable.",
            )
            .with_header(header::RETRY_AFTER, retry_after_seconds.into()),
        })
    }
}

/// A 401 for a token PingOne does not take, with the challenge that says so.
fn invalid_token() -> Answer {
    Answer::plain(StatusCode::UNAUTHORIZED, "ACCESS_FAILED", NO_ACCESS)
        .detailed(
            "INVALID_TOKEN",
            None,
            "The access token is missing, invalid or expired.",
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        )
}

/// A 429 as PingOne's newer edge words it: no `Retry-After`, the time to come back in the
/// detail's `innerError`.
fn rate_limited_with_the_wait_in_the_body(retry_after_seconds: u64) -> Answer {
    let retry_at = Utc::now()
        + chrono::Duration::seconds(i64::try_from(retry_after_seconds).unwrap_or(i64::MAX));
    Answer {
        details: vec![ErrorDetail {
            code: "LIMIT_EXCEEDED".to_owned(),
            target: None,
            message: "Too many requests.".to_owned(),
            inner_error: Some(json!({
                "retryAfter": retry_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
                "quotaLimit": 100,
            })),
        }],
        ..Answer::plain(
            StatusCode::TOO_MANY_REQUESTS,
            "REQUEST_LIMITED",
            RATE_LIMITED,
        )
    }
}

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = OAuthErrorBody {
        error: error.to_owned(),
        error_description: Some(description.to_owned()),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"PingOne\""),
        );
    }
    response
}
