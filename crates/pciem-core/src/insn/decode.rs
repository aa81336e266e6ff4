//! Bytes to [`Insn`]: prefixes, opcode, ModRM/SIB, displacement, immediate.

use super::{DecodeError, Extend, Insn, MemOperand, Op, Reg, MAX_INSN_LEN, RDI, RSI};

/// Reads instruction bytes, at most [`MAX_INSN_LEN`] of them.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    /// The next byte; running out is [`DecodeError::Truncated`] when fewer
    /// than [`MAX_INSN_LEN`] bytes were given and
    /// [`DecodeError::Unsupported`] (too long) otherwise.
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = self.peek()?;
        self.pos = self.pos.saturating_add(1);
        Ok(b)
    }

    /// The next byte, not consumed.
    fn peek(&self) -> Result<u8, DecodeError> {
        match self.bytes.get(self.pos) {
            Some(&b) => Ok(b),
            None if self.pos >= MAX_INSN_LEN => Err(DecodeError::Unsupported),
            None => Err(DecodeError::Truncated),
        }
    }

    fn i8(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from(self.byte()? as i8))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes([
            self.byte()?,
            self.byte()?,
            self.byte()?,
            self.byte()?,
        ]))
    }
}

/// The REX prefix's bits (all false without one).
#[derive(Clone, Copy, Default)]
struct Rex {
    present: bool,
    w: bool,
    r: bool,
    x: bool,
    b: bool,
}

impl Rex {
    fn from_byte(b: u8) -> Rex {
        Rex {
            present: true,
            w: b & 8 != 0,
            r: b & 4 != 0,
            x: b & 2 != 0,
            b: b & 1 != 0,
        }
    }
}

/// Everything before the opcode.
#[derive(Clone, Copy, Default)]
struct Prefixes {
    opsize16: bool,
    rep: bool,
    rex: Rex,
}

impl Prefixes {
    /// Operand size of a non-byte instruction: REX.W wins over `66`.
    fn width(&self) -> u8 {
        if self.rex.w {
            8
        } else if self.opsize16 {
            2
        } else {
            4
        }
    }
}

/// Decode one instruction from `bytes`, which start at its first byte and
/// hold up to [`MAX_INSN_LEN`] bytes (more are ignored; fewer, e.g. near
/// the end of a page, give [`DecodeError::Truncated`] if the instruction
/// needs them).
///
/// Only the forms listed in the [module documentation](super) decode;
/// anything else is an error, never a guess.
pub fn decode(bytes: &[u8]) -> Result<Insn, DecodeError> {
    let mut c = Cursor {
        bytes: bytes.get(..MAX_INSN_LEN).unwrap_or(bytes),
        pos: 0,
    };
    let mut p = Prefixes::default();
    let opcode = loop {
        let b = c.byte()?;
        match b {
            0x40..=0x4f => {
                // A second REX replaces the first; only the one right
                // before the opcode counts.
                p.rex = Rex::from_byte(b);
                continue;
            }
            0x66 => p.opsize16 = true,
            0xf3 => p.rep = true,
            // CS, SS, DS, ES: no effect in 64-bit mode.
            0x2e | 0x36 | 0x3e | 0x26 => {}
            // LOCK, REPNE, FS, GS, address size.
            0xf0 | 0xf2 | 0x64 | 0x65 | 0x67 => return Err(DecodeError::UnsupportedPrefix),
            _ => break b,
        }
        // A legacy prefix after REX makes the CPU ignore the REX; refuse
        // rather than model it.
        if p.rex.present {
            return Err(DecodeError::UnsupportedPrefix);
        }
    };
    let string = matches!(opcode, 0xa4 | 0xa5 | 0xaa | 0xab);
    if p.rep && !string {
        return Err(DecodeError::UnsupportedPrefix);
    }
    let (op, width, mem) = match opcode {
        0x88..=0x8b => {
            let width = if opcode & 1 == 0 { 1 } else { p.width() };
            let (reg, mem) = modrm(&mut c, &p, width)?;
            let op = if opcode & 2 == 0 {
                Op::Store { src: reg }
            } else {
                Op::Load {
                    dst: reg,
                    dst_width: width,
                    extend: Extend::None,
                }
            };
            (op, width, mem)
        }
        0xc6 | 0xc7 => {
            let width = if opcode == 0xc6 { 1 } else { p.width() };
            // Only /0 is MOV (C6 F8 and C7 F8 are XABORT and XBEGIN);
            // refuse the others before reading further.
            if c.peek()? & 0x38 != 0 {
                return Err(DecodeError::Unsupported);
            }
            let (_, mem) = modrm(&mut c, &p, width)?;
            let imm = match width {
                1 => u64::from(c.byte()?),
                2 => u64::from(c.u16()?),
                // The 64-bit form sign-extends its 32-bit immediate.
                8 => i64::from(c.i32()?) as u64,
                _ => u64::from(c.i32()? as u32),
            };
            (Op::StoreImm { imm }, width, mem)
        }
        0x63 => {
            // MOVSXD: 32 -> 64 with REX.W; without it a plain 32-bit
            // load. The 16-bit form is refused.
            if p.opsize16 && !p.rex.w {
                return Err(DecodeError::Unsupported);
            }
            let dst_width = p.width();
            let (dst, mem) = modrm(&mut c, &p, dst_width)?;
            let extend = if dst_width == 8 {
                Extend::Sign
            } else {
                Extend::None
            };
            let op = Op::Load {
                dst,
                dst_width,
                extend,
            };
            (op, 4, mem)
        }
        0xa4 | 0xa5 | 0xaa | 0xab => {
            let width = if opcode & 1 == 0 { 1 } else { p.width() };
            let (op, base) = if opcode < 0xaa {
                (Op::Movs { rep: p.rep }, RSI)
            } else {
                (Op::Stos { rep: p.rep }, RDI)
            };
            let mem = MemOperand {
                base: Some(base),
                scale: 1,
                ..MemOperand::default()
            };
            (op, width, mem)
        }
        0x0f => match c.byte()? {
            op2 @ (0xb6 | 0xb7 | 0xbe | 0xbf) => {
                let width = if op2 & 1 == 0 { 1 } else { 2 };
                let dst_width = p.width();
                let (dst, mem) = modrm(&mut c, &p, dst_width)?;
                let extend = if op2 & 8 == 0 {
                    Extend::Zero
                } else {
                    Extend::Sign
                };
                let op = Op::Load {
                    dst,
                    dst_width,
                    extend,
                };
                (op, width, mem)
            }
            0xc3 => {
                // MOVNTI m32/m64, r32/r64; there is no 16-bit form.
                if p.opsize16 {
                    return Err(DecodeError::Unsupported);
                }
                let width = p.width();
                let (src, mem) = modrm(&mut c, &p, width)?;
                (Op::Store { src }, width, mem)
            }
            _ => return Err(DecodeError::Unsupported),
        },
        _ => return Err(DecodeError::Unsupported),
    };
    let len = u8::try_from(c.pos).map_err(|_| DecodeError::Unsupported)?;
    Ok(Insn {
        len,
        op,
        width,
        mem,
    })
}

/// The ModRM byte and what follows it (SIB, displacement): the register
/// operand (named for an operand of `reg_width` bytes) and the memory
/// operand. Register-only forms (mod = 3) are refused.
fn modrm(
    c: &mut Cursor<'_>,
    p: &Prefixes,
    reg_width: u8,
) -> Result<(Reg, MemOperand), DecodeError> {
    let m = c.byte()?;
    let md = m >> 6;
    let rm = m & 7;
    if md == 3 {
        return Err(DecodeError::Unsupported);
    }
    let mut num = (m >> 3) & 7;
    // Without REX, byte registers 4..8 are AH, CH, DH, BH.
    let high8 = reg_width == 1 && !p.rex.present && num >= 4;
    if high8 {
        num &= 3;
    }
    if p.rex.r {
        num |= 8;
    }
    let reg = Reg { num, high8 };
    let rex_b = if p.rex.b { 8 } else { 0 };
    let mut mem = MemOperand {
        scale: 1,
        ..MemOperand::default()
    };
    let mut disp32 = md == 2;
    if rm == 4 {
        let sib = c.byte()?;
        let index = ((sib >> 3) & 7) | if p.rex.x { 8 } else { 0 };
        // Index 4 without REX.X means none (r12 can be an index).
        if index != 4 {
            mem.index = Some(index);
        }
        mem.scale = 1 << (sib >> 6);
        let base = sib & 7;
        if base == 5 && md == 0 {
            disp32 = true;
        } else {
            mem.base = Some(base | rex_b);
        }
    } else if rm == 5 && md == 0 {
        mem.rip_relative = true;
        disp32 = true;
    } else {
        mem.base = Some(rm | rex_b);
    }
    mem.disp = if disp32 {
        c.i32()?
    } else if md == 1 {
        c.i8()?
    } else {
        0
    };
    Ok((reg, mem))
}
