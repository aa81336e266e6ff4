//! Log pages (NVMe 1.4, section 5.14.1): Error Information, SMART / Health
//! Information, Firmware Slot Information; and the counters behind them.

use std::collections::VecDeque;

use crate::config::NvmeConfig;
use crate::identify::{ELPE, WCTEMP};

/// Log identifier: Error Information.
pub const LID_ERROR: u8 = 0x01;
/// Log identifier: SMART / Health Information.
pub const LID_SMART: u8 = 0x02;
/// Log identifier: Firmware Slot Information.
pub const LID_FIRMWARE: u8 = 0x03;

/// Bytes of one Error Information entry.
pub const ERROR_ENTRY_SIZE: usize = 64;
/// Bytes of the SMART / Health log.
pub const SMART_SIZE: usize = 512;
/// Bytes of the Firmware Slot log.
pub const FIRMWARE_SIZE: usize = 512;

/// The reported composite temperature, kelvin (well below [`WCTEMP`]).
pub const TEMPERATURE: u16 = WCTEMP - 30;

/// Counters of the SMART / Health log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// 512-byte units read by host commands.
    pub sectors_read: u64,
    /// 512-byte units written by host commands.
    pub sectors_written: u64,
    /// Read commands completed.
    pub host_reads: u64,
    /// Write commands completed.
    pub host_writes: u64,
    /// Commands that failed on the backing store.
    pub media_errors: u64,
}

/// One Error Information entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorEntry {
    /// This error's number (1 for the first since the controller started).
    pub count: u64,
    /// Submission queue of the command.
    pub sqid: u16,
    /// Command identifier.
    pub cid: u16,
    /// Status field of the completion.
    pub status: u16,
    /// First LBA of the command (0 when it has none).
    pub lba: u64,
    /// Namespace of the command.
    pub nsid: u32,
}

/// The last `ELPE + 1` errors, newest first, and their count.
#[derive(Clone, Debug, Default)]
pub struct ErrorLog {
    count: u64,
    entries: VecDeque<ErrorEntry>,
}

impl ErrorLog {
    /// Record an error.
    pub fn record(&mut self, sqid: u16, cid: u16, status: u16, lba: u64, nsid: u32) {
        self.count += 1;
        self.entries.push_front(ErrorEntry {
            count: self.count,
            sqid,
            cid,
            status,
            lba,
            nsid,
        });
        self.entries.truncate(usize::from(ELPE) + 1);
    }

    /// Errors recorded in all.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The log page: `ELPE + 1` entries, newest first, unused ones zero.
    pub fn page(&self) -> Vec<u8> {
        let mut out = vec![0u8; ERROR_ENTRY_SIZE * (usize::from(ELPE) + 1)];
        for (e, chunk) in self
            .entries
            .iter()
            .zip(out.chunks_exact_mut(ERROR_ENTRY_SIZE))
        {
            chunk[0..8].copy_from_slice(&e.count.to_le_bytes());
            chunk[8..10].copy_from_slice(&e.sqid.to_le_bytes());
            chunk[10..12].copy_from_slice(&e.cid.to_le_bytes());
            // Status field with the phase bit position (bit 0) clear.
            chunk[12..14].copy_from_slice(&(e.status << 1).to_le_bytes());
            chunk[14..16].copy_from_slice(&0xFFFFu16.to_le_bytes()); // no parameter location
            chunk[16..24].copy_from_slice(&e.lba.to_le_bytes());
            chunk[24..28].copy_from_slice(&e.nsid.to_le_bytes());
        }
        out
    }
}

fn put_u128(page: &mut [u8], at: usize, v: u64) {
    page[at..at + 16].copy_from_slice(&u128::from(v).to_le_bytes());
}

/// The SMART / Health log page.
pub fn smart_page(h: &Health, errors: &ErrorLog) -> Vec<u8> {
    let mut p = vec![0u8; SMART_SIZE];
    p[0] = 0; // critical warning: none
    p[1..3].copy_from_slice(&TEMPERATURE.to_le_bytes());
    p[3] = 100; // available spare
    p[4] = 10; // available spare threshold
    p[5] = 0; // percentage used
              // Data units are thousands of 512-byte units, rounded up.
    put_u128(&mut p, 32, h.sectors_read.div_ceil(1000));
    put_u128(&mut p, 48, h.sectors_written.div_ceil(1000));
    put_u128(&mut p, 64, h.host_reads);
    put_u128(&mut p, 80, h.host_writes);
    put_u128(&mut p, 112, 1); // power cycles
    put_u128(&mut p, 160, h.media_errors);
    put_u128(&mut p, 176, errors.count());
    p
}

/// The Firmware Slot Information log page: slot 1 active, holding the
/// configured revision.
pub fn firmware_page(cfg: &NvmeConfig) -> Vec<u8> {
    let mut p = vec![0u8; FIRMWARE_SIZE];
    p[0] = 0x01; // AFI: slot 1 active
    let fr = &mut p[8..16];
    fr.fill(b' ');
    let n = cfg.firmware.len().min(8);
    fr[..n].copy_from_slice(&cfg.firmware.as_bytes()[..n]);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_log_keeps_the_newest() {
        let mut log = ErrorLog::default();
        for i in 0..6u16 {
            log.record(1, i, 0x4002, u64::from(i), 1);
        }
        let page = log.page();
        assert_eq!(page.len(), 256);
        assert_eq!(u64::from_le_bytes(page[0..8].try_into().unwrap()), 6);
        assert_eq!(u16::from_le_bytes([page[10], page[11]]), 5);
        assert_eq!(u64::from_le_bytes(page[192..200].try_into().unwrap()), 3);
    }

    #[test]
    fn smart_counts() {
        let h = Health {
            sectors_read: 1001,
            host_reads: 3,
            ..Health::default()
        };
        let p = smart_page(&h, &ErrorLog::default());
        assert_eq!(p[32], 2);
        assert_eq!(p[64], 3);
        assert_eq!(u16::from_le_bytes([p[1], p[2]]), TEMPERATURE);
        let fw = firmware_page(&NvmeConfig::default());
        assert_eq!(&fw[8..11], b"0.1");
    }
}
