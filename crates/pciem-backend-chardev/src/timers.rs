//! The model's timers ([`Host::set_timer`](pciem_core::Host::set_timer))
//! on one timerfd, armed for the earliest deadline; the event loop waits
//! on it beside the ring's eventfd and the stop signal. Timers are keyed by
//! a `u64`: the model's id, with the function number above it in a
//! multi-function device ([`crate::functions`]), so that each function's
//! ids are its own.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// Armed timers and the timerfd that fires for the earliest.
#[derive(Debug)]
pub(crate) struct Timers {
    fd: TimerFd,
    armed: Mutex<BTreeMap<u64, Instant>>,
}

impl Timers {
    /// No timer armed.
    pub(crate) fn new() -> nix::Result<Self> {
        Ok(Self {
            fd: TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
            )?,
            armed: Mutex::new(BTreeMap::new()),
        })
    }

    /// What the event loop waits on.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Instant>> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms timer `id` for `delay` from now (replacing its old deadline).
    pub(crate) fn set(&self, id: u64, delay: Duration) -> nix::Result<()> {
        let mut armed = self.lock();
        armed.insert(id, Instant::now() + delay);
        self.rearm(&armed)
    }

    /// Disarms timer `id`.
    pub(crate) fn cancel(&self, id: u64) -> nix::Result<()> {
        let mut armed = self.lock();
        if armed.remove(&id).is_some() {
            self.rearm(&armed)?;
        }
        Ok(())
    }

    /// The timers due now, earliest first (ties by id), disarmed; the
    /// timerfd re-armed for the next.
    pub(crate) fn due(&self) -> nix::Result<Vec<u64>> {
        // Consume the expiration (nothing to read is no error).
        match self.fd.wait() {
            Ok(()) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
        let mut armed = self.lock();
        let now = Instant::now();
        let mut due: Vec<(Instant, u64)> = armed
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(&id, &at)| (at, id))
            .collect();
        due.sort();
        for (_, id) in &due {
            armed.remove(id);
        }
        self.rearm(&armed)?;
        Ok(due.into_iter().map(|(_, id)| id).collect())
    }

    /// Points the timerfd at the earliest deadline, or disarms it.
    fn rearm(&self, armed: &BTreeMap<u64, Instant>) -> nix::Result<()> {
        match armed.values().min() {
            // At least a nanosecond: a zero expiration disarms a timerfd.
            Some(&at) => {
                let left = at
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                self.fd.set(
                    Expiration::OneShot(TimeSpec::from_duration(left)),
                    TimerSetTimeFlags::empty(),
                )
            }
            None => self.fd.unset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_order_and_cancel() {
        let t = Timers::new().unwrap();
        t.set(7, Duration::from_millis(30)).unwrap();
        t.set(3, Duration::from_millis(10)).unwrap();
        t.set(9, Duration::from_millis(20)).unwrap();
        t.cancel(9).unwrap();
        assert!(t.due().unwrap().is_empty(), "nothing due yet");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(t.due().unwrap(), [3, 7]);
        assert!(t.due().unwrap().is_empty());
        // Re-arming replaces the deadline.
        t.set(1, Duration::from_secs(60)).unwrap();
        t.set(1, Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(t.due().unwrap(), [1]);
    }
}
