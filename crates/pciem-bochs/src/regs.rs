//! The adapter's identity, BAR layout and register numbers, as the Bochs
//! VBE ("DISPI") interface and QEMU's PCI std VGA define them.

/// PCI vendor ID (the Bochs/QEMU std VGA).
pub const VENDOR_ID: u16 = 0x1234;
/// PCI device ID.
pub const DEVICE_ID: u16 = 0x1111;
/// Subsystem vendor (Red Hat / Qumranet, as QEMU sets it).
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x1af4;
/// Subsystem device (QEMU).
pub const SUBSYSTEM_ID: u16 = 0x1100;
/// Revision 2: the QEMU extension registers are present (the driver only
/// looks for them from revision 2 on).
pub const REVISION: u8 = 2;
/// Class: display controller, VGA compatible.
pub const CLASS: (u8, u8, u8) = (0x03, 0x00, 0x00);

/// BAR0: video memory (prefetchable, directly mapped).
pub const VRAM_BAR: u8 = 0;
/// The default and largest video memory: 16 MiB.
pub const VRAM_SIZE: u64 = 16 << 20;
/// The least video memory the driver accepts (it refuses less than 4 MiB).
pub const VRAM_MIN: u64 = 4 << 20;
/// BAR2: the MMIO register window (trapped).
pub const MMIO_BAR: u8 = 2;
/// Size of the MMIO BAR.
pub const MMIO_SIZE: u64 = 0x1000;

/// The EDID blob at the start of the MMIO BAR.
pub const EDID_OFFSET: u64 = 0x000;
/// Room for the EDID blob (the driver refuses to read past it).
pub const EDID_SIZE: u64 = 0x400;
/// The VGA I/O ports 0x3c0..0x3e0, one byte each, at `0x400 + port - 0x3c0`.
pub const VGA_OFFSET: u64 = 0x400;
/// Size of the VGA port window.
pub const VGA_SIZE: u64 = 0x20;
/// The first VGA port of the window.
pub const VGA_PORT_BASE: u16 = 0x3c0;
/// The DISPI registers, 16 bits each, at `0x500 + (index << 1)`.
pub const DISPI_OFFSET: u64 = 0x500;
/// Size of the DISPI window (indexes 0..=0xa).
pub const DISPI_SIZE: u64 = 0x0b * 2;
/// The QEMU extension registers, 32 bits each.
pub const QEXT_OFFSET: u64 = 0x600;
/// Size of the QEMU extension window (what its SIZE register reads).
pub const QEXT_SIZE: u32 = 8;
/// QEMU extension register: the size of the extension window.
pub const QEXT_REG_SIZE: u64 = 0;
/// QEMU extension register: the framebuffer byte order.
pub const QEXT_REG_BYTEORDER: u64 = 4;
/// BYTEORDER value: little-endian framebuffer.
pub const QEXT_LITTLE_ENDIAN: u32 = 0x1e1e_1e1e;
/// BYTEORDER value: big-endian framebuffer.
pub const QEXT_BIG_ENDIAN: u32 = 0xbebe_bebe;

/// DISPI register indexes.
pub mod dispi {
    /// Interface version (`ID0`..`ID5`).
    pub const ID: u16 = 0x0;
    /// Horizontal resolution.
    pub const XRES: u16 = 0x1;
    /// Vertical resolution.
    pub const YRES: u16 = 0x2;
    /// Bits per pixel.
    pub const BPP: u16 = 0x3;
    /// Enable flags (see [`ENABLED`]).
    pub const ENABLE: u16 = 0x4;
    /// 64 KiB bank of the legacy window.
    pub const BANK: u16 = 0x5;
    /// Virtual width in pixels (the pitch).
    pub const VIRT_WIDTH: u16 = 0x6;
    /// Virtual height in lines (read-only: what fits in video memory).
    pub const VIRT_HEIGHT: u16 = 0x7;
    /// Horizontal offset of the visible area in the virtual screen.
    pub const X_OFFSET: u16 = 0x8;
    /// Vertical offset of the visible area (page flipping).
    pub const Y_OFFSET: u16 = 0x9;
    /// Video memory in 64 KiB units (read-only).
    pub const VIDEO_MEMORY_64K: u16 = 0xa;
    /// Number of registers.
    pub const COUNT: u16 = 0xb;

    /// The oldest interface version.
    pub const ID0: u16 = 0xb0c0;
    /// The version this adapter implements (what ID reads at reset).
    pub const ID5: u16 = 0xb0c5;

    /// ENABLE: the VBE mode is on.
    pub const ENABLED: u16 = 0x01;
    /// ENABLE: XRES/YRES/BPP read the maxima instead.
    pub const GETCAPS: u16 = 0x02;
    /// ENABLE: 8-bit DAC (palette entries are 8 bits, not 6).
    pub const DAC_8BIT: u16 = 0x20;
    /// ENABLE: the linear framebuffer is used.
    pub const LFB_ENABLED: u16 = 0x40;
    /// ENABLE: do not clear video memory when the mode is switched on.
    pub const NOCLEARMEM: u16 = 0x80;

    /// The largest horizontal resolution accepted.
    pub const MAX_XRES: u16 = 16000;
    /// The largest vertical resolution accepted.
    pub const MAX_YRES: u16 = 12000;
    /// The deepest mode.
    pub const MAX_BPP: u16 = 32;
}

/// VGA ports (as on the ISA bus; offset `port - 0x3c0` in the window).
pub mod vga {
    /// Attribute controller: index/data write (flip-flop), index read.
    pub const ATT_W: u16 = 0x3c0;
    /// Attribute controller: data read.
    pub const ATT_R: u16 = 0x3c1;
    /// Miscellaneous output: write.
    pub const MIS_W: u16 = 0x3c2;
    /// Sequencer index.
    pub const SEQ_I: u16 = 0x3c4;
    /// Sequencer data.
    pub const SEQ_D: u16 = 0x3c5;
    /// DAC read index (write) / DAC state (read).
    pub const PEL_IR: u16 = 0x3c7;
    /// DAC write index.
    pub const PEL_IW: u16 = 0x3c8;
    /// DAC data.
    pub const PEL_D: u16 = 0x3c9;
    /// Miscellaneous output: read.
    pub const MIS_R: u16 = 0x3cc;
    /// Graphics controller index.
    pub const GFX_I: u16 = 0x3ce;
    /// Graphics controller data.
    pub const GFX_D: u16 = 0x3cf;
    /// CRT controller index (colour).
    pub const CRT_IC: u16 = 0x3d4;
    /// CRT controller data (colour).
    pub const CRT_DC: u16 = 0x3d5;
    /// Input status 1 (colour): reading it resets the attribute flip-flop.
    pub const IS1_RC: u16 = 0x3da;
    /// Attribute index bit 5: palette address source. Clear, the screen
    /// is blanked (the driver's blank/unblank writes exactly this).
    pub const ATT_PAS: u8 = 0x20;
}
