//! Admin commands (NVMe 1.4, section 5).

use pciem_core::Host;

use crate::command::{admin, Command};
use crate::controller::{Nvme, Outcome};
use crate::identify::{self, IDENTIFY_SIZE, NSID};
use crate::logs::{self, LID_ERROR, LID_FIRMWARE, LID_SMART};
use crate::queue::{CompletionQueue, SubmissionQueue};
use crate::regs::{cc_iocqes, cc_iosqes, MAX_QUEUE_ENTRIES, MAX_TRANSFER, MSIX_VECTORS};
use crate::status::Status;

/// The broadcast namespace identifier.
pub const NSID_ALL: u32 = 0xFFFF_FFFF;

impl Nvme {
    /// Run one admin command.
    pub(crate) fn run_admin(&mut self, host: &dyn Host, cmd: &Command) -> Outcome {
        if cmd.fuse != 0 || cmd.psdt != 0 {
            // No fused operations; PRPs only (SGLS = 0).
            return Outcome::err(Status::INVALID_FIELD);
        }
        match cmd.opcode {
            admin::DELETE_SQ => self.delete_sq(cmd).into(),
            admin::CREATE_SQ => self.create_sq(cmd).into(),
            admin::GET_LOG_PAGE => self.get_log_page(host, cmd).into(),
            admin::DELETE_CQ => self.delete_cq(host, cmd).into(),
            admin::CREATE_CQ => self.create_cq(cmd).into(),
            admin::IDENTIFY => self.identify(host, cmd).into(),
            admin::ABORT => self.abort(host, cmd),
            admin::SET_FEATURES => self.set_features(cmd).into(),
            admin::GET_FEATURES => self.get_features(cmd).into(),
            admin::ASYNC_EVENT_REQUEST => match self.aer.request(cmd.cid) {
                // Completed at once if an event already waits.
                Ok(()) => match self.aer.take() {
                    Some((cid, dw0)) if cid == cmd.cid => Outcome::ok(dw0),
                    Some((cid, dw0)) => {
                        // An older request takes the event; this one waits.
                        let head = self.sqs[0].map_or(0, |s| s.head);
                        let older = Command { cid, ..*cmd };
                        let _ = self.complete(host, 0, head, &older, Status::SUCCESS, dw0);
                        Outcome::Held
                    }
                    None => Outcome::Held,
                },
                Err(s) => Outcome::err(s),
            },
            admin::KEEP_ALIVE => Outcome::ok(0),
            admin::PCIEM_HOTPLUG => self.schedule_hotplug(host, cmd).map(|()| 0).into(),
            _ => Outcome::err(Status::INVALID_OPCODE),
        }
    }

    /// Whether any I/O queue exists.
    fn io_queues_exist(&self) -> bool {
        self.sqs.iter().skip(1).any(Option::is_some) || self.cqs.iter().skip(1).any(Option::is_some)
    }

    /// Check a new queue's identifier, size and base (shared by Create
    /// I/O SQ and CQ). `allocated` is the zero-based count Set Features
    /// Number of Queues granted.
    fn check_new_queue(
        &self,
        cmd: &Command,
        allocated: u16,
        exists: bool,
    ) -> Result<(u16, u16), Status> {
        let qid = cmd.cdw10() as u16;
        let qsize = (cmd.cdw10() >> 16) + 1;
        if qid == 0 || qid > allocated + 1 || exists {
            return Err(Status::INVALID_QUEUE_ID);
        }
        if !(2..=MAX_QUEUE_ENTRIES).contains(&qsize) {
            return Err(Status::INVALID_QUEUE_SIZE);
        }
        // Physically contiguous queues only (CAP.CQR).
        if cmd.cdw11() & 1 == 0 {
            return Err(Status::INVALID_FIELD);
        }
        if cmd.prp1 == 0 || cmd.prp1 & (u64::from(self.page_size()) - 1) != 0 {
            return Err(Status::PRP_OFFSET_INVALID);
        }
        Ok((qid, qsize as u16))
    }

    fn create_cq(&mut self, cmd: &Command) -> Result<u32, Status> {
        let qid = cmd.cdw10() as u16;
        let exists = self.cqs.get(usize::from(qid)).is_some_and(|q| q.is_some());
        let (qid, size) = self.check_new_queue(cmd, self.features.queues.1, exists)?;
        let ien = cmd.cdw11() & 2 != 0;
        let iv = (cmd.cdw11() >> 16) as u16;
        if u32::from(iv) >= MSIX_VECTORS {
            return Err(Status::INVALID_INTERRUPT_VECTOR);
        }
        if cc_iocqes(self.cc) != 4 {
            return Err(Status::INVALID_FIELD);
        }
        let slot = self
            .cqs
            .get_mut(usize::from(qid))
            .ok_or(Status::INVALID_QUEUE_ID)?;
        *slot = Some(CompletionQueue::new(cmd.prp1, size, ien, iv));
        Ok(0)
    }

    fn create_sq(&mut self, cmd: &Command) -> Result<u32, Status> {
        let qid = cmd.cdw10() as u16;
        let exists = self.sqs.get(usize::from(qid)).is_some_and(|q| q.is_some());
        let cqid = (cmd.cdw11() >> 16) as u16;
        // The queue identifier is judged first, then its completion queue.
        let qid_ok = qid != 0 && qid <= self.features.queues.0 + 1 && !exists;
        if qid_ok && (cqid == 0 || !self.cqs.get(usize::from(cqid)).is_some_and(|q| q.is_some())) {
            return Err(Status::CQ_INVALID);
        }
        let (qid, size) = self.check_new_queue(cmd, self.features.queues.0, exists)?;
        if cc_iosqes(self.cc) != 6 {
            return Err(Status::INVALID_FIELD);
        }
        let slot = self
            .sqs
            .get_mut(usize::from(qid))
            .ok_or(Status::INVALID_QUEUE_ID)?;
        *slot = Some(SubmissionQueue {
            base: cmd.prp1,
            size,
            head: 0,
            tail: 0,
            cqid,
        });
        Ok(0)
    }

    fn delete_sq(&mut self, cmd: &Command) -> Result<u32, Status> {
        let qid = cmd.cdw10() as u16;
        match self.sqs.get_mut(usize::from(qid)) {
            Some(slot) if qid != 0 && slot.is_some() => {
                // Every command it held was already completed: nothing to
                // abort.
                *slot = None;
                Ok(0)
            }
            _ => Err(Status::INVALID_QUEUE_ID),
        }
    }

    fn delete_cq(&mut self, host: &dyn Host, cmd: &Command) -> Result<u32, Status> {
        let qid = cmd.cdw10() as u16;
        if qid == 0 || !self.cqs.get(usize::from(qid)).is_some_and(|q| q.is_some()) {
            return Err(Status::INVALID_QUEUE_ID);
        }
        if self.sqs.iter().flatten().any(|s| s.cqid == qid) {
            return Err(Status::INVALID_QUEUE_DELETION);
        }
        self.cqs[usize::from(qid)] = None;
        self.overflow[usize::from(qid)].clear();
        // Its unconsumed entries no longer hold the INTx line up.
        let pending = self
            .cqs
            .iter()
            .flatten()
            .any(|c| c.ien && c.has_unconsumed());
        if !pending {
            self.irq.deassert_intx(host);
        }
        Ok(0)
    }

    fn identify(&mut self, host: &dyn Host, cmd: &Command) -> Result<u32, Status> {
        let cns = cmd.cdw10() as u8;
        let csi = (cmd.cdw11() >> 24) as u8;
        let page: [u8; IDENTIFY_SIZE] = match cns {
            0x00 if cmd.nsid == NSID => identify::namespace(&self.cfg),
            0x00 => return Err(Status::INVALID_NAMESPACE),
            0x01 => identify::controller(&self.cfg),
            0x02 if cmd.nsid >= 0xFFFF_FFFE => return Err(Status::INVALID_NAMESPACE),
            0x02 => identify::active_namespaces(cmd.nsid),
            0x03 if cmd.nsid == NSID => identify::namespace_descriptors(&self.cfg),
            0x03 => return Err(Status::INVALID_NAMESPACE),
            0x06 if csi == 0 => identify::nvm_controller(),
            _ => return Err(Status::INVALID_FIELD),
        };
        self.send(host, cmd, &page)?;
        Ok(0)
    }

    fn get_log_page(&mut self, host: &dyn Host, cmd: &Command) -> Result<u32, Status> {
        let lid = cmd.cdw10() as u8;
        let rae = cmd.cdw10() & (1 << 15) != 0;
        let numd = (u64::from(cmd.cdw10() >> 16) | u64::from(cmd.cdw11() & 0xFFFF) << 16) + 1;
        let len = numd * 4;
        let offset = u64::from(cmd.cdw12()) | u64::from(cmd.cdw13()) << 32;
        if len > MAX_TRANSFER || offset & 3 != 0 {
            return Err(Status::INVALID_FIELD);
        }
        let log = match lid {
            LID_ERROR => self.errors.page(),
            LID_SMART => {
                // Controller-wide only (LPA bit 0 clear): NSID 1 is the
                // whole controller too.
                if !matches!(cmd.nsid, 0 | NSID | NSID_ALL) {
                    return Err(Status::INVALID_NAMESPACE);
                }
                logs::smart_page(&self.health, &self.errors)
            }
            LID_FIRMWARE => logs::firmware_page(&self.cfg),
            _ => return Err(Status::INVALID_LOG_PAGE),
        };
        if offset >= log.len() as u64 {
            return Err(Status::INVALID_FIELD);
        }
        let mut data = vec![0u8; len as usize];
        let src = &log[offset as usize..];
        let n = src.len().min(data.len());
        data[..n].copy_from_slice(&src[..n]);
        self.send(host, cmd, &data)?;
        if !rae {
            self.aer.log_read(lid);
        }
        Ok(0)
    }

    fn abort(&mut self, host: &dyn Host, cmd: &Command) -> Outcome {
        let sqid = cmd.cdw10() as u16;
        let cid = (cmd.cdw10() >> 16) as u16;
        // Every command but an Asynchronous Event Request completes before
        // the next one is fetched: only those can still be aborted.
        if sqid == 0 && self.aer.abort(cid) {
            let head = self.sqs[0].map_or(0, |s| s.head);
            let aborted = Command { cid, ..*cmd };
            let _ = self.complete(host, 0, head, &aborted, Status::ABORT_REQUESTED, 0);
            return Outcome::ok(0);
        }
        // DW0 bit 0: the command was not aborted.
        Outcome::ok(1)
    }

    fn set_features(&mut self, cmd: &Command) -> Result<u32, Status> {
        if cmd.cdw10() & (1 << 31) != 0 {
            return Err(Status::FEATURE_NOT_SAVEABLE);
        }
        let exist = self.io_queues_exist();
        self.features.set(cmd.cdw10() as u8, cmd.cdw11(), exist)
    }

    fn get_features(&mut self, cmd: &Command) -> Result<u32, Status> {
        // Only the current value (SEL 000b): ONCS does not advertise
        // Save / Select.
        if (cmd.cdw10() >> 8) & 0x7 != 0 {
            return Err(Status::INVALID_FIELD);
        }
        self.features.get(cmd.cdw10() as u8, cmd.cdw11())
    }
}
