//! Identify data structures (NVMe 1.4, section 5.15.2): the controller,
//! the namespace, the active namespace list, the namespace identification
//! descriptors.

use crate::config::NvmeConfig;
use crate::regs;

/// Bytes of every Identify data structure.
pub const IDENTIFY_SIZE: usize = 4096;
/// The one namespace's identifier.
pub const NSID: u32 = 1;
/// Outstanding Asynchronous Event Requests allowed, minus one (AERL).
pub const AERL: u8 = 3;
/// Outstanding Abort commands allowed, minus one (ACL).
pub const ACL: u8 = 3;
/// Error log entries kept, minus one (ELPE).
pub const ELPE: u8 = 3;
/// Warning composite temperature threshold, kelvin.
pub const WCTEMP: u16 = 343;
/// Critical composite temperature threshold, kelvin.
pub const CCTEMP: u16 = 373;
/// ONCS: Dataset Management (bit 2) and Write Zeroes (bit 3).
pub const ONCS: u16 = 1 << 2 | 1 << 3;

struct Page([u8; IDENTIFY_SIZE]);

impl Page {
    fn new() -> Self {
        Page([0; IDENTIFY_SIZE])
    }
    fn u8(&mut self, at: usize, v: u8) {
        self.0[at] = v;
    }
    fn u16(&mut self, at: usize, v: u16) {
        self.0[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, at: usize, v: u64) {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, at: usize, v: &[u8]) {
        self.0[at..at + v.len()].copy_from_slice(v);
    }
    /// An ASCII field padded with spaces, as Identify's strings are.
    fn text(&mut self, at: usize, len: usize, s: &str) {
        let field = &mut self.0[at..at + len];
        field.fill(b' ');
        let n = s.len().min(len);
        field[..n].copy_from_slice(&s.as_bytes()[..n]);
    }
}

/// A stable 128-bit identifier derived from the serial number (FNV-1a
/// over the serial, twice with different seeds): the namespace's NGUID and
/// UUID, the same on every start with the same serial.
pub fn namespace_guid(cfg: &NvmeConfig) -> [u8; 16] {
    let fnv = |seed: u64| {
        cfg.serial
            .bytes()
            .chain(cfg.model.bytes())
            .fold(seed, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    out[8..].copy_from_slice(&fnv(0x8422_2325_cbf2_9ce4).to_be_bytes());
    // An RFC 4122 variant-1, version-4 shaped UUID.
    out[6] = (out[6] & 0x0f) | 0x40;
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}

/// Identify Controller (CNS 01h).
pub fn controller(cfg: &NvmeConfig) -> [u8; IDENTIFY_SIZE] {
    let mut p = Page::new();
    p.u16(0, cfg.vendor_id); // VID
    p.u16(2, cfg.subsystem_vendor_id); // SSVID
    p.text(4, 20, &cfg.serial); // SN
    p.text(24, 40, &cfg.model); // MN
    p.text(64, 8, &cfg.firmware); // FR
    p.u8(72, 0); // RAB
    p.bytes(73, &[0x00, 0x00, 0x00]); // IEEE OUI: none
    p.u8(76, 0); // CMIC: one port, one controller
    p.u8(77, regs::MDTS); // MDTS
    p.u16(78, 1); // CNTLID
    p.u32(80, regs::VERSION); // VER
    p.u32(92, 0); // OAES: no notices
    p.u8(111, 1); // CNTRLTYPE: I/O controller
    p.u16(256, 0); // OACS: no optional admin commands
    p.u8(258, ACL); // ACL
    p.u8(259, AERL); // AERL
    p.u8(260, 0x03); // FRMW: slot 1 read-only, one slot
    p.u8(261, 0x04); // LPA: extended Get Log Page data (offsets)
    p.u8(262, ELPE); // ELPE
    p.u8(263, 0); // NPSS: one power state
    p.u16(266, WCTEMP); // WCTEMP
    p.u16(268, CCTEMP); // CCTEMP
    p.u16(320, 1); // KAS: 100 ms granularity
    p.u8(512, 0x66); // SQES: 64 bytes
    p.u8(513, 0x44); // CQES: 16 bytes
    p.u32(516, 1); // NN
    p.u16(520, ONCS); // ONCS
    p.u8(525, 0x07); // VWC: present; Flush accepts the broadcast NSID
    p.u32(536, 0); // SGLS: PRPs only
    let nqn = format!("nqn.2024-01.io.pciem:nvme:{}", cfg.serial);
    p.bytes(768, nqn.as_bytes()); // SUBNQN (at most 44 + 20 bytes of 256)
                                  // Power state 0: 25 W, no entry or exit latency.
    p.u16(2048, 2500);
    p.0
}

/// Identify Namespace (CNS 00h) of the one namespace.
pub fn namespace(cfg: &NvmeConfig) -> [u8; IDENTIFY_SIZE] {
    let mut p = Page::new();
    let blocks = cfg.blocks();
    p.u64(0, blocks); // NSZE
    p.u64(8, blocks); // NCAP
    p.u64(16, blocks); // NUSE
    p.u8(24, 0); // NSFEAT
    p.u8(25, 0); // NLBAF: one format
    p.u8(26, 0); // FLBAS: format 0, no metadata
    p.u8(27, 0); // MC
    p.u8(28, 0); // DPC
    p.u8(29, 0); // DPS
    p.u8(30, 0); // NMIC
    p.u8(31, 0); // RESCAP
    p.u8(32, 0); // FPI
                 // DLFEAT: deallocated blocks read as zeros (001b); Write Zeroes may
                 // deallocate (bit 3).
    p.u8(33, 0x01 | 0x08);
    p.bytes(104, &namespace_guid(cfg)); // NGUID
                                        // LBA format 0: no metadata, LBADS, relative performance best.
    p.u32(128, cfg.lba_size.shift() << 16);
    p.0
}

/// Active Namespace ID list (CNS 02h): the namespaces above `after`.
pub fn active_namespaces(after: u32) -> [u8; IDENTIFY_SIZE] {
    let mut p = Page::new();
    if after < NSID {
        p.u32(0, NSID);
    }
    p.0
}

/// Namespace Identification Descriptor list (CNS 03h): the NGUID and a
/// UUID.
pub fn namespace_descriptors(cfg: &NvmeConfig) -> [u8; IDENTIFY_SIZE] {
    let mut p = Page::new();
    let guid = namespace_guid(cfg);
    // NIDT 2 (NGUID), NIDL 16.
    p.bytes(0, &[2, 16, 0, 0]);
    p.bytes(4, &guid);
    // NIDT 3 (UUID), NIDL 16: the same bytes, read as a UUID.
    p.bytes(20, &[3, 16, 0, 0]);
    p.bytes(24, &guid);
    p.0
}

/// The NVM command set's I/O Command Set specific Identify Controller
/// (CNS 06h, CSI 0): no limits beyond MDTS (all fields 0).
pub fn nvm_controller() -> [u8; IDENTIFY_SIZE] {
    [0; IDENTIFY_SIZE]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_fields() {
        let cfg = NvmeConfig {
            serial: "SER123".into(),
            model: "Model X".into(),
            ..NvmeConfig::default()
        };
        let id = controller(&cfg);
        assert_eq!(&id[4..10], b"SER123");
        assert!(id[10..24].iter().all(|&b| b == b' '));
        assert_eq!(&id[24..31], b"Model X");
        assert_eq!(id[77], regs::MDTS);
        assert_eq!(u16::from_le_bytes([id[520], id[521]]), ONCS);
        assert_eq!(id[525] & 1, 1);
        assert!(id[768..].starts_with(b"nqn.2024-01.io.pciem:nvme:SER123"));
    }

    #[test]
    fn namespace_fields() {
        let cfg = NvmeConfig {
            size: 1 << 30,
            lba_size: crate::config::LbaSize::B4096,
            ..NvmeConfig::default()
        };
        let ns = namespace(&cfg);
        assert_eq!(u64::from_le_bytes(ns[0..8].try_into().unwrap()), 1 << 18);
        assert_eq!(ns[128 + 2], 12);
        assert_eq!(active_namespaces(0)[0..4], [1, 0, 0, 0]);
        assert_eq!(active_namespaces(1)[0..4], [0, 0, 0, 0]);
        let g = namespace_guid(&cfg);
        assert_eq!(g, namespace_guid(&cfg.clone()));
        assert_ne!(g, [0; 16]);
    }
}
