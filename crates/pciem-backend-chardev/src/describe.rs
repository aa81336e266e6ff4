//! A device's (or one function's) description: read from its model and
//! checked against pciem-core's rules before the kernel sees it, declared
//! with the description ioctls, and its BARs mapped after `REGISTER` —
//! the steps [`crate::Session::open`] and [`crate::FunctionSession::open`]
//! share, with the opening of the control file and the event loop.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use pciem_abi::{
    pciem_watchpoint_config, PCIEM_BAR_MODE_TRAP, PCIEM_MAX_BARS, PCIEM_MMAP_FUNCTION_STRIDE,
    PCIEM_WP_FLAG_BAR_KPROBES,
};
use pciem_core::dmacheck::CheckMode;
use pciem_core::watch;
use pciem_core::{AccessMap, ConfigSpace, Device, Watch};

use crate::bar::BarMemory;
use crate::error::ChardevError;
use crate::event_loop::{notification_eventfd, Waiter};
use crate::ioctl;
use crate::mapping::{page_size, Mapping};
use crate::ring::EventRing;
use crate::run_loop::RunLoop;
use crate::session::{open_control, RunOptions};
use crate::timers::Timers;

/// The control file opened (its ABI checked), the event ring mapped with
/// its eventfd attached, and the timers: what every device starts from.
pub(crate) struct Opened {
    pub(crate) control: OwnedFd,
    pub(crate) events: RunLoop,
    pub(crate) timers: Timers,
}

impl Opened {
    /// Opens [`RunOptions::path`] and sets up the loop as `options` say.
    pub(crate) fn open(options: &RunOptions) -> Result<Self, ChardevError> {
        let waiter = Waiter::new(options.wait)?;
        let timers = Timers::new().map_err(ChardevError::sys("timerfd_create"))?;
        let control = open_control(&options.path)?;
        let ring = EventRing::map(&control).map_err(ChardevError::sys("mmap the event ring"))?;
        let eventfd = notification_eventfd().map_err(ChardevError::sys("eventfd"))?;
        ioctl::set_eventfd(control.as_fd(), Some(eventfd.as_fd()))
            .map_err(ChardevError::sys("SET_EVENTFD"))?;
        Ok(Self {
            control,
            events: RunLoop::new(waiter, ring, eventfd, options),
            timers,
        })
    }
}

/// A device's or function's description, checked before the kernel sees
/// it.
pub(crate) struct Described {
    pub(crate) function: u8,
    pub(crate) space: ConfigSpace,
    pub(crate) access: AccessMap,
    /// The watches on watch-mode BARs (a trapped BAR needs none).
    watches: Vec<Watch>,
}

impl Described {
    /// `device`'s description as function `function`: its configuration
    /// space, trap declarations (checked against the space) and watches
    /// (checked as the kernel would).
    pub(crate) fn of<D: Device + ?Sized>(function: u8, device: &D) -> Result<Self, ChardevError> {
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
        Ok(Self {
            function,
            space,
            access,
            watches,
        })
    }

    /// `SET_CONFIG_IMAGE`, and `SET_DMA_CHECK` unless
    /// [`RunOptions::dma_check`] is the default (the function selected).
    pub(crate) fn declare_image(
        &self,
        control: BorrowedFd<'_>,
        options: &RunOptions,
    ) -> Result<(), ChardevError> {
        ioctl::set_config_image(control, self.space.image())
            .map_err(ChardevError::sys("SET_CONFIG_IMAGE"))?;
        if options.dma_check != CheckMode::Default {
            ioctl::set_dma_check(control, options.dma_check.raw())
                .map_err(ChardevError::sys("SET_DMA_CHECK"))?;
        }
        Ok(())
    }

    /// The trap declarations ([`declare_traps`]) and `SET_WATCHPOINT` for
    /// each watch on a watch-mode BAR (the function selected).
    pub(crate) fn declare_access(&self, control: BorrowedFd<'_>) -> Result<(), ChardevError> {
        declare_traps(control, &self.access)?;
        for w in &self.watches {
            let wp = pciem_watchpoint_config {
                bar_index: u32::from(w.bar),
                offset: abi_offset(w)?,
                width: u32::from(w.width),
                flags: PCIEM_WP_FLAG_BAR_KPROBES,
                addr: 0,
            };
            ioctl::set_watchpoint(control, &wp).map_err(ChardevError::sys("SET_WATCHPOINT"))?;
        }
        Ok(())
    }

    /// Maps the BARs of the space (after `REGISTER`, the function
    /// selected): function `n`'s BAR `b` is page `16 n + b` of `instance`.
    pub(crate) fn map_bars(
        &self,
        control: BorrowedFd<'_>,
        instance: &OwnedFd,
    ) -> Result<[Option<BarMemory>; PCIEM_MAX_BARS as usize], ChardevError> {
        let page = page_size();
        let mut bars: [Option<BarMemory>; PCIEM_MAX_BARS as usize] = Default::default();
        for bar in self.space.bars() {
            let i = bar.index;
            let info = ioctl::get_bar_info(control, i as u32)
                .map_err(ChardevError::sys("GET_BAR_INFO"))?;
            let len =
                usize::try_from(info.size)
                    .ok()
                    .filter(|&l| l > 0)
                    .ok_or(ChardevError::BadBar {
                        bar: i,
                        size: info.size,
                    })?;
            let pgoff = u64::from(self.function) * PCIEM_MMAP_FUNCTION_STRIDE + u64::from(i);
            let map = Mapping::shared(instance, pgoff * page, len)
                .map_err(ChardevError::sys(MAP_BAR_STEP[i as usize]))?;
            bars[i as usize] = Some(BarMemory::new(i, map));
        }
        Ok(bars)
    }
}

static MAP_BAR_STEP: [&str; PCIEM_MAX_BARS as usize] = [
    "mmap BAR 0",
    "mmap BAR 1",
    "mmap BAR 2",
    "mmap BAR 3",
    "mmap BAR 4",
    "mmap BAR 5",
];

/// `SET_BAR_MODE` for each trapped BAR, `ADD_TRAP_RANGE` for each range,
/// `SET_READ_TIMEOUT` if the model sets one; each errno names its step.
pub(crate) fn declare_traps(
    control: std::os::fd::BorrowedFd<'_>,
    access: &AccessMap,
) -> Result<(), ChardevError> {
    for bar in access.trapped_bars() {
        ioctl::set_bar_mode(control, bar as u32, PCIEM_BAR_MODE_TRAP)
            .map_err(ChardevError::sys("SET_BAR_MODE"))?;
    }
    for r in access.ranges() {
        ioctl::add_trap_range(control, &r.to_abi()).map_err(ChardevError::sys("ADD_TRAP_RANGE"))?;
    }
    if let Some(us) = access.read_timeout_us() {
        ioctl::set_read_timeout(control, us).map_err(ChardevError::sys("SET_READ_TIMEOUT"))?;
    }
    Ok(())
}

/// Refuses watches the kernel would refuse (pciem-core's
/// `watch::check_watches`), with the reason, before any device exists.
pub(crate) fn check_watches(space: &ConfigSpace, watches: &[Watch]) -> Result<(), ChardevError> {
    watch::check_watches(watches, |bar| space.bar(bar).map_or(0, |b| b.size)).map_err(
        |(w, e)| ChardevError::BadWatch {
            bar: w.bar,
            offset: w.offset,
            width: w.width,
            reason: e.message(),
        },
    )?;
    watches.iter().try_for_each(|w| abi_offset(w).map(drop))
}

/// A watch's offset as `SET_WATCHPOINT` carries it (32 bits): a register
/// above 4 GiB of a large 64-bit BAR cannot be watched.
pub(crate) fn abi_offset(w: &Watch) -> Result<u32, ChardevError> {
    u32::try_from(w.offset).map_err(|_| ChardevError::BadWatch {
        bar: w.bar,
        offset: w.offset,
        width: w.width,
        reason: "the offset is above 4 GiB, past what SET_WATCHPOINT can carry",
    })
}
