//! The adapter as a [`Device`]: configuration space, the trapped MMIO BAR
//! and its register windows, and a [`Display`] handle through which another
//! thread sees what is on screen.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};

use pciem_core::config::Bar;
use pciem_core::{
    AccessMap, BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, MmioRead,
    MmioWrite, ResetKind, TrapPolicy, Watch,
};

use crate::dispi::{Dispi, DispiEffect};
use crate::edid;
use crate::regs::*;
use crate::scanout::{Mode, Scanout};
use crate::vga::Vga;

/// Why a model cannot be built as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BochsError {
    /// Video memory must be a power of two from 4 to 256 MiB (the driver
    /// refuses less than 4 MiB; QEMU allows at most 256).
    #[error("video memory of {0} bytes: must be a power of two from 4 MiB to 256 MiB")]
    VramSize(u64),
}

/// The register state the event thread changes and the screenshot
/// thread reads.
#[derive(Debug)]
struct Registers {
    dispi: Dispi,
    vga: Vga,
    big_endian: bool,
    /// Page flips (visible start changes within one mode) so far.
    flips: u64,
    /// Mode changes so far.
    modes: u64,
}

impl Registers {
    fn new(vram_size: u64) -> Self {
        Self {
            dispi: Dispi::new(vram_size),
            vga: Vga::new(),
            big_endian: false,
            flips: 0,
            modes: 0,
        }
    }

    fn scanout(&self) -> Scanout {
        Scanout::from_registers(&self.dispi, &self.vga, self.big_endian)
    }
}

/// A view of the adapter's display for other threads: the current
/// scanout and counters. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Display {
    regs: Arc<Mutex<Registers>>,
    vram_size: u64,
}

impl Display {
    fn lock(&self) -> MutexGuard<'_, Registers> {
        // A panic while holding the lock leaves plain data behind: still
        // the best description of the screen.
        self.regs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is on screen now.
    pub fn scanout(&self) -> Scanout {
        self.lock().scanout()
    }

    /// Video memory size in bytes.
    pub fn vram_size(&self) -> u64 {
        self.vram_size
    }

    /// Page flips seen (the visible start moved while the mode stayed).
    pub fn flips(&self) -> u64 {
        self.lock().flips
    }

    /// Mode changes seen.
    pub fn mode_changes(&self) -> u64 {
        self.lock().modes
    }
}

/// The Bochs/QEMU std VGA adapter.
#[derive(Debug)]
pub struct Bochs {
    display: Display,
    read_timeout_us: Option<u32>,
    modes: Option<Sender<Mode>>,
    /// The mode last reported.
    last_mode: Mode,
    /// The visible start last seen (a change within a mode is a flip).
    prev_start: u64,
}

impl Default for Bochs {
    fn default() -> Self {
        Self::new()
    }
}

impl Bochs {
    /// An adapter with 16 MiB of video memory.
    pub fn new() -> Self {
        Self::build(VRAM_SIZE)
    }

    /// An adapter with `vram_size` bytes of video memory.
    pub fn with_vram(vram_size: u64) -> Result<Self, BochsError> {
        if !vram_size.is_power_of_two() || !(VRAM_MIN..=256 << 20).contains(&vram_size) {
            return Err(BochsError::VramSize(vram_size));
        }
        Ok(Self::build(vram_size))
    }

    fn build(vram_size: u64) -> Self {
        let regs = Registers::new(vram_size);
        let last_mode = regs.scanout().mode();
        Self {
            display: Display {
                regs: Arc::new(Mutex::new(regs)),
                vram_size,
            },
            read_timeout_us: None,
            modes: None,
            last_mode,
            prev_start: 0,
        }
    }

    /// Sends every mode change (enable, resolution, depth, pitch, byte
    /// order, blanking) to `tx`; page flips are only counted.
    pub fn report_modes(mut self, tx: Sender<Mode>) -> Self {
        self.modes = Some(tx);
        self
    }

    /// Sets the read timeout of the model-answered registers (the
    /// kernel's default is 10 ms).
    pub fn read_timeout_us(mut self, us: u32) -> Self {
        self.read_timeout_us = Some(us);
        self
    }

    /// The display handle (for screenshots from another thread).
    pub fn display(&self) -> Display {
        self.display.clone()
    }

    fn builder(&self) -> ConfigBuilder {
        let b = ConfigBuilder::new(VENDOR_ID, DEVICE_ID)
            .subsystem(SUBSYSTEM_VENDOR_ID, SUBSYSTEM_ID)
            .revision(REVISION)
            .class(CLASS.0, CLASS.1, CLASS.2)
            .bar(
                VRAM_BAR,
                Bar::memory32(self.display.vram_size).prefetchable(),
            )
            .bar(MMIO_BAR, Bar::memory32(MMIO_SIZE))
            .trap_bar(MMIO_BAR)
            // The EDID: read from the BAR's backing, which the model fills;
            // driver stores reach the model but are not stored (read-only).
            .trap_range(MMIO_BAR, EDID_OFFSET, EDID_SIZE, TrapPolicy::DOORBELL)
            // VGA ports, DISPI and QEMU extension registers, and the unused
            // rest: every read answered by the model, no store kept.
            .trap_range(
                MMIO_BAR,
                VGA_OFFSET,
                MMIO_SIZE - VGA_OFFSET,
                TrapPolicy::MODEL,
            );
        match self.read_timeout_us {
            Some(us) => b.read_timeout_us(us),
            None => b,
        }
    }

    fn regs(&self) -> MutexGuard<'_, Registers> {
        self.display.lock()
    }

    /// Reports a mode change or counts a flip after a register write.
    fn after_write(&mut self) {
        let scanout = self.regs().scanout();
        let mode = scanout.mode();
        if mode != self.last_mode {
            self.regs().modes += 1;
            self.last_mode = mode;
            self.prev_start = scanout.start;
            if let Some(tx) = &self.modes {
                // A gone receiver only means nobody listens any more.
                let _ = tx.send(mode);
            }
        } else if mode.enabled && scanout.start != self.prev_start {
            self.regs().flips += 1;
            self.prev_start = scanout.start;
        }
    }

    /// Writes the EDID into the backing (the driver reads it from there).
    fn load_edid(&self, host: &dyn Host) -> Result<(), HostError> {
        host.bar_write(MMIO_BAR, EDID_OFFSET, &edid::block())
    }

    /// Clears video memory `0..len` (cut to its size).
    fn clear_vram(&self, host: &dyn Host, len: u64) -> Result<(), HostError> {
        let len = len.min(self.display.vram_size);
        let zeros = vec![0u8; 64 << 10];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(zeros.len() as u64);
            host.bar_write(VRAM_BAR, at, &zeros[..n as usize])?;
            at += n;
        }
        Ok(())
    }

    /// One register unit's value as the driver reads it.
    fn read_unit(&self, offset: u64) -> u64 {
        let mut r = self.regs();
        match offset {
            o if (VGA_OFFSET..VGA_OFFSET + VGA_SIZE).contains(&o) => {
                u64::from(r.vga.read(VGA_PORT_BASE + (o - VGA_OFFSET) as u16))
            }
            o if (DISPI_OFFSET..DISPI_OFFSET + DISPI_SIZE).contains(&o) => {
                u64::from(r.dispi.read(((o - DISPI_OFFSET) / 2) as u16))
            }
            o if o == QEXT_OFFSET + QEXT_REG_SIZE => u64::from(QEXT_SIZE),
            o if o == QEXT_OFFSET + QEXT_REG_BYTEORDER => u64::from(if r.big_endian {
                QEXT_BIG_ENDIAN
            } else {
                QEXT_LITTLE_ENDIAN
            }),
            _ => 0,
        }
    }
}

/// The register unit (offset and width) the byte at `offset` belongs to:
/// VGA ports are bytes, DISPI registers 16 bits, QEMU extension registers
/// and everything else 32 bits.
fn unit_of(offset: u64) -> (u64, u64) {
    if (VGA_OFFSET..VGA_OFFSET + VGA_SIZE).contains(&offset) {
        (offset, 1)
    } else if (DISPI_OFFSET..DISPI_OFFSET + DISPI_SIZE).contains(&offset) {
        (offset & !1, 2)
    } else {
        (offset & !3, 4)
    }
}

/// The units an access of `width` bytes at `offset` touches, in order.
fn units(offset: u64, width: u8) -> Vec<(u64, u64)> {
    let end = offset + u64::from(width);
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut at = offset;
    while at < end {
        let u = unit_of(at);
        out.push(u);
        at = u.0 + u.1;
    }
    out
}

impl Device for Bochs {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        self.builder().build()
    }

    fn access_map(&self) -> Result<AccessMap, BuildError> {
        self.builder().access_map()
    }

    fn watches(&self) -> &[Watch] {
        &[]
    }

    fn start(&mut self, host: &dyn Host) -> Result<(), HostError> {
        self.load_edid(host)
    }

    fn mmio_read(&mut self, host: &dyn Host, read: MmioRead) -> Result<u64, HostError> {
        if read.bar != MMIO_BAR {
            let mut b = [0u8; 8];
            let n = usize::from(read.width).min(8);
            host.bar_read(read.bar, read.offset, &mut b[..n])?;
            return Ok(u64::from_le_bytes(b));
        }
        let mut value = 0u64;
        for (uoff, width) in units(read.offset, read.width) {
            let v = self.read_unit(uoff);
            // Place the unit's bytes that fall inside the access.
            for i in 0..width {
                let at = uoff + i;
                if at >= read.offset && at < read.offset + u64::from(read.width) {
                    let byte = (v >> (8 * i)) & 0xff;
                    value |= byte << (8 * (at - read.offset));
                }
            }
        }
        Ok(read.truncate(value))
    }

    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        if w.bar != MMIO_BAR {
            return Ok(());
        }
        let mut clear = None;
        for (uoff, width) in units(w.offset, w.width) {
            let current = self.read_unit_stored(uoff);
            let Some(v) = w.apply_to(uoff, width as u8, current) else {
                continue;
            };
            let mut r = self.regs();
            match uoff {
                o if (VGA_OFFSET..VGA_OFFSET + VGA_SIZE).contains(&o) => {
                    r.vga
                        .write(VGA_PORT_BASE + (o - VGA_OFFSET) as u16, v as u8);
                }
                o if (DISPI_OFFSET..DISPI_OFFSET + DISPI_SIZE).contains(&o) => {
                    let index = ((o - DISPI_OFFSET) / 2) as u16;
                    if let DispiEffect::ClearVram { len } = r.dispi.write(index, v as u16) {
                        clear = Some(len);
                    }
                }
                o if o == QEXT_OFFSET + QEXT_REG_BYTEORDER => match v as u32 {
                    QEXT_BIG_ENDIAN => r.big_endian = true,
                    QEXT_LITTLE_ENDIAN => r.big_endian = false,
                    _ => {}
                },
                // The EDID and everything unassigned ignore stores.
                _ => {}
            }
            drop(r);
            self.after_write();
        }
        match clear {
            Some(len) => self.clear_vram(host, len),
            None => Ok(()),
        }
    }

    fn reset(&mut self, host: &dyn Host, _kind: ResetKind) -> Result<(), HostError> {
        *self.regs() = Registers::new(self.display.vram_size);
        self.after_write();
        self.load_edid(host)
    }
}

impl Bochs {
    /// A unit's stored value, without read side effects (what a partial
    /// store merges with).
    fn read_unit_stored(&self, offset: u64) -> u64 {
        let r = self.regs();
        if (DISPI_OFFSET..DISPI_OFFSET + DISPI_SIZE).contains(&offset) {
            return u64::from(r.dispi.reg(((offset - DISPI_OFFSET) / 2) as u16));
        }
        if offset == QEXT_OFFSET + QEXT_REG_BYTEORDER {
            return u64::from(if r.big_endian {
                QEXT_BIG_ENDIAN
            } else {
                QEXT_LITTLE_ENDIAN
            });
        }
        0
    }
}
