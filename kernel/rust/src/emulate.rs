//! `pciem_rs_emulate`: pciem-core's x86-64 decoder and emulator for the
//! module's trap-mode fault handler (kernel/pciem/trap.c).
//!
//! The C side hands over the faulting instruction's bytes, the interrupted
//! registers and two callbacks that perform one memory access each (routed
//! by address to the trapped BAR or to ordinary kernel memory). Registers
//! are written back only when the whole instruction completed.

use core::ffi::c_void;

use pciem_core::insn::{decode, emulate, length, EmulateError, Memory, Regs};

const EOPNOTSUPP: i32 = 95;
const EINVAL: i32 = 22;

/// `struct pciem_rs_regs` (kernel/rust/pciem_rs.h).
#[repr(C)]
pub struct RsRegs {
    /// General-purpose registers in x86 encoding order.
    pub gpr: [u64; 16],
    /// Instruction pointer.
    pub rip: u64,
    /// Flags.
    pub rflags: u64,
}

/// One memory read: 0 or a negative errno.
pub type MemRead =
    unsafe extern "C" fn(ctx: *mut c_void, addr: u64, width: u32, val: *mut u64) -> i32;
/// One memory write: 0 or a negative errno.
pub type MemWrite = unsafe extern "C" fn(ctx: *mut c_void, addr: u64, width: u32, val: u64) -> i32;

/// `struct pciem_rs_mem_ops`.
#[repr(C)]
pub struct MemOps {
    /// Read callback.
    pub read: Option<MemRead>,
    /// Write callback.
    pub write: Option<MemWrite>,
}

// Pinned against the same numbers in pciem_rs.h.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RsRegs>() == 144);
    assert!(offset_of!(RsRegs, gpr) == 0);
    assert!(offset_of!(RsRegs, rip) == 128);
    assert!(offset_of!(RsRegs, rflags) == 136);
    assert!(size_of::<MemOps>() == 16);
    assert!(offset_of!(MemOps, read) == 0);
    assert!(offset_of!(MemOps, write) == 8);
};

/// The C callbacks as the emulator's memory.
struct CMemory {
    read: MemRead,
    write: MemWrite,
    ctx: *mut c_void,
}

impl Memory for CMemory {
    type Error = i32;

    fn read(&mut self, addr: u64, width: u8) -> Result<u64, i32> {
        let mut val = 0u64;
        // SAFETY: the callback and ctx come from the C caller, which
        // promises (pciem_rs.h) they are valid for this call; `val` is a
        // live local the callback may write.
        let ret = unsafe { (self.read)(self.ctx, addr, u32::from(width), &mut val) };
        if ret != 0 {
            return Err(ret);
        }
        Ok(val)
    }

    fn write(&mut self, addr: u64, width: u8, value: u64) -> Result<(), i32> {
        // SAFETY: as in `read`.
        let ret = unsafe { (self.write)(self.ctx, addr, u32::from(width), value) };
        if ret != 0 {
            return Err(ret);
        }
        Ok(())
    }
}

/// Decode and execute one instruction; see pciem_rs.h.
///
/// # Safety
/// `bytes` must be valid for `nbytes` reads, `regs`, `ops` and `len` valid
/// pointers (or NULL, which is refused), and the callbacks in `ops` valid
/// to call with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_emulate(
    bytes: *const u8,
    nbytes: u32,
    regs: *mut RsRegs,
    ops: *const MemOps,
    ctx: *mut c_void,
    len: *mut u32,
) -> i32 {
    if bytes.is_null() || regs.is_null() || ops.is_null() || len.is_null() {
        return -EINVAL;
    }
    // SAFETY: non-null, and valid per the caller's contract.
    let (regs, ops, len) = unsafe { (&mut *regs, &*ops, &mut *len) };
    let (Some(read), Some(write)) = (ops.read, ops.write) else {
        return -EINVAL;
    };
    let n = core::cmp::min(nbytes, 16) as usize;
    // SAFETY: `bytes` is valid for `nbytes` >= `n` reads.
    let bytes = unsafe { core::slice::from_raw_parts(bytes, n) };
    *len = 0;
    let insn = match decode(bytes) {
        Ok(insn) => insn,
        Err(_) => {
            *len = u32::from(length(bytes).unwrap_or(0));
            return -EOPNOTSUPP;
        }
    };
    *len = u32::from(insn.len);
    let mut r = Regs {
        gpr: regs.gpr,
        rip: regs.rip,
        rflags: regs.rflags,
    };
    let mut mem = CMemory { read, write, ctx };
    match emulate(&insn, &mut r, &mut mem) {
        Ok(()) => {
            regs.gpr = r.gpr;
            regs.rip = r.rip;
            regs.rflags = r.rflags;
            0
        }
        Err(EmulateError::Memory(errno)) => {
            if errno < 0 {
                errno
            } else {
                -EINVAL
            }
        }
        Err(_) => -EOPNOTSUPP,
    }
}
