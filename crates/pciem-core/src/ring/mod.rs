//! The single-producer/single-consumer event ring over
//! [`pciem_shared_ring`](pciem_abi::pciem_shared_ring).
//!
//! The kernel module produces one [`pciem_event`](pciem_abi::pciem_event)
//! per thing the device must react to; the device process consumes them from
//! the ring page it mapped. The same code is the producer in the kernel (via
//! `kernel/rust/pciem_rs.h`) and in the mock backend, and the consumer
//! everywhere.
//!
//! - [`SharedRing`]: a view of ring memory given by pointer, possibly shared
//!   with another process or the kernel.
//! - [`Producer`]: the producer's private state (`struct pciem_rs_producer`
//!   in C) and [`push`](Producer::push).
//! - [`Consumer`]: owns a view, [`pop`](Consumer::pop)s and
//!   [`pop_batch`](Consumer::pop_batch)es.
//! - With the `std` feature, `channel()` makes a `HeapRing` and hands out
//!   owned, `Send` `HeapProducer` and `HeapConsumer` halves.
//!
//! # Protocol
//!
//! The ring has `N` slots (`N` a power of two; [`PCIEM_RING_SIZE`] for the
//! ABI's ring). Each side keeps a private position: how many slots it has
//! filled (producer) or taken (consumer) since the ring was fresh. Slot
//! `p % N` holds the `p`-th event.
//!
//! - Push: if the ring is full the event is **not** written; the producer
//!   increments its overflow count and stores it in `overflow`. Otherwise it
//!   copies the event's first 56 bytes into slot `p % N`, stores the slot's
//!   `ticket` as `p + 1` (release), and then `tail = (p + 1) % N` (release).
//! - Pop: load the ticket of slot `p % N` (acquire); if it is `p + 1` the
//!   event is there: copy it out, then store `head = (p + 1) % N` (release),
//!   handing the slot back. A zeroed slot (ticket 0) or one from the
//!   previous lap (ticket `p + 1 - N`) never matches.
//! - Full when `(tail + 1) % N == head`: at most `N - 1` events are in
//!   flight. The producer knows its own tail and loads `head` only when its
//!   cached copy says the ring is full.
//! - Every event the producer is asked to publish gets the next sequence
//!   number (`seq`, from 0), whether it fits or overflows. A consumer that
//!   sees `seq` jump from `a` to `b` knows `b - a - 1` events were lost, and
//!   the sum of all jumps equals the overflow counter.
//!
//! Polling the slot, not `tail`, is what makes the ring fast: the event and
//! the news of it arrive in one cache line, where a shared `tail` costs a
//! second cross-core miss per event (docs/performance.md measures both).
//! `tail` is still published so that [`Consumer::len`] and version-1
//! consumers can count.
//!
//! # Memory ordering
//!
//! Each side hands slots to the other with one release store and takes them
//! with one acquire load; nothing stronger is needed, and nothing weaker is
//! enough:
//!
//! - **Producer → consumer** (the slot's `ticket`): the producer's body
//!   writes are sequenced before its release store of the ticket; the
//!   consumer's acquire load that reads that ticket synchronises with it, so
//!   the writes happen before the consumer's read of the body. Without
//!   release the consumer could see the ticket before the event bytes (a
//!   torn or stale event); without acquire its body reads could be
//!   satisfied early.
//! - **Consumer → producer** (`head`): the consumer's slot reads are
//!   sequenced before its release store of `head`; the producer's acquire
//!   load seeing it synchronises, so the reads happen before the producer's
//!   next write of those slots. Without this the producer could overwrite
//!   an event the consumer is still copying.
//! - **Overflow**: the producer stores its count before it publishes the
//!   next event's ticket, so after popping an event the consumer's load of
//!   `overflow` is at least the number of events lost before it (ordered by
//!   the ticket pair above). The store is release and the load acquire only
//!   so that a standalone read is a well-defined snapshot; it guards no
//!   other data. `tail` is ordered the same way, after the ticket.
//! - Each word has a single writer, which keeps its own copy, so no
//!   read-modify-write (and no `SeqCst` fence) is needed. On x86-64 the
//!   acquire loads and release stores are plain `mov`s.
//!
//! loom checks exactly this code: under `--cfg loom` the atomics and slot
//! cells in `sync` become loom's, and the tests in
//! `crates/pciem-core/tests/ring_loom.rs` explore every interleaving of a
//! tiny ring.
//!
//! # Untrusted peers
//!
//! The ring page is writable by both sides, so each side treats what the
//! other writes as untrusted: the producer masks the `head` it loads and
//! never reads back tickets, `tail` or `overflow`; the consumer keeps its own
//! position, compares tickets for equality only and masks the `tail` it
//! loads for [`Consumer::len`]. A scribbling peer can make events
//! disappear, repeat or arrive garbled (the consumer validates event
//! contents anyway), but can never cause an out-of-bounds access, a panic
//! or a loop. Slot bodies are copied with volatile accesses, exactly once
//! each.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use pciem_abi::{pciem_event, PCIEM_EVENT_MMIO_WRITE};
//! use pciem_core::ring;
//!
//! let (mut producer, mut consumer) = ring::channel();
//! let event = pciem_event { r#type: PCIEM_EVENT_MMIO_WRITE, offset: 0x08, data: 1, size: 4,
//!                           ..Default::default() };
//! let worker = std::thread::spawn(move || {
//!     for _ in 0..3 {
//!         while producer.try_push(&event).is_none() {
//!             std::thread::yield_now();
//!         }
//!     }
//! });
//! let mut seen = Vec::new();
//! while seen.len() < 3 {
//!     match consumer.pop() {
//!         Some(e) => seen.push(e.seq),
//!         None => std::thread::yield_now(),
//!     }
//! }
//! worker.join().unwrap();
//! assert_eq!(seen, [0, 1, 2]);
//! assert_eq!(consumer.overflow(), 0);
//! # }
//! ```
//!
//! The kernel-style path over raw memory (here a heap ring standing in for
//! the mapped page):
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use core::ptr::NonNull;
//! use pciem_abi::pciem_event;
//! use pciem_core::ring::{Consumer, HeapRing, Producer, RingFull, SharedRing};
//!
//! let memory = HeapRing::new();
//! let raw = NonNull::new(memory.as_ptr()).unwrap();
//! // SAFETY: `memory` outlives both views, which serve one producer and one
//! // consumer; the ring is fresh.
//! let (producer_view, consumer_view) =
//!     unsafe { (SharedRing::from_raw(raw), SharedRing::from_raw(raw)) };
//! let mut producer = Producer::new();
//! let mut consumer = Consumer::new(consumer_view);
//! for _ in 0..SharedRing::<1024>::CAPACITY {
//!     producer.push(&producer_view, &pciem_event::default()).unwrap();
//! }
//! // Full: the next event is dropped and counted, not overwritten.
//! assert_eq!(producer.push(&producer_view, &pciem_event::default()), Err(RingFull { seq: 1023 }));
//! assert_eq!(consumer.overflow(), 1);
//! assert_eq!(consumer.pop().map(|e| e.seq), Some(0));
//! # }
//! ```

mod consumer;
#[cfg(feature = "std")]
mod heap;
mod producer;
mod shared;
mod sync;

pub use consumer::Consumer;
#[cfg(feature = "std")]
pub use heap::{channel, channel_sized, HeapConsumer, HeapProducer, HeapRing, HEAP_RING_ALIGN};
pub use pciem_abi::PCIEM_RING_SIZE;
pub use producer::{Producer, RingFull};
pub use shared::SharedRing;

/// Events the ABI's ring holds at most (`PCIEM_RING_SIZE - 1`).
pub const RING_CAPACITY: usize = PCIEM_RING_SIZE - 1;
