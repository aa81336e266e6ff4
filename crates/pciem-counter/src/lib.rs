//! The counting device of the original project's walkthrough, as a device
//! model.
//!
//! BAR0 (4 KiB, 32-bit memory) holds three 32-bit registers:
//!
//! | offset | register | behaviour |
//! |---|---|---|
//! | 0x00 | CONTROL | writing a value with bit 0 set increments the counter |
//! | 0x04 | STATUS | bit 0: an interrupt is pending; the driver writes 0 to clear |
//! | 0x08 | COUNTER | the count (the device keeps it; driver writes are ignored) |
//!
//! Every [`IRQ_EVERY`] counts the device sets STATUS bit 0 and raises MSI
//! vector 0. Vendor 0x1234, device 0x5678, class 0xFF0000.
//!
//! BAR0 is in trap mode by default ([`Counter::new`]): CONTROL is a
//! doorbell (delivered, not stored), COUNTER is answered by the model, so a
//! driver reads the count of every increment it wrote before the read, and
//! its writes to COUNTER are not stored. [`Counter::watch_mode`] keeps the
//! walkthrough's watch mode: CONTROL watched, COUNTER plain memory the
//! device overwrites (a read may not see increments still in flight).

use pciem_core::config::{Bar, MsiCap};
use pciem_core::{
    AccessMap, BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq, MmioRead,
    MmioWrite, ResetKind, TrapPolicy, Watch,
};

/// CONTROL register offset.
pub const REG_CONTROL: u64 = 0x00;
/// STATUS register offset.
pub const REG_STATUS: u64 = 0x04;
/// COUNTER register offset.
pub const REG_COUNTER: u64 = 0x08;
/// STATUS: an interrupt is pending.
pub const STATUS_IRQ_PENDING: u32 = 1 << 0;
/// An interrupt every this many counts.
pub const IRQ_EVERY: u32 = 10;
/// PCI vendor ID.
pub const VENDOR_ID: u16 = 0x1234;
/// PCI device ID.
pub const DEVICE_ID: u16 = 0x5678;

const WATCHES: [Watch; 1] = [Watch {
    bar: 0,
    offset: REG_CONTROL,
    width: 4,
}];

/// The counting device.
#[derive(Debug, Default)]
pub struct Counter {
    watch: bool,
    count: u32,
    irqs: u64,
}

impl Counter {
    /// A device at count 0, BAR0 in trap mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// A device at count 0, BAR0 in watch mode (CONTROL watched).
    pub fn watch_mode() -> Self {
        Self {
            watch: true,
            ..Self::default()
        }
    }

    /// Whether BAR0 is in trap mode.
    pub fn is_trapped(&self) -> bool {
        !self.watch
    }

    fn builder(&self) -> ConfigBuilder {
        let b = ConfigBuilder::new(VENDOR_ID, DEVICE_ID)
            .revision(1)
            .class(0xff, 0x00, 0x00)
            .bar(0, Bar::memory32(4096))
            .msi(MsiCap::new(1).maskable(true));
        if self.watch {
            return b;
        }
        b.trap_bar(0)
            .trap_range(0, REG_CONTROL, 4, TrapPolicy::DOORBELL)
            .trap_range(0, REG_COUNTER, 4, TrapPolicy::MODEL)
    }

    /// The count.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Interrupts raised.
    pub fn irqs(&self) -> u64 {
        self.irqs
    }
}

impl Device for Counter {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        self.builder().build()
    }

    fn access_map(&self) -> Result<AccessMap, BuildError> {
        self.builder().access_map()
    }

    fn watches(&self) -> &[Watch] {
        if self.watch {
            &WATCHES
        } else {
            &[]
        }
    }

    fn mmio_read(&mut self, host: &dyn Host, r: MmioRead) -> Result<u64, HostError> {
        match (r.bar, r.offset, r.width) {
            (0, REG_COUNTER, 4) => Ok(u64::from(self.count)),
            // Anything else in the range (narrower reads): BAR memory, which
            // holds the count too.
            _ => {
                let mut b = [0u8; 8];
                let n = usize::from(r.width).min(8);
                host.bar_read(r.bar, r.offset, &mut b[..n])?;
                Ok(u64::from_le_bytes(b))
            }
        }
    }

    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        if w.bar != 0 || w.offset != REG_CONTROL || w.value & 1 == 0 {
            return Ok(());
        }
        self.count = self.count.wrapping_add(1);
        host.write_u32(0, REG_COUNTER, self.count)?;
        if self.count.is_multiple_of(IRQ_EVERY) {
            let status = host.read_u32(0, REG_STATUS)?;
            host.write_u32(0, REG_STATUS, status | STATUS_IRQ_PENDING)?;
            host.raise_irq(Irq::Msi { vector: 0 })?;
            self.irqs += 1;
        }
        Ok(())
    }

    fn reset(&mut self, host: &dyn Host, _kind: ResetKind) -> Result<(), HostError> {
        self.count = 0;
        host.write_u32(0, REG_COUNTER, 0)?;
        host.write_u32(0, REG_STATUS, 0)
    }
}
