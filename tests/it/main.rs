//! One integration-test binary (one link step instead of one per file), with a `support`
//! module shared by the specifications.

mod audit_trail;
mod bounds;
mod browser;
mod edges;
mod end;
mod fuzz_corpus;
mod hostile_csv;
mod hostile_workbooks;
mod names;
mod outage;
mod pingone_audit;
mod pingone_shapes;
mod run;
mod run_command;
mod run_signals;
mod runbooks;
mod secrets;
mod serve;
mod serve_audit;
mod serve_isolation;
mod simulate_command;
mod simulator;
mod spreadsheets;
mod status;
mod support;
mod workbooks_as_seen;
