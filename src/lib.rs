//! `pingone-bypass`: grant time-limited PingOne MFA bypasses to many users at once, and the
//! PingOne simulator to rehearse that on. The binary is a thin shell over this library.
//!
//! A row's journey runs one way: `input` reads it (or `selection` lists a population's members
//! as rows), `plan` checks it, `resolve` turns a username or email into a user ID, `send` sends
//! it, `record` writes what came of it; `row` is the result row every stage hands on, and `run`
//! wires the stages together. Every request to PingOne, of whichever stage, goes through the
//! `gateway` the stages are handed; `pingone` is the wire format they all read; `secrets`
//! holds every secret the process has seen so that no text leaves it carrying one. `cli`
//! parses the command line into configuration and `commands` carries each command out; the
//! binary only starts them. `serve` is a front end whose every plan, grant and status check is
//! this same binary's `run` or `status`, started as a child process.

pub mod cli;
pub mod commands;
pub mod config;
pub mod defaults;
pub mod expiry;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod input;
pub mod outcome;
pub mod pingone;
pub mod plan;
pub(crate) mod planning;
pub mod record;
pub mod resolve;
pub mod row;
pub mod run;
pub mod secrets;
pub mod seen_pairs;
pub mod selection;
pub mod send;
pub mod serve;
pub mod simulator;
