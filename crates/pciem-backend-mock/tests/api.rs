//! The device-model API a driver-side test leans on: timers on the mock's
//! virtual clock, typed DMA, 64-bit registers, MSI-X set-up, PRP lists
//! built like a driver's, and a model that is neither `Send` nor
//! `'static` in stepping mode.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use pciem_backend_mock::{Harness, IrqKind, MockError};
use pciem_core::config::{Bar, MsixCap};
use pciem_core::{
    BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, HostExt, Irq, MmioWrite, Watch,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A descriptor as a device reads it from host memory.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u32,
}

/// A watchdog: a write of N to 0x0 arms timer 1 for N ms; when it fires,
/// MSI-X entry 0 and a count at 0x8; a write of 0 disarms it. A write of a
/// bus address to 0x10 makes it read a `Desc` there and write it back with
/// `flags` doubled. The log is an `Rc`: the model is not `Send`.
struct Watchdog {
    log: Log,
    fired: u64,
    watches: Vec<Watch>,
}

impl Device for Watchdog {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(0x1f0c, 0x7e60)
            .bar(0, Bar::memory64(16384))
            .msix(MsixCap {
                table_size: 4,
                table_bar: 0,
                table_offset: 0x2000,
                pba_bar: 0,
                pba_offset: 0x3000,
            })
            .build()
    }
    fn watches(&self) -> &[Watch] {
        &self.watches
    }
    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        match w.offset {
            0 if w.value == 0 => host.cancel_timer(1),
            0 => host.set_timer(1, Duration::from_millis(w.value)),
            _ => {
                let mut d: Desc = host.read_obj(w.value)?;
                d.flags *= 2;
                host.write_obj(w.value, &d)
            }
        }
    }
    fn timer(&mut self, host: &dyn Host, id: u32) -> Result<(), HostError> {
        self.fired += 1;
        self.log.borrow_mut().push((id, Duration::ZERO));
        host.write_u64(0, 8, self.fired)?;
        host.raise_irq(Irq::MsiX { entry: 0 })
    }
}

type Log = Rc<RefCell<Vec<(u32, Duration)>>>;

fn watchdog() -> (Watchdog, Log) {
    let log = Rc::new(RefCell::new(Vec::new()));
    let w = |offset| Watch {
        bar: 0,
        offset,
        width: 8,
    };
    (
        Watchdog {
            log: log.clone(),
            fired: 0,
            watches: vec![w(0), w(0x10)],
        },
        log,
    )
}

#[test]
fn timers_fire_on_the_virtual_clock_in_order() {
    let (dog, log) = watchdog();
    let mut h = Harness::new(dog).unwrap();
    assert_eq!(h.enable_msix(4).unwrap(), 4);
    h.write64(0, 0, 100).unwrap();
    assert_eq!(h.advance(Duration::from_millis(99)).unwrap(), 0, "not yet");
    assert_eq!(h.now(), Duration::from_millis(99));
    assert_eq!(h.advance(Duration::from_millis(1)).unwrap(), 1);
    assert_eq!(h.read64(0, 8).unwrap(), 1, "the handler ran");
    let irq = h.wait_irq(Duration::ZERO).unwrap();
    assert_eq!((irq.kind, irq.vector), (IrqKind::MsiX, 0));
    assert_eq!(irq.address, 0xfee0_0000, "the address enable_msix wrote");
    // Re-armed, then re-armed again: only the last deadline counts.
    h.write64(0, 0, 50).unwrap();
    h.write64(0, 0, 10).unwrap();
    assert_eq!(h.advance(Duration::from_millis(10)).unwrap(), 1);
    assert_eq!(h.advance(Duration::from_millis(100)).unwrap(), 0);
    // Cancelled.
    h.write64(0, 0, 5).unwrap();
    h.write64(0, 0, 0).unwrap();
    assert_eq!(h.advance(Duration::from_secs(1)).unwrap(), 0);
    assert_eq!(log.borrow().len(), 2);
    assert!(h.device_errors().is_empty(), "{:?}", h.device_errors());
}

/// A model that arms three timers at start: they fire in deadline order,
/// ties by id.
struct Two {
    seen: Log,
    now: Rc<RefCell<Duration>>,
}

impl Device for Two {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(0x1f0c, 0x7e61)
            .bar(0, Bar::memory32(4096))
            .build()
    }
    fn watches(&self) -> &[Watch] {
        &[]
    }
    fn start(&mut self, host: &dyn Host) -> Result<(), HostError> {
        host.set_timer(9, Duration::from_millis(30))?;
        host.set_timer(4, Duration::from_millis(20))?;
        host.set_timer(7, Duration::from_millis(20))
    }
    fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
        Ok(())
    }
    fn timer(&mut self, _: &dyn Host, id: u32) -> Result<(), HostError> {
        self.seen.borrow_mut().push((id, *self.now.borrow()));
        Ok(())
    }
}

#[test]
fn due_timers_fire_by_deadline_then_id() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let now = Rc::new(RefCell::new(Duration::ZERO));
    let mut h = Harness::new(Two {
        seen: seen.clone(),
        now,
    })
    .unwrap();
    assert_eq!(h.advance(Duration::from_secs(1)).unwrap(), 3);
    let ids: Vec<u32> = seen.borrow().iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [4, 7, 9]);
    assert_eq!(h.now(), Duration::from_secs(1));
}

/// `Send` models only: the threaded mode refuses timers with a reason.
struct Plain;

impl Device for Plain {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(0x1f0c, 0x7e62)
            .bar(0, Bar::memory32(4096))
            .build()
    }
    fn watches(&self) -> &[Watch] {
        &[]
    }
    fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
        Ok(())
    }
}

#[test]
fn threaded_mode_refuses_timers_clearly() {
    let mut h = Harness::threaded(Plain).unwrap();
    let host = h.host().clone();
    let e = host.set_timer(1, Duration::from_millis(1)).unwrap_err();
    assert!(
        matches!(e, HostError::Unsupported(why) if why.contains("virtual")),
        "{e}"
    );
    assert!(matches!(
        h.advance(Duration::from_millis(1)),
        Err(MockError::Threaded)
    ));
}

#[test]
fn typed_dma_both_sides() {
    let (dog, _) = watchdog();
    let mut h = Harness::new(dog).unwrap();
    h.enable_bus_master().unwrap();
    let a = h.dma_alloc(64).unwrap();
    let d = Desc {
        addr: 0x1234_5678_9abc,
        len: 512,
        flags: 21,
    };
    h.dma_write_obj(a + 8, &d).unwrap();
    h.write64(0, 0x10, a + 8).unwrap();
    h.step().unwrap();
    let back: Desc = h.dma_read_obj(a + 8).unwrap();
    assert_eq!(back, Desc { flags: 42, ..d });
    // Past the buffer: the typed read fails like any DMA.
    let host = h.host().clone();
    assert!(host.read_obj::<Desc>(a + 60).is_err());
}

#[test]
fn build_prp_describes_what_the_walker_reads_back() {
    let (dog, _) = watchdog();
    let mut h = Harness::new(dog).unwrap();
    h.enable_bus_master().unwrap();
    let host = h.host().clone();
    // 600 pages: more than one list page (511 entries and a chain pointer).
    let pages: Vec<u64> = (0..600).map(|_| h.dma_alloc(4096).unwrap()).collect();
    for (n, len) in [(1, 100), (2, 4096 + 8), (600, 600 * 4096 - 512)] {
        let (prp, lists) = h.build_prp(&pages[..n], 512, len).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        host.dma_write_prp(prp, &data).unwrap();
        let mut back = vec![0u8; len];
        host.dma_read_prp(prp, &mut back).unwrap();
        assert_eq!(back, data, "{n} pages");
        assert_eq!(lists.len(), if n == 600 { 2 } else { 0 }, "{n} pages");
        for l in lists {
            assert!(h.dma_free(l));
        }
    }
    assert!(
        h.build_prp(&pages[..1], 2, 8).is_err(),
        "offset not a dword"
    );
    assert!(h.build_prp(&pages[..1], 0, 8192).is_err(), "too few pages");
}
