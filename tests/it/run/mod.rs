//! Specifications of `run`, in-process, against the simulator or a scripted server.

mod credentials;
mod input;
mod interruption;
mod ordering;
mod results;
mod retries;
mod validation;
