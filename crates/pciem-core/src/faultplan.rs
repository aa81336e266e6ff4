//! A device's fault plan: the rules that make chosen driver reads time out
//! and chosen DMA reads of the model come back poisoned, so a driver's
//! timeout and retry paths run on demand.
//!
//! One implementation for every host: the kernel module keeps a
//! [`FaultPlan`] per function (through the shim) and the mock backend keeps
//! one in its host state, so which access a rule hits, how its count runs
//! down and which rules are refused is the same everywhere.
//!
//! A rule covers a range of bytes: BAR offsets of one trapped BAR for a
//! [`FaultKind::ReadTimeout`], bus addresses for a [`FaultKind::DmaPoison`].
//! An access hits a rule when any of its bytes lies in the range. The
//! first armed rule (in the order they were added) that an access hits
//! takes the hit; a rule with a count disarms itself at its last hit and
//! its slot is free again.

use core::ffi::CStr;

use pciem_abi::{
    pciem_fault_rule, PCIEM_FAULT_CLEAR, PCIEM_FAULT_DMA_POISON, PCIEM_FAULT_FLAG_AER,
    PCIEM_FAULT_READ_TIMEOUT, PCIEM_MAX_BARS, PCIEM_MAX_FAULT_RULES,
};

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The driver's loads from this range of trapped BAR `bar` complete as
    /// completion timeouts: all-ones, the model is not asked.
    ReadTimeout {
        /// The BAR slot (must be trapped).
        bar: u8,
    },
    /// The model's DMA reads that touch this range of bus addresses fail
    /// as poisoned (the kernel's `EIO`, [`crate::HostError::Poisoned`]).
    DmaPoison,
}

/// One rule of a fault plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultRule {
    /// What it does.
    pub kind: FaultKind,
    /// First byte of the range (a BAR offset or a bus address).
    pub start: u64,
    /// Bytes in the range (at least 1).
    pub len: u64,
    /// Hits before the rule disarms itself; 0: until cleared.
    pub count: u32,
    /// Each hit of a [`FaultKind::DmaPoison`] rule is also reported through
    /// AER (Poisoned TLP Received; [`PCIEM_FAULT_FLAG_AER`]).
    pub aer: bool,
}

impl FaultRule {
    /// Loads of BAR `bar` touching `[offset, offset + len)` time out
    /// (`count` times, 0: until cleared).
    pub const fn read_timeout(bar: u8, offset: u64, len: u64, count: u32) -> Self {
        FaultRule {
            kind: FaultKind::ReadTimeout { bar },
            start: offset,
            len,
            count,
            aer: false,
        }
    }

    /// DMA reads touching bus addresses `[addr, addr + len)` are poisoned
    /// (`count` times, 0: until cleared).
    pub const fn dma_poison(addr: u64, len: u64, count: u32) -> Self {
        FaultRule {
            kind: FaultKind::DmaPoison,
            start: addr,
            len,
            count,
            aer: false,
        }
    }

    /// This rule, with each hit also reported through AER (DMA_POISON
    /// rules only; [`PCIEM_FAULT_FLAG_AER`]).
    pub const fn with_aer(self) -> Self {
        FaultRule { aer: true, ..self }
    }

    /// The ABI form of this rule.
    pub const fn to_abi(&self) -> pciem_fault_rule {
        let (kind, bar) = match self.kind {
            FaultKind::ReadTimeout { bar } => (PCIEM_FAULT_READ_TIMEOUT, bar as u32),
            FaultKind::DmaPoison => (PCIEM_FAULT_DMA_POISON, 0),
        };
        pciem_fault_rule {
            kind,
            bar,
            addr: self.start,
            len: self.len,
            count: self.count,
            flags: if self.aer { PCIEM_FAULT_FLAG_AER } else { 0 },
        }
    }

    /// Whether `[addr, addr + len)` shares a byte with the rule's range
    /// (an empty access touches nothing).
    const fn overlaps(&self, addr: u64, len: u64) -> bool {
        if len == 0 {
            return false;
        }
        // Both ranges are inclusive at `last`, so nothing overflows.
        let last = addr.saturating_add(len - 1);
        let rule_last = self.start.saturating_add(self.len - 1);
        addr <= rule_last && self.start <= last
    }
}

/// What [`FaultPlan::apply`] was asked to do, decoded from the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultRequest {
    /// Arm a rule.
    Arm(FaultRule),
    /// Clear every rule.
    Clear,
}

impl FaultRequest {
    /// Decode and check the ABI struct's own fields (kind, flags, BAR
    /// number, range): what can be judged without knowing the device.
    pub fn from_abi(r: &pciem_fault_rule) -> Result<Self, FaultError> {
        if r.flags & !PCIEM_FAULT_FLAG_AER != 0 {
            return Err(FaultError::Flags);
        }
        let aer = r.flags & PCIEM_FAULT_FLAG_AER != 0;
        let kind = match r.kind {
            PCIEM_FAULT_CLEAR => {
                if r.bar != 0 || r.addr != 0 || r.len != 0 || r.count != 0 || aer {
                    return Err(FaultError::ClearWithFields);
                }
                return Ok(FaultRequest::Clear);
            }
            PCIEM_FAULT_READ_TIMEOUT => {
                if aer {
                    return Err(FaultError::AerNotForReads);
                }
                if r.bar >= PCIEM_MAX_BARS {
                    return Err(FaultError::NoSuchBar);
                }
                FaultKind::ReadTimeout { bar: r.bar as u8 }
            }
            PCIEM_FAULT_DMA_POISON => {
                if r.bar != 0 {
                    return Err(FaultError::BarForDma);
                }
                FaultKind::DmaPoison
            }
            _ => return Err(FaultError::UnknownKind),
        };
        if r.len == 0 {
            return Err(FaultError::Empty);
        }
        if r.addr.checked_add(r.len - 1).is_none() {
            return Err(FaultError::Wraps);
        }
        Ok(FaultRequest::Arm(FaultRule {
            kind,
            start: r.addr,
            len: r.len,
            count: r.count,
            aer,
        }))
    }
}

/// What a BAR slot is, for checking a [`FaultKind::ReadTimeout`] rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BarState {
    /// The device has no BAR in that slot.
    Absent,
    /// A BAR of this size, directly mapped (watch mode): loads never reach
    /// the host, so none can be made to time out.
    Direct(u64),
    /// A trapped BAR of this size.
    Trapped(u64),
}

/// Why a rule is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultError {
    /// `kind` is not a `PCIEM_FAULT_*` value.
    UnknownKind,
    /// `flags` has bits set that are not defined.
    Flags,
    /// [`PCIEM_FAULT_FLAG_AER`] on a READ_TIMEOUT rule (not implemented).
    AerNotForReads,
    /// A clear request with other fields set.
    ClearWithFields,
    /// A zero-length range.
    Empty,
    /// The range runs past the end of the address space.
    Wraps,
    /// A DMA rule names a BAR.
    BarForDma,
    /// The BAR slot is out of range or unused.
    NoSuchBar,
    /// The BAR is directly mapped, not trapped.
    NotTrapped,
    /// The range does not lie inside the BAR.
    OutsideBar,
    /// [`PCIEM_MAX_FAULT_RULES`] rules are armed already.
    Full,
}

impl FaultError {
    /// The description (NUL-terminated for the shim's kernel log).
    pub const fn reason(self) -> &'static CStr {
        match self {
            Self::UnknownKind => c"unknown fault kind",
            Self::Flags => c"flags must be zero or PCIEM_FAULT_FLAG_AER",
            Self::AerNotForReads => c"PCIEM_FAULT_FLAG_AER is for DMA_POISON rules only",
            Self::ClearWithFields => c"a CLEAR request must have every other field zero",
            Self::Empty => c"the range is empty (len 0)",
            Self::Wraps => c"the range wraps around the address space",
            Self::BarForDma => c"a DMA_POISON rule must have bar 0",
            Self::NoSuchBar => c"no such BAR",
            Self::NotTrapped => {
                c"the BAR is not trapped (only loads from trapped BARs can time out)"
            }
            Self::OutsideBar => c"the range lies outside the BAR",
            Self::Full => c"the device's fault table is full (8 rules)",
        }
    }

    /// [`Self::reason`] as a `&str`.
    pub fn message(self) -> &'static str {
        self.reason().to_str().unwrap_or("invalid fault rule")
    }

    /// The errno the kernel answers with: `ENOSPC` for a full table,
    /// `EINVAL` otherwise.
    pub const fn errno(self) -> i32 {
        match self {
            Self::Full => 28,
            _ => 22,
        }
    }
}

impl core::fmt::Display for FaultError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

/// AER Uncorrectable Error Status bit of a poisoned read: Poisoned TLP
/// Received (bit 12), what a [`FaultRule::aer`] hit reports (non-fatal).
pub const AER_POISONED_TLP: u32 = 1 << 12;

/// The Header Log of a poisoned read's AER report: the header of the
/// completion the device received for its read of `len` bytes at `addr`,
/// a CplD with EP (poisoned) set, from the root complex (completer 0) to
/// `requester` (the device's bus/device/function).
pub const fn poisoned_completion_header(requester: u16, addr: u64, len: u64) -> [u32; 4] {
    // Length in dwords (10 bits, 0 meaning 1024) and Byte Count (12 bits).
    let dwords = if len >= 4096 {
        0
    } else {
        len.div_ceil(4) as u32
    };
    let bytes = if len >= 4096 { 0 } else { len as u32 };
    [
        0x4a00_4000 | (dwords & 0x3ff),
        bytes & 0xfff,
        (requester as u32) << 16 | (addr & 0x7f) as u32,
        0,
    ]
}

/// An armed rule and the hits it has left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    rule: FaultRule,
    /// Hits before it disarms; 0: never.
    left: u32,
}

/// Number of rule slots (the ABI's [`PCIEM_MAX_FAULT_RULES`]).
const SLOTS: usize = PCIEM_MAX_FAULT_RULES as usize;

/// A device's armed fault rules. Fixed size, no allocation: the kernel
/// keeps one in memory it allocates and calls it with interrupts off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultPlan {
    slots: [Option<Slot>; SLOTS],
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultPlan {
    /// A plan with no rules.
    pub const fn new() -> Self {
        FaultPlan {
            slots: [None; SLOTS],
        }
    }

    /// Whether no rule is armed (the hosts' fast path skips the plan then).
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The armed rules, in the order they take hits, with the hits each
    /// has left (0: unlimited).
    pub fn rules(&self) -> impl Iterator<Item = (FaultRule, u32)> + '_ {
        self.slots.iter().flatten().map(|s| (s.rule, s.left))
    }

    /// Remove every rule.
    pub fn clear(&mut self) {
        self.slots = [None; SLOTS];
    }

    /// Arm `rule`, checking a read-timeout rule against its BAR
    /// (`bar(slot)` says what the device has there).
    pub fn arm(&mut self, rule: FaultRule, bar: impl Fn(u8) -> BarState) -> Result<(), FaultError> {
        if rule.len == 0 {
            return Err(FaultError::Empty);
        }
        if rule.aer && rule.kind != FaultKind::DmaPoison {
            return Err(FaultError::AerNotForReads);
        }
        let end = rule
            .start
            .checked_add(rule.len - 1)
            .ok_or(FaultError::Wraps)?;
        if let FaultKind::ReadTimeout { bar: slot } = rule.kind {
            match bar(slot) {
                BarState::Absent => return Err(FaultError::NoSuchBar),
                BarState::Direct(_) => return Err(FaultError::NotTrapped),
                BarState::Trapped(size) => {
                    if end >= size {
                        return Err(FaultError::OutsideBar);
                    }
                }
            }
        }
        let free = self
            .slots
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(FaultError::Full)?;
        *free = Some(Slot {
            rule,
            left: rule.count,
        });
        Ok(())
    }

    /// Carry out an ABI request: check it, then arm or clear.
    pub fn apply(
        &mut self,
        req: &pciem_fault_rule,
        bar: impl Fn(u8) -> BarState,
    ) -> Result<(), FaultError> {
        match FaultRequest::from_abi(req)? {
            FaultRequest::Clear => {
                self.clear();
                Ok(())
            }
            FaultRequest::Arm(rule) => self.arm(rule, bar),
        }
    }

    /// The first armed rule matching `pred`, charged one hit (disarmed at
    /// its last): the rule, or `None` when nothing matched.
    fn take_hit(&mut self, pred: impl Fn(&FaultRule) -> bool) -> Option<FaultRule> {
        for entry in self.slots.iter_mut() {
            let Some(slot) = entry else { continue };
            if !pred(&slot.rule) {
                continue;
            }
            let rule = slot.rule;
            match slot.left {
                0 => {}
                1 => *entry = None,
                n => slot.left = n - 1,
            }
            return Some(rule);
        }
        None
    }

    /// A driver load of `width` bytes at `offset` of BAR `bar`: whether it
    /// times out (and the rule that made it, charged one hit).
    pub fn hit_read(&mut self, bar: u8, offset: u64, width: u64) -> Option<FaultRule> {
        self.take_hit(|r| r.kind == FaultKind::ReadTimeout { bar } && r.overlaps(offset, width))
    }

    /// A DMA read by the model of `len` bytes at bus address `addr`:
    /// whether it is poisoned (and the rule, charged one hit).
    pub fn hit_dma_read(&mut self, addr: u64, len: u64) -> Option<FaultRule> {
        self.take_hit(|r| r.kind == FaultKind::DmaPoison && r.overlaps(addr, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trapped_bar0(slot: u8) -> BarState {
        match slot {
            0 => BarState::Trapped(0x1000),
            2 => BarState::Direct(0x1000),
            _ => BarState::Absent,
        }
    }

    #[test]
    fn a_counted_rule_disarms_after_its_hits() {
        let mut p = FaultPlan::new();
        p.arm(FaultRule::dma_poison(0x1000, 0x1000, 2), trapped_bar0)
            .unwrap();
        assert!(p.hit_dma_read(0x0, 0x1000).is_none(), "ends just before");
        assert!(p.hit_dma_read(0x1fff, 1).is_some());
        assert!(p.hit_dma_read(0xff0, 0x20).is_some(), "straddles the start");
        assert!(
            p.hit_dma_read(0x1000, 8).is_none(),
            "two hits, then disarmed"
        );
        assert!(p.is_empty());
    }

    #[test]
    fn an_uncounted_rule_stays_until_cleared() {
        let mut p = FaultPlan::new();
        p.arm(FaultRule::read_timeout(0, 0x10, 4, 0), trapped_bar0)
            .unwrap();
        for _ in 0..100 {
            assert!(p.hit_read(0, 0x10, 4).is_some());
        }
        assert!(p.hit_read(0, 0x14, 4).is_none());
        assert!(p.hit_read(1, 0x10, 4).is_none(), "another BAR");
        assert!(p.hit_dma_read(0x10, 4).is_none(), "another kind");
        p.clear();
        assert!(p.hit_read(0, 0x10, 4).is_none());
    }

    #[test]
    fn the_first_matching_rule_takes_the_hit() {
        let mut p = FaultPlan::new();
        p.arm(FaultRule::dma_poison(0, 0x100, 1), trapped_bar0)
            .unwrap();
        p.arm(FaultRule::dma_poison(0, 0x100, 0), trapped_bar0)
            .unwrap();
        assert_eq!(p.hit_dma_read(0, 8).unwrap().count, 1);
        assert_eq!(p.hit_dma_read(0, 8).unwrap().count, 0);
        assert_eq!(p.rules().count(), 1);
    }

    #[test]
    fn read_timeouts_need_a_trapped_bar_and_a_range_inside_it() {
        let mut p = FaultPlan::new();
        let arm = |p: &mut FaultPlan, bar, off, len| {
            p.arm(FaultRule::read_timeout(bar, off, len, 1), trapped_bar0)
        };
        assert_eq!(arm(&mut p, 1, 0, 4), Err(FaultError::NoSuchBar));
        assert_eq!(arm(&mut p, 2, 0, 4), Err(FaultError::NotTrapped));
        assert_eq!(arm(&mut p, 0, 0xffc, 8), Err(FaultError::OutsideBar));
        assert_eq!(arm(&mut p, 0, 0, 0), Err(FaultError::Empty));
        assert_eq!(arm(&mut p, 0, 0xffc, 4), Ok(()));
        assert!(p.hit_read(0, 0xff8, 8).is_some());
    }

    #[test]
    fn the_table_holds_eight_rules() {
        let mut p = FaultPlan::new();
        for i in 0..PCIEM_MAX_FAULT_RULES as u64 {
            p.arm(FaultRule::dma_poison(i, 1, 0), trapped_bar0).unwrap();
        }
        assert_eq!(
            p.arm(FaultRule::dma_poison(0, 1, 0), trapped_bar0),
            Err(FaultError::Full)
        );
        assert_eq!(FaultError::Full.errno(), 28);
        p.clear();
        for i in 0..PCIEM_MAX_FAULT_RULES as u64 {
            p.arm(FaultRule::dma_poison(i, 1, 1), trapped_bar0).unwrap();
        }
        // A rule disarmed by its last hit frees its slot.
        assert!(p.hit_dma_read(3, 1).is_some());
        p.arm(FaultRule::dma_poison(0x100, 1, 1), trapped_bar0)
            .unwrap();
    }

    #[test]
    fn the_abi_request_is_checked_field_by_field() {
        let ok = FaultRule::dma_poison(0x1000, 0x200, 1).to_abi();
        assert_eq!(
            FaultRequest::from_abi(&ok),
            Ok(FaultRequest::Arm(FaultRule::dma_poison(0x1000, 0x200, 1)))
        );
        let bad = |f: fn(&mut pciem_fault_rule)| {
            let mut r = ok;
            f(&mut r);
            FaultRequest::from_abi(&r).unwrap_err()
        };
        assert_eq!(bad(|r| r.kind = 9), FaultError::UnknownKind);
        assert_eq!(bad(|r| r.flags = 2), FaultError::Flags);
        assert_eq!(
            bad(|r| {
                r.kind = PCIEM_FAULT_READ_TIMEOUT;
                r.flags = PCIEM_FAULT_FLAG_AER;
            }),
            FaultError::AerNotForReads
        );
        let aer = FaultRule::dma_poison(0x1000, 8, 1).with_aer();
        assert_eq!(
            FaultRequest::from_abi(&aer.to_abi()),
            Ok(FaultRequest::Arm(aer))
        );
        assert_eq!(bad(|r| r.len = 0), FaultError::Empty);
        assert_eq!(bad(|r| r.addr = u64::MAX), FaultError::Wraps);
        assert_eq!(bad(|r| r.bar = 1), FaultError::BarForDma);
        assert_eq!(
            bad(|r| {
                r.kind = PCIEM_FAULT_READ_TIMEOUT;
                r.bar = 6;
            }),
            FaultError::NoSuchBar
        );
        assert_eq!(
            bad(|r| r.kind = PCIEM_FAULT_CLEAR),
            FaultError::ClearWithFields
        );
        assert_eq!(
            FaultRequest::from_abi(&pciem_fault_rule::default()),
            Ok(FaultRequest::Clear)
        );
        // A range ending at the last address is fine.
        let mut top = ok;
        top.addr = u64::MAX;
        top.len = 1;
        assert!(FaultRequest::from_abi(&top).is_ok());
        let mut p = FaultPlan::new();
        p.apply(&top, trapped_bar0).unwrap();
        assert!(p.hit_dma_read(u64::MAX, 1).is_some());
    }

    #[test]
    fn the_poisoned_completion_header_names_the_read() {
        assert_eq!(
            poisoned_completion_header(0x0100, 0x1000, 8),
            [0x4a00_4002, 8, 0x0100_0000, 0]
        );
        assert_eq!(
            poisoned_completion_header(0x0008, 0x1234_5675, 3),
            [0x4a00_4001, 3, 0x0008_0075, 0]
        );
        // 4 KiB and more: Length and Byte Count wrap to 0, as on the wire.
        assert_eq!(
            poisoned_completion_header(1, 0, 4096),
            [0x4a00_4000, 0, 0x0001_0000, 0]
        );
    }

    #[test]
    fn every_error_has_a_reason() {
        for e in [
            FaultError::UnknownKind,
            FaultError::Flags,
            FaultError::AerNotForReads,
            FaultError::ClearWithFields,
            FaultError::Empty,
            FaultError::Wraps,
            FaultError::BarForDma,
            FaultError::NoSuchBar,
            FaultError::NotTrapped,
            FaultError::OutsideBar,
            FaultError::Full,
        ] {
            assert!(!e.message().is_empty());
            assert!(e.errno() == 22 || e.errno() == 28);
        }
    }
}
