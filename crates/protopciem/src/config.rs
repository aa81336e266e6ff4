//! ProtoPCIem's configuration space.
//!
//! Stated with pciem-core's [`ConfigBuilder`], which lays out the header,
//! the BARs and the MSI capability with their access masks.

use pciem_core::config::{Bar, MsiCap};
use pciem_core::{AccessMap, BuildError, ConfigBuilder, ConfigSpace};

use crate::regs::{FB_BAR, FB_BAR_SIZE, REG_BAR, REG_BAR_SIZE};

/// PCI vendor ID.
pub const VENDOR_ID: u16 = 0x1F0C;
/// PCI device ID.
pub const DEVICE_ID: u16 = 0x0001;
/// Class code: base 0x0B (processor), subclass 0x00, prog-if 0x00.
pub const CLASS: (u8, u8, u8) = (0x0B, 0x00, 0x00);
/// Offset of the MSI capability.
pub const MSI_CAP: u16 = 0x40;

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

/// How the host serves BAR0, the register file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Trap mode (the default): every driver store to BAR0 reaches the
    /// model as an event and is stored; loads are served from BAR memory.
    /// Every ProtoPCIem register is plain memory the driver reads back
    /// (STATUS, RESULT, ERROR_CODE, CONTROL.RESET) and none has a read side
    /// effect, so no range needs another policy. The kernel binds the
    /// driver only at `START`, once the device process serves events.
    #[default]
    Trap,
    /// Watch mode: BAR0 is shared memory and only CONTROL and CMD are
    /// watched (hardware watchpoints).
    Watch,
}

/// The builder for the configuration space in `mode`: [`builder`], with
/// BAR0 trapped in [`Mode::Trap`].
pub fn builder_for(mode: Mode) -> ConfigBuilder {
    match mode {
        Mode::Trap => builder().trap_bar(REG_BAR),
        Mode::Watch => builder(),
    }
}

/// The configuration space the device presents.
pub fn config_space() -> Result<ConfigSpace, BuildError> {
    builder().build()
}

/// BAR0's mode, as the backends take it.
pub fn access_map(mode: Mode) -> Result<AccessMap, BuildError> {
    builder_for(mode).access_map()
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
        assert_eq!(msi.offset, MSI_CAP);
        assert!(msi.is_64bit && msi.per_vector_mask);
        assert_eq!(msi.vectors_capable, 1);
    }

    #[test]
    fn bar0_is_trapped_by_default_and_the_image_is_the_same_in_both_modes() {
        assert!(access_map(Mode::default()).unwrap().is_trapped(REG_BAR));
        assert!(!access_map(Mode::Trap).unwrap().is_trapped(FB_BAR));
        assert!(!access_map(Mode::Watch).unwrap().any_trapped());
        assert_eq!(
            builder_for(Mode::Trap).build().unwrap(),
            builder_for(Mode::Watch).build().unwrap()
        );
    }
}
