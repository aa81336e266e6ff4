//! The rules a watched register ([`Watch`]) must follow, in one place for
//! the kernel module (through the shim), the mock backend and the chardev
//! backend's early check: 1, 2, 4 or 8 bytes wide, naturally aligned,
//! inside a BAR the device has, not watched twice, and at most
//! [`PCIEM_MAX_WATCHPOINTS`] of them (x86 has four debug registers).
//! Each error also names the errno the kernel answers with
//! ([`WatchError::errno`]).

use core::ffi::CStr;

use pciem_abi::PCIEM_MAX_WATCHPOINTS;

use crate::device::Watch;

/// Why a watch is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchError {
    /// The width is not 1, 2, 4 or 8.
    Width,
    /// The offset is not a multiple of the width.
    Misaligned,
    /// The device has no BAR in that slot.
    NoSuchBar,
    /// The register does not lie wholly inside its BAR.
    OutsideBar,
    /// Another watch names the same register.
    Twice,
    /// More watches than [`PCIEM_MAX_WATCHPOINTS`].
    TooMany,
}

impl WatchError {
    /// The description (NUL-terminated for the shim's kernel log).
    pub const fn reason(self) -> &'static CStr {
        match self {
            Self::Width => c"width must be 1, 2, 4 or 8",
            Self::Misaligned => c"offset must be aligned to the width",
            Self::NoSuchBar => c"no such BAR",
            Self::OutsideBar => c"the register lies outside the BAR",
            Self::Twice => c"the register is watched twice",
            Self::TooMany => c"more watches than the kernel has debug registers (4)",
        }
    }

    /// The errno `SET_WATCHPOINT` answers with: `EEXIST` for a register
    /// watched twice, `ENOSPC` when every debug register is taken, `EINVAL`
    /// for the rest.
    pub const fn errno(self) -> i32 {
        match self {
            Self::Twice => 17,   // EEXIST
            Self::TooMany => 28, // ENOSPC
            _ => 22,             // EINVAL
        }
    }

    /// [`Self::reason`] as a `&str`, for error types that carry one.
    pub fn message(self) -> &'static str {
        self.reason().to_str().unwrap_or("invalid watch")
    }
}

/// The register's own shape: `width` 1, 2, 4 or 8 and `offset` a multiple
/// of it. Both are taken as `u64` so that every caller (a [`Watch`]'s
/// `u64` offset and `u8` width, the kernel ABI's `u32`s) converts without
/// loss.
pub const fn check_shape(offset: u64, width: u64) -> Result<(), WatchError> {
    if !matches!(width, 1 | 2 | 4 | 8) {
        return Err(WatchError::Width);
    }
    if !offset.is_multiple_of(width) {
        return Err(WatchError::Misaligned);
    }
    Ok(())
}

/// The register lies inside its BAR of `bar_size` bytes (0: no such BAR).
pub const fn check_in_bar(offset: u64, width: u64, bar_size: u64) -> Result<(), WatchError> {
    if bar_size == 0 {
        return Err(WatchError::NoSuchBar);
    }
    match offset.checked_add(width) {
        Some(end) if end <= bar_size => Ok(()),
        _ => Err(WatchError::OutsideBar),
    }
}

/// A new watch on register `offset` of BAR `bar`, beside the watches
/// already held (`held`, each a `(bar, offset)` pair): refused if one of
/// them names the same register ([`WatchError::Twice`]), else if all
/// [`PCIEM_MAX_WATCHPOINTS`] are taken ([`WatchError::TooMany`]). The
/// kernel's `SET_WATCHPOINT` judges each request by this against its
/// table, and [`check_watches`] judges a device's list by it one watch at
/// a time, in the order a backend sends them, so both refuse the same
/// watch for the same reason.
pub fn check_addition(
    held: impl IntoIterator<Item = (u8, u64)>,
    bar: u8,
    offset: u64,
) -> Result<(), WatchError> {
    let mut count = 0usize;
    for (b, o) in held {
        if b == bar && o == offset {
            return Err(WatchError::Twice);
        }
        count += 1;
    }
    if count >= PCIEM_MAX_WATCHPOINTS as usize {
        return Err(WatchError::TooMany);
    }
    Ok(())
}

/// A device's whole list of watches, `bar_size(slot)` giving each BAR's
/// size (0 for none): the first refused watch and why. Each watch is
/// judged in order, as the kernel judges the `SET_WATCHPOINT` requests a
/// backend sends for the list: its shape, its BAR, then
/// [`check_addition`] against the watches before it.
pub fn check_watches(
    watches: &[Watch],
    bar_size: impl Fn(u8) -> u64,
) -> Result<(), (Watch, WatchError)> {
    for (i, w) in watches.iter().enumerate() {
        let width = u64::from(w.width);
        let earlier = watches.get(..i).unwrap_or(&[]);
        check_shape(w.offset, width)
            .and_then(|()| check_in_bar(w.offset, width, bar_size(w.bar)))
            .and_then(|()| {
                check_addition(earlier.iter().map(|o| (o.bar, o.offset)), w.bar, w.offset)
            })
            .map_err(|e| (*w, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(bar: u8, offset: u64, width: u8) -> Watch {
        Watch { bar, offset, width }
    }

    /// BAR0 of 4 KiB, nothing else.
    fn sizes(bar: u8) -> u64 {
        if bar == 0 {
            4096
        } else {
            0
        }
    }

    fn first_error(ws: &[Watch]) -> Option<WatchError> {
        check_watches(ws, sizes).err().map(|(_, e)| e)
    }

    #[test]
    fn good_watches_pass() {
        assert_eq!(check_watches(&[], sizes), Ok(()));
        let four = [w(0, 0, 1), w(0, 2, 2), w(0, 4, 4), w(0, 4088, 8)];
        assert_eq!(check_watches(&four, sizes), Ok(()));
    }

    #[test]
    fn each_rule_is_enforced() {
        assert_eq!(first_error(&[w(0, 0, 3)]), Some(WatchError::Width));
        assert_eq!(first_error(&[w(0, 0, 0)]), Some(WatchError::Width));
        assert_eq!(first_error(&[w(0, 2, 4)]), Some(WatchError::Misaligned));
        assert_eq!(first_error(&[w(1, 0, 4)]), Some(WatchError::NoSuchBar));
        assert_eq!(first_error(&[w(0, 4096, 4)]), Some(WatchError::OutsideBar));
        assert_eq!(first_error(&[w(0, 4092, 8)]), Some(WatchError::Misaligned));
        assert_eq!(
            first_error(&[w(0, 0, 4), w(0, 0, 2)]),
            Some(WatchError::Twice)
        );
        let five: [Watch; 5] = core::array::from_fn(|i| w(0, i as u64 * 4, 4));
        assert_eq!(
            check_watches(&five, sizes),
            Err((w(0, 16, 4), WatchError::TooMany))
        );
    }

    #[test]
    fn an_addition_is_judged_against_the_held_watches() {
        let held = [(0u8, 0u64), (0, 8), (2, 0)];
        assert_eq!(check_addition(held, 0, 4), Ok(()));
        assert_eq!(check_addition(held, 1, 0), Ok(()));
        assert_eq!(check_addition(held, 0, 8), Err(WatchError::Twice));
        assert_eq!(check_addition(held, 2, 0), Err(WatchError::Twice));
        let full = [(0u8, 0u64), (0, 4), (0, 8), (0, 12)];
        assert_eq!(check_addition(full, 0, 16), Err(WatchError::TooMany));
        // Naming a held register is the better reason even when full.
        assert_eq!(check_addition(full, 0, 4), Err(WatchError::Twice));
        assert_eq!(check_addition([], 5, u64::MAX), Ok(()));
    }

    #[test]
    fn a_list_is_judged_one_watch_at_a_time() {
        // The fifth watch is refused for what is wrong with it first: a
        // bad width before the table being full, as SET_WATCHPOINT does.
        let mut five: [Watch; 5] = core::array::from_fn(|i| w(0, i as u64 * 4, 4));
        five[4].width = 3;
        assert_eq!(
            check_watches(&five, sizes),
            Err((five[4], WatchError::Width))
        );
        five[4] = w(0, 4, 4);
        assert_eq!(
            check_watches(&five, sizes),
            Err((five[4], WatchError::Twice))
        );
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        assert_eq!(check_shape(u64::MAX, 1), Ok(()));
        assert_eq!(check_shape(0, u64::MAX), Err(WatchError::Width));
        assert_eq!(check_in_bar(u64::MAX - 8, 8, u64::MAX), Ok(()));
        // Ends at 2^64: past any BAR, and no wrap to a small end.
        assert_eq!(
            check_in_bar(u64::MAX - 7, 8, u64::MAX),
            Err(WatchError::OutsideBar)
        );
        assert_eq!(
            check_in_bar(u64::MAX, 8, u64::MAX),
            Err(WatchError::OutsideBar)
        );
    }

    #[test]
    fn every_error_has_a_message() {
        for e in [
            WatchError::Width,
            WatchError::Misaligned,
            WatchError::NoSuchBar,
            WatchError::OutsideBar,
            WatchError::Twice,
            WatchError::TooMany,
        ] {
            assert!(!e.message().is_empty() && e.message() != "invalid watch");
        }
    }
}
