//! The BAR0 register map, command numbers and error codes.
//!
//! Every register is 32 bits, little-endian, at a 4-byte aligned offset in
//! BAR0. Offsets up to 0x34 are fixed by the design; [`ERROR_CODE`] at 0x38
//! is this model's addition so a driver can tell why a command failed.

/// BAR slot of the register file (64 KiB, 64-bit memory BAR).
pub const REG_BAR: u8 = 0;
/// Size of BAR0 in bytes.
pub const REG_BAR_SIZE: u64 = 64 * 1024;
/// BAR slot of the framebuffer mirror (1 MiB, 64-bit prefetchable).
pub const FB_BAR: u8 = 2;
/// Size of BAR2 in bytes.
pub const FB_BAR_SIZE: u64 = 1024 * 1024;

/// CONTROL: bit 0 [`CONTROL_ENABLE`], bit 1 [`CONTROL_RESET`]. Watched.
pub const CONTROL: u64 = 0x00;
/// STATUS: [`STATUS_BUSY`], [`STATUS_DONE`], [`STATUS_ERROR`]; the driver
/// writes 0 to clear it.
pub const STATUS: u64 = 0x04;
/// CMD: writing a non-zero [`Command`] number starts it; the device writes
/// it back to 0 on completion. Watched.
pub const CMD: u64 = 0x08;
/// DATA: operand of the compute commands.
pub const DATA: u64 = 0x0C;
/// RESULT_LO: low 32 bits of the 64-bit result.
pub const RESULT_LO: u64 = 0x10;
/// RESULT_HI: high 32 bits of the 64-bit result.
pub const RESULT_HI: u64 = 0x14;
/// DMA_SRC_LO: low half of the source bus address.
pub const DMA_SRC_LO: u64 = 0x20;
/// DMA_SRC_HI: high half of the source bus address.
pub const DMA_SRC_HI: u64 = 0x24;
/// DMA_DST_LO: low half of the destination bus address.
pub const DMA_DST_LO: u64 = 0x28;
/// DMA_DST_HI: high half of the destination bus address.
pub const DMA_DST_HI: u64 = 0x2C;
/// DMA_LEN: transfer length in bytes.
pub const DMA_LEN: u64 = 0x30;
/// DMA_FLAGS: reserved; the device ignores it.
pub const DMA_FLAGS: u64 = 0x34;
/// ERROR_CODE: why the last command set [`STATUS_ERROR`] (an
/// [`ErrorCode`]), 0 after a successful command.
pub const ERROR_CODE: u64 = 0x38;

/// CONTROL bit 0: the device accepts commands only while this is set.
pub const CONTROL_ENABLE: u32 = 1 << 0;
/// CONTROL bit 1: reset the device (self-clearing).
pub const CONTROL_RESET: u32 = 1 << 1;

/// STATUS bit 0: a command is running.
pub const STATUS_BUSY: u32 = 1 << 0;
/// STATUS bit 1: the last command finished (successfully or not).
pub const STATUS_DONE: u32 = 1 << 1;
/// STATUS bit 2: the last command failed; see [`ERROR_CODE`].
pub const STATUS_ERROR: u32 = 1 << 2;

/// The longest transfer any DMA command accepts (command buffers,
/// PROCESS_BUFFER, P2P): 4 MiB, what the driver's `write()` accepts.
pub const MAX_DMA_LEN: u32 = 4 * 1024 * 1024;

/// A command written to [`CMD`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Command {
    /// RESULT = DATA + DATA (64-bit, no wrap).
    Add = 1,
    /// RESULT = DATA × DATA (64-bit, no wrap).
    Multiply = 2,
    /// RESULT = DATA ^ 0xFFFF_FFFF (RESULT_HI = 0).
    Xor = 3,
    /// Read DMA_LEN bytes at DMA_SRC, write their bitwise complement to
    /// DMA_DST; RESULT = sum of the bytes read.
    ProcessBuffer = 4,
    /// Read a command buffer of DMA_LEN bytes at DMA_SRC and draw it;
    /// RESULT = number of records executed.
    ExecuteCmdbuf = 5,
    /// Read a whole 640×480 RGB888 frame (DMA_LEN must be 921 600) at
    /// DMA_SRC into the framebuffer; RESULT = bytes read.
    DmaFrame = 6,
    /// Copy DMA_LEN bytes from peer address DMA_SRC to host memory at
    /// DMA_DST; RESULT = bytes copied.
    P2pRead = 7,
    /// Copy DMA_LEN bytes from host memory at DMA_SRC to peer address
    /// DMA_DST; RESULT = bytes copied.
    P2pWrite = 8,
}

impl Command {
    /// The command with this number, if there is one.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Command::Add,
            2 => Command::Multiply,
            3 => Command::Xor,
            4 => Command::ProcessBuffer,
            5 => Command::ExecuteCmdbuf,
            6 => Command::DmaFrame,
            7 => Command::P2pRead,
            8 => Command::P2pWrite,
            _ => return None,
        })
    }

    /// Every command, in number order.
    pub const ALL: [Command; 8] = [
        Command::Add,
        Command::Multiply,
        Command::Xor,
        Command::ProcessBuffer,
        Command::ExecuteCmdbuf,
        Command::DmaFrame,
        Command::P2pRead,
        Command::P2pWrite,
    ];

    /// Short upper-case name, as in the design.
    pub const fn name(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Multiply => "MULTIPLY",
            Command::Xor => "XOR",
            Command::ProcessBuffer => "PROCESS_BUFFER",
            Command::ExecuteCmdbuf => "EXECUTE_CMDBUF",
            Command::DmaFrame => "DMA_FRAME",
            Command::P2pRead => "P2P_READ",
            Command::P2pWrite => "P2P_WRITE",
        }
    }
}

/// Value of [`ERROR_CODE`] after a command. On error, RESULT holds a detail
/// that the variant's documentation names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// The command succeeded.
    None = 0,
    /// CMD held no known command. RESULT = the value written.
    UnknownCommand = 1,
    /// A command was written while CONTROL.ENABLE was clear. RESULT = 0.
    NotEnabled = 2,
    /// A DMA command with DMA_LEN = 0. RESULT = 0.
    ZeroLength = 3,
    /// DMA_LEN above [`MAX_DMA_LEN`] (or above what the host allows).
    /// RESULT = DMA_LEN.
    TooLong = 4,
    /// The host refused a DMA (unmapped or unaligned bus address).
    /// RESULT = the bus address of the failed access.
    DmaFault = 5,
    /// DMA_FRAME with DMA_LEN other than 921 600. RESULT = DMA_LEN.
    FrameSize = 6,
    /// A command-buffer record runs past the end of the buffer (a partial
    /// header or a length field past the end). RESULT = the record's offset.
    CmdbufTruncated = 7,
    /// A command-buffer record whose length field is below 8 (including 0)
    /// or does not match what its opcode needs. RESULT = the record's offset.
    CmdbufBadLength = 8,
    /// A command-buffer record with an unknown opcode. RESULT = the record's
    /// offset.
    CmdbufUnknownOpcode = 9,
    /// The host refused a peer-to-peer access. RESULT = the peer address.
    P2pDenied = 10,
    /// Any other host failure (reported by the backend). RESULT = the address
    /// being accessed, or 0 for a register access.
    HostFault = 11,
}

impl ErrorCode {
    /// The code's register value.
    pub const fn raw(self) -> u32 {
        self as u32
    }

    /// The code with this register value, if there is one.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => ErrorCode::None,
            1 => ErrorCode::UnknownCommand,
            2 => ErrorCode::NotEnabled,
            3 => ErrorCode::ZeroLength,
            4 => ErrorCode::TooLong,
            5 => ErrorCode::DmaFault,
            6 => ErrorCode::FrameSize,
            7 => ErrorCode::CmdbufTruncated,
            8 => ErrorCode::CmdbufBadLength,
            9 => ErrorCode::CmdbufUnknownOpcode,
            10 => ErrorCode::P2pDenied,
            11 => ErrorCode::HostFault,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_numbers_round_trip() {
        for c in Command::ALL {
            assert_eq!(Command::from_raw(c as u32), Some(c));
        }
        assert_eq!(Command::from_raw(0), None);
        assert_eq!(Command::from_raw(9), None);
    }

    #[test]
    fn error_codes_round_trip() {
        for raw in 0..=11 {
            assert_eq!(ErrorCode::from_raw(raw).map(ErrorCode::raw), Some(raw));
        }
        assert_eq!(ErrorCode::from_raw(12), None);
    }

    #[test]
    fn registers_fit_in_bar0_and_do_not_overlap() {
        let regs = [
            CONTROL, STATUS, CMD, DATA, RESULT_LO, RESULT_HI, DMA_SRC_LO, DMA_SRC_HI, DMA_DST_LO,
            DMA_DST_HI, DMA_LEN, DMA_FLAGS, ERROR_CODE,
        ];
        for (i, r) in regs.iter().enumerate() {
            assert_eq!(r % 4, 0);
            assert!(r + 4 <= REG_BAR_SIZE);
            assert!(!regs[i + 1..].contains(r));
        }
    }
}
