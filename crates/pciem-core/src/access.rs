//! How the host serves the driver's accesses to each BAR: watch mode or
//! trap mode, and in trap mode the policy of each declared range.
//!
//! An [`AccessMap`] is what a device declares next to its configuration
//! space (see [`ConfigBuilder::trap_bar`](crate::ConfigBuilder::trap_bar)
//! and [`ConfigBuilder::trap_range`](crate::ConfigBuilder::trap_range)); the
//! ABI's semantics are in [`pciem_abi::trap`]. In short, on a trapped BAR:
//!
//! - every driver store is an `MMIO_WRITE` event, stored into the BAR's
//!   backing unless its range says [`WritePolicy::DeliverOnly`];
//! - a driver load is served from the backing ([`ReadPolicy::Backing`]),
//!   from the backing and reported as a posted `MMIO_READ` event
//!   ([`ReadPolicy::Notify`]), or answered synchronously by the model
//!   ([`ReadPolicy::Model`], [`Device::mmio_read`](crate::Device::mmio_read)).
//!
//! [`AccessMap::classify`] is the one place that decides which policy an
//! access gets; the mock backend uses it, and so can the kernel module.
//!
//! Linked into the kernel: no allocation, no formatting, no panicking path
//! on any input.

use heapless::Vec;
use pciem_abi::{
    pciem_bar_mode, pciem_trap_range, PCIEM_BAR_MODE_TRAP, PCIEM_BAR_MODE_WATCH,
    PCIEM_MAX_TRAP_RANGES, PCIEM_READ_TIMEOUT_MAX_US, PCIEM_TRAP_FLAGS_MASK, PCIEM_TRAP_READ_MODEL,
    PCIEM_TRAP_READ_NOTIFY, PCIEM_TRAP_WRITE_NO_STORE,
};

use crate::config::BuildError;

/// Number of BAR slots.
const BARS: usize = 6;

/// How the host serves a BAR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BarMode {
    /// Plain memory shared with the device process; writes to at most four
    /// watched registers become events (hardware watchpoints).
    #[default]
    Watch,
    /// Every driver access is trapped and served by its range's policy.
    Trap,
}

impl BarMode {
    /// `PCIEM_BAR_MODE_*`.
    pub const fn to_abi(self) -> u32 {
        match self {
            BarMode::Watch => PCIEM_BAR_MODE_WATCH,
            BarMode::Trap => PCIEM_BAR_MODE_TRAP,
        }
    }

    /// From `PCIEM_BAR_MODE_*`; `None` for an unknown value.
    pub const fn from_abi(raw: u32) -> Option<Self> {
        match raw {
            PCIEM_BAR_MODE_WATCH => Some(BarMode::Watch),
            PCIEM_BAR_MODE_TRAP => Some(BarMode::Trap),
            _ => None,
        }
    }
}

/// How a driver load from a trapped BAR is served. Ordered by strength:
/// an access touching ranges of several policies gets the strongest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadPolicy {
    /// From the BAR's backing, no event (what the model last stored).
    #[default]
    Backing,
    /// From the backing, and reported to the model as a posted `MMIO_READ`
    /// event carrying the value read
    /// ([`Device::mmio_read_notify`](crate::Device::mmio_read_notify)).
    Notify,
    /// Answered synchronously by the model
    /// ([`Device::mmio_read`](crate::Device::mmio_read)); the driver's CPU
    /// waits, at most the read timeout, then reads all-ones.
    Model,
}

/// How a driver store to a trapped BAR is served. Every store is an
/// `MMIO_WRITE` event either way. Ordered by strength, like [`ReadPolicy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WritePolicy {
    /// Stored into the backing (a later load sees it), and delivered.
    #[default]
    Store,
    /// Delivered only; the backing keeps what the model put there
    /// (doorbells, write-1-to-clear bits, FIFOs).
    DeliverOnly,
}

/// The policy of a trap range: how loads and stores are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrapPolicy {
    /// Loads.
    pub read: ReadPolicy,
    /// Stores.
    pub write: WritePolicy,
}

impl TrapPolicy {
    /// Loads from the backing, stores stored: what a trapped BAR does
    /// outside every range.
    pub const PLAIN: TrapPolicy = TrapPolicy {
        read: ReadPolicy::Backing,
        write: WritePolicy::Store,
    };
    /// A register the model owns entirely: loads answered by the model,
    /// stores delivered and not stored (status registers with
    /// read-to-clear or write-1-to-clear bits, FIFOs).
    pub const MODEL: TrapPolicy = TrapPolicy {
        read: ReadPolicy::Model,
        write: WritePolicy::DeliverOnly,
    };
    /// A doorbell: stores delivered and not stored, loads from the backing.
    pub const DOORBELL: TrapPolicy = TrapPolicy {
        read: ReadPolicy::Backing,
        write: WritePolicy::DeliverOnly,
    };

    /// A policy from its parts.
    pub const fn new(read: ReadPolicy, write: WritePolicy) -> Self {
        TrapPolicy { read, write }
    }

    /// `PCIEM_TRAP_*` flags.
    pub const fn to_flags(self) -> u32 {
        let r = match self.read {
            ReadPolicy::Backing => 0,
            ReadPolicy::Notify => PCIEM_TRAP_READ_NOTIFY,
            ReadPolicy::Model => PCIEM_TRAP_READ_MODEL,
        };
        let w = match self.write {
            WritePolicy::Store => 0,
            WritePolicy::DeliverOnly => PCIEM_TRAP_WRITE_NO_STORE,
        };
        r | w
    }

    /// From `PCIEM_TRAP_*` flags; unknown bits, or READ_MODEL with
    /// READ_NOTIFY, are [`BuildError::TrapFlags`].
    pub const fn from_flags(flags: u32) -> Result<Self, BuildError> {
        if flags & !PCIEM_TRAP_FLAGS_MASK != 0 {
            return Err(BuildError::TrapFlags(flags));
        }
        let model = flags & PCIEM_TRAP_READ_MODEL != 0;
        let notify = flags & PCIEM_TRAP_READ_NOTIFY != 0;
        let read = match (model, notify) {
            (true, true) => return Err(BuildError::TrapFlags(flags)),
            (true, false) => ReadPolicy::Model,
            (false, true) => ReadPolicy::Notify,
            (false, false) => ReadPolicy::Backing,
        };
        let write = if flags & PCIEM_TRAP_WRITE_NO_STORE != 0 {
            WritePolicy::DeliverOnly
        } else {
            WritePolicy::Store
        };
        Ok(TrapPolicy { read, write })
    }

    /// The stronger of each half of `self` and `other`.
    pub fn union(self, other: TrapPolicy) -> TrapPolicy {
        TrapPolicy {
            read: self.read.max(other.read),
            write: self.write.max(other.write),
        }
    }
}

/// A range of a trapped BAR with its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrapRange {
    /// BAR slot (the first slot of a 64-bit BAR).
    pub bar: u8,
    /// First byte in the BAR.
    pub offset: u64,
    /// Length in bytes, at least 1.
    pub len: u64,
    /// How accesses touching the range are served.
    pub policy: TrapPolicy,
}

impl TrapRange {
    /// One past the last byte (saturating; [`AccessMap::add_range`] refuses
    /// ranges that wrap).
    pub const fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }

    /// Whether the range shares a byte with `offset..offset + len`.
    pub const fn touches(&self, offset: u64, len: u64) -> bool {
        self.offset < offset.saturating_add(len) && offset < self.end()
    }

    /// The `PCIEM_IOCTL_ADD_TRAP_RANGE` argument.
    pub const fn to_abi(&self) -> pciem_trap_range {
        pciem_trap_range {
            bar_index: self.bar as u32,
            flags: self.policy.to_flags(),
            offset: self.offset,
            length: self.len,
        }
    }

    /// From the `PCIEM_IOCTL_ADD_TRAP_RANGE` argument (flags checked; the
    /// rest is checked by [`AccessMap::add_range`]).
    pub const fn from_abi(r: &pciem_trap_range) -> Result<Self, BuildError> {
        if r.bar_index >= BARS as u32 {
            return Err(BuildError::BarIndex(r.bar_index));
        }
        let policy = match TrapPolicy::from_flags(r.flags) {
            Ok(p) => p,
            Err(e) => return Err(e),
        };
        Ok(TrapRange {
            bar: r.bar_index as u8,
            offset: r.offset,
            len: r.length,
            policy,
        })
    }
}

/// Each BAR's mode, the trap ranges, and the model-answered read timeout.
///
/// [`AccessMap::new`] is every BAR in watch mode, no ranges: today's
/// behaviour, and what [`Device::access_map`](crate::Device::access_map)
/// returns unless a model says otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessMap {
    modes: [BarMode; BARS],
    ranges: Vec<TrapRange, { PCIEM_MAX_TRAP_RANGES as usize }>,
    read_timeout_us: Option<u32>,
}

impl AccessMap {
    /// Every BAR in watch mode, no ranges, the default read timeout.
    pub const fn new() -> Self {
        AccessMap {
            modes: [BarMode::Watch; BARS],
            ranges: Vec::new(),
            read_timeout_us: None,
        }
    }

    /// Put BAR `bar` in `mode`.
    pub fn set_mode(&mut self, bar: u8, mode: BarMode) -> Result<(), BuildError> {
        let slot = self
            .modes
            .get_mut(bar as usize)
            .ok_or(BuildError::BarIndex(bar as u32))?;
        *slot = mode;
        Ok(())
    }

    /// Apply a `PCIEM_IOCTL_SET_BAR_MODE` argument.
    pub fn set_mode_abi(&mut self, m: &pciem_bar_mode) -> Result<(), BuildError> {
        if m.flags != 0 || m.reserved != 0 {
            return Err(BuildError::Reserved);
        }
        if m.bar_index >= BARS as u32 {
            return Err(BuildError::BarIndex(m.bar_index));
        }
        let mode = BarMode::from_abi(m.mode).ok_or(BuildError::BadField(c"unknown BAR mode"))?;
        self.set_mode(m.bar_index as u8, mode)
    }

    /// The mode of BAR `bar` (watch for a slot out of range).
    pub fn mode(&self, bar: u8) -> BarMode {
        self.modes.get(bar as usize).copied().unwrap_or_default()
    }

    /// Whether BAR `bar` is in trap mode.
    pub fn is_trapped(&self, bar: u8) -> bool {
        self.mode(bar) == BarMode::Trap
    }

    /// Whether any BAR is in trap mode (the device then needs `START`).
    pub fn any_trapped(&self) -> bool {
        self.modes.contains(&BarMode::Trap)
    }

    /// The slots in trap mode.
    pub fn trapped_bars(&self) -> impl Iterator<Item = u8> + '_ {
        (0..BARS as u8).filter(|&b| self.is_trapped(b))
    }

    /// Declare a range. Checked here: the slot, a non-zero length that does
    /// not wrap, no overlap with a range of the same BAR, at most
    /// [`PCIEM_MAX_TRAP_RANGES`]. Checked against the BARs by
    /// [`AccessMap::check`]: the BAR exists, is trapped, holds the range.
    pub fn add_range(&mut self, r: TrapRange) -> Result<(), BuildError> {
        if r.bar as usize >= BARS {
            return Err(BuildError::BarIndex(r.bar as u32));
        }
        if r.len == 0 {
            return Err(BuildError::BadField(c"trap range length is zero"));
        }
        if r.offset.checked_add(r.len).is_none() {
            return Err(BuildError::TrapRangeOutsideBar {
                bar: r.bar,
                offset: r.offset,
                len: r.len,
            });
        }
        if self
            .ranges
            .iter()
            .any(|o| o.bar == r.bar && o.touches(r.offset, r.len))
        {
            return Err(BuildError::TrapRangeOverlap {
                bar: r.bar,
                offset: r.offset,
            });
        }
        self.ranges
            .push(r)
            .map_err(|_| BuildError::TooManyTrapRanges(PCIEM_MAX_TRAP_RANGES))
    }

    /// Apply a `PCIEM_IOCTL_ADD_TRAP_RANGE` argument.
    pub fn add_range_abi(&mut self, r: &pciem_trap_range) -> Result<(), BuildError> {
        self.add_range(TrapRange::from_abi(r)?)
    }

    /// The declared ranges, in declaration order.
    pub fn ranges(&self) -> &[TrapRange] {
        &self.ranges
    }

    /// Set how long a model-answered read waits (1 µs ..=
    /// [`PCIEM_READ_TIMEOUT_MAX_US`]); `None` keeps the default
    /// ([`pciem_abi::PCIEM_READ_TIMEOUT_DEFAULT_US`]).
    pub fn set_read_timeout_us(&mut self, us: Option<u32>) -> Result<(), BuildError> {
        if let Some(us) = us {
            if us == 0 || us > PCIEM_READ_TIMEOUT_MAX_US {
                return Err(BuildError::BadField(
                    c"read timeout must be 1..=1000000 microseconds",
                ));
            }
        }
        self.read_timeout_us = us;
        Ok(())
    }

    /// The read timeout asked for, `None` for the default.
    pub fn read_timeout_us(&self) -> Option<u32> {
        self.read_timeout_us
    }

    /// The read timeout in effect, in microseconds.
    pub fn effective_read_timeout_us(&self) -> u32 {
        self.read_timeout_us
            .unwrap_or(pciem_abi::PCIEM_READ_TIMEOUT_DEFAULT_US)
    }

    /// Check the map against the device's BARs: `bar_size(i)` is the size
    /// of the BAR starting at slot `i`, `None` where there is none (the
    /// upper slot of a 64-bit BAR included). Every trapped slot must be a
    /// BAR, every range must lie on a trapped BAR and inside it.
    pub fn check_with(&self, bar_size: impl Fn(u8) -> Option<u64>) -> Result<(), BuildError> {
        for bar in self.trapped_bars() {
            if bar_size(bar).is_none() {
                return Err(BuildError::TrapBarMissing(bar));
            }
        }
        for r in &self.ranges {
            let size = bar_size(r.bar).ok_or(BuildError::TrapBarMissing(r.bar))?;
            if !self.is_trapped(r.bar) {
                return Err(BuildError::TrapRangeNotTrapped(r.bar));
            }
            let inside = matches!(r.offset.checked_add(r.len), Some(end) if end <= size);
            if !inside {
                return Err(BuildError::TrapRangeOutsideBar {
                    bar: r.bar,
                    offset: r.offset,
                    len: r.len,
                });
            }
        }
        Ok(())
    }

    /// [`AccessMap::check_with`] against a built configuration space.
    pub fn check(&self, space: &crate::ConfigSpace) -> Result<(), BuildError> {
        self.check_with(|b| space.bar(b).map(|i| i.size))
    }

    /// How an access of `width` bytes at `offset` of BAR `bar` is served.
    ///
    /// On a trapped BAR: the union ([`TrapPolicy::union`]) of the policies
    /// of every range the access touches — the strongest read policy
    /// (Model over Notify over Backing) and DeliverOnly if any touched range
    /// says so — or [`TrapPolicy::PLAIN`] outside every range. On a
    /// watch-mode BAR: [`TrapPolicy::PLAIN`] (loads from the backing,
    /// stores stored; events come only from watches). A width of 0 touches
    /// nothing.
    pub fn classify(&self, bar: u8, offset: u64, width: u8) -> TrapPolicy {
        if !self.is_trapped(bar) {
            return TrapPolicy::PLAIN;
        }
        self.ranges
            .iter()
            .filter(|r| r.bar == bar && r.touches(offset, width as u64))
            .fold(TrapPolicy::PLAIN, |p, r| p.union(r.policy))
    }

    /// Whether any byte of `offset..offset + len` of BAR `bar` lies in a
    /// range (on a trapped BAR): bulk accesses that touch none can be
    /// served from the backing in one piece.
    pub fn touches_range(&self, bar: u8, offset: u64, len: u64) -> bool {
        self.is_trapped(bar)
            && self
                .ranges
                .iter()
                .any(|r| r.bar == bar && r.touches(offset, len))
    }
}

/// Splits `offset..offset + len` into the accesses a CPU copy makes: each
/// naturally aligned, 1, 2, 4 or 8 bytes, the widest that fits. Yields
/// `(offset, width)`. Trap-mode backends serve bulk copies this way, one
/// access at a time.
pub fn split_accesses(offset: u64, len: u64) -> impl Iterator<Item = (u64, u8)> {
    let end = offset.saturating_add(len);
    let mut at = offset;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let left = end - at;
        let w = [8u64, 4, 2, 1]
            .into_iter()
            .find(|&w| at.is_multiple_of(w) && w <= left)
            .unwrap_or(1);
        let here = at;
        at += w;
        Some((here, w as u8))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(bar: u8, offset: u64, len: u64, policy: TrapPolicy) -> TrapRange {
        TrapRange {
            bar,
            offset,
            len,
            policy,
        }
    }

    #[test]
    fn flags_round_trip_and_model_with_notify_is_refused() {
        for read in [ReadPolicy::Backing, ReadPolicy::Notify, ReadPolicy::Model] {
            for write in [WritePolicy::Store, WritePolicy::DeliverOnly] {
                let p = TrapPolicy::new(read, write);
                assert_eq!(TrapPolicy::from_flags(p.to_flags()), Ok(p));
            }
        }
        let both = PCIEM_TRAP_READ_MODEL | PCIEM_TRAP_READ_NOTIFY;
        assert_eq!(
            TrapPolicy::from_flags(both),
            Err(BuildError::TrapFlags(both))
        );
        assert_eq!(TrapPolicy::from_flags(0x8), Err(BuildError::TrapFlags(0x8)));
    }

    #[test]
    fn ranges_are_checked() {
        let mut m = AccessMap::new();
        m.set_mode(0, BarMode::Trap).unwrap();
        assert_eq!(m.set_mode(6, BarMode::Trap), Err(BuildError::BarIndex(6)));
        m.add_range(range(0, 0x10, 4, TrapPolicy::MODEL)).unwrap();
        assert_eq!(
            m.add_range(range(0, 0x12, 4, TrapPolicy::MODEL)),
            Err(BuildError::TrapRangeOverlap {
                bar: 0,
                offset: 0x12
            })
        );
        // Adjacent is fine, and so is the same offset on another BAR.
        m.add_range(range(0, 0x14, 4, TrapPolicy::DOORBELL))
            .unwrap();
        m.add_range(range(2, 0x10, 4, TrapPolicy::MODEL)).unwrap();
        assert!(m.add_range(range(0, 0x100, 0, TrapPolicy::MODEL)).is_err());
        assert!(matches!(
            m.add_range(range(0, u64::MAX, 2, TrapPolicy::MODEL)),
            Err(BuildError::TrapRangeOutsideBar { .. })
        ));
        let sizes = |b: u8| match b {
            0 => Some(4096),
            2 => Some(4096),
            _ => None,
        };
        // BAR 2 holds a range but is not trapped.
        assert_eq!(m.check_with(sizes), Err(BuildError::TrapRangeNotTrapped(2)));
        m.set_mode(2, BarMode::Trap).unwrap();
        assert_eq!(m.check_with(sizes), Ok(()));
        m.set_mode(3, BarMode::Trap).unwrap();
        assert_eq!(m.check_with(sizes), Err(BuildError::TrapBarMissing(3)));
        m.set_mode(3, BarMode::Watch).unwrap();
        m.add_range(range(0, 4094, 4, TrapPolicy::MODEL)).unwrap();
        assert!(matches!(
            m.check_with(sizes),
            Err(BuildError::TrapRangeOutsideBar { bar: 0, .. })
        ));
    }

    #[test]
    fn too_many_ranges() {
        let mut m = AccessMap::new();
        for i in 0..PCIEM_MAX_TRAP_RANGES as u64 {
            m.add_range(range(0, i * 4, 4, TrapPolicy::MODEL)).unwrap();
        }
        assert_eq!(
            m.add_range(range(0, 0x1000, 4, TrapPolicy::MODEL)),
            Err(BuildError::TooManyTrapRanges(PCIEM_MAX_TRAP_RANGES))
        );
    }

    #[test]
    fn classify_takes_the_strongest_policy_of_the_ranges_touched() {
        let mut m = AccessMap::new();
        m.set_mode(0, BarMode::Trap).unwrap();
        let notify = TrapPolicy::new(ReadPolicy::Notify, WritePolicy::Store);
        m.add_range(range(0, 0x0, 4, notify)).unwrap();
        m.add_range(range(0, 0x4, 4, TrapPolicy::MODEL)).unwrap();
        m.add_range(range(0, 0x8, 4, TrapPolicy::DOORBELL)).unwrap();
        assert_eq!(m.classify(0, 0x0, 4), notify);
        assert_eq!(m.classify(0, 0x2, 1), notify);
        assert_eq!(m.classify(0, 0x4, 4), TrapPolicy::MODEL);
        assert_eq!(m.classify(0, 0x0, 8), TrapPolicy::MODEL);
        assert_eq!(
            m.classify(0, 0x8, 8),
            TrapPolicy::new(ReadPolicy::Backing, WritePolicy::DeliverOnly)
        );
        assert_eq!(m.classify(0, 0xC, 4), TrapPolicy::PLAIN);
        assert_eq!(m.classify(0, 0x4, 0), TrapPolicy::PLAIN);
        assert_eq!(m.classify(0, u64::MAX, 8), TrapPolicy::PLAIN);
        // Watch-mode BARs are plain whatever is declared.
        assert_eq!(m.classify(1, 0x4, 4), TrapPolicy::PLAIN);
        assert!(m.touches_range(0, 0x3, 2));
        assert!(!m.touches_range(0, 0xC, 0x100));
    }

    #[test]
    fn abi_arguments() {
        let mut m = AccessMap::new();
        let mode = pciem_bar_mode {
            bar_index: 2,
            mode: PCIEM_BAR_MODE_TRAP,
            ..Default::default()
        };
        m.set_mode_abi(&mode).unwrap();
        assert!(m.is_trapped(2) && m.any_trapped());
        assert_eq!(
            m.set_mode_abi(&pciem_bar_mode { mode: 7, ..mode }),
            Err(BuildError::BadField(c"unknown BAR mode"))
        );
        assert_eq!(
            m.set_mode_abi(&pciem_bar_mode { flags: 1, ..mode }),
            Err(BuildError::Reserved)
        );
        let r = range(2, 0x40, 8, TrapPolicy::MODEL);
        m.add_range_abi(&r.to_abi()).unwrap();
        assert_eq!(m.ranges(), &[r]);
        let bad = pciem_trap_range {
            bar_index: 9,
            ..r.to_abi()
        };
        assert_eq!(m.add_range_abi(&bad), Err(BuildError::BarIndex(9)));
    }

    #[test]
    fn read_timeout_bounds() {
        let mut m = AccessMap::new();
        assert_eq!(m.effective_read_timeout_us(), 10_000);
        assert!(m.set_read_timeout_us(Some(0)).is_err());
        assert!(m
            .set_read_timeout_us(Some(PCIEM_READ_TIMEOUT_MAX_US + 1))
            .is_err());
        m.set_read_timeout_us(Some(500)).unwrap();
        assert_eq!(m.effective_read_timeout_us(), 500);
    }

    #[test]
    fn bulk_accesses_split_naturally_aligned() {
        let v: [(u64, u8); 5] = [(1, 1), (2, 2), (4, 4), (8, 8), (16, 1)];
        assert!(split_accesses(1, 16).eq(v));
        assert_eq!(split_accesses(0, 0).count(), 0);
        assert_eq!(split_accesses(u64::MAX - 1, 8).count(), 1);
    }
}
