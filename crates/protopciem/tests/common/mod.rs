//! Shared set-up for the driver-style tests: a started card on a bus, and
//! helpers that read like the kernel driver.
#![allow(dead_code)]

use std::cell::Cell;

use protopciem::config::Mode;
use protopciem::demo::{Completion, Driver};
use protopciem::framebuffer::FRAME_BYTES;
use protopciem::mock::MockBus;
use protopciem::regs::{self, Command, ErrorCode};

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Trap) };
}

/// Run `test` with BAR0 in trap mode, then in watch mode: [`bus`] and
/// [`enabled_bus`] build the card in the current one.
pub fn each_mode(test: impl Fn()) {
    struct Say(Mode);
    impl Drop for Say {
        fn drop(&mut self) {
            if std::thread::panicking() {
                eprintln!("(failed with BAR0 in {:?} mode)", self.0);
            }
        }
    }
    for mode in [Mode::Trap, Mode::Watch] {
        MODE.with(|m| m.set(mode));
        let _say = Say(mode);
        test();
    }
}

/// A started card on a fresh bus, not yet reset or enabled, BAR0 in the
/// mode [`each_mode`] runs (trap outside it).
pub fn bus() -> MockBus {
    MockBus::stepping_with(MODE.with(Cell::get)).expect("mock bus")
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
