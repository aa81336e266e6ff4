//! Multi-function devices on the mock: each function its own configuration
//! space, BARs, interrupts, DMA and events; bad function sets refused as
//! the kernel refuses them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pciem_backend_mock::functions::{FunctionModel, MultiHarness};
use pciem_backend_mock::{IrqKind, MockError};
use pciem_core::config::{Bar, MsiCap, MsixCap, PcieCap};
use pciem_core::function::FunctionError;
use pciem_core::{
    AccessMap, BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq, MmioWrite,
    ResetKind, Watch,
};

const WATCH0: [Watch; 1] = [Watch {
    bar: 0,
    offset: 0,
    width: 8,
}];

/// A log of what happened, shared by every model of a test.
type Log = Arc<Mutex<Vec<String>>>;

/// A write to 0x0 stores `value + add` at 0x4 and raises `irq`; counts
/// writes, resets and timers; DMAs `value` as an address when `dma`.
struct Model {
    name: &'static str,
    device: u16,
    add: u32,
    irq: Irq,
    dma: bool,
    writes: u32,
    resets: u32,
    log: Log,
}

impl Model {
    fn boxed(name: &'static str, device: u16, add: u32, irq: Irq, log: &Log) -> Box<Self> {
        Box::new(Model {
            name,
            device,
            add,
            irq,
            dma: false,
            writes: 0,
            resets: 0,
            log: log.clone(),
        })
    }
}

impl Device for Model {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        let b = ConfigBuilder::new(0x1f0c, self.device)
            .bar(0, Bar::memory32(16384))
            .pcie(PcieCap::endpoint(3, 4));
        match self.irq {
            Irq::MsiX { .. } => b
                .msix(MsixCap {
                    table_size: 2,
                    table_bar: 0,
                    table_offset: 0x2000,
                    pba_bar: 0,
                    pba_offset: 0x3000,
                })
                .build(),
            Irq::IntxAssert => b.interrupt_pin(1).build(),
            _ => b.msi(MsiCap::new(1)).build(),
        }
    }
    fn watches(&self) -> &[Watch] {
        &WATCH0
    }
    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        self.writes += 1;
        self.log
            .lock()
            .unwrap()
            .push(format!("{} write", self.name));
        host.write_u32(0, 0x4, w.value as u32 + self.add)?;
        if self.dma {
            host.dma_write(w.value, &[0xab; 4])?;
        }
        host.raise_irq(self.irq)
    }
    fn reset(&mut self, _: &dyn Host, kind: ResetKind) -> Result<(), HostError> {
        assert_eq!(kind, ResetKind::Flr);
        self.resets += 1;
        Ok(())
    }
    fn timer(&mut self, _: &dyn Host, id: u32) -> Result<(), HostError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} timer {id}", self.name));
        Ok(())
    }
}

fn three(log: &Log) -> MultiHarness {
    let functions: Vec<(u8, Box<dyn FunctionModel>)> = vec![
        (5, Model::boxed("f5", 0x7e55, 500, Irq::IntxAssert, log)),
        (
            0,
            Model::boxed("f0", 0x7e50, 0, Irq::Msi { vector: 0 }, log),
        ),
        (
            2,
            Model::boxed("f2", 0x7e53, 200, Irq::MsiX { entry: 1 }, log),
        ),
    ];
    let mut h = MultiHarness::new(functions).unwrap();
    h.function(0)
        .unwrap()
        .enable_msi(0xfee0_0000, 0x30)
        .unwrap();
    assert_eq!(h.function(2).unwrap().enable_msix(2).unwrap(), 2);
    h.function(5).unwrap().enable_bus_master().unwrap();
    h
}

fn writes(h: &MultiHarness) -> [u32; 3] {
    [0, 2, 5].map(|n| h.device::<Model>(n).unwrap().unwrap().writes)
}

#[test]
fn each_function_is_its_own_device() {
    let log = Log::default();
    let mut h = three(&log);
    assert_eq!(h.functions().iter().collect::<Vec<_>>(), [0, 2, 5]);
    // Each function's own identity in its own configuration space.
    for (n, id) in [(0, 0x7e50), (2, 0x7e53), (5, 0x7e55)] {
        assert_eq!(h.function(n).unwrap().config_read(2, 2).unwrap(), id);
    }
    // A BAR write to function 2 reaches function 2's model only, and only
    // function 2 interrupts (MSI-X entry 1).
    h.function(2).unwrap().write32(0, 0x0, 7).unwrap();
    h.step().unwrap();
    assert_eq!(writes(&h), [0, 1, 0]);
    assert_eq!(h.function(2).unwrap().read32(0, 0x4).unwrap(), 207);
    assert_eq!(h.function(0).unwrap().read32(0, 0x4).unwrap(), 0);
    assert_eq!(h.function(5).unwrap().read32(0, 0x4).unwrap(), 0);
    let irq = h.function(2).unwrap().poll_irq().unwrap();
    assert_eq!((irq.kind, irq.vector), (IrqKind::MsiX, 1));
    assert!(h.function(0).unwrap().poll_irq().is_none());
    assert!(h.function(5).unwrap().poll_irq().is_none());
    // Function 5's INTx is its own.
    h.function(5).unwrap().write32(0, 0x0, 1).unwrap();
    h.step().unwrap();
    assert_eq!(writes(&h), [0, 1, 1]);
    let irq = h.function(5).unwrap().poll_irq().unwrap();
    assert_eq!(irq.kind, IrqKind::Intx);
    assert_eq!(
        h.function(5).unwrap().config_read(0x06, 2).unwrap() & 0x8,
        0x8
    );
    assert_eq!(
        h.function(0).unwrap().config_read(0x06, 2).unwrap() & 0x8,
        0
    );
    // And function 0's MSI.
    h.function(0).unwrap().write32(0, 0x0, 3).unwrap();
    let irq = h
        .function(0)
        .unwrap()
        .wait_irq(Duration::from_secs(1))
        .unwrap();
    assert_eq!((irq.kind, irq.data), (IrqKind::Msi, 0x30));
    assert_eq!(writes(&h), [1, 1, 1]);
    assert!(h.device_errors().is_empty(), "{:?}", h.device_errors());
    assert_eq!(*log.lock().unwrap(), ["f2 write", "f5 write", "f0 write"]);
}

#[test]
fn a_functions_reset_leaves_the_others_alone() {
    let log = Log::default();
    let mut h = three(&log);
    h.function(0).unwrap().write32(0, 0x8, 0x1234).unwrap();
    // FLR of function 2.
    let f2 = h.function(2).unwrap();
    let pcie = f2.host().lock_config(|c| c.find_capability(0x10)).unwrap();
    let devctl = f2.config_read(pcie + 0x08, 2).unwrap();
    f2.config_write(pcie + 0x08, 2, devctl | 1 << 15).unwrap();
    h.step().unwrap();
    let resets = [0, 2, 5].map(|n| h.device::<Model>(n).unwrap().unwrap().resets);
    assert_eq!(resets, [0, 1, 0]);
    // Function 2's command register is back to its reset value (memory
    // and bus mastering off); function 0's and 5's are not.
    assert_eq!(
        h.function(2).unwrap().config_read(0x04, 2).unwrap() & 0x6,
        0
    );
    assert_eq!(
        h.function(0).unwrap().config_read(0x04, 2).unwrap() & 0x6,
        0x6
    );
    assert_eq!(
        h.function(5).unwrap().config_read(0x04, 2).unwrap() & 0x6,
        0x6
    );
    // Function 0's MSI still works, its BAR still holds what it held.
    assert_eq!(h.function(0).unwrap().read32(0, 0x8).unwrap(), 0x1234);
    h.function(0).unwrap().write32(0, 0x0, 1).unwrap();
    h.step().unwrap();
    assert_eq!(h.function(0).unwrap().irq_count(IrqKind::Msi, 0), 1);
    // Function 2's MSI-X is off after its reset: its model's interrupt
    // fails, reported as its error and no other function's.
    h.function(2).unwrap().write32(0, 0x0, 1).unwrap();
    h.step().unwrap();
    let errors = h.device_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 2);
}

#[test]
fn each_function_reaches_only_its_own_dma_buffers() {
    let log = Log::default();
    let mut m0 = Model::boxed("f0", 0x7e50, 0, Irq::Msi { vector: 0 }, &log);
    let mut m1 = Model::boxed("f1", 0x7e51, 0, Irq::Msi { vector: 0 }, &log);
    m0.dma = true;
    m1.dma = true;
    let mut h = MultiHarness::new(vec![(0, m0), (1, m1)]).unwrap();
    for n in [0, 1] {
        h.function(n)
            .unwrap()
            .enable_msi(0xfee0_0000, 0x30 + n as u16)
            .unwrap();
    }
    let buf0 = h.function(0).unwrap().dma_alloc(64).unwrap();
    // Function 0's driver hands function 0 its own buffer: it lands.
    h.function(0).unwrap().write64(0, 0x0, buf0).unwrap();
    let mut got = [0u8; 4];
    h.function(0).unwrap().dma_read(buf0, &mut got).unwrap();
    assert_eq!(got, [0xab; 4]);
    // Function 1 given function 0's buffer: refused, nothing moved.
    h.function(0).unwrap().dma_write(buf0, &[0; 4]).unwrap();
    h.function(1).unwrap().write64(0, 0x0, buf0).unwrap();
    h.step().unwrap();
    h.function(0).unwrap().dma_read(buf0, &mut got).unwrap();
    assert_eq!(got, [0; 4]);
    let errors = h.device_errors();
    assert!(
        matches!(
            errors.as_slice(),
            [(1, HostError::DmaRefused { .. } | HostError::Unmapped { .. })]
        ),
        "{errors:?}"
    );
}

#[test]
fn timers_of_all_functions_fire_in_deadline_order() {
    struct Ticker {
        name: &'static str,
        delays: &'static [u64],
        log: Log,
    }
    impl Device for Ticker {
        type Error = HostError;
        fn config_space(&self) -> Result<ConfigSpace, BuildError> {
            ConfigBuilder::new(0x1f0c, 0x7e50)
                .bar(0, Bar::memory32(4096))
                .build()
        }
        fn watches(&self) -> &[Watch] {
            &[]
        }
        fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
            Ok(())
        }
        fn start(&mut self, host: &dyn Host) -> Result<(), HostError> {
            for (id, ms) in self.delays.iter().enumerate() {
                host.set_timer(id as u32, Duration::from_millis(*ms))?;
            }
            Ok(())
        }
        fn timer(&mut self, _: &dyn Host, id: u32) -> Result<(), HostError> {
            self.log.lock().unwrap().push(format!("{} {id}", self.name));
            Ok(())
        }
    }
    let log = Log::default();
    let t = |name, delays| {
        Box::new(Ticker {
            name,
            delays,
            log: log.clone(),
        }) as Box<dyn FunctionModel>
    };
    let mut h =
        MultiHarness::new(vec![(0, t("f0", &[30, 10])), (4, t("f4", &[20, 40, 10]))]).unwrap();
    assert_eq!(h.advance(Duration::from_millis(35)).unwrap(), 4);
    assert_eq!(*log.lock().unwrap(), ["f0 1", "f4 2", "f4 0", "f0 0"]);
    assert_eq!(h.function(0).unwrap().now(), Duration::from_millis(35));
    assert_eq!(h.function(4).unwrap().now(), Duration::from_millis(35));
    assert_eq!(h.advance(Duration::from_millis(10)).unwrap(), 1);
    assert_eq!(log.lock().unwrap().last().unwrap(), "f4 1");
}

#[test]
fn bad_function_sets_are_refused_as_the_kernel_refuses_them() {
    let log = Log::default();
    let m = |id| Model::boxed("m", id, 0, Irq::Msi { vector: 0 }, &log) as Box<dyn FunctionModel>;
    let err = |fs| MultiHarness::new(fs).unwrap_err();
    assert_eq!(
        err(vec![(0, m(1)), (8, m(2))]),
        MockError::Function(FunctionError::OutOfRange(8))
    );
    assert_eq!(
        err(vec![(1, m(1)), (3, m(2))]),
        MockError::Function(FunctionError::NoFunctionZero)
    );
    assert_eq!(
        err(vec![]),
        MockError::Function(FunctionError::NoFunctionZero)
    );
    assert_eq!(
        err(vec![(0, m(1)), (2, m(2)), (2, m(3))]),
        MockError::Function(FunctionError::Duplicate(2))
    );
    let mut h = MultiHarness::new(vec![(0, m(1)), (1, m(2))]).unwrap();
    assert_eq!(
        h.function(4).err().unwrap(),
        MockError::Function(FunctionError::NoSuchFunction(4))
    );
    assert_eq!(
        h.function(9).err().unwrap(),
        MockError::Function(FunctionError::OutOfRange(9))
    );
    assert!(h.device::<Model>(3).is_err());
    // The right model type, or none.
    assert!(h.device::<Model>(1).unwrap().is_some());
    assert!(h.device::<String>(1).unwrap().is_none());
}

#[test]
fn a_functions_trapped_bar_is_answered_by_its_model() {
    let log = Log::default();
    let m = |id| Model::boxed("m", id, 0, Irq::Msi { vector: 0 }, &log) as Box<dyn FunctionModel>;
    /// Answers reads of 0x40 with 0x600D_0000 + stores seen.
    struct Trapped(u64);
    fn builder() -> ConfigBuilder {
        ConfigBuilder::new(0x1f0c, 0x7e5f)
            .bar(0, Bar::memory32(4096))
            .trap_bar(0)
            .trap_range(0, 0x40, 8, pciem_core::TrapPolicy::MODEL)
    }
    impl Device for Trapped {
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
            self.0 += 1;
            Ok(())
        }
        fn mmio_read(&mut self, _: &dyn Host, _: pciem_core::MmioRead) -> Result<u64, HostError> {
            Ok(0x600D_0000 + self.0)
        }
    }
    let mut h = MultiHarness::new(vec![(0, m(1)), (6, Box::new(Trapped(0)))]).unwrap();
    // Every store to function 6's trapped BAR reaches its model.
    h.function(6).unwrap().write32(0, 0x10, 1).unwrap();
    h.function(6).unwrap().write32(0, 0x14, 1).unwrap();
    assert_eq!(h.function(6).unwrap().read32(0, 0x40).unwrap(), 0x600D_0002);
    assert_eq!(h.function(6).unwrap().model_reads(), 1);
    // Function 0's BAR is plain memory.
    assert_eq!(h.function(0).unwrap().read32(0, 0x40).unwrap(), 0);
    assert_eq!(h.device::<Trapped>(6).unwrap().unwrap().0, 2);
    assert_eq!(h.device::<Model>(0).unwrap().unwrap().writes, 0);
}

#[test]
fn threaded_functions_run_on_their_own_threads() {
    let log = Log::default();
    let mut h = MultiHarness::threaded(vec![
        (
            0,
            Model::boxed("f0", 0x7e50, 1, Irq::Msi { vector: 0 }, &log),
        ),
        (
            7,
            Model::boxed("f7", 0x7e51, 70, Irq::Msi { vector: 0 }, &log),
        ),
    ])
    .unwrap();
    for n in [0, 7] {
        h.function(n)
            .unwrap()
            .enable_msi(0xfee0_0000, 0x40 + n as u16)
            .unwrap();
    }
    for _ in 0..5 {
        h.function(7).unwrap().write32(0, 0x0, 2).unwrap();
        let irq = h
            .function(7)
            .unwrap()
            .wait_irq(Duration::from_secs(5))
            .unwrap();
        assert_eq!(irq.data, 0x47);
    }
    assert!(h.function(0).unwrap().poll_irq().is_none());
    assert_eq!(h.function(7).unwrap().read32(0, 0x4).unwrap(), 72);
    assert!(h.step().is_err(), "stepping is for stepping mode");
    let models = h.into_devices().unwrap();
    let counts: Vec<(u8, u32)> = models
        .into_iter()
        .map(|(n, m)| {
            let any: Box<dyn std::any::Any> = m;
            (n, any.downcast::<Model>().unwrap().writes)
        })
        .collect();
    assert_eq!(counts, [(0, 0), (7, 5)]);
}
