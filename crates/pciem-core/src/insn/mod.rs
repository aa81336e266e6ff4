//! Decoding and emulating the x86-64 instructions a driver uses on MMIO.
//!
//! In trap mode the kernel module makes a driver's mapping of a BAR
//! non-present, catches the page fault an access to it raises, and hands the
//! bytes at the faulting RIP to [`decode`]. [`emulate`] then performs the
//! instruction's memory accesses through a [`Memory`] the caller routes by
//! address (a trapped BAR goes to the device, anything else to ordinary
//! kernel memory), writes the destination register exactly as the CPU would
//! and advances RIP.
//!
//! The supported set is what the kernel's MMIO accessors and drivers compile
//! to (`docs/insn-forms.md` lists where each form was found):
//!
//! - `MOV` between a register and memory (`88`, `89`, `8A`, `8B`), every
//!   operand size, with `66` and REX.W/R/X/B;
//! - `MOV` of an immediate to memory (`C6 /0`, `C7 /0`, the 64-bit form
//!   sign-extending its 32-bit immediate);
//! - `MOVZX` (`0F B6`, `0F B7`), `MOVSX` (`0F BE`, `0F BF`), `MOVSXD` (`63`);
//! - `MOVNTI` (`0F C3`), a store with a non-temporal hint;
//! - `MOVS` (`A4`, `A5`) and `STOS` (`AA`, `AB`), with or without `REP`
//!   (`F3`), honouring the direction flag.
//!
//! Addressing: every ModRM/SIB form with 8- and 32-bit displacements, SIB
//! without a base, and RIP-relative operands. The `CS`/`SS`/`DS`/`ES`
//! segment prefixes are accepted and ignored, as the CPU does in 64-bit
//! mode. Everything else is refused rather than guessed at: `LOCK`, `FS`/`GS`
//! overrides (their base is not known here), the address-size prefix,
//! `REPNE`, `REP` on anything but a string instruction, register-only forms,
//! and every other opcode.
//!
//! The code allocates nothing, uses no floating point or formatting on its
//! paths, and has no panicking path on any input: the same source is built
//! for the kernel.

mod decode;
mod emulate;
mod length;
mod regs;

#[cfg(test)]
mod tests;

pub use decode::decode;
pub use emulate::emulate;
pub use length::length;

/// Longest x86 instruction, in bytes.
pub const MAX_INSN_LEN: usize = 15;

/// The register state the emulator reads and writes.
///
/// General-purpose registers are in x86 encoding order: `rax`, `rcx`, `rdx`,
/// `rbx`, `rsp`, `rbp`, `rsi`, `rdi`, `r8` to `r15`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Regs {
    /// `rax` .. `r15`, by register number.
    pub gpr: [u64; 16],
    /// The address of the instruction; [`emulate`] advances it past the
    /// instruction.
    pub rip: u64,
    /// The flags; only DF (bit 10) is read, nothing is written.
    pub rflags: u64,
}

/// Register number of `rcx` (the `REP` count).
pub const RCX: u8 = 1;
/// Register number of `rsi` (the string source).
pub const RSI: u8 = 6;
/// Register number of `rdi` (the string destination).
pub const RDI: u8 = 7;
/// The direction flag in [`Regs::rflags`]: string instructions walk down
/// when it is set.
pub const RFLAGS_DF: u64 = 1 << 10;

/// A general-purpose register operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reg {
    /// Register number, 0 (`rax`) to 15 (`r15`). For a high-byte register
    /// it is the register holding it: 0 to 3 for `AH`, `CH`, `DH`, `BH`.
    pub num: u8,
    /// Bits 8..16 of [`Reg::num`] (`AH`, `CH`, `DH`, `BH`: an 8-bit operand
    /// encoded as 4 to 7 without a REX prefix).
    pub high8: bool,
}

/// The memory operand: `base + index * scale + disp`, or
/// `next_rip + disp` when RIP-relative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemOperand {
    /// Base register number, if any.
    pub base: Option<u8>,
    /// Index register number, if any.
    pub index: Option<u8>,
    /// Index scale: 1, 2, 4 or 8.
    pub scale: u8,
    /// Displacement, sign-extended.
    pub disp: i32,
    /// Relative to the address of the next instruction (no base, no index).
    pub rip_relative: bool,
}

/// How a load widens its value into the destination register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extend {
    /// Same width as the access (`MOV`, `MOVSXD` without REX.W).
    None,
    /// Zero-extended (`MOVZX`).
    Zero,
    /// Sign-extended (`MOVSX`, `MOVSXD`).
    Sign,
}

/// What the instruction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read [`Insn::width`] bytes from the memory operand into `dst`.
    Load {
        /// Destination register.
        dst: Reg,
        /// Width of the register write in bytes (1, 2, 4 or 8); at least
        /// [`Insn::width`]. A 4-byte write zero-extends to 64 bits, 1- and
        /// 2-byte writes keep the other bits.
        dst_width: u8,
        /// How the value is widened to `dst_width`.
        extend: Extend,
    },
    /// Write the low [`Insn::width`] bytes of `src` to the memory operand
    /// (`MOV`, `MOVNTI`).
    Store {
        /// Source register.
        src: Reg,
    },
    /// Write an immediate to the memory operand.
    StoreImm {
        /// The value, already sign-extended to 64 bits where the encoding
        /// says so; the low [`Insn::width`] bytes are written.
        imm: u64,
    },
    /// `MOVS`: copy [`Insn::width`] bytes from `[rsi]` to `[rdi]`, stepping
    /// both; with `rep`, `rcx` times.
    Movs {
        /// `F3` prefix.
        rep: bool,
    },
    /// `STOS`: store the low [`Insn::width`] bytes of `rax` to `[rdi]`,
    /// stepping it; with `rep`, `rcx` times.
    Stos {
        /// `F3` prefix.
        rep: bool,
    },
}

/// One decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Insn {
    /// Length in bytes, 1 to [`MAX_INSN_LEN`].
    pub len: u8,
    /// The operation.
    pub op: Op,
    /// Width of each memory access in bytes: 1, 2, 4 or 8.
    pub width: u8,
    /// The memory operand. For the string forms it is synthesised: `[rsi]`
    /// for `MOVS` (whose first access is the read) and `[rdi]` for `STOS`.
    pub mem: MemOperand,
}

impl Insn {
    /// The address of the instruction's first memory access with the
    /// registers in `regs` (taken before the instruction runs; RIP-relative
    /// operands count from `regs.rip + len`). Arithmetic wraps, as the
    /// CPU's does.
    pub fn effective_address(&self, regs: &Regs) -> u64 {
        let disp = i64::from(self.mem.disp) as u64;
        if self.mem.rip_relative {
            return regs
                .rip
                .wrapping_add(u64::from(self.len))
                .wrapping_add(disp);
        }
        let base = self.mem.base.map_or(0, |r| regs::get(regs, r));
        let index = self.mem.index.map_or(0, |r| {
            regs::get(regs, r).wrapping_mul(u64::from(self.mem.scale))
        });
        base.wrapping_add(index).wrapping_add(disp)
    }

    /// Whether the instruction writes memory (every form but [`Op::Load`];
    /// `MOVS` also reads).
    pub fn writes_memory(&self) -> bool {
        !matches!(self.op, Op::Load { .. })
    }
}

/// Why bytes were not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the instruction does (fewer than
    /// [`MAX_INSN_LEN`] bytes were given, e.g. near the end of a page).
    #[error("instruction bytes end early")]
    Truncated,
    /// A prefix the emulator refuses: `LOCK`, an `FS`/`GS` override, the
    /// address-size override, `REPNE`, `REP` on a non-string instruction,
    /// or a legacy prefix after REX.
    #[error("unsupported prefix")]
    UnsupportedPrefix,
    /// Not one of the supported forms (another opcode, a register-only
    /// ModRM, an undefined encoding, or longer than [`MAX_INSN_LEN`]).
    #[error("unsupported instruction")]
    Unsupported,
}

/// Why [`emulate`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum EmulateError<E> {
    /// A memory access failed. Registers show the elements a `REP` string
    /// instruction finished before it (as after a fault on the CPU); RIP
    /// is not advanced.
    #[error("memory access failed")]
    Memory(E),
}

/// The memory the emulator reads and writes. The kernel side routes by
/// address: an access inside a trapped BAR mapping goes to the device,
/// anything else to ordinary kernel memory.
pub trait Memory {
    /// Why an access failed.
    type Error;
    /// Read `width` (1, 2, 4 or 8) bytes at `addr`, little-endian; bits
    /// above `width` bytes are ignored.
    fn read(&mut self, addr: u64, width: u8) -> Result<u64, Self::Error>;
    /// Write the low `width` (1, 2, 4 or 8) bytes of `value` at `addr`;
    /// the bits above are zero.
    fn write(&mut self, addr: u64, width: u8, value: u64) -> Result<(), Self::Error>;
}
