//! The controller's register file and BAR0 layout (NVMe 1.4, section 3.1).
//!
//! BAR0 is 16 KiB, 64-bit, in trap mode:
//!
//! | offset | contents |
//! |---|---|
//! | `0x0000..0x1000` | controller registers (CAP, VS, INTMS, INTMC, CC, CSTS, NSSR, AQA, ASQ, ACQ; the rest reads 0) |
//! | `0x1000..0x2000` | doorbells, stride 4 bytes (CAP.DSTRD = 0): SQ *y* tail at `0x1000 + 8y`, CQ *y* head at `0x1004 + 8y` |
//! | `0x2000..0x3000` | MSI-X table ([`MSIX_VECTORS`] entries) |
//! | `0x3000..0x4000` | MSI-X pending-bit array |
//!
//! Linux's nvme driver first maps `NVME_REG_DBS + 4096` bytes of BAR0 (the
//! registers and the first doorbell page), then remaps what its queues
//! need; both fit.

/// Size of BAR0.
pub const BAR0_SIZE: u64 = 16 * 1024;
/// Controller Capabilities (8 bytes).
pub const CAP: u64 = 0x00;
/// Version.
pub const VS: u64 = 0x08;
/// Interrupt Mask Set.
pub const INTMS: u64 = 0x0C;
/// Interrupt Mask Clear.
pub const INTMC: u64 = 0x10;
/// Controller Configuration.
pub const CC: u64 = 0x14;
/// Controller Status.
pub const CSTS: u64 = 0x1C;
/// NVM Subsystem Reset (not supported: CAP.NSSRS = 0; writes ignored).
pub const NSSR: u64 = 0x20;
/// Admin Queue Attributes.
pub const AQA: u64 = 0x24;
/// Admin Submission Queue base address (8 bytes).
pub const ASQ: u64 = 0x28;
/// Admin Completion Queue base address (8 bytes).
pub const ACQ: u64 = 0x30;
/// First byte after ACQ: CMBLOC, CMBSZ and the reserved rest read 0.
pub const REGS_END: u64 = 0x38;
/// First doorbell.
pub const DOORBELLS: u64 = 0x1000;
/// End of the doorbell page.
pub const DOORBELLS_END: u64 = 0x2000;
/// MSI-X table offset in BAR0.
pub const MSIX_TABLE: u64 = 0x2000;
/// MSI-X PBA offset in BAR0.
pub const MSIX_PBA: u64 = 0x3000;

/// Highest I/O queue identifier (queues 1..=this); the admin queue is 0.
pub const MAX_IO_QUEUES: u16 = 64;
/// MSI-X vectors: one per queue (admin included).
pub const MSIX_VECTORS: u32 = MAX_IO_QUEUES as u32 + 1;
/// MSI vectors (the capability's maximum).
pub const MSI_VECTORS: u32 = 32;
/// Maximum queue entries supported (CAP.MQES is this minus one).
pub const MAX_QUEUE_ENTRIES: u32 = 4096;
/// CAP.TO: worst-case time to become ready, in 500 ms units.
pub const CAP_TIMEOUT: u64 = 20;
/// The memory page size the model supports (CAP.MPSMIN = CAP.MPSMAX = 0).
pub const PAGE_SIZE: u64 = 4096;
/// Maximum Data Transfer Size as a power of two of [`PAGE_SIZE`]: 2^12 ×
/// 4 KiB = 16 MiB, the kernel module's limit for one DMA
/// ([`pciem_abi::PCIEM_DMA_MAX_LEN`]).
pub const MDTS: u8 = 12;
/// [`MDTS`] in bytes.
pub const MAX_TRANSFER: u64 = PAGE_SIZE << MDTS;
/// NVMe version 1.4.0.
pub const VERSION: u32 = 0x0001_0400;

/// CAP as the model reports it: MQES, CQR (contiguous queues required),
/// TO, DSTRD 0, NSSRS 0, CSS = NVM command set, MPSMIN = MPSMAX = 4 KiB.
pub const fn capabilities() -> u64 {
    (MAX_QUEUE_ENTRIES as u64 - 1) // MQES, zero-based
        | 1 << 16 // CQR
        | CAP_TIMEOUT << 24
        | 1 << 37 // CSS bit 0: NVM command set
}

/// CC.EN.
pub const CC_EN: u32 = 1 << 0;
/// CC.CSS, bits 6:4.
pub const fn cc_css(cc: u32) -> u32 {
    (cc >> 4) & 0x7
}
/// CC.MPS, bits 10:7: page size is 2^(12 + MPS).
pub const fn cc_mps(cc: u32) -> u32 {
    (cc >> 7) & 0xF
}
/// CC.AMS, bits 13:11.
pub const fn cc_ams(cc: u32) -> u32 {
    (cc >> 11) & 0x7
}
/// CC.SHN, bits 15:14.
pub const fn cc_shn(cc: u32) -> u32 {
    (cc >> 14) & 0x3
}
/// CC.IOSQES, bits 19:16.
pub const fn cc_iosqes(cc: u32) -> u32 {
    (cc >> 16) & 0xF
}
/// CC.IOCQES, bits 23:20.
pub const fn cc_iocqes(cc: u32) -> u32 {
    (cc >> 20) & 0xF
}

/// CSTS.RDY.
pub const CSTS_RDY: u32 = 1 << 0;
/// CSTS.CFS (controller fatal status).
pub const CSTS_CFS: u32 = 1 << 1;
/// CSTS.SHST mask (bits 3:2).
pub const CSTS_SHST_MASK: u32 = 0x3 << 2;
/// CSTS.SHST = 10b: shutdown processing complete.
pub const CSTS_SHST_COMPLETE: u32 = 0x2 << 2;

/// Which doorbell a BAR0 offset is: `(queue id, is the CQ head doorbell)`,
/// or `None` outside the doorbells or not on a 4-byte boundary.
pub const fn doorbell(offset: u64) -> Option<(u16, bool)> {
    if offset < DOORBELLS || offset >= DOORBELLS_END || offset % 4 != 0 {
        return None;
    }
    let idx = (offset - DOORBELLS) / 4;
    Some(((idx / 2) as u16, idx % 2 == 1))
}

/// BAR0 offset of queue `qid`'s SQ tail doorbell.
pub const fn sq_tail_doorbell(qid: u16) -> u64 {
    DOORBELLS + 8 * qid as u64
}

/// BAR0 offset of queue `qid`'s CQ head doorbell.
pub const fn cq_head_doorbell(qid: u16) -> u64 {
    DOORBELLS + 8 * qid as u64 + 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doorbell_offsets_round_trip() {
        assert_eq!(doorbell(sq_tail_doorbell(0)), Some((0, false)));
        assert_eq!(doorbell(cq_head_doorbell(0)), Some((0, true)));
        assert_eq!(doorbell(cq_head_doorbell(64)), Some((64, true)));
        assert_eq!(doorbell(0x1002), None);
        assert_eq!(doorbell(0xFFC), None);
        assert_eq!(doorbell(DOORBELLS_END), None);
    }

    #[test]
    fn cap_fields() {
        let cap = capabilities();
        assert_eq!(cap & 0xFFFF, 4095);
        assert_eq!((cap >> 16) & 1, 1);
        assert_eq!((cap >> 24) & 0xFF, CAP_TIMEOUT);
        assert_eq!((cap >> 32) & 0xF, 0, "DSTRD");
        assert_eq!((cap >> 37) & 0xFF, 1, "CSS");
        assert_eq!((cap >> 48) & 0xF, 0, "MPSMIN");
        assert_eq!(MAX_TRANSFER, pciem_abi::PCIEM_DMA_MAX_LEN);
    }
}
