//! Why a row is invalid, and why an expiry is outside the run's window: typed, with the column
//! (or flag) and the text that failed, and worded once here as the row's `error_message` (and
//! `--until`'s error) records them.

/// Why a row is invalid: recorded as its `error_message`, in these words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowProblem {
    /// What the reader found wrong with the record itself.
    #[error("{0}")]
    Defect(String),
    #[error("{column} is empty and no --env was given; fill it in or pass --env <UUID>")]
    NoEnvironment { column: String },
    #[error("{column} {text:?} is not a UUID ({UUID_SHAPE})")]
    NotAUuid { column: String, text: String },
    #[error("{columns} {} empty; every row needs a user", if *.all { "are all" } else { "is" })]
    NoUser { columns: String, all: bool },
    #[error(
        "{column} {text:?} is not a UUID ({UUID_SHAPE}); to name users by username or email, put them in a column headed username or email"
    )]
    UserNotAUuid { column: String, text: String },
    #[error("{column} is empty and no --until was given; fill it in or pass --until <WHEN>")]
    NoUntil { column: String },
    #[error("{column} {text:?} {problem}")]
    UntilForm {
        column: String,
        text: String,
        problem: String,
    },
    #[error(transparent)]
    Window(#[from] WindowProblem),
}

const UUID_SHAPE: &str =
    "expected 8-4-4-4-12 hex digits, like 4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01";

/// An expiry outside the run's window, named as `what` (a column or a flag) and `text` wrote
/// it, meaning `until`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?} means {until}, {kind}")]
pub struct WindowProblem {
    pub kind: OutsideWindow,
    pub what: String,
    pub text: String,
    pub until: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutsideWindow {
    #[error("which is not after the run start {start}; an expiry must be in the future")]
    NotAfterStart { start: String },
    #[error("later than --max-window {max_window} allows (latest {latest})")]
    PastMaxWindow { max_window: String, latest: String },
}
