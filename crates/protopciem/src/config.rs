//! ProtoPCIem's configuration space.
//!
//! Stated with pciem-core's [`ConfigBuilder`], which lays out the header,
//! the BARs and the MSI capability with their access masks.

use pciem_core::config::{Bar, MsiCap};
use pciem_core::{BuildError, ConfigBuilder, ConfigSpace};

use crate::regs::{FB_BAR, FB_BAR_SIZE, REG_BAR, REG_BAR_SIZE};

/// PCI vendor ID.
pub const VENDOR_ID: u16 = 0x1F0C;
/// PCI device ID.
pub const DEVICE_ID: u16 = 0x0001;
/// Class code: base 0x0B (processor), subclass 0x00, prog-if 0x00.
pub const CLASS: (u8, u8, u8) = (0x0B, 0x00, 0x00);
/// Offset of the MSI capability.
pub const MSI_CAP: usize = 0x40;

/// The builder for the configuration space: vendor 0x1F0C device 0x0001,
/// class 0x0B0000, BAR0 64 KiB 64-bit, BAR2 1 MiB 64-bit prefetchable, MSI
/// with one 64-bit maskable vector.
pub fn builder() -> ConfigBuilder {
    ConfigBuilder::new(VENDOR_ID, DEVICE_ID)
        .class(CLASS.0, CLASS.1, CLASS.2)
        .bar(REG_BAR, Bar::memory64(REG_BAR_SIZE))
        .bar(FB_BAR, Bar::memory64(FB_BAR_SIZE).prefetchable())
        .msi(MsiCap::new(1).maskable(true))
}

/// The configuration space the device presents.
pub fn config_space() -> Result<ConfigSpace, BuildError> {
    builder().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_class_bars_and_msi() {
        let c = config_space().unwrap();
        assert_eq!(c.read(0, 4).unwrap(), 0x0001_1F0C);
        assert_eq!(c.read(8, 4).unwrap() >> 8, 0x0B_0000);
        let bar0 = c.bar(REG_BAR).unwrap();
        assert_eq!((bar0.size, bar0.is_64bit()), (REG_BAR_SIZE, true));
        let bar2 = c.bar(FB_BAR).unwrap();
        assert_eq!(bar2.size, FB_BAR_SIZE);
        assert!(bar2.flags.contains(pciem_abi::BarFlags::MEM_PREFETCH));
        assert_eq!(c.bars().count(), 2);
        let msi = c.msi().unwrap();
        assert_eq!(msi.offset as usize, MSI_CAP);
        assert!(msi.is_64bit && msi.per_vector_mask);
        assert_eq!(msi.vectors_capable, 1);
    }
}
