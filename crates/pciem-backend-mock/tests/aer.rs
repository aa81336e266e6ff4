//! AER injection on the mock host: [`Host::inject_aer`] records the error in
//! the device's AER capability with the kernel module's code and hands it
//! to the test, which plays the root complex.

use pciem_backend_mock::Harness;
use pciem_core::config::regs::EXT_CAP_ID_AER;
use pciem_core::config::root_port::RecordError;
use pciem_core::config::{AerCap, Bar, PcieCap};
use pciem_core::{
    AerError, BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, MmioWrite, Severity,
    Watch,
};

/// Writing a severity here (1 correctable, 2 non-fatal, 3 fatal) makes the
/// model report a matching error; 4 reports a status that is no error.
const REG: u64 = 0x10;
/// Receiver Error (correctable status bit 0).
const RX_ERR: u32 = 1;
/// Completion Timeout (uncorrectable status bit 14).
const CMPL_TIMEOUT: u32 = 1 << 14;
/// Surprise Down (uncorrectable status bit 5), fatal by default.
const SURPRISE_DOWN: u32 = 1 << 5;
const HEADER: [u32; 4] = [0x4000_0001, 0x0100_00ff, 0xfee0_0000, 0];

struct Dev {
    aer: bool,
}

impl Device for Dev {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        let b = ConfigBuilder::new(0x1f0c, 0x7e58)
            .bar(0, Bar::memory32(4096))
            .pcie(PcieCap::endpoint(1, 1));
        if self.aer {
            b.aer(AerCap::default())
        } else {
            b
        }
        .build()
    }

    fn watches(&self) -> &[Watch] {
        &[Watch {
            bar: 0,
            offset: REG,
            width: 4,
        }]
    }

    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        let (severity, status) = match w.value {
            1 => (Severity::Correctable, RX_ERR),
            2 => (Severity::NonFatal, CMPL_TIMEOUT),
            3 => (Severity::Fatal, SURPRISE_DOWN),
            _ => (Severity::Correctable, 1 << 31),
        };
        host.inject_aer(AerError {
            severity,
            status,
            header_log: HEADER,
        })
    }
}

#[test]
fn each_severity_is_recorded_in_the_capability_and_reported() {
    let mut h = Harness::new(Dev { aer: true }).unwrap();
    let a = h
        .host()
        .lock_config(|c| c.find_ext_capability(EXT_CAP_ID_AER))
        .unwrap();
    h.write32(0, REG, 1).unwrap();
    h.write32(0, REG, 2).unwrap();
    h.write32(0, REG, 3).unwrap();
    let reports = h.aer_reports();
    let kinds: Vec<_> = reports.iter().map(|e| (e.severity, e.status)).collect();
    assert_eq!(
        kinds,
        [
            (Severity::Correctable, RX_ERR),
            (Severity::NonFatal, CMPL_TIMEOUT),
            (Severity::Fatal, SURPRISE_DOWN)
        ]
    );
    assert!(h.aer_reports().is_empty(), "reports are taken once");
    assert!(h.device_errors().is_empty(), "{:?}", h.device_errors());

    // What Linux's AER core reads: both statuses, the first error pointer
    // (the non-fatal one came first) and its header.
    assert_eq!(h.config_read(a + 0x10, 4).unwrap(), RX_ERR);
    assert_eq!(
        h.config_read(a + 0x04, 4).unwrap(),
        CMPL_TIMEOUT | SURPRISE_DOWN
    );
    assert_eq!(h.config_read(a + 0x18, 4).unwrap() & 0x1f, 14);
    assert_eq!(h.config_read(a + 0x1c, 4).unwrap(), HEADER[0]);
    // The status registers are write-1-to-clear, as the AER core clears them.
    h.config_write(a + 0x04, 4, CMPL_TIMEOUT).unwrap();
    assert_eq!(h.config_read(a + 0x04, 4).unwrap(), SURPRISE_DOWN);
}

#[test]
fn a_status_that_is_no_error_is_refused_and_nothing_is_recorded() {
    let mut h = Harness::new(Dev { aer: true }).unwrap();
    h.write32(0, REG, 4).unwrap();
    assert!(h.aer_reports().is_empty());
    assert_eq!(
        h.device_errors(),
        [HostError::Aer(RecordError::BadStatus(1 << 31))]
    );
}

#[test]
fn a_device_without_aer_cannot_report() {
    let mut h = Harness::new(Dev { aer: false }).unwrap();
    h.write32(0, REG, 2).unwrap();
    assert!(h.aer_reports().is_empty());
    assert_eq!(h.device_errors(), [HostError::Aer(RecordError::NoAer)]);
}

#[test]
fn a_removed_device_cannot_report() {
    let mut h = Harness::new(Dev { aer: true }).unwrap();
    h.host().surprise_remove().unwrap();
    let err = h.host().inject_aer(AerError {
        severity: Severity::NonFatal,
        status: CMPL_TIMEOUT,
        header_log: HEADER,
    });
    assert_eq!(err, Err(HostError::Disconnected));
    assert!(h.aer_reports().is_empty());
}
