//! A small NVMe host driver over the mock backend's [`Harness`]: what the
//! tests, the fuzz target and `pciem-nvme --backend mock` drive the
//! controller with. It does what Linux's driver does, in the same order
//! (disable, admin queue, enable, identify, number of queues, I/O queue
//! pairs), builds PRP lists (chained across list pages when asked), and
//! reaps completions by phase tag.

use std::time::{Duration, Instant};

use pciem_backend_mock::{Harness, MockError};

use crate::command::{admin, nvm, Command, Completion, CQE_SIZE, SQE_SIZE};
use crate::controller::Nvme;
use crate::regs::*;
use crate::status::Status;

/// Message address the driver programs for MSI and MSI-X.
pub const MSI_ADDRESS: u64 = 0xfee0_0000;

/// How long a model-answered register read may take here.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The mock host refused something.
    #[error("mock host: {0}")]
    Mock(#[from] MockError),
    /// A command completed with an error status.
    #[error("{what} failed with status {status}")]
    Command {
        /// The command.
        what: &'static str,
        /// Its status.
        status: Status,
    },
    /// No completion arrived in time.
    #[error("no completion on queue {qid} within {timeout:?}")]
    Timeout {
        /// The queue.
        qid: u16,
        /// How long the driver waited.
        timeout: Duration,
    },
    /// The controller did not reach the state the driver waited for.
    #[error("controller did not {what} within {timeout:?} (CSTS {csts:#x})")]
    NotReady {
        /// What was expected.
        what: &'static str,
        /// Last CSTS read.
        csts: u32,
        /// How long the driver waited.
        timeout: Duration,
    },
    /// A completion that does not match what was submitted.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The driver was asked for something it cannot do.
    #[error("driver: {0}")]
    Usage(&'static str),
}

/// How the driver asks the controller to interrupt it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqSetup {
    /// MSI-X, every table entry unmasked, entry *n* with data *n*.
    MsiX,
    /// MSI with every vector the function offers.
    Msi,
    /// INTx (neither MSI nor MSI-X enabled).
    Intx,
}

/// One submission/completion queue pair as the driver sees it.
#[derive(Clone, Copy, Debug)]
pub struct QueuePair {
    /// Queue identifier (both queues use it).
    pub qid: u16,
    /// Submission queue bus address.
    pub sq_base: u64,
    /// Completion queue bus address.
    pub cq_base: u64,
    /// Entries in the submission queue.
    pub sq_size: u16,
    /// Entries in the completion queue.
    pub cq_size: u16,
    /// Next SQ slot to fill.
    pub sq_tail: u16,
    /// SQ head the controller last reported.
    pub sq_head: u16,
    /// Next CQ slot to look at.
    pub cq_head: u16,
    /// Phase tag expected at `cq_head`.
    pub phase: bool,
}

/// Data pages and PRP list pages of one transfer, to free afterwards.
#[derive(Debug, Default)]
pub struct Transfer {
    /// Bus address of the data.
    pub data: u64,
    /// PRP1 and PRP2.
    pub prp: (u64, u64),
    /// Every buffer allocated for the transfer.
    allocations: Vec<u64>,
}

/// How a transfer's PRPs are laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrpLayout {
    /// Offset of the data in its first page (dword aligned).
    pub data_offset: u64,
    /// Offset of the first PRP list in its page (8-byte aligned): a list
    /// that starts near the end of its page chains to a second list page
    /// sooner.
    pub list_offset: u64,
}

/// The driver.
pub struct Driver {
    h: Harness<Nvme>,
    stepping: bool,
    admin: Option<QueuePair>,
    io: Vec<QueuePair>,
    next_cid: u16,
    /// How long to wait for a completion or a status change.
    pub timeout: Duration,
}

impl Driver {
    /// Plug `nvme` into the mock host: on the caller's thread
    /// (`stepping`, deterministic) or on a device thread.
    pub fn new(nvme: Nvme, stepping: bool) -> Result<Self, DriverError> {
        let mut h = if stepping {
            Harness::new(nvme)?
        } else {
            Harness::threaded(nvme)?
        };
        // A CSTS read waits for every earlier event, a slow command
        // included (a 16 MiB transfer under a sanitizer, a loaded
        // machine): more room than the kernel's 10 ms, so the test driver
        // judges the controller, not the machine.
        h.set_read_timeout(READ_TIMEOUT);
        Ok(Driver {
            h,
            stepping,
            admin: None,
            io: Vec::new(),
            next_cid: 0,
            timeout: Duration::from_secs(10),
        })
    }

    /// The harness (for tests that poke the host directly).
    pub fn harness(&mut self) -> &mut Harness<Nvme> {
        &mut self.h
    }

    /// The model, in stepping mode.
    pub fn nvme(&self) -> Option<&Nvme> {
        self.h.device()
    }

    /// Stop and hand the model back.
    pub fn into_nvme(self) -> Result<Nvme, DriverError> {
        Ok(self.h.into_device()?)
    }

    /// The admin queue pair, once enabled.
    pub fn admin_queue(&self) -> Option<QueuePair> {
        self.admin
    }

    /// The I/O queue pairs created.
    pub fn io_queues(&self) -> &[QueuePair] {
        &self.io
    }

    /// Read CSTS.
    pub fn csts(&mut self) -> Result<u32, DriverError> {
        Ok(self.h.read32(0, CSTS)?)
    }

    /// Find a capability in configuration space.
    fn find_cap(&mut self, id: u8) -> Result<u16, DriverError> {
        let mut at = self.h.config_read(0x34, 1)? as u16;
        for _ in 0..48 {
            if at == 0 {
                break;
            }
            if self.h.config_read(at, 1)? as u8 == id {
                return Ok(at);
            }
            at = self.h.config_read(at + 1, 1)? as u16;
        }
        Err(DriverError::Usage("capability not found"))
    }

    /// Enable bus mastering and the interrupt mechanism.
    pub fn setup_interrupts(&mut self, how: IrqSetup) -> Result<(), DriverError> {
        self.h.enable_bus_master()?;
        match how {
            IrqSetup::MsiX => {
                for v in 0..MSIX_VECTORS as u64 {
                    let e = MSIX_TABLE + 16 * v;
                    self.h.write32(0, e, MSI_ADDRESS as u32)?;
                    self.h.write32(0, e + 4, 0)?;
                    self.h.write32(0, e + 8, v as u32)?;
                    self.h.write32(0, e + 12, 0)?;
                }
                let cap = self.find_cap(0x11)?;
                self.h.config_write(cap + 2, 2, 0x8000)?;
            }
            IrqSetup::Msi => self.h.enable_msi(MSI_ADDRESS, 0x40)?,
            IrqSetup::Intx => {}
        }
        Ok(())
    }

    fn wait_csts(&mut self, what: &'static str, mask: u32, want: u32) -> Result<(), DriverError> {
        let start = Instant::now();
        loop {
            let csts = self.csts()?;
            if csts & mask == want {
                return Ok(());
            }
            if start.elapsed() > self.timeout
                || (self.stepping && start.elapsed() > Duration::from_millis(100))
            {
                return Err(DriverError::NotReady {
                    what,
                    csts,
                    timeout: self.timeout,
                });
            }
            std::thread::yield_now();
        }
    }

    /// Clear CC.EN and wait for RDY to clear: every queue is gone.
    pub fn disable(&mut self) -> Result<(), DriverError> {
        let cc = self.h.read32(0, CC)?;
        self.h.write32(0, CC, cc & !CC_EN)?;
        self.wait_csts("become not ready", CSTS_RDY, 0)?;
        self.free_queues();
        Ok(())
    }

    fn free_queues(&mut self) {
        for q in self.admin.take().into_iter().chain(self.io.drain(..)) {
            self.h.dma_free(q.sq_base);
            self.h.dma_free(q.cq_base);
        }
    }

    fn alloc_pair(
        &mut self,
        qid: u16,
        sq_size: u16,
        cq_size: u16,
    ) -> Result<QueuePair, DriverError> {
        let sq_base = self.h.dma_alloc(usize::from(sq_size) * SQE_SIZE)?;
        let cq_base = self.h.dma_alloc(usize::from(cq_size) * CQE_SIZE)?;
        Ok(QueuePair {
            qid,
            sq_base,
            cq_base,
            sq_size,
            cq_size,
            sq_tail: 0,
            sq_head: 0,
            cq_head: 0,
            phase: true,
        })
    }

    /// Disable, set up an admin queue pair of `entries`, enable and wait
    /// for ready.
    pub fn enable(&mut self, entries: u16) -> Result<(), DriverError> {
        self.disable()?;
        let q = self.alloc_pair(0, entries, entries)?;
        let n = u32::from(entries) - 1;
        self.h.write32(0, AQA, n | n << 16)?;
        self.h.write32(0, ASQ, q.sq_base as u32)?;
        self.h.write32(0, ASQ + 4, (q.sq_base >> 32) as u32)?;
        self.h.write32(0, ACQ, q.cq_base as u32)?;
        self.h.write32(0, ACQ + 4, (q.cq_base >> 32) as u32)?;
        self.admin = Some(q);
        // IOSQES = 6, IOCQES = 4, MPS 0, CSS NVM, then EN.
        let cc = 6 << 16 | 4 << 20;
        self.h.write32(0, CC, cc)?;
        self.h.write32(0, CC, cc | CC_EN)?;
        self.wait_csts("become ready", CSTS_RDY | CSTS_CFS, CSTS_RDY)
    }

    /// Shutdown notification (normal) and wait for SHST complete.
    pub fn shutdown(&mut self) -> Result<(), DriverError> {
        let cc = self.h.read32(0, CC)?;
        self.h.write32(0, CC, (cc & !(3 << 14)) | 1 << 14)?;
        self.wait_csts("complete shutdown", CSTS_SHST_MASK, CSTS_SHST_COMPLETE)
    }

    fn pair_mut(&mut self, qid: u16) -> Result<&mut QueuePair, DriverError> {
        if qid == 0 {
            return self.admin.as_mut().ok_or(DriverError::Usage("not enabled"));
        }
        self.io
            .iter_mut()
            .find(|q| q.qid == qid)
            .ok_or(DriverError::Usage("no such I/O queue"))
    }

    /// A fresh command identifier.
    pub fn cid(&mut self) -> u16 {
        self.next_cid = self.next_cid.wrapping_add(1);
        self.next_cid
    }

    /// Put `cmds` into SQ `qid` (without ringing the doorbell); returns
    /// the new tail.
    pub fn queue_commands(&mut self, qid: u16, cmds: &[Command]) -> Result<u16, DriverError> {
        let q = *self.pair_mut(qid)?;
        let mut tail = q.sq_tail;
        for c in cmds {
            let next = (tail + 1) % q.sq_size;
            if next == q.sq_head {
                return Err(DriverError::Usage("submission queue full"));
            }
            self.h
                .dma_write(q.sq_base + u64::from(tail) * SQE_SIZE as u64, &c.to_bytes())?;
            tail = next;
        }
        self.pair_mut(qid)?.sq_tail = tail;
        Ok(tail)
    }

    /// Write SQ `qid`'s tail doorbell.
    pub fn ring_sq(&mut self, qid: u16) -> Result<(), DriverError> {
        let tail = self.pair_mut(qid)?.sq_tail;
        self.h.write32(0, sq_tail_doorbell(qid), u32::from(tail))?;
        Ok(())
    }

    /// Submit `cmds` on `qid` with one doorbell write.
    pub fn submit(&mut self, qid: u16, cmds: &[Command]) -> Result<(), DriverError> {
        self.queue_commands(qid, cmds)?;
        self.ring_sq(qid)
    }

    /// The next completion on CQ `qid` if one is there (phase tag
    /// matches); consumes it and writes the CQ head doorbell.
    pub fn poll(&mut self, qid: u16) -> Result<Option<Completion>, DriverError> {
        if self.stepping {
            self.h.step()?;
        }
        let q = *self.pair_mut(qid)?;
        let mut raw = [0u8; CQE_SIZE];
        self.h
            .dma_read(q.cq_base + u64::from(q.cq_head) * CQE_SIZE as u64, &mut raw)?;
        let c = Completion::parse(&raw);
        if c.phase != q.phase {
            return Ok(None);
        }
        if c.sq_id != qid {
            return Err(DriverError::Protocol(format!(
                "completion on CQ {qid} names SQ {}",
                c.sq_id
            )));
        }
        let p = self.pair_mut(qid)?;
        p.cq_head += 1;
        if p.cq_head == p.cq_size {
            p.cq_head = 0;
            p.phase = !p.phase;
        }
        p.sq_head = c.sq_head;
        let head = p.cq_head;
        self.h.write32(0, cq_head_doorbell(qid), u32::from(head))?;
        Ok(Some(c))
    }

    /// Wait for the next completion on CQ `qid`.
    pub fn reap(&mut self, qid: u16) -> Result<Completion, DriverError> {
        let start = Instant::now();
        loop {
            if let Some(c) = self.poll(qid)? {
                return Ok(c);
            }
            if start.elapsed() > self.timeout || self.stepping {
                return Err(DriverError::Timeout {
                    qid,
                    timeout: self.timeout,
                });
            }
            std::thread::yield_now();
        }
    }

    /// Submit one command on `qid` and wait for its completion.
    pub fn run(&mut self, qid: u16, mut cmd: Command) -> Result<Completion, DriverError> {
        cmd.cid = self.cid();
        self.submit(qid, &[cmd])?;
        let c = self.reap(qid)?;
        if c.cid != cmd.cid {
            return Err(DriverError::Protocol(format!(
                "expected completion of command {}, got {}",
                cmd.cid, c.cid
            )));
        }
        Ok(c)
    }

    /// Like [`Driver::run`], failing on an error status.
    pub fn run_ok(
        &mut self,
        qid: u16,
        what: &'static str,
        cmd: Command,
    ) -> Result<Completion, DriverError> {
        let c = self.run(qid, cmd)?;
        if !c.status.is_success() {
            return Err(DriverError::Command {
                what,
                status: c.status,
            });
        }
        Ok(c)
    }

    /// Allocate a buffer for `len` bytes of data and its PRPs.
    pub fn prepare(&mut self, len: usize, layout: PrpLayout) -> Result<Transfer, DriverError> {
        let page = PAGE_SIZE;
        let alloc = self.h.dma_alloc(layout.data_offset as usize + len.max(1))?;
        let data = alloc + layout.data_offset;
        let mut t = Transfer {
            data,
            prp: (data, 0),
            allocations: vec![alloc],
        };
        let first = page - (data & (page - 1));
        let len = len as u64;
        if len <= first {
            return Ok(t);
        }
        let pages: Vec<u64> = (0..)
            .map(|i| (data & !(page - 1)) + page * (i + 1))
            .take_while(|&p| p < data + len)
            .collect();
        if pages.len() == 1 {
            t.prp.1 = pages[0];
            return Ok(t);
        }
        // A PRP list: each list page holds its entries and, if more follow,
        // a pointer to the next list page in its last slot.
        let mut rest = &pages[..];
        let mut offset = layout.list_offset;
        let mut prev_slot: Option<u64> = None;
        while !rest.is_empty() {
            let list = self.h.dma_alloc(page as usize)?;
            t.allocations.push(list);
            let at = list + offset;
            let slots = ((page - offset) / 8) as usize;
            let here = if rest.len() > slots {
                slots - 1
            } else {
                rest.len()
            };
            match prev_slot {
                Some(slot) => self.h.dma_write(slot, &at.to_le_bytes())?,
                None => t.prp.1 = at,
            }
            let mut bytes = Vec::with_capacity(here * 8);
            for p in &rest[..here] {
                bytes.extend_from_slice(&p.to_le_bytes());
            }
            self.h.dma_write(at, &bytes)?;
            rest = &rest[here..];
            prev_slot = Some(at + here as u64 * 8);
            offset = 0;
        }
        Ok(t)
    }

    /// Free a transfer's buffers.
    pub fn release(&mut self, t: Transfer) {
        for a in t.allocations {
            self.h.dma_free(a);
        }
    }

    /// Run an admin command that returns `len` bytes, and return them.
    pub fn admin_read(
        &mut self,
        what: &'static str,
        mut cmd: Command,
        len: usize,
    ) -> Result<Vec<u8>, DriverError> {
        let t = self.prepare(len, PrpLayout::default())?;
        cmd.prp1 = t.prp.0;
        cmd.prp2 = t.prp.1;
        let r = self.run_ok(0, what, cmd);
        let mut out = vec![0u8; len];
        let read = self.h.dma_read(t.data, &mut out);
        self.release(t);
        r?;
        read?;
        Ok(out)
    }

    /// Identify with CNS `cns` for `nsid`.
    pub fn identify(&mut self, cns: u8, nsid: u32) -> Result<Vec<u8>, DriverError> {
        let cmd = Command {
            opcode: admin::IDENTIFY,
            nsid,
            cdw: [u32::from(cns), 0, 0, 0, 0, 0],
            ..Command::default()
        };
        self.admin_read("Identify", cmd, 4096)
    }

    /// Set Features Number of Queues, then create `n` I/O queue pairs of
    /// `entries` each, CQ *i* on interrupt vector *i*.
    pub fn create_io_queues(&mut self, n: u16, entries: u16) -> Result<(), DriverError> {
        let nq = u32::from(n - 1);
        let c = self.run_ok(
            0,
            "Set Features (Number of Queues)",
            Command {
                opcode: admin::SET_FEATURES,
                cdw: [0x07, nq | nq << 16, 0, 0, 0, 0],
                ..Command::default()
            },
        )?;
        if c.result & 0xFFFF < nq || c.result >> 16 < nq {
            return Err(DriverError::Protocol(format!(
                "asked for {n} queues, got {:#x}",
                c.result
            )));
        }
        for qid in 1..=n {
            self.create_io_queue(qid, entries, qid)?;
        }
        Ok(())
    }

    /// Create one I/O queue pair `qid` of `entries` on vector `iv`.
    pub fn create_io_queue(&mut self, qid: u16, entries: u16, iv: u16) -> Result<(), DriverError> {
        self.create_io_queue_sized(qid, entries, entries, iv)
    }

    /// Create one I/O queue pair `qid`: an SQ of `sq_entries`, a CQ of
    /// `cq_entries` on vector `iv`.
    pub fn create_io_queue_sized(
        &mut self,
        qid: u16,
        sq_entries: u16,
        cq_entries: u16,
        iv: u16,
    ) -> Result<(), DriverError> {
        let q = self.alloc_pair(qid, sq_entries, cq_entries)?;
        let cq = Command {
            opcode: admin::CREATE_CQ,
            prp1: q.cq_base,
            cdw: [
                u32::from(qid) | u32::from(cq_entries - 1) << 16,
                0b11 | u32::from(iv) << 16,
                0,
                0,
                0,
                0,
            ],
            ..Command::default()
        };
        let sq = Command {
            opcode: admin::CREATE_SQ,
            prp1: q.sq_base,
            cdw: [
                u32::from(qid) | u32::from(sq_entries - 1) << 16,
                1 | u32::from(qid) << 16,
                0,
                0,
                0,
                0,
            ],
            ..Command::default()
        };
        let r = self
            .run_ok(0, "Create I/O CQ", cq)
            .and_then(|_| self.run_ok(0, "Create I/O SQ", sq));
        if let Err(e) = r {
            self.h.dma_free(q.sq_base);
            self.h.dma_free(q.cq_base);
            return Err(e);
        }
        self.io.push(q);
        Ok(())
    }

    /// Delete I/O queue pair `qid` (SQ, then CQ) and free its memory.
    pub fn delete_io_queue(&mut self, qid: u16) -> Result<(), DriverError> {
        let sq = Command {
            opcode: admin::DELETE_SQ,
            cdw: [u32::from(qid), 0, 0, 0, 0, 0],
            ..Command::default()
        };
        let cq = Command {
            opcode: admin::DELETE_CQ,
            ..sq
        };
        self.run_ok(0, "Delete I/O SQ", sq)?;
        self.run_ok(0, "Delete I/O CQ", cq)?;
        if let Some(i) = self.io.iter().position(|q| q.qid == qid) {
            let q = self.io.remove(i);
            self.h.dma_free(q.sq_base);
            self.h.dma_free(q.cq_base);
        }
        Ok(())
    }

    /// A Read or Write command for `nlb` blocks at `slba` through `t`.
    pub fn rw_command(opcode: u8, slba: u64, nlb: u32, t: &Transfer) -> Command {
        Command {
            opcode,
            nsid: 1,
            prp1: t.prp.0,
            prp2: t.prp.1,
            cdw: [slba as u32, (slba >> 32) as u32, nlb - 1, 0, 0, 0],
            ..Command::default()
        }
    }

    /// Write `data` (whole blocks of `lba_size`) at `slba` on queue `qid`.
    pub fn write_blocks(
        &mut self,
        qid: u16,
        slba: u64,
        data: &[u8],
        lba_size: usize,
        layout: PrpLayout,
    ) -> Result<(), DriverError> {
        let t = self.prepare(data.len(), layout)?;
        self.h.dma_write(t.data, data)?;
        let cmd = Self::rw_command(nvm::WRITE, slba, (data.len() / lba_size) as u32, &t);
        let r = self.run_ok(qid, "Write", cmd);
        self.release(t);
        r.map(|_| ())
    }

    /// Read `nlb` blocks at `slba` on queue `qid`.
    pub fn read_blocks(
        &mut self,
        qid: u16,
        slba: u64,
        nlb: u32,
        lba_size: usize,
        layout: PrpLayout,
    ) -> Result<Vec<u8>, DriverError> {
        let len = nlb as usize * lba_size;
        let t = self.prepare(len, layout)?;
        let cmd = Self::rw_command(nvm::READ, slba, nlb, &t);
        let r = self.run_ok(qid, "Read", cmd);
        let mut out = vec![0u8; len];
        let read = self.h.dma_read(t.data, &mut out);
        self.release(t);
        r?;
        read?;
        Ok(out)
    }

    /// The usual bring-up: interrupts, enable with a 32-entry admin
    /// queue, Identify Controller and Namespace, `n` I/O queue pairs of
    /// `entries`.
    pub fn bring_up(&mut self, irq: IrqSetup, n: u16, entries: u16) -> Result<(), DriverError> {
        self.setup_interrupts(irq)?;
        self.enable(32)?;
        self.identify(0x01, 0)?;
        self.identify(0x00, 1)?;
        self.create_io_queues(n, entries)
    }
}

/// A deterministic test pattern: block `lba` of `lba_size` bytes, tagged
/// with `seed`.
pub fn pattern(lba: u64, lba_size: usize, seed: u64) -> Vec<u8> {
    let mut x = lba.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
    let mut out = Vec::with_capacity(lba_size);
    while out.len() < lba_size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(lba_size);
    out
}
