//! `mmio_decode`: the trap-mode instruction decoder and emulator
//! (`pciem_core::insn`) on arbitrary bytes, against iced-x86.
//!
//! Checks, for every input:
//! - decoding never panics; when it succeeds, iced-x86 decodes the same
//!   bytes as a supported form with the same length, access width,
//!   operation, register, memory operand, immediate and REP; `Truncated`
//!   means iced ran out of bytes too; any other refusal of a form iced
//!   calls supported must be a refused prefix (REX before a legacy prefix);
//! - emulating never panics; on success RIP moved by exactly the length,
//!   the accesses are exactly those of the reference model built on iced's
//!   operands (count, order, addresses, widths, values) and so are the
//!   registers after;
//! - when the memory fails an access, emulation stops there: exactly that
//!   many accesses were made, RIP is unchanged, and a string instruction's
//!   RSI/RDI/RCX show exactly the completed elements.
//!
//! Input format (see [`crate::wire`]): instruction length u8 (mod 16),
//! that many instruction bytes, the 16 GPRs u64, RIP u64, RFLAGS u64, and
//! the number of the access to fail u8 (255: none). A `REP` count is
//! reduced mod 64.

use pciem_core::insn::{decode, emulate, DecodeError, EmulateError, Memory, Op, Regs};

use crate::wire::{Reader, Writer};

#[path = "../../crates/pciem-core/tests/support/iced_view.rs"]
mod iced_view;

use iced_view::{ours, read_value, reference, supported, Access};

/// Memory answering reads like the reference model, recording accesses,
/// failing the access numbered `fail_at`.
struct FakeMem {
    log: Vec<Access>,
    fail_at: usize,
}

impl FakeMem {
    fn check(&self) -> Result<(), ()> {
        if self.log.len() == self.fail_at {
            Err(())
        } else {
            Ok(())
        }
    }
}

impl Memory for FakeMem {
    type Error = ();
    fn read(&mut self, addr: u64, width: u8) -> Result<u64, ()> {
        assert!(matches!(width, 1 | 2 | 4 | 8), "read width {width}");
        self.check()?;
        self.log.push(Access::Read(addr, usize::from(width)));
        Ok(read_value(addr, usize::from(width)))
    }
    fn write(&mut self, addr: u64, width: u8, value: u64) -> Result<(), ()> {
        assert!(matches!(width, 1 | 2 | 4 | 8), "write width {width}");
        if width < 8 {
            assert_eq!(value >> (8 * width), 0, "bits above the write width");
        }
        self.check()?;
        self.log
            .push(Access::Write(addr, usize::from(width), value));
        Ok(())
    }
}

/// Run one input.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    let n = usize::from(r.u8() % 16);
    let bytes = r.bytes(n).to_vec();
    let mut regs = Regs::default();
    for g in regs.gpr.iter_mut() {
        *g = r.u64();
    }
    regs.rip = r.u64();
    regs.rflags = r.u64();
    let fail_at = match r.u8() {
        255 => usize::MAX,
        k => usize::from(k),
    };

    let decoded = decode(&bytes);
    match decoded {
        Ok(insn) => assert_eq!(Some(ours(&insn)), supported(&bytes), "{bytes:02x?}"),
        Err(DecodeError::Truncated) => {
            assert!(
                iced_view::iced(&bytes, 0).1,
                "{bytes:02x?}: iced decodes it"
            );
        }
        Err(e) => assert!(
            e == DecodeError::UnsupportedPrefix || supported(&bytes).is_none(),
            "{bytes:02x?}: refused ({e:?}) but iced says {:?}",
            supported(&bytes)
        ),
    }
    let Ok(insn) = decoded else { return };

    let (string, per_element) = match insn.op {
        Op::Movs { rep } => (rep, 2),
        Op::Stos { rep } => (rep, 1),
        _ => (false, 1),
    };
    if string {
        regs.gpr[1] %= 64;
    }
    let (want_regs, want_log) =
        reference(&bytes, &regs).expect("the reference model knows every supported form");
    let mut after = regs;
    let mut mem = FakeMem {
        log: Vec::new(),
        fail_at,
    };
    match emulate(&insn, &mut after, &mut mem) {
        Ok(()) => {
            assert_eq!(after.rip, regs.rip.wrapping_add(u64::from(insn.len)));
            assert_eq!(mem.log, want_log, "{bytes:02x?}");
            assert_eq!(after, want_regs, "{bytes:02x?}");
        }
        Err(e) => {
            assert_eq!(e, EmulateError::Memory(()), "{bytes:02x?}");
            assert!(
                fail_at < want_log.len(),
                "{bytes:02x?}: failed without cause"
            );
            assert_eq!(mem.log, want_log[..fail_at], "{bytes:02x?}");
            assert_eq!(after.rip, regs.rip, "RIP advanced after a failure");
            // Completed string elements, and nothing else, are visible.
            let done = (fail_at / per_element) as u64;
            let mut expect = regs;
            if matches!(insn.op, Op::Movs { .. } | Op::Stos { .. }) {
                let step = u64::from(insn.width).wrapping_mul(done);
                let down = regs.rflags & (1 << 10) != 0;
                let mv = |x: u64| {
                    if down {
                        x.wrapping_sub(step)
                    } else {
                        x.wrapping_add(step)
                    }
                };
                if matches!(insn.op, Op::Movs { .. }) {
                    expect.gpr[6] = mv(regs.gpr[6]);
                }
                expect.gpr[7] = mv(regs.gpr[7]);
                if string {
                    expect.gpr[1] = regs.gpr[1] - done;
                }
            }
            assert_eq!(after, expect, "{bytes:02x?}");
        }
    }
}

/// Corpus seeds: forms from the kernel's MMIO accessors and drivers (see
/// `docs/insn-forms.md`), string forms with a count, a failing access, and
/// refused and truncated bytes.
pub fn seeds() -> crate::Seeds {
    let input = |insn: &[u8], rcx: u64, df: bool, fail_at: u8| {
        let mut w = Writer::new();
        w.u8(insn.len() as u8).bytes(insn);
        for i in 0..16u64 {
            let v = match i {
                1 => rcx,
                6 => 0xffff_c900_0000_1000,
                7 => 0xffff_8880_0200_0000,
                _ => 0x0101_0101_0101_0101u64.wrapping_mul(i + 1),
            };
            w.u64(v);
        }
        w.u64(0xffff_ffff_816c_a292)
            .u64(if df { 0x402 } else { 0x2 })
            .u8(fail_at);
        w.finish()
    };
    vec![
        ("readl", input(&[0x8b, 0x07], 0, false, 255)),
        ("writeq", input(&[0x48, 0x89, 0x3e], 0, false, 255)),
        (
            "bochs-writew",
            input(
                &[0x66, 0x44, 0x89, 0xa0, 0x0c, 0x05, 0x00, 0x00],
                0,
                false,
                255,
            ),
        ),
        (
            "memmove-sib",
            input(&[0x4c, 0x8b, 0x5c, 0x16, 0xf8], 0, false, 255),
        ),
        (
            "movzbq",
            input(&[0x4c, 0x0f, 0xb6, 0x46, 0x01], 0, false, 255),
        ),
        (
            "rip-relative",
            input(&[0x8b, 0x05, 0xfc, 0x9d, 0x6e, 0x01], 0, false, 255),
        ),
        (
            "imm-store",
            input(
                &[0x48, 0xc7, 0x40, 0x08, 0xfe, 0xff, 0xff, 0xff],
                0,
                false,
                255,
            ),
        ),
        ("rep-movsl", input(&[0xf3, 0xa5], 5, false, 255)),
        ("rep-movsl-fails", input(&[0xf3, 0xa5], 5, false, 5)),
        ("rep-stosb-down", input(&[0xf3, 0xaa], 7, true, 255)),
        ("lock-refused", input(&[0xf0, 0x89, 0x07], 0, false, 255)),
        ("truncated", input(&[0x8b, 0x05, 0x00], 0, false, 255)),
    ]
}
