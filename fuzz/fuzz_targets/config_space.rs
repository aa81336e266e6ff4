//! The `config_space` fuzz target: see `pciem_fuzz::config` for the input format
//! and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pciem_fuzz::config::run(data));
