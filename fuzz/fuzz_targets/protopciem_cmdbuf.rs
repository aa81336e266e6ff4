//! The `protopciem_cmdbuf` fuzz target: see `pciem_fuzz::proto` for the input format
//! and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pciem_fuzz::proto::run(data));
