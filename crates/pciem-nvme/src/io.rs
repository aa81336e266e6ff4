//! NVM command set commands (NVMe 1.4, section 6) and the data transfers
//! every command shares (PRP1/PRP2/PRP lists through the host's PRP walk).

use pciem_core::faultplan::FaultRule;
use pciem_core::prp::{Prp, PrpError};
use pciem_core::{Host, HostError};

use crate::admin::NSID_ALL;
use crate::command::{nvm, Command};
use crate::controller::{Nvme, Outcome};
use crate::identify::NSID;
use crate::regs::MAX_TRANSFER;
use crate::status::Status;

/// Bytes of one Dataset Management range.
const DSM_RANGE_SIZE: usize = 16;

/// The status a failed DMA completes with: a PRP entry the walk refused
/// is the command's fault (PRP Offset Invalid for a misaligned entry,
/// Invalid Field for a list that loops or runs on), anything else is a
/// Data Transfer Error. The kernel module walks PRP lists itself and
/// refuses a malformed one with `EINVAL`.
pub fn dma_status(e: HostError) -> Status {
    match e {
        HostError::Prp(PrpError::Misaligned { .. }) => Status::PRP_OFFSET_INVALID,
        HostError::Prp(_) => Status::INVALID_FIELD,
        HostError::Os { errno, .. } if errno == libc_einval() => Status::PRP_OFFSET_INVALID,
        // A poisoned completion: the data cannot be used.
        HostError::Poisoned { .. } => Status::DATA_TRANSFER_ERROR,
        _ => Status::DATA_TRANSFER_ERROR,
    }
}

const fn libc_einval() -> i32 {
    nix::errno::Errno::EINVAL as i32
}

/// Check what the controller can see of a PRP description before any
/// DMA: PRP1 dword aligned; PRP2 page aligned when it is the second data
/// page, 8-byte aligned when it points at a list.
fn check_prp(prp: Prp, len: u64) -> Result<(), Status> {
    let page = u64::from(prp.page_size);
    if prp.prp1 & 3 != 0 {
        return Err(Status::PRP_OFFSET_INVALID);
    }
    let first = page - (prp.prp1 & (page - 1));
    if len <= first {
        return Ok(());
    }
    let rest = len - first;
    let align = if rest <= page { page } else { 8 };
    if prp.prp2 & (align - 1) != 0 {
        return Err(Status::PRP_OFFSET_INVALID);
    }
    Ok(())
}

/// The first LBA and block count of a Read, Write or Write Zeroes.
fn lba_range(cmd: &Command) -> (u64, u64) {
    let slba = u64::from(cmd.cdw10()) | u64::from(cmd.cdw11()) << 32;
    let nlb = u64::from(cmd.cdw12() & 0xFFFF) + 1;
    (slba, nlb)
}

impl Nvme {
    fn prp(&self, cmd: &Command) -> Prp {
        Prp {
            prp1: cmd.prp1,
            prp2: cmd.prp2,
            page_size: self.page_size(),
        }
    }

    /// Controller-to-host transfer of `data` through the command's PRPs.
    pub(crate) fn send(
        &mut self,
        host: &dyn Host,
        cmd: &Command,
        data: &[u8],
    ) -> Result<(), Status> {
        let prp = self.prp(cmd);
        check_prp(prp, data.len() as u64)?;
        host.dma_write_prp(prp, data).map_err(dma_status)
    }

    /// Host-to-controller transfer into `buf` through the command's PRPs.
    fn receive(&mut self, host: &dyn Host, cmd: &Command, buf: &mut [u8]) -> Result<(), Status> {
        let prp = self.prp(cmd);
        check_prp(prp, buf.len() as u64)?;
        host.dma_read_prp(prp, buf).map_err(dma_status)
    }

    /// Run one NVM command.
    pub(crate) fn run_io(&mut self, host: &dyn Host, cmd: &Command) -> Outcome {
        if cmd.fuse != 0 || cmd.psdt != 0 {
            return Outcome::err(Status::INVALID_FIELD);
        }
        let r = match cmd.opcode {
            nvm::FLUSH => self.flush_cmd(cmd),
            nvm::WRITE => self.write(host, cmd),
            nvm::READ => self.read(host, cmd),
            nvm::WRITE_ZEROES => self.write_zeroes(cmd),
            nvm::DATASET_MANAGEMENT => self.dataset_management(host, cmd),
            _ => Err(Status::INVALID_OPCODE),
        };
        r.map(|()| 0).into()
    }

    /// Check the namespace and range of a block command; the byte offset
    /// and length.
    fn check_blocks(&self, cmd: &Command) -> Result<(u64, u64), Status> {
        if cmd.nsid != NSID {
            return Err(Status::INVALID_NAMESPACE);
        }
        // No end-to-end protection information (DPC = 0).
        if (cmd.cdw12() >> 26) & 0xF != 0 {
            return Err(Status::INVALID_FIELD);
        }
        let (slba, nlb) = lba_range(cmd);
        match slba.checked_add(nlb) {
            Some(end) if end <= self.cfg.blocks() => {}
            _ => return Err(Status::LBA_OUT_OF_RANGE),
        }
        let shift = self.cfg.lba_size.shift();
        Ok((slba << shift, nlb << shift))
    }

    /// After a write: Force Unit Access, or no volatile cache, means the
    /// data must be durable before the completion.
    fn write_through(&mut self, cmd: &Command) -> Result<(), Status> {
        let fua = cmd.cdw12() & (1 << 30) != 0;
        if fua || !self.features.write_cache {
            self.storage.flush().map_err(|_| {
                self.health.media_errors += 1;
                Status::WRITE_FAULT
            })?;
        }
        Ok(())
    }

    fn read(&mut self, host: &dyn Host, cmd: &Command) -> Result<(), Status> {
        let (offset, len) = self.check_blocks(cmd)?;
        if len > MAX_TRANSFER {
            return Err(Status::INVALID_FIELD);
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(len as usize, 0);
        let r = match self.storage.read_at(offset, &mut buf) {
            Ok(()) => self.send(host, cmd, &buf),
            Err(_) => {
                self.health.media_errors += 1;
                Err(Status::UNRECOVERED_READ_ERROR)
            }
        };
        self.buf = buf;
        r?;
        self.health.host_reads += 1;
        self.health.sectors_read += len / 512;
        Ok(())
    }

    fn write(&mut self, host: &dyn Host, cmd: &Command) -> Result<(), Status> {
        let (offset, len) = self.check_blocks(cmd)?;
        if len > MAX_TRANSFER {
            return Err(Status::INVALID_FIELD);
        }
        let (slba, _) = lba_range(cmd);
        if self.poison_write_lba == Some(slba) {
            self.poison_write_lba = None;
            // The command's first data byte: the transfer's first segment
            // touches it, and the rule disarms after that one hit.
            let rule = FaultRule::dma_poison(cmd.prp1, 1, 1);
            if let Err(e) = host.set_fault(rule) {
                eprintln!("pciem-nvme: arming the poisoned write at LBA {slba}: {e}");
            }
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(len as usize, 0);
        let r = self.receive(host, cmd, &mut buf).and_then(|()| {
            self.storage.write_at(offset, &buf).map_err(|_| {
                self.health.media_errors += 1;
                Status::WRITE_FAULT
            })
        });
        self.buf = buf;
        r?;
        self.write_through(cmd)?;
        self.health.host_writes += 1;
        self.health.sectors_written += len / 512;
        Ok(())
    }

    fn flush_cmd(&mut self, cmd: &Command) -> Result<(), Status> {
        if cmd.nsid != NSID && cmd.nsid != NSID_ALL {
            return Err(Status::INVALID_NAMESPACE);
        }
        self.storage.flush().map_err(|_| {
            self.health.media_errors += 1;
            Status::WRITE_FAULT
        })
    }

    fn write_zeroes(&mut self, cmd: &Command) -> Result<(), Status> {
        let (offset, len) = self.check_blocks(cmd)?;
        // Deallocate (bit 25) or not, the blocks read as zeros after; the
        // file backend punches a hole either way.
        self.storage.write_zeroes(offset, len).map_err(|_| {
            self.health.media_errors += 1;
            Status::WRITE_FAULT
        })?;
        self.write_through(cmd)
    }

    fn dataset_management(&mut self, host: &dyn Host, cmd: &Command) -> Result<(), Status> {
        if cmd.nsid != NSID {
            return Err(Status::INVALID_NAMESPACE);
        }
        let ranges = (cmd.cdw10() & 0xFF) as usize + 1;
        let deallocate = cmd.cdw11() & (1 << 2) != 0;
        let mut raw = vec![0u8; ranges * DSM_RANGE_SIZE];
        self.receive(host, cmd, &mut raw)?;
        if !deallocate {
            // Integral read/write hints only: nothing to do.
            return Ok(());
        }
        let blocks = self.cfg.blocks();
        let mut list = Vec::with_capacity(ranges);
        for r in raw.chunks_exact(DSM_RANGE_SIZE) {
            let nlb = u64::from(u32::from_le_bytes([r[4], r[5], r[6], r[7]]));
            let mut s = [0u8; 8];
            s.copy_from_slice(&r[8..16]);
            let slba = u64::from_le_bytes(s);
            match slba.checked_add(nlb) {
                Some(end) if end <= blocks => list.push((slba, nlb)),
                _ => return Err(Status::LBA_OUT_OF_RANGE),
            }
        }
        let shift = self.cfg.lba_size.shift();
        for (slba, nlb) in list.into_iter().filter(|&(_, n)| n > 0) {
            self.storage
                .deallocate(slba << shift, nlb << shift)
                .map_err(|_| Status::INTERNAL_ERROR)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prp_checks() {
        let p = |prp1, prp2| Prp {
            prp1,
            prp2,
            page_size: 4096,
        };
        assert_eq!(check_prp(p(0x1002, 0), 8), Err(Status::PRP_OFFSET_INVALID));
        assert_eq!(check_prp(p(0x1004, 0), 8), Ok(()));
        assert_eq!(
            check_prp(p(0x1800, 0x2010), 4096),
            Err(Status::PRP_OFFSET_INVALID)
        );
        assert_eq!(check_prp(p(0x1800, 0x3000), 4096), Ok(()));
        assert_eq!(check_prp(p(0x1000, 0x3008), 3 * 4096), Ok(()));
        assert_eq!(
            check_prp(p(0x1000, 0x3004), 3 * 4096),
            Err(Status::PRP_OFFSET_INVALID)
        );
        assert_eq!(
            dma_status(HostError::Prp(PrpError::Loop(0))),
            Status::INVALID_FIELD
        );
        assert_eq!(
            dma_status(HostError::Unmapped { addr: 0, len: 1 }),
            Status::DATA_TRANSFER_ERROR
        );
        assert_eq!(
            dma_status(HostError::Poisoned { addr: 0 }),
            Status::DATA_TRANSFER_ERROR
        );
    }
}
