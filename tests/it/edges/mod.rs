//! The edges of a real deployment, through the binary: rate limiters that are not PingOne's,
//! tokens that stop working mid-run, a proxy that refuses, and connections that would lock the
//! page.

mod limiters;
mod proxy;
mod tokens;
