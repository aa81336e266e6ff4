//! The simulated bus-address space: buffers the driver allocated or
//! mapped, at bus addresses that are not host pointers, separated by
//! unmapped guard gaps, and the DMA check the kernel module makes, with
//! pciem-core's rules: the model may touch only live buffers, each in the
//! direction it was mapped for; a freed buffer is remembered (the last
//! [`HISTORY`]) so that a use after unmap is named as such.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use pciem_abi::{pciem_event, PCIEM_DMA_MAX_LEN};
use pciem_core::dmacheck::{
    self, Access, CheckMode, Direction, Fault, FaultKind, FaultReport, Mapping, Mappings,
};
use pciem_core::transfer::{self, TransferError};
use pciem_core::HostError;

/// First bus address handed out (above 4 GiB, so 32-bit truncation bugs in
/// a model show up).
pub(crate) const DMA_BASE: u64 = 0x1_0000_0000;
/// Allocation granule and guard gap.
const PAGE: u64 = 4096;
/// Unmapped buffers remembered, as the kernel module does.
pub(crate) const HISTORY: usize = 64;

/// One live buffer: its bytes and what the device may do to it.
#[derive(Debug)]
struct Buffer {
    data: Vec<u8>,
    dir: Direction,
}

/// A freed buffer, remembered: in report mode the model's access still
/// lands in its bytes, as it would in the kernel's memory.
#[derive(Debug)]
struct Gone {
    start: u64,
    data: Vec<u8>,
    dir: Direction,
    at: Instant,
}

#[derive(Debug)]
pub(crate) struct DmaSpace {
    buffers: BTreeMap<u64, Buffer>,
    gone: VecDeque<Gone>,
    next: u64,
    /// Off, Report or Enforce (never Default).
    mode: CheckMode,
    /// Every violation, in order.
    pub(crate) faults: Vec<Fault>,
    /// DMA_FAULT events not yet given to the model.
    pub(crate) pending: VecDeque<pciem_event>,
}

impl Default for DmaSpace {
    fn default() -> Self {
        Self {
            buffers: BTreeMap::new(),
            gone: VecDeque::new(),
            next: DMA_BASE,
            mode: CheckMode::Enforce,
            faults: Vec::new(),
            pending: VecDeque::new(),
        }
    }
}

impl Mappings for DmaSpace {
    fn overlapping(&self, lo: u64, hi: u64, f: &mut dyn FnMut(Mapping) -> bool) {
        for (&start, b) in self.buffers.range(..=hi) {
            let m = Mapping {
                start,
                len: b.data.len() as u64,
                dir: b.dir,
                tag: start,
            };
            if m.end() > lo && !f(m) {
                return;
            }
        }
    }

    fn unmapped_at(&self, addr: u64) -> Option<Mapping> {
        self.gone
            .iter()
            .rev()
            .find(|g| addr >= g.start && addr - g.start < g.data.len() as u64)
            .map(|g| Mapping {
                start: g.start,
                len: g.data.len() as u64,
                dir: g.dir,
                tag: g.start,
            })
    }
}

/// Check a transfer's length against the kernel's limits (pciem-core's
/// rule, the one the module applies through its shim).
pub(crate) fn check_len(len: usize) -> Result<(), HostError> {
    match transfer::check_len(len as u64) {
        Ok(()) => Ok(()),
        Err(TransferError::Empty) => Err(HostError::Empty),
        // check_len judges no address, so never Wraps; a slice cannot wrap.
        Err(TransferError::TooLong(_) | TransferError::Wraps) => Err(HostError::TooLong {
            len: len as u64,
            max: PCIEM_DMA_MAX_LEN,
        }),
    }
}

impl DmaSpace {
    /// A new buffer of `len` zero bytes that the device may use as `dir`.
    pub(crate) fn alloc(&mut self, len: usize, dir: Direction) -> Result<u64, HostError> {
        check_len(len)?;
        let base = self.next.max(DMA_BASE);
        let pages = (len as u64).div_ceil(PAGE);
        self.next = base + (pages + 1) * PAGE;
        self.buffers.insert(
            base,
            Buffer {
                data: vec![0; len],
                dir,
            },
        );
        Ok(base)
    }

    /// Frees (unmaps) the buffer starting at `addr`, remembering it.
    pub(crate) fn free(&mut self, addr: u64) -> bool {
        let Some(b) = self.buffers.remove(&addr) else {
            return false;
        };
        if self.gone.len() == HISTORY {
            self.gone.pop_front();
        }
        self.gone.push_back(Gone {
            start: addr,
            data: b.data,
            dir: b.dir,
            at: Instant::now(),
        });
        true
    }

    /// Sets the check mode ([`CheckMode::Default`] is the kernel's default,
    /// enforce).
    pub(crate) fn set_mode(&mut self, mode: CheckMode) {
        self.mode = match mode {
            CheckMode::Default => CheckMode::Enforce,
            m => m,
        };
    }

    /// Whether violations are refused.
    pub(crate) fn enforcing(&self) -> bool {
        self.mode == CheckMode::Enforce
    }

    /// The driver's own (CPU) access to `addr..addr + len`, which must lie
    /// inside one live buffer; never checked.
    pub(crate) fn slice(&mut self, addr: u64, len: usize) -> Result<&mut [u8], HostError> {
        let unmapped = HostError::Unmapped {
            addr,
            len: len as u64,
        };
        let (&base, buf) = self
            .buffers
            .range_mut(..=addr)
            .next_back()
            .ok_or(unmapped)?;
        let start = (addr - base) as usize;
        buf.data
            .get_mut(start..start.checked_add(len).ok_or(unmapped)?)
            .ok_or(unmapped)
    }

    /// Checks the model's `access`, reporting a violation; `Err` when it
    /// must not go ahead (enforce mode).
    pub(crate) fn check(&mut self, addr: u64, len: usize, access: Access) -> Result<(), HostError> {
        if self.mode == CheckMode::Off {
            return Ok(());
        }
        let Err(f) = dmacheck::check(self, addr, len as u64, access) else {
            return Ok(());
        };
        let refused = self.mode == CheckMode::Enforce;
        let since_unmap_ns = match (f.kind, f.culprit) {
            (FaultKind::AfterUnmap, Some(m)) => self
                .gone
                .iter()
                .rev()
                .find(|g| g.start == m.tag)
                .map(|g| g.at.elapsed().as_nanos() as u64),
            _ => None,
        };
        let report = FaultReport {
            kind: f.kind,
            access,
            first_bad: f.first_bad,
            len: len as u64,
            since_unmap_ns,
            refused,
        };
        self.faults.push(f);
        self.pending.push_back(report.to_event());
        if refused {
            return Err(HostError::DmaRefused {
                addr,
                len: len as u64,
                kind: Some(f.kind),
            });
        }
        Ok(())
    }

    /// The model's access to `addr..addr + len`: checked, then served from
    /// a live buffer or, in report mode, from a remembered freed one.
    pub(crate) fn device_slice(
        &mut self,
        addr: u64,
        len: usize,
        access: Access,
    ) -> Result<&mut [u8], HostError> {
        self.check(addr, len, access)?;
        let unmapped = HostError::Unmapped {
            addr,
            len: len as u64,
        };
        let end = addr.checked_add(len as u64).ok_or(unmapped)?;
        let live = self
            .buffers
            .range(..=addr)
            .next_back()
            .is_some_and(|(&b, buf)| end <= b + buf.data.len() as u64);
        if live || self.mode == CheckMode::Off {
            return self.slice(addr, len);
        }
        let g = self
            .gone
            .iter_mut()
            .rev()
            .find(|g| addr >= g.start && end <= g.start + g.data.len() as u64)
            .ok_or(unmapped)?;
        let at = (addr - g.start) as usize;
        g.data.get_mut(at..at + len).ok_or(unmapped)
    }

    /// Live buffers (the mock's view of "still mapped"), as `(bus address,
    /// length)`.
    pub(crate) fn live(&self) -> Vec<(u64, usize)> {
        self.buffers
            .iter()
            .map(|(&a, b)| (a, b.data.len()))
            .collect()
    }
}
