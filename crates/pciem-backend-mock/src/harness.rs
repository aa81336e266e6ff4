//! The driver side: configuration cycles, BAR accesses, DMA buffers,
//! interrupts, and the device run either by stepping or on its own thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pciem_abi::{pciem_event, PCIEM_EVENT_RESET, PCIEM_RESET_D3HOT_D0, PCIEM_RESET_FLR};
use pciem_core::access::split_accesses;
use pciem_core::config::regs::{COMMAND, COMMAND_INTX_DISABLE, COMMAND_MASTER, COMMAND_MEMORY};
use pciem_core::config::WriteEffects;
use pciem_core::dmacheck::{CheckMode, Direction, Fault};
use pciem_core::ring::{channel, HeapConsumer, HeapProducer};
use pciem_core::watch;
use pciem_core::{
    AccessMap, ConfigWrite, Device, HostError, MmioRead, MmioWrite, ReadAnswer, ReadPolicy,
    TrapError, Watch, WritePolicy,
};

use crate::doorbell::Doorbell;
use crate::host::{MockHost, State};
use crate::irq::{IrqKind, IrqRecord};
use crate::trace::TraceRecord;
use crate::MockError;

/// How the device thread of [`Harness::threaded_with`] waits for events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeviceWait {
    /// Sleep on an eventfd while the ring is empty (the real device
    /// process's way): no CPU used while idle, a few microseconds of
    /// wake-up per event that finds the device asleep.
    #[default]
    Sleep,
    /// Spin on the ring: the lowest latency, one core fully used. For
    /// benchmarks and latency-critical models on a machine with a core to
    /// spare.
    BusyPoll,
}

/// What the driver side shares with the device thread: how to wake it and
/// when to stop.
#[derive(Debug)]
struct Wake {
    bell: Doorbell,
    stop: AtomicBool,
}

impl Wake {
    fn notify(&self) {
        // `ring` fails only if write(2) on our own eventfd does, which it
        // cannot for a live descriptor; should it anyway, try once more
        // unconditionally rather than leave the device asleep.
        if self.bell.ring().is_err() {
            let _ = self.bell.signal();
        }
    }
}

/// Where answers to model-answered reads travel from the device (its
/// thread, or the caller's in stepping mode) to the waiting driver: the
/// mock's read-response slot. The driver has at most one read outstanding
/// (it is `&mut self`), so one slot suffices; a late answer to a read that
/// timed out carries an old id and is ignored.
#[derive(Debug, Default)]
struct Answers {
    slot: Mutex<Option<ReadAnswer>>,
    cv: Condvar,
}

impl Answers {
    fn post(&self, a: ReadAnswer) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(a);
        self.cv.notify_all();
    }

    /// The answer to `id` if it is there now.
    fn take(&self, id: u64) -> Option<u64> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match *slot {
            Some(a) if a.id == id => slot.take().map(|a| a.value),
            _ => None,
        }
    }

    /// Wait until `deadline` for the answer to `id`.
    fn wait(&self, id: u64, deadline: Instant) -> Option<u64> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(a) = *slot {
                if a.id == id {
                    *slot = None;
                    return Some(a.value);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            slot = self
                .cv
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// What the device side (thread or stepping) shares with the driver side
/// besides the host: the handlers' errors (the model's own type, `E`) and
/// read answers.
#[derive(Debug)]
struct Sink<E> {
    errors: Mutex<Vec<E>>,
    answers: Answers,
}

impl<E> Default for Sink<E> {
    fn default() -> Self {
        Sink {
            errors: Mutex::new(Vec::new()),
            answers: Answers::default(),
        }
    }
}

impl<E> Sink<E> {
    /// Keep a handler's error.
    fn keep(&self, result: Result<(), E>) {
        if let Err(e) = result {
            self.errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e);
        }
    }

    /// Serve one event, keep its error, post its answer.
    fn serve<D: Device<Error = E>>(&self, device: &mut D, host: &MockHost, ev: &pciem_event) {
        let served = device.serve_event(host, ev);
        self.keep(served.result);
        if let Some(a) = served.answer {
            self.answers.post(a);
        }
    }
}

enum Mode<D> {
    Stepping { device: D, consumer: HeapConsumer },
    Threaded { thread: JoinHandle<D> },
    Gone,
}

/// A device model plugged into the mock host, driven from the driver's side.
///
/// In stepping mode ([`Harness::new`]) the device handles events on the
/// caller's thread: when the driver next observes the device (a read, a wait
/// for an interrupt) or calls [`Harness::step`]; runs are deterministic. In
/// threaded mode ([`Harness::threaded`]) it runs on its own thread, woken
/// by the ring, as it would in a device process.
///
/// # Trapped BARs
///
/// BARs the model puts in trap mode ([`Device::access_map`]) behave as on
/// the kernel module, in both modes, with the policy
/// [`AccessMap::classify`] gives each access: every driver store is an
/// `MMIO_WRITE` event carrying the value stored (bulk writes are split into
/// naturally aligned accesses of up to 8 bytes, one event each), and lands
/// in BAR memory unless the range is
/// [`WritePolicy::DeliverOnly`]; loads come from BAR memory, and also
/// publish a posted `MMIO_READ` event in a [`ReadPolicy::Notify`] range; in
/// a [`ReadPolicy::Model`] range the load publishes a non-posted
/// `MMIO_READ` event and waits for the model's answer, which comes after
/// every earlier event was handled (stepping mode: the harness delivers the
/// pending events, then the read, on the caller's thread). An answer that
/// takes longer than the read timeout (the model's, else 10 ms; see
/// [`Harness::set_read_timeout`]) is replaced by all-ones, counted
/// ([`Harness::read_timeouts`]) and reported to the model as a
/// [`TrapError::ReadTimeout`] event, as the kernel does.
pub struct Harness<D: Device> {
    host: MockHost,
    producer: HeapProducer,
    watches: Vec<Watch>,
    access: AccessMap,
    read_timeout: Duration,
    next_read_id: u64,
    read_timeouts: u64,
    model_reads: u64,
    mode: Mode<D>,
    wake: Arc<Wake>,
    sink: Arc<Sink<D::Error>>,
    epoch: Instant,
}

/// The threaded constructors: the device moves to its own thread, so it
/// must be `Send + 'static`; stepping mode needs neither.
impl<D: Device + Send + 'static> Harness<D> {
    /// Plug `device` in with the device on its own thread, sleeping on an
    /// eventfd while it has nothing to do ([`DeviceWait::Sleep`]).
    pub fn threaded(device: D) -> Result<Self, MockError> {
        Self::threaded_with(device, DeviceWait::Sleep)
    }

    /// Plug `device` in with the device on its own thread, waiting for
    /// events as `wait` says.
    pub fn threaded_with(device: D, wait: DeviceWait) -> Result<Self, MockError> {
        let mut h = Self::new(device)?;
        let Mode::Stepping {
            mut device,
            mut consumer,
        } = std::mem::replace(&mut h.mode, Mode::Gone)
        else {
            return Err(MockError::Threaded);
        };
        h.host.with(|st| st.threaded = true);
        let (host, wake, sink) = (h.host.clone(), h.wake.clone(), h.sink.clone());
        let thread = std::thread::Builder::new()
            .name("pciem-mock-device".into())
            .spawn(move || {
                let mut batch = [pciem_event::default(); 64];
                loop {
                    let n = consumer.pop_batch(&mut batch);
                    if n == 0 {
                        // `stop` is set before the final notify, and every
                        // event published before it is in the ring by then:
                        // seeing it with an empty ring means all is handled.
                        if wake.stop.load(Ordering::Acquire) {
                            return device;
                        }
                        match wait {
                            DeviceWait::BusyPoll => core::hint::spin_loop(),
                            DeviceWait::Sleep => {
                                let ready =
                                    || !consumer.is_empty() || wake.stop.load(Ordering::Acquire);
                                if wake.bell.wait_until(ready).is_err() {
                                    // The eventfd broke (it cannot for a
                                    // live descriptor): degrade to polling
                                    // rather than strand the events.
                                    std::thread::yield_now();
                                }
                            }
                        }
                        continue;
                    }
                    for ev in batch.iter().take(n) {
                        sink.serve(&mut device, &host, ev);
                    }
                }
            })
            .map_err(|_| MockError::Threaded)?;
        h.mode = Mode::Threaded { thread };
        Ok(h)
    }
}

impl<D: Device> Harness<D> {
    /// Plug `device` in, in stepping mode: build its configuration space,
    /// allocate its BARs, set its watches, call its `start`.
    pub fn new(device: D) -> Result<Self, MockError> {
        let config = device.config_space()?;
        let access = device.access_map()?;
        access.check(&config)?;
        let host = MockHost::new(config);
        let trapped = (0..6u8)
            .filter(|&b| access.is_trapped(b))
            .fold(0, |m, b| m | 1 << b);
        host.with(|st| st.trapped = trapped);
        let watches = check_watches(&host, device.watches())?;
        let (producer, consumer) = channel();
        let mut device = device;
        device
            .start(&host)
            .map_err(|e| MockError::Start(e.to_string()))?;
        let read_timeout = Duration::from_micros(access.effective_read_timeout_us().into());
        Ok(Harness {
            host,
            producer,
            watches,
            access,
            read_timeout,
            next_read_id: 1,
            read_timeouts: 0,
            model_reads: 0,
            mode: Mode::Stepping { device, consumer },
            wake: Arc::new(Wake {
                bell: Doorbell::new().map_err(|e| MockError::Eventfd(e.kind()))?,
                stop: AtomicBool::new(false),
            }),
            sink: Arc::new(Sink::default()),
            epoch: Instant::now(),
        })
    }

    /// The device side of the host (what the model's handlers reach).
    pub fn host(&self) -> &MockHost {
        &self.host
    }

    /// The device model, in stepping mode.
    pub fn device(&self) -> Option<&D> {
        match &self.mode {
            Mode::Stepping { device, .. } => Some(device),
            _ => None,
        }
    }

    /// Stop the device thread (if any), after it has handled every event
    /// already published, and hand the model back.
    pub fn into_device(mut self) -> Result<D, MockError> {
        self.stop_thread()
    }

    fn stop_thread(&mut self) -> Result<D, MockError> {
        match std::mem::replace(&mut self.mode, Mode::Gone) {
            Mode::Stepping {
                mut device,
                mut consumer,
            } => {
                drain(&mut device, &mut consumer, &self.host, &self.sink);
                Ok(device)
            }
            Mode::Threaded { thread } => {
                self.wake.stop.store(true, Ordering::Release);
                // Unconditional: the thread may be between its check of
                // `stop` and its sleep, where the doorbell's flag is set;
                // a stale count at worst costs it one extra loop.
                let _ = self.wake.bell.signal();
                thread.join().map_err(|_| MockError::DevicePanicked)
            }
            Mode::Gone => Err(MockError::Threaded),
        }
    }

    /// In stepping mode, let the device handle every pending event
    /// (including the `DMA_FAULT` events its own handlers caused); returns
    /// how many it handled.
    pub fn step(&mut self) -> Result<usize, MockError> {
        if !matches!(self.mode, Mode::Stepping { .. }) {
            return Err(MockError::Threaded);
        }
        Ok(self.drain_all())
    }

    /// The virtual clock of the device's timers
    /// ([`pciem_core::Host::set_timer`]):
    /// zero at creation, moved only by [`Harness::advance`].
    pub fn now(&self) -> Duration {
        self.host.with(|st| st.now)
    }

    /// When the earliest armed timer falls due on the virtual clock, if
    /// one is armed.
    pub fn next_timer(&self) -> Option<Duration> {
        self.host.with(|st| st.timers.values().min().copied())
    }

    /// Moves the virtual clock forward by `by`, firing every timer that
    /// falls due on the way, in deadline order (ties by id), each with the
    /// clock at its deadline, and handling the events its handler causes
    /// before the next one: timer-driven behaviour (watchdogs, keep-alive,
    /// coalescing) is tested deterministically. Stepping mode only (a
    /// threaded model's `set_timer` fails). Returns how many fired.
    pub fn advance(&mut self, by: Duration) -> Result<usize, MockError> {
        if !matches!(self.mode, Mode::Stepping { .. }) {
            return Err(MockError::Threaded);
        }
        self.settle();
        let target = self.host.with(|st| st.now.saturating_add(by));
        let mut fired = 0;
        loop {
            let due = self.host.with(|st| {
                let (&id, &at) = st
                    .timers
                    .iter()
                    .filter(|(_, &at)| at <= target)
                    .min_by_key(|(&id, &at)| (at, id))?;
                st.timers.remove(&id);
                st.now = st.now.max(at);
                Some(id)
            });
            let Some(id) = due else { break };
            fired += 1;
            let at = self.now();
            self.host
                .shared
                .trace
                .record(|| TraceRecord::TimerFired { id, at });
            if let Mode::Stepping { device, .. } = &mut self.mode {
                let result = device.timer(&self.host, id);
                self.sink.keep(result);
            }
            self.settle();
        }
        self.host.with(|st| st.now = target);
        Ok(fired)
    }

    /// Publishes the `DMA_FAULT` events the host queued since the last
    /// call; whether there were any.
    fn publish_dma_faults(&mut self) -> bool {
        let faults: Vec<pciem_event> = self.host.with(|st| {
            let mut evs: Vec<pciem_event> = st.dma.pending.drain(..).collect();
            evs.append(&mut st.pending_events);
            evs
        });
        let any = !faults.is_empty();
        for ev in faults {
            self.publish_event(ev);
        }
        any
    }

    /// Stepping mode: handle events until none is left, publishing the
    /// DMA faults handlers cause in between; returns how many were handled.
    fn drain_all(&mut self) -> usize {
        let mut n = 0;
        loop {
            if let Mode::Stepping { device, consumer } = &mut self.mode {
                n += drain(device, consumer, &self.host, &self.sink);
            }
            if !self.publish_dma_faults() {
                return n;
            }
        }
    }

    /// In stepping mode, handle events until none is left; when threaded,
    /// hand the device the DMA faults it caused.
    pub(crate) fn settle(&mut self) {
        if matches!(self.mode, Mode::Stepping { .. }) {
            self.drain_all();
        } else {
            self.publish_dma_faults();
        }
    }

    /// Errors the device's handlers returned so far, in order, as the
    /// model's own [`Device::Error`] values (they are also what the model
    /// would log on real hardware). For an error type that is not `Clone`,
    /// [`Harness::take_device_errors`].
    pub fn device_errors(&self) -> Vec<D::Error>
    where
        D::Error: Clone,
    {
        self.sink
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Takes the errors the device's handlers returned so far, in order,
    /// leaving none: [`Harness::device_errors`] for any error type.
    pub fn take_device_errors(&mut self) -> Vec<D::Error> {
        std::mem::take(&mut *self.sink.errors.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Events the ring could not take (its overflow counter).
    pub fn events_lost(&self) -> u64 {
        self.producer.state().overflow()
    }

    /// The BAR modes and trap ranges the model declared.
    pub fn access_map(&self) -> &AccessMap {
        &self.access
    }

    /// How long a model-answered read waits before it completes all-ones
    /// (the model's [`AccessMap::read_timeout_us`], else 10 ms, as the
    /// kernel's default).
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// Change the read timeout (tests on a loaded machine give the device
    /// thread more room than the kernel's 10 ms).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.read_timeout = timeout;
    }

    /// Model-answered reads that timed out (and read all-ones).
    pub fn read_timeouts(&self) -> u64 {
        self.read_timeouts
    }

    /// Model-answered reads the model answered in time.
    pub fn model_reads(&self) -> u64 {
        self.model_reads
    }

    fn publish_event(&mut self, mut ev: pciem_event) {
        ev.timestamp_ns = self.epoch.elapsed().as_nanos() as u64;
        // Stepping mode never loses events: a full ring is drained first.
        if let Mode::Stepping { device, consumer } = &mut self.mode {
            if consumer.len() >= pciem_core::ring::RING_CAPACITY {
                drain(device, consumer, &self.host, &self.sink);
            }
        }
        // A full ring counts the event in its overflow counter, which
        // `events_lost` reports: never silent.
        let _ = self.producer.push(&ev);
        self.wake.notify();
    }

    /// Host read of configuration space.
    pub fn config_read(&mut self, offset: u16, width: u8) -> Result<u32, MockError> {
        self.settle();
        let st = self.host.lock();
        let mut value = st.config.read(offset, width)?;
        // Checked after the access itself, so bad input is refused alike.
        if st.removed {
            value = all_ones(width);
        }
        self.host.shared.trace.record(|| TraceRecord::ConfigRead {
            offset,
            width,
            value,
        });
        Ok(value)
    }

    /// Host write of configuration space, with the kernel module's
    /// reactions: a change becomes a CONFIG_WRITE event, FLR and D3hot→D0
    /// become RESET events (and restore the initial configuration, keeping
    /// the BAR addresses), and interrupts held while masked are delivered
    /// when unmasked.
    pub fn config_write(
        &mut self,
        offset: u16,
        width: u8,
        value: u32,
    ) -> Result<WriteEffects, MockError> {
        let record = || TraceRecord::ConfigWrite {
            offset,
            width,
            value,
        };
        if self.host.is_removed() {
            // Refused alike when malformed (a read checks the same).
            self.host.lock().config.read(offset, width)?;
            self.host.shared.trace.record(record);
            return Ok(WriteEffects::empty());
        }
        let fx = self
            .host
            .with(|st: &mut State| -> Result<WriteEffects, MockError> {
                let intx_was_disabled = st.config.command() & COMMAND_INTX_DISABLE != 0;
                let fx = st.config.write(offset, width, value)?;
                if fx.intersects(WriteEffects::FLR | WriteEffects::D3HOT_TO_D0_RESET) {
                    st.config.reset_keeping_bars(&st.initial);
                    st.intx = false;
                }
                st.deliver_unmasked(intx_was_disabled);
                Ok(fx)
            })?;
        // Before the events it causes, which a threaded device may act on
        // at once.
        self.host.shared.trace.record(record);
        if fx.contains(WriteEffects::CHANGED) {
            self.publish_event(
                ConfigWrite {
                    offset,
                    width,
                    value,
                }
                .to_event(),
            );
        }
        if fx.contains(WriteEffects::FLR) {
            self.publish_event(reset_event(PCIEM_RESET_FLR));
        }
        if fx.contains(WriteEffects::D3HOT_TO_D0_RESET) {
            self.publish_event(reset_event(PCIEM_RESET_D3HOT_D0));
        }
        Ok(fx)
    }

    /// What a driver does to use MSI: enable memory decoding and bus
    /// mastering, program the message address and data, enable MSI with
    /// every vector the function supports.
    pub fn enable_msi(&mut self, address: u64, data: u16) -> Result<(), MockError> {
        let msi = self
            .host
            .lock()
            .config
            .msi()
            .ok_or(MockError::Host(HostError::IrqNotEnabled { kind: "MSI" }))?;
        let cmd = self.config_read(COMMAND, 2)? as u16;
        self.config_write(COMMAND, 2, (cmd | COMMAND_MEMORY | COMMAND_MASTER).into())?;
        let o = msi.offset;
        self.config_write(o + 4, 4, address as u32)?;
        let data_off = if msi.is_64bit {
            self.config_write(o + 8, 4, (address >> 32) as u32)?;
            12
        } else {
            8
        };
        self.config_write(o + data_off, 2, data as u32)?;
        let mme = msi.vectors_capable.trailing_zeros() << 4;
        self.config_write(o + 2, 2, 1 | mme)?;
        Ok(())
    }

    /// What `pci_set_master` does (with `pci_enable_device`): set Memory
    /// Space and Bus Master Enable in the command register. Until then the
    /// host refuses the device's DMA, atomics and P2P with
    /// [`HostError::BusMasterDisabled`], as the kernel module does.
    pub fn enable_bus_master(&mut self) -> Result<(), MockError> {
        let cmd = self.config_read(COMMAND, 2)? as u16;
        self.config_write(COMMAND, 2, (cmd | COMMAND_MEMORY | COMMAND_MASTER).into())?;
        Ok(())
    }

    /// Driver write of 1, 2, 4 or 8 bytes to a BAR.
    pub fn mmio_write(
        &mut self,
        bar: u8,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Result<(), MockError> {
        if !matches!(width, 1 | 2 | 4 | 8) {
            return Err(MockError::BadWidth(width));
        }
        self.trace_access(bar, offset, usize::from(width), || TraceRecord::MmioWrite {
            bar,
            offset,
            width,
            value,
        })?;
        if self.host.is_removed() {
            self.host
                .with(|st| st.bar_slice(bar, offset, usize::from(width)).map(drop))?;
            return Ok(());
        }
        if self.access.is_trapped(bar) {
            return self.trapped_write(bar, offset, width, value);
        }
        let bytes = value.to_le_bytes();
        self.bar_store(
            bar,
            offset,
            bytes.get(..usize::from(width)).unwrap_or(&bytes),
        )
    }

    /// One driver store to a trapped BAR: stored unless DeliverOnly, then
    /// an `MMIO_WRITE` event carrying the value.
    fn trapped_write(
        &mut self,
        bar: u8,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Result<(), MockError> {
        let policy = self.access.classify(bar, offset, width);
        let bytes = value.to_le_bytes();
        let data = bytes.get(..usize::from(width)).unwrap_or(&bytes);
        self.host.with(|st| -> Result<(), HostError> {
            let intx_was_disabled = st.config.command() & COMMAND_INTX_DISABLE != 0;
            let mem = st.bar_slice(bar, offset, data.len())?;
            if policy.write == WritePolicy::Store {
                mem.copy_from_slice(data);
                // A write to the MSI-X table may have unmasked an entry.
                st.deliver_unmasked(intx_was_disabled);
            }
            Ok(())
        })?;
        self.publish_event(
            MmioWrite {
                bar,
                offset,
                width,
                value,
            }
            .to_event(),
        );
        Ok(())
    }

    /// One driver load from a trapped BAR, served by its policy.
    fn trapped_read(&mut self, bar: u8, offset: u64, width: u8) -> Result<u64, MockError> {
        self.settle();
        let read = MmioRead { bar, offset, width };
        let backing = self.host.with(|st| -> Result<u64, HostError> {
            let mut b = [0u8; 8];
            let n = usize::from(width);
            b.get_mut(..n)
                .unwrap_or(&mut [])
                .copy_from_slice(st.bar_slice(bar, offset, n)?);
            Ok(u64::from_le_bytes(b))
        })?;
        // A completion timeout on demand: the model is only told.
        if self.host.load_times_out(bar, offset, width) {
            self.read_timeouts += 1;
            self.publish_event(TrapError::InjectedTimeout { read }.to_event());
            return Ok(read.all_ones());
        }
        match self.access.classify(bar, offset, width).read {
            ReadPolicy::Backing => Ok(backing),
            ReadPolicy::Notify => {
                self.publish_event(read.to_notify_event(backing));
                Ok(backing)
            }
            ReadPolicy::Model => Ok(self.model_read(read)),
        }
    }

    /// Publish a non-posted `MMIO_READ` and wait for the model's answer,
    /// at most the read timeout (counted from the publication, as the
    /// kernel does; in stepping mode the pending events and the read are
    /// handled first and the time they took is what counts).
    fn model_read(&mut self, read: MmioRead) -> u64 {
        let id = self.next_read_id;
        self.next_read_id += 1;
        let start = Instant::now();
        self.publish_event(read.to_event(id));
        let answer = match &mut self.mode {
            Mode::Stepping { device, consumer } => {
                drain(device, consumer, &self.host, &self.sink);
                self.sink
                    .answers
                    .take(id)
                    .filter(|_| start.elapsed() <= self.read_timeout)
            }
            _ => self.sink.answers.wait(id, start + self.read_timeout),
        };
        match answer {
            Some(v) => {
                self.model_reads += 1;
                read.truncate(v)
            }
            None => {
                self.read_timeouts += 1;
                self.publish_event(TrapError::ReadTimeout { read, id }.to_event());
                read.all_ones()
            }
        }
    }

    /// Driver read of 1, 2, 4 or 8 bytes from a BAR.
    pub fn mmio_read(&mut self, bar: u8, offset: u64, width: u8) -> Result<u64, MockError> {
        if !matches!(width, 1 | 2 | 4 | 8) {
            return Err(MockError::BadWidth(width));
        }
        let value = if self.host.is_removed() {
            self.host
                .with(|st| st.bar_slice(bar, offset, usize::from(width)).map(drop))?;
            u64::MAX >> (64 - 8 * u32::from(width))
        } else if self.access.is_trapped(bar) {
            self.trapped_read(bar, offset, width)?
        } else {
            let mut b = [0u8; 8];
            self.bar_load(
                bar,
                offset,
                b.get_mut(..usize::from(width)).unwrap_or(&mut [0u8; 0]),
            )?;
            u64::from_le_bytes(b)
        };
        // When it completes: after whatever the model did to answer it.
        self.host.shared.trace.record(|| TraceRecord::MmioRead {
            bar,
            offset,
            width,
            value,
        });
        Ok(value)
    }

    /// Records a driver store about to happen, if tracing is on and the
    /// store is inside the BAR (one that is not fails before anything
    /// happens, with the error it would meet anyway). Before the store's
    /// events, which a threaded device may act on at once.
    fn trace_access(
        &self,
        bar: u8,
        offset: u64,
        len: usize,
        what: impl FnOnce() -> TraceRecord,
    ) -> Result<(), MockError> {
        if self.host.shared.trace.is_on() {
            self.host
                .with(|st| st.bar_slice(bar, offset, len).map(drop))?;
            self.host.shared.trace.record(what);
        }
        Ok(())
    }

    /// Driver 32-bit register write (`iowrite32`).
    pub fn write32(&mut self, bar: u8, offset: u64, value: u32) -> Result<(), MockError> {
        self.mmio_write(bar, offset, 4, value as u64)
    }

    /// Driver 32-bit register read (`ioread32`).
    pub fn read32(&mut self, bar: u8, offset: u64) -> Result<u32, MockError> {
        Ok(self.mmio_read(bar, offset, 4)? as u32)
    }

    /// Driver 64-bit register write (`writeq`).
    pub fn write64(&mut self, bar: u8, offset: u64, value: u64) -> Result<(), MockError> {
        self.mmio_write(bar, offset, 8, value)
    }

    /// Driver 64-bit register read (`readq`).
    pub fn read64(&mut self, bar: u8, offset: u64) -> Result<u64, MockError> {
        self.mmio_read(bar, offset, 8)
    }

    /// What `pci_alloc_irq_vectors(.., PCI_IRQ_MSIX)` and
    /// `pci_set_master` do: Memory Space and Bus Master Enable, then for
    /// each of the first `vectors` table entries (at most the table size) a
    /// message address (`0xfee0_0000 | entry << 12`) and data (the entry
    /// number) written and the entry unmasked, then MSI-X Enable set with
    /// Function Mask clear. The table stores go through [`Harness::write32`]
    /// (trapped or not, as the driver's would). Returns the entries set up.
    pub fn enable_msix(&mut self, vectors: u32) -> Result<u32, MockError> {
        let msix = self
            .host
            .lock()
            .config
            .msix()
            .ok_or(MockError::Host(HostError::IrqNotEnabled { kind: "MSI-X" }))?;
        let cmd = self.config_read(COMMAND, 2)? as u16;
        self.config_write(COMMAND, 2, (cmd | COMMAND_MEMORY | COMMAND_MASTER).into())?;
        let n = vectors.min(msix.table_size);
        for entry in 0..n {
            let at = u64::from(msix.table_offset) + u64::from(entry) * 16;
            let address = 0xfee0_0000u64 | u64::from(entry) << 12;
            self.write32(msix.table_bar, at, address as u32)?;
            self.write32(msix.table_bar, at + 4, (address >> 32) as u32)?;
            self.write32(msix.table_bar, at + 8, entry)?;
            self.write32(msix.table_bar, at + 12, 0)?;
        }
        let ctrl = self.config_read(msix.offset + 2, 2)?;
        self.config_write(msix.offset + 2, 2, (ctrl | 0x8000) & !0x4000)?;
        Ok(n)
    }

    /// Describe `len` bytes starting `offset` bytes into `pages[0]` with
    /// NVMe-style PRPs, as a driver would: PRP1 = `pages[0] + offset`; PRP2
    /// the second page when two suffice, else a PRP list in new coherent
    /// buffers (chained with a last entry pointing at the next list page
    /// when one page of entries is not enough). `pages` are page-aligned
    /// bus addresses of 4 KiB pages the device may use. Returns the PRPs and
    /// the list pages it allocated (free them with [`Harness::dma_free`]).
    pub fn build_prp(
        &mut self,
        pages: &[u64],
        offset: u64,
        len: usize,
    ) -> Result<(pciem_core::prp::Prp, Vec<u64>), MockError> {
        const PAGE: u64 = 4096;
        const PER_LIST: usize = (PAGE / 8) as usize;
        let bad = |what| MockError::Host(HostError::Unsupported(what));
        if len == 0 || offset >= PAGE || !offset.is_multiple_of(4) {
            return Err(bad(
                "build_prp: len must be non-zero and offset a dword inside the page",
            ));
        }
        let needed = (offset + len as u64).div_ceil(PAGE) as usize;
        if pages.len() < needed || pages.iter().any(|p| p % PAGE != 0) {
            return Err(bad("build_prp: too few pages, or one not page aligned"));
        }
        let mut lists = Vec::new();
        let prp2 = match needed {
            1 => 0,
            2 => pages[1],
            _ => {
                let rest = &pages[1..needed];
                // Each list page holds PER_LIST entries, the last one
                // pointing at the next list page when more follow.
                let mut at = 0;
                let mut first = 0;
                let mut prev: Option<(u64, Vec<u8>)> = None;
                while at < rest.len() {
                    let left = rest.len() - at;
                    let take = if left <= PER_LIST { left } else { PER_LIST - 1 };
                    let page = self.dma_alloc(PAGE as usize)?;
                    lists.push(page);
                    if let Some((p, mut bytes)) = prev.take() {
                        bytes.extend_from_slice(&page.to_le_bytes());
                        self.dma_write(p, &bytes)?;
                    } else {
                        first = page;
                    }
                    let bytes: Vec<u8> = rest[at..at + take]
                        .iter()
                        .flat_map(|a| a.to_le_bytes())
                        .collect();
                    at += take;
                    prev = Some((page, bytes));
                }
                if let Some((p, bytes)) = prev {
                    self.dma_write(p, &bytes)?;
                }
                first
            }
        };
        Ok((
            pciem_core::prp::Prp {
                prp1: pages[0] + offset,
                prp2,
                page_size: PAGE as u32,
            },
            lists,
        ))
    }

    /// Driver read of a plain-old-data value from its DMA memory.
    pub fn dma_read_obj<T: zerocopy::FromBytes + zerocopy::IntoBytes>(
        &mut self,
        addr: u64,
    ) -> Result<T, MockError> {
        let mut v = T::new_zeroed();
        self.dma_read(addr, v.as_mut_bytes())?;
        Ok(v)
    }

    /// Driver write of a plain-old-data value into its DMA memory.
    pub fn dma_write_obj<T: zerocopy::IntoBytes + zerocopy::Immutable>(
        &mut self,
        addr: u64,
        value: &T,
    ) -> Result<(), MockError> {
        self.dma_write(addr, value.as_bytes())
    }

    /// Driver bulk write to a BAR (`memcpy_toio`). Every watched register the
    /// write overlaps produces an event carrying the register's value after
    /// the write, as the kernel's watchpoints do.
    ///
    /// On a trapped BAR the write is a sequence of naturally aligned stores
    /// of up to 8 bytes, each served by its policy (see [`Harness`]).
    pub fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) -> Result<(), MockError> {
        self.trace_access(bar, offset, data.len(), || TraceRecord::BarWrite {
            bar,
            offset,
            data: data.to_vec(),
        })?;
        self.bar_store(bar, offset, data)
    }

    /// [`Harness::bar_write`] without its trace record.
    fn bar_store(&mut self, bar: u8, offset: u64, data: &[u8]) -> Result<(), MockError> {
        if self.host.is_removed() {
            self.host
                .with(|st| st.bar_slice(bar, offset, data.len()).map(drop))?;
            return Ok(());
        }
        if self.access.is_trapped(bar) {
            // Refuse an out-of-range write before any part of it happens.
            self.host
                .with(|st| st.bar_slice(bar, offset, data.len()).map(drop))?;
            for (at, width) in split_accesses(offset, data.len() as u64) {
                let start = (at - offset) as usize;
                let mut v = [0u8; 8];
                let chunk = data.get(start..start + width as usize).unwrap_or(&[]);
                v.get_mut(..chunk.len())
                    .unwrap_or(&mut [])
                    .copy_from_slice(chunk);
                self.trapped_write(bar, at, width, u64::from_le_bytes(v))?;
            }
            return Ok(());
        }
        let end = offset.saturating_add(data.len() as u64);
        let hits: Vec<(Watch, u64)> = self.host.with(|st| -> Result<_, HostError> {
            let intx_was_disabled = st.config.command() & COMMAND_INTX_DISABLE != 0;
            st.bar_slice(bar, offset, data.len())?.copy_from_slice(data);
            let mut hits = Vec::new();
            for w in self.watches.iter().filter(|w| w.bar == bar) {
                let (ws, we) = (w.offset, w.offset + u64::from(w.width));
                if ws < end && offset < we {
                    let n = usize::from(w.width);
                    let mut v = [0u8; 8];
                    v[..n].copy_from_slice(st.bar_slice(bar, ws, n)?);
                    hits.push((*w, u64::from_le_bytes(v)));
                }
            }
            // A write to the MSI-X table may have unmasked an entry.
            st.deliver_unmasked(intx_was_disabled);
            Ok(hits)
        })?;
        for (w, value) in hits {
            self.publish_event(
                MmioWrite {
                    bar: w.bar,
                    offset: w.offset,
                    width: w.width,
                    value,
                }
                .to_event(),
            );
        }
        Ok(())
    }

    /// Driver bulk read of a BAR (`memcpy_fromio`). On a trapped BAR, the
    /// parts inside trap ranges are naturally aligned loads of up to 8
    /// bytes, each served by its policy (see [`Harness`]).
    pub fn bar_read(&mut self, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), MockError> {
        self.bar_load(bar, offset, buf)?;
        self.host.shared.trace.record(|| TraceRecord::BarRead {
            bar,
            offset,
            data: buf.to_vec(),
        });
        Ok(())
    }

    /// [`Harness::bar_read`] without its trace record.
    fn bar_load(&mut self, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), MockError> {
        self.settle();
        if self.host.is_removed() {
            self.host
                .with(|st| st.bar_slice(bar, offset, buf.len()).map(drop))?;
            buf.fill(0xff);
            return Ok(());
        }
        if self.access.touches_range(bar, offset, buf.len() as u64) {
            self.host
                .with(|st| st.bar_slice(bar, offset, buf.len()).map(drop))?;
            for (at, width) in split_accesses(offset, buf.len() as u64) {
                let v = self.trapped_read(bar, at, width)?.to_le_bytes();
                let start = (at - offset) as usize;
                if let Some(dst) = buf.get_mut(start..start + width as usize) {
                    dst.copy_from_slice(v.get(..width as usize).unwrap_or(&[]));
                }
            }
            return Ok(());
        }
        self.host.with(|st| -> Result<(), HostError> {
            buf.copy_from_slice(st.bar_slice(bar, offset, buf.len())?);
            Ok(())
        })?;
        Ok(())
    }

    /// Allocate a coherent DMA buffer (zeroed, the device may read and
    /// write it: `dma_alloc_coherent`) and return its bus address.
    pub fn dma_alloc(&mut self, len: usize) -> Result<u64, MockError> {
        Ok(self
            .host
            .with(|st| st.dma.alloc(len, Direction::Bidirectional))?)
    }

    /// Map a streaming DMA buffer of `len` zero bytes for `dir`
    /// (`dma_map_single`): the device may only read a
    /// [`Direction::ToDevice`] buffer and only write a
    /// [`Direction::FromDevice`] one. Returns its bus address.
    pub fn dma_map(&mut self, len: usize, dir: Direction) -> Result<u64, MockError> {
        Ok(self.host.with(|st| st.dma.alloc(len, dir))?)
    }

    /// Free a coherent buffer or unmap a streaming one; `false` if `addr`
    /// is not a live buffer's start. The buffer is remembered, so that a
    /// later device access to it is reported as a use after unmap.
    pub fn dma_free(&mut self, addr: u64) -> bool {
        self.settle();
        self.host.with(|st| st.dma.free(addr))
    }

    /// How the device's DMA is checked against the buffers above:
    /// [`CheckMode::Enforce`] by default (as the kernel module), where a
    /// violation is reported and the access fails with
    /// [`HostError::DmaRefused`]; [`CheckMode::Report`] reports it and lets
    /// it go ahead where memory exists; [`CheckMode::Off`] checks nothing
    /// but that the bytes lie in a live buffer. Each report is a
    /// `DMA_FAULT` event to the model ([`Device::dma_fault`]) and an entry
    /// of [`Harness::dma_faults`].
    pub fn set_dma_check(&mut self, mode: CheckMode) {
        self.host.with(|st| st.dma.set_mode(mode));
    }

    /// The AER errors the device reported since the last call
    /// ([`pciem_core::Host::inject_aer`]), oldest first. The test plays the
    /// root complex and Linux's AER core: it reads and clears the device's
    /// AER status registers with [`Harness::config_read`] and
    /// [`Harness::config_write`], and after a fatal error resets the
    /// device as the kernel's recovery does (a secondary bus reset).
    pub fn aer_reports(&mut self) -> Vec<pciem_core::AerError> {
        self.settle();
        self.host.with(|st| st.aer.drain(..).collect())
    }

    /// Every DMA violation the model made so far, in order.
    pub fn dma_faults(&mut self) -> Vec<Fault> {
        self.settle();
        self.host.with(|st| st.dma.faults.clone())
    }

    /// Buffers still allocated or mapped, as `(bus address, length)`: what
    /// a test driver must have freed at remove.
    pub fn dma_live(&self) -> Vec<(u64, usize)> {
        self.host.with(|st| st.dma.live())
    }

    /// Driver write into its DMA buffer.
    pub fn dma_write(&mut self, addr: u64, data: &[u8]) -> Result<(), MockError> {
        Ok(self.host.with(|st| -> Result<(), HostError> {
            st.dma.slice(addr, data.len())?.copy_from_slice(data);
            Ok(())
        })?)
    }

    /// Driver read of its DMA buffer.
    pub fn dma_read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MockError> {
        self.settle();
        Ok(self.host.with(|st| -> Result<(), HostError> {
            buf.copy_from_slice(st.dma.slice(addr, buf.len())?);
            Ok(())
        })?)
    }

    /// Make `len` bytes of peer memory at `addr` reachable by the device's
    /// peer-to-peer transfers (the kernel's `p2p_regions` whitelist).
    pub fn add_p2p_region(&mut self, addr: u64, len: usize) {
        self.host.with(|st| st.peers.push((addr, vec![0; len])));
    }

    /// Read peer memory (what the peer device holds).
    pub fn peer_read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MockError> {
        self.settle();
        Ok(self.host.with(|st| -> Result<(), HostError> {
            buf.copy_from_slice(st.peer_slice(addr, buf.len())?);
            Ok(())
        })?)
    }

    /// Write peer memory.
    pub fn peer_write(&mut self, addr: u64, data: &[u8]) -> Result<(), MockError> {
        Ok(self.host.with(|st| -> Result<(), HostError> {
            st.peer_slice(addr, data.len())?.copy_from_slice(data);
            Ok(())
        })?)
    }

    /// Wait for the next interrupt (oldest first).
    pub fn wait_irq(&mut self, timeout: Duration) -> Result<IrqRecord, MockError> {
        self.settle();
        let deadline = Instant::now() + timeout;
        let mut st = self.host.lock();
        loop {
            if let Some(r) = st.irqs.pop_front() {
                self.host.note_irqs(&st);
                self.host
                    .shared
                    .trace
                    .record(|| TraceRecord::IrqReceived(r));
                return Ok(r);
            }
            let now = Instant::now();
            if now >= deadline || matches!(self.mode, Mode::Stepping { .. }) {
                return Err(MockError::Timeout);
            }
            // Registered under the lock, so a delivery after this point
            // sees us (see `MockHost::with`).
            let waiters = &self.host.shared.irq_waiters;
            waiters.fetch_add(1, Ordering::Relaxed);
            st = self
                .host
                .shared
                .irq_cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The next interrupt if one was delivered, without waiting. Cheap when
    /// none is there (one atomic load, no lock), so a driver can spin on it
    /// as it would on a status register.
    pub fn poll_irq(&mut self) -> Option<IrqRecord> {
        self.settle();
        if !self.host.irqs_maybe_pending() {
            return None;
        }
        let mut st = self.host.lock();
        let r = st.irqs.pop_front();
        self.host.note_irqs(&st);
        if let Some(r) = r {
            self.host
                .shared
                .trace
                .record(|| TraceRecord::IrqReceived(r));
        }
        r
    }

    /// Every interrupt delivered and not yet waited for.
    pub fn take_irqs(&mut self) -> Vec<IrqRecord> {
        self.settle();
        let mut st = self.host.lock();
        let all: Vec<IrqRecord> = st.irqs.drain(..).collect();
        self.host.note_irqs(&st);
        for r in &all {
            self.host
                .shared
                .trace
                .record(|| TraceRecord::IrqReceived(*r));
        }
        all
    }

    /// How many interrupts of this kind and vector were delivered in all.
    pub fn irq_count(&mut self, kind: IrqKind, vector: u32) -> u64 {
        self.settle();
        self.host
            .lock()
            .counts
            .get(&(kind, vector))
            .copied()
            .unwrap_or(0)
    }
}

impl<D: Device> Drop for Harness<D> {
    fn drop(&mut self) {
        if matches!(self.mode, Mode::Threaded { .. }) {
            let _ = self.stop_thread();
        }
    }
}

/// A `RESET` event of the given kind.
fn reset_event(kind: u64) -> pciem_event {
    pciem_event {
        r#type: PCIEM_EVENT_RESET,
        data: kind,
        ..Default::default()
    }
}

/// What a dead link answers to a configuration read of `width` bytes.
fn all_ones(width: u8) -> u32 {
    match width {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

fn drain<D: Device>(
    device: &mut D,
    consumer: &mut HeapConsumer,
    host: &MockHost,
    sink: &Sink<D::Error>,
) -> usize {
    let mut n = 0;
    while let Some(ev) = consumer.pop() {
        n += 1;
        sink.serve(device, host, &ev);
    }
    n
}

/// The watches a device asks for, checked as the kernel would (pciem-core's
/// `watch::check_watches`): the BAR exists, the register lies inside it, is
/// naturally aligned and 1/2/4/8 bytes wide, no duplicates, at most four
/// (the x86 debug registers).
fn check_watches(host: &MockHost, watches: &[Watch]) -> Result<Vec<Watch>, MockError> {
    let st = host.lock();
    watch::check_watches(watches, |bar| st.config.bar(bar).map_or(0, |b| b.size)).map_err(
        |(w, e)| MockError::BadWatch {
            bar: w.bar,
            offset: w.offset,
            reason: e.message(),
        },
    )?;
    Ok(watches.to_vec())
}
