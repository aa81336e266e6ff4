//! The mock host keeps the kernel module's semantics.

use pciem_core::dmacheck::FaultKind;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pciem_backend_mock::{Harness, IrqKind, MockError};
use pciem_core::config::{Bar, MsiCap, MsixCap, PcieCap, PmCap};
use pciem_core::prp::Prp;
use pciem_core::{
    AtomicOp, BuildError, ConfigBuilder, ConfigSpace, ConfigWrite, Device, Host, HostError, Irq,
    MmioWrite, ResetKind, Watch,
};

#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Mmio(MmioWrite),
    Config(ConfigWrite),
    Reset(ResetKind),
}

/// A device that records what it sees and, on a write to 0x0, raises the
/// interrupt the value names: 0x1vv MSI vv, 0x2vv MSI-X vv, 0x300 INTx
/// assert, 0x400 INTx deassert.
struct Probe {
    seen: Arc<Mutex<Vec<Seen>>>,
    gate: Arc<Mutex<()>>,
    watches: Vec<Watch>,
}

type Log = Arc<Mutex<Vec<Seen>>>;
type Gate = Arc<Mutex<()>>;

fn probe() -> (Probe, Log, Gate) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(Mutex::new(()));
    let watches = vec![
        Watch {
            bar: 0,
            offset: 0,
            width: 4,
        },
        Watch {
            bar: 0,
            offset: 8,
            width: 8,
        },
    ];
    (
        Probe {
            seen: seen.clone(),
            gate: gate.clone(),
            watches,
        },
        seen,
        gate,
    )
}

impl Device for Probe {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(0x1f0c, 0x00fe)
            .interrupt_pin(1)
            .bar(0, Bar::memory32(4096))
            .bar(2, Bar::memory64(16384))
            .msi(MsiCap::new(4).maskable(true))
            .msix(MsixCap {
                table_size: 8,
                table_bar: 2,
                table_offset: 0,
                pba_bar: 2,
                pba_offset: 0x1000,
            })
            .pm(PmCap::default())
            .pcie(PcieCap::endpoint(2, 1))
            .build()
    }
    fn watches(&self) -> &[Watch] {
        &self.watches
    }
    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        let _g = self.gate.lock().unwrap();
        self.seen.lock().unwrap().push(Seen::Mmio(w));
        if w.offset != 0 {
            return Ok(());
        }
        let v = w.value as u32;
        match v >> 8 {
            1 => host.raise_irq(Irq::Msi { vector: v & 0xff }),
            2 => host.raise_irq(Irq::MsiX { entry: v & 0xff }),
            3 => host.raise_irq(Irq::IntxAssert),
            4 => host.raise_irq(Irq::IntxDeassert),
            _ => Ok(()),
        }
    }
    fn config_write(&mut self, _: &dyn Host, w: ConfigWrite) -> Result<(), HostError> {
        self.seen.lock().unwrap().push(Seen::Config(w));
        Ok(())
    }
    fn reset(&mut self, _: &dyn Host, kind: ResetKind) -> Result<(), HostError> {
        self.seen.lock().unwrap().push(Seen::Reset(kind));
        Ok(())
    }
}

const MSI: u16 = 0x40;

#[test]
fn watched_writes_become_events_with_the_value() {
    let (p, seen, _) = probe();
    let mut h = Harness::new(p).unwrap();
    h.write32(0, 0x4, 7).unwrap(); // not watched
    h.mmio_write(0, 0x8, 8, 0x1122_3344_5566_7788).unwrap();
    h.mmio_write(0, 0x2, 2, 0xabcd).unwrap(); // overlaps the watch at 0x0
    h.step().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            Seen::Mmio(MmioWrite {
                bar: 0,
                offset: 8,
                width: 8,
                value: 0x1122_3344_5566_7788
            }),
            Seen::Mmio(MmioWrite {
                bar: 0,
                offset: 0,
                width: 4,
                value: 0xabcd_0000
            }),
        ]
    );
    assert!(matches!(
        h.mmio_write(0, 4096, 4, 0),
        Err(MockError::Host(HostError::BarOutOfRange { .. }))
    ));
    assert!(matches!(
        h.mmio_write(1, 0, 4, 0),
        Err(MockError::Host(HostError::NoSuchBar { bar: 1 }))
    ));
    assert!(matches!(
        h.mmio_write(0, 0, 3, 0),
        Err(MockError::BadWidth(3))
    ));
}

#[test]
fn msi_vectors_masks_and_pending() {
    let (p, _, _) = probe();
    let mut h = Harness::new(p).unwrap();
    h.write32(0, 0, 0x100).unwrap();
    h.step().unwrap();
    assert!(h.take_irqs().is_empty(), "MSI not enabled yet");
    h.enable_msi(0xfee0_0000, 0x20).unwrap();
    h.write32(0, 0, 0x103).unwrap();
    let irq = h.wait_irq(Duration::ZERO).unwrap();
    assert_eq!((irq.kind, irq.vector, irq.data), (IrqKind::Msi, 3, 0x23));
    h.write32(0, 0, 0x104).unwrap(); // only 4 vectors
    h.step().unwrap();
    assert!(h.device_errors().contains(&HostError::NoSuchVector {
        vector: 4,
        available: 4
    }));
    h.config_write(MSI + 16, 4, 0b0100).unwrap(); // mask vector 2
    h.write32(0, 0, 0x102).unwrap();
    h.step().unwrap();
    assert!(h.take_irqs().is_empty());
    assert_eq!(h.config_read(MSI + 20, 4).unwrap(), 0b0100);
    h.config_write(MSI + 16, 4, 0).unwrap();
    assert_eq!(h.wait_irq(Duration::ZERO).unwrap().vector, 2);
    assert_eq!(h.config_read(MSI + 20, 4).unwrap(), 0);
}

#[test]
fn msix_entry_mask_sets_pba_and_unmask_delivers() {
    let (p, _, _) = probe();
    let mut h = Harness::new(p).unwrap();
    let msix = 0x58u16;
    assert_eq!(h.config_read(msix, 1).unwrap(), 0x11);
    h.config_write(0x04, 2, 0x6).unwrap();
    // Entry 5: address, data, masked.
    h.write32(2, 5 * 16, 0xfee0_5000).unwrap();
    h.write32(2, 5 * 16 + 8, 0x55).unwrap();
    h.write32(2, 5 * 16 + 12, 1).unwrap();
    h.config_write(msix + 2, 2, 0x8000).unwrap();
    h.write32(0, 0, 0x205).unwrap();
    h.step().unwrap();
    assert!(h.take_irqs().is_empty());
    assert_eq!(h.read32(2, 0x1000).unwrap(), 1 << 5, "PBA bit");
    h.write32(2, 5 * 16 + 12, 0).unwrap(); // unmask
    let irq = h.wait_irq(Duration::ZERO).unwrap();
    assert_eq!(
        (irq.kind, irq.vector, irq.address, irq.data),
        (IrqKind::MsiX, 5, 0xfee0_5000, 0x55)
    );
    assert_eq!(h.read32(2, 0x1000).unwrap(), 0);
    // Function mask holds everything.
    h.config_write(msix + 2, 2, 0xc000).unwrap();
    h.write32(0, 0, 0x205).unwrap();
    h.step().unwrap();
    assert!(h.take_irqs().is_empty());
    h.config_write(msix + 2, 2, 0x8000).unwrap();
    assert_eq!(h.wait_irq(Duration::ZERO).unwrap().vector, 5);
    // Auto picks MSI-X when it is enabled.
    assert_eq!(h.irq_count(IrqKind::MsiX, 5), 2);
}

#[test]
fn intx_is_level_triggered_and_honours_disable() {
    let (p, _, _) = probe();
    let mut h = Harness::new(p).unwrap();
    h.write32(0, 0, 0x300).unwrap();
    assert_eq!(h.wait_irq(Duration::ZERO).unwrap().kind, IrqKind::Intx);
    assert_ne!(h.config_read(0x06, 2).unwrap() & 0x8, 0, "interrupt status");
    h.write32(0, 0, 0x300).unwrap(); // still asserted: no new edge
    h.step().unwrap();
    assert!(h.take_irqs().is_empty());
    h.write32(0, 0, 0x400).unwrap();
    assert_eq!(h.config_read(0x06, 2).unwrap() & 0x8, 0);
    h.config_write(0x04, 2, 0x400).unwrap(); // interrupt disable
    h.write32(0, 0, 0x300).unwrap();
    h.step().unwrap();
    assert!(h.take_irqs().is_empty());
    h.config_write(0x04, 2, 0).unwrap(); // enable: the asserted line is seen
    assert_eq!(h.wait_irq(Duration::ZERO).unwrap().kind, IrqKind::Intx);
}

#[test]
fn dma_space_bounds_guards_atomics_and_prp() {
    let (p, _, _) = probe();
    let h = Harness::new(p).unwrap();
    let mut h = h;
    let a = h.dma_alloc(100).unwrap();
    let b = h.dma_alloc(4096).unwrap();
    assert!(
        a >= 0x1_0000_0000 && b > a + 4096,
        "guard gap between buffers"
    );
    let host = h.host().clone();
    h.enable_bus_master().unwrap();
    host.dma_write(a, &[1; 100]).unwrap();
    let mut buf = [0u8; 100];
    h.dma_read(a, &mut buf).unwrap();
    assert_eq!(buf, [1; 100]);
    // Past the buffer: refused by the DMA check (enforce, the default),
    // with the kind of mistake.
    assert_eq!(
        host.dma_write(a + 50, &[0; 51]),
        Err(HostError::DmaRefused {
            addr: a + 50,
            len: 51,
            kind: Some(FaultKind::Outside { bytes: 1 })
        })
    );
    assert_eq!(
        host.dma_read(a + 4096, &mut [0; 4]),
        Err(HostError::DmaRefused {
            addr: a + 4096,
            len: 4,
            kind: Some(FaultKind::Outside { bytes: 4000 })
        })
    );
    assert_eq!(
        host.dma_read(0x1000, &mut [0; 4]),
        Err(HostError::DmaRefused {
            addr: 0x1000,
            len: 4,
            kind: Some(FaultKind::Unmapped)
        })
    );
    assert_eq!(host.dma_write(a, &[]), Err(HostError::Empty));
    assert!(matches!(
        host.dma_read(a, &mut vec![0; 17 << 20]),
        Err(HostError::TooLong { .. })
    ));
    // Atomics.
    assert_eq!(host.dma_atomic(b, AtomicOp::FetchAdd(5)), Ok(0));
    assert_eq!(
        host.dma_atomic(
            b,
            AtomicOp::CompareAndSwap {
                expected: 5,
                new: 9
            }
        ),
        Ok(5)
    );
    assert_eq!(host.dma_atomic(b, AtomicOp::FetchXor(0xf)), Ok(9));
    let mut v = [0u8; 8];
    h.dma_read(b, &mut v).unwrap();
    assert_eq!(u64::from_le_bytes(v), 6);
    assert_eq!(
        host.dma_atomic(b + 4, AtomicOp::Swap(1)),
        Err(HostError::Misaligned {
            addr: b + 4,
            align: 8
        })
    );
    // PRP: three pages through a list.
    let pages: Vec<u64> = (0..3).map(|_| h.dma_alloc(4096).unwrap()).collect();
    let list = h.dma_alloc(4096).unwrap();
    let entries: Vec<u8> = pages[1..].iter().flat_map(|p| p.to_le_bytes()).collect();
    h.dma_write(list, &entries).unwrap();
    let data: Vec<u8> = (0..3 * 4096).map(|i| (i % 251) as u8).collect();
    host.dma_write_prp(
        Prp {
            prp1: pages[0],
            prp2: list,
            page_size: 0,
        },
        &data,
    )
    .unwrap();
    let mut back = vec![0u8; 3 * 4096];
    host.dma_read_prp(
        Prp {
            prp1: pages[0],
            prp2: list,
            page_size: 0,
        },
        &mut back,
    )
    .unwrap();
    assert_eq!(back, data);
    let mut page2 = vec![0u8; 4096];
    h.dma_read(pages[2], &mut page2).unwrap();
    assert_eq!(&page2[..], &data[8192..]);
    assert!(h.dma_free(a));
    assert!(!h.dma_free(a));
    assert_eq!(
        host.dma_read(a, &mut [0; 1]),
        Err(HostError::DmaRefused {
            addr: a,
            len: 1,
            kind: Some(FaultKind::AfterUnmap)
        })
    );
}

#[test]
fn p2p_only_inside_registered_regions() {
    let (p, _, _) = probe();
    let mut h = Harness::new(p).unwrap();
    h.enable_bus_master().unwrap();
    let host = h.host().clone();
    assert_eq!(
        host.p2p_write(0xd000_0000, &[1]),
        Err(HostError::P2pDenied {
            addr: 0xd000_0000,
            len: 1
        })
    );
    h.add_p2p_region(0xd000_0000, 0x1000);
    host.p2p_write(0xd000_0ff0, &[7; 16]).unwrap();
    assert!(host.p2p_write(0xd000_0ff1, &[7; 16]).is_err());
    let mut b = [0u8; 16];
    h.peer_read(0xd000_0ff0, &mut b).unwrap();
    assert_eq!(b, [7; 16]);
}

#[test]
fn config_changes_and_resets_become_events() {
    let (p, seen, _) = probe();
    let mut h = Harness::new(p).unwrap();
    h.config_write(0x04, 2, 0x6).unwrap();
    h.config_write(0x04, 2, 0x6).unwrap(); // no change: no event
    h.config_write(0x00, 4, 0xffff_ffff).unwrap(); // read-only: no event
    let pcie = h.host().lock_config(|c| c.find_capability(0x10)).unwrap();
    h.config_write(pcie + 8, 2, 0x8000).unwrap(); // FLR
    h.step().unwrap();
    let first = seen.lock().unwrap().clone();
    assert_eq!(
        first[0],
        Seen::Config(ConfigWrite {
            offset: 4,
            width: 2,
            value: 6
        })
    );
    assert_eq!(first.last(), Some(&Seen::Reset(ResetKind::Flr)));
    assert_eq!(
        first.len(),
        3,
        "command change, devctl change, FLR: {first:?}"
    );
    assert_eq!(
        h.config_read(0x04, 2).unwrap(),
        0,
        "FLR restores the initial command register"
    );
    let pm = h.host().lock_config(|c| c.find_capability(0x01)).unwrap();
    h.config_write(pm + 4, 2, 3).unwrap();
    h.config_write(pm + 4, 2, 0).unwrap();
    h.step().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.last(), Some(&Seen::Reset(ResetKind::D3HotToD0)));
}

#[test]
fn bad_watches_are_refused() {
    let (mut p, _, _) = probe();
    p.watches = vec![Watch {
        bar: 1,
        offset: 0,
        width: 4,
    }];
    assert!(matches!(
        Harness::new(p),
        Err(MockError::BadWatch {
            reason: "no such BAR",
            ..
        })
    ));
    let (mut p, _, _) = probe();
    p.watches = vec![Watch {
        bar: 0,
        offset: 2,
        width: 4,
    }];
    assert!(matches!(Harness::new(p), Err(MockError::BadWatch { .. })));
    let (mut p, _, _) = probe();
    p.watches = (0..5)
        .map(|i| Watch {
            bar: 0,
            offset: i * 4,
            width: 4,
        })
        .collect();
    assert!(matches!(Harness::new(p), Err(MockError::BadWatch { .. })));
}

#[test]
fn overflow_is_counted_when_the_device_falls_behind() {
    let (p, seen, gate) = probe();
    let mut h = Harness::threaded(p).unwrap();
    let total = 3000u32;
    {
        let _hold = gate.lock().unwrap();
        for i in 0..total {
            h.write32(0, 0x8, i).unwrap();
        }
    }
    let lost = h.events_lost();
    assert!(
        lost > 0,
        "the ring holds 1023 events; 3000 with the device blocked must overflow"
    );
    let _ = h.into_device().unwrap();
    let handled = seen.lock().unwrap().len() as u64;
    assert_eq!(
        handled + lost,
        total as u64,
        "every event is either handled or counted lost"
    );
}

#[test]
fn threaded_mode_shuts_down_cleanly() {
    for _ in 0..20 {
        let (p, seen, _) = probe();
        let mut h = Harness::threaded(p).unwrap();
        h.write32(0, 0x8, 1).unwrap();
        drop(h);
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "published events are handled before the thread stops"
        );
    }
    let (p, _, _) = probe();
    let mut h = Harness::threaded(p).unwrap();
    assert!(matches!(h.step(), Err(MockError::Threaded)));
}

#[test]
fn both_device_wait_modes_deliver_every_command_in_order() {
    use pciem_backend_mock::DeviceWait;
    for wait in [DeviceWait::BusyPoll, DeviceWait::Sleep] {
        let (p, seen, _) = probe();
        let mut h = Harness::threaded_with(p, wait).unwrap();
        h.enable_msi(0xfee0_0000, MSI).unwrap();
        assert!(
            h.poll_irq().is_none(),
            "{wait:?}: no interrupt before a command"
        );
        for i in 0..500u32 {
            // MSI vector 0 for each command; spin on poll_irq as a driver
            // spins on a status register.
            h.write32(0, 0, 0x100).unwrap();
            let start = std::time::Instant::now();
            let irq = loop {
                if let Some(irq) = h.poll_irq() {
                    break irq;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{wait:?}: command {i} never answered"
                );
                std::thread::yield_now();
            };
            assert_eq!((irq.kind, irq.data), (IrqKind::Msi, MSI as u32));
        }
        assert!(
            h.poll_irq().is_none(),
            "{wait:?}: one interrupt per command"
        );
        let d = h.into_device().unwrap();
        drop(d);
        let mmio = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| matches!(s, Seen::Mmio(_)))
            .count();
        assert_eq!(mmio, 500, "{wait:?}");
    }
}

#[test]
fn wait_irq_still_wakes_a_sleeping_driver() {
    let (p, _, _) = probe();
    let mut h = Harness::threaded(p).unwrap();
    h.enable_msi(0xfee0_0000, MSI).unwrap();
    for _ in 0..50 {
        h.write32(0, 0, 0x101).unwrap();
        let irq = h.wait_irq(Duration::from_secs(5)).unwrap();
        assert_eq!(irq.vector, 1);
    }
    assert!(matches!(
        h.wait_irq(Duration::from_millis(20)),
        Err(MockError::Timeout)
    ));
}

/// A model with its own error type: its start can fail, its timer always
/// does, and a write of 0 to 0x0 is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum OwnError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("start refused: {0}")]
    Start(&'static str),
    #[error("timer {0} is not mine")]
    Timer(u32),
    #[error("a zero write")]
    Zero,
}

struct Own {
    start_fails: bool,
    timer: bool,
}

impl Device for Own {
    type Error = OwnError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(0x1234, 0x77)
            .bar(0, Bar::memory32(4096))
            .build()
    }
    fn watches(&self) -> &[Watch] {
        &[Watch {
            bar: 0,
            offset: 0,
            width: 4,
        }]
    }
    fn start(&mut self, host: &dyn Host) -> Result<(), OwnError> {
        if self.start_fails {
            return Err(OwnError::Start("no firmware"));
        }
        if self.timer {
            host.set_timer(9, Duration::from_millis(1))?;
        }
        Ok(())
    }
    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), OwnError> {
        match w.value {
            0 => Err(OwnError::Zero),
            // An interrupt the device does not have: the host's error.
            1 => Ok(host.raise_irq(Irq::Msi { vector: 0 })?),
            _ => Ok(()),
        }
    }
    fn timer(&mut self, _: &dyn Host, id: u32) -> Result<(), OwnError> {
        Err(OwnError::Timer(id))
    }
}

#[test]
fn a_models_own_errors_reach_the_test_typed_and_in_order() {
    let own = |start_fails, timer| Own { start_fails, timer };
    let mut h = Harness::new(own(false, true)).unwrap();
    h.write32(0, 0, 0).unwrap();
    h.write32(0, 0, 1).unwrap();
    h.write32(0, 0, 2).unwrap();
    assert_eq!(h.advance(Duration::from_millis(1)).unwrap(), 1);
    let want = [
        OwnError::Zero,
        OwnError::Host(HostError::IrqNotEnabled { kind: "MSI" }),
        OwnError::Timer(9),
    ];
    assert_eq!(h.device_errors(), want);
    assert_eq!(h.take_device_errors(), want);
    assert_eq!(h.device_errors(), []);

    // Threaded, they cross from the device's thread typed too.
    let mut h = Harness::threaded(own(false, false)).unwrap();
    h.write32(0, 0, 0).unwrap();
    h.write32(0, 0, 1).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while h.device_errors().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(h.device_errors(), want[..2]);

    // A failing start says why in the model's words.
    assert_eq!(
        Harness::new(own(true, false)).err(),
        Some(MockError::Start("start refused: no firmware".into()))
    );
}
