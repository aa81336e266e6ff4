//! [`ChardevHost`]: the pciem-core [`Host`] over `/dev/pciem`, for a
//! single-function device or one function of a multi-function device
//! ([`FunctionHost`]).

use crate::timers::Timers;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use pciem_abi::{
    pciem_dma_atomic, pciem_irqfd_config, PCIEM_DMA_MAX_LEN, PCIEM_IRQFD_FLAG_DEASSERT,
    PCIEM_IRQFD_FLAG_LEVEL, PCIEM_IRQFD_FLAG_REMOVE, PCIEM_MAX_BARS,
};
use pciem_core::config::root_port::RecordError;
use pciem_core::faultplan::{FaultError, FaultRequest, FaultRule};
use pciem_core::prp::Prp;
use pciem_core::{AerError, AtomicOp, Host, HostError, Irq};

use crate::bar::BarMemory;
use crate::error::{host_error, ChardevError};
use crate::ioctl;

/// "No function known to be selected": the next action selects its own.
pub(crate) const UNKNOWN: u8 = u8::MAX;

/// What the hosts of one device share: the files, the kernel's function
/// selection (one per device, not per thread) and the timers.
#[derive(Debug)]
pub(crate) struct Shared {
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
    /// The files of a registered device; `selected` is the function the
    /// kernel has selected now, `multi` whether actions must select.
    pub(crate) fn new(
        control: OwnedFd,
        instance: OwnedFd,
        selected: u8,
        multi: bool,
        timers: Timers,
    ) -> Self {
        Self {
            instance,
            control,
            selected: Mutex::new(selected),
            multi,
            timers,
        }
    }

    /// The control file, for what is the device's rather than a
    /// function's (`START`, `COMPLETE_READ`, `INJECT_AER`).
    pub(crate) fn control(&self) -> BorrowedFd<'_> {
        self.control.as_fd()
    }

    /// The instance file returned by `REGISTER`.
    pub(crate) fn instance(&self) -> BorrowedFd<'_> {
        self.instance.as_fd()
    }

    /// The timers of every function (the event loop waits on them).
    pub(crate) fn timers(&self) -> &Timers {
        &self.timers
    }

    /// The selection, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, u8> {
        self.selected.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` on the control file with `function` selected, under the
    /// selection lock; a single-function device runs it straight away.
    fn acting_for<R>(
        &self,
        function: u8,
        op: impl FnOnce(BorrowedFd<'_>) -> R,
    ) -> Result<R, Errno> {
        if !self.multi {
            return Ok(op(self.control.as_fd()));
        }
        let mut selected = self.lock();
        if *selected != function {
            // Unknown until the ioctl says otherwise (a failed selection
            // may have left any function selected).
            *selected = UNKNOWN;
            ioctl::set_function(self.control.as_fd(), u32::from(function))?;
            *selected = function;
        }
        Ok(op(self.control.as_fd()))
    }
}

/// The device side of a registered device, or of one function of a
/// multi-function device ([`FunctionHost`]): its BARs mapped into this
/// process, interrupts and DMA through ioctls on the control file, with
/// its function selected first when the device has several.
///
/// Dropping the last host of a device (and its session) unmaps the BARs
/// and closes the instance and control files; when the last of them is
/// closed the kernel hot-removes the device.
#[derive(Debug)]
pub struct ChardevHost {
    function: u8,
    // Before `shared`: the mappings go before the files.
    bars: [Option<BarMemory>; PCIEM_MAX_BARS as usize],
    shared: Arc<Shared>,
}

/// The host of one function of a multi-function device
/// ([`crate::FunctionSession`]): the same type as [`ChardevHost`], whose
/// actions select the function first.
pub type FunctionHost = ChardevHost;

impl ChardevHost {
    /// A single-function device's host (function 0, never selecting).
    pub(crate) fn new(
        control: OwnedFd,
        instance: OwnedFd,
        bars: [Option<BarMemory>; PCIEM_MAX_BARS as usize],
        timers: Timers,
    ) -> Self {
        let shared = Shared::new(control, instance, 0, false, timers);
        Self::for_function(0, bars, Arc::new(shared))
    }

    /// The host of `function` of the device `shared` describes.
    pub(crate) fn for_function(
        function: u8,
        bars: [Option<BarMemory>; PCIEM_MAX_BARS as usize],
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            function,
            bars,
            shared,
        }
    }

    /// What this host shares with the other functions' hosts.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The function number (0..7; 0 on a single-function device).
    pub fn function(&self) -> u8 {
        self.function
    }

    /// The control file (`/dev/pciem`). On a multi-function device an
    /// ioctl on it acts for whichever function is selected: use
    /// [`Self::with_selected`].
    pub fn control_fd(&self) -> BorrowedFd<'_> {
        self.shared.control()
    }

    /// The instance file returned by `REGISTER`.
    pub fn instance_fd(&self) -> BorrowedFd<'_> {
        self.shared.instance()
    }

    /// Size of the mapping of BAR `bar`, if the device (function) has it.
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
    /// the device's selection lock; a single-function device has nothing
    /// to select), for an ioctl this type does not wrap. `op` must not
    /// change the selection itself.
    pub fn with_selected<R>(&self, op: impl FnOnce(BorrowedFd<'_>) -> R) -> Result<R, HostError> {
        self.shared
            .acting_for(self.function, op)
            .map_err(|e| host_error("SET_FUNCTION", e))
    }

    /// Binds a fresh eventfd to `irq` (of this function): signalling it
    /// (from any thread, with [`IrqFd::trigger`] or a plain write) raises
    /// the interrupt with no ioctl. Unbound (with the function selected)
    /// and closed when dropped.
    pub fn irqfd(&self, irq: Irq) -> Result<IrqFd<'_>, ChardevError> {
        let eventfd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC)
            .map_err(ChardevError::sys("eventfd for an irqfd"))?;
        let abi = irq.to_abi();
        let flags = match irq {
            Irq::IntxAssert => PCIEM_IRQFD_FLAG_LEVEL,
            Irq::IntxDeassert => PCIEM_IRQFD_FLAG_DEASSERT,
            _ => 0,
        };
        let cfg = pciem_irqfd_config {
            eventfd: std::os::fd::AsRawFd::as_raw_fd(&eventfd),
            vector: abi.vector,
            kind: abi.kind,
            flags,
        };
        self.shared
            .acting_for(self.function, |fd| ioctl::set_irqfd(fd, &cfg))
            .map_err(ChardevError::sys("SET_FUNCTION"))?
            .map_err(ChardevError::sys("SET_IRQFD"))?;
        Ok(IrqFd {
            eventfd,
            host: self,
            cfg,
        })
    }

    /// The timer key of this function's timer `id` (the id itself on a
    /// single-function device): ids of different functions never collide.
    fn timer_key(&self, id: u32) -> u64 {
        u64::from(self.function) << 32 | u64::from(id)
    }
}

/// The name of an interrupt kind, for errors.
pub(crate) fn irq_kind(irq: Irq) -> &'static str {
    match irq {
        Irq::Auto { .. } => "any",
        Irq::Msi { .. } => "MSI",
        Irq::MsiX { .. } => "MSI-X",
        Irq::IntxAssert | Irq::IntxDeassert => "INTx",
    }
}

/// Splits `len` bytes into transfers of at most [`PCIEM_DMA_MAX_LEN`].
pub(crate) fn dma_chunks(len: usize) -> impl Iterator<Item = (usize, usize)> {
    let max = PCIEM_DMA_MAX_LEN as usize;
    (0..len)
        .step_by(max)
        .map(move |at| (at, (len - at).min(max)))
}

/// The module's DMA errors: EFAULT for an access its DMA check refused
/// (the kind comes as a `DMA_FAULT` event; our own buffers are always
/// accessible, so EFAULT never means a bad user pointer here), ENXIO for a
/// bus address that does not reach RAM (or that the IOMMU does not map),
/// EPERM while the driver has not enabled bus mastering, EINVAL for a
/// malformed request, ENODEV before REGISTER.
/// `SET_FAULT` of `rule` on `fd` (for the selected function); the rule's
/// own fields are checked first by pciem-core, as the kernel checks them,
/// so those refusals are typed.
pub(crate) fn set_fault_on(fd: BorrowedFd<'_>, rule: FaultRule) -> Result<(), HostError> {
    let req = rule.to_abi();
    FaultRequest::from_abi(&req).map_err(HostError::Fault)?;
    ioctl::set_fault(fd, &req).map_err(|e| match e {
        Errno::ENOSPC => HostError::Fault(FaultError::Full),
        e => host_error("SET_FAULT", e),
    })
}

/// `SET_FAULT` with `PCIEM_FAULT_CLEAR` on `fd`: every rule disarmed.
pub(crate) fn clear_faults_on(fd: BorrowedFd<'_>) -> Result<(), HostError> {
    ioctl::set_fault(fd, &Default::default()).map_err(|e| host_error("SET_FAULT", e))
}

pub(crate) fn dma_error(op: &'static str, addr: u64, len: usize, errno: Errno) -> HostError {
    match errno {
        Errno::EFAULT => HostError::DmaRefused {
            addr,
            len: len as u64,
            kind: None,
        },
        Errno::ENXIO => HostError::Unmapped {
            addr,
            len: len as u64,
        },
        // A fault rule poisoned the read (writes are never poisoned).
        Errno::EIO => HostError::Poisoned { addr },
        _ => host_error(op, errno),
    }
}

/// The module's P2P errors: EACCES outside the whitelisted regions, EPERM
/// while bus mastering is off ([`HostError::BusMasterDisabled`], not a
/// denial by region).
pub(crate) fn p2p_error(op: &'static str, addr: u64, len: usize, errno: Errno) -> HostError {
    match errno {
        Errno::EACCES => HostError::P2pDenied {
            addr,
            len: len as u64,
        },
        _ => host_error(op, errno),
    }
}

impl Host for ChardevHost {
    /// `PCIEM_IOCTL_INJECT_AER`, the device's (no selection): reported to
    /// the virtual root port (which needs [`crate::RunOptions::root_port_aer`],
    /// so only a single-function device has it), so Linux's AER core runs
    /// the bound driver's error handlers. Without a root port with AER, or
    /// without an AER capability on the device, it is
    /// [`HostError::Unsupported`]; a status the capability does not
    /// implement for that severity is [`RecordError::BadStatus`].
    fn inject_aer(&self, error: AerError) -> Result<(), HostError> {
        ioctl::inject_aer(self.shared.control(), &error.to_abi()).map_err(|e| match e {
            Errno::EINVAL => HostError::Aer(RecordError::BadStatus(error.status)),
            e => host_error("INJECT_AER", e),
        })
    }

    /// Refused for a multi-function device by the kernel (`EOPNOTSUPP`:
    /// [`HostError::Unsupported`]).
    fn surprise_remove(&self) -> Result<(), HostError> {
        self.with_selected(ioctl::surprise_remove)?
            .map_err(|e| match e {
                // Removed already: the device is gone either way.
                Errno::EALREADY => HostError::Disconnected,
                e => host_error("SURPRISE_REMOVE", e),
            })
    }

    /// Refused for a multi-function device by the kernel, as
    /// [`Self::surprise_remove`].
    fn reinsert(&self) -> Result<(), HostError> {
        self.with_selected(ioctl::reinsert)?.map_err(|e| match e {
            // Not removed, or its removal still running.
            Errno::EALREADY | Errno::EBUSY => HostError::NotRemoved,
            e => host_error("REINSERT", e),
        })
    }

    /// `SET_FAULT` for this function (each function has its own rules);
    /// the rule's own fields are checked here first (by pciem-core, as the
    /// kernel checks them), so those refusals are typed; the kernel's
    /// checks against the device (a BAR that is not trapped, a range
    /// outside it) come back as `EINVAL`.
    fn set_fault(&self, rule: FaultRule) -> Result<(), HostError> {
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

    fn bar_read(&self, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.bar(bar)?.read(offset, buf)
    }

    fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) -> Result<(), HostError> {
        self.bar(bar)?.write(offset, data)
    }

    fn raise_irq(&self, irq: Irq) -> Result<(), HostError> {
        self.with_selected(|fd| ioctl::inject_irq(fd, &irq.to_abi()))?
            .map_err(|e| match e {
                // The kernel's answer when the driver has not enabled the kind.
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

    /// One `DMA_INDIRECT`: the kernel walks the PRP lists itself.
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

    /// One `DMA_INDIRECT` with `PCIEM_PRP_FLAG_WRITE`.
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
}

pub(crate) fn check_len(len: usize) -> Result<(), HostError> {
    if len as u64 > PCIEM_DMA_MAX_LEN {
        return Err(HostError::TooLong {
            len: len as u64,
            max: PCIEM_DMA_MAX_LEN,
        });
    }
    Ok(())
}

/// An eventfd bound to an interrupt (of one function) with `SET_IRQFD`.
#[derive(Debug)]
pub struct IrqFd<'h> {
    eventfd: EventFd,
    host: &'h ChardevHost,
    cfg: pciem_irqfd_config,
}

/// An irqfd of one function of a multi-function device: the same type as
/// [`IrqFd`].
pub type FunctionIrqFd<'h> = IrqFd<'h>;

impl IrqFd<'_> {
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

impl Drop for IrqFd<'_> {
    fn drop(&mut self) {
        let cfg = pciem_irqfd_config {
            flags: self.cfg.flags | PCIEM_IRQFD_FLAG_REMOVE,
            ..self.cfg
        };
        // Best effort: if unbinding fails the kernel drops the binding when
        // the eventfd is closed or the device goes away.
        let _ = self.host.with_selected(|fd| ioctl::set_irqfd(fd, &cfg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_is_split_at_the_abi_limit() {
        let max = PCIEM_DMA_MAX_LEN as usize;
        assert_eq!(dma_chunks(10).collect::<Vec<_>>(), [(0, 10)]);
        assert_eq!(
            dma_chunks(2 * max + 1).collect::<Vec<_>>(),
            [(0, max), (max, max), (2 * max, 1)]
        );
        assert_eq!(dma_chunks(0).count(), 0);
    }

    #[test]
    fn errno_becomes_a_host_error() {
        assert_eq!(
            dma_error("DMA_READ", 0x1000, 8, Errno::ENXIO),
            HostError::Unmapped {
                addr: 0x1000,
                len: 8
            }
        );
        assert_eq!(
            dma_error("DMA_WRITE", 0x1000, 8, Errno::EPERM),
            HostError::BusMasterDisabled
        );
        assert_eq!(
            dma_error("DMA_WRITE", 0x1000, 8, Errno::EFAULT),
            HostError::DmaRefused {
                addr: 0x1000,
                len: 8,
                kind: None
            }
        );
        assert_eq!(
            p2p_error("P2P_READ", 0x2000, 4, Errno::EPERM),
            HostError::BusMasterDisabled
        );
        assert_eq!(
            dma_error("DMA_READ", 0x1000, 8, Errno::ENOTTY),
            HostError::Unsupported("DMA_READ")
        );
        assert_eq!(
            p2p_error("P2P_WRITE", 0x2000, 4, Errno::EACCES),
            HostError::P2pDenied {
                addr: 0x2000,
                len: 4
            }
        );
        assert_eq!(check_len(PCIEM_DMA_MAX_LEN as usize), Ok(()));
        assert!(check_len(PCIEM_DMA_MAX_LEN as usize + 1).is_err());
    }

    /// A host over files that are not /dev/pciem: every kernel operation
    /// fails with a typed error, never a panic.
    #[test]
    fn a_host_without_the_module_fails_cleanly() {
        let null = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let host = ChardevHost::new(null(), null(), Default::default(), Timers::new().unwrap());
        assert_eq!(
            host.raise_irq(Irq::Msi { vector: 0 }),
            Err(HostError::Unsupported("INJECT_IRQ"))
        );
        let mut b = [0u8; 4];
        assert_eq!(
            host.bar_read(0, 0, &mut b),
            Err(HostError::NoSuchBar { bar: 0 })
        );
        assert_eq!(
            host.bar_write(7, 0, &b),
            Err(HostError::NoSuchBar { bar: 7 })
        );
        assert_eq!(
            host.dma_read(0x1000, &mut b),
            Err(HostError::Unsupported("DMA_READ"))
        );
        assert_eq!(host.dma_write(0x1000, &[]), Err(HostError::Empty));
        assert_eq!(
            host.dma_atomic(0x1004, AtomicOp::FetchAdd(1)),
            Err(HostError::Misaligned {
                addr: 0x1004,
                align: 8
            })
        );
        assert_eq!(
            host.dma_atomic(0x1000, AtomicOp::FetchAdd(1)),
            Err(HostError::Unsupported("DMA_ATOMIC"))
        );
        assert_eq!(
            host.p2p_read(0, &mut b),
            Err(HostError::Unsupported("P2P_READ"))
        );
        let prp = Prp {
            prp1: 0x1000,
            prp2: 0,
            page_size: 0,
        };
        assert_eq!(
            host.dma_read_prp(prp, &mut b),
            Err(HostError::Unsupported("DMA_INDIRECT"))
        );
        let e = host.irqfd(Irq::Msi { vector: 0 }).unwrap_err();
        assert!(e.to_string().starts_with("SET_IRQFD: "), "{e}");
        assert_eq!(host.bar_len(0), None);
    }
}
