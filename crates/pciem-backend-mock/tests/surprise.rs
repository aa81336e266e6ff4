//! Surprise removal on the mock host: after [`Host::surprise_remove`] the
//! driver's view of the device is all-ones and its writes go nowhere, and
//! the model can no longer interrupt or master the bus, as with the kernel
//! module.

use pciem_backend_mock::Harness;
use pciem_core::config::Bar;
use pciem_core::config::MsiCap;
use pciem_core::{
    AccessMap, BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq, MmioWrite,
    TrapPolicy, Watch,
};

const REG: u64 = 0x10;

#[derive(Debug, Default)]
struct Dev {
    trapped: bool,
}

impl Dev {
    fn builder(&self) -> ConfigBuilder {
        let b = ConfigBuilder::new(0x1234, 0x5e50)
            .bar(0, Bar::memory32(4096))
            .msi(MsiCap::new(1));
        if self.trapped {
            b.trap_bar(0).trap_range(0, REG, 4, TrapPolicy::MODEL)
        } else {
            b
        }
    }
}

impl Device for Dev {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        self.builder().build()
    }

    fn access_map(&self) -> Result<AccessMap, BuildError> {
        self.builder().access_map()
    }

    fn watches(&self) -> &[Watch] {
        &[]
    }

    fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
        Ok(())
    }

    fn mmio_read(&mut self, _: &dyn Host, _: pciem_core::MmioRead) -> Result<u64, HostError> {
        Ok(0x1234_5678)
    }
}

fn removal(trapped: bool) {
    let mut h = Harness::new(Dev { trapped }).unwrap();
    h.enable_bus_master().unwrap();
    h.write32(0, 0x20, 0xdead_beef).unwrap();
    assert_eq!(h.config_read(0, 2).unwrap(), 0x1234);
    assert_eq!(h.read32(0, 0x20).unwrap(), 0xdead_beef);
    if trapped {
        assert_eq!(h.read32(0, REG).unwrap(), 0x1234_5678);
    }
    let host = h.host().clone();
    assert!(!host.is_removed());
    host.surprise_remove().unwrap();
    assert!(host.is_removed());

    // The driver's view: all-ones, writes dropped.
    assert_eq!(h.config_read(0, 2).unwrap(), 0xffff);
    assert_eq!(h.config_read(0, 4).unwrap(), u32::MAX);
    assert_eq!(h.config_read(4, 1).unwrap(), 0xff);
    h.config_write(4, 2, 0).unwrap();
    assert_eq!(h.read32(0, 0x20).unwrap(), u32::MAX);
    assert_eq!(h.mmio_read(0, 0x20, 1).unwrap(), 0xff);
    assert_eq!(h.mmio_read(0, 0x20, 8).unwrap(), u64::MAX);
    h.write32(0, 0x20, 1).unwrap();
    let mut buf = [0u8; 16];
    h.bar_read(0, 0, &mut buf).unwrap();
    assert_eq!(buf, [0xff; 16]);
    if trapped {
        assert_eq!(h.read32(0, REG).unwrap(), u32::MAX);
    }
    // Bad input is still refused, not answered.
    assert!(h.read32(0, 4096).is_err());
    assert!(h.config_read(4095, 4).is_err());
    assert!(h.config_write(4095, 4, 0).is_err());

    // The model side: its memory is its own, the link is not.
    let mut b = [0u8; 4];
    host.bar_read(0, 0x20, &mut b).unwrap();
    assert_eq!(
        u32::from_le_bytes(b),
        0xdead_beef,
        "the dropped write never landed"
    );
    assert_eq!(
        host.raise_irq(Irq::Auto { vector: 0 }),
        Err(HostError::Disconnected)
    );
    assert_eq!(
        host.dma_write(0x1000, &[1, 2, 3]),
        Err(HostError::Disconnected)
    );
    assert_eq!(host.surprise_remove(), Err(HostError::Disconnected));
}

#[test]
fn surprise_removal_of_a_plain_bar() {
    removal(false);
}

#[test]
fn surprise_removal_of_a_trapped_bar() {
    removal(true);
}
