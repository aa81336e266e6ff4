//! The functions of a multi-function device (ABI 6): which sets of
//! function numbers a device may have, the rules the kernel module
//! enforces for them, and how an event names its function.
//!
//! One device process may define up to [`MAX_FUNCTIONS`] functions (devfn
//! 0..7 of one slot), each with its own configuration space, BARs,
//! interrupts, events and trapped BARs. The backends check a model's
//! functions with [`FunctionSet::new`] before anything exists, so a bad set is refused with the same reason on the mock and
//! on `/dev/pciem` (where the kernel would refuse it too, later, with an
//! errno: see [`FunctionError::errno`]).
//!
//! ```
//! use pciem_core::function::{FunctionError, FunctionSet};
//!
//! let set = FunctionSet::new([0, 1, 3]).unwrap();
//! assert!(set.is_multi() && set.contains(3) && !set.contains(2));
//! assert_eq!(set.iter().collect::<Vec<_>>(), [0, 1, 3]);
//! assert_eq!(FunctionSet::new([1, 2]), Err(FunctionError::NoFunctionZero));
//! assert_eq!(FunctionSet::new([0, 8]), Err(FunctionError::OutOfRange(8)));
//! assert_eq!(FunctionSet::new([0, 1, 1]), Err(FunctionError::Duplicate(1)));
//! assert_eq!(set.check(2), Err(FunctionError::NoSuchFunction(2)));
//! ```

use pciem_abi::{
    pciem_event, pciem_event_function, PCIEM_EVENT_FUNCTION_MASK, PCIEM_MAX_FUNCTIONS,
};

/// Functions of one device: numbers 0..7.
pub const MAX_FUNCTIONS: u8 = PCIEM_MAX_FUNCTIONS as u8;

/// Why a set of functions, or an action for one, is refused. Each is a
/// row of the kernel's bad-input table (`docs/multi-function.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum FunctionError {
    /// A function number of 8 or above (the kernel: `SET_FUNCTION`
    /// refuses it with `EINVAL`).
    #[error("function {0}: a slot has functions 0..7")]
    OutOfRange(u8),
    /// A function described twice (the kernel: `CREATE_DEVICE` again,
    /// `EEXIST`).
    #[error("function {0} is described twice")]
    Duplicate(u8),
    /// Functions without function 0, or no function at all (the kernel:
    /// `REGISTER` with a hole at 0, `EINVAL`): Linux does not scan a slot
    /// without function 0.
    #[error("function 0 is not described (Linux does not scan a slot without it)")]
    NoFunctionZero,
    /// Acting for a function the device does not have (the kernel:
    /// `SET_FUNCTION` after `REGISTER`, `ENOENT`).
    #[error("function {0} does not exist in this device")]
    NoSuchFunction(u8),
    /// A root port above a multi-function device (the kernel:
    /// `REGISTER`, `EOPNOTSUPP`): not in this version.
    #[error("a multi-function device cannot have a root port (not in this version)")]
    RootPort,
}

impl FunctionError {
    /// The errno the kernel module answers for the same request.
    pub const fn errno(&self) -> i32 {
        // The Linux errno numbers (asm-generic/errno-base.h, errno.h).
        const ENOENT: i32 = 2;
        const EEXIST: i32 = 17;
        const EINVAL: i32 = 22;
        const EOPNOTSUPP: i32 = 95;
        match self {
            FunctionError::OutOfRange(_) | FunctionError::NoFunctionZero => EINVAL,
            FunctionError::Duplicate(_) => EEXIST,
            FunctionError::NoSuchFunction(_) => ENOENT,
            FunctionError::RootPort => EOPNOTSUPP,
        }
    }
}

/// A valid set of function numbers: function 0 and up to seven of 1..7,
/// each once (holes are fine, as on real hardware).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FunctionSet(u8);

impl FunctionSet {
    /// The set of `numbers`, checked in order: each below
    /// [`MAX_FUNCTIONS`], none twice, function 0 among them.
    pub fn new(numbers: impl IntoIterator<Item = u8>) -> Result<Self, FunctionError> {
        let mut bits = 0u8;
        for n in numbers {
            if n >= MAX_FUNCTIONS {
                return Err(FunctionError::OutOfRange(n));
            }
            if bits & (1 << n) != 0 {
                return Err(FunctionError::Duplicate(n));
            }
            bits |= 1 << n;
        }
        if bits & 1 == 0 {
            return Err(FunctionError::NoFunctionZero);
        }
        Ok(Self(bits))
    }

    /// Whether function `n` is in the set.
    pub const fn contains(self, n: u8) -> bool {
        n < MAX_FUNCTIONS && self.0 & (1 << n) != 0
    }

    /// `Ok` if function `n` is in the set, else why not.
    pub const fn check(self, n: u8) -> Result<(), FunctionError> {
        if n >= MAX_FUNCTIONS {
            Err(FunctionError::OutOfRange(n))
        } else if self.contains(n) {
            Ok(())
        } else {
            Err(FunctionError::NoSuchFunction(n))
        }
    }

    /// Whether the device is multi-function (has a function besides 0):
    /// only then does the kernel set the Multi-Function bit.
    pub const fn is_multi(self) -> bool {
        self.0 & !1 != 0
    }

    /// How many functions.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Never true: function 0 is always there.
    pub const fn is_empty(self) -> bool {
        false
    }

    /// The function numbers, ascending.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..MAX_FUNCTIONS).filter(move |&n| self.contains(n))
    }
}

/// The function an event happened to (its `flags` bits 8..10).
pub const fn event_function(event: &pciem_event) -> u8 {
    pciem_event_function(event.flags) as u8
}

/// The event as its function's model sees it: the function bits of
/// `flags` cleared, so every model reads its events as a single-function
/// device's (a `flags` compared whole, such as an error kind, keeps its
/// meaning).
pub const fn untagged(event: &pciem_event) -> pciem_event {
    let mut ev = *event;
    ev.flags &= !PCIEM_EVENT_FUNCTION_MASK;
    ev
}

/// The event tagged with `function`, as the kernel publishes a function's
/// events on the shared ring (function 0's are unchanged).
pub const fn tagged(event: &pciem_event, function: u8) -> pciem_event {
    let mut ev = untagged(event);
    ev.flags |=
        ((function as u32) << pciem_abi::PCIEM_EVENT_FUNCTION_SHIFT) & PCIEM_EVENT_FUNCTION_MASK;
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use pciem_abi::{PCIEM_ERROR_READ_TIMEOUT, PCIEM_EVENT_FLAG_POSTED};

    #[test]
    fn sets_follow_the_kernels_rules() {
        let s = FunctionSet::new([0, 1, 3, 5]).unwrap();
        assert_eq!(s.len(), 4);
        assert!(s.is_multi());
        assert!(!s.is_empty());
        assert_eq!(s.check(5), Ok(()));
        assert_eq!(s.check(4), Err(FunctionError::NoSuchFunction(4)));
        assert_eq!(s.check(9), Err(FunctionError::OutOfRange(9)));
        assert!(!s.contains(200));
        let one = FunctionSet::new([0]).unwrap();
        assert!(!one.is_multi());
        assert_eq!(FunctionSet::new([]), Err(FunctionError::NoFunctionZero));
        assert_eq!(
            FunctionSet::new([3, 0, 3]),
            Err(FunctionError::Duplicate(3))
        );
        assert_eq!(
            FunctionSet::new([0, 255]),
            Err(FunctionError::OutOfRange(255))
        );
        // The errnos of the kernel's table.
        assert_eq!(FunctionError::OutOfRange(8).errno(), 22);
        assert_eq!(FunctionError::Duplicate(1).errno(), 17);
        assert_eq!(FunctionError::NoFunctionZero.errno(), 22);
        assert_eq!(FunctionError::NoSuchFunction(2).errno(), 2);
        assert_eq!(FunctionError::RootPort.errno(), 95);
    }

    #[test]
    fn tags_round_trip_and_leave_the_other_flags() {
        let ev = pciem_event {
            flags: PCIEM_EVENT_FLAG_POSTED,
            ..Default::default()
        };
        for f in 0..MAX_FUNCTIONS {
            let t = tagged(&ev, f);
            assert_eq!(event_function(&t), f);
            assert_eq!(untagged(&t), ev);
        }
        let err = pciem_event {
            flags: PCIEM_ERROR_READ_TIMEOUT,
            ..Default::default()
        };
        assert_eq!(untagged(&tagged(&err, 6)).flags, PCIEM_ERROR_READ_TIMEOUT);
    }
}
