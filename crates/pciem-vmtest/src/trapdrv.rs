//! Driving `pciem_trapdrv.ko` (1f0c:7e56) and reading trap-mode counters:
//! the Rust mirror of the driver's command set, byte pattern and hash.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::sysfs::{parse_num, read_trim};

/// Byte `i` of the `toio` pattern of `seed`: the low byte of splitmix64's
/// finaliser of `seed + (i + 1) * 0x9e3779b97f4a7c15` (as the driver's
/// `trapdrv_pattern`).
pub fn pattern(seed: u64, i: u64) -> u8 {
    let mut x = seed.wrapping_add((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x as u8
}

/// `len` bytes of the pattern of `seed`.
pub fn pattern_bytes(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern(seed, i)).collect()
}

/// 64-bit FNV-1a of `bytes` (the driver's `fromio` result).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The test driver bound to one device.
#[derive(Clone, Debug)]
pub struct TrapDrv {
    dev: PathBuf,
}

impl TrapDrv {
    /// The driver's attributes on the PCI device at sysfs path `dev`.
    pub fn new(dev: &Path) -> Self {
        Self {
            dev: dev.to_path_buf(),
        }
    }

    /// The sysfs directory of the device.
    pub fn path(&self) -> &Path {
        &self.dev
    }

    /// Runs one command line; returns its result (the `cmd` read-back).
    pub fn cmd(&self, line: &str) -> io::Result<u64> {
        fs::write(self.dev.join("cmd"), line)?;
        parse_num(&read_trim(&self.dev.join("cmd"))?)
            .ok_or_else(|| io::Error::other("unparsable cmd result"))
    }

    /// Runs one command line without reading the result back.
    pub fn cmd_only(&self, line: &str) -> io::Result<()> {
        fs::write(self.dev.join("cmd"), line)
    }

    /// What probe() read at BAR0+0x0.
    pub fn probe_value(&self) -> Option<u64> {
        parse_num(&read_trim(&self.dev.join("probe_value")).ok()?)
    }

    /// seqstore read-backs that differed from the value stored.
    pub fn seq_errors(&self) -> Option<u64> {
        parse_num(&read_trim(&self.dev.join("seq_errors")).ok()?)
    }
}

/// The `pciem_trap` counters of a PCIem device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapStats {
    /// Faults handled on the device's trapped mappings.
    pub faults: u64,
    /// BAR loads emulated.
    pub loads: u64,
    /// BAR stores emulated.
    pub stores: u64,
    /// Loads answered (or timed out) by the model.
    pub model_reads: u64,
    /// Model-answered loads that completed all-ones.
    pub read_timeouts: u64,
    /// Instructions the emulator refused.
    pub undecodable: u64,
    /// Mappings left untrapped.
    pub untrapped: u64,
}

impl TrapStats {
    /// Parses the `pciem_trap` attribute of the device at `dev`.
    pub fn read(dev: &Path) -> Option<Self> {
        let text = fs::read_to_string(dev.join("pciem_trap")).ok()?;
        let mut s = Self::default();
        let mut seen = 0;
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(k), Some(v)) = (it.next(), it.next()) else {
                continue;
            };
            let v: u64 = v.parse().ok()?;
            let field = match k {
                "faults" => &mut s.faults,
                "loads" => &mut s.loads,
                "stores" => &mut s.stores,
                "model_reads" => &mut s.model_reads,
                "read_timeouts" => &mut s.read_timeouts,
                "undecodable" => &mut s.undecodable,
                "untrapped" => &mut s.untrapped,
                _ => continue,
            };
            *field = v;
            seen += 1;
        }
        (seen == 7).then_some(s)
    }

    /// `self - before`, field by field (saturating).
    pub fn since(&self, before: &Self) -> Self {
        Self {
            faults: self.faults.saturating_sub(before.faults),
            loads: self.loads.saturating_sub(before.loads),
            stores: self.stores.saturating_sub(before.stores),
            model_reads: self.model_reads.saturating_sub(before.model_reads),
            read_timeouts: self.read_timeouts.saturating_sub(before.read_timeouts),
            undecodable: self.undecodable.saturating_sub(before.undecodable),
            untrapped: self.untrapped.saturating_sub(before.untrapped),
        }
    }
}

/// Size of BAR0 of the trap test device.
pub const TRAP_BAR0_SIZE: u64 = 16 << 10;

impl crate::Dev {
    /// The trap test device (1f0c:7e56): BAR0 16 KiB, 32-bit, in trap mode;
    /// nothing else. Not registered; ranges may still be added.
    pub fn describe_trap_device(&self) -> io::Result<()> {
        self.create()?;
        self.add_bar(0, TRAP_BAR0_SIZE, pciem_abi::PCIEM_BAR_MEM_TYPE_32)?;
        self.set_identity(crate::TEST_VENDOR, crate::TEST_DEVICE_TRAP, 0x0b_40_00)?;
        self.set_bar_mode(0, pciem_abi::PCIEM_BAR_MODE_TRAP)
    }
}

/// One event, short: `W 0x400/4=0x11` (store), `R 0x0/4 id=0x41` (waited
/// read), `r 0x300/4=0x5` (posted read), `E 0x600/16 flags=1 ..`.
pub fn show(e: &pciem_abi::pciem_event) -> String {
    match e.r#type {
        pciem_abi::PCIEM_EVENT_MMIO_WRITE => {
            format!("W {:#x}/{}={:#x}", e.offset, e.size, e.data)
        }
        pciem_abi::PCIEM_EVENT_MMIO_READ if e.flags & pciem_abi::PCIEM_EVENT_FLAG_POSTED != 0 => {
            format!("r {:#x}/{}={:#x}", e.offset, e.size, e.data)
        }
        pciem_abi::PCIEM_EVENT_MMIO_READ => format!("R {:#x}/{} id={:#x}", e.offset, e.size, e.id),
        pciem_abi::PCIEM_EVENT_ERROR => format!(
            "E {:#x}/{} flags={} data={:#x} id={:#x}",
            e.offset, e.size, e.flags, e.data, e.id
        ),
        t => format!("type {t} {:#x}/{} data={:#x}", e.offset, e.size, e.data),
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only touch the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Waits up to `timeout_ms` for the eventfd `fd` to be readable, then
/// clears it.
pub fn wait_eventfd(fd: std::os::fd::RawFd, timeout_ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    if unsafe { libc::poll(&mut p, 1, timeout_ms) } > 0 {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from a non-blocking eventfd.
        unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn pattern_is_splitmix64() {
        // splitmix64 seeded with 0: first output 0xe220a8397b1dcdaf.
        assert_eq!(pattern(0, 0), 0xaf);
        assert_ne!(pattern_bytes(1, 64), pattern_bytes(2, 64));
    }
}
