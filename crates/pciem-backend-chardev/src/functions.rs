//! Multi-function devices (ABI 6) on `/dev/pciem`: one device process,
//! up to eight functions of one slot, each a [`Device`] of its own.
//!
//! [`FunctionSession::open`] describes every function (its configuration
//! image, DMA check mode and watches, after `SET_FUNCTION n` for `n` other
//! than 0), registers them together and maps each function's BARs (page
//! `16 n + b` of the instance file). [`FunctionSession::run`] then hands
//! every event to the model of the function it is tagged with
//! (`pciem_event_function(flags)`), with the tag cleared, so each model sees
//! its events as a single-function device would. Each model's [`Host`](pciem_core::Host) is
//! its function's [`FunctionHost`]: its own BARs, and interrupts, DMA,
//! atomics, peer-to-peer and irqfds that select the function before the
//! ioctl. The kernel's selection is one per device, not per thread, so
//! every host of a session shares one lock around "select, then act";
//! the selection is remembered, so a function acting repeatedly costs one
//! ioctl per action, as on a single-function device. Timers are per
//! function: ids of different functions never collide.
//!
//! Any function may trap BARs ([`Device::access_map`]): its trap
//! declarations go to its own selection, its read-response page (page
//! `16 n + 8` of the instance file) is mapped, and its models' answers to
//! model-answered reads go there; `START` is sent once, before the loop,
//! when any function traps. A set with only function 0 never calls
//! `SET_FUNCTION` and is the ABI 5 single-function device;
//! [`crate::Session`] itself never calls it.
//!
//! ```no_run
//! use pciem_backend_chardev::functions::FunctionSession;
//! use pciem_backend_chardev::{RunOptions, StopSignal};
//! # use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError,
//! #                  MmioWrite, Watch};
//! # use pciem_core::config::Bar;
//! # struct Port(u16);
//! # impl Device for Port {
//! #     type Error = HostError;
//! #     fn config_space(&self) -> Result<ConfigSpace, BuildError> {
//! #         ConfigBuilder::new(0x1234, self.0).bar(0, Bar::memory32(4096)).build()
//! #     }
//! #     fn watches(&self) -> &[Watch] { &[] }
//! #     fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> { Ok(()) }
//! # }
//! let (mut nic, mut audio) = (Port(1), Port(2));
//! let stop = StopSignal::new()?;
//! stop.on_termination()?;
//! let mut session = FunctionSession::open(&[(0, &nic), (1, &audio)], RunOptions::default())?;
//! let report = session.run(&mut [(0, &mut nic), (1, &mut audio)], &stop)?;
//! println!("{:?} events per function", report.events_by_function);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use pciem_abi::{pciem_event, PCIEM_MMAP_FUNCTION_STRIDE, PCIEM_MMAP_READ_RESPONSES_PGOFF};
use pciem_core::function::{self, FunctionError, FunctionSet, MAX_FUNCTIONS};
use pciem_core::{Device, HostError};

use crate::describe::{Described, Opened};
use crate::error::ChardevError;
use crate::event_loop::{LoopKind, StopSignal};
use crate::host::Shared;
pub use crate::host::{FunctionHost, FunctionIrqFd};
use crate::ioctl;
use crate::mapping::page_size;
use crate::responses::ReadResponses;
use crate::run_loop::{fire, serve, Dispatch, RunLoop};
use crate::session::{RunOptions, RunReport};

/// What a run of a multi-function session did: the counts of a
/// [`RunReport`] over all functions, each kept error with its function
/// (read through `Deref`: `report.events`, `report.errors`), and the
/// counts that are per function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionRunReport {
    /// The counts over all functions; the ring (and so `lost` and
    /// `overflow`) is shared by all functions.
    pub all: RunReport<(u8, HostError)>,
    /// Events handed to a model, per function number.
    pub events_by_function: [u64; MAX_FUNCTIONS as usize],
    /// Events tagged with a function the session does not have (a
    /// confused kernel); dropped.
    pub unrouted: u64,
}

impl Deref for FunctionRunReport {
    type Target = RunReport<(u8, HostError)>;

    fn deref(&self) -> &Self::Target {
        &self.all
    }
}

/// Checks every function's description against pciem-core's rules (the
/// set, each configuration space, trap declarations, watches) without
/// touching the kernel.
fn describe(
    functions: &[(u8, &dyn Device<Error = HostError>)],
    root_port: bool,
) -> Result<(FunctionSet, Vec<Described>), ChardevError> {
    let set = FunctionSet::new(functions.iter().map(|(n, _)| *n))?;
    if root_port && set.is_multi() {
        return Err(ChardevError::Function(FunctionError::RootPort));
    }
    let mut out = functions
        .iter()
        .map(|&(function, device)| Described::of(function, device))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|d| d.function);
    Ok((set, out))
}

/// A multi-function device registered on `/dev/pciem`, every function's
/// BARs mapped, ready to run. Dropping it removes every function.
#[derive(Debug)]
pub struct FunctionSession {
    events: RunLoop,
    set: FunctionSet,
    hosts: [Option<FunctionHost>; MAX_FUNCTIONS as usize],
    /// The files, the selection and the timers every host shares.
    shared: Arc<Shared>,
    /// Each function's read-response page, mapped when it has a trapped
    /// BAR.
    responses: [Option<ReadResponses>; MAX_FUNCTIONS as usize],
    trapped: bool,
    started: bool,
}

impl FunctionSession {
    /// Describes each `(function number, model)` to the kernel and
    /// registers them together as one device: everything is checked first
    /// (the set by [`FunctionSet::new`]: numbers 0..7, each once, function
    /// 0 among them; each configuration space, trap declarations and
    /// watches; no root port with several functions), then the control file is opened and its ABI checked,
    /// the ring mapped, the eventfd attached; for each function in
    /// ascending order `SET_FUNCTION n` (never for function 0, selected at
    /// open), `SET_CONFIG_IMAGE`, `SET_DMA_CHECK` unless
    /// [`RunOptions::dma_check`] is the default, its trap declarations
    /// (`SET_BAR_MODE`, `ADD_TRAP_RANGE`, `SET_READ_TIMEOUT`) and
    /// `SET_WATCHPOINT` for each watch on a watch-mode BAR; `REGISTER`;
    /// then each function's BARs mapped, and the read-response page of
    /// each function with a trapped BAR.
    pub fn open(
        functions: &[(u8, &dyn Device<Error = HostError>)],
        options: RunOptions,
    ) -> Result<Self, ChardevError> {
        let (set, described) = describe(functions, options.root_port)?;
        let Opened {
            control,
            events,
            timers,
        } = Opened::open(&options)?;
        if options.root_port {
            ioctl::set_root_port(control.as_fd(), options.root_port_aer)
                .map_err(ChardevError::sys("SET_ROOT_PORT"))?;
        }
        let mut selected = 0u8;
        for d in &described {
            if d.function != selected {
                ioctl::set_function(control.as_fd(), u32::from(d.function))
                    .map_err(ChardevError::sys("SET_FUNCTION"))?;
                selected = d.function;
            }
            d.declare_image(control.as_fd(), &options)?;
            d.declare_access(control.as_fd())?;
        }
        let instance = ioctl::register(control.as_fd()).map_err(ChardevError::sys("REGISTER"))?;
        let mut maps = Vec::with_capacity(described.len());
        for d in &described {
            if d.function != selected {
                ioctl::set_function(control.as_fd(), u32::from(d.function))
                    .map_err(ChardevError::sys("SET_FUNCTION"))?;
                selected = d.function;
            }
            maps.push(d.map_bars(control.as_fd(), &instance)?);
        }
        let trapped = described.iter().any(|d| d.access.any_trapped());
        let mut responses: [Option<ReadResponses>; MAX_FUNCTIONS as usize] = Default::default();
        for d in described.iter().filter(|d| d.access.any_trapped()) {
            let pgoff = u64::from(d.function) * PCIEM_MMAP_FUNCTION_STRIDE
                + PCIEM_MMAP_READ_RESPONSES_PGOFF;
            responses[d.function as usize] = Some(
                ReadResponses::map_at(&instance, pgoff * page_size())
                    .map_err(ChardevError::sys("mmap the read-response page"))?,
            );
        }
        let shared = Arc::new(Shared::new(
            control,
            instance,
            selected,
            set.is_multi(),
            timers,
        ));
        let mut hosts: [Option<FunctionHost>; MAX_FUNCTIONS as usize] = Default::default();
        for (d, bars) in described.iter().zip(maps) {
            hosts[d.function as usize] =
                Some(FunctionHost::for_function(d.function, bars, shared.clone()));
        }
        Ok(Self {
            events,
            set,
            hosts,
            shared,
            responses,
            trapped,
            started: false,
        })
    }

    /// The device's functions.
    pub fn functions(&self) -> FunctionSet {
        self.set
    }

    /// Function `function`'s host (its BARs, interrupts, DMA), or
    /// [`FunctionError::NoSuchFunction`].
    pub fn host(&self, function: u8) -> Result<&FunctionHost, FunctionError> {
        self.set.check(function)?;
        self.hosts
            .get(function as usize)
            .and_then(Option::as_ref)
            .ok_or(FunctionError::NoSuchFunction(function))
    }

    /// The instance file returned by `REGISTER` (function `n`'s BAR `b`
    /// is at page `16 n + b`).
    pub fn instance_fd(&self) -> BorrowedFd<'_> {
        self.shared.instance()
    }

    /// The wait mechanism in use.
    pub fn loop_kind(&self) -> LoopKind {
        self.events.kind()
    }

    /// Calls each model's [`Device::start`] (ascending function number),
    /// sends `START` if any function has a trapped BAR (once per session), then hands every event to the model of its
    /// function ([`Device::serve_event`], the function tag cleared) until
    /// `stop` is requested; events already in the ring when the stop
    /// arrives are still handled. `devices` must hold one model for each
    /// function the session opened (in any order), else
    /// [`ChardevError::NoModel`] or [`ChardevError::Function`].
    pub fn run(
        &mut self,
        devices: &mut [(u8, &mut dyn Device<Error = HostError>)],
        stop: &StopSignal,
    ) -> Result<FunctionRunReport, ChardevError> {
        let index = self.index(devices)?;
        for f in self.set.iter() {
            if let (Some(i), Some(host)) = (index[f as usize], &self.hosts[f as usize]) {
                devices[i]
                    .1
                    .start(host)
                    .map_err(|e| ChardevError::Start(e.to_string()))?;
            }
        }
        if self.trapped && !self.started {
            // The device's, not a function's: nothing to select.
            ioctl::start(self.shared.control()).map_err(ChardevError::sys("START"))?;
            self.started = true;
        }
        let mut routed = ByFunction {
            devices,
            index: &index,
            hosts: &self.hosts,
            responses: &self.responses,
            report: FunctionRunReport::default(),
        };
        self.events.run(self.shared.timers(), stop, &mut routed)?;
        Ok(routed.report)
    }

    /// Where each function's model is in `devices`: every opened function
    /// has exactly one, and nothing else is there.
    fn index(
        &self,
        devices: &[(u8, &mut dyn Device<Error = HostError>)],
    ) -> Result<[Option<usize>; MAX_FUNCTIONS as usize], ChardevError> {
        FunctionSet::new(devices.iter().map(|(n, _)| *n))?;
        let mut index = [None; MAX_FUNCTIONS as usize];
        for (i, (n, _)) in devices.iter().enumerate() {
            self.set.check(*n)?;
            index[*n as usize] = Some(i);
        }
        if let Some(missing) = self.set.iter().find(|&f| index[f as usize].is_none()) {
            return Err(ChardevError::NoModel(missing));
        }
        Ok(index)
    }
}

/// The loop's events and timers each go to the model of their function,
/// on its host.
struct ByFunction<'a, 'd> {
    devices: &'a mut [(u8, &'d mut dyn Device<Error = HostError>)],
    /// Where each function's model is in `devices`.
    index: &'a [Option<usize>; MAX_FUNCTIONS as usize],
    hosts: &'a [Option<FunctionHost>; MAX_FUNCTIONS as usize],
    responses: &'a [Option<ReadResponses>; MAX_FUNCTIONS as usize],
    report: FunctionRunReport,
}

impl<'a> ByFunction<'a, '_> {
    /// Function `f`'s model (its place in `devices`) and host, if the
    /// session has the function.
    fn route(&self, f: u8) -> Option<(usize, &'a FunctionHost)> {
        let i = self.index.get(f as usize).copied().flatten()?;
        let hosts: &'a [Option<FunctionHost>; MAX_FUNCTIONS as usize] = self.hosts;
        let host = hosts.get(f as usize).and_then(Option::as_ref)?;
        Some((i, host))
    }
}

impl Dispatch for ByFunction<'_, '_> {
    type Kept = (u8, HostError);

    fn counts(&mut self) -> &mut RunReport<(u8, HostError)> {
        &mut self.report.all
    }

    fn event(&mut self, ev: &pciem_event) {
        let f = function::event_function(ev);
        let Some((i, host)) = self.route(f) else {
            self.report.unrouted += 1;
            return;
        };
        self.report.events_by_function[f as usize] += 1;
        let page = self.responses[f as usize].as_ref();
        let ev = function::untagged(ev);
        let all = &mut self.report.all;
        serve(&mut *self.devices[i].1, host, &ev, page, all, |e| (f, e));
    }

    fn timer(&mut self, key: u64) {
        let (f, id) = ((key >> 32) as u8, key as u32);
        if let Some((i, host)) = self.route(f) {
            let all = &mut self.report.all;
            fire(&mut *self.devices[i].1, host, id, all, |e| (f, e));
        }
    }
}

/// Runs the models of `devices` as one multi-function device on
/// `/dev/pciem` until `stop` is requested: [`FunctionSession::open`] then
/// [`FunctionSession::run`]. The device is removed when this returns.
pub fn run_functions(
    devices: &mut [(u8, &mut dyn Device<Error = HostError>)],
    options: RunOptions,
    stop: &StopSignal,
) -> Result<FunctionRunReport, ChardevError> {
    let view: Vec<(u8, &dyn Device<Error = HostError>)> =
        devices.iter().map(|(n, d)| (*n, &**d)).collect();
    let mut session = FunctionSession::open(&view, options)?;
    drop(view);
    session.run(devices, stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar::BarMemory;
    use crate::event_loop::WaitMode;
    use crate::host::UNKNOWN;
    use crate::mapping::Mapping;
    use crate::test_models::{adder, bar0, memfd, null, Answering, BadTrap, FakeRing};
    use crate::timers::Timers;
    use pciem_abi::PCIEM_EVENT_MMIO_WRITE;
    use pciem_core::ring::Producer;
    use pciem_core::{BuildError, Host, Irq};
    use std::time::Duration;

    fn nowhere() -> RunOptions {
        RunOptions {
            path: "/nonexistent/pciem".into(),
            ..Default::default()
        }
    }

    #[test]
    fn bad_function_sets_fail_before_touching_the_kernel() {
        let (a, b) = (adder(0), adder(1));
        let open = |fs: &[(u8, &dyn Device<Error = HostError>)]| {
            FunctionSession::open(fs, nowhere()).unwrap_err()
        };
        let e = open(&[(0, &a), (8, &b)]);
        assert!(
            matches!(e, ChardevError::Function(FunctionError::OutOfRange(8))),
            "{e}"
        );
        let e = open(&[(1, &a), (2, &b)]);
        assert!(
            matches!(e, ChardevError::Function(FunctionError::NoFunctionZero)),
            "{e}"
        );
        let e = open(&[(0, &a), (0, &b)]);
        assert!(
            matches!(e, ChardevError::Function(FunctionError::Duplicate(0))),
            "{e}"
        );
        let e = open(&[]);
        assert!(
            matches!(e, ChardevError::Function(FunctionError::NoFunctionZero)),
            "{e}"
        );
        let root = RunOptions {
            root_port: true,
            ..nowhere()
        };
        let e = FunctionSession::open(&[(0, &a), (1, &b)], root).unwrap_err();
        assert!(
            matches!(e, ChardevError::Function(FunctionError::RootPort)),
            "{e}"
        );
        // A good set gets as far as the control file.
        let e = open(&[(1, &b), (0, &a)]);
        assert!(matches!(e, ChardevError::Open { .. }), "{e}");
    }

    /// Trapped BARs are fine in any function; a bad trap declaration is
    /// refused before the kernel is touched.
    #[test]
    fn trap_declarations_are_checked_per_function() {
        let a = adder(0);
        let e =
            FunctionSession::open(&[(0, &a), (3, &Answering::default())], nowhere()).unwrap_err();
        assert!(matches!(e, ChardevError::Open { .. }), "{e}");
        let e = FunctionSession::open(&[(0, &Answering::default())], nowhere()).unwrap_err();
        assert!(matches!(e, ChardevError::Open { .. }), "{e}");
        let e = FunctionSession::open(&[(0, &a), (1, &BadTrap(2))], nowhere()).unwrap_err();
        assert!(
            matches!(e, ChardevError::Access(BuildError::TrapBarMissing(2))),
            "{e}"
        );
    }

    /// A session over stand-ins: the ring and each function's BAR0 are
    /// memfds, the files /dev/null (every ioctl fails with ENOTTY).
    struct Fake {
        session: FunctionSession,
        ring: FakeRing,
        /// Each function's BAR0 as the driver sees it.
        driver: Vec<(u8, BarMemory)>,
    }

    fn fake(functions: &[u8]) -> Fake {
        let ring = FakeRing::new();
        let set = FunctionSet::new(functions.iter().copied()).unwrap();
        let timers = Timers::new().unwrap();
        let shared = Arc::new(Shared::new(null(), null(), 0, set.is_multi(), timers));
        let mut hosts: [Option<FunctionHost>; MAX_FUNCTIONS as usize] = Default::default();
        let mut driver = Vec::new();
        for &f in functions {
            let (bars, view) = bar0();
            driver.push((f, view));
            hosts[f as usize] = Some(FunctionHost::for_function(f, bars, shared.clone()));
        }
        Fake {
            session: FunctionSession {
                events: ring.run_loop(WaitMode::Poll, 64).0,
                set,
                hosts,
                shared,
                responses: Default::default(),
                trapped: false,
                started: false,
            },
            ring,
            driver,
        }
    }

    fn write_event(function: u8, value: u64) -> pciem_event {
        function::tagged(
            &pciem_event {
                r#type: PCIEM_EVENT_MMIO_WRITE,
                size: 4,
                data: value,
                ..Default::default()
            },
            function,
        )
    }

    fn read32(bar: &BarMemory, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        bar.read(offset, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    /// Each event reaches the model of its function only, on that
    /// function's BAR; per-function timers with the same id both fire; an
    /// interrupt of a function not selected selects it first (on
    /// /dev/null the selection is what fails); an event of a function the
    /// session lacks is counted, not delivered.
    #[test]
    fn events_and_timers_reach_their_functions_model() {
        let mut f = fake(&[0, 3]);
        let mut producer = Producer::new();
        for (func, v) in [(0, 10), (3, 20), (3, 21), (0, 11), (3, 22)] {
            producer.push(&f.ring.view, &write_event(func, v)).unwrap();
        }
        producer.push(&f.ring.view, &write_event(5, 99)).unwrap();
        producer
            .push(&f.ring.view, &write_event(0, 0xdead))
            .unwrap();
        producer
            .push(&f.ring.view, &write_event(3, 0xdead))
            .unwrap();
        let stop = StopSignal::new().unwrap();
        let handle = stop.handle();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            handle.stop();
        });
        let (mut m0, mut m3) = (adder(0), adder(3));
        let report = f
            .session
            .run(&mut [(3, &mut m3), (0, &mut m0)], &stop)
            .unwrap();
        stopper.join().unwrap();
        assert_eq!((m0.writes, m3.writes), (3, 4));
        assert_eq!(report.events, 7);
        assert_eq!(report.events_by_function, [3, 0, 0, 4, 0, 0, 0, 0]);
        assert_eq!(report.unrouted, 1);
        let bar = |n: u8| &f.driver.iter().find(|(g, _)| *g == n).unwrap().1;
        assert_eq!(read32(bar(0), 0x4), 0xdead);
        assert_eq!(read32(bar(3), 0x4), 0xdead + 3);
        assert_eq!((read32(bar(0), 0x8), read32(bar(3), 0x8)), (3, 4));
        // Timer 1 of each function fired once, on its own model.
        assert_eq!((m0.fired, m3.fired, report.timers), (1, 1, 2));
        assert_eq!((read32(bar(0), 0xc), read32(bar(3), 0xc)), (1, 4));
        // Function 0 is selected at open: its MSI went straight to
        // INJECT_IRQ; function 3's had to select first.
        assert_eq!(
            report.errors,
            [
                (0, HostError::Unsupported("INJECT_IRQ")),
                (3, HostError::Unsupported("SET_FUNCTION")),
            ]
        );
    }

    #[test]
    fn a_run_needs_one_model_per_opened_function() {
        let mut f = fake(&[0, 1]);
        let stop = StopSignal::new().unwrap();
        let (mut m0, mut m1, mut m2) = (adder(0), adder(1), adder(2));
        let e = f.session.run(&mut [(0, &mut m0)], &stop).unwrap_err();
        assert!(matches!(e, ChardevError::NoModel(1)), "{e}");
        let e = f
            .session
            .run(&mut [(0, &mut m0), (1, &mut m1), (2, &mut m2)], &stop)
            .unwrap_err();
        assert!(
            matches!(e, ChardevError::Function(FunctionError::NoSuchFunction(2))),
            "{e}"
        );
        let e = f
            .session
            .run(&mut [(0, &mut m0), (0, &mut m1)], &stop)
            .unwrap_err();
        assert!(
            matches!(e, ChardevError::Function(FunctionError::Duplicate(0))),
            "{e}"
        );
        assert!(matches!(
            f.session.host(2).unwrap_err(),
            FunctionError::NoSuchFunction(2)
        ));
        assert_eq!(f.session.host(1).unwrap().function(), 1);
        assert_eq!(f.session.host(1).unwrap().bar_len(0), Some(4096));
    }

    /// Function 2's trapped BAR: its model-answered read is answered in
    /// function 2's read-response page, after the events before it, by
    /// function 2's model; START is sent once before the loop.
    #[test]
    fn a_single_trapped_function_answers_reads_in_the_response_page() {
        use pciem_abi::pciem_read_responses;
        use pciem_core::MmioRead;

        let mut f = fake(&[0, 2]);
        let page_fd = memfd(c"responses", 4096);
        f.session.responses[2] = Some(ReadResponses::map_at(&page_fd, 0).unwrap());
        f.session.trapped = true;
        let kernel_page = Mapping::shared(&page_fd, 0, 4096).unwrap();
        let mut producer = Producer::new();
        producer.push(&f.ring.view, &write_event(2, 1)).unwrap();
        producer.push(&f.ring.view, &write_event(0, 9)).unwrap();
        producer.push(&f.ring.view, &write_event(2, 2)).unwrap();
        let read = MmioRead {
            bar: 0,
            offset: 0x10,
            width: 2,
        };
        producer
            .push(&f.ring.view, &function::tagged(&read.to_event(70), 2))
            .unwrap();
        let stop = StopSignal::new().unwrap();
        stop.handle().stop();
        let (mut m0, mut m2) = (Answering(100), Answering(0));
        // /dev/null does not know START: the error names it.
        let e = f
            .session
            .run(&mut [(0, &mut m0), (2, &mut m2)], &stop)
            .unwrap_err();
        assert!(e.to_string().starts_with("START: "), "{e}");
        f.session.started = true;
        stop.handle().stop();
        let report = f
            .session
            .run(&mut [(0, &mut m0), (2, &mut m2)], &stop)
            .unwrap();
        assert_eq!((report.events, report.reads_answered), (4, 1));
        assert_eq!((m0.0, m2.0), (101, 2));
        // SAFETY: a live page of slots, read after the run returned.
        let page = unsafe { &*kernel_page.as_ptr().cast::<pciem_read_responses>() };
        assert_eq!(page.slots[70 % 64].id, 70);
        assert_eq!(page.slots[70 % 64].value, 0x0002);
    }

    /// A single function 0 never selects: its interrupt is INJECT_IRQ
    /// alone, as on a single-function device.
    #[test]
    fn a_single_function_never_selects() {
        let f = fake(&[0]);
        let host = f.session.host(0).unwrap();
        *host.shared().lock() = UNKNOWN;
        assert_eq!(
            host.raise_irq(Irq::Msi { vector: 0 }),
            Err(HostError::Unsupported("INJECT_IRQ"))
        );
        let e = host.irqfd(Irq::Msi { vector: 0 }).unwrap_err();
        assert!(e.to_string().starts_with("SET_IRQFD: "), "{e}");
        let aer = pciem_core::AerError {
            severity: pciem_core::config::root_port::Severity::Correctable,
            status: 1,
            header_log: [0; 4],
        };
        assert_eq!(
            host.inject_aer(aer),
            Err(HostError::Unsupported("INJECT_AER"))
        );
        // A multi-function host selects first, and says so.
        let f = fake(&[0, 1]);
        let e = f
            .session
            .host(1)
            .unwrap()
            .irqfd(Irq::IntxAssert)
            .unwrap_err();
        assert!(e.to_string().starts_with("SET_FUNCTION: "), "{e}");
        assert_eq!(
            f.session.host(1).unwrap().dma_write(0x1000, &[1]),
            Err(HostError::Unsupported("SET_FUNCTION"))
        );
        // After a failed selection nothing is known to be selected: even
        // function 0 selects again.
        assert_eq!(
            f.session.host(0).unwrap().dma_write(0x1000, &[1]),
            Err(HostError::Unsupported("SET_FUNCTION"))
        );
        let f = fake(&[0, 1]);
        assert_eq!(
            f.session.host(0).unwrap().dma_write(0x1000, &[1]),
            Err(HostError::Unsupported("DMA_WRITE"))
        );
    }
}
