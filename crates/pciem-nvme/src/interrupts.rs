//! Which interrupt the driver enabled and how a completion queue's vector
//! reaches it: MSI-X entry, MSI vector, or the INTx level.
//!
//! The model mirrors configuration space from the host's CONFIG_WRITE
//! events to know whether MSI-X, MSI or INTx is in use: it needs that to
//! apply INTMS/INTMC (not in MSI-X mode) and to deassert INTx.

use pciem_core::{ConfigSpace, ConfigWrite, Host, HostError, Irq};

/// The mechanism in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqMode {
    /// MSI-X enabled.
    MsiX,
    /// MSI enabled with this many vectors.
    Msi(u32),
    /// Neither: the INTx line.
    Intx,
}

/// Interrupt routing state.
pub(crate) struct Interrupts {
    mirror: Box<ConfigSpace>,
    intx_asserted: bool,
}

impl Interrupts {
    /// Routing for a device whose configuration space starts as `space`.
    pub(crate) fn new(space: ConfigSpace) -> Self {
        Interrupts {
            mirror: Box::new(space),
            intx_asserted: false,
        }
    }

    /// The host wrote configuration space.
    pub(crate) fn config_written(&mut self, w: ConfigWrite) {
        // A write the host accepted is valid here too; a refused one
        // changes nothing in either copy.
        let _ = self.mirror.write(w.offset, w.width, w.value);
    }

    /// The mechanism in use.
    pub(crate) fn mode(&self) -> IrqMode {
        if self.mirror.msix().is_some_and(|m| m.enabled) {
            return IrqMode::MsiX;
        }
        match self.mirror.msi().filter(|m| m.enabled) {
            Some(m) => IrqMode::Msi(m.vectors_enabled.max(1)),
            None => IrqMode::Intx,
        }
    }

    /// Whether INTMS masks vector `iv` (INTMS does not apply to MSI-X).
    pub(crate) fn masked(&self, intms: u32, iv: u16) -> bool {
        self.mode() != IrqMode::MsiX && iv < 32 && intms & (1 << iv) != 0
    }

    /// Signal vector `iv`. If the host refuses (the mirror is behind the
    /// host, or the driver enabled nothing), vector 0 of whatever is
    /// enabled is tried before giving up.
    pub(crate) fn raise(&mut self, host: &dyn Host, iv: u16) -> Result<(), HostError> {
        let iv = u32::from(iv);
        let r = match self.mode() {
            IrqMode::MsiX => host.raise_irq(Irq::MsiX { entry: iv }),
            IrqMode::Msi(n) => host.raise_irq(Irq::Msi {
                vector: if iv < n { iv } else { 0 },
            }),
            IrqMode::Intx => {
                let r = host.raise_irq(Irq::IntxAssert);
                self.intx_asserted |= r.is_ok();
                r
            }
        };
        r.or_else(|_| host.raise_irq(Irq::Auto { vector: 0 }))
    }

    /// Lower the INTx line if this model raised it.
    pub(crate) fn deassert_intx(&mut self, host: &dyn Host) {
        if self.intx_asserted {
            self.intx_asserted = false;
            let _ = host.raise_irq(Irq::IntxDeassert);
        }
    }
}
