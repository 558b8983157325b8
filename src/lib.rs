//! `pingone-bypass`: grant time-limited PingOne MFA bypasses to many users at once, and the
//! PingOne simulator to rehearse that on. The binary is a thin shell over this library.

pub mod cli;
pub mod pingone;
pub mod simulator;
