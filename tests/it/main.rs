//! One integration-test binary (one link step instead of one per file), with a `support`
//! module shared by the specifications.

mod simulate_command;
mod simulator;
mod support;
