//! Specifications of the PingOne simulator, against a real server on a loopback port.

mod bypass;
mod faults;
mod introspection;
mod limits;
mod tokens;
mod users;
