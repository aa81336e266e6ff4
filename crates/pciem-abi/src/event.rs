//! The event record and the shared event ring.
//!
//! The kernel (producer) publishes one [`pciem_event`] per thing the device
//! must react to into a [`pciem_shared_ring`] that the device process
//! (consumer) maps from the `/dev/pciem` file at offset 0.
//!
//! Protocol (single producer, single consumer; ABI version 2):
//! - Each slot is published by its own `ticket`: the producer fills the
//!   other 56 bytes of `events[p % PCIEM_RING_SIZE]`, then stores
//!   `ticket = p + 1` with release ordering, where `p` counts the slots it
//!   filled before (0 for the first; never reset). The consumer keeps its
//!   own position `p`, loads the ticket of `events[p % PCIEM_RING_SIZE]` with
//!   acquire ordering, and takes the event when the ticket is `p + 1`. The
//!   event and the news of it travel in one cache line; zeroed slots
//!   (ticket 0) and the previous lap's (ticket `p + 1 - PCIEM_RING_SIZE`)
//!   never match.
//! - `head` (in `0..PCIEM_RING_SIZE`) is written only by the consumer: after
//!   it is done with a slot it stores its new position modulo the ring size
//!   with release ordering, handing the slot back. The producer loads it
//!   (acquire) only when its cached copy says the ring is full.
//! - `tail` (in `0..PCIEM_RING_SIZE`) is written only by the producer, with
//!   release ordering after the ticket: the producer's position modulo the
//!   ring size. Popping needs only the tickets; `tail` is for counting
//!   waiting events (`(tail - head) % PCIEM_RING_SIZE`).
//! - The ring is full when `(tail + 1) % PCIEM_RING_SIZE == head`, so it
//!   holds at most `PCIEM_RING_SIZE - 1` events.
//! - When the ring is full the producer does not overwrite: it increments
//!   `overflow` instead. Every event carries a sequence number (`seq`) that
//!   counts every event the producer tried to publish, so a consumer sees
//!   exactly which events were lost.
//! - `head` and `tail` are 128 bytes apart so that the two sides never write
//!   the same cache line (adjacent-line prefetch pairs 64-byte lines on
//!   x86-64).
//!
//! Version 1 had no tickets (the last word was `reserved`, zero) and the
//! consumer polled `tail`. A version-1 consumer that ignores the last word
//! still works with a version-2 producer, which publishes `tail` as before
//! (after the ticket); one that insisted on `reserved == 0` does not.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Number of slots in the event ring (a power of two).
pub const PCIEM_RING_SIZE: usize = 1024;

/// `consumer_state`: the consumer never said (the initial value): the
/// producer signals the eventfd after every event.
pub const PCIEM_RING_CONSUMER_LEGACY: u32 = 0;
/// `consumer_state`: the consumer is draining and will look again before
/// it sleeps: the producer need not signal. (Saves an inter-processor
/// interrupt per event on the producing CPU.)
pub const PCIEM_RING_CONSUMER_AWAKE: u32 = 1;
/// `consumer_state`: the consumer is about to sleep on the eventfd or
/// sleeps: the producer signals. The consumer stores this value, then
/// (after a full fence) looks at the ring once more before it sleeps; the
/// producer publishes an event, then (after a full fence) loads the state,
/// so one of the two always sees the other.
pub const PCIEM_RING_CONSUMER_SLEEPING: u32 = 2;

/// The driver wrote a watched register; `data` is the value written.
pub const PCIEM_EVENT_MMIO_WRITE: u32 = 1;
/// The driver read a trapped register. Without [`PCIEM_EVENT_FLAG_POSTED`]
/// the driver's CPU waits for the answer to `id` (see [`crate::trap`]); with
/// it, `data` is the value the backing supplied.
pub const PCIEM_EVENT_MMIO_READ: u32 = 2;
/// The host wrote configuration space and changed it; `offset`, `size` and
/// `data` describe the write, `bar` is unused.
pub const PCIEM_EVENT_CONFIG_WRITE: u32 = 3;
/// The function was reset; `data` is one of `PCIEM_RESET_*`.
pub const PCIEM_EVENT_RESET: u32 = 4;
/// Something the driver did could not be carried out; `flags` is one of
/// `PCIEM_ERROR_*` (see [`crate::trap`]).
pub const PCIEM_EVENT_ERROR: u32 = 5;

/// Reset by Function Level Reset (PCIe Device Control bit 15).
pub const PCIEM_RESET_FLR: u64 = 1;
/// Reset by a D3hot to D0 transition without No_Soft_Reset.
pub const PCIEM_RESET_D3HOT_D0: u64 = 2;
/// Reset by a Secondary Bus Reset of the root port above the device
/// (`SET_ROOT_PORT`), as Linux does to recover from a fatal error.
pub const PCIEM_RESET_BUS: u64 = 3;
/// The device came back after a surprise removal (`PCIEM_IOCTL_REINSERT`):
/// its configuration space is at its power-on state (as registered), its
/// BAR memory zeroed, and the driver probes it as new hardware.
pub const PCIEM_RESET_REINSERT: u64 = 4;

/// Event flag: the event needs no response. An `MMIO_READ` event without
/// this flag waits for the read value identified by `id`.
pub const PCIEM_EVENT_FLAG_POSTED: u32 = 0x1;

/// Kinds of [`pciem_event`], the Rust view of `PCIEM_EVENT_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EventKind {
    /// [`PCIEM_EVENT_MMIO_WRITE`].
    MmioWrite = PCIEM_EVENT_MMIO_WRITE,
    /// [`PCIEM_EVENT_MMIO_READ`].
    MmioRead = PCIEM_EVENT_MMIO_READ,
    /// [`PCIEM_EVENT_CONFIG_WRITE`].
    ConfigWrite = PCIEM_EVENT_CONFIG_WRITE,
    /// [`PCIEM_EVENT_RESET`].
    Reset = PCIEM_EVENT_RESET,
    /// [`PCIEM_EVENT_ERROR`].
    Error = PCIEM_EVENT_ERROR,
    /// [`crate::PCIEM_EVENT_DMA_FAULT`].
    DmaFault = crate::PCIEM_EVENT_DMA_FAULT,
}

impl EventKind {
    /// The kind named by a raw `type` field, or `None` for a value this ABI
    /// version does not define.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            PCIEM_EVENT_MMIO_WRITE => Some(Self::MmioWrite),
            PCIEM_EVENT_MMIO_READ => Some(Self::MmioRead),
            PCIEM_EVENT_CONFIG_WRITE => Some(Self::ConfigWrite),
            PCIEM_EVENT_RESET => Some(Self::Reset),
            PCIEM_EVENT_ERROR => Some(Self::Error),
            crate::PCIEM_EVENT_DMA_FAULT => Some(Self::DmaFault),
            _ => None,
        }
    }
}

/// One event, 64 bytes (one cache line).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_event {
    /// Sequence number: 0 for the first event the producer tried to publish,
    /// +1 for each after, whether it fitted in the ring or overflowed.
    pub seq: u64,
    /// One of `PCIEM_EVENT_*`.
    pub r#type: u32,
    /// BAR slot (MMIO events).
    pub bar: u32,
    /// Offset in the BAR or in configuration space.
    pub offset: u64,
    /// Value written, or the reset kind.
    pub data: u64,
    /// Access width in bytes.
    pub size: u32,
    /// `PCIEM_EVENT_FLAG_*`.
    pub flags: u32,
    /// Producer's monotonic clock in nanoseconds.
    pub timestamp_ns: u64,
    /// Request identifier of a model-answered read; the second 8
    /// instruction bytes of an `ERROR` event; zero otherwise.
    pub id: u64,
    /// Ring publication stamp: `p + 1` for the `p`-th slot the producer
    /// filled (see the module documentation). Written by the ring producer,
    /// whatever the caller put here; ignored outside the ring.
    pub ticket: u64,
}

/// The shared event ring; see the module documentation for the protocol.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct pciem_shared_ring {
    /// Consumer index: next slot to read, in `0..PCIEM_RING_SIZE`. Written
    /// only by the consumer, after it is done with the slots before it.
    pub head: u32,
    /// `PCIEM_RING_CONSUMER_*`, written only by the consumer: whether the
    /// producer must signal the ring's eventfd for each event (see
    /// [`PCIEM_RING_CONSUMER_AWAKE`]).
    pub consumer_state: u32,
    /// Padding keeping `tail` 128 bytes away.
    pub reserved0: [u8; 120],
    /// Producer index: next slot to fill, in `0..PCIEM_RING_SIZE`. Written
    /// only by the producer, after the tickets of the slots before it.
    pub tail: u32,
    /// Padding.
    pub reserved1: u32,
    /// Events that did not fit. Written only by the producer.
    pub overflow: u64,
    /// Padding up to the first event.
    pub reserved2: [u8; 112],
    /// The slots; each is published by its `ticket`.
    pub events: [pciem_event; PCIEM_RING_SIZE],
}

impl Default for pciem_shared_ring {
    fn default() -> Self {
        Self {
            head: 0,
            consumer_state: PCIEM_RING_CONSUMER_LEGACY,
            reserved0: [0; 120],
            tail: 0,
            reserved1: 0,
            overflow: 0,
            reserved2: [0; 112],
            events: [pciem_event::default(); PCIEM_RING_SIZE],
        }
    }
}

const _: () = assert!(PCIEM_RING_SIZE.is_power_of_two());
