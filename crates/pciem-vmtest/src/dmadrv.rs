//! The DMA test driver's buffers (`pciem_dmadrv.ko`) as the scenarios see
//! them, and small helpers for DMA checks.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::sysfs::read_hex;

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// The OS errno of a failed call, `None` on success.
pub fn errno<T>(r: &io::Result<T>) -> Option<i32> {
    r.as_ref().err().and_then(io::Error::raw_os_error)
}

/// One of the driver's buffers: its bus address and its CPU view.
pub struct Buf {
    /// `coherent`, `stream` or `prp`.
    pub name: &'static str,
    /// Bus address the driver got from the DMA API.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    file: File,
}

impl Buf {
    /// Opens buffer `name` of the device at sysfs directory `pdev`.
    pub fn open(pdev: &Path, name: &'static str) -> io::Result<Self> {
        let num = |attr: String| {
            read_hex(&pdev.join(&attr))
                .ok_or_else(|| io::Error::other(format!("{attr} unreadable")))
        };
        let addr = num(format!("{name}_addr"))?;
        let size = num(format!("{name}_size"))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(pdev.join(format!("dma_{name}")))?;
        Ok(Self {
            name,
            addr,
            size,
            file,
        })
    }

    /// The driver's CPU view of `len` bytes at `off`.
    pub fn cpu_read(&self, off: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0; len];
        self.file.read_exact_at(&mut v, off)?;
        Ok(v)
    }

    /// Writes `data` at `off` through the driver's CPU view.
    pub fn cpu_write(&self, off: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, off)
    }

    /// The little-endian 8-byte word at `off`.
    pub fn cpu_u64(&self, off: u64) -> io::Result<u64> {
        let v = self.cpu_read(off, 8)?;
        Ok(u64::from_le_bytes(v.try_into().expect("8 bytes")))
    }
}
