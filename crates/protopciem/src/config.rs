//! ProtoPCIem's configuration space.
//!
//! [`builder`] states it with pciem-core's [`ConfigBuilder`]. Until that
//! builder is implemented in pciem-core (it is in flight), the device
//! presents [`image`]: the same space laid out by hand, per the PCI Local
//! Bus Specification 3.0 (§6.1 type-0 header, §6.8.1 MSI with per-vector
//! masking), wrapped with [`ConfigSpace::from_image`].

use pciem_abi::pciem_config_image;
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
        .msi(MsiCap::new(1))
}

fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    buf[off..off + bytes.len()].copy_from_slice(bytes);
}

/// A 64-bit memory BAR at `slot` of `size` bytes (a power of two ≥ 16).
fn bar64(img: &mut pciem_config_image, slot: u8, size: u64, prefetchable: bool) {
    let off = 0x10 + 4 * usize::from(slot);
    // Memory space, type 10b (64-bit), bit 3 prefetchable.
    let flags: u32 = 0b100 | if prefetchable { 0b1000 } else { 0 };
    put(&mut img.config, off, &flags.to_le_bytes());
    // The address bits below the size read as zero (that is how BAR
    // sizing works); the upper dword is fully writable.
    let mask = !(size - 1);
    put(&mut img.wmask, off, &((mask as u32) & !0xF).to_le_bytes());
    put(
        &mut img.wmask,
        off + 4,
        &((mask >> 32) as u32).to_le_bytes(),
    );
}

/// The configuration image with its write and write-1-to-clear masks.
pub fn image() -> pciem_config_image {
    let mut img = pciem_config_image::default();
    let c = &mut img.config;
    put(c, 0x00, &VENDOR_ID.to_le_bytes());
    put(c, 0x02, &DEVICE_ID.to_le_bytes());
    // Status: Capabilities List.
    put(c, 0x06, &0x0010u16.to_le_bytes());
    c[0x09] = CLASS.2;
    c[0x0A] = CLASS.1;
    c[0x0B] = CLASS.0;
    put(c, 0x2C, &VENDOR_ID.to_le_bytes());
    put(c, 0x2E, &DEVICE_ID.to_le_bytes());
    c[0x34] = MSI_CAP as u8;
    // MSI: ID 5, last capability, control = 64-bit (bit 7) | per-vector
    // masking (bit 8), Multiple Message Capable = 0 (one vector).
    c[MSI_CAP] = 0x05;
    c[MSI_CAP + 1] = 0x00;
    put(c, MSI_CAP + 2, &0x0180u16.to_le_bytes());

    let w = &mut img.wmask;
    // Command: memory space, bus master, parity, SERR, INTx disable.
    put(w, 0x04, &0x0546u16.to_le_bytes());
    w[0x3C] = 0xFF; // interrupt line
    put(w, MSI_CAP + 2, &0x0071u16.to_le_bytes()); // enable, multiple message enable
    put(w, MSI_CAP + 4, &0xFFFF_FFFCu32.to_le_bytes()); // address low
    put(w, MSI_CAP + 8, &0xFFFF_FFFFu32.to_le_bytes()); // address high
    put(w, MSI_CAP + 12, &0xFFFFu16.to_le_bytes()); // data
    put(w, MSI_CAP + 16, &0x1u32.to_le_bytes()); // mask bit of vector 0
                                                 // Status error bits are write-1-to-clear.
    put(&mut img.w1cmask, 0x06, &0xF900u16.to_le_bytes());

    bar64(&mut img, REG_BAR, REG_BAR_SIZE, false);
    bar64(&mut img, FB_BAR, FB_BAR_SIZE, true);
    img
}

/// The configuration space the device presents.
pub fn config_space() -> Result<ConfigSpace, BuildError> {
    Ok(ConfigSpace::from_image(image()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    #[test]
    fn identity_and_class() {
        let img = image();
        assert_eq!(u32_at(&img.config, 0), 0x0001_1F0C);
        assert_eq!(u32_at(&img.config, 8) >> 8, 0x0B_0000);
        assert_eq!(img.config[0x0E], 0, "type-0 header, single function");
    }

    #[test]
    fn bar_sizing_masks() {
        let img = image();
        assert_eq!(u32_at(&img.config, 0x10), 0x4);
        assert_eq!(u32_at(&img.wmask, 0x10), 0xFFFF_0000);
        assert_eq!(u32_at(&img.wmask, 0x14), 0xFFFF_FFFF);
        assert_eq!(u32_at(&img.config, 0x18), 0xC);
        assert_eq!(u32_at(&img.wmask, 0x18), 0xFFF0_0000);
        assert_eq!(u32_at(&img.wmask, 0x1C), 0xFFFF_FFFF);
        // Slots 1, 3, 4, 5 hold no BAR of their own.
        for off in [0x20, 0x24] {
            assert_eq!(u32_at(&img.config, off) | u32_at(&img.wmask, off), 0);
        }
    }
}
