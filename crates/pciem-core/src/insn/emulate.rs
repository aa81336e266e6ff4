//! Running an [`Insn`] against [`Regs`] and a [`Memory`].

use super::{regs, EmulateError, Extend, Insn, Memory, Op, Regs, RCX, RDI, RFLAGS_DF, RSI};

/// Execute `insn` (decoded from the bytes at `regs.rip`): perform its
/// memory accesses through `mem` in program order, update the registers
/// it writes, and advance `regs.rip` by its length.
///
/// A `REP` string instruction runs all `rcx` iterations in this one call
/// (none when `rcx` is 0) and leaves `rsi`, `rdi` and `rcx` as the CPU
/// would at its end; each element is read (`MOVS`) and then written before
/// the next one starts, stepping down when DF is set.
///
/// When an access fails, the error is returned with RIP unchanged and the
/// registers showing the string elements completed before it.
pub fn emulate<M: Memory>(
    insn: &Insn,
    regs: &mut Regs,
    mem: &mut M,
) -> Result<(), EmulateError<M::Error>> {
    let width = insn.width;
    match insn.op {
        Op::Load {
            dst,
            dst_width,
            extend,
        } => {
            let addr = insn.effective_address(regs);
            let raw = mem.read(addr, width).map_err(EmulateError::Memory)? & regs::mask(width);
            let value = match extend {
                Extend::Sign => regs::sign_extend(raw, width),
                Extend::None | Extend::Zero => raw,
            };
            regs::write(regs, dst, dst_width, value);
        }
        Op::Store { src } => {
            let addr = insn.effective_address(regs);
            let value = regs::read(regs, src, width);
            mem.write(addr, width, value)
                .map_err(EmulateError::Memory)?;
        }
        Op::StoreImm { imm } => {
            let addr = insn.effective_address(regs);
            mem.write(addr, width, imm & regs::mask(width))
                .map_err(EmulateError::Memory)?;
        }
        Op::Movs { rep } => string(regs, mem, width, rep, true)?,
        Op::Stos { rep } => string(regs, mem, width, rep, false)?,
    }
    regs.rip = regs.rip.wrapping_add(u64::from(insn.len));
    Ok(())
}

/// `MOVS` (`copy`) or `STOS`, once or `rcx` times, updating `rsi`/`rdi`/
/// `rcx` after each element so that a failure leaves them as a fault on
/// the CPU would.
fn string<M: Memory>(
    regs: &mut Regs,
    mem: &mut M,
    width: u8,
    rep: bool,
    copy: bool,
) -> Result<(), EmulateError<M::Error>> {
    let step = if regs.rflags & RFLAGS_DF != 0 {
        u64::from(width).wrapping_neg()
    } else {
        u64::from(width)
    };
    let mut count = if rep { regs::get(regs, RCX) } else { 1 };
    while count != 0 {
        let dst = regs::get(regs, RDI);
        if copy {
            let src = regs::get(regs, RSI);
            let value = mem.read(src, width).map_err(EmulateError::Memory)? & regs::mask(width);
            mem.write(dst, width, value).map_err(EmulateError::Memory)?;
            regs::set(regs, RSI, src.wrapping_add(step));
        } else {
            let value = regs::get(regs, 0) & regs::mask(width);
            mem.write(dst, width, value).map_err(EmulateError::Memory)?;
        }
        regs::set(regs, RDI, dst.wrapping_add(step));
        count = count.wrapping_sub(1);
        if rep {
            regs::set(regs, RCX, count);
        }
    }
    Ok(())
}
