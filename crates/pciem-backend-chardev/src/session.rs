//! Bringing a device model up on `/dev/pciem` and running its event loop.

use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use pciem_abi::{pciem_event, PCIEM_ABI_VERSION, PCIEM_RING_SIZE};
use pciem_core::dmacheck::CheckMode;
use pciem_core::{AccessMap, Device, HostError};

use crate::describe::{Described, Opened};
use crate::error::ChardevError;
use crate::event_loop::{LoopKind, StopSignal, WaitMode};
use crate::host::ChardevHost;
use crate::ioctl;
use crate::responses::ReadResponses;
use crate::run_loop::{fire, serve, Dispatch, RunLoop};

/// The default control file.
pub const DEFAULT_PATH: &str = "/dev/pciem";

/// Handler errors kept in a [`RunReport`] (the count covers all of them).
pub const KEPT_ERRORS: usize = 32;

/// How to bring the device up and wait for events.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The control file; [`DEFAULT_PATH`] by default.
    pub path: PathBuf,
    /// io-uring, poll(2), or io-uring with a poll(2) fallback (default).
    pub wait: WaitMode,
    /// Events taken from the ring per batch (at least 1).
    pub batch: usize,
    /// Print a line to stderr whenever events were lost to ring overflow.
    pub warn_lost: bool,
    /// How the module checks the model's DMA against the driver's
    /// mappings ([`CheckMode::Default`]: the module's `dma_check=`
    /// parameter, `enforce` unless set otherwise).
    pub dma_check: CheckMode,
    /// Put the device below a virtual PCIe root port with a hot-plug slot
    /// (`SET_ROOT_PORT`): Linux's pciehp then handles a surprise removal
    /// ([`pciem_core::Host::surprise_remove`]). Every BAR then needs the
    /// module's BAR pool (`phys_region=`).
    pub root_port: bool,
    /// With [`RunOptions::root_port`]: the port also has AER, so that
    /// [`pciem_core::Host::inject_aer`] reaches Linux's AER core (the
    /// device needs an AER capability of its own).
    pub root_port_aer: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            path: DEFAULT_PATH.into(),
            wait: WaitMode::Auto,
            batch: 64,
            warn_lost: true,
            dma_check: CheckMode::Default,
            root_port: false,
            root_port_aer: false,
        }
    }
}

/// What a run did. `E` is the model's [`Device::Error`]: the handlers'
/// errors are kept as the values the model returned (a failed
/// `COMPLETE_READ` of the loop itself as the model's error type made
/// `From` the [`HostError`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport<E = HostError> {
    /// Events handed to the model.
    pub events: u64,
    /// Wake-ups of the event loop.
    pub wakeups: u64,
    /// Events lost to ring overflow, from sequence-number gaps.
    pub lost: u64,
    /// The kernel's overflow counter at the end (it also counts losses
    /// after the last event seen).
    pub overflow: u64,
    /// Model-answered reads (of trapped BARs) answered; the answer may
    /// still have come too late for the kernel's read timeout.
    pub reads_answered: u64,
    /// Timers that fired ([`Device::timer`] calls).
    pub timers: u64,
    /// Handler calls that returned an error.
    pub handler_errors: u64,
    /// The first [`KEPT_ERRORS`] of those errors.
    pub errors: Vec<E>,
}

impl<E> Default for RunReport<E> {
    fn default() -> Self {
        RunReport {
            events: 0,
            wakeups: 0,
            lost: 0,
            overflow: 0,
            reads_answered: 0,
            timers: 0,
            handler_errors: 0,
            errors: Vec::new(),
        }
    }
}

impl<E> RunReport<E> {
    /// Counts a handler's error and keeps it if fewer than
    /// [`KEPT_ERRORS`] are kept.
    pub(crate) fn keep(&mut self, error: E) {
        self.handler_errors += 1;
        if self.errors.len() < KEPT_ERRORS {
            self.errors.push(error);
        }
    }
}

/// A device registered on `/dev/pciem`, its BARs mapped, ready to run.
///
/// Dropping it removes the device (the files are closed).
#[derive(Debug)]
pub struct Session {
    events: RunLoop,
    host: ChardevHost,
    access: AccessMap,
    /// Mapped when a BAR is trapped.
    responses: Option<ReadResponses>,
    /// Whether `START` was sent (it must be, once, when a BAR is trapped).
    started: bool,
}

impl Session {
    /// Describes `device` to the kernel and registers it: open the control
    /// file, check the ABI, map the ring, attach the eventfd,
    /// `SET_CONFIG_IMAGE` from [`Device::config_space`], `SET_DMA_CHECK`
    /// unless [`RunOptions::dma_check`] is the default, `SET_BAR_MODE` for
    /// each trapped BAR and `ADD_TRAP_RANGE` for each range of
    /// [`Device::access_map`] (and `SET_READ_TIMEOUT` if it sets one),
    /// `SET_WATCHPOINT` for each of [`Device::watches`] on a watch-mode
    /// BAR, `REGISTER`, map every BAR and, when a BAR is trapped, the
    /// read-response page.
    ///
    /// With a trapped BAR, drivers do not bind until [`Session::run`] sends
    /// `START`, right before its event loop, so the model can answer the
    /// reads a driver's probe makes.
    pub fn open<D: Device + ?Sized>(device: &D, options: RunOptions) -> Result<Self, ChardevError> {
        let d = Described::of(0, device)?;
        let Opened {
            control,
            events,
            timers,
        } = Opened::open(&options)?;
        d.declare_image(control.as_fd(), &options)?;
        if options.root_port {
            ioctl::set_root_port(control.as_fd(), options.root_port_aer)
                .map_err(ChardevError::sys("SET_ROOT_PORT"))?;
        }
        d.declare_access(control.as_fd())?;
        let instance = ioctl::register(control.as_fd()).map_err(ChardevError::sys("REGISTER"))?;
        let bars = d.map_bars(control.as_fd(), &instance)?;
        let responses = if d.access.any_trapped() {
            Some(
                ReadResponses::map(&instance)
                    .map_err(ChardevError::sys("mmap the read-response page"))?,
            )
        } else {
            None
        };
        Ok(Self {
            events,
            host: ChardevHost::new(control, instance, bars, timers),
            access: d.access,
            responses,
            started: false,
        })
    }

    /// The BAR modes and trap ranges declared to the kernel.
    pub fn access_map(&self) -> &AccessMap {
        &self.access
    }

    /// The host the model runs on (BARs, interrupts, DMA).
    pub fn host(&self) -> &ChardevHost {
        &self.host
    }

    /// The wait mechanism in use.
    pub fn loop_kind(&self) -> LoopKind {
        self.events.kind()
    }

    /// Calls [`Device::start`], sends `START` if a BAR is trapped (once per
    /// session), then hands every event to [`Device::serve_event`] until
    /// `stop` is requested, answering model-answered reads in the
    /// read-response page as each is served, before later events. Events
    /// already in the ring when the stop arrives are still handled.
    pub fn run<D: Device + ?Sized>(
        &mut self,
        device: &mut D,
        stop: &StopSignal,
    ) -> Result<RunReport<D::Error>, ChardevError> {
        device
            .start(&self.host)
            .map_err(|e| ChardevError::Start(e.to_string()))?;
        if self.access.any_trapped() && !self.started {
            ioctl::start(self.host.control_fd()).map_err(ChardevError::sys("START"))?;
            self.started = true;
        }
        let mut one = OneModel {
            device,
            host: &self.host,
            responses: self.responses.as_ref(),
            report: RunReport::default(),
        };
        self.events
            .run(self.host.shared().timers(), stop, &mut one)?;
        Ok(one.report)
    }
}

/// The loop's events and timers all go to the one model, on the one host.
struct OneModel<'a, D: Device + ?Sized> {
    device: &'a mut D,
    host: &'a ChardevHost,
    responses: Option<&'a ReadResponses>,
    report: RunReport<D::Error>,
}

impl<D: Device + ?Sized> Dispatch for OneModel<'_, D> {
    type Kept = D::Error;

    fn counts(&mut self) -> &mut RunReport<D::Error> {
        &mut self.report
    }

    fn event(&mut self, ev: &pciem_event) {
        let (host, page) = (self.host, self.responses);
        serve(self.device, host, ev, page, &mut self.report, |e| e);
    }

    fn timer(&mut self, key: u64) {
        // Keys are the model's u32 ids (function 0's).
        fire(self.device, self.host, key as u32, &mut self.report, |e| e);
    }
}

/// Opens the control file and checks that the module speaks our ABI (its
/// version, ring size and event size).
pub(crate) fn open_control(path: &std::path::Path) -> Result<std::os::fd::OwnedFd, ChardevError> {
    let control = open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
        ChardevError::Open {
            path: path.to_path_buf(),
            errno,
        }
    })?;
    let v = ioctl::get_version(control.as_fd()).map_err(ChardevError::sys("GET_VERSION"))?;
    for (what, kernel, ours) in [
        ("abi_version", v.abi_version, PCIEM_ABI_VERSION),
        ("ring_size", v.ring_size, PCIEM_RING_SIZE as u32),
        (
            "event_size",
            v.event_size,
            core::mem::size_of::<pciem_event>() as u32,
        ),
    ] {
        if kernel != ours {
            return Err(ChardevError::AbiMismatch { what, kernel, ours });
        }
    }
    Ok(control)
}

/// Runs `device` on `/dev/pciem` until `stop` is requested: [`Session::open`]
/// then [`Session::run`]. The device is removed when this returns.
pub fn run<D: Device + ?Sized>(
    device: &mut D,
    options: RunOptions,
    stop: &StopSignal,
) -> Result<RunReport<D::Error>, ChardevError> {
    Session::open(device, options)?.run(device, stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::{check_watches, declare_traps};
    use crate::mapping::Mapping;
    use crate::test_models::{
        adder, bar0, memfd, null, plain, watching, Answering, BadTrap, FakeRing, Picky, PickyError,
    };
    use crate::timers::Timers;
    use pciem_core::config::Bar;
    use pciem_core::Watch;
    use pciem_core::{BuildError, ConfigBuilder, MmioWrite};

    fn w(bar: u8, offset: u64, width: u8) -> Watch {
        Watch { bar, offset, width }
    }

    #[test]
    fn malformed_watches_are_refused_with_a_reason() {
        let space = plain().build().unwrap();
        assert!(check_watches(&space, &[w(0, 0, 4), w(0, 8, 8)]).is_ok());
        let reason = |ws: &[Watch]| match check_watches(&space, ws) {
            Err(ChardevError::BadWatch { reason, .. }) => reason,
            other => panic!("expected BadWatch, got {other:?}"),
        };
        assert!(reason(&[w(0, 0, 3)]).contains("width"));
        assert!(reason(&[w(0, 2, 4)]).contains("aligned"));
        assert!(reason(&[w(1, 0, 4)]).contains("no such"));
        assert!(reason(&[w(0, 4096, 4)]).contains("outside"));
        assert!(reason(&[w(0, 0, 4), w(0, 0, 4)]).contains("twice"));
        let big = ConfigBuilder::new(1, 2)
            .bar(0, Bar::memory64(1 << 33))
            .build()
            .unwrap();
        match check_watches(&big, &[w(0, 1 << 32, 4)]) {
            Err(ChardevError::BadWatch { offset, reason, .. }) => {
                assert_eq!(offset, 1 << 32);
                assert!(reason.contains("4 GiB"), "{reason}");
            }
            other => panic!("expected BadWatch, got {other:?}"),
        }
        assert!(check_watches(&big, &[w(0, 0xFFFF_FFF0, 8)]).is_ok());
        assert!(
            reason(&[w(0, 0, 4), w(0, 4, 4), w(0, 8, 4), w(0, 12, 4), w(0, 16, 4)])
                .contains("debug registers")
        );
    }

    #[test]
    fn no_control_file_says_load_the_module() {
        let options = RunOptions {
            path: "/nonexistent/pciem".into(),
            ..Default::default()
        };
        let e = Session::open(&adder(0), options).unwrap_err();
        assert_eq!(e.errno(), Some(nix::errno::Errno::ENOENT));
        let s = e.to_string();
        assert!(s.contains("/nonexistent/pciem"), "{s}");
        assert!(s.contains("load pciem.ko"), "{s}");
    }

    #[test]
    fn a_file_that_is_not_pciem_fails_at_get_version() {
        let options = RunOptions {
            path: "/dev/null".into(),
            ..Default::default()
        };
        let e = Session::open(&adder(0), options).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("GET_VERSION: "), "{s}");
        assert!(s.contains("not a PCIem control file"), "{s}");
    }

    /// The whole loop over stand-ins for the kernel: the ring and BAR0 are
    /// memfds, a producer on a second mapping plays the kernel, the control
    /// and instance files are /dev/null. Events reach the model in order
    /// across batches, losses are reported, handler errors are collected,
    /// and a stop ends the run.
    #[test]
    fn the_loop_feeds_the_model_and_reports_losses() {
        use pciem_abi::PCIEM_EVENT_MMIO_WRITE;
        use pciem_core::ring::{Producer, RING_CAPACITY};
        use std::time::{Duration, Instant};

        for mode in [WaitMode::Poll, WaitMode::Auto] {
            let ring = FakeRing::new();
            let (bars, driver_view) = bar0();
            let (events, notify) = ring.run_loop(mode, 7);
            let mut session = Session {
                events,
                host: ChardevHost::new(null(), null(), bars, Timers::new().unwrap()),
                access: AccessMap::new(),
                responses: None,
                started: false,
            };
            let view = &ring.view;
            let mut producer = Producer::new();
            let mmio = |value: u64| pciem_event {
                r#type: PCIEM_EVENT_MMIO_WRITE,
                bar: 0,
                offset: 0,
                size: 4,
                data: value,
                ..Default::default()
            };
            // More than fits before the device runs: two are lost.
            for v in 1..=RING_CAPACITY as u64 + 2 {
                let _ = producer.push(view, &mmio(v));
            }
            let stop = StopSignal::new().unwrap();
            let handle = stop.handle();
            let runner = std::thread::spawn(move || {
                let mut model = adder(0);
                let report = session.run(&mut model, &stop);
                (report, model.writes)
            });
            let count_is = |n: u32| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(10) {
                    let mut b = [0u8; 4];
                    driver_view.read(0x8, &mut b).unwrap();
                    if u32::from_ne_bytes(b) == n {
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                false
            };
            assert!(
                count_is(RING_CAPACITY as u32),
                "{mode:?}: the backlog is handled"
            );
            producer.push(view, &mmio(0xdead)).unwrap();
            nix::unistd::write(&notify, &1u64.to_ne_bytes()).unwrap();
            assert!(
                count_is(RING_CAPACITY as u32 + 1),
                "{mode:?}: the notified event is handled"
            );
            handle.stop();
            let (report, count) = runner.join().unwrap();
            let report = report.unwrap();
            assert_eq!(count, RING_CAPACITY as u32 + 1);
            assert_eq!(report.events, RING_CAPACITY as u64 + 1, "{mode:?}");
            assert_eq!((report.lost, report.overflow), (2, 2), "{mode:?}");
            assert!(report.wakeups >= 1, "{mode:?}");
            assert_eq!(report.handler_errors, 1, "{mode:?}");
            assert_eq!(report.errors, [HostError::Unsupported("INJECT_IRQ")]);
            let mut b = [0u8; 4];
            driver_view.read(0x4, &mut b).unwrap();
            assert_eq!(u32::from_ne_bytes(b), 0xdead);
        }
    }

    /// A session over stand-ins (memfds for the ring, BAR0 and the
    /// read-response page, /dev/null for the files), plus the kernel's
    /// side of the ring and a second mapping of the response page.
    struct Fake {
        session: Session,
        ring: FakeRing,
        kernel_page: Mapping,
    }

    fn fake(access: AccessMap, started: bool) -> Fake {
        let ring = FakeRing::new();
        let page_fd = memfd(c"responses", 4096);
        Fake {
            session: Session {
                events: ring.run_loop(WaitMode::Poll, 64).0,
                host: ChardevHost::new(null(), null(), bar0().0, Timers::new().unwrap()),
                access,
                responses: Some(ReadResponses::map_at(&page_fd, 0).unwrap()),
                started,
            },
            ring,
            kernel_page: Mapping::shared(&page_fd, 0, 4096).unwrap(),
        }
    }

    /// A model-answered read is answered in the response page with the
    /// model's state after every earlier event and before any later one.
    #[test]
    fn reads_are_answered_in_the_response_page_in_order() {
        use pciem_abi::{pciem_read_responses, PCIEM_EVENT_MMIO_WRITE};
        use pciem_core::ring::Producer;
        use pciem_core::MmioRead;

        let access = Answering::default().access_map().unwrap();
        let mut f = fake(access, true);
        let (session, view, kernel_page) = (&mut f.session, &f.ring.view, &f.kernel_page);
        let mut producer = Producer::new();
        let write = pciem_event {
            r#type: PCIEM_EVENT_MMIO_WRITE,
            size: 4,
            ..Default::default()
        };
        let read = MmioRead {
            bar: 0,
            offset: 0x10,
            width: 2,
        };
        for _ in 0..3 {
            producer.push(view, &write).unwrap();
        }
        producer.push(view, &read.to_event(70)).unwrap();
        producer.push(view, &write).unwrap();
        let stop = StopSignal::new().unwrap();
        stop.handle().stop();
        // Stopped before it starts: the loop still drains what is there.
        let mut model = Answering::default();
        let report = session.run(&mut model, &stop).unwrap();
        assert_eq!((report.events, report.reads_answered), (5, 1));
        assert_eq!(model.0, 4);
        // SAFETY: a live page of slots, read after the run returned.
        let page = unsafe { &*kernel_page.as_ptr().cast::<pciem_read_responses>() };
        assert_eq!(page.slots[70 % 64].id, 70);
        // Cut to the 2-byte width: 0xC0_0003 -> 0x0003.
        assert_eq!(page.slots[6].value, 0x0003);
    }

    /// The report keeps a model's own errors as the values it returned;
    /// a failing start is reported with the model's text.
    #[test]
    fn the_report_keeps_the_models_own_errors() {
        use pciem_core::ring::Producer;

        let access = Answering::default().access_map().unwrap();
        let mut f = fake(access.clone(), true);
        let mut producer = Producer::new();
        for value in [6, 7, 8] {
            let w = MmioWrite {
                bar: 0,
                offset: 0,
                width: 4,
                value,
            };
            producer.push(&f.ring.view, &w.to_event()).unwrap();
        }
        let stop = StopSignal::new().unwrap();
        stop.handle().stop();
        let mut model = Picky { start_fails: false };
        let report: RunReport<PickyError> = f.session.run(&mut model, &stop).unwrap();
        assert_eq!((report.events, report.handler_errors), (3, 1));
        assert_eq!(report.errors, [PickyError::Refused(7)]);

        let mut f = fake(access, true);
        let e = f
            .session
            .run(&mut Picky { start_fails: true }, &stop)
            .unwrap_err();
        assert!(
            matches!(&e, ChardevError::Start(text) if text == "value 0 refused"),
            "{e}"
        );
    }

    #[test]
    fn a_trapped_device_is_started_once_before_the_loop() {
        let access = Answering::default().access_map().unwrap();
        let mut f = fake(access, false);
        let stop = StopSignal::new().unwrap();
        stop.handle().stop();
        // /dev/null does not know START: the error names it.
        let e = f.session.run(&mut Answering::default(), &stop).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("START: "), "{s}");
        assert!(s.contains("does not implement"), "{s}");
        // A watch-mode device never sends it.
        let mut f = fake(AccessMap::new(), false);
        stop.handle().stop();
        assert!(f.session.run(&mut Answering::default(), &stop).is_ok());
    }

    #[test]
    fn trap_declarations_name_their_step() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let access = Answering::default().access_map().unwrap();
        let e = declare_traps(null.as_fd(), &access).unwrap_err();
        assert!(e.to_string().starts_with("SET_BAR_MODE: "), "{e}");
        assert!(declare_traps(null.as_fd(), &AccessMap::new()).is_ok());
    }

    #[test]
    fn inconsistent_trap_declarations_fail_before_touching_the_kernel() {
        let options = RunOptions {
            path: "/nonexistent/pciem".into(),
            ..Default::default()
        };
        let e = Session::open(&BadTrap(3), options).unwrap_err();
        assert!(
            matches!(e, ChardevError::Access(BuildError::TrapBarMissing(3))),
            "{e}"
        );
    }

    #[test]
    fn a_bad_watch_fails_before_touching_the_kernel() {
        let options = RunOptions {
            path: "/nonexistent/pciem".into(),
            ..Default::default()
        };
        let e = Session::open(&watching(vec![w(0, 1, 4)]), options).unwrap_err();
        assert!(matches!(e, ChardevError::BadWatch { .. }), "{e}");
    }
}
