//! The `mmio_decode` fuzz target: see `pciem_fuzz::mmio` for the input
//! format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pciem_fuzz::mmio::run(data));
