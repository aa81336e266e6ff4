//! Waiting for events: io-uring when the kernel offers it, poll(2)
//! otherwise.
//!
//! The loop waits on two descriptors: the ring's eventfd (the kernel
//! signals it after publishing events) and the read end of a
//! [`StopSignal`] (written by [`StopHandle::stop`] or a signal handler).
//! With io-uring both waits are one-shot `POLL_ADD`s that stay armed across
//! wake-ups, so a wake-up costs one `io_uring_enter` and the readiness of
//! both descriptors arrives in one batch of completions; no buffer is lent
//! to the kernel, so nothing can be written after the ring is dropped.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use io_uring::{opcode, types, IoUring};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::error::ChardevError;

/// Which wait mechanism to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WaitMode {
    /// io-uring if the kernel allows it, else poll(2).
    #[default]
    Auto,
    /// io-uring or fail.
    IoUring,
    /// poll(2).
    Poll,
}

/// The mechanism in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopKind {
    /// io-uring `POLL_ADD`s.
    IoUring,
    /// poll(2); `fallback` is why io-uring was not used, if it was tried.
    Poll {
        /// The errno of `io_uring_setup`, when [`WaitMode::Auto`] tried it.
        fallback: Option<Errno>,
    },
}

impl std::fmt::Display for LoopKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoopKind::IoUring => f.write_str("io-uring"),
            LoopKind::Poll { fallback: None } => f.write_str("poll"),
            LoopKind::Poll { fallback: Some(e) } => {
                write!(f, "poll (io-uring unavailable: {})", e.desc())
            }
        }
    }
}

/// Why a wait returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The eventfd fired (its count was consumed): drain the ring.
    Events,
    /// The timerfd fired: some of the model's timers are due.
    Timer,
    /// A stop was requested.
    Stop,
}

/// A stop request channel: the loop waits on its read end; [`StopHandle`]s
/// and signal handlers write to it.
#[derive(Debug)]
pub struct StopSignal {
    reader: UnixStream,
    writer: Arc<UnixStream>,
}

/// Asks a running loop to stop; cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct StopHandle {
    writer: Arc<UnixStream>,
}

impl StopSignal {
    /// A fresh channel with no stop requested.
    pub fn new() -> io::Result<Self> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(Self {
            reader,
            writer: Arc::new(writer),
        })
    }

    /// A handle that requests the stop.
    pub fn handle(&self) -> StopHandle {
        StopHandle {
            writer: self.writer.clone(),
        }
    }

    /// Requests the stop when any of `signals` (e.g. `SIGINT`, `SIGTERM`)
    /// arrives. The handler only writes a byte to the channel (async-signal
    /// safe); the loop then returns normally and everything is dropped in
    /// order, which removes the device.
    ///
    /// The handlers stay installed for the life of the process. A second
    /// delivery of the same signal takes the default action (terminates),
    /// so a stuck shutdown can still be interrupted, and so can the process
    /// after the loop has returned.
    pub fn on_signals(&self, signals: &[i32]) -> io::Result<()> {
        if let Some(sig) = signals
            .iter()
            .find(|s| signal_hook::consts::FORBIDDEN.contains(s))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "signal {sig} cannot be handled (SIGKILL, SIGSTOP, SIGILL, SIGFPE, SIGSEGV)"
                ),
            ));
        }
        for &sig in signals {
            let seen = Arc::new(AtomicBool::new(false));
            // Runs before the action below: a no-op the first time, the
            // default action once `seen` is set.
            signal_hook::flag::register_conditional_default(sig, seen.clone())?;
            signal_hook::flag::register(sig, seen)?;
            signal_hook::low_level::pipe::register(sig, self.writer.try_clone()?)?;
        }
        Ok(())
    }

    /// Requests the stop on SIGINT or SIGTERM (Ctrl-C, `kill`).
    pub fn on_termination(&self) -> io::Result<()> {
        self.on_signals(&[libc::SIGINT, libc::SIGTERM])
    }

    /// Whether a stop was requested (consumes pending requests).
    pub fn take(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut any = false;
        while let Ok(n) = (&self.reader).read(&mut buf) {
            if n == 0 {
                break;
            }
            any = true;
        }
        any
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.reader.as_fd()
    }
}

impl StopHandle {
    /// Requests the stop. Never blocks; a full channel already holds a
    /// request.
    pub fn stop(&self) {
        let _ = (&*self.writer).write(&[1]);
    }
}

/// A non-blocking eventfd for ring notifications.
pub fn notification_eventfd() -> nix::Result<EventFd> {
    EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
}

/// Consumes an eventfd's count; `false` if it was zero.
fn consume(efd: &EventFd) -> nix::Result<bool> {
    match efd.read() {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN) => Ok(false),
        Err(e) => Err(e),
    }
}

const EVENTS: u64 = 0;
const STOP: u64 = 1;
const TIMER: u64 = 2;

struct Uring {
    ring: IoUring,
    /// Whether the POLL_ADD of [`EVENTS`] / [`STOP`] is in flight.
    armed: [bool; 3],
}

/// Waits for the eventfd or a stop request.
pub struct Waiter {
    uring: Option<Uring>,
    kind: LoopKind,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter").field("kind", &self.kind).finish()
    }
}

impl Waiter {
    /// A waiter of the given mode.
    pub fn new(mode: WaitMode) -> Result<Self, ChardevError> {
        let uring = |e: io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOSYS));
        match mode {
            WaitMode::Poll => Ok(Self {
                uring: None,
                kind: LoopKind::Poll { fallback: None },
            }),
            WaitMode::IoUring => {
                let ring =
                    IoUring::new(8).map_err(|e| ChardevError::IoUringUnavailable(uring(e)))?;
                Ok(Self::with_ring(ring))
            }
            WaitMode::Auto => match IoUring::new(8) {
                Ok(ring) => Ok(Self::with_ring(ring)),
                Err(e) => Ok(Self {
                    uring: None,
                    kind: LoopKind::Poll {
                        fallback: Some(uring(e)),
                    },
                }),
            },
        }
    }

    fn with_ring(ring: IoUring) -> Self {
        Self {
            uring: Some(Uring {
                ring,
                armed: [false; 3],
            }),
            kind: LoopKind::IoUring,
        }
    }

    /// The mechanism in use.
    pub fn kind(&self) -> LoopKind {
        self.kind
    }

    /// Blocks until `events` fires (its count is consumed) or `stop` is
    /// requested; a stop wins when both are ready.
    pub fn wait(
        &mut self,
        events: &EventFd,
        stop: &StopSignal,
        timer: BorrowedFd<'_>,
    ) -> Result<Wake, ChardevError> {
        loop {
            let r = match &mut self.uring {
                Some(u) => u.wait(events.as_fd(), stop.fd(), timer)?,
                None => wait_poll(events.as_fd(), stop.fd(), timer)?,
            };
            // Checked on every wake-up, not only when the stop descriptor
            // reported ready: with io-uring the readiness reports may
            // arrive in different batches, and a stop must win.
            if stop.take() {
                return Ok(Wake::Stop);
            }
            // A due timer is reported first; the eventfd stays readable
            // and is seen on the next wait.
            if r.timer {
                return Ok(Wake::Timer);
            }
            if r.events && consume(events).map_err(ChardevError::sys("read the eventfd"))? {
                return Ok(Wake::Events);
            }
        }
    }
}

/// Which descriptors a wait found readable.
#[derive(Clone, Copy, Debug, Default)]
struct Ready {
    events: bool,
    timer: bool,
}

impl Uring {
    fn wait(
        &mut self,
        events: BorrowedFd<'_>,
        stop: BorrowedFd<'_>,
        timer: BorrowedFd<'_>,
    ) -> Result<Ready, ChardevError> {
        let step = ChardevError::sys("io_uring_enter");
        for (tag, fd) in [(EVENTS, events), (STOP, stop), (TIMER, timer)] {
            if self.armed[tag as usize] {
                continue;
            }
            let sqe = opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLIN as u32)
                .build()
                .user_data(tag);
            // SAFETY: POLL_ADD lends the kernel no memory of ours, and the
            // kernel takes its own reference to the file when it prepares
            // the request, so even a descriptor closed while the poll is
            // armed cannot make it touch this process's memory. Dropping
            // the ring cancels whatever is still armed.
            let pushed = unsafe { self.ring.submission().push(&sqe) };
            if pushed.is_err() {
                // Three entries in a queue of eight: only possible if the
                // kernel is not consuming submissions at all.
                return Err(step(Errno::EBUSY));
            }
            self.armed[tag as usize] = true;
        }
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                    // A signal (possibly the stop signal): harvest whatever
                    // completed, else wait again.
                    if !self.ring.completion().is_empty() {
                        break;
                    }
                }
                Err(e) => return Err(step(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))),
            }
        }
        let mut ready = Ready::default();
        for cqe in self.ring.completion() {
            let tag = cqe.user_data();
            if tag > TIMER {
                continue;
            }
            self.armed[tag as usize] = false;
            let res = cqe.result();
            if res < 0 && res != -libc::ECANCELED && res != -libc::EINTR {
                return Err(ChardevError::sys("io-uring POLL_ADD")(Errno::from_raw(
                    -res,
                )));
            }
            if res > 0 {
                match tag {
                    EVENTS => ready.events = true,
                    TIMER => ready.timer = true,
                    // The stop signal is read by `StopSignal::take`.
                    _ => {}
                }
            }
        }
        Ok(ready)
    }
}

fn wait_poll(
    events: BorrowedFd<'_>,
    stop: BorrowedFd<'_>,
    timer: BorrowedFd<'_>,
) -> Result<Ready, ChardevError> {
    let mut fds = [
        PollFd::new(events, PollFlags::POLLIN),
        PollFd::new(stop, PollFlags::POLLIN),
        PollFd::new(timer, PollFlags::POLLIN),
    ];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(ChardevError::sys("poll")(e)),
        }
    }
    let ready = |f: &PollFd<'_>| {
        f.revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
    };
    Ok(Ready {
        events: ready(&fds[0]),
        timer: ready(&fds[2]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn exercise(mode: WaitMode) -> LoopKind {
        let efd = notification_eventfd().unwrap();
        let stop = StopSignal::new().unwrap();
        let timers = crate::timers::Timers::new().unwrap();
        let tfd = timers.fd();
        let mut w = Waiter::new(mode).unwrap();

        // A notification that is already pending is seen at once.
        efd.write(3).unwrap();
        assert_eq!(w.wait(&efd, &stop, tfd).unwrap(), Wake::Events);
        assert!(!consume(&efd).unwrap(), "the wait consumed the count");

        // One from another thread wakes a blocked waiter.
        let efd2 = efd.as_fd().try_clone_to_owned().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            nix::unistd::write(&efd2, &1u64.to_ne_bytes()).unwrap();
        });
        let start = Instant::now();
        assert_eq!(w.wait(&efd, &stop, tfd).unwrap(), Wake::Events);
        assert!(start.elapsed() >= Duration::from_millis(40));
        t.join().unwrap();

        // A stop request from another thread ends the wait.
        let h = stop.handle();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            h.stop();
        });
        assert_eq!(w.wait(&efd, &stop, tfd).unwrap(), Wake::Stop);
        t.join().unwrap();

        // Stop wins over pending events, and the events stay for later.
        efd.write(1).unwrap();
        stop.handle().stop();
        assert_eq!(w.wait(&efd, &stop, tfd).unwrap(), Wake::Stop);
        assert_eq!(w.wait(&efd, &stop, tfd).unwrap(), Wake::Events);

        // An armed timer wakes a waiter with nothing else to do, when due.
        timers.set(5, Duration::from_millis(40)).unwrap();
        let start = Instant::now();
        assert_eq!(w.wait(&efd, &stop, tfd).unwrap(), Wake::Timer);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(timers.due().unwrap(), [5]);
        w.kind()
    }

    #[test]
    fn poll_loop_on_a_plain_eventfd() {
        assert_eq!(exercise(WaitMode::Poll), LoopKind::Poll { fallback: None });
    }

    #[test]
    fn auto_loop_on_a_plain_eventfd() {
        // Whichever mechanism Auto picks must behave the same; when it fell
        // back, it says why.
        match exercise(WaitMode::Auto) {
            LoopKind::IoUring => {}
            LoopKind::Poll { fallback } => assert!(fallback.is_some()),
        }
    }

    #[test]
    fn io_uring_loop_on_a_plain_eventfd() {
        match Waiter::new(WaitMode::IoUring) {
            Ok(_) => assert_eq!(exercise(WaitMode::IoUring), LoopKind::IoUring),
            // Only a kernel that refuses io_uring_setup may get here, and
            // then the error must say so.
            Err(e) => assert!(e.to_string().starts_with("io-uring unavailable"), "{e}"),
        }
    }

    #[test]
    fn signals_request_a_stop() {
        let efd = notification_eventfd().unwrap();
        let stop = StopSignal::new().unwrap();
        stop.on_signals(&[libc::SIGUSR2]).unwrap();
        let timers = crate::timers::Timers::new().unwrap();
        let mut w = Waiter::new(WaitMode::Poll).unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGUSR2).unwrap();
        assert_eq!(w.wait(&efd, &stop, timers.fd()).unwrap(), Wake::Stop);
    }

    #[test]
    fn unhandleable_signals_are_refused() {
        let stop = StopSignal::new().unwrap();
        let e = stop.on_signals(&[libc::SIGKILL]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("cannot be handled"), "{e}");
    }
}
