//! Fuzzes `pingone_bypass::fuzzing::resume` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pingone_bypass::fuzzing::resume(data));
