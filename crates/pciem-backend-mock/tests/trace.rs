//! The optional access trace: off by default, and when on, every driver
//! access and device action in order, typed.

use std::time::Duration;

use pciem_backend_mock::trace::{Side, TraceRecord};
use pciem_backend_mock::{Harness, IrqKind, MockError};
use pciem_core::config::{Bar, MsiCap};
use pciem_core::{
    AtomicOp, BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq, MmioWrite,
    Watch,
};

/// On a write to 0x0: reads 8 bytes at the address in the value, writes
/// them back at +8, adds 1 atomically at +16, raises MSI 0. A write to 0x8
/// arms timer 3 (value 1) or cancels it (value 0); the timer raises MSI 0.
struct Copier;

impl Device for Copier {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(0x1234, 0x51)
            .bar(0, Bar::memory32(4096))
            .msi(MsiCap::new(1))
            .build()
    }
    fn watches(&self) -> &[Watch] {
        &[
            Watch {
                bar: 0,
                offset: 0x0,
                width: 8,
            },
            Watch {
                bar: 0,
                offset: 0x8,
                width: 4,
            },
        ]
    }
    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        match w.offset {
            0x0 => {
                let mut b = [0u8; 8];
                host.dma_read(w.value, &mut b)?;
                host.dma_write(w.value + 8, &b)?;
                host.dma_atomic(w.value + 16, AtomicOp::FetchAdd(1))?;
                host.raise_irq(Irq::Msi { vector: 0 })
            }
            0x8 if w.value == 1 => host.set_timer(3, Duration::from_millis(2)),
            0x8 => host.cancel_timer(3),
            _ => Ok(()),
        }
    }
    fn timer(&mut self, host: &dyn Host, _: u32) -> Result<(), HostError> {
        host.raise_irq(Irq::Msi { vector: 0 })
    }
}

#[test]
fn the_trace_is_off_by_default() {
    let mut h = Harness::new(Copier).unwrap();
    h.enable_msi(0xfee0_0000, 0x10).unwrap();
    let buf = h.dma_alloc(24).unwrap();
    h.write64(0, 0x0, buf).unwrap();
    h.wait_irq(Duration::ZERO).unwrap();
    assert_eq!(h.trace(), []);
    // Turned off again, it stops recording and keeps what it has.
    h.set_trace(true);
    h.read32(0, 0x8).unwrap();
    h.set_trace(false);
    h.read32(0, 0x8).unwrap();
    assert_eq!(h.trace().len(), 1);
}

#[test]
fn every_access_and_action_is_recorded_in_order() {
    let mut h = Harness::new(Copier).unwrap();
    let buf = h.dma_alloc(24).unwrap();
    h.dma_write(buf, &7u64.to_le_bytes()).unwrap();
    h.set_trace(true);

    // Before bus mastering: the device's DMA is refused, and says so.
    h.write64(0, 0x0, buf).unwrap();
    h.step().unwrap();
    h.enable_msi(0xfee0_0000, 0x10).unwrap();
    h.write64(0, 0x0, buf).unwrap();
    let irq = h.wait_irq(Duration::ZERO).unwrap();
    h.bar_write(0, 0x100, b"abc").unwrap();
    let mut three = [0u8; 3];
    h.bar_read(0, 0x100, &mut three).unwrap();
    h.write32(0, 0x8, 1).unwrap();
    h.advance(Duration::from_millis(5)).unwrap();
    let irqs = h.take_irqs();
    h.write32(0, 0x8, 0).unwrap();
    h.step().unwrap();

    let cmd = |v| TraceRecord::ConfigWrite {
        offset: 0x04,
        width: 2,
        value: v,
    };
    let t = h.take_trace();
    let want = [
        TraceRecord::MmioWrite {
            bar: 0,
            offset: 0x0,
            width: 8,
            value: buf,
        },
        TraceRecord::DmaRead {
            addr: buf,
            len: 8,
            error: Some(HostError::BusMasterDisabled),
        },
        // enable_msi: command register, address, data, control.
        TraceRecord::ConfigRead {
            offset: 0x04,
            width: 2,
            value: 0,
        },
        cmd(0x6),
        TraceRecord::ConfigWrite {
            offset: 0x44,
            width: 4,
            value: 0xfee0_0000,
        },
    ];
    assert_eq!(t[..5], want, "{t:#?}");
    // The rest of enable_msi (64-bit address or not), then the copy.
    let copy = t
        .iter()
        .skip(5)
        .position(|r| matches!(r, TraceRecord::MmioWrite { .. }))
        .map_or(usize::MAX, |i| i + 5);
    assert!(copy > 5, "{t:#?}");
    assert!(t[5..copy]
        .iter()
        .all(|r| matches!(r, TraceRecord::ConfigWrite { .. })));
    let want = [
        TraceRecord::MmioWrite {
            bar: 0,
            offset: 0x0,
            width: 8,
            value: buf,
        },
        TraceRecord::DmaRead {
            addr: buf,
            len: 8,
            error: None,
        },
        TraceRecord::DmaWrite {
            addr: buf + 8,
            len: 8,
            error: None,
        },
        TraceRecord::DmaAtomic {
            addr: buf + 16,
            op: AtomicOp::FetchAdd(1),
            error: None,
        },
        TraceRecord::IrqRaised {
            irq: Irq::Msi { vector: 0 },
            error: None,
        },
        TraceRecord::IrqReceived(irq),
        TraceRecord::BarWrite {
            bar: 0,
            offset: 0x100,
            data: b"abc".to_vec(),
        },
        TraceRecord::BarRead {
            bar: 0,
            offset: 0x100,
            data: b"abc".to_vec(),
        },
        TraceRecord::MmioWrite {
            bar: 0,
            offset: 0x8,
            width: 4,
            value: 1,
        },
        TraceRecord::TimerSet {
            id: 3,
            delay: Duration::from_millis(2),
        },
        TraceRecord::TimerFired {
            id: 3,
            at: Duration::from_millis(2),
        },
        TraceRecord::IrqRaised {
            irq: Irq::Msi { vector: 0 },
            error: None,
        },
        TraceRecord::IrqReceived(irqs[0]),
        TraceRecord::MmioWrite {
            bar: 0,
            offset: 0x8,
            width: 4,
            value: 0,
        },
        TraceRecord::TimerCancelled { id: 3 },
    ];
    assert_eq!(t[copy..], want, "{t:#?}");
    assert_eq!(irqs.len(), 1);
    assert_eq!(irq.kind, IrqKind::Msi);
    assert_eq!(h.trace(), [], "taken");
}

#[test]
fn refused_driver_accesses_are_errors_not_records() {
    let mut h = Harness::new(Copier).unwrap();
    h.set_trace(true);
    assert_eq!(h.mmio_write(0, 0, 3, 0), Err(MockError::BadWidth(3)));
    assert!(matches!(
        h.write32(0, 4096, 0),
        Err(MockError::Host(HostError::BarOutOfRange { .. }))
    ));
    assert!(h.bar_write(1, 0, b"x").is_err());
    assert!(h.config_read(0x1000, 4).is_err());
    assert_eq!(h.trace(), []);
}

#[test]
fn a_threaded_device_is_traced_in_the_order_the_host_saw() {
    let mut h = Harness::threaded(Copier).unwrap();
    h.enable_msi(0xfee0_0000, 0x10).unwrap();
    let buf = h.dma_alloc(24).unwrap();
    h.set_trace(true);
    for _ in 0..20 {
        h.write64(0, 0x0, buf).unwrap();
        h.wait_irq(Duration::from_secs(5)).unwrap();
    }
    let t = h.take_trace();
    assert_eq!(t.len(), 20 * 6, "{t:#?}");
    for (i, round) in t.chunks(6).enumerate() {
        assert!(
            matches!(round[0], TraceRecord::MmioWrite { .. })
                && matches!(round[1], TraceRecord::DmaRead { error: None, .. })
                && matches!(round[4], TraceRecord::IrqRaised { error: None, .. })
                && matches!(round[5], TraceRecord::IrqReceived(_)),
            "round {i}: {round:#?}"
        );
        let sides: Vec<Side> = round.iter().map(TraceRecord::side).collect();
        assert_eq!(
            sides,
            [
                Side::Driver,
                Side::Device,
                Side::Device,
                Side::Device,
                Side::Device,
                Side::Driver
            ]
        );
    }
}

#[test]
fn records_print_one_line_each() {
    let lines: Vec<String> = [
        TraceRecord::MmioWrite {
            bar: 0,
            offset: 0x8,
            width: 4,
            value: 1,
        },
        TraceRecord::ConfigRead {
            offset: 0x4,
            width: 2,
            value: 6,
        },
        TraceRecord::DmaRead {
            addr: 0x1000,
            len: 8,
            error: Some(HostError::BusMasterDisabled),
        },
        TraceRecord::TimerFired {
            id: 3,
            at: Duration::from_millis(2),
        },
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(lines[0], "driver  write  BAR0+0x8 (4 bytes) := 0x1");
    assert_eq!(lines[1], "driver  cfg rd CFG+0x4 (2 bytes) = 0x6");
    assert!(
        lines[2].starts_with("device  dma rd 8 bytes at 0x1000 (refused: bus mastering"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "device  timer  3 fired at 2ms");
}

#[test]
fn aer_reports_are_recorded_with_the_hosts_answer() {
    use pciem_core::config::root_port::Severity;
    use pciem_core::AerError;

    let mut h = Harness::new(Copier).unwrap();
    h.set_trace(true);
    let aer = AerError {
        severity: Severity::Correctable,
        status: 1,
        header_log: [0; 4],
    };
    // Copier has no AER capability: the host refuses, and the record
    // says why.
    let r = h.host().inject_aer(aer);
    let t = h.take_trace();
    assert_eq!(
        t,
        [TraceRecord::AerInjected {
            aer,
            error: Some(r.unwrap_err())
        }]
    );
    assert!(t[0]
        .to_string()
        .starts_with("device  aer    Correctable status 0x1 (refused: "));
}
