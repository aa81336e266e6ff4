//! Submission and completion queue entries (NVMe 1.4, sections 4.2, 4.6)
//! and the opcodes the model knows.

use crate::status::Status;

/// Bytes of a submission queue entry (CC.IOSQES = 6).
pub const SQE_SIZE: usize = 64;
/// Bytes of a completion queue entry (CC.IOCQES = 4).
pub const CQE_SIZE: usize = 16;

/// Admin opcodes.
pub mod admin {
    /// Delete I/O Submission Queue.
    pub const DELETE_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_SQ: u8 = 0x01;
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Delete I/O Completion Queue.
    pub const DELETE_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Get Features.
    pub const GET_FEATURES: u8 = 0x0A;
    /// Asynchronous Event Request.
    pub const ASYNC_EVENT_REQUEST: u8 = 0x0C;
    /// Keep Alive.
    pub const KEEP_ALIVE: u8 = 0x18;
    /// Vendor specific (PCIem): fault injection by hot-plug. CDW10: ms
    /// until the controller is surprise-removed ([`pciem_core::Host::surprise_remove`]);
    /// CDW11: ms after that until it is reinserted
    /// ([`pciem_core::Host::reinsert`]), 0 to stay removed. Completes at
    /// once; the removal comes from a timer.
    pub const PCIEM_HOTPLUG: u8 = 0xC1;
}

/// NVM command set opcodes.
pub mod nvm {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
    /// Write Zeroes.
    pub const WRITE_ZEROES: u8 = 0x08;
    /// Dataset Management.
    pub const DATASET_MANAGEMENT: u8 = 0x09;
}

/// One submission queue entry, decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Command {
    /// Opcode (CDW0 bits 7:0).
    pub opcode: u8,
    /// Fused operation (CDW0 bits 9:8).
    pub fuse: u8,
    /// PRP or SGL (CDW0 bits 15:14).
    pub psdt: u8,
    /// Command Identifier (CDW0 bits 31:16).
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Metadata Pointer.
    pub mptr: u64,
    /// PRP Entry 1.
    pub prp1: u64,
    /// PRP Entry 2.
    pub prp2: u64,
    /// Command Dwords 10 to 15.
    pub cdw: [u32; 6],
}

fn dword(b: &[u8; SQE_SIZE], i: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i * 4..i * 4 + 4]);
    u32::from_le_bytes(w)
}

fn qword(b: &[u8; SQE_SIZE], i: usize) -> u64 {
    u64::from(dword(b, i)) | u64::from(dword(b, i + 1)) << 32
}

impl Command {
    /// Decode 64 bytes of a submission queue.
    pub fn parse(b: &[u8; SQE_SIZE]) -> Self {
        let cdw0 = dword(b, 0);
        Command {
            opcode: cdw0 as u8,
            fuse: ((cdw0 >> 8) & 0x3) as u8,
            psdt: ((cdw0 >> 14) & 0x3) as u8,
            cid: (cdw0 >> 16) as u16,
            nsid: dword(b, 1),
            mptr: qword(b, 4),
            prp1: qword(b, 6),
            prp2: qword(b, 8),
            cdw: [
                dword(b, 10),
                dword(b, 11),
                dword(b, 12),
                dword(b, 13),
                dword(b, 14),
                dword(b, 15),
            ],
        }
    }

    /// Encode as 64 bytes of a submission queue (what a driver writes).
    pub fn to_bytes(&self) -> [u8; SQE_SIZE] {
        let mut b = [0u8; SQE_SIZE];
        let cdw0 = u32::from(self.opcode)
            | u32::from(self.fuse & 0x3) << 8
            | u32::from(self.psdt & 0x3) << 14
            | u32::from(self.cid) << 16;
        let mut put = |i: usize, v: u32| b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        put(0, cdw0);
        put(1, self.nsid);
        put(4, self.mptr as u32);
        put(5, (self.mptr >> 32) as u32);
        put(6, self.prp1 as u32);
        put(7, (self.prp1 >> 32) as u32);
        put(8, self.prp2 as u32);
        put(9, (self.prp2 >> 32) as u32);
        for (i, &v) in self.cdw.iter().enumerate() {
            put(10 + i, v);
        }
        b
    }

    /// Command Dword 10.
    pub fn cdw10(&self) -> u32 {
        self.cdw[0]
    }
    /// Command Dword 11.
    pub fn cdw11(&self) -> u32 {
        self.cdw[1]
    }
    /// Command Dword 12.
    pub fn cdw12(&self) -> u32 {
        self.cdw[2]
    }
    /// Command Dword 13.
    pub fn cdw13(&self) -> u32 {
        self.cdw[3]
    }
}

/// One completion queue entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Completion {
    /// Command specific result (DW0).
    pub result: u32,
    /// SQ head pointer after the command was consumed.
    pub sq_head: u16,
    /// The submission queue the command came from.
    pub sq_id: u16,
    /// The command's identifier.
    pub cid: u16,
    /// The phase tag.
    pub phase: bool,
    /// The status.
    pub status: Status,
}

impl Completion {
    /// Encode as the 16 bytes the controller writes.
    pub fn to_bytes(&self) -> [u8; CQE_SIZE] {
        let mut b = [0u8; CQE_SIZE];
        b[0..4].copy_from_slice(&self.result.to_le_bytes());
        let dw2 = u32::from(self.sq_head) | u32::from(self.sq_id) << 16;
        b[8..12].copy_from_slice(&dw2.to_le_bytes());
        let dw3 = u32::from(self.cid)
            | u32::from(self.phase) << 16
            | u32::from(self.status.field()) << 17;
        b[12..16].copy_from_slice(&dw3.to_le_bytes());
        b
    }

    /// Decode 16 bytes of a completion queue (what a driver reads).
    pub fn parse(b: &[u8; CQE_SIZE]) -> Self {
        let d = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let dw2 = d(8);
        let dw3 = d(12);
        Completion {
            result: d(0),
            sq_head: dw2 as u16,
            sq_id: (dw2 >> 16) as u16,
            cid: dw3 as u16,
            phase: dw3 & (1 << 16) != 0,
            status: Status::from_field((dw3 >> 17) as u16),
        }
    }

    /// Whether the Do Not Retry bit would be set.
    pub fn dnr(&self) -> bool {
        self.status.field() & (1 << 14) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqe_round_trip() {
        let c = Command {
            opcode: 0x02,
            fuse: 0,
            psdt: 0,
            cid: 0xBEEF,
            nsid: 1,
            mptr: 0x1122_3344_5566_7788,
            prp1: 0x1_0000_1000,
            prp2: 0x2_0000_0000,
            cdw: [1, 2, 3, 4, 5, 6],
        };
        assert_eq!(Command::parse(&c.to_bytes()), c);
    }

    #[test]
    fn cqe_round_trip() {
        let c = Completion {
            result: 7,
            sq_head: 9,
            sq_id: 3,
            cid: 0x1234,
            phase: true,
            status: Status::LBA_OUT_OF_RANGE,
        };
        let p = Completion::parse(&c.to_bytes());
        assert_eq!(p, c);
        assert!(p.dnr());
    }
}
