//! Multi-function devices: one device with up to eight functions, each a
//! [`Device`] of its own, driven from the driver's side one function at a
//! time.
//!
//! As in the kernel module, every function is a device of its own (its
//! configuration space, BARs, watches, interrupts, DMA checker and DMA
//! buffers, its events) and they share a slot: [`MultiHarness`] holds one
//! [`Harness`] per function, and a driver-side test addresses a function
//! with [`MultiHarness::function`], which offers the whole single-function
//! driver API (configuration cycles, BAR accesses, interrupts, DMA, FLR).
//! An event reaches only its function's model; a reset of one function
//! leaves the others alone; a function's trapped BARs are its own (its
//! model answers its reads). The function set follows the kernel's rules
//! ([`pciem_core::function::FunctionSet`]): numbers 0..7, each once,
//! function 0 among them; bad input is a [`MockError::Function`].
//!
//! Each function's DMA buffers are its own: as with the kernel's DMA
//! checker, a function reaches only memory its own driver instance
//! mapped. Models are boxed ([`FunctionBox`]), so they must be `Send +
//! 'static`; [`FunctionBox::downcast_ref`] gets a model's state back.
//!
//! ```
//! use pciem_backend_mock::functions::MultiHarness;
//! use pciem_backend_mock::IrqKind;
//! use pciem_core::config::{Bar, MsiCap};
//! use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq,
//!                  MmioWrite, Watch};
//!
//! /// A port: counts writes to its register 0x0 and raises MSI 0.
//! struct Port {
//!     id: u16,
//!     writes: u32,
//! }
//! impl Device for Port {
//!     type Error = HostError;
//!     fn config_space(&self) -> Result<ConfigSpace, BuildError> {
//!         ConfigBuilder::new(0x1234, self.id).bar(0, Bar::memory32(4096))
//!             .msi(MsiCap::new(1)).build()
//!     }
//!     fn watches(&self) -> &[Watch] {
//!         &[Watch { bar: 0, offset: 0, width: 4 }]
//!     }
//!     fn mmio_write(&mut self, host: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
//!         self.writes += 1;
//!         host.raise_irq(Irq::Msi { vector: 0 })
//!     }
//! }
//!
//! let mut h = MultiHarness::new(vec![
//!     (0, Box::new(Port { id: 0x10, writes: 0 })),
//!     (2, Box::new(Port { id: 0x20, writes: 0 })),
//! ]).unwrap();
//! assert!(h.functions().is_multi());
//! h.function(0).unwrap().enable_msi(0xfee0_0000, 0x40).unwrap();
//! h.function(2).unwrap().enable_msi(0xfee0_0000, 0x41).unwrap();
//! // The driver of function 2 writes its register: only port 2 hears it,
//! // and only function 2 interrupts.
//! h.function(2).unwrap().write32(0, 0x0, 1).unwrap();
//! h.step().unwrap();
//! assert_eq!(h.device::<Port>(2).unwrap().unwrap().writes, 1);
//! assert_eq!(h.device::<Port>(0).unwrap().unwrap().writes, 0);
//! assert_eq!(h.function(2).unwrap().irq_count(IrqKind::Msi, 0), 1);
//! assert_eq!(h.function(0).unwrap().irq_count(IrqKind::Msi, 0), 0);
//! // Function 1 is a hole.
//! assert!(h.function(1).is_err());
//! ```

use std::any::Any;
use std::time::Duration;

use pciem_abi::pciem_event;
use pciem_core::access::AccessMap;
use pciem_core::config::BuildError;
use pciem_core::dmacheck::FaultReport;
use pciem_core::function::{FunctionError, FunctionSet, MAX_FUNCTIONS};
use pciem_core::{
    ConfigSpace, ConfigWrite, Device, Host, HostError, MmioRead, MmioWrite, ResetKind, Served,
    TrapError, Watch,
};

use crate::{Harness, MockError};

/// A function's model as [`MultiHarness`] holds it: any [`Device`] that
/// can move to a device thread and be downcast back. Function models
/// return [`HostError`] (`type Error = HostError;`): one harness holds
/// models of different types, so their errors share one type; a model
/// with an error type of its own runs on [`Harness`] alone.
pub trait FunctionModel: Device<Error = HostError> + Any + Send {}

impl<T: Device<Error = HostError> + Any + Send> FunctionModel for T {}

/// A boxed function model; a [`Device`] that forwards every call to the
/// model inside, so the model's own overrides run.
pub struct FunctionBox(Box<dyn FunctionModel>);

impl std::fmt::Debug for FunctionBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FunctionBox(..)")
    }
}

impl FunctionBox {
    /// Boxes `model`.
    pub fn new(model: Box<dyn FunctionModel>) -> Self {
        Self(model)
    }

    /// The model, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        let any: &dyn Any = &*self.0;
        any.downcast_ref()
    }

    /// The model, mutably, if it is a `T`.
    pub fn downcast_mut<T: Any>(&mut self) -> Option<&mut T> {
        let any: &mut dyn Any = &mut *self.0;
        any.downcast_mut()
    }

    /// The boxed model back.
    pub fn into_inner(self) -> Box<dyn FunctionModel> {
        self.0
    }
}

impl Device for FunctionBox {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        self.0.config_space()
    }
    fn watches(&self) -> &[Watch] {
        self.0.watches()
    }
    fn access_map(&self) -> Result<AccessMap, BuildError> {
        self.0.access_map()
    }
    fn start(&mut self, host: &dyn Host) -> Result<(), HostError> {
        self.0.start(host)
    }
    fn mmio_write(&mut self, host: &dyn Host, write: MmioWrite) -> Result<(), HostError> {
        self.0.mmio_write(host, write)
    }
    fn mmio_read(&mut self, host: &dyn Host, read: MmioRead) -> Result<u64, HostError> {
        self.0.mmio_read(host, read)
    }
    fn mmio_read_notify(
        &mut self,
        host: &dyn Host,
        read: MmioRead,
        value: u64,
    ) -> Result<(), HostError> {
        self.0.mmio_read_notify(host, read, value)
    }
    fn device_error(&mut self, host: &dyn Host, err: TrapError) -> Result<(), HostError> {
        self.0.device_error(host, err)
    }
    fn dma_fault(&mut self, host: &dyn Host, report: FaultReport) -> Result<(), HostError> {
        self.0.dma_fault(host, report)
    }
    fn timer(&mut self, host: &dyn Host, id: u32) -> Result<(), HostError> {
        self.0.timer(host, id)
    }
    fn config_write(&mut self, host: &dyn Host, write: ConfigWrite) -> Result<(), HostError> {
        self.0.config_write(host, write)
    }
    fn reset(&mut self, host: &dyn Host, kind: ResetKind) -> Result<(), HostError> {
        self.0.reset(host, kind)
    }
    fn handle_event(&mut self, host: &dyn Host, event: &pciem_event) -> Result<(), HostError> {
        self.0.handle_event(host, event)
    }
    fn serve_event(&mut self, host: &dyn Host, event: &pciem_event) -> Served {
        self.0.serve_event(host, event)
    }
}

/// Function models by function number, as [`MultiHarness::new`] takes
/// them and [`MultiHarness::into_devices`] gives them back.
pub type FunctionModels = Vec<(u8, Box<dyn FunctionModel>)>;

/// One harness per function.
type Slots = [Option<Harness<FunctionBox>>; MAX_FUNCTIONS as usize];

/// A multi-function device plugged into the mock host: one [`Harness`]
/// per function, addressed with [`MultiHarness::function`]. See the
/// [module documentation](self).
pub struct MultiHarness {
    set: FunctionSet,
    slots: Slots,
}

impl std::fmt::Debug for MultiHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiHarness")
            .field("functions", &self.set.iter().collect::<Vec<_>>())
            .finish()
    }
}

/// Checks the set as the kernel would, before any function is built.
fn check(functions: &[(u8, Box<dyn FunctionModel>)]) -> Result<FunctionSet, MockError> {
    Ok(FunctionSet::new(functions.iter().map(|(n, _)| *n))?)
}

impl MultiHarness {
    /// Plugs in the functions, in stepping mode (each function's model
    /// handles its events on the caller's thread, as [`Harness::new`]);
    /// each model's `start` runs in ascending function order.
    pub fn new(functions: FunctionModels) -> Result<Self, MockError> {
        Self::build(functions, Harness::new)
    }

    /// Plugs in the functions, each model on a device thread of its own
    /// ([`Harness::threaded`]).
    pub fn threaded(functions: FunctionModels) -> Result<Self, MockError> {
        Self::build(functions, Harness::threaded)
    }

    fn build(
        mut functions: FunctionModels,
        plug: impl Fn(FunctionBox) -> Result<Harness<FunctionBox>, MockError>,
    ) -> Result<Self, MockError> {
        let set = check(&functions)?;
        functions.sort_by_key(|(n, _)| *n);
        let mut slots: Slots = Default::default();
        for (n, model) in functions {
            slots[n as usize] = Some(plug(FunctionBox::new(model))?);
        }
        Ok(Self { set, slots })
    }

    /// The device's functions.
    pub fn functions(&self) -> FunctionSet {
        self.set
    }

    /// Function `n`'s driver-side harness: everything a driver instance
    /// bound to that function does goes through it. A function the device
    /// does not have is [`FunctionError::NoSuchFunction`] (or
    /// [`FunctionError::OutOfRange`] for 8 and above), as the kernel's
    /// `SET_FUNCTION` refuses it.
    pub fn function(&mut self, n: u8) -> Result<&mut Harness<FunctionBox>, MockError> {
        self.set.check(n)?;
        self.slots
            .get_mut(n as usize)
            .and_then(Option::as_mut)
            .ok_or(MockError::Function(FunctionError::NoSuchFunction(n)))
    }

    /// Function `n`'s harness, shared (for what does not drive the
    /// device: [`Harness::host`], [`Harness::device`], errors).
    pub fn function_ref(&self, n: u8) -> Result<&Harness<FunctionBox>, MockError> {
        self.set.check(n)?;
        self.slots
            .get(n as usize)
            .and_then(Option::as_ref)
            .ok_or(MockError::Function(FunctionError::NoSuchFunction(n)))
    }

    /// Function `n`'s model, in stepping mode, if it is a `T` (`Ok(None)`
    /// when it is not, or when the model runs on its own thread).
    pub fn device<T: Any>(&self, n: u8) -> Result<Option<&T>, MockError> {
        Ok(self
            .function_ref(n)?
            .device()
            .and_then(FunctionBox::downcast_ref))
    }

    /// In stepping mode, lets every function's model handle its pending
    /// events (ascending function order); returns how many were handled.
    pub fn step(&mut self) -> Result<usize, MockError> {
        let mut n = 0;
        for h in self.slots.iter_mut().flatten() {
            n += h.step()?;
        }
        Ok(n)
    }

    /// Moves every function's virtual clock forward by `by`, firing the
    /// timers of all functions in deadline order across functions (ties by
    /// function number, then id), each model's events handled before the
    /// next timer. Returns how many fired.
    pub fn advance(&mut self, by: Duration) -> Result<usize, MockError> {
        let mut fired = 0;
        let targets: Vec<(usize, Duration)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, h)| Some((i, h.as_ref()?.now().saturating_add(by))))
            .collect();
        loop {
            // The earliest timer due by its function's target.
            let next = targets
                .iter()
                .filter_map(|&(i, target)| {
                    let h = self.slots[i].as_ref()?;
                    let at = h.next_timer()?;
                    (at <= target).then_some((at, i))
                })
                .min();
            let Some((at, i)) = next else { break };
            if let Some(h) = self.slots[i].as_mut() {
                let step = at.saturating_sub(h.now());
                fired += h.advance(step)?;
            }
        }
        for (i, target) in targets {
            if let Some(h) = self.slots[i].as_mut() {
                let step = target.saturating_sub(h.now());
                fired += h.advance(step)?;
            }
        }
        Ok(fired)
    }

    /// Every function's handler errors so far, with its function number.
    pub fn device_errors(&self) -> Vec<(u8, HostError)> {
        self.slots
            .iter()
            .enumerate()
            .flat_map(|(n, h)| {
                h.iter()
                    .flat_map(|h| h.device_errors())
                    .map(move |e| (n as u8, e))
            })
            .collect()
    }

    /// Stops the device threads (if any) after each handled the events
    /// already published, and hands the models back, by function number.
    pub fn into_devices(self) -> Result<FunctionModels, MockError> {
        let mut out = Vec::new();
        for (n, h) in self.slots.into_iter().enumerate() {
            if let Some(h) = h {
                out.push((n as u8, h.into_device()?.into_inner()));
            }
        }
        Ok(out)
    }
}
