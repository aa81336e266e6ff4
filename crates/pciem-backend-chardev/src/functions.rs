//! Multi-function devices (ABI 6) on `/dev/pciem`: one device process,
//! up to eight functions of one slot, each a [`Device`] of its own.
//!
//! [`FunctionSession::open`] describes every function (its configuration
//! image, DMA check mode and watches, after `SET_FUNCTION n` for `n` other
//! than 0), registers them together and maps each function's BARs (page
//! `16 n + b` of the instance file). [`FunctionSession::run`] then hands
//! every event to the model of the function it is tagged with
//! (`pciem_event_function(flags)`), with the tag cleared, so each model sees
//! its events as a single-function device would. Each model's [`Host`] is
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

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use pciem_abi::{
    pciem_dma_atomic, pciem_event, pciem_irqfd_config, pciem_watchpoint_config, PCIEM_MAX_BARS,
    PCIEM_MMAP_FUNCTION_STRIDE, PCIEM_MMAP_READ_RESPONSES_PGOFF, PCIEM_WP_FLAG_BAR_KPROBES,
};
use pciem_abi::{PCIEM_IRQFD_FLAG_DEASSERT, PCIEM_IRQFD_FLAG_LEVEL, PCIEM_IRQFD_FLAG_REMOVE};
use pciem_core::dmacheck::CheckMode;
use pciem_core::function::{self, FunctionError, FunctionSet, MAX_FUNCTIONS};
use pciem_core::prp::Prp;
use pciem_core::{AccessMap, AtomicOp, Device, Host, HostError, Irq, ReadAnswer, Watch};

use crate::bar::BarMemory;
use crate::error::{host_error, ChardevError};
use crate::event_loop::{notification_eventfd, LoopKind, StopSignal, Waiter, Wake};
use crate::host::{
    check_len, clear_faults_on, dma_chunks, dma_error, irq_kind, p2p_error, set_fault_on,
};
use crate::ioctl;
use crate::mapping::{page_size, Mapping};
use crate::responses::ReadResponses;
use crate::ring::EventRing;
use crate::session::{check_watches, declare_traps, open_control, RunOptions, KEPT_ERRORS};
use crate::timers::Timers;

/// "No function known to be selected": the next action selects its own.
const UNKNOWN: u8 = u8::MAX;

/// What the hosts of one session share: the files, the kernel's function
/// selection (one per device) and the timers.
#[derive(Debug)]
struct Shared {
    // Field order is drop order: the instance file, then the control file.
    instance: OwnedFd,
    control: OwnedFd,
    /// The function the kernel has selected, or [`UNKNOWN`]; held while
    /// an action selects and acts, so no other thread's selection comes
    /// between the two ioctls.
    selected: Mutex<u8>,
    /// Whether this is a multi-function device: a single function 0 never
    /// selects (the ABI 5 device, byte for byte).
    multi: bool,
    timers: Timers,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, u8> {
        self.selected.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` on the control file with `function` selected, under the
    /// selection lock.
    fn acting_for<R>(
        &self,
        function: u8,
        op: impl FnOnce(BorrowedFd<'_>) -> R,
    ) -> Result<R, Errno> {
        let mut selected = self.lock();
        if self.multi && *selected != function {
            // Unknown until the ioctl says otherwise (a failed selection
            // may have left any function selected).
            *selected = UNKNOWN;
            ioctl::set_function(self.control.as_fd(), u32::from(function))?;
            *selected = function;
        }
        Ok(op(self.control.as_fd()))
    }
}

/// One function's side of a multi-function device: its BARs mapped into
/// this process, and the device's control file for interrupts and DMA,
/// with the function selected first. The [`Host`] its model runs on.
#[derive(Debug)]
pub struct FunctionHost {
    function: u8,
    // Before `shared`: the mappings go before the files.
    bars: [Option<BarMemory>; PCIEM_MAX_BARS as usize],
    shared: Arc<Shared>,
}

impl FunctionHost {
    /// The function number (0..7).
    pub fn function(&self) -> u8 {
        self.function
    }

    /// Size of the mapping of BAR `bar`, if the function has it.
    pub fn bar_len(&self, bar: u8) -> Option<u64> {
        self.bar(bar).ok().map(BarMemory::len)
    }

    fn bar(&self, bar: u8) -> Result<&BarMemory, HostError> {
        self.bars
            .get(bar as usize)
            .and_then(Option::as_ref)
            .ok_or(HostError::NoSuchBar { bar })
    }

    /// Runs `op` on the control file with this function selected (under
    /// the session's selection lock), for an ioctl this type does not
    /// wrap. `op` must not change the selection itself.
    pub fn with_selected<R>(&self, op: impl FnOnce(BorrowedFd<'_>) -> R) -> Result<R, HostError> {
        self.shared
            .acting_for(self.function, op)
            .map_err(|e| host_error("SET_FUNCTION", e))
    }

    /// [`Self::with_selected`] for an ioctl, its errno made a
    /// [`HostError`] named `op`.
    fn ioctl<R>(
        &self,
        op: &'static str,
        f: impl FnOnce(BorrowedFd<'_>) -> nix::Result<R>,
    ) -> Result<R, HostError> {
        self.with_selected(f)?.map_err(|e| host_error(op, e))
    }

    /// Binds a fresh eventfd to this function's `irq`: signalling it raises
    /// the interrupt with no ioctl (the kernel knows the function). Unbound
    /// (with this function selected) and closed when dropped.
    pub fn irqfd(&self, irq: Irq) -> Result<FunctionIrqFd<'_>, ChardevError> {
        let eventfd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC)
            .map_err(ChardevError::sys("eventfd for an irqfd"))?;
        let abi = irq.to_abi();
        let flags = match irq {
            Irq::IntxAssert => PCIEM_IRQFD_FLAG_LEVEL,
            Irq::IntxDeassert => PCIEM_IRQFD_FLAG_DEASSERT,
            _ => 0,
        };
        let cfg = pciem_irqfd_config {
            eventfd: eventfd.as_fd().as_raw_fd(),
            vector: abi.vector,
            kind: abi.kind,
            flags,
        };
        self.shared
            .acting_for(self.function, |fd| ioctl::set_irqfd(fd, &cfg))
            .map_err(ChardevError::sys("SET_FUNCTION"))?
            .map_err(ChardevError::sys("SET_IRQFD"))?;
        Ok(FunctionIrqFd {
            eventfd,
            host: self,
            cfg,
        })
    }

    /// The timer key of this function's timer `id`.
    fn timer_key(&self, id: u32) -> u64 {
        u64::from(self.function) << 32 | u64::from(id)
    }
}

impl Host for FunctionHost {
    fn bar_read(&self, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.bar(bar)?.read(offset, buf)
    }

    fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) -> Result<(), HostError> {
        self.bar(bar)?.write(offset, data)
    }

    fn raise_irq(&self, irq: Irq) -> Result<(), HostError> {
        self.with_selected(|fd| ioctl::inject_irq(fd, &irq.to_abi()))?
            .map_err(|e| match e {
                Errno::EIO => HostError::IrqNotEnabled {
                    kind: irq_kind(irq),
                },
                e => host_error("INJECT_IRQ", e),
            })
    }

    fn dma_read(&self, bus_addr: u64, buf: &mut [u8]) -> Result<(), HostError> {
        if buf.is_empty() {
            return Err(HostError::Empty);
        }
        let len = buf.len();
        // One selection for the whole transfer: no other function's
        // action comes between its chunks.
        self.with_selected(|fd| {
            for (at, n) in dma_chunks(len) {
                let addr = bus_addr.wrapping_add(at as u64);
                ioctl::dma_read(fd, addr, &mut buf[at..at + n])
                    .map_err(|e| dma_error("DMA_READ", bus_addr, len, e))?;
            }
            Ok(())
        })?
    }

    fn dma_write(&self, bus_addr: u64, data: &[u8]) -> Result<(), HostError> {
        if data.is_empty() {
            return Err(HostError::Empty);
        }
        self.with_selected(|fd| {
            for (at, n) in dma_chunks(data.len()) {
                let addr = bus_addr.wrapping_add(at as u64);
                ioctl::dma_write(fd, addr, &data[at..at + n])
                    .map_err(|e| dma_error("DMA_WRITE", bus_addr, data.len(), e))?;
            }
            Ok(())
        })?
    }

    fn dma_atomic(&self, bus_addr: u64, op: AtomicOp) -> Result<u64, HostError> {
        if !bus_addr.is_multiple_of(8) {
            return Err(HostError::Misaligned {
                addr: bus_addr,
                align: 8,
            });
        }
        let (op, operand, compare) = op.to_abi();
        let mut arg = pciem_dma_atomic {
            bus_addr,
            operand,
            compare,
            result: 0,
            op,
            flags: 0,
        };
        self.with_selected(|fd| ioctl::dma_atomic(fd, &mut arg))?
            .map_err(|e| dma_error("DMA_ATOMIC", bus_addr, 8, e))
    }

    fn p2p_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), HostError> {
        if buf.is_empty() {
            return Err(HostError::Empty);
        }
        check_len(buf.len())?;
        let len = buf.len();
        self.with_selected(|fd| ioctl::p2p_read(fd, addr, buf))?
            .map_err(|e| p2p_error("P2P_READ", addr, len, e))
    }

    fn p2p_write(&self, addr: u64, data: &[u8]) -> Result<(), HostError> {
        if data.is_empty() {
            return Err(HostError::Empty);
        }
        check_len(data.len())?;
        self.with_selected(|fd| ioctl::p2p_write(fd, addr, data))?
            .map_err(|e| p2p_error("P2P_WRITE", addr, data.len(), e))
    }

    fn dma_read_prp(&self, prp: Prp, buf: &mut [u8]) -> Result<(), HostError> {
        if buf.is_empty() {
            return Err(HostError::Empty);
        }
        check_len(buf.len())?;
        let len = buf.len();
        self.with_selected(|fd| {
            ioctl::dma_indirect_read(fd, prp.prp1, prp.prp2, prp.page_size, buf)
        })?
        .map_err(|e| dma_error("DMA_INDIRECT", prp.prp1, len, e))
    }

    fn dma_write_prp(&self, prp: Prp, data: &[u8]) -> Result<(), HostError> {
        if data.is_empty() {
            return Err(HostError::Empty);
        }
        check_len(data.len())?;
        self.with_selected(|fd| {
            ioctl::dma_indirect_write(fd, prp.prp1, prp.prp2, prp.page_size, data)
        })?
        .map_err(|e| dma_error("DMA_INDIRECT", prp.prp1, data.len(), e))
    }

    /// Refused for a multi-function device by the kernel (`EOPNOTSUPP`:
    /// [`HostError::Unsupported`]); a single function 0 is removed as
    /// [`crate::ChardevHost`] does.
    fn surprise_remove(&self) -> Result<(), HostError> {
        self.ioctl("SURPRISE_REMOVE", ioctl::surprise_remove)
            .map_err(|e| match e {
                HostError::Os { errno, .. } if errno == Errno::EALREADY as i32 => {
                    HostError::Disconnected
                }
                e => e,
            })
    }

    /// `INJECT_AER`, the device's (no selection): reaches Linux's AER
    /// core through the virtual root port, which only a single function 0
    /// can have; otherwise [`HostError::Unsupported`], as
    /// [`crate::ChardevHost::inject_aer`].
    fn inject_aer(&self, error: pciem_core::AerError) -> Result<(), HostError> {
        ioctl::inject_aer(self.shared.control.as_fd(), &error.to_abi()).map_err(|e| match e {
            Errno::EINVAL => HostError::Aer(pciem_core::config::root_port::RecordError::BadStatus(
                error.status,
            )),
            e => host_error("INJECT_AER", e),
        })
    }

    /// `SET_FAULT` for this function (each function has its own rules).
    fn set_fault(&self, rule: pciem_core::faultplan::FaultRule) -> Result<(), HostError> {
        self.with_selected(|fd| set_fault_on(fd, rule))?
    }

    fn clear_faults(&self) -> Result<(), HostError> {
        self.with_selected(clear_faults_on)?
    }

    fn set_timer(&self, id: u32, delay: std::time::Duration) -> Result<(), HostError> {
        self.shared
            .timers
            .set(self.timer_key(id), delay)
            .map_err(|e| host_error("timerfd_settime", e))
    }

    fn cancel_timer(&self, id: u32) -> Result<(), HostError> {
        self.shared
            .timers
            .cancel(self.timer_key(id))
            .map_err(|e| host_error("timerfd_settime", e))
    }
}

/// An eventfd bound to one function's interrupt with `SET_IRQFD`.
#[derive(Debug)]
pub struct FunctionIrqFd<'h> {
    eventfd: EventFd,
    host: &'h FunctionHost,
    cfg: pciem_irqfd_config,
}

impl FunctionIrqFd<'_> {
    /// Raises the interrupt.
    pub fn trigger(&self) -> Result<(), HostError> {
        self.eventfd
            .write(1)
            .map(drop)
            .map_err(|e| host_error("irqfd write", e))
    }

    /// The eventfd, to hand to another thread or process.
    pub fn eventfd(&self) -> BorrowedFd<'_> {
        self.eventfd.as_fd()
    }
}

impl Drop for FunctionIrqFd<'_> {
    fn drop(&mut self) {
        let cfg = pciem_irqfd_config {
            flags: self.cfg.flags | PCIEM_IRQFD_FLAG_REMOVE,
            ..self.cfg
        };
        // Best effort, as IrqFd: the kernel drops the binding when the
        // eventfd closes or the device goes away.
        let _ = self.host.with_selected(|fd| ioctl::set_irqfd(fd, &cfg));
    }
}

/// What a run of a multi-function session did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionRunReport {
    /// Events handed to a model, all functions.
    pub events: u64,
    /// Of those, per function number.
    pub events_by_function: [u64; MAX_FUNCTIONS as usize],
    /// Events tagged with a function the session does not have (a
    /// confused kernel); dropped.
    pub unrouted: u64,
    /// Wake-ups of the event loop.
    pub wakeups: u64,
    /// Events lost to ring overflow (the ring is shared by all functions).
    pub lost: u64,
    /// The kernel's overflow counter at the end.
    pub overflow: u64,
    /// Model-answered reads (of trapped BARs) answered, all functions.
    pub reads_answered: u64,
    /// Timers that fired, all functions.
    pub timers: u64,
    /// Handler calls that returned an error.
    pub handler_errors: u64,
    /// The first [`KEPT_ERRORS`] of those errors, with their function.
    pub errors: Vec<(u8, HostError)>,
}

impl FunctionRunReport {
    fn keep(&mut self, function: u8, result: Result<(), HostError>) {
        if let Err(e) = result {
            self.handler_errors += 1;
            if self.errors.len() < KEPT_ERRORS {
                self.errors.push((function, e));
            }
        }
    }
}

/// A function's description, checked before the kernel sees it.
struct Described {
    function: u8,
    space: pciem_core::ConfigSpace,
    access: AccessMap,
    watches: Vec<Watch>,
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
    let mut out = Vec::with_capacity(functions.len());
    for &(function, device) in functions {
        let space = device.config_space()?;
        let access = device.access_map().map_err(ChardevError::Access)?;
        access.check(&space).map_err(ChardevError::Access)?;
        let all = device.watches();
        check_watches(&space, all)?;
        let watches = all
            .iter()
            .filter(|w| !access.is_trapped(w.bar))
            .copied()
            .collect();
        out.push(Described {
            function,
            space,
            access,
            watches,
        });
    }
    out.sort_by_key(|d| d.function);
    Ok((set, out))
}

/// The description ioctls of one function, its selection already made.
fn declare(
    control: BorrowedFd<'_>,
    d: &Described,
    options: &RunOptions,
) -> Result<(), ChardevError> {
    ioctl::set_config_image(control, d.space.image())
        .map_err(ChardevError::sys("SET_CONFIG_IMAGE"))?;
    if options.dma_check != CheckMode::Default {
        ioctl::set_dma_check(control, options.dma_check.raw())
            .map_err(ChardevError::sys("SET_DMA_CHECK"))?;
    }
    declare_traps(control, &d.access)?;
    for w in &d.watches {
        let wp = pciem_watchpoint_config {
            bar_index: u32::from(w.bar),
            offset: crate::session::abi_offset(w)?,
            width: u32::from(w.width),
            flags: PCIEM_WP_FLAG_BAR_KPROBES,
            addr: 0,
        };
        ioctl::set_watchpoint(control, &wp).map_err(ChardevError::sys("SET_WATCHPOINT"))?;
    }
    Ok(())
}

/// Maps function `function`'s BARs of `space` (its selection made).
fn map_bars(
    control: BorrowedFd<'_>,
    instance: &OwnedFd,
    function: u8,
    space: &pciem_core::ConfigSpace,
) -> Result<[Option<BarMemory>; PCIEM_MAX_BARS as usize], ChardevError> {
    let page = page_size();
    let mut bars: [Option<BarMemory>; PCIEM_MAX_BARS as usize] = Default::default();
    for bar in space.bars() {
        let i = bar.index;
        let info =
            ioctl::get_bar_info(control, i as u32).map_err(ChardevError::sys("GET_BAR_INFO"))?;
        let len =
            usize::try_from(info.size)
                .ok()
                .filter(|&l| l > 0)
                .ok_or(ChardevError::BadBar {
                    bar: i,
                    size: info.size,
                })?;
        let pgoff = u64::from(function) * PCIEM_MMAP_FUNCTION_STRIDE + u64::from(i);
        let map = Mapping::shared(instance, pgoff * page, len)
            .map_err(ChardevError::sys("mmap a function's BAR"))?;
        bars[i as usize] = Some(BarMemory::new(i, map));
    }
    Ok(bars)
}

/// A multi-function device registered on `/dev/pciem`, every function's
/// BARs mapped, ready to run. Dropping it removes every function.
#[derive(Debug)]
pub struct FunctionSession {
    waiter: Waiter,
    ring: EventRing,
    eventfd: EventFd,
    set: FunctionSet,
    hosts: [Option<FunctionHost>; MAX_FUNCTIONS as usize],
    /// The files, the selection and the timers every host shares.
    shared: Arc<Shared>,
    options: RunOptions,
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
        let waiter = Waiter::new(options.wait)?;
        let timers = Timers::new().map_err(ChardevError::sys("timerfd_create"))?;
        let control = open_control(&options.path)?;
        let ring = EventRing::map(&control).map_err(ChardevError::sys("mmap the event ring"))?;
        let eventfd = notification_eventfd().map_err(ChardevError::sys("eventfd"))?;
        ioctl::set_eventfd(control.as_fd(), Some(eventfd.as_fd()))
            .map_err(ChardevError::sys("SET_EVENTFD"))?;
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
            declare(control.as_fd(), d, &options)?;
        }
        let instance = ioctl::register(control.as_fd()).map_err(ChardevError::sys("REGISTER"))?;
        let mut maps = Vec::with_capacity(described.len());
        for d in &described {
            if d.function != selected {
                ioctl::set_function(control.as_fd(), u32::from(d.function))
                    .map_err(ChardevError::sys("SET_FUNCTION"))?;
                selected = d.function;
            }
            maps.push(map_bars(control.as_fd(), &instance, d.function, &d.space)?);
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
        let shared = Arc::new(Shared {
            instance,
            control,
            selected: Mutex::new(selected),
            multi: set.is_multi(),
            timers,
        });
        let mut hosts: [Option<FunctionHost>; MAX_FUNCTIONS as usize] = Default::default();
        for (d, bars) in described.iter().zip(maps) {
            hosts[d.function as usize] = Some(FunctionHost {
                function: d.function,
                bars,
                shared: shared.clone(),
            });
        }
        Ok(Self {
            waiter,
            ring,
            eventfd,
            set,
            hosts,
            shared,
            options,
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
        self.shared.instance.as_fd()
    }

    /// The wait mechanism in use.
    pub fn loop_kind(&self) -> LoopKind {
        self.waiter.kind()
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
            ioctl::start(self.shared.control.as_fd()).map_err(ChardevError::sys("START"))?;
            self.started = true;
        }
        let mut report = FunctionRunReport::default();
        let mut batch = vec![pciem_event::default(); self.options.batch.max(1)];
        self.ring.set_awake();
        loop {
            self.drain(devices, &index, &mut batch, &mut report);
            if !self.ring.prepare_to_sleep() {
                self.ring.set_awake();
                continue;
            }
            let woke = self
                .waiter
                .wait(&self.eventfd, stop, self.shared.timers.fd());
            self.ring.set_awake();
            match woke? {
                Wake::Events => report.wakeups += 1,
                Wake::Timer => {
                    report.wakeups += 1;
                    self.fire_timers(devices, &index, &mut report)?;
                }
                Wake::Stop => break,
            }
        }
        self.drain(devices, &index, &mut batch, &mut report);
        report.overflow = self.ring.overflow();
        Ok(report)
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

    fn drain(
        &mut self,
        devices: &mut [(u8, &mut dyn Device<Error = HostError>)],
        index: &[Option<usize>; MAX_FUNCTIONS as usize],
        batch: &mut [pciem_event],
        report: &mut FunctionRunReport,
    ) {
        loop {
            let b = self.ring.pop_batch(batch);
            if b.lost != 0 {
                report.lost += b.lost;
                if self.options.warn_lost {
                    eprintln!(
                        "pciem-chardev: {} events lost to ring overflow ({} in total); the model is too slow for the driver",
                        b.lost, report.lost
                    );
                }
            }
            for ev in &batch[..b.events] {
                let f = function::event_function(ev);
                let (Some(i), Some(host)) = (
                    index.get(f as usize).copied().flatten(),
                    self.hosts.get(f as usize).and_then(Option::as_ref),
                ) else {
                    report.unrouted += 1;
                    continue;
                };
                report.events += 1;
                report.events_by_function[f as usize] += 1;
                let served = devices[i].1.serve_event(host, &function::untagged(ev));
                if let Some(a) = served.answer {
                    self.answer(f, a, report);
                }
                report.keep(f, served.result);
            }
            if b.events < batch.len() {
                return;
            }
        }
    }

    /// Calls [`Device::timer`] of each function's model for every timer
    /// due, earliest first.
    fn fire_timers(
        &mut self,
        devices: &mut [(u8, &mut dyn Device<Error = HostError>)],
        index: &[Option<usize>; MAX_FUNCTIONS as usize],
        report: &mut FunctionRunReport,
    ) -> Result<(), ChardevError> {
        let due = self
            .shared
            .timers
            .due()
            .map_err(ChardevError::sys("read the timerfd"))?;
        for key in due {
            let (f, id) = ((key >> 32) as u8, key as u32);
            let (Some(i), Some(host)) = (
                index.get(f as usize).copied().flatten(),
                self.hosts.get(f as usize).and_then(Option::as_ref),
            ) else {
                continue;
            };
            report.timers += 1;
            let result = devices[i].1.timer(host, id);
            report.keep(f, result);
        }
        Ok(())
    }

    /// Sends one read answer back: the function's read-response slot, or
    /// `COMPLETE_READ` if it has no page (a read event for a function
    /// without trapped BARs: a confused kernel; answered anyway). The
    /// kernel finds the function from the read's id, so neither needs a
    /// selection.
    fn answer(&self, function: u8, a: ReadAnswer, report: &mut FunctionRunReport) {
        match self
            .responses
            .get(function as usize)
            .and_then(Option::as_ref)
        {
            Some(page) => page.answer(a),
            None => {
                if let Err(e) = ioctl::complete_read(self.shared.control.as_fd(), a.id, a.value) {
                    report.keep(function, Err(host_error("COMPLETE_READ", e)));
                    return;
                }
            }
        }
        report.reads_answered += 1;
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
    use crate::event_loop::WaitMode;
    use pciem_abi::PCIEM_EVENT_MMIO_WRITE;
    use pciem_core::config::Bar;
    use pciem_core::ring::{Producer, SharedRing};
    use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, MmioWrite};
    use std::time::Duration;

    /// Stores each write's value plus `add` at BAR0+0x4, counts writes at
    /// BAR0+0x8, raises MSI 0 for 0xdead, arms timer 1 at start and
    /// stores its firing at BAR0+0xc.
    struct Adder {
        add: u32,
        writes: u32,
        fired: u32,
    }

    impl Device for Adder {
        type Error = HostError;
        fn config_space(&self) -> Result<ConfigSpace, BuildError> {
            ConfigBuilder::new(0x1f0c, 0x7e50 + self.add as u16)
                .bar(0, Bar::memory32(4096))
                .build()
        }
        fn watches(&self) -> &[Watch] {
            &[]
        }
        fn start(&mut self, host: &dyn Host) -> Result<(), HostError> {
            host.set_timer(1, Duration::from_millis(5 + u64::from(self.add)))
        }
        fn timer(&mut self, host: &dyn Host, id: u32) -> Result<(), HostError> {
            self.fired += 1;
            host.write_u32(0, 0xc, id + self.add)
        }
        fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
            self.writes += 1;
            host.write_u32(0, 0x4, w.value as u32 + self.add)?;
            host.write_u32(0, 0x8, self.writes)?;
            if w.value == 0xdead {
                host.raise_irq(Irq::Msi { vector: 0 })?;
            }
            Ok(())
        }
    }

    fn adder(add: u32) -> Adder {
        Adder {
            add,
            writes: 0,
            fired: 0,
        }
    }

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
        struct Trapped;
        fn builder() -> ConfigBuilder {
            ConfigBuilder::new(0x1f0c, 0x7e5f)
                .bar(0, Bar::memory32(4096))
                .trap_bar(0)
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
                Ok(())
            }
        }
        struct BadTrap;
        impl Device for BadTrap {
            type Error = HostError;
            fn config_space(&self) -> Result<ConfigSpace, BuildError> {
                ConfigBuilder::new(0x1f0c, 0x7e5f)
                    .bar(0, Bar::memory32(4096))
                    .build()
            }
            fn access_map(&self) -> Result<AccessMap, BuildError> {
                let mut m = AccessMap::new();
                m.set_mode(2, pciem_core::BarMode::Trap)?;
                Ok(m)
            }
            fn watches(&self) -> &[Watch] {
                &[]
            }
            fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
                Ok(())
            }
        }
        let a = adder(0);
        let e = FunctionSession::open(&[(0, &a), (3, &Trapped)], nowhere()).unwrap_err();
        assert!(matches!(e, ChardevError::Open { .. }), "{e}");
        let e = FunctionSession::open(&[(0, &Trapped)], nowhere()).unwrap_err();
        assert!(matches!(e, ChardevError::Open { .. }), "{e}");
        let e = FunctionSession::open(&[(0, &a), (1, &BadTrap)], nowhere()).unwrap_err();
        assert!(
            matches!(e, ChardevError::Access(BuildError::TrapBarMissing(2))),
            "{e}"
        );
    }

    /// A session over stand-ins: the ring and each function's BAR0 are
    /// memfds, the files /dev/null (every ioctl fails with ENOTTY).
    struct Fake {
        session: FunctionSession,
        view: SharedRing,
        _producer_map: Mapping,
        driver: Vec<(u8, BarMemory)>,
    }

    fn fake(functions: &[u8]) -> Fake {
        use nix::sys::memfd::{memfd_create, MFdFlags};
        use pciem_abi::pciem_shared_ring;
        use std::ptr::NonNull;

        let size = core::mem::size_of::<pciem_shared_ring>();
        let ring_fd = memfd_create(c"ring", MFdFlags::empty()).unwrap();
        nix::unistd::ftruncate(&ring_fd, size as i64).unwrap();
        let null = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let set = FunctionSet::new(functions.iter().copied()).unwrap();
        let shared = Arc::new(Shared {
            instance: null(),
            control: null(),
            selected: Mutex::new(0),
            multi: set.is_multi(),
            timers: Timers::new().unwrap(),
        });
        let mut hosts: [Option<FunctionHost>; MAX_FUNCTIONS as usize] = Default::default();
        let mut driver = Vec::new();
        for &f in functions {
            let bar_fd = memfd_create(c"bar0", MFdFlags::empty()).unwrap();
            nix::unistd::ftruncate(&bar_fd, 4096).unwrap();
            let mut bars: [Option<BarMemory>; PCIEM_MAX_BARS as usize] = Default::default();
            bars[0] = Some(BarMemory::new(
                0,
                Mapping::shared(&bar_fd, 0, 4096).unwrap(),
            ));
            driver.push((
                f,
                BarMemory::new(0, Mapping::shared(&bar_fd, 0, 4096).unwrap()),
            ));
            hosts[f as usize] = Some(FunctionHost {
                function: f,
                bars,
                shared: shared.clone(),
            });
        }
        let producer_map = Mapping::shared(&ring_fd, 0, size).unwrap();
        // SAFETY: the mapping lives in `Fake` next to the view and is
        // dropped after it; one producer, one consumer, zeroed memory.
        let view =
            unsafe { SharedRing::from_raw(NonNull::new(producer_map.as_ptr().cast()).unwrap()) };
        Fake {
            session: FunctionSession {
                waiter: Waiter::new(WaitMode::Poll).unwrap(),
                ring: EventRing::map(&ring_fd).unwrap(),
                eventfd: notification_eventfd().unwrap(),
                set,
                hosts,
                shared,
                options: RunOptions {
                    warn_lost: false,
                    ..Default::default()
                },
                responses: Default::default(),
                trapped: false,
                started: false,
            },
            view,
            _producer_map: producer_map,
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
            producer.push(&f.view, &write_event(func, v)).unwrap();
        }
        producer.push(&f.view, &write_event(5, 99)).unwrap();
        producer.push(&f.view, &write_event(0, 0xdead)).unwrap();
        producer.push(&f.view, &write_event(3, 0xdead)).unwrap();
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
        use nix::sys::memfd::{memfd_create, MFdFlags};
        use pciem_abi::pciem_read_responses;
        use pciem_core::MmioRead;

        struct Answering(u64);
        impl Device for Answering {
            type Error = HostError;
            fn config_space(&self) -> Result<ConfigSpace, BuildError> {
                ConfigBuilder::new(0x1f0c, 0x7e5f)
                    .bar(0, Bar::memory32(4096))
                    .build()
            }
            fn watches(&self) -> &[Watch] {
                &[]
            }
            fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
                self.0 += 1;
                Ok(())
            }
            fn mmio_read(&mut self, _: &dyn Host, _: MmioRead) -> Result<u64, HostError> {
                Ok(0xC0_0000 + self.0)
            }
        }
        let mut f = fake(&[0, 2]);
        let page_fd = memfd_create(c"responses", MFdFlags::empty()).unwrap();
        nix::unistd::ftruncate(&page_fd, 4096).unwrap();
        f.session.responses[2] = Some(ReadResponses::map_at(&page_fd, 0).unwrap());
        f.session.trapped = true;
        let kernel_page = Mapping::shared(&page_fd, 0, 4096).unwrap();
        let mut producer = Producer::new();
        producer.push(&f.view, &write_event(2, 1)).unwrap();
        producer.push(&f.view, &write_event(0, 9)).unwrap();
        producer.push(&f.view, &write_event(2, 2)).unwrap();
        let read = MmioRead {
            bar: 0,
            offset: 0x10,
            width: 2,
        };
        producer
            .push(&f.view, &function::tagged(&read.to_event(70), 2))
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
        *host.shared.lock() = UNKNOWN;
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
