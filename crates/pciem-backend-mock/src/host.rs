//! The host side: state shared by the harness (the driver's view) and the
//! device model (through the [`Host`] trait).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use pciem_core::config::regs::{COMMAND_INTX_DISABLE, COMMAND_MASTER};
use pciem_core::config::root_port;
use pciem_core::device::{read_prp_via_dma, write_prp_via_dma};
use pciem_core::dmacheck::Access;
use pciem_core::interrupt::{
    msix_held, msix_pba_pending, msix_pba_update, msix_pba_word, resolve_auto, Enabled,
};
use pciem_core::prp::{self, Prp};
use pciem_core::{AerError, AtomicOp, ConfigSpace, Host, HostError, Irq};

use crate::dma::{check_len, DmaSpace};
use crate::irq::{IrqKind, IrqRecord};
use crate::trace::{TraceRecord, Tracer};

/// Everything the simulated host knows about the device.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: ConfigSpace,
    /// The configuration space as built, restored by a function reset.
    pub(crate) initial: ConfigSpace,
    pub(crate) bars: [Vec<u8>; 6],
    pub(crate) dma: DmaSpace,
    pub(crate) peers: Vec<(u64, Vec<u8>)>,
    pub(crate) irqs: VecDeque<IrqRecord>,
    pub(crate) counts: HashMap<(IrqKind, u32), u64>,
    pub(crate) intx: bool,
    /// Surprise-removed ([`Host::surprise_remove`]): the driver's accesses
    /// read all-ones and are dropped, the device can no longer interrupt
    /// or master the bus.
    pub(crate) removed: bool,
    /// Armed timers: id -> deadline on the virtual clock.
    pub(crate) timers: BTreeMap<u32, Duration>,
    /// The virtual clock, advanced by `Harness::advance`.
    pub(crate) now: Duration,
    /// The device runs on its own thread (timers are refused there).
    pub(crate) threaded: bool,
    /// The fault plan ([`crate::faults`]).
    pub(crate) faults: pciem_core::faultplan::FaultPlan,
    /// Bit n: BAR n is trapped (set by the harness from the access map).
    pub(crate) trapped: u8,
    /// Loads a READ_TIMEOUT rule made time out.
    pub(crate) injected_timeouts: u64,
    /// Events the host side raised for the harness to publish (a
    /// reinsertion's reset).
    pub(crate) pending_events: Vec<pciem_abi::pciem_event>,
    /// AER errors the device reported ([`Host::inject_aer`]), oldest
    /// first, until the test takes them.
    pub(crate) aer: VecDeque<AerError>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) irq_cv: Condvar,
    /// `state.irqs.len()` as of the last change, stored under the lock: lets
    /// a polling driver see "nothing yet" without taking the lock (and so
    /// without slowing the device thread that delivers).
    pub(crate) irqs_pending: AtomicUsize,
    /// Threads blocked on `irq_cv`, changed under the lock: delivery skips
    /// the futex wake (a system call) when nobody waits.
    pub(crate) irq_waiters: AtomicUsize,
    /// The access trace (off unless the test turns it on). Device-side
    /// records are taken under the state lock, so they are ordered with
    /// the driver's.
    pub(crate) trace: Tracer,
}

/// The device side of the mock host: what a model's [`Host`] calls reach.
/// Cheap to clone; all clones share one host.
#[derive(Clone, Debug)]
pub struct MockHost {
    pub(crate) shared: Arc<Shared>,
}

impl MockHost {
    pub(crate) fn new(config: ConfigSpace) -> Self {
        let bars = core::array::from_fn(|i| match config.bar(i as u8) {
            Some(b) => vec![0; b.size as usize],
            None => Vec::new(),
        });
        MockHost {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    initial: config.clone(),
                    config,
                    bars,
                    dma: DmaSpace::default(),
                    peers: Vec::new(),
                    irqs: VecDeque::new(),
                    counts: HashMap::new(),
                    intx: false,
                    removed: false,
                    timers: BTreeMap::new(),
                    now: Duration::ZERO,
                    threaded: false,
                    faults: Default::default(),
                    trapped: 0,
                    injected_timeouts: 0,
                    pending_events: Vec::new(),
                    aer: VecDeque::new(),
                }),
                irq_cv: Condvar::new(),
                irqs_pending: AtomicUsize::new(0),
                irq_waiters: AtomicUsize::new(0),
                trace: Tracer::default(),
            }),
        }
    }

    /// Whether the device was surprise-removed.
    pub fn is_removed(&self) -> bool {
        self.lock().removed
    }

    /// Look at the configuration space as the host currently has it.
    pub fn lock_config<R>(&self, f: impl FnOnce(&ConfigSpace) -> R) -> R {
        f(&self.lock().config)
    }

    /// Lock the state; a poisoned lock (a panicking device thread) still
    /// yields the state, which stays consistent between calls.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the state, then wake interrupt waiters if `f` delivered.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        let before = st.irqs.len();
        let r = f(&mut st);
        let delivered = st.irqs.len() != before;
        if delivered {
            self.note_irqs(&st);
        }
        drop(st);
        // Relaxed is enough: waiters register under the lock we just
        // released, so a waiter that did not see the new interrupt
        // registered before our critical section and is counted here.
        if delivered && self.shared.irq_waiters.load(Ordering::Relaxed) != 0 {
            self.shared.irq_cv.notify_all();
        }
        r
    }

    /// Record how many interrupts are queued; call with the lock held,
    /// after any change to `irqs`.
    pub(crate) fn note_irqs(&self, st: &State) {
        self.shared
            .irqs_pending
            .store(st.irqs.len(), Ordering::Release);
    }

    /// Whether an interrupt may be queued, without taking the lock.
    pub(crate) fn irqs_maybe_pending(&self) -> bool {
        self.shared.irqs_pending.load(Ordering::Acquire) != 0
    }
}

impl State {
    pub(crate) fn bar_slice(
        &mut self,
        bar: u8,
        offset: u64,
        len: usize,
    ) -> Result<&mut [u8], HostError> {
        let mem = self
            .bars
            .get_mut(bar as usize)
            .filter(|m| !m.is_empty())
            .ok_or(HostError::NoSuchBar { bar })?;
        let size = mem.len() as u64;
        let err = HostError::BarOutOfRange {
            bar,
            offset,
            len: len as u64,
            size,
        };
        let start = usize::try_from(offset).map_err(|_| err)?;
        mem.get_mut(start..start.checked_add(len).ok_or(err)?)
            .ok_or(err)
    }

    fn record(&mut self, r: IrqRecord) {
        *self.counts.entry((r.kind, r.vector)).or_default() += 1;
        self.irqs.push_back(r);
    }

    /// Raise `irq` with the semantics of the kernel module.
    pub(crate) fn raise(&mut self, irq: Irq) -> Result<(), HostError> {
        let irq = match irq {
            Irq::Auto { vector } => {
                let enabled = Enabled {
                    msix: self.config.msix().is_some_and(|m| m.enabled),
                    msi: self.config.msi().is_some_and(|m| m.enabled),
                    intx: self.config.interrupt_pin() != 0,
                };
                resolve_auto(vector, enabled)
                    .map_err(|_| HostError::IrqNotEnabled { kind: "any" })?
            }
            other => other,
        };
        match irq {
            Irq::Msi { vector } => self.raise_msi(vector),
            Irq::MsiX { entry } => self.raise_msix(entry),
            Irq::IntxAssert | Irq::IntxDeassert => {
                if self.config.interrupt_pin() == 0 {
                    return Err(HostError::IrqNotEnabled { kind: "INTx" });
                }
                let assert = irq == Irq::IntxAssert;
                let rising = assert && !self.intx;
                self.intx = assert;
                self.config.set_intx_status(assert);
                if rising && self.config.command() & COMMAND_INTX_DISABLE == 0 {
                    self.record(IrqRecord {
                        kind: IrqKind::Intx,
                        vector: 0,
                        address: 0,
                        data: 0,
                    });
                }
                Ok(())
            }
            Irq::Auto { .. } => Err(HostError::IrqNotEnabled { kind: "any" }),
        }
    }

    fn raise_msi(&mut self, vector: u32) -> Result<(), HostError> {
        let msi = self
            .config
            .msi()
            .ok_or(HostError::IrqNotEnabled { kind: "MSI" })?;
        if !msi.enabled {
            return Err(HostError::IrqNotEnabled { kind: "MSI" });
        }
        if vector >= msi.vectors_enabled {
            return Err(HostError::NoSuchVector {
                vector,
                available: msi.vectors_enabled,
            });
        }
        if self.config.msi_hold_if_masked(vector) {
            return Ok(());
        }
        let low_bits = msi.vectors_enabled - 1;
        self.record(IrqRecord {
            kind: IrqKind::Msi,
            vector,
            address: msi.address,
            data: (msi.data as u32 & !low_bits) | vector,
        });
        Ok(())
    }

    fn raise_msix(&mut self, entry: u32) -> Result<(), HostError> {
        let m = self
            .config
            .msix()
            .ok_or(HostError::IrqNotEnabled { kind: "MSI-X" })?;
        if !m.enabled {
            return Err(HostError::IrqNotEnabled { kind: "MSI-X" });
        }
        if entry >= m.table_size {
            return Err(HostError::NoSuchVector {
                vector: entry,
                available: m.table_size,
            });
        }
        let mut e = [0u8; 16];
        e.copy_from_slice(self.bar_slice(
            m.table_bar,
            m.table_offset as u64 + 16 * entry as u64,
            16,
        )?);
        let word = |i: usize| u32::from_le_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
        let pba_off = m.pba_offset as u64 + msix_pba_word(entry);
        let mut pba = [0u8; 8];
        pba.copy_from_slice(self.bar_slice(m.pba_bar, pba_off, 8)?);
        let held = msix_held(m.function_mask, word(12));
        let bits = msix_pba_update(u64::from_le_bytes(pba), entry, held);
        if !held {
            self.record(IrqRecord {
                kind: IrqKind::MsiX,
                vector: entry,
                address: (word(4) as u64) << 32 | word(0) as u64,
                data: word(8),
            });
        }
        self.bar_slice(m.pba_bar, pba_off, 8)?
            .copy_from_slice(&bits.to_le_bytes());
        Ok(())
    }

    /// Deliver what was held while masked and is no longer: MSI pending
    /// bits, MSI-X PBA bits, an asserted INTx line that became visible.
    pub(crate) fn deliver_unmasked(&mut self, intx_was_disabled: bool) {
        let due = self.config.msi_take_unmasked();
        for v in (0..32).filter(|v| due & (1 << v) != 0) {
            let _ = self.raise_msi(v);
        }
        if let Some(m) = self.config.msix().filter(|m| m.enabled && !m.function_mask) {
            for entry in 0..m.table_size {
                let off = m.pba_offset as u64 + msix_pba_word(entry);
                let pending = self
                    .bar_slice(m.pba_bar, off, 8)
                    .map(|b| {
                        msix_pba_pending(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])), entry)
                    })
                    .unwrap_or(false);
                if pending {
                    let _ = self.raise_msix(entry);
                }
            }
        }
        let disabled = self.config.command() & COMMAND_INTX_DISABLE != 0;
        if self.intx && intx_was_disabled && !disabled {
            self.record(IrqRecord {
                kind: IrqKind::Intx,
                vector: 0,
                address: 0,
                data: 0,
            });
        }
    }

    fn peer(&mut self, addr: u64, len: usize) -> Result<&mut [u8], HostError> {
        let denied = HostError::P2pDenied {
            addr,
            len: len as u64,
        };
        for (base, mem) in &mut self.peers {
            if addr >= *base {
                let start = (addr - *base) as usize;
                if let Some(s) = start
                    .checked_add(len)
                    .and_then(|end| mem.get_mut(start..end))
                {
                    return Ok(s);
                }
            }
        }
        Err(denied)
    }

    pub(crate) fn peer_slice(&mut self, addr: u64, len: usize) -> Result<&mut [u8], HostError> {
        check_len(len)?;
        self.peer(addr, len)
    }

    /// A device DMA read into `buf` (untraced; [`Host::dma_read`] traces
    /// it).
    pub(crate) fn dma_read(&mut self, bus_addr: u64, buf: &mut [u8]) -> Result<(), HostError> {
        check_len(buf.len())?;
        self.check_bus_master()?;
        buf.copy_from_slice(self.dma.device_slice(bus_addr, buf.len(), Access::Read)?);
        Ok(())
    }

    /// [`State::dma_read`] that a `DMA_POISON` fault rule can fail, after
    /// the DMA check has judged it (as the kernel orders them): the
    /// model's own reads.
    pub(crate) fn dma_read_poisonable(
        &mut self,
        bus_addr: u64,
        buf: &mut [u8],
    ) -> Result<(), HostError> {
        check_len(buf.len())?;
        self.check_bus_master()?;
        let data = self.dma.device_slice(bus_addr, buf.len(), Access::Read)?;
        crate::faults::poison_check(
            &mut self.faults,
            &mut self.config,
            &mut self.aer,
            bus_addr,
            buf.len(),
        )?;
        buf.copy_from_slice(data);
        Ok(())
    }

    /// The kernel refuses device-initiated DMA, atomics and P2P (`EPERM`)
    /// until the driver sets Bus Master Enable.
    pub(crate) fn check_bus_master(&self) -> Result<(), HostError> {
        if self.removed {
            return Err(HostError::Disconnected);
        }
        if self.config.command() & COMMAND_MASTER == 0 {
            return Err(HostError::BusMasterDisabled);
        }
        Ok(())
    }
}

impl MockHost {
    /// A DMA read the fault plan does not see (the enforce-mode precheck).
    fn dma_read_unpoisoned(&self, bus_addr: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.with(|st| st.dma_read(bus_addr, buf))
    }

    /// In enforce mode, a PRP transfer is checked whole before anything
    /// moves, as the kernel module does: list pages are read (checked),
    /// every data segment is checked, no data is copied.
    fn prp_precheck(&self, prp: Prp, len: usize, access: Access) -> Result<(), HostError> {
        if !self.with(|st| st.dma.enforcing()) {
            return Ok(());
        }
        check_len(len)?;
        prp::for_each_segment(
            prp,
            len as u64,
            // Untraced and not charged to the fault plan: the copy walk
            // reads the lists again, as the kernel's second walk does.
            |addr, entries| self.dma_read_unpoisoned(addr, entries),
            |_, addr, seg| {
                self.with(|st| {
                    st.check_bus_master()?;
                    st.dma.check(addr, seg as usize, access)
                })
            },
        )
    }
}

impl Host for MockHost {
    fn bar_read(&self, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.with(|st| {
            buf.copy_from_slice(st.bar_slice(bar, offset, buf.len())?);
            Ok(())
        })
    }

    fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) -> Result<(), HostError> {
        self.with(|st| {
            st.bar_slice(bar, offset, data.len())?.copy_from_slice(data);
            Ok(())
        })
    }

    fn raise_irq(&self, irq: Irq) -> Result<(), HostError> {
        self.with(|st| {
            let r = if st.removed {
                Err(HostError::Disconnected)
            } else {
                st.raise(irq)
            };
            self.shared
                .trace
                .outcome(&r, |error| TraceRecord::IrqRaised { irq, error });
            r
        })
    }

    fn dma_read(&self, bus_addr: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.with(|st| {
            let r = st.dma_read_poisonable(bus_addr, buf);
            self.shared.trace.outcome(&r, |error| TraceRecord::DmaRead {
                addr: bus_addr,
                len: buf.len(),
                error,
            });
            r
        })
    }

    fn dma_write(&self, bus_addr: u64, data: &[u8]) -> Result<(), HostError> {
        self.with(|st| {
            let r = check_len(data.len())
                .and_then(|()| st.check_bus_master())
                .and_then(|()| {
                    st.dma
                        .device_slice(bus_addr, data.len(), Access::Write)?
                        .copy_from_slice(data);
                    Ok(())
                });
            self.shared
                .trace
                .outcome(&r, |error| TraceRecord::DmaWrite {
                    addr: bus_addr,
                    len: data.len(),
                    error,
                });
            r
        })
    }

    fn dma_atomic(&self, bus_addr: u64, op: AtomicOp) -> Result<u64, HostError> {
        self.with(|st| {
            let r = if !bus_addr.is_multiple_of(8) {
                Err(HostError::Misaligned {
                    addr: bus_addr,
                    align: 8,
                })
            } else {
                st.check_bus_master().and_then(|()| {
                    let cell = st.dma.device_slice(bus_addr, 8, Access::Atomic)?;
                    crate::faults::poison_check(
                        &mut st.faults,
                        &mut st.config,
                        &mut st.aer,
                        bus_addr,
                        8,
                    )?;
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(cell);
                    let old = u64::from_le_bytes(raw);
                    cell.copy_from_slice(&op.apply(old).to_le_bytes());
                    Ok(old)
                })
            };
            self.shared
                .trace
                .outcome(&r, |error| TraceRecord::DmaAtomic {
                    addr: bus_addr,
                    op,
                    error,
                });
            r
        })
    }

    fn set_timer(&self, id: u32, delay: Duration) -> Result<(), HostError> {
        self.with(|st| {
            if st.threaded {
                return Err(HostError::Unsupported(
                    "timers in the mock's threaded mode (its clock is virtual: use Harness::new and Harness::advance)",
                ));
            }
            let deadline = st.now.saturating_add(delay);
            st.timers.insert(id, deadline);
            self.shared
                .trace
                .record(|| TraceRecord::TimerSet { id, delay });
            Ok(())
        })
    }

    fn cancel_timer(&self, id: u32) -> Result<(), HostError> {
        self.with(|st| {
            st.timers.remove(&id);
            self.shared
                .trace
                .record(|| TraceRecord::TimerCancelled { id });
            Ok(())
        })
    }

    fn dma_read_prp(&self, prp: Prp, buf: &mut [u8]) -> Result<(), HostError> {
        self.prp_precheck(prp, buf.len(), Access::Read)?;
        read_prp_via_dma(self, prp, buf)
    }

    fn dma_write_prp(&self, prp: Prp, data: &[u8]) -> Result<(), HostError> {
        self.prp_precheck(prp, data.len(), Access::Write)?;
        write_prp_via_dma(self, prp, data)
    }

    fn p2p_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.with(|st| {
            let r = st.check_bus_master().and_then(|()| {
                buf.copy_from_slice(st.peer_slice(addr, buf.len())?);
                Ok(())
            });
            self.shared.trace.outcome(&r, |error| TraceRecord::P2pRead {
                addr,
                len: buf.len(),
                error,
            });
            r
        })
    }

    fn p2p_write(&self, addr: u64, data: &[u8]) -> Result<(), HostError> {
        self.with(|st| {
            let r = st.check_bus_master().and_then(|()| {
                st.peer_slice(addr, data.len())?.copy_from_slice(data);
                Ok(())
            });
            self.shared
                .trace
                .outcome(&r, |error| TraceRecord::P2pWrite {
                    addr,
                    len: data.len(),
                    error,
                });
            r
        })
    }

    fn reinsert(&self) -> Result<(), HostError> {
        self.reinsert_device()
    }

    fn set_fault(&self, rule: pciem_core::faultplan::FaultRule) -> Result<(), HostError> {
        self.arm_fault(rule)
    }

    fn clear_faults(&self) -> Result<(), HostError> {
        self.disarm_faults()
    }

    fn surprise_remove(&self) -> Result<(), HostError> {
        self.with(|st| {
            if st.removed {
                return Err(HostError::Disconnected);
            }
            st.removed = true;
            st.irqs.clear();
            st.intx = false;
            self.shared.trace.record(|| TraceRecord::SurpriseRemove);
            Ok(())
        })
    }

    /// Records the error in the device's configuration space with the
    /// code the kernel module uses (`root_port::record_error`) and queues
    /// it for the test, which plays the root complex and the AER core
    /// (`Harness::aer_reports`).
    fn inject_aer(&self, error: AerError) -> Result<(), HostError> {
        self.with(|st| {
            let r = if st.removed {
                Err(HostError::Disconnected)
            } else {
                root_port::record_error(
                    &mut st.config,
                    error.severity,
                    error.status,
                    error.header_log,
                )
                .map_err(HostError::from)
                .map(|()| st.aer.push_back(error))
            };
            self.shared
                .trace
                .outcome(&r, |refused| TraceRecord::AerInjected {
                    aer: error,
                    error: refused,
                });
            r
        })
    }
}
