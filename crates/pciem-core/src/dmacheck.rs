//! The rules of DMA checking, shared by the kernel module (through the
//! shim) and the mock backend so that both judge a model's DMA alike.
//!
//! A host records the mappings its driver made for the device (bus
//! address, length, direction). Before the device touches host memory,
//! [`check`] decides whether the live mappings allow that access and, if
//! not, what kind of mistake it is, in this order:
//!
//! 1. [`FaultKind::WrongDirection`]: the first offending byte is mapped,
//!    but only for the other direction;
//! 2. [`FaultKind::Outside`]: the access overlaps a mapping it may use but
//!    runs past it (the typical off-by-N);
//! 3. [`FaultKind::AfterUnmap`]: the first offending byte belonged to a
//!    mapping that was unmapped (or freed) recently;
//! 4. [`FaultKind::Outside`] again for an access that starts within a page
//!    of a mapping's end (or ends within a page of its start) without
//!    overlapping it: an overrun that skipped the mapping's last bytes;
//! 5. [`FaultKind::Unmapped`]: none of the above.
//!
//! Several mappings may cover one access together (adjacent scatterlist
//! entries): the union is what counts. The check allocates nothing and
//! cannot panic.

use core::fmt;

use pciem_abi::{
    pciem_event, PCIEM_DMA_ACCESS_ATOMIC, PCIEM_DMA_ACCESS_READ, PCIEM_DMA_ACCESS_WRITE,
    PCIEM_DMA_BIDIRECTIONAL, PCIEM_DMA_CHECK_DEFAULT, PCIEM_DMA_CHECK_ENFORCE, PCIEM_DMA_CHECK_OFF,
    PCIEM_DMA_CHECK_REPORT, PCIEM_DMA_FAULT_AFTER_UNMAP, PCIEM_DMA_FAULT_OUTSIDE,
    PCIEM_DMA_FAULT_UNMAPPED, PCIEM_DMA_FAULT_WRONG_DIRECTION, PCIEM_DMA_FROM_DEVICE,
    PCIEM_DMA_TO_DEVICE, PCIEM_EVENT_DMA_FAULT,
};

/// How far from a mapping an access may start (or end) and still be taken
/// for an overrun of it rather than a stray address.
pub const NEAR: u64 = 4096;

/// How a host treats a DMA outside the driver's mappings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CheckMode {
    /// The host's default (the kernel module's `dma_check=` parameter,
    /// `enforce` unless set otherwise; the mock's is [`CheckMode::Enforce`]).
    #[default]
    Default,
    /// Nothing is tracked or checked.
    Off,
    /// A violation is reported, then the access goes ahead.
    Report,
    /// A violation is reported and the access fails; nothing moves.
    Enforce,
}

impl CheckMode {
    /// The raw `PCIEM_DMA_CHECK_*` value.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Default => PCIEM_DMA_CHECK_DEFAULT,
            Self::Off => PCIEM_DMA_CHECK_OFF,
            Self::Report => PCIEM_DMA_CHECK_REPORT,
            Self::Enforce => PCIEM_DMA_CHECK_ENFORCE,
        }
    }

    /// The mode named `off`, `report`, `enforce` or `default`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "default" => Some(Self::Default),
            "off" => Some(Self::Off),
            "report" => Some(Self::Report),
            "enforce" => Some(Self::Enforce),
            _ => None,
        }
    }
}

/// What a `PCIEM_EVENT_DMA_FAULT` event tells the model: one of its DMAs
/// was outside what the driver mapped (see [`pciem_abi::dmacheck`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultReport {
    /// What kind of mistake ([`FaultKind::Outside`] carries the bytes).
    pub kind: FaultKind,
    /// What the device did.
    pub access: Access,
    /// The first offending byte.
    pub first_bad: u64,
    /// Length of the access.
    pub len: u64,
    /// For [`FaultKind::AfterUnmap`]: nanoseconds since the unmap.
    pub since_unmap_ns: Option<u64>,
    /// The host refused the access (enforce mode); otherwise it went ahead.
    pub refused: bool,
}

impl FaultReport {
    /// The report an event carries; `None` for another event type or an
    /// unknown kind or access.
    pub fn from_event(ev: &pciem_event) -> Option<Self> {
        if ev.r#type != PCIEM_EVENT_DMA_FAULT {
            return None;
        }
        let kind = match ev.flags {
            PCIEM_DMA_FAULT_UNMAPPED => FaultKind::Unmapped,
            PCIEM_DMA_FAULT_OUTSIDE => FaultKind::Outside { bytes: ev.data },
            PCIEM_DMA_FAULT_WRONG_DIRECTION => FaultKind::WrongDirection,
            PCIEM_DMA_FAULT_AFTER_UNMAP => FaultKind::AfterUnmap,
            _ => return None,
        };
        Some(Self {
            kind,
            access: Access::from_raw(ev.bar)?,
            first_bad: ev.offset,
            len: u64::from(ev.size),
            since_unmap_ns: (kind == FaultKind::AfterUnmap).then_some(ev.data),
            refused: ev.id != 0,
        })
    }

    /// The event (as the kernel module publishes it).
    pub fn to_event(&self) -> pciem_event {
        let data = match self.kind {
            FaultKind::Outside { bytes } => bytes,
            _ => self.since_unmap_ns.unwrap_or(0),
        };
        pciem_event {
            r#type: PCIEM_EVENT_DMA_FAULT,
            bar: self.access.raw(),
            offset: self.first_bad,
            size: u32::try_from(self.len).unwrap_or(u32::MAX),
            flags: self.kind.raw(),
            data,
            id: u64::from(self.refused),
            ..Default::default()
        }
    }
}

/// The direction a driver mapped a buffer for (Linux's
/// `enum dma_data_direction`, as `PCIEM_DMA_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Device and CPU may both read and write (coherent allocations too).
    Bidirectional,
    /// The device only reads the buffer.
    ToDevice,
    /// The device only writes the buffer.
    FromDevice,
}

impl Direction {
    /// The direction named by a raw `PCIEM_DMA_*` value.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            PCIEM_DMA_BIDIRECTIONAL => Some(Self::Bidirectional),
            PCIEM_DMA_TO_DEVICE => Some(Self::ToDevice),
            PCIEM_DMA_FROM_DEVICE => Some(Self::FromDevice),
            _ => None,
        }
    }

    /// The raw `PCIEM_DMA_*` value.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Bidirectional => PCIEM_DMA_BIDIRECTIONAL,
            Self::ToDevice => PCIEM_DMA_TO_DEVICE,
            Self::FromDevice => PCIEM_DMA_FROM_DEVICE,
        }
    }

    /// Whether a mapping of this direction lets the device make `access`.
    pub const fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Self::Bidirectional, _)
                | (Self::ToDevice, Access::Read)
                | (Self::FromDevice, Access::Write)
        )
    }

    /// The name Linux uses.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bidirectional => "DMA_BIDIRECTIONAL",
            Self::ToDevice => "DMA_TO_DEVICE",
            Self::FromDevice => "DMA_FROM_DEVICE",
        }
    }
}

/// What the device does to host memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reads it (DMA_READ, PRP lists, the data of a device read).
    Read,
    /// Writes it.
    Write,
    /// An atomic: reads and writes it.
    Atomic,
}

impl Access {
    /// The raw `PCIEM_DMA_ACCESS_*` value.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Read => PCIEM_DMA_ACCESS_READ,
            Self::Write => PCIEM_DMA_ACCESS_WRITE,
            Self::Atomic => PCIEM_DMA_ACCESS_ATOMIC,
        }
    }

    /// The access named by a raw `PCIEM_DMA_ACCESS_*` value.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            PCIEM_DMA_ACCESS_READ => Some(Self::Read),
            PCIEM_DMA_ACCESS_WRITE => Some(Self::Write),
            PCIEM_DMA_ACCESS_ATOMIC => Some(Self::Atomic),
            _ => None,
        }
    }

    /// "read", "write" or "atomic".
    pub const fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Atomic => "atomic",
        }
    }
}

/// One mapping the driver made (or, in the history, unmapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// Bus address of its first byte.
    pub start: u64,
    /// Length in bytes (at least 1).
    pub len: u64,
    /// What the device may do to it.
    pub dir: Direction,
    /// The host's own handle for the record (to name the call site that
    /// made it, or when it was unmapped); not interpreted here.
    pub tag: u64,
}

impl Mapping {
    /// One past its last byte (saturating at the top of the address space).
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// The kind of a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Nothing mapped there, now or recently.
    Unmapped,
    /// The access runs `bytes` bytes past a mapping it may use.
    Outside {
        /// Bytes of the access outside the mapping.
        bytes: u64,
    },
    /// Mapped only for the other direction.
    WrongDirection,
    /// The mapping there was unmapped before the access.
    AfterUnmap,
}

impl FaultKind {
    /// The raw `PCIEM_DMA_FAULT_*` value.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Unmapped => PCIEM_DMA_FAULT_UNMAPPED,
            Self::Outside { .. } => PCIEM_DMA_FAULT_OUTSIDE,
            Self::WrongDirection => PCIEM_DMA_FAULT_WRONG_DIRECTION,
            Self::AfterUnmap => PCIEM_DMA_FAULT_AFTER_UNMAP,
        }
    }

    /// The name used in reports and sysfs counters.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unmapped => "unmapped",
            Self::Outside { .. } => "outside",
            Self::WrongDirection => "wrong_direction",
            Self::AfterUnmap => "after_unmap",
        }
    }
}

/// A violating access and what it was measured against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fault {
    /// What kind of mistake.
    pub kind: FaultKind,
    /// The access: bus address of its first byte.
    pub addr: u64,
    /// The access: length.
    pub len: u64,
    /// The access: what the device did.
    pub access: Access,
    /// The first byte of the access that no suitable mapping covers.
    pub first_bad: u64,
    /// The mapping the mistake is about (the wrong-direction mapping, the
    /// one overrun, the unmapped one); `None` for [`FaultKind::Unmapped`].
    pub culprit: Option<Mapping>,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DMA {} of {} bytes at {:#x}: ",
            self.access.name(),
            self.len,
            self.addr
        )?;
        match (self.kind, self.culprit) {
            (FaultKind::WrongDirection, Some(m)) => write!(
                f,
                "wrong direction: {:#x}+{:#x} is mapped {}",
                m.start,
                m.len,
                m.dir.name()
            ),
            (FaultKind::Outside { bytes }, Some(m)) => write!(
                f,
                "outside the mapping {:#x}+{:#x} by {bytes} bytes",
                m.start, m.len
            ),
            (FaultKind::AfterUnmap, Some(m)) => write!(
                f,
                "{:#x} belongs to {:#x}+{:#x}, already unmapped",
                self.first_bad, m.start, m.len
            ),
            _ => write!(f, "{:#x} is not mapped", self.first_bad),
        }
    }
}

/// What a host knows about its driver's mappings.
pub trait Mappings {
    /// Calls `f` with every live mapping overlapping the bus addresses
    /// `lo..=hi`, in ascending order of `start`, until `f` returns `false`.
    fn overlapping(&self, lo: u64, hi: u64, f: &mut dyn FnMut(Mapping) -> bool);

    /// The most recently unmapped mapping that covered `addr`, if the host
    /// still remembers one.
    fn unmapped_at(&self, addr: u64) -> Option<Mapping>;
}

/// The simplest [`Mappings`]: live mappings and recent unmaps in slices
/// (a host with few mappings, a test). `live` needs no order; `gone` is
/// oldest first.
#[derive(Clone, Copy, Debug, Default)]
pub struct SliceMappings<'a> {
    /// The live mappings.
    pub live: &'a [Mapping],
    /// Mappings unmapped recently, oldest first.
    pub gone: &'a [Mapping],
}

impl Mappings for SliceMappings<'_> {
    fn overlapping(&self, lo: u64, hi: u64, f: &mut dyn FnMut(Mapping) -> bool) {
        // In ascending order of start without sorting (no allocation):
        // each round takes the lowest start above the last one visited.
        let mut last: Option<(u64, usize)> = None;
        loop {
            let next = self
                .live
                .iter()
                .enumerate()
                .filter(|(_, m)| m.start <= hi && m.end() > lo)
                .filter(|&(i, m)| last.is_none_or(|l| (m.start, i) > l))
                .min_by_key(|&(i, m)| (m.start, i));
            let Some((i, m)) = next else { return };
            last = Some((m.start, i));
            if !f(*m) {
                return;
            }
        }
    }

    fn unmapped_at(&self, addr: u64) -> Option<Mapping> {
        self.gone
            .iter()
            .rev()
            .find(|m| m.start <= addr && addr < m.end())
            .copied()
    }
}

/// One live mapping that alone allows `access` to all `len` bytes at
/// `addr`, if there is one: what a host may cache to answer later accesses
/// inside the same mapping without walking its records again (until that
/// mapping goes).
pub fn covering<M: Mappings + ?Sized>(
    maps: &M,
    addr: u64,
    len: u64,
    access: Access,
) -> Option<Mapping> {
    let end = addr.checked_add(len)?;
    let mut found = None;
    maps.overlapping(addr, addr, &mut |m| {
        if m.start <= addr && m.end() >= end && m.dir.allows(access) {
            found = Some(m);
            return false;
        }
        true
    });
    found
}

/// Whether the device may make `access` to the `len` bytes at `addr`;
/// the violation if not. A zero-length access touches nothing and passes;
/// one that wraps around the address space is [`FaultKind::Unmapped`].
pub fn check<M: Mappings + ?Sized>(
    maps: &M,
    addr: u64,
    len: u64,
    access: Access,
) -> Result<(), Fault> {
    let fault = |kind, first_bad, culprit| Fault {
        kind,
        addr,
        len,
        access,
        first_bad,
        culprit,
    };
    if len == 0 {
        return Ok(());
    }
    let Some(end) = addr.checked_add(len) else {
        return Err(fault(FaultKind::Unmapped, addr, None));
    };
    // Coverage by mappings that allow the access, walked in start order:
    // `frontier` is where contiguous coverage from `addr` ends, `covered`
    // counts the union, `gap` the first uncovered byte below a later
    // mapping.
    let mut frontier = addr;
    let mut covered = 0u64;
    let mut gap = None;
    let mut best: Option<(Mapping, u64)> = None;
    let mut wrong_any = None;
    // The nearest non-overlapping mapping the access may use: (mapping,
    // distance, bytes of the access beyond it).
    let mut near: Option<(Mapping, u64, u64)> = None;
    let lo = addr.saturating_sub(NEAR);
    let hi = (end - 1).saturating_add(NEAR);
    maps.overlapping(lo, hi, &mut |m| {
        let m_end = m.end();
        if m.len == 0 {
            return true;
        }
        if m.start >= end || m_end <= addr {
            if m.dir.allows(access) {
                let (dist, outside) = if m_end <= addr {
                    (addr - m_end, end - m_end)
                } else {
                    (m.start - end, m.start - addr)
                };
                if near.is_none_or(|(_, d, _)| dist < d) {
                    near = Some((m, dist, outside));
                }
            }
            return true;
        }
        if !m.dir.allows(access) {
            wrong_any.get_or_insert(m);
            return true;
        }
        if m.start > frontier && gap.is_none() {
            gap = Some(frontier);
        }
        let s = m.start.max(frontier);
        let e = m_end.min(end);
        if e > s {
            covered += e - s;
            frontier = e;
        }
        let overlap = m_end.min(end) - m.start.max(addr);
        if best.is_none_or(|(_, o)| overlap > o) {
            best = Some((m, overlap));
        }
        true
    });
    if covered >= len {
        return Ok(());
    }
    let first_bad = gap.unwrap_or(frontier);
    // A wrong-direction mapping covering the first uncovered byte decides;
    // looked up again since the walk saw it before knowing that byte.
    let mut wrong_here = None;
    if wrong_any.is_some() {
        maps.overlapping(first_bad, first_bad, &mut |m| {
            if !m.dir.allows(access) && m.len != 0 {
                wrong_here = Some(m);
                return false;
            }
            true
        });
    }
    if let Some(m) = wrong_here {
        return Err(fault(FaultKind::WrongDirection, first_bad, Some(m)));
    }
    if let Some((m, _)) = best {
        return Err(fault(
            FaultKind::Outside {
                bytes: len - covered,
            },
            first_bad,
            Some(m),
        ));
    }
    if let Some(m) = maps.unmapped_at(first_bad) {
        return Err(fault(FaultKind::AfterUnmap, first_bad, Some(m)));
    }
    if let Some((m, _, bytes)) = near {
        return Err(fault(FaultKind::Outside { bytes }, first_bad, Some(m)));
    }
    if let Some(m) = wrong_any {
        // Mapped the wrong way somewhere in the access, though not at its
        // first uncovered byte, and nothing better explains it.
        return Err(fault(FaultKind::WrongDirection, first_bad, Some(m)));
    }
    Err(fault(FaultKind::Unmapped, first_bad, None))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// Owned vectors seen as [`SliceMappings`].
    #[derive(Default)]
    struct List {
        live: Vec<Mapping>,
        gone: Vec<Mapping>,
    }

    impl Mappings for List {
        fn overlapping(&self, lo: u64, hi: u64, f: &mut dyn FnMut(Mapping) -> bool) {
            SliceMappings {
                live: &self.live,
                gone: &self.gone,
            }
            .overlapping(lo, hi, f)
        }
        fn unmapped_at(&self, addr: u64) -> Option<Mapping> {
            SliceMappings {
                live: &self.live,
                gone: &self.gone,
            }
            .unmapped_at(addr)
        }
    }

    fn map(start: u64, len: u64, dir: Direction) -> Mapping {
        Mapping {
            start,
            len,
            dir,
            tag: start,
        }
    }

    const BI: Direction = Direction::Bidirectional;
    const TO: Direction = Direction::ToDevice;
    const FROM: Direction = Direction::FromDevice;

    #[test]
    fn covered_accesses_pass() {
        let l = List {
            live: std::vec![map(0x1000, 0x1000, BI), map(0x2000, 0x800, TO)],
            ..Default::default()
        };
        assert_eq!(check(&l, 0x1000, 0x1000, Access::Write), Ok(()));
        assert_eq!(check(&l, 0x1ff8, 8, Access::Atomic), Ok(()));
        // Two adjacent mappings cover one read together.
        assert_eq!(check(&l, 0x1800, 0x1000, Access::Read), Ok(()));
        assert_eq!(check(&l, 0x5000, 0, Access::Read), Ok(()));
    }

    #[test]
    fn overrun_by_one_byte_and_one_page() {
        let m = map(0x10000, 0x1000, BI);
        let l = List {
            live: std::vec![m],
            ..Default::default()
        };
        let f = check(&l, 0x10000, 0x1001, Access::Write).unwrap_err();
        assert_eq!(f.kind, FaultKind::Outside { bytes: 1 });
        assert_eq!((f.first_bad, f.culprit), (0x11000, Some(m)));
        let f = check(&l, 0x10000, 0x2000, Access::Read).unwrap_err();
        assert_eq!(f.kind, FaultKind::Outside { bytes: 0x1000 });
        // The page after, alone (a PRP entry one page too far).
        let f = check(&l, 0x11000, 0x1000, Access::Read).unwrap_err();
        assert_eq!(f.kind, FaultKind::Outside { bytes: 0x1000 });
        // Before the start.
        let f = check(&l, 0xfffc, 8, Access::Read).unwrap_err();
        assert_eq!(f.kind, FaultKind::Outside { bytes: 4 });
        assert_eq!(f.first_bad, 0xfffc);
    }

    #[test]
    fn wrong_direction() {
        let m = map(0x4000, 0x1000, TO);
        let l = List {
            live: std::vec![m, map(0x8000, 0x1000, FROM)],
            ..Default::default()
        };
        let f = check(&l, 0x4000, 16, Access::Write).unwrap_err();
        assert_eq!((f.kind, f.culprit), (FaultKind::WrongDirection, Some(m)));
        assert!(check(&l, 0x8000, 16, Access::Read).is_err());
        assert!(check(&l, 0x8000, 16, Access::Atomic).is_err());
        assert_eq!(check(&l, 0x8000, 16, Access::Write), Ok(()));
    }

    #[test]
    fn after_unmap_and_unmapped() {
        let gone = map(0x20000, 0x1000, BI);
        let l = List {
            live: std::vec![],
            gone: std::vec![gone],
        };
        let f = check(&l, 0x20010, 4, Access::Read).unwrap_err();
        assert_eq!((f.kind, f.culprit), (FaultKind::AfterUnmap, Some(gone)));
        let f = check(&l, 0x90000, 4, Access::Read).unwrap_err();
        assert_eq!((f.kind, f.culprit), (FaultKind::Unmapped, None));
        let f = check(&l, u64::MAX - 3, 8, Access::Read).unwrap_err();
        assert_eq!(f.kind, FaultKind::Unmapped);
    }

    #[test]
    fn a_gap_between_mappings_is_found() {
        let a = map(0x1000, 0x1000, BI);
        let l = List {
            live: std::vec![a, map(0x2100, 0xf00, BI)],
            ..Default::default()
        };
        let f = check(&l, 0x1000, 0x2000, Access::Read).unwrap_err();
        assert_eq!(f.first_bad, 0x2000);
        assert_eq!(f.kind, FaultKind::Outside { bytes: 0x100 });
    }

    #[test]
    fn covering_names_the_one_mapping_that_allows_it_all() {
        let a = map(0x1000, 0x1000, BI);
        let l = List {
            live: std::vec![a, map(0x2000, 0x1000, TO)],
            ..Default::default()
        };
        assert_eq!(covering(&l, 0x1100, 0x10, Access::Atomic), Some(a));
        // Allowed, but only by the two together.
        assert_eq!(check(&l, 0x1800, 0x1000, Access::Read), Ok(()));
        assert_eq!(covering(&l, 0x1800, 0x1000, Access::Read), None);
        assert_eq!(covering(&l, 0x2000, 0x10, Access::Write), None);
    }

    #[test]
    fn fault_reports_round_trip_through_events() {
        let r = FaultReport {
            kind: FaultKind::Outside { bytes: 7 },
            access: Access::Write,
            first_bad: 0x1234,
            len: 99,
            since_unmap_ns: None,
            refused: true,
        };
        assert_eq!(FaultReport::from_event(&r.to_event()), Some(r));
        let r = FaultReport {
            kind: FaultKind::AfterUnmap,
            since_unmap_ns: Some(5),
            refused: false,
            ..r
        };
        assert_eq!(FaultReport::from_event(&r.to_event()), Some(r));
        assert_eq!(FaultReport::from_event(&pciem_event::default()), None);
    }

    #[test]
    fn display_names_the_kind() {
        let l = List::default();
        let f = check(&l, 0x1000, 4, Access::Write).unwrap_err();
        let s = std::format!("{f}");
        assert!(s.contains("not mapped") && s.contains("write"), "{s}");
    }
}
