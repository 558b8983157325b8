//! `pingone-bypass`: grant time-limited PingOne MFA bypasses to many users at once, and the
//! PingOne simulator to rehearse that on. The binary is a thin shell over this library.

pub mod auth;
pub mod cli;
pub mod client;
pub mod input;
pub mod output;
pub mod pingone;
pub mod plan;
pub mod progress;
pub mod resume;
pub mod run;
pub mod seen_pairs;
mod sender;
pub mod simulator;
pub mod throttle;
