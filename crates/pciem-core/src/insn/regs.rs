//! Register reads and writes with the CPU's partial-register rules, and the
//! width arithmetic the emulator shares.

use super::{Reg, Regs};

/// The whole 64-bit register `num` (0 for a number above 15, which the
/// decoder never produces).
pub(crate) fn get(regs: &Regs, num: u8) -> u64 {
    regs.gpr.get(usize::from(num)).copied().unwrap_or(0)
}

/// Replace the whole 64-bit register `num`.
pub(crate) fn set(regs: &mut Regs, num: u8, value: u64) {
    if let Some(r) = regs.gpr.get_mut(usize::from(num)) {
        *r = value;
    }
}

/// All-ones in the low `width` bytes (8 or anything else: all 64 bits).
pub(crate) fn mask(width: u8) -> u64 {
    match width {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// `value`'s low `width` bytes, sign-extended to 64 bits.
pub(crate) fn sign_extend(value: u64, width: u8) -> u64 {
    match width {
        1 => value as u8 as i8 as i64 as u64,
        2 => value as u16 as i16 as i64 as u64,
        4 => value as u32 as i32 as i64 as u64,
        _ => value,
    }
}

/// The low `width` bytes of `reg` (bits 8..16 for a high-byte register).
pub(crate) fn read(regs: &Regs, reg: Reg, width: u8) -> u64 {
    let full = get(regs, reg.num);
    if width == 1 && reg.high8 {
        (full >> 8) & 0xff
    } else {
        full & mask(width)
    }
}

/// Write the low `width` bytes of `value` to `reg` as the CPU does: a
/// 4-byte write zero-extends to 64 bits, 1- and 2-byte writes keep the
/// other bits, a high-byte register takes bits 8..16.
pub(crate) fn write(regs: &mut Regs, reg: Reg, width: u8, value: u64) {
    let old = get(regs, reg.num);
    let new = match width {
        1 if reg.high8 => (old & !0xff00) | ((value & 0xff) << 8),
        1 | 2 => (old & !mask(width)) | (value & mask(width)),
        4 => value & mask(4),
        _ => value,
    };
    set(regs, reg.num, new);
}
