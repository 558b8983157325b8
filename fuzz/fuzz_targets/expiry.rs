//! Fuzzes `pingone_bypass::fuzzing::expiry` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pingone_bypass::fuzzing::expiry(data));
