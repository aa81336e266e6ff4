//! Interrupts as the driver sees them.

/// Which mechanism delivered an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IrqKind {
    /// MSI.
    Msi,
    /// MSI-X.
    MsiX,
    /// Legacy INTx (the line went up while not disabled).
    Intx,
}

/// One delivered interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IrqRecord {
    /// Mechanism.
    pub kind: IrqKind,
    /// MSI vector, MSI-X entry, or 0 for INTx.
    pub vector: u32,
    /// Message address the device wrote to (0 for INTx).
    pub address: u64,
    /// Message data (MSI: the programmed data with the vector in its low
    /// bits; MSI-X: the entry's data; 0 for INTx).
    pub data: u32,
}
