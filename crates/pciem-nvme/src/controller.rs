//! The controller: configuration space, BAR0 in trap mode, the register
//! state machine (enable, reset, shutdown), doorbells and the queue engine
//! that fetches commands, runs them and posts completions.
//!
//! Everything runs on the device's event thread, synchronously: a doorbell
//! write fetches and executes every command it makes visible before the
//! next event is handled, so no command is ever in flight between events
//! (except Asynchronous Event Requests, held until an event).

use std::collections::VecDeque;

use pciem_core::config::{Bar, MsiCap, MsixCap, PcieCap, PmCap};
use pciem_core::{
    AccessMap, BuildError, ConfigBuilder, ConfigSpace, ConfigWrite, Device, Host, HostError,
    MmioRead, MmioWrite, ResetKind, TrapPolicy, Watch,
};

use crate::aer::AsyncEvents;
use crate::command::{Command, Completion, CQE_SIZE, SQE_SIZE};
use crate::config::NvmeConfig;
use crate::features::Features;
use crate::interrupts::Interrupts;
use crate::logs::{ErrorLog, Health};
use crate::queue::{CompletionQueue, SubmissionQueue};
use crate::regs::*;
use crate::status::Status;
use crate::storage::Storage;

/// Commands fetched from a submission queue with one DMA read.
const FETCH_BATCH: u16 = 32;

/// What running a command produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Complete now with this status and DW0.
    Done(Status, u32),
    /// Completed later (an Asynchronous Event Request).
    Held,
}

impl Outcome {
    pub(crate) fn ok(result: u32) -> Self {
        Outcome::Done(Status::SUCCESS, result)
    }
    pub(crate) fn err(status: Status) -> Self {
        Outcome::Done(status, 0)
    }
}

impl From<Result<u32, Status>> for Outcome {
    fn from(r: Result<u32, Status>) -> Self {
        match r {
            Ok(v) => Outcome::ok(v),
            Err(s) => Outcome::err(s),
        }
    }
}

/// What the controller did, for summaries and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Commands completed (any status).
    pub commands: u64,
    /// Commands completed with an error status.
    pub errors: u64,
    /// Completion entries posted.
    pub completions: u64,
    /// Interrupts raised.
    pub interrupts: u64,
    /// Interrupts the host refused (the driver had not enabled the kind).
    pub interrupt_errors: u64,
    /// Controller resets (CC.EN 1 to 0, FLR).
    pub resets: u64,
    /// Shutdown notifications processed.
    pub shutdowns: u64,
    /// Doorbell writes to a queue that does not exist or with a value out
    /// of range (reported as asynchronous events, otherwise ignored).
    pub invalid_doorbells: u64,
    /// Times the controller went fatal (CSTS.CFS).
    pub fatal: u64,
}

/// The NVMe controller model.
pub struct Nvme {
    pub(crate) cfg: NvmeConfig,
    pub(crate) storage: Box<dyn Storage>,
    pub(crate) cc: u32,
    pub(crate) csts: u32,
    pub(crate) intms: u32,
    pub(crate) sqs: Vec<Option<SubmissionQueue>>,
    pub(crate) cqs: Vec<Option<CompletionQueue>>,
    /// Completions waiting for room in their (full) completion queue, per
    /// queue: a command that completes two (Abort of an Asynchronous
    /// Event Request) can find it full.
    pub(crate) overflow: Vec<VecDeque<Completion>>,
    pub(crate) features: Features,
    pub(crate) aer: AsyncEvents,
    pub(crate) health: Health,
    pub(crate) errors: ErrorLog,
    pub(crate) irq: Interrupts,
    pub(crate) stats: Stats,
    /// Data buffer of the command being run (kept to avoid reallocating).
    pub(crate) buf: Vec<u8>,
    /// Submission entries fetched in one DMA.
    sqe_buf: Vec<u8>,
    /// Fault injection: the next Write at this LBA has its data DMA
    /// poisoned once ([`Nvme::poison_next_write_at`]).
    pub(crate) poison_write_lba: Option<u64>,
    /// Fault injection by hot-plug: ms the controller stays removed before
    /// it is reinserted (the vendor admin command `PCIEM_HOTPLUG`).
    pub(crate) reinsert_after_ms: u32,
}

/// Timer of the vendor hot-plug command: the surprise removal is due.
const TIMER_REMOVE: u32 = 0x4850_0001;
/// Timer of the vendor hot-plug command: the reinsertion is due.
const TIMER_REINSERT: u32 = 0x4850_0002;

impl std::fmt::Debug for Nvme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nvme")
            .field("cfg", &self.cfg)
            .field("cc", &self.cc)
            .field("csts", &self.csts)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// How long pciem waits for the model to answer a CSTS read before it
/// completes the read all-ones.
const CSTS_READ_TIMEOUT_US: u32 = 100_000;

/// The configuration space and access map, declared once.
fn builder(cfg: &NvmeConfig) -> ConfigBuilder {
    let ro = TrapPolicy::DOORBELL; // reads from the backing, writes not stored
    ConfigBuilder::new(cfg.vendor_id, cfg.device_id)
        .subsystem(cfg.subsystem_vendor_id, cfg.subsystem_id)
        .revision(1)
        .class(0x01, 0x08, 0x02) // mass storage, NVM, NVM Express
        .interrupt_pin(1)
        .bar(0, Bar::memory64(BAR0_SIZE))
        .msix(MsixCap {
            table_size: MSIX_VECTORS,
            table_bar: 0,
            table_offset: MSIX_TABLE as u32,
            pba_bar: 0,
            pba_offset: MSIX_PBA as u32,
        })
        .msi(MsiCap::new(MSI_VECTORS).maskable(true))
        .pm(PmCap::default())
        .pcie(PcieCap::endpoint(3, 4))
        .trap_bar(0)
        // CSTS is answered by the model. pciem's default wait (10 ms) is
        // shorter than a vCPU of a loaded TCG guest may go unscheduled: the
        // probe's CSTS poll once read all-ones and the driver fell back to
        // a function-level reset. PCIe allows completion timeouts up to
        // tens of milliseconds; 100 ms costs nothing while the model runs.
        .read_timeout_us(CSTS_READ_TIMEOUT_US)
        // CAP and VS are read-only, INTMS/INTMC are set/clear ports whose
        // state the model keeps in the backing.
        .trap_range(0, CAP, CC - CAP, ro)
        // CC (0x14) is stored and delivered: outside every range.
        .trap_range(0, 0x18, 4, ro)
        .trap_range(0, CSTS, 4, TrapPolicy::MODEL)
        .trap_range(0, NSSR, 4, ro)
        // AQA, ASQ, ACQ (0x24..0x38) are stored and delivered.
        .trap_range(0, REGS_END, DOORBELLS - REGS_END, ro)
        .trap_range(
            0,
            DOORBELLS,
            DOORBELLS_END - DOORBELLS,
            TrapPolicy::DOORBELL,
        )
        // The MSI-X table is stored (the kernel reads it from the backing);
        // the PBA belongs to the host side.
        .trap_range(0, MSIX_PBA, BAR0_SIZE - MSIX_PBA, ro)
}

impl Nvme {
    /// A controller with `cfg`'s identity serving `storage` as namespace 1.
    /// The storage must be exactly `cfg.size` bytes.
    pub fn new(cfg: NvmeConfig, storage: Box<dyn Storage>) -> Result<Self, NewError> {
        cfg.validate()?;
        if storage.size() != cfg.size {
            return Err(NewError::StorageSize {
                storage: storage.size(),
                namespace: cfg.size,
            });
        }
        let space = builder(&cfg).build()?;
        Ok(Nvme {
            irq: Interrupts::new(space),
            cfg,
            storage,
            cc: 0,
            csts: 0,
            intms: 0,
            sqs: vec![None; usize::from(MAX_IO_QUEUES) + 1],
            cqs: vec![None; usize::from(MAX_IO_QUEUES) + 1],
            overflow: vec![VecDeque::new(); usize::from(MAX_IO_QUEUES) + 1],
            features: Features::default(),
            aer: AsyncEvents::default(),
            health: Health::default(),
            errors: ErrorLog::default(),
            stats: Stats::default(),
            buf: Vec::new(),
            sqe_buf: Vec::new(),
            poison_write_lba: None,
            reinsert_after_ms: 0,
        })
    }

    /// The vendor admin command `PCIEM_HOTPLUG`: the surprise removal in
    /// CDW10 ms (a timer, so that this command completes first), then the
    /// reinsertion CDW11 ms later (0: none).
    pub(crate) fn schedule_hotplug(
        &mut self,
        host: &dyn Host,
        cmd: &Command,
    ) -> Result<(), Status> {
        let delay = std::time::Duration::from_millis(cmd.cdw10().into());
        self.reinsert_after_ms = cmd.cdw11();
        host.set_timer(TIMER_REMOVE, delay)
            .map_err(|_| Status::INTERNAL_ERROR)
    }

    /// Fault injection: the next Write command starting at `lba` has its
    /// data read come back poisoned, once. The controller arms a
    /// DMA_POISON rule of count 1 on the command's first data byte
    /// ([`pciem_core::Host::set_fault`]) before it transfers the data, so
    /// the host's own DMA path fails the read ([`HostError::Poisoned`]) and
    /// the command completes with Data Transfer Error (Do Not Retry): the
    /// driver's I/O fails and the next Write succeeds.
    pub fn poison_next_write_at(&mut self, lba: u64) {
        self.poison_write_lba = Some(lba);
    }

    /// The identity and namespace shape.
    pub fn config(&self) -> &NvmeConfig {
        &self.cfg
    }

    /// What the controller did so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The SMART counters.
    pub fn health(&self) -> Health {
        self.health
    }

    /// CSTS as the driver reads it.
    pub fn csts(&self) -> u32 {
        self.csts
    }

    /// Asynchronous Event Requests the controller holds.
    pub fn outstanding_event_requests(&self) -> usize {
        self.aer.outstanding()
    }

    /// The backing store.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// Flush the backing store (what a shutdown does); for a clean exit
    /// when the driver did not shut the controller down.
    pub fn flush(&mut self) -> Result<(), crate::storage::StorageError> {
        self.storage.flush()
    }

    /// The I/O queues that exist: (submission, completion) identifiers.
    pub fn io_queues(&self) -> (Vec<u16>, Vec<u16>) {
        fn ids<T>(v: &[Option<T>]) -> Vec<u16> {
            v.iter()
                .enumerate()
                .skip(1)
                .filter(|(_, q)| q.is_some())
                .map(|(i, _)| i as u16)
                .collect()
        }
        (ids(&self.sqs), ids(&self.cqs))
    }

    /// The memory page size the driver chose (CC.MPS).
    pub(crate) fn page_size(&self) -> u32 {
        (PAGE_SIZE as u32) << cc_mps(self.cc).min(4)
    }

    fn ready(&self) -> bool {
        self.csts & CSTS_RDY != 0 && self.csts & CSTS_CFS == 0
    }

    /// Put the register file into BAR memory: CAP, VS, INTMS, INTMC, CC,
    /// AQA, ASQ, ACQ as a reset leaves them.
    fn write_registers(&self, host: &dyn Host) -> Result<(), HostError> {
        host.bar_write(0, CAP, &capabilities().to_le_bytes())?;
        host.write_u32(0, VS, VERSION)?;
        host.write_u32(0, INTMS, self.intms)?;
        host.write_u32(0, INTMC, self.intms)?;
        host.write_u32(0, CC, self.cc)?;
        host.write_u32(0, CSTS, self.csts)
    }

    /// Drop every queue and held request, back to the state after reset
    /// (CC.EN 1 to 0, or a function reset). Data already written stays.
    fn reset_controller(&mut self) {
        self.sqs.iter_mut().for_each(|q| *q = None);
        self.cqs.iter_mut().for_each(|q| *q = None);
        self.overflow.iter_mut().for_each(VecDeque::clear);
        self.aer = AsyncEvents::default();
        self.features = Features::default();
        self.csts = 0;
        self.intms = 0;
        self.stats.resets += 1;
    }

    /// Controller Fatal Status: something the controller needs (host
    /// memory for its queues) failed; the driver must reset it.
    pub(crate) fn fatal(&mut self) {
        if self.csts & CSTS_CFS == 0 {
            self.stats.fatal += 1;
        }
        self.csts |= CSTS_CFS;
    }

    /// CC.EN 0 to 1: check the admin queue attributes and the chosen
    /// parameters, create the admin queues, report ready; or go fatal
    /// with RDY clear when they are unusable.
    fn enable(&mut self, host: &dyn Host) -> Result<(), HostError> {
        let aqa = host.read_u32(0, AQA)?;
        let mut q = [0u8; 8];
        host.bar_read(0, ASQ, &mut q)?;
        let asq = u64::from_le_bytes(q);
        host.bar_read(0, ACQ, &mut q)?;
        let acq = u64::from_le_bytes(q);
        let asqs = (aqa & 0xFFF) + 1;
        let acqs = ((aqa >> 16) & 0xFFF) + 1;
        let page_mask = PAGE_SIZE - 1;
        let usable = cc_css(self.cc) == 0
            && cc_mps(self.cc) == 0
            && cc_ams(self.cc) == 0
            && asqs >= 2
            && acqs >= 2
            && asq != 0
            && acq != 0
            && asq & page_mask == 0
            && acq & page_mask == 0;
        if !usable {
            self.fatal();
            return Ok(());
        }
        self.cqs[0] = Some(CompletionQueue::new(acq, acqs as u16, true, 0));
        self.sqs[0] = Some(SubmissionQueue {
            base: asq,
            size: asqs as u16,
            head: 0,
            tail: 0,
            cqid: 0,
        });
        self.csts = CSTS_RDY;
        Ok(())
    }

    /// A driver write to CC.
    fn write_cc(&mut self, host: &dyn Host, new: u32) -> Result<(), HostError> {
        let old = self.cc;
        self.cc = new;
        let was_on = old & CC_EN != 0;
        let on = new & CC_EN != 0;
        if was_on && !on {
            self.reset_controller();
        } else if !was_on && on {
            self.enable(host)?;
        }
        if cc_shn(new) != 0 && cc_shn(old) == 0 {
            self.shutdown();
        }
        Ok(())
    }

    /// Shutdown notification: make every write durable, report SHST
    /// complete (or go fatal if the store cannot be flushed).
    fn shutdown(&mut self) {
        self.stats.shutdowns += 1;
        if self.storage.flush().is_err() {
            self.fatal();
        }
        self.csts = (self.csts & !CSTS_SHST_MASK) | CSTS_SHST_COMPLETE;
    }

    /// INTMS / INTMC: set or clear interrupt mask bits, kept in the
    /// backing so both registers read the mask.
    fn write_mask(&mut self, host: &dyn Host, set: bool, bits: u32) -> Result<(), HostError> {
        if set {
            self.intms |= bits;
        } else {
            self.intms &= !bits;
        }
        host.write_u32(0, INTMS, self.intms)?;
        host.write_u32(0, INTMC, self.intms)?;
        if !set {
            self.fire_interrupts(host);
        }
        self.update_intx(host);
        Ok(())
    }

    /// A doorbell write.
    fn doorbell(
        &mut self,
        host: &dyn Host,
        qid: u16,
        is_cq: bool,
        value: u32,
    ) -> Result<(), NvmeError> {
        if !self.ready() {
            return Ok(());
        }
        if is_cq {
            let bad = DoorbellWrite {
                qid,
                completion: true,
                value,
            };
            let Some(cq) = self.cqs.get_mut(usize::from(qid)).and_then(|q| q.as_mut()) else {
                return self.invalid_doorbell(host, bad, None);
            };
            if value >= u32::from(cq.size) {
                let size = cq.size;
                return self.invalid_doorbell(host, bad, Some(size));
            }
            cq.head = value as u16;
            self.drain_overflow(host, qid)?;
            // Space freed: resume the submission queues completing here,
            // and deliver held asynchronous events on the admin queue.
            let waiting: Vec<u16> = self
                .sqs
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    s.filter(|s| s.cqid == qid && !s.is_empty())
                        .map(|_| i as u16)
                })
                .collect();
            for sq in waiting {
                self.process_sq(host, sq)?;
            }
            if qid == 0 {
                self.deliver_events(host)?;
            }
            self.fire_interrupts(host);
            self.update_intx(host);
        } else {
            let bad = DoorbellWrite {
                qid,
                completion: false,
                value,
            };
            let Some(sq) = self.sqs.get_mut(usize::from(qid)).and_then(|q| q.as_mut()) else {
                return self.invalid_doorbell(host, bad, None);
            };
            if value >= u32::from(sq.size) {
                let size = sq.size;
                return self.invalid_doorbell(host, bad, Some(size));
            }
            sq.tail = value as u16;
            self.process_sq(host, qid)?;
            self.fire_interrupts(host);
        }
        Ok(())
    }

    /// A write to a doorbell of a queue that does not exist, or of a value
    /// past the queue's end (`queue_size`): ignored, reported to the
    /// driver as an asynchronous event (Error, "invalid doorbell register"
    /// or "invalid doorbell write value"), and returned to the backend as
    /// [`NvmeError::InvalidDoorbell`] (a driver bug worth a log line).
    fn invalid_doorbell(
        &mut self,
        host: &dyn Host,
        write: DoorbellWrite,
        queue_size: Option<u16>,
    ) -> Result<(), NvmeError> {
        self.stats.invalid_doorbells += 1;
        self.aer.post_error(u8::from(queue_size.is_some()));
        self.deliver_events(host)?;
        self.fire_interrupts(host);
        Err(NvmeError::InvalidDoorbell { write, queue_size })
    }

    /// Fetch and run every command the host submitted on `qid`, as long
    /// as its completion queue has room.
    pub(crate) fn process_sq(&mut self, host: &dyn Host, qid: u16) -> Result<(), HostError> {
        let mut sqes = std::mem::take(&mut self.sqe_buf);
        let r = self.process_sq_with(host, qid, &mut sqes);
        self.sqe_buf = sqes;
        r
    }

    fn process_sq_with(
        &mut self,
        host: &dyn Host,
        qid: u16,
        sqes: &mut Vec<u8>,
    ) -> Result<(), HostError> {
        loop {
            if !self.ready() {
                return Ok(());
            }
            let Some(sq) = self.sqs.get(usize::from(qid)).copied().flatten() else {
                return Ok(());
            };
            let Some(cq) = self.cqs.get(usize::from(sq.cqid)).copied().flatten() else {
                return Ok(());
            };
            let backlog = self
                .overflow
                .get(usize::from(sq.cqid))
                .map_or(0, VecDeque::len);
            let room = usize::from(cq.free()).saturating_sub(backlog) as u16;
            let n = sq.contiguous_pending().min(FETCH_BATCH).min(room);
            if n == 0 {
                return Ok(());
            }
            sqes.resize(usize::from(n) * SQE_SIZE, 0);
            let addr = sq.base + u64::from(sq.head) * SQE_SIZE as u64;
            if let Err(e) = host.dma_read(addr, sqes) {
                self.fatal();
                return Err(e);
            }
            for raw in sqes.chunks_exact(SQE_SIZE) {
                let mut b = [0u8; SQE_SIZE];
                b.copy_from_slice(raw);
                let cmd = Command::parse(&b);
                // The command is consumed before it runs: its completion
                // reports the head past it.
                let head = match self.sqs.get_mut(usize::from(qid)).and_then(|q| q.as_mut()) {
                    Some(s) => {
                        s.advance();
                        s.head
                    }
                    None => return Ok(()),
                };
                let outcome = if qid == 0 {
                    self.run_admin(host, &cmd)
                } else {
                    self.run_io(host, &cmd)
                };
                if let Outcome::Done(status, result) = outcome {
                    self.complete(host, qid, head, &cmd, status, result)?;
                }
                if !self.ready() {
                    return Ok(());
                }
            }
        }
    }

    /// Account for a finished command and post its completion on its
    /// submission queue's completion queue.
    pub(crate) fn complete(
        &mut self,
        host: &dyn Host,
        sqid: u16,
        sq_head: u16,
        cmd: &Command,
        status: Status,
        result: u32,
    ) -> Result<(), HostError> {
        self.stats.commands += 1;
        if !status.is_success() {
            self.stats.errors += 1;
            let lba = u64::from(cmd.cdw10()) | u64::from(cmd.cdw11()) << 32;
            self.errors
                .record(sqid, cmd.cid, status.field(), lba, cmd.nsid);
        }
        let Some(cqid) = self
            .sqs
            .get(usize::from(sqid))
            .copied()
            .flatten()
            .map(|s| s.cqid)
        else {
            return Ok(());
        };
        self.post(
            host,
            cqid,
            Completion {
                result,
                sq_head,
                sq_id: sqid,
                cid: cmd.cid,
                phase: false,
                status,
            },
        )
    }

    /// Write one completion entry at the tail of CQ `cqid`, or keep it
    /// until the host makes room.
    pub(crate) fn post(
        &mut self,
        host: &dyn Host,
        cqid: u16,
        c: Completion,
    ) -> Result<(), HostError> {
        let Some(cq) = self.cqs.get(usize::from(cqid)).copied().flatten() else {
            return Ok(());
        };
        let Some(backlog) = self.overflow.get_mut(usize::from(cqid)) else {
            return Ok(());
        };
        if cq.free() == 0 || !backlog.is_empty() {
            backlog.push_back(c);
            return Ok(());
        }
        self.write_completion(host, cqid, c)
    }

    /// Post what waited for room in CQ `cqid`, oldest first.
    fn drain_overflow(&mut self, host: &dyn Host, cqid: u16) -> Result<(), HostError> {
        while self
            .cqs
            .get(usize::from(cqid))
            .copied()
            .flatten()
            .is_some_and(|cq| cq.free() > 0)
        {
            let Some(c) = self
                .overflow
                .get_mut(usize::from(cqid))
                .and_then(VecDeque::pop_front)
            else {
                break;
            };
            self.write_completion(host, cqid, c)?;
        }
        Ok(())
    }

    fn write_completion(
        &mut self,
        host: &dyn Host,
        cqid: u16,
        mut c: Completion,
    ) -> Result<(), HostError> {
        let Some(cq) = self.cqs.get_mut(usize::from(cqid)).and_then(|q| q.as_mut()) else {
            return Ok(());
        };
        c.phase = cq.phase;
        let addr = cq.base + u64::from(cq.tail) * CQE_SIZE as u64;
        if let Err(e) = host.dma_write(addr, &c.to_bytes()) {
            self.fatal();
            return Err(e);
        }
        cq.advance();
        cq.irq_due = true;
        self.stats.completions += 1;
        Ok(())
    }

    /// Complete held Asynchronous Event Requests with pending events while
    /// the admin completion queue has room.
    pub(crate) fn deliver_events(&mut self, host: &dyn Host) -> Result<(), HostError> {
        while self.cqs[0].is_some_and(|cq| cq.free() > 0) && self.overflow[0].is_empty() {
            let Some((cid, result)) = self.aer.take() else {
                break;
            };
            let head = self.sqs[0].map_or(0, |s| s.head);
            self.stats.commands += 1;
            self.post(
                host,
                0,
                Completion {
                    result,
                    sq_head: head,
                    sq_id: 0,
                    cid,
                    phase: false,
                    status: Status::SUCCESS,
                },
            )?;
        }
        Ok(())
    }

    /// Raise the interrupt of every completion queue with new entries.
    pub(crate) fn fire_interrupts(&mut self, host: &dyn Host) {
        for i in 0..self.cqs.len() {
            let Some(cq) = self.cqs[i].as_mut() else {
                continue;
            };
            if !cq.irq_due || !cq.ien {
                continue;
            }
            if self.irq.masked(self.intms, cq.iv) {
                // Held while masked; INTMC fires it.
                continue;
            }
            cq.irq_due = false;
            let iv = cq.iv;
            match self.irq.raise(host, iv) {
                Ok(()) => self.stats.interrupts += 1,
                Err(_) => self.stats.interrupt_errors += 1,
            }
        }
    }

    /// INTx is a level: deassert it once no interrupt-enabled completion
    /// queue holds entries the host has not consumed.
    fn update_intx(&mut self, host: &dyn Host) {
        let pending = self
            .cqs
            .iter()
            .flatten()
            .any(|cq| cq.ien && cq.has_unconsumed() && !self.irq.masked(self.intms, cq.iv));
        if !pending {
            self.irq.deassert_intx(host);
        }
    }

    fn mmio_write_regs(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        if let Some(cc) = w.apply_to(CC, 4, u64::from(self.cc)) {
            self.write_cc(host, cc as u32)?;
        }
        if let Some(v) = w.apply_to(INTMS, 4, 0) {
            self.write_mask(host, true, v as u32)?;
        }
        if let Some(v) = w.apply_to(INTMC, 4, 0) {
            self.write_mask(host, false, v as u32)?;
        }
        Ok(())
    }

    fn mmio_write_doorbells(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), NvmeError> {
        // A doorbell is one 4-byte register; an 8-byte store rings two.
        let first = w.offset & !3;
        let end = w.offset + u64::from(w.width);
        let mut at = first;
        while at < end {
            if let (Some((qid, is_cq)), Some(value)) = (doorbell(at), w.apply_to(at, 4, 0)) {
                self.doorbell(host, qid, is_cq, value as u32)?;
            }
            at += 4;
        }
        Ok(())
    }
}

/// Why a controller cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NewError {
    /// The identity or namespace shape is invalid.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The store is not the namespace's size.
    #[error("the backing store is {storage} bytes but the namespace is {namespace}")]
    StorageSize {
        /// Store size.
        storage: u64,
        /// Namespace size.
        namespace: u64,
    },
    /// The configuration space could not be built.
    #[error("configuration space: {0}")]
    Build(#[from] BuildError),
}

/// A doorbell write, as [`NvmeError::InvalidDoorbell`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorbellWrite {
    /// The queue whose doorbell was written.
    pub qid: u16,
    /// A completion queue's head doorbell (else a submission queue's tail
    /// doorbell).
    pub completion: bool,
    /// The value written.
    pub value: u32,
}

impl std::fmt::Display for DoorbellWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, reg) = if self.completion {
            ("CQ", "head")
        } else {
            ("SQ", "tail")
        };
        write!(
            f,
            "{kind} {} {reg} doorbell written with {}",
            self.qid, self.value
        )
    }
}

/// What the NVMe model's handlers return: a host operation that failed, or
/// something the driver did that the controller refuses (and also reports
/// to the driver the NVMe way, as an asynchronous event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NvmeError {
    /// A host operation (BAR, DMA, interrupt) failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A doorbell of a queue that does not exist, or a value past the
    /// queue's end.
    #[error("invalid doorbell write: {write} ({})", match queue_size {
        Some(n) => format!("past the end of the queue of {n} entries"),
        None => "no such queue".to_string(),
    })]
    InvalidDoorbell {
        /// The write.
        write: DoorbellWrite,
        /// The queue's size when it exists (the value was past its end);
        /// `None` when the queue does not exist.
        queue_size: Option<u16>,
    },
}

impl Device for Nvme {
    type Error = NvmeError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        builder(&self.cfg).build()
    }

    fn access_map(&self) -> Result<AccessMap, BuildError> {
        builder(&self.cfg).access_map()
    }

    fn watches(&self) -> &[Watch] {
        &[]
    }

    fn start(&mut self, host: &dyn Host) -> Result<(), NvmeError> {
        Ok(self.write_registers(host)?)
    }

    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), NvmeError> {
        if w.bar != 0 {
            return Ok(());
        }
        if w.offset < DOORBELLS {
            Ok(self.mmio_write_regs(host, w)?)
        } else if w.offset < DOORBELLS_END {
            self.mmio_write_doorbells(host, w)
        } else {
            // The MSI-X table and PBA: the host handles them.
            Ok(())
        }
    }

    fn mmio_read(&mut self, host: &dyn Host, r: MmioRead) -> Result<u64, NvmeError> {
        // Only CSTS is model-answered; a wider read that covers it takes
        // the other bytes from BAR memory.
        let n = usize::from(r.width).min(8);
        let mut b = [0u8; 8];
        let end = r.offset.saturating_add(n as u64).min(BAR0_SIZE);
        let len = end.saturating_sub(r.offset) as usize;
        if len > 0 {
            host.bar_read(0, r.offset, &mut b[..len])?;
        }
        let csts = self.csts.to_le_bytes();
        for (i, byte) in b.iter_mut().enumerate().take(n) {
            let at = r.offset + i as u64;
            if (CSTS..CSTS + 4).contains(&at) {
                *byte = csts[(at - CSTS) as usize];
            }
        }
        Ok(u64::from_le_bytes(b))
    }

    fn config_write(&mut self, _host: &dyn Host, w: ConfigWrite) -> Result<(), NvmeError> {
        self.irq.config_written(w);
        Ok(())
    }

    fn timer(&mut self, host: &dyn Host, id: u32) -> Result<(), NvmeError> {
        match id {
            TIMER_REMOVE => {
                host.surprise_remove()?;
                if self.reinsert_after_ms != 0 {
                    let after = std::time::Duration::from_millis(self.reinsert_after_ms.into());
                    host.set_timer(TIMER_REINSERT, after)?;
                }
                Ok(())
            }
            // The reset event that follows puts the controller back to
            // its power-on state.
            TIMER_REINSERT => Ok(host.reinsert()?),
            _ => Ok(()),
        }
    }

    fn reset(&mut self, host: &dyn Host, _kind: ResetKind) -> Result<(), NvmeError> {
        // A function reset resets the controller and every register.
        self.reset_controller();
        self.cc = 0;
        if let Ok(space) = builder(&self.cfg).build() {
            self.irq = Interrupts::new(space);
        }
        self.write_registers(host)?;
        for reg in [AQA, ASQ, ASQ + 4, ACQ, ACQ + 4] {
            host.write_u32(0, reg, 0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use pciem_core::{ReadPolicy, WritePolicy};

    #[test]
    fn errors_say_what_the_driver_did() {
        let e = NvmeError::InvalidDoorbell {
            write: DoorbellWrite {
                qid: 9,
                completion: false,
                value: 1,
            },
            queue_size: None,
        };
        assert_eq!(
            e.to_string(),
            "invalid doorbell write: SQ 9 tail doorbell written with 1 (no such queue)"
        );
        let e = NvmeError::InvalidDoorbell {
            write: DoorbellWrite {
                qid: 1,
                completion: true,
                value: 100,
            },
            queue_size: Some(16),
        };
        assert!(e.to_string().ends_with(
            "CQ 1 head doorbell written with 100 (past the end of the queue of 16 entries)"
        ));
        // A host error keeps its own text.
        let h = HostError::BusMasterDisabled;
        assert_eq!(NvmeError::from(h).to_string(), h.to_string());
    }

    #[test]
    fn bar0_policies() {
        let cfg = NvmeConfig::default();
        let nvme = Nvme::new(cfg.clone(), Box::new(MemStorage::new(cfg.size))).unwrap();
        let map = nvme.access_map().unwrap();
        assert!(map.is_trapped(0));
        assert_eq!(map.read_timeout_us(), Some(CSTS_READ_TIMEOUT_US));
        assert_eq!(map.classify(0, CSTS, 4), TrapPolicy::MODEL);
        for reg in [CC, AQA, ASQ, ACQ + 4, MSIX_TABLE, MSIX_TABLE + 0x400] {
            assert_eq!(map.classify(0, reg, 4), TrapPolicy::PLAIN, "{reg:#x}");
        }
        for reg in [CAP, VS, INTMS, INTMC, NSSR, REGS_END, 0xFFC, MSIX_PBA] {
            let p = map.classify(0, reg, 4);
            assert_eq!(
                (p.read, p.write),
                (ReadPolicy::Backing, WritePolicy::DeliverOnly),
                "{reg:#x}"
            );
        }
        assert_eq!(
            map.classify(0, sq_tail_doorbell(64), 4),
            TrapPolicy::DOORBELL
        );
        let space = nvme.config_space().unwrap();
        assert_eq!(space.msix().map(|m| m.table_size), Some(MSIX_VECTORS));
        assert_eq!(space.msi().map(|m| m.vectors_capable), Some(MSI_VECTORS));
        assert_eq!(space.interrupt_pin(), 1);
        assert_eq!(space.bar(0).map(|b| b.size), Some(BAR0_SIZE));
    }

    #[test]
    fn storage_must_match_the_namespace() {
        let cfg = NvmeConfig::default();
        let r = Nvme::new(cfg.clone(), Box::new(MemStorage::new(cfg.size / 2)));
        assert!(matches!(r, Err(NewError::StorageSize { .. })));
    }
}
