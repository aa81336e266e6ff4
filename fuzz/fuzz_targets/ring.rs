//! The `ring` fuzz target: see `pciem_fuzz::ring` for the input format
//! and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pciem_fuzz::ring::run(data));
