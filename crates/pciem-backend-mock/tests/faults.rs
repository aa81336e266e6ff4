//! Fault plans on the mock host: chosen trapped loads time out and chosen
//! DMA reads come back poisoned, with the kernel module's semantics (the
//! same pciem-core `FaultPlan` decides).

use pciem_backend_mock::Harness;
use pciem_core::config::{AerCap, Bar, PcieCap};
use pciem_core::faultplan::{poisoned_completion_header, FaultError, FaultRule, AER_POISONED_TLP};
use pciem_core::{
    AccessMap, AerError, AtomicOp, BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError,
    MmioRead, MmioWrite, ResetKind, Severity, TrapError, TrapPolicy, Watch,
};

/// BAR 0 is trapped with a model-answered register at 0x10; BAR 2 is
/// directly mapped.
#[derive(Debug, Default)]
struct Dev {
    errors: Vec<TrapError>,
    reads: u32,
    resets: Vec<ResetKind>,
}

fn builder() -> ConfigBuilder {
    ConfigBuilder::new(0x1234, 0x5e51)
        .bar(0, Bar::memory32(4096))
        .bar(2, Bar::memory32(4096))
        .pcie(PcieCap::endpoint(1, 1))
        .aer(AerCap::default())
        .trap_bar(0)
        .trap_range(0, 0x10, 4, TrapPolicy::MODEL)
}

impl Device for Dev {
    type Error = HostError;

    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        builder().build()
    }

    fn access_map(&self) -> Result<AccessMap, BuildError> {
        builder().access_map()
    }

    fn watches(&self) -> &[Watch] {
        &[]
    }

    fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
        Ok(())
    }

    fn mmio_read(&mut self, _: &dyn Host, _: MmioRead) -> Result<u64, HostError> {
        self.reads += 1;
        Ok(0x1234_5678)
    }

    fn device_error(&mut self, _: &dyn Host, err: TrapError) -> Result<(), HostError> {
        self.errors.push(err);
        Ok(())
    }

    fn reset(&mut self, _: &dyn Host, kind: ResetKind) -> Result<(), HostError> {
        self.resets.push(kind);
        Ok(())
    }
}

#[test]
fn a_chosen_load_times_out_and_the_model_is_told() {
    let mut h = Harness::new(Dev::default()).unwrap();
    h.write32(0, 0x20, 0xdead_beef).unwrap();
    h.set_fault(FaultRule::read_timeout(0, 0x10, 4, 1)).unwrap();
    // The model-answered register: all-ones, the model not asked.
    assert_eq!(h.read32(0, 0x10).unwrap(), u32::MAX);
    h.step().unwrap();
    let dev = h.device().unwrap();
    assert_eq!(dev.reads, 0);
    assert_eq!(dev.errors.len(), 1);
    let TrapError::InjectedTimeout { read } = dev.errors[0] else {
        panic!("{:?}", dev.errors[0]);
    };
    assert_eq!((read.bar, read.offset), (0, 0x10));
    assert_eq!(h.read_timeouts(), 1);
    assert_eq!(h.host().injected_timeouts(), 1);
    // Count 1: the rule is gone, the next load is the model's.
    assert!(h.host().fault_rules().is_empty());
    assert_eq!(h.read32(0, 0x10).unwrap(), 0x1234_5678);
    assert_eq!(h.device().unwrap().reads, 1);
    // A rule over backing memory, until cleared; a 1-byte load inside it
    // reads all-ones of its width, one just outside is untouched.
    h.set_fault(FaultRule::read_timeout(0, 0x21, 1, 0)).unwrap();
    assert_eq!(h.read32(0, 0x20).unwrap(), u32::MAX);
    assert_eq!(h.mmio_read(0, 0x21, 1).unwrap(), 0xff);
    assert_eq!(h.mmio_read(0, 0x20, 1).unwrap(), 0xef);
    h.clear_faults().unwrap();
    assert_eq!(h.read32(0, 0x20).unwrap(), 0xdead_beef);
    // Stores are never affected.
    h.set_fault(FaultRule::read_timeout(0, 0x20, 4, 0)).unwrap();
    h.write32(0, 0x20, 7).unwrap();
    h.clear_faults().unwrap();
    assert_eq!(h.read32(0, 0x20).unwrap(), 7);
}

#[test]
fn bad_rules_are_refused_as_the_kernel_refuses_them() {
    let h = Harness::new(Dev::default()).unwrap();
    let err = |r| match h.set_fault(r) {
        Err(HostError::Fault(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(FaultRule::read_timeout(2, 0, 4, 0)),
        FaultError::NotTrapped
    );
    assert_eq!(
        err(FaultRule::read_timeout(1, 0, 4, 0)),
        FaultError::NoSuchBar
    );
    assert_eq!(
        err(FaultRule::read_timeout(0, 0xffe, 4, 0)),
        FaultError::OutsideBar
    );
    assert_eq!(err(FaultRule::dma_poison(0, 0, 0)), FaultError::Empty);
    assert_eq!(
        err(FaultRule::read_timeout(0, 0x10, 4, 0).with_aer()),
        FaultError::AerNotForReads
    );

    assert_eq!(
        err(FaultRule::dma_poison(u64::MAX, 2, 0)),
        FaultError::Wraps
    );
    for i in 0..8 {
        h.set_fault(FaultRule::dma_poison(i * 8, 8, 0)).unwrap();
    }
    assert_eq!(err(FaultRule::dma_poison(0, 8, 0)), FaultError::Full);
    h.clear_faults().unwrap();
    assert!(h.host().fault_rules().is_empty());
    // After a surprise removal the plan is out of reach.
    h.host().surprise_remove().unwrap();
    assert_eq!(
        h.set_fault(FaultRule::dma_poison(0, 8, 0)),
        Err(HostError::Disconnected)
    );
}

#[test]
fn poisoned_dma_reads_fail_and_the_next_succeeds() {
    let mut h = Harness::new(Dev::default()).unwrap();
    h.enable_bus_master().unwrap();
    let buf = h.dma_alloc(8192).unwrap();
    h.dma_write(buf, &[0x5a; 8192]).unwrap();
    let host = h.host().clone();
    host.set_fault(FaultRule::dma_poison(buf + 4096, 1, 1))
        .unwrap();
    let mut data = [0u8; 16];
    // Not touching the poisoned byte.
    host.dma_read(buf, &mut data).unwrap();
    // Touching it: poisoned, nothing copied.
    let mut big = vec![0u8; 8192];
    assert_eq!(
        host.dma_read(buf, &mut big),
        Err(HostError::Poisoned { addr: buf })
    );
    assert!(big.iter().all(|&b| b == 0));
    // Count 1: the retry succeeds.
    host.dma_read(buf, &mut big).unwrap();
    assert!(big.iter().all(|&b| b == 0x5a));
    // Writes are never poisoned; atomics read first and are.
    host.set_fault(FaultRule::dma_poison(buf, 8, 0)).unwrap();
    host.dma_write(buf, &[1; 8]).unwrap();
    assert_eq!(
        host.dma_atomic(buf, AtomicOp::FetchAdd(1)),
        Err(HostError::Poisoned { addr: buf })
    );
    h.clear_faults().unwrap();
    assert_eq!(
        host.dma_atomic(buf, AtomicOp::FetchAdd(1)).unwrap(),
        0x0101_0101_0101_0101
    );
}

#[test]
fn a_poisoned_prp_segment_fails_the_transfer_once() {
    let mut h = Harness::new(Dev::default()).unwrap();
    h.enable_bus_master().unwrap();
    let data = h.dma_alloc(4096 * 3).unwrap();
    let pages = [data, data + 4096, data + 8192];
    let (prp, _lists) = h.build_prp(&pages, 0, 4096 * 3).unwrap();
    let host = h.host().clone();
    host.set_fault(FaultRule::dma_poison(data + 4096 * 2, 4096, 1))
        .unwrap();
    let mut buf = vec![0u8; 4096 * 3];
    assert!(matches!(
        host.dma_read_prp(prp, &mut buf),
        Err(HostError::Poisoned { .. })
    ));
    host.dma_read_prp(prp, &mut buf).unwrap();
    // A PRP write is never poisoned.
    host.set_fault(FaultRule::dma_poison(data, 4096 * 3, 0))
        .unwrap();
    host.dma_write_prp(prp, &buf).unwrap();
}

#[test]
fn a_removed_device_comes_back_at_power_on() {
    let mut h = Harness::new(Dev::default()).unwrap();
    let host = h.host().clone();
    assert_eq!(host.reinsert(), Err(HostError::NotRemoved));
    h.enable_bus_master().unwrap();
    h.write32(0, 0x20, 0xdead_beef).unwrap();
    host.surprise_remove().unwrap();
    assert_eq!(h.config_read(0, 2).unwrap(), 0xffff);
    assert_eq!(h.read32(0, 0x20).unwrap(), u32::MAX);
    host.reinsert().unwrap();
    assert!(!host.is_removed());
    assert_eq!(host.reinsert(), Err(HostError::NotRemoved));
    h.step().unwrap();
    assert_eq!(h.device().unwrap().resets, [ResetKind::Reinserted]);
    // Power-on: the identity answers, bus mastering is off again, BAR
    // memory is zeroed, and the model is asked again.
    assert_eq!(h.config_read(0, 2).unwrap(), 0x1234);
    assert_eq!(h.config_read(4, 2).unwrap() & 0x4, 0);
    assert_eq!(h.read32(0, 0x20).unwrap(), 0);
    assert_eq!(h.read32(0, 0x10).unwrap(), 0x1234_5678);
    assert_eq!(
        host.dma_write(0x1000, &[1]),
        Err(HostError::BusMasterDisabled)
    );
    h.enable_bus_master().unwrap();
    let buf = h.dma_alloc(64).unwrap();
    host.dma_write(buf, &[7; 8]).unwrap();
    // And it can be removed again.
    host.surprise_remove().unwrap();
    assert!(host.is_removed());
}

#[test]
fn a_poisoned_read_with_aer_is_reported_through_the_aer_capability() {
    let mut h = Harness::new(Dev::default()).unwrap();
    h.enable_bus_master().unwrap();
    let buf = h.dma_alloc(64).unwrap();
    let host = h.host().clone();
    host.set_fault(FaultRule::dma_poison(buf, 8, 1).with_aer())
        .unwrap();
    let mut data = [0u8; 8];
    assert_eq!(
        host.dma_read(buf, &mut data),
        Err(HostError::Poisoned { addr: buf })
    );
    let reports = h.aer_reports();
    assert_eq!(
        reports,
        [AerError {
            severity: Severity::NonFatal,
            status: AER_POISONED_TLP,
            header_log: poisoned_completion_header(0, buf, 8),
        }]
    );
    assert_eq!(
        reports[0].header_log[0], 0x4a00_4002,
        "a CplD with EP, 2 dwords"
    );
    // Count 1: the retry reads, and nothing more is reported.
    host.dma_read(buf, &mut data).unwrap();
    assert!(h.aer_reports().is_empty());
}
