//! ProtoPCIem's configuration space, built with pciem-core.

use pciem_core::config::{Bar, MsiCap};
use pciem_core::{BuildError, ConfigBuilder, ConfigSpace};

use crate::regs::{FB_BAR, FB_BAR_SIZE, REG_BAR, REG_BAR_SIZE};

/// PCI vendor ID.
pub const VENDOR_ID: u16 = 0x1F0C;
/// PCI device ID.
pub const DEVICE_ID: u16 = 0x0001;
/// Class code: base 0x0B (processor), subclass 0x00, prog-if 0x00.
pub const CLASS: (u8, u8, u8) = (0x0B, 0x00, 0x00);

/// The builder for the configuration space: vendor 0x1F0C device 0x0001,
/// class 0x0B0000, BAR0 64 KiB 64-bit, BAR2 1 MiB 64-bit prefetchable, MSI
/// with one 64-bit maskable vector.
pub fn builder() -> ConfigBuilder {
    ConfigBuilder::new(VENDOR_ID, DEVICE_ID)
        .class(CLASS.0, CLASS.1, CLASS.2)
        .bar(REG_BAR, Bar::memory64(REG_BAR_SIZE))
        .bar(FB_BAR, Bar::memory64(FB_BAR_SIZE).prefetchable())
        .msi(MsiCap::new(1))
}

/// The built configuration space.
pub fn config_space() -> Result<ConfigSpace, BuildError> {
    builder().build()
}
