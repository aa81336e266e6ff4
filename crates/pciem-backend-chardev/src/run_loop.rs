//! The event loop both sessions run: drain the ring in batches (counting
//! and reporting losses), hand each event to a [`Dispatch`], wait on the
//! ring's eventfd, the timers and the stop signal, fire the timers due —
//! until a stop, after which what is already in the ring is still handled.
//! How an event finds its model and host, and what is counted where, is
//! the [`Dispatch`]'s: one model ([`crate::Session`]) or one per function
//! ([`crate::FunctionSession`]).

use nix::sys::eventfd::EventFd;
use pciem_abi::pciem_event;
use pciem_core::Device;

use crate::error::{host_error, ChardevError};
use crate::event_loop::{LoopKind, StopSignal, Waiter, Wake};
use crate::host::ChardevHost;
use crate::ioctl;
use crate::responses::ReadResponses;
use crate::ring::EventRing;
use crate::session::{RunOptions, RunReport};
use crate::timers::Timers;

/// Where the loop's events and timers go, and where its counts are kept.
pub(crate) trait Dispatch {
    /// What the report keeps of a handler's error.
    type Kept;
    /// The run's counts.
    fn counts(&mut self) -> &mut RunReport<Self::Kept>;
    /// Serves one event (as the ring holds it): [`serve`] on its model.
    fn event(&mut self, ev: &pciem_event);
    /// Fires the timer of key `key` (see [`crate::timers`]): [`fire`] on
    /// its model.
    fn timer(&mut self, key: u64);
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
    /// the kernel's overflow counter at the end goes in the counts.
    pub(crate) fn run(
        &mut self,
        timers: &Timers,
        stop: &StopSignal,
        dispatch: &mut impl Dispatch,
    ) -> Result<(), ChardevError> {
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
                Wake::Events => dispatch.counts().wakeups += 1,
                Wake::Timer => {
                    dispatch.counts().wakeups += 1;
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
        dispatch.counts().overflow = self.ring.overflow();
        Ok(())
    }

    /// Hands every event in the ring to `dispatch`, a batch at a time.
    fn drain(&mut self, batch: &mut [pciem_event], dispatch: &mut impl Dispatch) {
        loop {
            let b = self.ring.pop_batch(batch);
            if b.lost != 0 {
                let counts = dispatch.counts();
                counts.lost += b.lost;
                if self.warn_lost {
                    eprintln!(
                        "pciem-chardev: {} events lost to ring overflow ({} in total); the model is too slow for the driver",
                        b.lost, counts.lost
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

/// Hands `ev` to `device` on `host` ([`Device::serve_event`]) and sends
/// a model-answered read's answer back before the next event: into
/// `page`, or with `COMPLETE_READ` if there is none (a read event for a
/// device or function without trapped BARs: a confused kernel; answered
/// anyway; the kernel finds the function from the read's id, so neither
/// needs a selection). Errors are kept as `kept` makes them.
pub(crate) fn serve<D: Device + ?Sized, K>(
    device: &mut D,
    host: &ChardevHost,
    ev: &pciem_event,
    page: Option<&ReadResponses>,
    report: &mut RunReport<K>,
    kept: impl Fn(D::Error) -> K,
) {
    report.events += 1;
    let served = device.serve_event(host, ev);
    if let Some(a) = served.answer {
        let answered = match page {
            Some(page) => {
                page.answer(a);
                Ok(())
            }
            None => ioctl::complete_read(host.control_fd(), a.id, a.value)
                .map_err(|e| host_error("COMPLETE_READ", e).into()),
        };
        match answered {
            Ok(()) => report.reads_answered += 1,
            Err(e) => report.keep(kept(e)),
        }
    }
    if let Err(e) = served.result {
        report.keep(kept(e));
    }
}

/// Fires `device`'s timer `id` on `host` ([`Device::timer`]).
pub(crate) fn fire<D: Device + ?Sized, K>(
    device: &mut D,
    host: &ChardevHost,
    id: u32,
    report: &mut RunReport<K>,
    kept: impl Fn(D::Error) -> K,
) {
    report.timers += 1;
    if let Err(e) = device.timer(host, id) {
        report.keep(kept(e));
    }
}
