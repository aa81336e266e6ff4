//! Scenario programs for the PCIem kernel module, run inside the test VM.
//!
//! Each binary in `src/bin` is one scenario: it talks to the real
//! `/dev/pciem` with raw ioctls on the `pciem-abi` types, drives the test
//! driver (`pciem_testdrv.ko`) through its sysfs attributes, prints one
//! `PASS:`/`FAIL:` line per check and a final `SCENARIO <name>: PASS|FAIL`
//! line, and exits non-zero on any failure.
//!
//! The modules are expected to be loaded already (`pciem.ko` with a
//! `phys_region=` pool, then `pciem_testdrv.ko`); a scenario that finds
//! them missing fails, it does not skip.

pub mod device;
pub mod report;
pub mod ring;
pub mod sysfs;

pub use device::{Dev, Instance, MappedBar};
pub use report::Report;
pub use ring::Ring;

/// Vendor ID of the test devices (the ProtoPCIem vendor).
pub const TEST_VENDOR: u16 = 0x1f0c;
/// Device ID the test driver maps with `pci_iomap`.
pub const TEST_DEVICE_IOMAP: u16 = 0x7e50;
/// Device ID the test driver maps with plain `ioremap`.
pub const TEST_DEVICE_IOREMAP: u16 = 0x7e51;
/// Device ID no driver binds to.
pub const TEST_DEVICE_UNBOUND: u16 = 0x7e5f;
/// Name of the test driver in `/sys/bus/pci/drivers`.
pub const TESTDRV: &str = "pciem_testdrv";
