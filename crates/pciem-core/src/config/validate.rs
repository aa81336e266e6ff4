//! Checking an image handed over whole (`PCIEM_IOCTL_SET_CONFIG_IMAGE`).

use pciem_abi::pciem_config_image;

use super::regs::*;
use super::{BuildError, ConfigSpace};

/// Check that an image from an untrusted source describes a device the
/// kernel can present: header type 0; memory BARs only, each write mask
/// describing a power-of-two size of at least 16 bytes, 64-bit BARs not in
/// slot 5; capability chains inside their spaces, dword aligned and
/// acyclic.
pub fn validate_image(img: &pciem_config_image) -> Result<(), BuildError> {
    let cfg = ConfigSpace::from_image_ref(img);
    let header = cfg.raw8(HEADER_TYPE).unwrap_or(0);
    if header & 0x7F != 0 {
        return Err(BuildError::HeaderType(header));
    }
    let mut i = 0u8;
    while i < 6 {
        let off = BAR0 + 4 * u16::from(i);
        let lo = cfg.raw32(off).unwrap_or(0);
        let wm = mask32(img, off);
        if lo & 0x1 != 0 {
            return Err(BuildError::IoBar(i));
        }
        let is64 = lo & 0x6 == 0x4;
        if lo & 0x6 == 0x2 || lo & 0x6 == 0x6 {
            return Err(BuildError::BarFlags(i));
        }
        let mask = if is64 {
            if i == 5 {
                return Err(BuildError::Bar64AtLastSlot);
            }
            (mask32(img, off + 4) as u64) << 32 | (wm & !0xF) as u64
        } else {
            (wm as u64 & !0xF) | 0xFFFF_FFFF_0000_0000
        };
        if wm & 0xF != 0 {
            return Err(BuildError::BadImage(c"BAR type bits must be read-only"));
        }
        // Decided per type: a 64-bit BAR of exactly 4 GiB has the mask
        // 0xFFFF_FFFF_0000_0000, which is also what an unimplemented 32-bit
        // BAR's mask looks like here (found by the config_space fuzzer).
        let implemented = if is64 { mask != 0 } else { wm & !0xF != 0 };
        // Found by the config_space fuzzer: read-only address bits that are
        // not zero, or W1C bits, make the sizing write read back something
        // other than the size (Linux would size such a BAR by its lowest
        // set bit, the module by the mask).
        let regs = if is64 { 8 } else { 4 };
        if img
            .w1cmask
            .get(usize::from(off)..usize::from(off + regs))
            .is_some_and(|m| m.iter().any(|&b| b != 0))
        {
            return Err(BuildError::BadImage(c"BAR bits cannot be write-1-to-clear"));
        }
        let value = if is64 {
            (cfg.raw32(off + 4).unwrap_or(0) as u64) << 32 | (lo & !0xF) as u64
        } else {
            (lo & !0xF) as u64
        };
        if implemented && value & !mask != 0 {
            return Err(BuildError::BadImage(
                c"BAR address bits below its size must read zero",
            ));
        }
        if implemented {
            // A sizeable BAR's writable address bits are all the bits from
            // its size upwards: the mask is a run of ones to bit 63.
            let size = mask & mask.wrapping_neg();
            if size < 16 || mask != size.wrapping_neg() {
                return Err(BuildError::BarSize { index: i, size });
            }
        } else if lo != 0 {
            return Err(BuildError::BadImage(
                c"BAR has flags but no writable address bits",
            ));
        }
        i += if is64 { 2 } else { 1 };
    }
    check_chain(cfg.capabilities(), cfg, false)?;
    check_chain(cfg.ext_capabilities(), cfg, true)?;
    Ok(())
}

fn mask32(img: &pciem_config_image, off: u16) -> u32 {
    let off = usize::from(off);
    let mut b = [0u8; 4];
    if let Some(src) = img.wmask.get(off..off + 4) {
        b.copy_from_slice(src);
    }
    u32::from_le_bytes(b)
}

/// The iterator stops on malformed links; here a stop anywhere but at a
/// zero `next` pointer is an error.
fn check_chain(
    iter: super::CapabilityIter<'_>,
    cfg: &ConfigSpace,
    extended: bool,
) -> Result<(), BuildError> {
    let (start, end) = if extended {
        (EXT_CAP_START, EXT_CAP_END)
    } else {
        (STD_CAP_START, STD_CAP_END)
    };
    let mut count = 0usize;
    let mut last = None;
    for (_, off) in iter {
        count += 1;
        last = Some(off);
    }
    let Some(last) = last else {
        // Empty chain: for the standard space the pointer must then be 0
        // or the list bit clear.
        if !extended && cfg.raw16(STATUS).unwrap_or(0) & STATUS_CAP_LIST != 0 {
            let ptr = cfg.raw8(CAP_PTR).unwrap_or(0);
            if ptr != 0 {
                return Err(BuildError::BadImage(
                    c"capability pointer outside 0x40..0x100",
                ));
            }
        }
        return Ok(());
    };
    let next = if extended {
        cfg.raw32(last).unwrap_or(0) >> 20
    } else {
        cfg.raw8(last + 1).unwrap_or(0).into()
    };
    if next != 0 {
        if count >= usize::from(end - start) / 4 {
            return Err(BuildError::BadImage(c"capability chain loops"));
        }
        return Err(BuildError::BadImage(
            c"capability pointer misaligned or outside its space",
        ));
    }
    Ok(())
}
