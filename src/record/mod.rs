//! The record stage, the end of a row's journey: the completion journal, the in-order results
//! file, the lock that keeps one writer per results file, the run record beside it, reading
//! earlier results back for `--resume`, the summary, the signs of life on the terminal, and the
//! shape of every line on standard error (`--log-format`).

pub(crate) mod in_order;
pub(crate) mod journal;
pub(crate) mod lock;
pub mod log_format;
pub(crate) mod manifest;
pub(crate) mod place;
pub(crate) mod progress;
pub mod resume;
pub(crate) mod summary;
pub mod writer;
