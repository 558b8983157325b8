//! `pingone-bypass`: grant time-limited PingOne MFA bypasses to many users at once, and the
//! PingOne simulator to rehearse that on. The binary is a thin shell over this library.
//!
//! A front end builds one typed request (`cli::request::RunRequest`: the command line from its
//! flags, the upload page from its options and form) and checks it into a `config::RunConfig`;
//! `run`, the pipeline, builds the stages from it and wires them, and only it knows their order.
//! A row's journey runs one way: `input` reads it (or `selection` lists a population's members
//! as rows), the planning stage (`planning`) has `plan` check it, `resolve` look up the user
//! it names and `record::resume` weigh what an earlier run granted; `send` makes its request;
//! `record` writes what came of it. `row` is the result row the stages hand on, and decides
//! every row's status. Every request to PingOne, of whichever stage, goes through the `gateway`
//! the stages are handed; `pingone` is the wire format they all read; `secrets` holds every
//! secret the process has seen so that no text leaves it carrying one. `commands` carries each
//! command out; the binary only starts them. `serve` is a front end whose every plan, grant and
//! status check is this same binary's pipeline in a child process, handed its request as JSON.
//! The simulator is started by a front end, which hands the pipeline its URL. `audit` reads
//! PingOne's audit log back through a gateway of its own and reconciles a run's results with it
//! (`verify --pingone`).

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod defaults;
pub(crate) mod expiry;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod input;
pub mod logging;
pub mod mode;
pub mod outcome;
pub mod pingone;
pub(crate) mod plan;
pub(crate) mod planning;
pub mod record;
pub(crate) mod resolve;
pub mod row;
pub mod run;
pub(crate) mod secrets;
pub(crate) mod seen_pairs;
pub(crate) mod selection;
pub(crate) mod send;
pub mod serve;
pub mod simulator;
