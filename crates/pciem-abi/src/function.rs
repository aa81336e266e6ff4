//! Multi-function devices: one device process, up to
//! [`PCIEM_MAX_FUNCTIONS`] functions at devfn 0..7 of one slot.
//!
//! The control file describes function 0, as it always did. Before
//! REGISTER, `PCIEM_IOCTL_SET_FUNCTION` ([`pciem_function`]) with `function
//! = n` selects function `n`, creating it on first selection; the
//! description ioctls that follow (`CREATE_DEVICE`, `ADD_BAR`,
//! `ADD_CAPABILITY`, `SET_CONFIG`, `SET_CONFIG_IMAGE`, `GET_BAR_INFO`,
//! `SET_WATCHPOINT`, `SET_DMA_CHECK`, `SET_BAR_MODE`, `ADD_TRAP_RANGE`,
//! `SET_READ_TIMEOUT`) describe that function, each with its own
//! configuration space and BARs. REGISTER (of any selection) puts every
//! described function on the bus together, sets the Multi-Function bit of
//! function 0's header type, and needs function 0 described: a slot
//! without function 0 is not scanned by Linux. After REGISTER the
//! selection still routes the per-function ioctls (`INJECT_IRQ`,
//! `SET_IRQFD`, `SET_WATCHPOINT`, DMA, `GET_BAR_INFO`) to the function
//! that does them; selecting a function that was never described is then
//! `ENOENT`. A device that never calls `SET_FUNCTION` is the
//! single-function device of ABI 5, unchanged.
//!
//! Every event of function `n` carries `n` in the
//! [`PCIEM_EVENT_FUNCTION_MASK`] bits of its `flags` (0 for function 0, so
//! single-function consumers see no change). The instance file maps
//! function `n`'s BAR `b` at page offset
//! `n * PCIEM_MMAP_FUNCTION_STRIDE + b`, and its read-response page (for
//! its trapped BARs) at `n * PCIEM_MMAP_FUNCTION_STRIDE + 8`: each
//! function's model-answered reads wait in that function's page, and
//! their ids name the function, so `COMPLETE_READ` needs no selection.
//! `START` (the device's) is needed when any function traps a BAR.
//!
//! Not in this version: a multi-function device cannot have a root port,
//! surprise removal or AER injection (`EOPNOTSUPP` with a reason in the
//! kernel log).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Functions of one device: devfn 0..7 of its slot.
pub const PCIEM_MAX_FUNCTIONS: u32 = 8;

/// Shift of the function number in `pciem_event.flags`.
pub const PCIEM_EVENT_FUNCTION_SHIFT: u32 = 8;

/// Bits of `pciem_event.flags` holding the number of the function the
/// event happened to.
pub const PCIEM_EVENT_FUNCTION_MASK: u32 = 0x7 << PCIEM_EVENT_FUNCTION_SHIFT;

/// Page offsets of the instance file's mmap per function: function `n`'s
/// BAR `b` is at page `n * PCIEM_MMAP_FUNCTION_STRIDE + b`.
pub const PCIEM_MMAP_FUNCTION_STRIDE: u64 = 16;

/// Argument of `PCIEM_IOCTL_SET_FUNCTION`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_function {
    /// The function the following ioctls are about, below
    /// [`PCIEM_MAX_FUNCTIONS`].
    pub function: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// The function number an event's `flags` carry.
pub const fn pciem_event_function(flags: u32) -> u32 {
    (flags & PCIEM_EVENT_FUNCTION_MASK) >> PCIEM_EVENT_FUNCTION_SHIFT
}
