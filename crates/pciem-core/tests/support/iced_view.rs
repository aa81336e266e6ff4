//! The reference side of the `insn` differential tests: what iced-x86 says
//! an instruction is, reduced to the facts `pciem_core::insn` decodes, and
//! a register/memory model of the supported forms written from iced's
//! operands (independently of the emulator's code).
//!
//! Shared by `tests/insn_diff.rs` and the `mmio_decode` fuzz target (which
//! includes this file by path).

#![allow(dead_code)]

use iced_x86::{
    Code, Decoder, DecoderError, DecoderOptions, Instruction, Mnemonic, OpKind, Register,
};
use pciem_core::insn::{Extend, Insn, Op, Regs};

/// A register operand: full register number and whether it is AH..BH.
pub type RegView = (u8, bool);

/// What the instruction does, as both sides can say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Memory to register, widened as `extend` says (`'-'`, `'z'`, `'s'`).
    Load(RegView, usize, char),
    /// Register to memory.
    Store(RegView),
    /// Immediate to memory (sign-extended to 64 bits where encoded so).
    Imm(u64),
    /// `MOVS`, with `REP` or not.
    Movs(bool),
    /// `STOS`, with `REP` or not.
    Stos(bool),
}

/// The memory operand: base, index, scale, and the displacement (for a
/// RIP-relative operand: the target with the instruction at address 0).
pub type MemView = (Option<u8>, Option<u8>, u32, u64, bool);

/// One instruction as the comparison sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Length in bytes.
    pub len: usize,
    /// Width of each memory access.
    pub width: usize,
    /// Operation.
    pub kind: Kind,
    /// Memory operand.
    pub mem: MemView,
}

/// Our decode, as a [`View`].
pub fn ours(insn: &Insn) -> View {
    let reg = |r: pciem_core::insn::Reg| (r.num, r.high8);
    let kind = match insn.op {
        Op::Load {
            dst,
            dst_width,
            extend,
        } => {
            let e = match extend {
                Extend::None => '-',
                Extend::Zero => 'z',
                Extend::Sign => 's',
            };
            Kind::Load(reg(dst), usize::from(dst_width), e)
        }
        Op::Store { src } => Kind::Store(reg(src)),
        Op::StoreImm { imm } => Kind::Imm(imm),
        Op::Movs { rep } => Kind::Movs(rep),
        Op::Stos { rep } => Kind::Stos(rep),
    };
    let m = insn.mem;
    let disp = i64::from(m.disp) as u64;
    let disp = if m.rip_relative {
        u64::from(insn.len).wrapping_add(disp)
    } else {
        disp
    };
    View {
        len: usize::from(insn.len),
        width: usize::from(insn.width),
        kind,
        mem: (m.base, m.index, u32::from(m.scale), disp, m.rip_relative),
    }
}

/// iced's decode of `bytes` at address `ip`, and whether it failed for
/// running out of bytes.
pub fn iced(bytes: &[u8], ip: u64) -> (Instruction, bool) {
    let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let i = d.decode();
    let out_of_bytes = i.is_invalid() && d.last_error() == DecoderError::NoMoreBytes;
    (i, out_of_bytes)
}

fn gpr(r: Register) -> Option<RegView> {
    if !r.is_gpr() {
        return None;
    }
    let high8 = matches!(r, Register::AH | Register::CH | Register::DH | Register::BH);
    Some((r.full_register().number() as u8, high8))
}

fn gpr64(r: Register) -> Option<Option<u8>> {
    match r {
        Register::None => Some(None),
        r if r.is_gpr64() => Some(Some(r.number() as u8)),
        _ => None,
    }
}

/// iced's reading of `bytes` (at address 0) if it is one of the forms the
/// emulator supports, `None` otherwise. The supported set is defined here
/// from iced's operands, not from our decoder: MOV/MOVZX/MOVSX/MOVSXD/
/// MOVNTI between a general register and a 64-bit-addressed memory operand,
/// MOV of an immediate to memory, MOVS and STOS with or without REP; no
/// LOCK, REPNE, XACQUIRE/XRELEASE, FS/GS, or REP on a non-string form; no
/// 16-bit MOVSXD, no `movabs` (A0..A3).
pub fn supported(bytes: &[u8]) -> Option<View> {
    let (i, _) = iced(bytes, 0);
    if i.is_invalid() || i.has_lock_prefix() || i.has_repne_prefix() {
        return None;
    }
    if i.has_xacquire_prefix() || i.has_xrelease_prefix() {
        return None;
    }
    let width = i.memory_size().size();
    let string = |base: u8| {
        // MOVS's source may be overridden; CS/SS/DS/ES all have base 0.
        let seg = i.memory_segment();
        (!matches!(seg, Register::FS | Register::GS)).then_some((Some(base), None, 1, 0, false))
    };
    let (kind, mem) = match (i.mnemonic(), i.op0_kind(), i.op1_kind()) {
        (
            Mnemonic::Movsb | Mnemonic::Movsw | Mnemonic::Movsd | Mnemonic::Movsq,
            OpKind::MemoryESRDI,
            OpKind::MemorySegRSI,
        ) => (Kind::Movs(i.has_rep_prefix()), string(6)?),
        (
            Mnemonic::Stosb | Mnemonic::Stosw | Mnemonic::Stosd | Mnemonic::Stosq,
            OpKind::MemoryESRDI,
            OpKind::Register,
        ) => (Kind::Stos(i.has_rep_prefix()), string(7)?),
        _ if i.has_rep_prefix() => return None,
        (m, OpKind::Register, OpKind::Memory) => {
            let dst = i.op0_register();
            let size = dst.size();
            let extend = match m {
                Mnemonic::Mov => '-',
                Mnemonic::Movzx => 'z',
                Mnemonic::Movsx => 's',
                Mnemonic::Movsxd if size == 8 => 's',
                Mnemonic::Movsxd if size == 4 => '-',
                _ => return None,
            };
            (Kind::Load(gpr(dst)?, size, extend), mem(&i)?)
        }
        (Mnemonic::Mov | Mnemonic::Movnti, OpKind::Memory, OpKind::Register) => {
            (Kind::Store(gpr(i.op1_register())?), mem(&i)?)
        }
        (
            Mnemonic::Mov,
            OpKind::Memory,
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate32to64,
        ) => (Kind::Imm(i.immediate(1)), mem(&i)?),
        _ => return None,
    };
    Some(View {
        len: i.len(),
        width,
        kind,
        mem,
    })
}

/// The ModRM memory operand as a [`MemView`], if 64-bit addressed and not
/// FS/GS based.
fn mem(i: &Instruction) -> Option<MemView> {
    if matches!(i.memory_segment(), Register::FS | Register::GS) {
        return None;
    }
    // MOV with a 64-bit absolute address (A0..A3, `movabs`) is not in the
    // set: the kernel and module disassembly never uses it.
    if matches!(
        i.code(),
        Code::Mov_AL_moffs8
            | Code::Mov_AX_moffs16
            | Code::Mov_EAX_moffs32
            | Code::Mov_RAX_moffs64
            | Code::Mov_moffs8_AL
            | Code::Mov_moffs16_AX
            | Code::Mov_moffs32_EAX
            | Code::Mov_moffs64_RAX
    ) {
        return None;
    }
    if i.is_ip_rel_memory_operand() {
        if i.memory_base() != Register::RIP {
            return None;
        }
        return Some((None, None, 1, i.memory_displacement64(), true));
    }
    let base = gpr64(i.memory_base())?;
    let index = gpr64(i.memory_index())?;
    Some((
        base,
        index,
        i.memory_index_scale(),
        i.memory_displacement64(),
        false,
    ))
}

/// One memory access of the reference model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read of `width` bytes at an address.
    Read(u64, usize),
    /// Write of `width` bytes of a value at an address.
    Write(u64, usize, u64),
}

/// What a read of `width` bytes at `addr` returns, in both the reference
/// and the memory handed to the emulator: deliberately with garbage above
/// `width` bytes, which the emulator must ignore.
pub fn read_value(addr: u64, width: usize) -> u64 {
    addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (width as u64).rotate_right(7)
}

fn low(value: u64, bytes: usize) -> u64 {
    if bytes >= 8 {
        value
    } else {
        value & ((1u64 << (8 * bytes)) - 1)
    }
}

fn ref_read_reg(regs: &Regs, r: Register) -> u64 {
    let full = regs.gpr[r.full_register().number()].to_le_bytes();
    if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) {
        return u64::from(full[1]);
    }
    let mut out = [0u8; 8];
    out[..r.size()].copy_from_slice(&full[..r.size()]);
    u64::from_le_bytes(out)
}

fn ref_write_reg(regs: &mut Regs, r: Register, value: u64) {
    let slot = &mut regs.gpr[r.full_register().number()];
    let mut bytes = slot.to_le_bytes();
    let v = value.to_le_bytes();
    if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) {
        bytes[1] = v[0];
    } else if r.size() == 4 {
        bytes = [v[0], v[1], v[2], v[3], 0, 0, 0, 0];
    } else {
        bytes[..r.size()].copy_from_slice(&v[..r.size()]);
    }
    *slot = u64::from_le_bytes(bytes);
}

/// The reference model: run the instruction iced decodes from `bytes` at
/// `regs.rip` (one of the [`supported`] forms), returning the registers
/// after it and its accesses in order (reads answered by [`read_value`]).
/// `None` if the form is not one the model knows.
pub fn reference(bytes: &[u8], regs: &Regs) -> Option<(Regs, Vec<Access>)> {
    let (i, _) = iced(bytes, regs.rip);
    let mut r = *regs;
    let mut log = Vec::new();
    let width = i.memory_size().size();
    let ea = || {
        if i.is_ip_rel_memory_operand() {
            return i.ip_rel_memory_address();
        }
        let reg = |x: Register| {
            if x == Register::None {
                0
            } else {
                regs.gpr[x.number()]
            }
        };
        reg(i.memory_base())
            .wrapping_add(reg(i.memory_index()).wrapping_mul(u64::from(i.memory_index_scale())))
            .wrapping_add(i.memory_displacement64())
    };
    match (i.op0_kind(), i.op1_kind()) {
        (OpKind::Register, OpKind::Memory) => {
            let a = ea();
            log.push(Access::Read(a, width));
            let v = low(read_value(a, width), width);
            let v = match i.mnemonic() {
                Mnemonic::Movsx | Mnemonic::Movsxd => {
                    let shift = 64 - 8 * width as u32;
                    (((v << shift) as i64) >> shift) as u64
                }
                _ => v,
            };
            ref_write_reg(&mut r, i.op0_register(), v);
        }
        (OpKind::Memory, OpKind::Register) => {
            log.push(Access::Write(
                ea(),
                width,
                ref_read_reg(regs, i.op1_register()),
            ));
        }
        (OpKind::Memory, _) => log.push(Access::Write(ea(), width, low(i.immediate(1), width))),
        (OpKind::MemoryESRDI, src) => {
            let down = regs.rflags & (1 << 10) != 0;
            let step = |x: u64| {
                if down {
                    x.wrapping_sub(width as u64)
                } else {
                    x.wrapping_add(width as u64)
                }
            };
            let times = if i.has_rep_prefix() { regs.gpr[1] } else { 1 };
            for _ in 0..times {
                let value = if src == OpKind::MemorySegRSI {
                    let v = low(read_value(r.gpr[6], width), width);
                    log.push(Access::Read(r.gpr[6], width));
                    r.gpr[6] = step(r.gpr[6]);
                    v
                } else {
                    low(r.gpr[0], width)
                };
                log.push(Access::Write(r.gpr[7], width, value));
                r.gpr[7] = step(r.gpr[7]);
            }
            if i.has_rep_prefix() {
                r.gpr[1] = 0;
            }
        }
        _ => return None,
    }
    r.rip = regs.rip.wrapping_add(i.len() as u64);
    Some((r, log))
}
