//! Models and kernel stand-ins shared by the crate's unit tests: memfds
//! play the ring, BARs and read-response pages, /dev/null the files (every
//! ioctl on it fails with `ENOTTY`).

use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

use nix::sys::memfd::{memfd_create, MFdFlags};
use pciem_abi::{pciem_shared_ring, PCIEM_MAX_BARS};
use pciem_core::config::Bar;
use pciem_core::ring::SharedRing;
use std::time::Duration;

use pciem_core::{
    AccessMap, BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq, MmioRead,
    MmioWrite, Watch,
};

use crate::bar::BarMemory;
use crate::event_loop::{notification_eventfd, WaitMode, Waiter};
use crate::mapping::Mapping;
use crate::ring::EventRing;
use crate::run_loop::RunLoop;
use crate::session::RunOptions;

/// The test device's identity and its 4 KiB BAR0.
pub(crate) fn plain() -> ConfigBuilder {
    ConfigBuilder::new(0x1f0c, 0x7e5f).bar(0, Bar::memory32(4096))
}

/// [`plain`] with BAR0 trapped and its register 0x10 answered by the model.
pub(crate) fn trapped() -> ConfigBuilder {
    plain()
        .trap_bar(0)
        .trap_range(0, 0x10, 4, pciem_core::TrapPolicy::MODEL)
}

/// A trapped device ([`trapped`]) that counts MMIO writes; model-answered
/// reads return `0xC0_0000` plus the count.
#[derive(Default)]
pub(crate) struct Answering(pub u64);

impl Device for Answering {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        trapped().build()
    }
    fn access_map(&self) -> Result<AccessMap, BuildError> {
        trapped().access_map()
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

/// A [`plain`] device whose access map traps BAR `.0`, which it lacks
/// unless it is 0: refused before the kernel is touched.
pub(crate) struct BadTrap(pub u8);

impl Device for BadTrap {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        plain().build()
    }
    fn access_map(&self) -> Result<AccessMap, BuildError> {
        let mut m = AccessMap::new();
        m.set_mode(self.0, pciem_core::BarMode::Trap)?;
        Ok(m)
    }
    fn watches(&self) -> &[Watch] {
        &[]
    }
    fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
        Ok(())
    }
}

/// Stores each write's value plus `add` at BAR0+0x4, counts writes at
/// BAR0+0x8, raises MSI 0 for 0xdead, arms timer 1 at start and
/// stores its firing at BAR0+0xc (its id plus `add`).
pub(crate) struct Adder {
    add: u32,
    pub(crate) writes: u32,
    pub(crate) fired: u32,
    watches: Vec<Watch>,
}

impl Device for Adder {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        plain().build()
    }
    fn watches(&self) -> &[Watch] {
        &self.watches
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

/// An [`Adder`] adding `add`, watching nothing.
pub(crate) fn adder(add: u32) -> Adder {
    Adder {
        add,
        writes: 0,
        fired: 0,
        watches: Vec::new(),
    }
}

/// An [`Adder`] adding nothing, with `watches`.
pub(crate) fn watching(watches: Vec<Watch>) -> Adder {
    Adder {
        watches,
        ..adder(0)
    }
}

/// A model with its own error type: refuses the value 7.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PickyError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("value {0} refused")]
    Refused(u64),
}

pub(crate) struct Picky {
    /// Whether its start fails (with `Refused(0)`).
    pub(crate) start_fails: bool,
}

/// Its configuration is never asked for: [`crate::Session::run`] goes by the
/// session's access map.
impl Device for Picky {
    type Error = PickyError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        plain().build()
    }
    fn watches(&self) -> &[Watch] {
        &[]
    }
    fn start(&mut self, _: &dyn Host) -> Result<(), PickyError> {
        if self.start_fails {
            return Err(PickyError::Refused(0));
        }
        Ok(())
    }
    fn mmio_write(&mut self, _: &dyn Host, w: MmioWrite) -> Result<(), PickyError> {
        match w.value {
            7 => Err(PickyError::Refused(7)),
            _ => Ok(()),
        }
    }
}

/// A memfd of `len` zero bytes.
pub(crate) fn memfd(name: &std::ffi::CStr, len: usize) -> OwnedFd {
    let fd = memfd_create(name, MFdFlags::empty()).unwrap();
    nix::unistd::ftruncate(&fd, len as i64).unwrap();
    fd
}

/// /dev/null, standing in for the control and instance files.
pub(crate) fn null() -> OwnedFd {
    OwnedFd::from(std::fs::File::open("/dev/null").unwrap())
}

/// A 4 KiB BAR0 over one memfd: the host's BARs and the driver's view.
pub(crate) fn bar0() -> ([Option<BarMemory>; PCIEM_MAX_BARS as usize], BarMemory) {
    let fd = memfd(c"bar0", 4096);
    let mut bars: [Option<BarMemory>; PCIEM_MAX_BARS as usize] = Default::default();
    bars[0] = Some(BarMemory::new(0, Mapping::shared(&fd, 0, 4096).unwrap()));
    (
        bars,
        BarMemory::new(0, Mapping::shared(&fd, 0, 4096).unwrap()),
    )
}

/// The event ring over a memfd, with the kernel's side of it: a
/// producer's view through a second mapping.
pub(crate) struct FakeRing {
    /// Where a `Producer` pushes events.
    pub(crate) view: SharedRing,
    // After the view, which points into it (fields drop in order).
    _producer_map: Mapping,
    fd: OwnedFd,
}

impl FakeRing {
    /// An empty ring.
    pub(crate) fn new() -> Self {
        let size = core::mem::size_of::<pciem_shared_ring>();
        let fd = memfd(c"ring", size);
        let producer_map = Mapping::shared(&fd, 0, size).unwrap();
        // SAFETY: the mapping lives in `FakeRing` next to the view and is
        // dropped after it; one producer, one consumer, zeroed memory.
        let view =
            unsafe { SharedRing::from_raw(NonNull::new(producer_map.as_ptr().cast()).unwrap()) };
        Self {
            view,
            _producer_map: producer_map,
            fd,
        }
    }

    /// A session's event loop over this ring (`mode`, `batch` events a
    /// batch, no warning on losses), and a second handle of its eventfd,
    /// to notify it as the kernel does.
    pub(crate) fn run_loop(&self, mode: WaitMode, batch: usize) -> (RunLoop, OwnedFd) {
        let eventfd = notification_eventfd().unwrap();
        let notify = eventfd.as_fd().try_clone_to_owned().unwrap();
        let options = RunOptions {
            batch,
            warn_lost: false,
            ..Default::default()
        };
        let ring = EventRing::map(&self.fd).unwrap();
        let waiter = Waiter::new(mode).unwrap();
        (RunLoop::new(waiter, ring, eventfd, &options), notify)
    }
}
