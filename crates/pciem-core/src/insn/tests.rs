//! Hand-checked decodes and emulations, one per form (the bytes are taken
//! from the kernel and module disassembly in `docs/insn-forms.md`).

extern crate std;

use std::collections::BTreeMap;
use std::vec::Vec;

use super::*;

/// One access the emulator made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read(u64, u8),
    Write(u64, u8, u64),
}

/// Byte-addressed memory whose unwritten bytes read as `addr ^ 0x5a`
/// (truncated), recording every access, failing the access numbered
/// `fail_at` (0-based) if set.
#[derive(Default)]
struct FakeMem {
    bytes: BTreeMap<u64, u8>,
    log: Vec<Access>,
    fail_at: Option<usize>,
}

impl FakeMem {
    fn byte(&self, addr: u64) -> u8 {
        self.bytes.get(&addr).copied().unwrap_or(addr as u8 ^ 0x5a)
    }

    fn put(&mut self, addr: u64, width: u8, value: u64) {
        for i in 0..u64::from(width) {
            self.bytes
                .insert(addr.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }

    fn check(&mut self) -> Result<(), &'static str> {
        if self.fail_at == Some(self.log.len()) {
            return Err("injected failure");
        }
        Ok(())
    }
}

impl Memory for FakeMem {
    type Error = &'static str;
    fn read(&mut self, addr: u64, width: u8) -> Result<u64, Self::Error> {
        self.check()?;
        self.log.push(Access::Read(addr, width));
        let mut v = 0u64;
        for i in (0..u64::from(width)).rev() {
            v = (v << 8) | u64::from(self.byte(addr.wrapping_add(i)));
        }
        Ok(v)
    }
    fn write(&mut self, addr: u64, width: u8, value: u64) -> Result<(), Self::Error> {
        self.check()?;
        self.log.push(Access::Write(addr, width, value));
        self.put(addr, width, value);
        Ok(())
    }
}

const RIP: u64 = 0xffff_ffff_816c_a292;

fn regs() -> Regs {
    let mut r = Regs {
        rip: RIP,
        ..Regs::default()
    };
    for (i, g) in r.gpr.iter_mut().enumerate() {
        *g = 0x1111_1111_1111_1111u64.wrapping_mul(i as u64 + 1) ^ 0x8080_8080_8080_8080;
    }
    r
}

/// Decode and emulate `bytes`; returns the instruction, the registers
/// after and the access log. Checks that RIP moved by the length.
fn run(bytes: &[u8], before: Regs, mem: &mut FakeMem) -> (Insn, Regs) {
    let insn = decode(bytes).expect("decodes");
    assert_eq!(usize::from(insn.len), bytes.len(), "length of {bytes:02x?}");
    let mut after = before;
    emulate(&insn, &mut after, mem).expect("emulates");
    assert_eq!(after.rip, before.rip + u64::from(insn.len));
    (insn, after)
}

/// `before` with register `n` replaced.
fn with(mut r: Regs, n: usize, v: u64) -> Regs {
    r.gpr[n] = v;
    r
}

fn load_gives(bytes: &[u8], addr_reg: usize, stored: (u8, u64), dst: usize, want: u64) {
    let mut mem = FakeMem::default();
    mem.put(0x4000, stored.0, stored.1);
    let before = with(regs(), addr_reg, 0x4000);
    let (insn, after) = run(bytes, before, &mut mem);
    assert_eq!(mem.log, [Access::Read(0x4000, insn.width)], "{bytes:02x?}");
    assert_eq!(after.gpr[dst], want, "{bytes:02x?}: {:#x}", after.gpr[dst]);
    for i in (0..16).filter(|&i| i != dst) {
        assert_eq!(after.gpr[i], before.gpr[i], "{bytes:02x?} clobbered {i}");
    }
}

fn store_gives(bytes: &[u8], before: Regs, want: Access) {
    let mut mem = FakeMem::default();
    let (_, after) = run(bytes, before, &mut mem);
    assert_eq!(mem.log, [want], "{bytes:02x?}");
    assert_eq!(after.gpr, before.gpr, "{bytes:02x?}");
}

#[test]
fn mov_loads_write_registers_like_the_cpu() {
    let r = regs();
    // 8b 07: mov (%rdi),%eax (readl, ioread32): zero-extends.
    load_gives(&[0x8b, 0x07], 7, (4, 0x89ab_cdef), 0, 0x89ab_cdef);
    // 66 8b 07: mov (%rdi),%ax (readw): keeps bits 16..64.
    load_gives(
        &[0x66, 0x8b, 0x07],
        7,
        (2, 0xbeef),
        0,
        (r.gpr[0] & !0xffff) | 0xbeef,
    );
    // 8a 07: mov (%rdi),%al (readb).
    load_gives(&[0x8a, 0x07], 7, (1, 0x42), 0, (r.gpr[0] & !0xff) | 0x42);
    // 48 8b 07: mov (%rdi),%rax (readq).
    load_gives(
        &[0x48, 0x8b, 0x07],
        7,
        (8, 0x0123_4567_89ab_cdef),
        0,
        0x0123_4567_89ab_cdef,
    );
    // 8a 61 01: mov 0x1(%rcx),%ah.
    let mut mem = FakeMem::default();
    mem.put(0x4001, 1, 0x99);
    let (_, after) = run(&[0x8a, 0x61, 0x01], with(r, 1, 0x4000), &mut mem);
    assert_eq!(after.gpr[0], (r.gpr[0] & !0xff00) | 0x9900);
    // 40 8a 61 01: with REX, reg 4 is %spl.
    let mut mem = FakeMem::default();
    mem.put(0x4001, 1, 0x99);
    let (_, after) = run(&[0x40, 0x8a, 0x61, 0x01], with(r, 1, 0x4000), &mut mem);
    assert_eq!(after.gpr[4], (r.gpr[4] & !0xff) | 0x99);
    assert_eq!(after.gpr[0], r.gpr[0]);
    // 44 8b 80 00 06 00 00: mov 0x600(%rax),%r8d (bochs).
    let mut mem = FakeMem::default();
    mem.put(0x4600, 4, 0xffff_fffe);
    let (_, after) = run(
        &[0x44, 0x8b, 0x80, 0x00, 0x06, 0x00, 0x00],
        with(r, 0, 0x4000),
        &mut mem,
    );
    assert_eq!(mem.log, [Access::Read(0x4600, 4)]);
    assert_eq!(after.gpr[8], 0xffff_fffe);
    // 48 8b 00: mov (%rax),%rax: the address is taken before the write.
    load_gives(&[0x48, 0x8b, 0x00], 0, (8, 7), 0, 7);
    // 44 8a 1e: mov (%rsi),%r11b (memmove).
    load_gives(
        &[0x44, 0x8a, 0x1e],
        6,
        (1, 0xaa),
        11,
        (r.gpr[11] & !0xff) | 0xaa,
    );
}

#[test]
fn movzx_movsx_movsxd_widths() {
    let r = regs();
    // 0f b6 03: movzbl (%rbx),%eax.
    load_gives(&[0x0f, 0xb6, 0x03], 3, (1, 0x80), 0, 0x80);
    // 0f b7 03: movzwl (%rbx),%eax.
    load_gives(&[0x0f, 0xb7, 0x03], 3, (2, 0x8001), 0, 0x8001);
    // 4c 0f b6 46 01: movzbq 0x1(%rsi),%r8 (memmove's tail).
    let mut mem = FakeMem::default();
    mem.put(0x4001, 1, 0xfe);
    let (_, after) = run(
        &[0x4c, 0x0f, 0xb6, 0x46, 0x01],
        with(r, 6, 0x4000),
        &mut mem,
    );
    assert_eq!(after.gpr[8], 0xfe);
    // 66 0f b6 07: movzbw (%rdi),%ax keeps bits 16..64.
    load_gives(
        &[0x66, 0x0f, 0xb6, 0x07],
        7,
        (1, 0x80),
        0,
        (r.gpr[0] & !0xffff) | 0x0080,
    );
    // 0f be 07: movsbl (%rdi),%eax: sign-extends to 32, zero above.
    load_gives(&[0x0f, 0xbe, 0x07], 7, (1, 0x80), 0, 0xffff_ff80);
    // 66 0f be 07: movsbw (%rdi),%ax.
    load_gives(
        &[0x66, 0x0f, 0xbe, 0x07],
        7,
        (1, 0x80),
        0,
        (r.gpr[0] & !0xffff) | 0xff80,
    );
    // 48 0f be 07: movsbq.
    load_gives(&[0x48, 0x0f, 0xbe, 0x07], 7, (1, 0x7f), 0, 0x7f);
    // 48 0f bf 07: movswq (%rdi),%rax.
    load_gives(
        &[0x48, 0x0f, 0xbf, 0x07],
        7,
        (2, 0x8000),
        0,
        0xffff_ffff_ffff_8000,
    );
    // 0f bf 07: movswl.
    load_gives(&[0x0f, 0xbf, 0x07], 7, (2, 0x8000), 0, 0xffff_8000);
    // 48 63 07: movslq (%rdi),%rax.
    load_gives(
        &[0x48, 0x63, 0x07],
        7,
        (4, 0x8000_0000),
        0,
        0xffff_ffff_8000_0000,
    );
    // 63 07: movsxd without REX.W is a 32-bit load.
    load_gives(&[0x63, 0x07], 7, (4, 0x8000_0000), 0, 0x8000_0000);
    let insn = decode(&[0x48, 0x0f, 0xbf, 0x07]).unwrap();
    assert_eq!(insn.width, 2);
    assert_eq!(
        insn.op,
        Op::Load {
            dst: Reg {
                num: 0,
                high8: false
            },
            dst_width: 8,
            extend: Extend::Sign
        }
    );
}

#[test]
fn register_stores() {
    let r = regs();
    // 89 3e: mov %edi,(%rsi) (iowrite32).
    let b = with(with(r, 6, 0x5000), 7, 0xdead_beef_1234_5678);
    store_gives(&[0x89, 0x3e], b, Access::Write(0x5000, 4, 0x1234_5678));
    // 66 89 3e: mov %di,(%rsi).
    store_gives(&[0x66, 0x89, 0x3e], b, Access::Write(0x5000, 2, 0x5678));
    // 40 88 3e: mov %dil,(%rsi).
    store_gives(&[0x40, 0x88, 0x3e], b, Access::Write(0x5000, 1, 0x78));
    // 88 3e without REX: mov %bh,(%rsi).
    let b2 = with(b, 3, 0x0000_0000_0000_ab00);
    store_gives(&[0x88, 0x3e], b2, Access::Write(0x5000, 1, 0xab));
    // 48 89 3e: mov %rdi,(%rsi) (writeq).
    store_gives(
        &[0x48, 0x89, 0x3e],
        b,
        Access::Write(0x5000, 8, 0xdead_beef_1234_5678),
    );
    // 66 44 89 a0 0c 05 00 00: mov %r12w,0x50c(%rax) (bochs DISPI).
    let b = with(with(r, 0, 0x9000), 12, 0x1234);
    store_gives(
        &[0x66, 0x44, 0x89, 0xa0, 0x0c, 0x05, 0x00, 0x00],
        b,
        Access::Write(0x950c, 2, 0x1234),
    );
    // 4c 89 54 17 f8: mov %r10,-0x8(%rdi,%rdx,1) (memmove).
    let b = with(with(with(r, 7, 0x9000), 2, 0x20), 10, 77);
    store_gives(
        &[0x4c, 0x89, 0x54, 0x17, 0xf8],
        b,
        Access::Write(0x9018, 8, 77),
    );
    // 66 89 04 4b: mov %ax,(%rbx,%rcx,2) (iowrite16_rep's MMIO loop).
    let b = with(with(with(r, 3, 0x9000), 1, 3), 0, 0xffff_0102);
    store_gives(
        &[0x66, 0x89, 0x04, 0x4b],
        b,
        Access::Write(0x9006, 2, 0x0102),
    );
    // 0f c3 07 / 48 0f c3 07: movnti %eax/%rax,(%rdi).
    let b = with(with(r, 7, 0x9000), 0, 0x1_0000_0002);
    store_gives(&[0x0f, 0xc3, 0x07], b, Access::Write(0x9000, 4, 2));
    store_gives(
        &[0x48, 0x0f, 0xc3, 0x07],
        b,
        Access::Write(0x9000, 8, 0x1_0000_0002),
    );
}

#[test]
fn immediate_stores() {
    let b = with(regs(), 0, 0x9000);
    // c7 80 80 05 00 00 18 00 00 00: movl $0x18,0x580(%rax).
    store_gives(
        &[0xc7, 0x80, 0x80, 0x05, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00],
        b,
        Access::Write(0x9580, 4, 0x18),
    );
    // c6 80 89 05 00 00 01: movb $0x1,0x589(%rax).
    store_gives(
        &[0xc6, 0x80, 0x89, 0x05, 0x00, 0x00, 0x01],
        b,
        Access::Write(0x9589, 1, 1),
    );
    // 66 c7 00 34 12: movw $0x1234,(%rax).
    store_gives(
        &[0x66, 0xc7, 0x00, 0x34, 0x12],
        b,
        Access::Write(0x9000, 2, 0x1234),
    );
    // 48 c7 00 fe ff ff ff: movq $-2,(%rax): the imm32 is sign-extended.
    store_gives(
        &[0x48, 0xc7, 0x00, 0xfe, 0xff, 0xff, 0xff],
        b,
        Access::Write(0x9000, 8, 0xffff_ffff_ffff_fffe),
    );
    // c7 00 fe ff ff ff: movl $0xfffffffe,(%rax).
    store_gives(
        &[0xc7, 0x00, 0xfe, 0xff, 0xff, 0xff],
        b,
        Access::Write(0x9000, 4, 0xffff_fffe),
    );
    // RIP-relative with an immediate after the displacement: c7 05 disp32
    // imm32 counts from the end of the whole instruction (10 bytes).
    let bytes = [0xc7, 0x05, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00];
    store_gives(&bytes, b, Access::Write(RIP + 10 + 0x10, 4, 1));
}

#[test]
fn addressing_forms() {
    let mut r = regs();
    r.gpr[0] = 0x1000;
    r.gpr[1] = 0x10;
    r.gpr[12] = 0x2000;
    r.gpr[13] = 0x3000;
    let ea = |bytes: &[u8]| decode(bytes).unwrap().effective_address(&r);
    // RIP-relative: 8b 05 fc 9d 6e 01 (ioread32's warning counter).
    assert_eq!(
        ea(&[0x8b, 0x05, 0xfc, 0x9d, 0x6e, 0x01]),
        RIP + 6 + 0x16e_9dfc
    );
    // 41 8b 45 00: REX.B with rm 5 and mod 1 is (%r13) + disp8.
    assert_eq!(ea(&[0x41, 0x8b, 0x45, 0x00]), 0x3000);
    // 41 8b 04 24: (%r12) needs a SIB.
    assert_eq!(ea(&[0x41, 0x8b, 0x04, 0x24]), 0x2000);
    // 8b 04 20: SIB index 4 without REX.X is no index.
    assert_eq!(ea(&[0x8b, 0x04, 0x20]), 0x1000);
    // 42 8b 04 20: with REX.X it is %r12.
    assert_eq!(ea(&[0x42, 0x8b, 0x04, 0x20]), 0x3000);
    // 8b 04 25 78 56 34 12: SIB with neither base nor index: absolute.
    assert_eq!(ea(&[0x8b, 0x04, 0x25, 0x78, 0x56, 0x34, 0x12]), 0x1234_5678);
    // 8b 04 8d f0 ff ff ff: -0x10(,%rcx,4).
    assert_eq!(ea(&[0x8b, 0x04, 0x8d, 0xf0, 0xff, 0xff, 0xff]), 0x30);
    // 41 8b 04 2d 00 01 00 00: REX.B with SIB base 5, mod 0: still no base
    // (disp32), index %rbp.
    let rbp = r.gpr[5];
    assert_eq!(
        ea(&[0x41, 0x8b, 0x04, 0x2d, 0x00, 0x01, 0x00, 0x00]),
        rbp.wrapping_add(0x100)
    );
    // 41 8b 05 00 00 00 00: REX.B with rm 5, mod 0 is still RIP-relative.
    assert_eq!(ea(&[0x41, 0x8b, 0x05, 0x00, 0x00, 0x00, 0x00]), RIP + 7);
    // 8b 44 c8 08: 0x8(%rax,%rcx,8).
    assert_eq!(ea(&[0x8b, 0x44, 0xc8, 0x08]), 0x1088);
    // Wrapping: -0x8 from 0.
    let zero = with(r, 0, 0);
    let insn = decode(&[0x8b, 0x40, 0xf8]).unwrap();
    assert_eq!(insn.effective_address(&zero), u64::MAX - 7);
    // Segment prefixes are ignored: 2e 3e 8b 07.
    let insn = decode(&[0x2e, 0x3e, 0x26, 0x36, 0x8b, 0x07]).unwrap();
    assert_eq!(insn.len, 6);
    assert_eq!(insn.mem.base, Some(7));
}

/// The registers after a string instruction and its accesses.
fn string_run(bytes: &[u8], before: Regs) -> (Regs, Vec<Access>) {
    let mut mem = FakeMem::default();
    let (_, after) = run(bytes, before, &mut mem);
    (after, mem.log)
}

#[test]
fn string_instructions() {
    let mut r = regs();
    r.gpr[6] = 0x1000;
    r.gpr[7] = 0x2000;
    r.gpr[1] = 3;
    r.gpr[0] = 0x1122_3344_5566_7788;
    // f3 a5: rep movsl (memcpy_fromio/memcpy_toio): read then write, per
    // element.
    let (after, log) = string_run(&[0xf3, 0xa5], r);
    let mut want = Vec::new();
    for i in 0..3u64 {
        // Unwritten bytes read as their address ^ 0x5a: 0x1000 + 4i + k
        // has low byte 4i + k.
        let b = |k: u64| ((4 * i + k) ^ 0x5a) << (8 * k);
        let v = b(0) | b(1) | b(2) | b(3);
        want.push(Access::Read(0x1000 + 4 * i, 4));
        want.push(Access::Write(0x2000 + 4 * i, 4, v));
    }
    assert_eq!(log, want);
    assert_eq!(
        (after.gpr[6], after.gpr[7], after.gpr[1]),
        (0x100c, 0x200c, 0)
    );
    // With DF set the pointers walk down.
    let mut down = r;
    down.rflags = RFLAGS_DF | 2;
    let (after, log) = string_run(&[0xf3, 0xa5], down);
    assert_eq!(log[2], Access::Read(0x0ffc, 4));
    assert_eq!(log[5], Access::Write(0x1ff8, 4, log_value(&log[4])));
    assert_eq!(
        (after.gpr[6], after.gpr[7], after.gpr[1]),
        (0x0ff4, 0x1ff4, 0)
    );
    // f3 aa: rep stosb (memset): the low byte of rax, rcx times.
    let (after, log) = string_run(&[0xf3, 0xaa], r);
    assert_eq!(
        log,
        [
            Access::Write(0x2000, 1, 0x88),
            Access::Write(0x2001, 1, 0x88),
            Access::Write(0x2002, 1, 0x88)
        ]
    );
    assert_eq!(
        (after.gpr[6], after.gpr[7], after.gpr[1]),
        (0x1000, 0x2003, 0)
    );
    // f3 48 ab: rep stosq.
    let (after, log) = string_run(&[0xf3, 0x48, 0xab], r);
    assert_eq!(log[2], Access::Write(0x2010, 8, 0x1122_3344_5566_7788));
    assert_eq!(after.gpr[7], 0x2018);
    // f3 48 a5: rep movsq (memmove).
    let (after, _) = string_run(&[0xf3, 0x48, 0xa5], r);
    assert_eq!(
        (after.gpr[6], after.gpr[7], after.gpr[1]),
        (0x1018, 0x2018, 0)
    );
    // REP with rcx = 0 does nothing but advance rip.
    let (after, log) = string_run(&[0xf3, 0xa4], with(r, 1, 0));
    assert!(log.is_empty());
    assert_eq!(after.gpr, with(r, 1, 0).gpr);
    // 66 a5: movsw without REP: once, rcx untouched.
    let (after, log) = string_run(&[0x66, 0xa5], r);
    assert_eq!(log.len(), 2);
    assert_eq!(
        (after.gpr[6], after.gpr[7], after.gpr[1]),
        (0x1002, 0x2002, 3)
    );
    // a4: movsb, DF set.
    let (after, _) = string_run(&[0xa4], down);
    assert_eq!(
        (after.gpr[6], after.gpr[7], after.gpr[1]),
        (0x0fff, 0x1fff, 3)
    );
    // ab: stosl once.
    let (after, log) = string_run(&[0xab], r);
    assert_eq!(log, [Access::Write(0x2000, 4, 0x5566_7788)]);
    assert_eq!(after.gpr[7], 0x2004);
    let insn = decode(&[0xf3, 0xa5]).unwrap();
    assert_eq!(insn.effective_address(&r), 0x1000);
    assert_eq!(decode(&[0xaa]).unwrap().effective_address(&r), 0x2000);
}

fn log_value(a: &Access) -> u64 {
    match *a {
        Access::Read(addr, 4) => {
            let b = |i: u64| u64::from((addr + i) as u8 ^ 0x5a) << (8 * i);
            b(0) | b(1) | b(2) | b(3)
        }
        _ => panic!("not a 4-byte read: {a:?}"),
    }
}

#[test]
fn failed_access_leaves_rip_and_completed_elements() {
    let mut r = regs();
    r.gpr[6] = 0x1000;
    r.gpr[7] = 0x2000;
    r.gpr[1] = 4;
    // Fail the fourth access: the second element's write.
    let mut mem = FakeMem {
        fail_at: Some(3),
        ..FakeMem::default()
    };
    let insn = decode(&[0xf3, 0xa5]).unwrap();
    let mut after = r;
    assert_eq!(
        emulate(&insn, &mut after, &mut mem),
        Err(EmulateError::Memory("injected failure"))
    );
    assert_eq!(after.rip, r.rip);
    assert_eq!(
        (after.gpr[6], after.gpr[7], after.gpr[1]),
        (0x1004, 0x2004, 3)
    );
    // A failed load writes no register.
    let mut mem = FakeMem {
        fail_at: Some(0),
        ..FakeMem::default()
    };
    let insn = decode(&[0x48, 0x8b, 0x07]).unwrap();
    let mut after = r;
    assert!(emulate(&insn, &mut after, &mut mem).is_err());
    assert_eq!(after, r);
}

#[test]
fn refused_encodings() {
    use DecodeError::*;
    let cases: &[(&[u8], DecodeError)] = &[
        (&[0xf0, 0x89, 0x07], UnsupportedPrefix),       // lock
        (&[0x64, 0x8b, 0x07], UnsupportedPrefix),       // fs
        (&[0x65, 0x48, 0x8b, 0x07], UnsupportedPrefix), // gs
        (&[0x67, 0x8b, 0x07], UnsupportedPrefix),       // addr32
        (&[0xf2, 0xa4], UnsupportedPrefix),             // repne movsb
        (&[0xf3, 0x8b, 0x07], UnsupportedPrefix),       // rep on mov
        (&[0x48, 0x66, 0x8b, 0x07], UnsupportedPrefix), // REX before 66
        (&[0x89, 0xc0], Unsupported),                   // register form
        (&[0xc7, 0xc0, 1, 0, 0, 0], Unsupported),       // register form
        (&[0xc6, 0xf8, 0x00], Unsupported),             // xabort
        (&[0xc7, 0x4f, 0x04, 1, 0, 0, 0], Unsupported), // c7 /1
        (&[0x66, 0x63, 0x07], Unsupported),             // 16-bit movsxd
        (&[0x66, 0x0f, 0xc3, 0x07], Unsupported),       // no 16-bit movnti
        (&[0x90], Unsupported),
        (&[0x0f, 0x0b], Unsupported),
        (&[0x87, 0x07], Unsupported), // xchg
        (&[0x01, 0x07], Unsupported), // add
        (&[0x6d], Unsupported),       // insl
        (&[0xac], Unsupported),       // lodsb
        (&[], Truncated),
        (&[0x66], Truncated),
        (&[0x48], Truncated),
        (&[0x8b], Truncated),
        (&[0x0f], Truncated),
        (&[0x8b, 0x04], Truncated),
        (&[0x8b, 0x05, 0x00, 0x00, 0x00], Truncated),
        (&[0xc7, 0x07, 1, 2, 3], Truncated),
        (&[0x48, 0xc7, 0x40, 0x08, 1, 2, 3], Truncated),
    ];
    for (bytes, want) in cases {
        assert_eq!(decode(bytes), Err(*want), "{bytes:02x?}");
    }
    // 15 bytes is the limit: 13 prefixes + 8b 07 decodes, 14 do not.
    let mut long = [0x2e; 16];
    long[13] = 0x8b;
    long[14] = 0x07;
    assert_eq!(decode(&long[..15]).unwrap().len, 15);
    long[14] = 0x8b;
    long[15] = 0x07;
    assert_eq!(decode(&long), Err(Unsupported));
    // Bytes past the instruction are ignored.
    assert_eq!(decode(&[0x8b, 0x07, 0xff, 0xff]).unwrap().len, 2);
}
