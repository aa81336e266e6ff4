//! The `nvme_commands` fuzz target: arbitrary submission entries, doorbell
//! writes and resets against the NVMe controller model on the mock
//! backend. The input format and the invariants are in
//! `pciem_nvme::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pciem_nvme::fuzz::run(data));
