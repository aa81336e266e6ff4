//! Shared set-up for the driver-style tests: a started card on a bus, and
//! helpers that read like the kernel driver.
#![allow(dead_code)]

use protopciem::demo::{Completion, Driver};
use protopciem::framebuffer::FRAME_BYTES;
use protopciem::mock::MockBus;
use protopciem::regs::{self, Command, ErrorCode};

/// A started card on a fresh bus, not yet reset or enabled.
pub fn bus() -> MockBus {
    MockBus::stepping().expect("mock bus")
}

/// A started card, reset and enabled.
pub fn enabled_bus() -> MockBus {
    let mut b = bus();
    Driver::new(&mut b).reset().expect("reset");
    b
}

/// STATUS of a successful command.
pub const OK: u32 = regs::STATUS_DONE;
/// STATUS of a failed command.
pub const FAILED: u32 = regs::STATUS_DONE | regs::STATUS_ERROR;

/// Check that a completion is a failure with `code` and `detail`.
pub fn assert_failed(c: Completion, code: ErrorCode, detail: u64) {
    assert_eq!(c.status, FAILED, "{c:?}");
    assert_eq!(c.error, code.raw(), "{c:?}");
    assert_eq!(c.result, detail, "{c:?}");
}

/// The card still works: ADD gives the right answer and the frame still
/// reads back as `frame`.
pub fn assert_still_usable(d: &mut Driver<'_, MockBus>, frame: &[u8]) {
    d.compute(Command::Add, 20, 40)
        .expect("ADD after the error");
    let now = d.read_frame().expect("frame");
    assert_eq!(now.len(), FRAME_BYTES);
    assert!(now == frame, "the framebuffer changed");
}
