//! The event loop both sessions run: drain the ring in batches (counting
//! and reporting losses), hand each event to a [`Dispatch`], wait on the
//! ring's eventfd, the timers and the stop signal, fire the timers due —
//! until a stop, after which what is already in the ring is still handled.
//! How an event finds its model and host, and what is counted where, is
//! the [`Dispatch`]'s: one model ([`crate::Session`]) or one per function
//! ([`crate::FunctionSession`]).

use std::os::fd::BorrowedFd;

use nix::sys::eventfd::EventFd;
use pciem_abi::pciem_event;
use pciem_core::{HostError, ReadAnswer};

use crate::error::{host_error, ChardevError};
use crate::event_loop::{LoopKind, StopSignal, Waiter, Wake};
use crate::ioctl;
use crate::responses::ReadResponses;
use crate::ring::EventRing;
use crate::session::RunOptions;
use crate::timers::Timers;

/// Where the loop's events and timers go, and where its counts are kept.
pub(crate) trait Dispatch {
    /// Serves one event (as the ring holds it).
    fn event(&mut self, ev: &pciem_event);
    /// Fires the timer of key `key` (see [`crate::timers`]).
    fn timer(&mut self, key: u64);
    /// Counts `n` more events lost to ring overflow; returns the total.
    fn lost(&mut self, n: u64) -> u64;
    /// Counts one wake-up by events or timers.
    fn woke(&mut self);
}

/// The ring, its notification eventfd and the wait on them.
#[derive(Debug)]
pub(crate) struct RunLoop {
    waiter: Waiter,
    ring: EventRing,
    eventfd: EventFd,
    /// Events taken from the ring per batch (at least 1).
    batch: usize,
    warn_lost: bool,
}

impl RunLoop {
    /// The loop over `ring`, woken through `eventfd`, as `options` say.
    pub(crate) fn new(
        waiter: Waiter,
        ring: EventRing,
        eventfd: EventFd,
        options: &RunOptions,
    ) -> Self {
        Self {
            waiter,
            ring,
            eventfd,
            batch: options.batch.max(1),
            warn_lost: options.warn_lost,
        }
    }

    /// The wait mechanism in use.
    pub(crate) fn kind(&self) -> LoopKind {
        self.waiter.kind()
    }

    /// Runs until `stop` is requested, then drains the ring once more;
    /// returns the kernel's overflow counter at the end.
    pub(crate) fn run(
        &mut self,
        timers: &Timers,
        stop: &StopSignal,
        dispatch: &mut impl Dispatch,
    ) -> Result<u64, ChardevError> {
        let mut batch = vec![pciem_event::default(); self.batch];
        // Awake while draining: the kernel signals the eventfd only once
        // the loop has said it is about to sleep (no IPI per event).
        self.ring.set_awake();
        loop {
            self.drain(&mut batch, dispatch);
            if !self.ring.prepare_to_sleep() {
                // An event came in between the drain and the sleep.
                self.ring.set_awake();
                continue;
            }
            let woke = self.waiter.wait(&self.eventfd, stop, timers.fd());
            self.ring.set_awake();
            match woke? {
                Wake::Events => dispatch.woke(),
                Wake::Timer => {
                    dispatch.woke();
                    let due = timers
                        .due()
                        .map_err(ChardevError::sys("read the timerfd"))?;
                    // Earliest first.
                    due.into_iter().for_each(|key| dispatch.timer(key));
                }
                Wake::Stop => break,
            }
        }
        self.drain(&mut batch, dispatch);
        Ok(self.ring.overflow())
    }

    /// Hands every event in the ring to `dispatch`, a batch at a time.
    fn drain(&mut self, batch: &mut [pciem_event], dispatch: &mut impl Dispatch) {
        loop {
            let b = self.ring.pop_batch(batch);
            if b.lost != 0 {
                let total = dispatch.lost(b.lost);
                if self.warn_lost {
                    eprintln!(
                        "pciem-chardev: {} events lost to ring overflow ({} in total); the model is too slow for the driver",
                        b.lost, total
                    );
                }
            }
            batch[..b.events].iter().for_each(|ev| dispatch.event(ev));
            if b.events < batch.len() {
                return;
            }
        }
    }
}

/// Sends one read answer back to the kernel: the read-response slot, or
/// `COMPLETE_READ` on `control` if there is no page (a read event for a
/// device or function without trapped BARs: a confused kernel; answered
/// anyway). The kernel finds the function from the read's id, so neither
/// needs a selection.
pub(crate) fn answer_read(
    page: Option<&ReadResponses>,
    control: BorrowedFd<'_>,
    a: ReadAnswer,
) -> Result<(), HostError> {
    match page {
        Some(page) => {
            page.answer(a);
            Ok(())
        }
        None => {
            ioctl::complete_read(control, a.id, a.value).map_err(|e| host_error("COMPLETE_READ", e))
        }
    }
}

/// Counts a handler's error and keeps it in `kept` if fewer than
/// [`crate::session::KEPT_ERRORS`] are kept.
pub(crate) fn keep<E>(count: &mut u64, kept: &mut Vec<E>, error: E) {
    *count += 1;
    if kept.len() < crate::session::KEPT_ERRORS {
        kept.push(error);
    }
}
