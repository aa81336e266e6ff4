//! Which interrupt [`Irq::Auto`] means, decided in one place for the
//! kernel module (through the shim) and the mock backend: MSI-X if the
//! driver enabled it, else MSI, else the INTx line if the function has one
//! wired (then only as vector 0); otherwise refused.

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
    fn refusals_carry_errno_and_reason() {
        assert_eq!(AutoRefused::NoneEnabled.errno(), 5);
        assert_eq!(AutoRefused::IntxVector(1).errno(), 22);
        for r in [AutoRefused::NoneEnabled, AutoRefused::IntxVector(1)] {
            assert!(r.reason().to_str().is_ok_and(|s| !s.is_empty()));
        }
    }
}
