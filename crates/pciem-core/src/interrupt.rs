//! Interrupt rules decided in one place for the kernel module (through the
//! shim) and the mock backend: which interrupt [`Irq::Auto`] means (MSI-X
//! if the driver enabled it, else MSI, else the INTx line if the function
//! has one wired, then only as vector 0; otherwise refused), and when an
//! MSI-X entry is held in the Pending Bit Array and where its bit lives.
//! (MSI's per-vector mask and Pending bits live in configuration space:
//! `ConfigSpace::msi_hold_if_masked` and `msi_take_unmasked`.)

use crate::device::Irq;

/// What the driver has enabled, as the host sees it when the device raises
/// an interrupt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enabled {
    /// MSI-X Enable is set.
    pub msix: bool,
    /// MSI Enable is set.
    pub msi: bool,
    /// The function has an INTx line the host can deliver (an Interrupt
    /// Pin, and in the kernel a Linux irq mapped for it).
    pub intx: bool,
}

/// Why [`resolve_auto`] found no interrupt for the device to raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoRefused {
    /// The driver enabled neither MSI-X nor MSI and there is no INTx line.
    NoneEnabled,
    /// Only INTx is left, and it has no vector but 0 (the vector asked for).
    IntxVector(u32),
}

impl AutoRefused {
    /// The kernel's errno for the refusal (positive): `EIO` when nothing is
    /// enabled, `EINVAL` for a vector INTx cannot carry.
    pub const fn errno(self) -> i32 {
        match self {
            Self::NoneEnabled => 5,
            Self::IntxVector(_) => 22,
        }
    }

    /// The description the kernel log uses (NUL-terminated for the shim).
    pub const fn reason(self) -> &'static core::ffi::CStr {
        match self {
            Self::NoneEnabled => c"the driver enabled no interrupt mechanism",
            Self::IntxVector(_) => c"INTx has only vector 0",
        }
    }
}

/// The concrete interrupt [`Irq::Auto`] `{ vector }` stands for, given what
/// is `enabled`: [`Irq::MsiX`] `{ entry: vector }`, else [`Irq::Msi`]
/// `{ vector }`, else [`Irq::IntxAssert`] for vector 0. Whether that vector
/// exists (the table size, the vectors enabled) is judged by the kind's own
/// delivery, not here.
pub const fn resolve_auto(vector: u32, enabled: Enabled) -> Result<Irq, AutoRefused> {
    if enabled.msix {
        Ok(Irq::MsiX { entry: vector })
    } else if enabled.msi {
        Ok(Irq::Msi { vector })
    } else if !enabled.intx {
        Err(AutoRefused::NoneEnabled)
    } else if vector != 0 {
        Err(AutoRefused::IntxVector(vector))
    } else {
        Ok(Irq::IntxAssert)
    }
}

/// The Mask bit of an MSI-X table entry's Vector Control word (offset 12).
pub const MSIX_VECTOR_CTRL_MASK: u32 = 1;

/// Whether MSI-X `entry` is held in the PBA instead of sent: the Function
/// Mask is set, or the entry's Vector Control (`vector_ctrl`) masks it.
pub const fn msix_held(function_mask: bool, vector_ctrl: u32) -> bool {
    function_mask || vector_ctrl & MSIX_VECTOR_CTRL_MASK != 0
}

/// Byte offset, from the start of the Pending Bit Array, of the 64-bit
/// word holding `entry`'s pending bit.
pub const fn msix_pba_word(entry: u32) -> u64 {
    (entry / 64) as u64 * 8
}

/// The PBA word `word` (the one [`msix_pba_word`] names) with `entry`'s
/// pending bit set (`pending`) or cleared.
pub const fn msix_pba_update(word: u64, entry: u32, pending: bool) -> u64 {
    let bit = 1u64 << (entry % 64);
    if pending {
        word | bit
    } else {
        word & !bit
    }
}

/// Whether `entry`'s pending bit is set in its PBA word `word`.
pub const fn msix_pba_pending(word: u64, entry: u32) -> bool {
    word & (1u64 << (entry % 64)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn en(msix: bool, msi: bool, intx: bool) -> Enabled {
        Enabled { msix, msi, intx }
    }

    #[test]
    fn msix_wins_over_msi_and_intx() {
        assert_eq!(
            resolve_auto(3, en(true, true, true)),
            Ok(Irq::MsiX { entry: 3 })
        );
        assert_eq!(
            resolve_auto(7, en(true, false, false)),
            Ok(Irq::MsiX { entry: 7 })
        );
    }

    #[test]
    fn msi_wins_over_intx() {
        assert_eq!(
            resolve_auto(1, en(false, true, true)),
            Ok(Irq::Msi { vector: 1 })
        );
    }

    #[test]
    fn intx_only_as_vector_zero() {
        assert_eq!(resolve_auto(0, en(false, false, true)), Ok(Irq::IntxAssert));
        assert_eq!(
            resolve_auto(2, en(false, false, true)),
            Err(AutoRefused::IntxVector(2))
        );
    }

    #[test]
    fn nothing_enabled_is_refused_for_any_vector() {
        for v in [0, 1, u32::MAX] {
            assert_eq!(
                resolve_auto(v, en(false, false, false)),
                Err(AutoRefused::NoneEnabled)
            );
        }
    }

    #[test]
    fn a_masked_msix_entry_is_held() {
        assert!(!msix_held(false, 0));
        assert!(msix_held(true, 0), "Function Mask holds every entry");
        assert!(msix_held(false, 1));
        assert!(!msix_held(false, 0xffff_fffe), "only bit 0 masks");
    }

    #[test]
    fn pba_bits_land_in_their_word() {
        assert_eq!(msix_pba_word(0), 0);
        assert_eq!(msix_pba_word(63), 0);
        assert_eq!(msix_pba_word(64), 8);
        assert_eq!(msix_pba_word(2047), 248);
        assert_eq!(msix_pba_word(u32::MAX), (u32::MAX / 64) as u64 * 8);
        assert_eq!(msix_pba_update(0, 3, true), 1 << 3);
        assert_eq!(msix_pba_update(0, 67, true), 1 << 3);
        assert_eq!(msix_pba_update(u64::MAX, 63, false), u64::MAX >> 1);
        assert_eq!(msix_pba_update(1 << 5, 4, false), 1 << 5, "others kept");
        assert!(msix_pba_pending(1 << 3, 67) && !msix_pba_pending(1 << 3, 66));
    }

    #[test]
    fn refusals_carry_errno_and_reason() {
        assert_eq!(AutoRefused::NoneEnabled.errno(), 5);
        assert_eq!(AutoRefused::IntxVector(1).errno(), 22);
        for r in [AutoRefused::NoneEnabled, AutoRefused::IntxVector(1)] {
            assert!(r.reason().to_str().is_ok_and(|s| !s.is_empty()));
        }
    }
}
