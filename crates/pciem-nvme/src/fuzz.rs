//! The `nvme_commands` fuzz target's body, here so that its seeds also run
//! under `cargo test` on stable (`fuzz/fuzz_targets/nvme_commands.rs` only
//! calls [`run`]).
//!
//! An input is a byte stream: one byte of setup (block size, interrupt
//! mechanism), then operations: arbitrary submission entries on the admin
//! queue or an I/O queue, arbitrary doorbell writes, interrupt mask writes,
//! shutdown notifications, controller resets, filling a scratch area the
//! entries' PRPs point into (PRP list entries included), and reaping.
//!
//! Bus addresses taken from the input are folded into a scratch area or
//! an unmapped address, and queue identifiers of Create/Delete commands
//! into identifiers the driver does not use, so that fuzzed commands
//! cannot scribble over the driver's own queues: what is checked is the
//! controller, not the driver's bookkeeping. Checked on every reap:
//! entries with the expected phase name their own submission queue, an SQ
//! head inside the queue and a status the controller can produce; a
//! completion queue never holds more than its size minus one unconsumed
//! entries; without doorbell tampering, no more completions than
//! submissions. The storage panics on any access outside the namespace.
//! Afterwards a reset controller must serve a clean write and read.

use crate::command::{admin, Command, Completion, CQE_SIZE, SQE_SIZE};
use crate::driver::{pattern, Driver, IrqSetup, PrpLayout};
use crate::regs::{CC, DOORBELLS, INTMC, INTMS};
use crate::status::Status;
use crate::storage::{MemStorage, Storage, StorageError};
use crate::{LbaSize, Nvme, NvmeConfig};

/// Namespace size of the fuzzed controller.
const SIZE: u64 = 1 << 20;
/// Bytes of the scratch area PRPs point into.
const SCRATCH: u64 = 64 * 1024;
/// Entries of the driver's queues.
const ENTRIES: u16 = 8;

/// A store that refuses to be reached outside the namespace: the
/// controller must have checked every range first.
struct Guarded(MemStorage);

impl Guarded {
    fn check(&self, offset: u64, len: u64) {
        let end = offset.checked_add(len);
        assert!(
            end.is_some_and(|e| e <= SIZE),
            "storage access of {len} bytes at {offset} is outside the namespace"
        );
    }
}

impl Storage for Guarded {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.check(offset, buf.len() as u64);
        self.0.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.check(offset, data.len() as u64);
        self.0.write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), StorageError> {
        self.0.flush()
    }
    fn deallocate(&mut self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.check(offset, len);
        self.0.deallocate(offset, len)
    }
}

/// Every status the controller completes commands with.
const STATUSES: [Status; 21] = [
    Status::SUCCESS,
    Status::INVALID_OPCODE,
    Status::INVALID_FIELD,
    Status::DATA_TRANSFER_ERROR,
    Status::INTERNAL_ERROR,
    Status::ABORT_REQUESTED,
    Status::INVALID_NAMESPACE,
    Status::COMMAND_SEQUENCE_ERROR,
    Status::PRP_OFFSET_INVALID,
    Status::LBA_OUT_OF_RANGE,
    Status::CQ_INVALID,
    Status::INVALID_QUEUE_ID,
    Status::INVALID_QUEUE_SIZE,
    Status::AER_LIMIT_EXCEEDED,
    Status::INVALID_INTERRUPT_VECTOR,
    Status::INVALID_LOG_PAGE,
    Status::INVALID_QUEUE_DELETION,
    Status::FEATURE_NOT_SAVEABLE,
    Status::WRITE_FAULT,
    Status::UNRECOVERED_READ_ERROR,
    Status::SUCCESS,
];

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.byte().unwrap_or(0);
        }
        out
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
}

/// The run's state besides the driver.
struct Run {
    d: Driver,
    scratch: u64,
    unmapped: u64,
    /// Commands submitted and completions seen per driver queue (0..=2),
    /// and whether the input rang that queue's doorbells itself.
    submitted: [u64; 3],
    completed: [u64; 3],
    tampered: [bool; 3],
}

impl Run {
    /// An address from the input: inside the scratch area (keeping the
    /// low bits, so misalignment survives) or the unmapped page.
    fn fold(&self, raw: u64) -> u64 {
        if raw & (1 << 63) != 0 {
            self.unmapped + (raw & 0xFFF)
        } else {
            self.scratch + raw % SCRATCH
        }
    }

    fn bring_up(&mut self, irq: IrqSetup) {
        self.d.setup_interrupts(irq).expect("interrupt setup");
        self.restart();
    }

    /// Reset the controller and set the driver's queues up again.
    fn restart(&mut self) {
        self.d.enable(4).expect("enable after reset");
        self.d
            .create_io_queues(2, ENTRIES)
            .expect("I/O queues after reset");
        self.submitted = [0; 3];
        self.completed = [0; 3];
        self.tampered = [false; 3];
    }

    /// Keep a fuzzed command away from the driver's queues.
    fn sanitize(&self, c: &mut Command, flags: u8) {
        if flags & 1 != 0 {
            c.prp1 = self.fold(c.prp1);
        } else {
            c.prp1 = self.scratch + (c.prp1 & 0xFFF);
        }
        c.prp2 = self.fold(c.prp2);
        if matches!(
            c.opcode,
            admin::CREATE_CQ | admin::CREATE_SQ | admin::DELETE_CQ | admin::DELETE_SQ
        ) {
            // Identifiers 1 and 2 belong to the driver.
            let qid = c.cdw[0] as u16;
            let qid = if (1..=2).contains(&qid) { qid + 2 } else { qid };
            c.cdw[0] = (c.cdw[0] & 0xFFFF_0000) | u32::from(qid);
            if c.opcode == admin::CREATE_SQ {
                let cqid = (c.cdw[1] >> 16) as u16;
                let cqid = if (1..=2).contains(&cqid) {
                    cqid + 2
                } else {
                    cqid
                };
                c.cdw[1] = (c.cdw[1] & 0xFFFF) | u32::from(cqid) << 16;
            }
        }
    }

    fn submit(&mut self, qid: u16, raw: [u8; SQE_SIZE], flags: u8) {
        let mut b = raw;
        let mut c = Command::parse(&b);
        self.sanitize(&mut c, flags);
        b = c.to_bytes();
        let c = Command::parse(&b);
        if self.d.submit(qid, &[c]).is_ok() {
            self.submitted[usize::from(qid)] += 1;
        }
    }

    /// Reap every driver queue and check what the controller wrote.
    fn reap(&mut self) {
        for qid in 0..=2u16 {
            let Some(q) = (if qid == 0 {
                self.d.admin_queue()
            } else {
                self.d.io_queues().iter().copied().find(|q| q.qid == qid)
            }) else {
                continue;
            };
            // No more than size - 1 unconsumed entries carry the new phase.
            let mut run = 0;
            for i in 0..q.cq_size {
                let at = (q.cq_head + i) % q.cq_size;
                let mut raw = [0u8; CQE_SIZE];
                self.d
                    .harness()
                    .dma_read(q.cq_base + u64::from(at) * CQE_SIZE as u64, &mut raw)
                    .expect("driver CQ memory");
                let wrapped = at < q.cq_head;
                let expect = q.phase ^ wrapped;
                if Completion::parse(&raw).phase != expect {
                    break;
                }
                run += 1;
            }
            // (A CQ head doorbell the input wrote itself may have told the
            // controller that entries were consumed.)
            assert!(
                run < q.cq_size || self.tampered[usize::from(qid)],
                "CQ {qid} overrun: {run} new entries"
            );
            while let Ok(Some(c)) = self.d.poll(qid) {
                assert_eq!(c.sq_id, qid, "completion names another SQ");
                assert!(
                    c.sq_head < q.sq_size,
                    "SQ head {} outside the queue",
                    c.sq_head
                );
                assert!(
                    STATUSES.contains(&c.status),
                    "status {} is not one the controller produces",
                    c.status
                );
                self.completed[usize::from(qid)] += 1;
            }
            let i = usize::from(qid);
            // Asynchronous events complete requests submitted earlier.
            if !self.tampered[i] {
                assert!(
                    self.completed[i] <= self.submitted[i],
                    "queue {qid}: {} completions for {} commands",
                    self.completed[i],
                    self.submitted[i]
                );
            }
        }
    }
}

/// Run one input.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let setup = input.byte().unwrap_or(0);
    let lba_size = if setup & 1 == 0 {
        LbaSize::B512
    } else {
        LbaSize::B4096
    };
    let irq = match (setup >> 1) % 3 {
        0 => IrqSetup::MsiX,
        1 => IrqSetup::Msi,
        _ => IrqSetup::Intx,
    };
    let cfg = NvmeConfig {
        size: SIZE,
        lba_size,
        ..NvmeConfig::default()
    };
    let mem = MemStorage::new(SIZE);
    let nvme = Nvme::new(cfg, Box::new(Guarded(mem.clone()))).expect("valid configuration");
    let mut d = Driver::new(nvme, true).expect("mock harness");
    let scratch = d.harness().dma_alloc(SCRATCH as usize).expect("scratch");
    let unmapped = d.harness().dma_alloc(4096).expect("page");
    d.harness().dma_free(unmapped);
    let mut r = Run {
        d,
        scratch,
        unmapped,
        submitted: [0; 3],
        completed: [0; 3],
        tampered: [false; 3],
    };
    r.bring_up(irq);

    let mut ops = 0;
    while let Some(op) = input.byte() {
        ops += 1;
        if ops > 256 {
            break;
        }
        match op % 7 {
            0 | 1 => {
                let qid = u16::from(input.byte().unwrap_or(0) % 3);
                let raw = input.bytes::<SQE_SIZE>();
                let flags = input.byte().unwrap_or(0);
                r.submit(qid, raw, flags);
            }
            2 => {
                let offset = u64::from(input.u16() & 0xFFC);
                let value = input.u32();
                let qid = (offset / 8) as usize;
                if let Some(t) = r.tampered.get_mut(qid) {
                    *t = true;
                }
                let _ = r.d.harness().write32(0, DOORBELLS + offset, value);
            }
            3 => {
                let offset = (u64::from(input.u16()) % SCRATCH) & !7;
                let list = input.byte().unwrap_or(0) & 1 != 0;
                let mut bytes = Vec::new();
                for _ in 0..8 {
                    let raw = u64::from_le_bytes(input.bytes());
                    let v = if list { r.fold(raw) & !0xFFF } else { raw };
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                let n = bytes.len().min((SCRATCH - offset) as usize);
                let _ = r.d.harness().dma_write(r.scratch + offset, &bytes[..n]);
            }
            4 => r.reap(),
            5 => {
                let which = input.byte().unwrap_or(0);
                let value = input.u32();
                let reg = if which & 1 == 0 { INTMS } else { INTMC };
                let _ = r.d.harness().write32(0, reg, value);
                if which & 2 != 0 {
                    // Shutdown notification; the controller must finish it.
                    let cc = r.d.harness().read32(0, CC).unwrap_or(0);
                    let _ = r.d.harness().write32(0, CC, (cc & !(3 << 14)) | 1 << 14);
                }
            }
            _ => {
                r.reap();
                r.restart();
            }
        }
    }
    r.reap();

    // Afterwards: a reset controller serves a clean write and read on
    // both queues.
    r.restart();
    let lbs = lba_size.bytes() as usize;
    for (qid, lba) in [(1u16, 3u64), (2, 7)] {
        let data = pattern(lba, lbs, 0xF022);
        r.d.write_blocks(qid, lba, &data, lbs, PrpLayout::default())
            .expect("clean write after fuzzing");
        let back = r.d.read_blocks(qid, lba, 1, lbs, PrpLayout::default());
        assert_eq!(back.expect("clean read after fuzzing"), data);
        assert_eq!(mem.snapshot(lba * lbs as u64, lbs as u64), data);
    }
}

/// Named seeds: a bring-up and clean I/O, malformed admin and I/O
/// commands, doorbell abuse, a PRP list in the scratch area.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let sqe = |c: Command| c.to_bytes().to_vec();
    let submit = |qid: u8, c: Command, flags: u8| {
        let mut v = vec![0u8, qid];
        v.extend(sqe(c));
        v.push(flags);
        v
    };
    let rw = |op: u8, slba: u32, nlb: u32, prp1: u64, prp2: u64| Command {
        opcode: op,
        nsid: 1,
        prp1,
        prp2,
        cdw: [slba, 0, nlb, 0, 0, 0],
        ..Command::default()
    };
    let mut clean = vec![0u8];
    clean.extend(submit(1, rw(1, 0, 7, 0, 0), 0));
    clean.extend(submit(2, rw(2, 0, 7, 0, 0), 0));
    clean.push(4);

    let mut admin_bad = vec![2u8];
    for (op, cdw10) in [
        (0x06u8, 0x1Fu32),
        (0x05, 0x0001_0001),
        (0x01, 0x0003_0003),
        (0x02, 0xFFFF_0002),
        (0x7F, 0),
    ] {
        admin_bad.extend(submit(
            0,
            Command {
                opcode: op,
                cdw: [cdw10, 0, 0, 0, 0, 0],
                ..Command::default()
            },
            0,
        ));
        admin_bad.push(4);
    }
    let mut io_bad = vec![1u8];
    io_bad.extend(submit(1, rw(2, 0xFFFF_0000, 3, 2, 0), 1));
    io_bad.extend(submit(2, rw(1, 0, 0xFFFF, 0, 0), 0));
    io_bad.extend(submit(1, rw(8, 0, 100, 0, 0), 0));
    io_bad.push(4);

    let mut doorbells = vec![4u8];
    for (off, val) in [(0x08u16, 5u32), (0x0C, 0x1000), (0x48, 1), (0x00, 3)] {
        doorbells.push(2);
        doorbells.extend_from_slice(&off.to_le_bytes());
        doorbells.extend_from_slice(&val.to_le_bytes());
    }
    doorbells.extend([4, 6, 5, 3, 0, 0, 0, 0, 4]);

    let mut list = vec![0u8, 3, 0, 0x10, 1];
    for i in 0..8u64 {
        list.extend_from_slice(&(0x2000 + i * 0x1000).to_le_bytes());
    }
    list.extend(submit(1, rw(1, 0, 23, 0x100, 0x1000), 3));
    list.push(4);
    vec![
        ("clean-io", clean),
        ("admin-errors", admin_bad),
        ("io-errors", io_bad),
        ("doorbells", doorbells),
        ("prp-list", list),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pass() {
        for (name, bytes) in seeds() {
            eprintln!("seed {name}");
            run(&bytes);
        }
    }

    #[test]
    fn short_and_odd_inputs_pass() {
        run(&[]);
        run(&[0xFF]);
        run(&[1, 0, 0]);
        run(&[3; 300]);
        run(&[6; 40]);
        let junk: Vec<u8> = (0..2000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        run(&junk);
    }
}

#[cfg(test)]
mod corpus {
    use std::path::PathBuf;

    /// The committed corpus of the target holds every seed (regenerate
    /// with `PCIEM_WRITE_SEEDS=1 cargo test -p pciem-nvme corpus`), and
    /// every file in it passes.
    #[test]
    fn corpus_holds_the_seeds_and_passes() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/nvme_commands");
        let write = std::env::var_os("PCIEM_WRITE_SEEDS").is_some();
        for (name, bytes) in super::seeds() {
            let path = dir.join(format!("seed-{name}"));
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            }
            let on_disk = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (regenerate the seeds)", path.display()));
            assert_eq!(on_disk, bytes, "{} is stale", path.display());
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            super::run(&std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
}
