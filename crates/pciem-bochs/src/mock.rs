//! A driver for the mock backend that programs the adapter the way Linux's
//! `bochs` driver does (probe, mode set, base address, blanking), plus
//! drawing into video memory and taking screenshots: what the tests and
//! `pciem-bochs --backend mock` run.

use pciem_backend_mock::{Harness, MockError};
use pciem_core::Host;

use crate::device::{Bochs, Display};
use crate::regs::dispi::*;
use crate::regs::*;
use crate::scanout::Frame;

/// What the driver's probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The DISPI ID register.
    pub id: u16,
    /// Video memory, from VIDEO_MEMORY_64K.
    pub vram: u64,
    /// The QEMU extension window's size register.
    pub qext_size: u32,
    /// The EDID header was valid.
    pub edid: bool,
}

/// The adapter on the mock backend, stepping (deterministic), with a
/// driver's-eye API.
pub struct MockDriver {
    h: Harness<Bochs>,
    display: Display,
}

impl MockDriver {
    /// Plugs `model` into a stepping harness.
    pub fn new(model: Bochs) -> Result<Self, MockError> {
        let display = model.display();
        Ok(Self {
            h: Harness::new(model)?,
            display,
        })
    }

    /// The harness (raw MMIO access).
    pub fn harness(&mut self) -> &mut Harness<Bochs> {
        &mut self.h
    }

    /// The model's display handle.
    pub fn display(&self) -> &Display {
        &self.display
    }

    /// Writes DISPI register `index`.
    pub fn dispi_write(&mut self, index: u16, value: u16) -> Result<(), MockError> {
        self.h.mmio_write(
            MMIO_BAR,
            DISPI_OFFSET + (u64::from(index) << 1),
            2,
            u64::from(value),
        )
    }

    /// Reads DISPI register `index`.
    pub fn dispi_read(&mut self, index: u16) -> Result<u16, MockError> {
        Ok(self
            .h
            .mmio_read(MMIO_BAR, DISPI_OFFSET + (u64::from(index) << 1), 2)? as u16)
    }

    fn vga_write(&mut self, port: u16, value: u8) -> Result<(), MockError> {
        self.h.mmio_write(
            MMIO_BAR,
            VGA_OFFSET + u64::from(port - VGA_PORT_BASE),
            1,
            u64::from(value),
        )
    }

    fn vga_read(&mut self, port: u16) -> Result<u8, MockError> {
        Ok(self
            .h
            .mmio_read(MMIO_BAR, VGA_OFFSET + u64::from(port - VGA_PORT_BASE), 1)? as u8)
    }

    /// The driver's probe: ID, video memory, the EDID header, the QEMU
    /// extension size, little-endian byte order.
    pub fn probe(&mut self) -> Result<Probe, MockError> {
        let id = self.dispi_read(ID)?;
        let vram = u64::from(self.dispi_read(VIDEO_MEMORY_64K)?) * (64 << 10);
        let mut header = [0u8; 8];
        for (i, b) in header.iter_mut().enumerate() {
            *b = self.h.mmio_read(MMIO_BAR, EDID_OFFSET + i as u64, 1)? as u8;
        }
        let qext_size = self.h.mmio_read(MMIO_BAR, QEXT_OFFSET + QEXT_REG_SIZE, 4)? as u32;
        self.set_big_endian(false)?;
        Ok(Probe {
            id,
            vram,
            qext_size,
            edid: header == crate::edid::HEADER,
        })
    }

    /// Reads the whole EDID block byte by byte, as `drm_edid` does.
    pub fn read_edid(&mut self) -> Result<Vec<u8>, MockError> {
        (0..crate::edid::EDID_LEN as u64)
            .map(|i| Ok(self.h.mmio_read(MMIO_BAR, EDID_OFFSET + i, 1)? as u8))
            .collect()
    }

    /// Sets the framebuffer byte order (QEMU extension register).
    pub fn set_big_endian(&mut self, big: bool) -> Result<(), MockError> {
        let v = if big {
            QEXT_BIG_ENDIAN
        } else {
            QEXT_LITTLE_ENDIAN
        };
        self.h
            .mmio_write(MMIO_BAR, QEXT_OFFSET + QEXT_REG_BYTEORDER, 4, u64::from(v))
    }

    /// Blanks or shows the picture (the driver's `bochs_hw_blank`).
    pub fn blank(&mut self, blank: bool) -> Result<(), MockError> {
        self.vga_write(vga::MIS_W, 0x01)?;
        self.vga_read(vga::IS1_RC)?;
        self.vga_write(vga::ATT_W, if blank { 0 } else { vga::ATT_PAS })
    }

    /// Sets a mode the way `bochs_hw_setmode` does, then reads back what
    /// the device made of it: (XRES, YRES, BPP).
    pub fn set_mode(&mut self, w: u16, h: u16, bpp: u16) -> Result<(u16, u16, u16), MockError> {
        let stride = u64::from(w) * u64::from(bpp.div_ceil(8)).max(1);
        let virt_height = (self.display.vram_size() / stride.max(1)).min(0xffff) as u16;
        self.blank(false)?;
        self.dispi_write(ENABLE, 0)?;
        self.dispi_write(BPP, bpp)?;
        self.dispi_write(XRES, w)?;
        self.dispi_write(YRES, h)?;
        self.dispi_write(BANK, 0)?;
        self.dispi_write(VIRT_WIDTH, w)?;
        self.dispi_write(VIRT_HEIGHT, virt_height)?;
        self.dispi_write(X_OFFSET, 0)?;
        self.dispi_write(Y_OFFSET, 0)?;
        self.dispi_write(ENABLE, ENABLED | LFB_ENABLED)?;
        Ok((
            self.dispi_read(XRES)?,
            self.dispi_read(YRES)?,
            self.dispi_read(BPP)?,
        ))
    }

    /// Points the scanout at byte `addr` of video memory with `pitch`
    /// bytes per line, as `bochs_hw_setbase` does for 32 bpp.
    pub fn set_base(&mut self, pitch: u32, addr: u64, bpp: u16) -> Result<(), MockError> {
        let bytes = u64::from(bpp.div_ceil(8)).max(1);
        let vy = addr / u64::from(pitch);
        let vx = (addr % u64::from(pitch)) / bytes;
        let vwidth = u64::from(pitch) / bytes;
        self.dispi_write(VIRT_WIDTH, vwidth as u16)?;
        self.dispi_write(X_OFFSET, vx as u16)?;
        self.dispi_write(Y_OFFSET, vy as u16)
    }

    /// Writes `data` into video memory at `offset` (a CPU store through
    /// the directly mapped BAR0: no trap, no event).
    pub fn draw(&mut self, offset: u64, data: &[u8]) -> Result<(), MockError> {
        self.h.bar_write(VRAM_BAR, offset, data)
    }

    /// What is on screen, after every pending event is handled.
    pub fn screenshot(&mut self) -> Result<Frame, MockError> {
        self.h.step()?;
        let host = self.h.host();
        Ok(self
            .display
            .scanout()
            .render(self.display.vram_size(), |off, buf| {
                host.bar_read(VRAM_BAR, off, buf)
            })?)
    }
}
