//! Trap mode: every access the kernel makes through a mapping of a BAR
//! faults and is emulated, and chosen reads are answered by the model.
//!
//! A BAR is in *watch* mode unless `PCIEM_IOCTL_SET_BAR_MODE` puts it in
//! [`PCIEM_BAR_MODE_TRAP`] before REGISTER. In trap mode:
//! - every store the kernel makes through any mapping of the BAR becomes a
//!   `PCIEM_EVENT_MMIO_WRITE` event (offset, width, value; program order per
//!   CPU) and is stored into the BAR's backing, unless a
//!   [`pciem_trap_range`] with [`PCIEM_TRAP_WRITE_NO_STORE`] covers it
//!   (doorbell style: delivered, never stored);
//! - every load is served from the BAR's backing (cheap, no event), unless
//!   a range with [`PCIEM_TRAP_READ_NOTIFY`] covers it (served from the
//!   backing and reported as a posted `PCIEM_EVENT_MMIO_READ` carrying the
//!   value), or one with [`PCIEM_TRAP_READ_MODEL`] (the faulting CPU
//!   publishes a `PCIEM_EVENT_MMIO_READ` without the POSTED flag and waits
//!   for the model's answer, identified by the event's `id`).
//!
//! A model answers a read either by writing the read-response page (the
//! instance file's mmap at page offset [`PCIEM_MMAP_READ_RESPONSES_PGOFF`]):
//! slot `id % PCIEM_READ_SLOTS`, `value` first, then `id` with release
//! ordering; or by `PCIEM_IOCTL_COMPLETE_READ`. A read not answered within
//! the device's read timeout (`PCIEM_IOCTL_SET_READ_TIMEOUT`, default
//! [`PCIEM_READ_TIMEOUT_DEFAULT_US`]) completes all-ones, like a PCIe
//! completion timeout, and is counted.
//!
//! A device with a trapped BAR is put on the bus in two steps: REGISTER
//! creates it (and returns the instance file), `PCIEM_IOCTL_START` lets
//! drivers bind, from a kernel worker, once the device process is ready to
//! answer the reads a driver's probe makes.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Watch mode (the default): the BAR is plain memory shared with the
/// device process; writes to at most four registers are reported by
/// hardware watchpoints.
pub const PCIEM_BAR_MODE_WATCH: u32 = 0;
/// Trap mode: every kernel access through a mapping of the BAR faults and
/// is emulated (see the module documentation).
pub const PCIEM_BAR_MODE_TRAP: u32 = 1;

/// Argument of `PCIEM_IOCTL_SET_BAR_MODE`: the access mode of one BAR,
/// before REGISTER.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_bar_mode {
    /// BAR slot, 0..=5 (the first slot of a 64-bit BAR).
    pub bar_index: u32,
    /// `PCIEM_BAR_MODE_*`.
    pub mode: u32,
    /// Must be zero.
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// Loads covered by the range are answered synchronously by the model.
pub const PCIEM_TRAP_READ_MODEL: u32 = 0x1;
/// Loads covered by the range are served from the backing and reported as
/// posted `MMIO_READ` events carrying the value read.
pub const PCIEM_TRAP_READ_NOTIFY: u32 = 0x2;
/// Stores covered by the range are delivered as events but not stored into
/// the backing.
pub const PCIEM_TRAP_WRITE_NO_STORE: u32 = 0x4;
/// The bits of [`pciem_trap_range::flags`] that carry meaning.
pub const PCIEM_TRAP_FLAGS_MASK: u32 = 0x7;

/// Upper bound on the number of trap ranges of one device.
pub const PCIEM_MAX_TRAP_RANGES: u32 = 32;

bitflags::bitflags! {
    /// [`pciem_trap_range::flags`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct TrapFlags: u32 {
        /// See [`PCIEM_TRAP_READ_MODEL`].
        const READ_MODEL = PCIEM_TRAP_READ_MODEL;
        /// See [`PCIEM_TRAP_READ_NOTIFY`].
        const READ_NOTIFY = PCIEM_TRAP_READ_NOTIFY;
        /// See [`PCIEM_TRAP_WRITE_NO_STORE`].
        const WRITE_NO_STORE = PCIEM_TRAP_WRITE_NO_STORE;
    }
}

/// Argument of `PCIEM_IOCTL_ADD_TRAP_RANGE`: how accesses to a range of a
/// trapped BAR are handled, before REGISTER. Ranges of one BAR must not
/// overlap; READ_MODEL and READ_NOTIFY exclude each other.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_trap_range {
    /// BAR slot; the BAR must be in trap mode.
    pub bar_index: u32,
    /// `PCIEM_TRAP_*`.
    pub flags: u32,
    /// First byte of the range in the BAR.
    pub offset: u64,
    /// Length in bytes, at least 1; the range lies inside the BAR.
    pub length: u64,
}

/// Default read timeout (10 ms).
pub const PCIEM_READ_TIMEOUT_DEFAULT_US: u32 = 10_000;
/// Largest read timeout accepted (1 s): the faulting CPU spins meanwhile.
pub const PCIEM_READ_TIMEOUT_MAX_US: u32 = 1_000_000;

/// Argument of `PCIEM_IOCTL_SET_READ_TIMEOUT`: how long a model-answered
/// read waits before it completes all-ones.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_read_timeout {
    /// Microseconds, 1..=[`PCIEM_READ_TIMEOUT_MAX_US`].
    pub timeout_us: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// Argument of `PCIEM_IOCTL_COMPLETE_READ`: the answer to the
/// `MMIO_READ` event whose `id` this is (the same effect as writing the
/// read-response slot).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_read_completion {
    /// The event's `id`.
    pub id: u64,
    /// The value read, in the low `size` bytes.
    pub value: u64,
}

/// Number of read-response slots (one page of 64-byte slots).
pub const PCIEM_READ_SLOTS: usize = 64;

/// Page offset of the read-response page in the instance file's mmap (the
/// BARs are at pages 0..=5). Function `n` of a multi-function device has
/// its own at `n * PCIEM_MMAP_FUNCTION_STRIDE + 8`.
pub const PCIEM_MMAP_READ_RESPONSES_PGOFF: u64 = 8;

/// One read-response slot. The kernel allocates slot `id % PCIEM_READ_SLOTS`
/// to a waiting read; the model writes `value`, then `id` (release).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_read_response {
    /// The id being answered; the kernel takes `value` when this equals the
    /// id it waits for.
    pub id: u64,
    /// The value read.
    pub value: u64,
    /// Padding to a cache line; ignored.
    pub reserved: [u64; 6],
}

/// The read-response page.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct pciem_read_responses {
    /// The slots.
    pub slots: [pciem_read_response; PCIEM_READ_SLOTS],
}

impl Default for pciem_read_responses {
    fn default() -> Self {
        Self {
            slots: [pciem_read_response::default(); PCIEM_READ_SLOTS],
        }
    }
}

/// `PCIEM_EVENT_ERROR` kind: the faulting instruction could not be
/// emulated (the access completed as a master abort: loads all-ones,
/// stores dropped). `data` and `id` hold its first 16 bytes
/// (little-endian), `size` how many of them were readable.
pub const PCIEM_ERROR_UNDECODABLE: u32 = 1;
/// `PCIEM_EVENT_ERROR` kind: a model-answered read timed out (completed
/// all-ones); `offset`/`size`/`bar` name it and `id` is its id.
pub const PCIEM_ERROR_READ_TIMEOUT: u32 = 2;

const _: () = assert!(core::mem::size_of::<pciem_read_responses>() == 4096);
const _: () = assert!(PCIEM_READ_SLOTS.is_power_of_two());
