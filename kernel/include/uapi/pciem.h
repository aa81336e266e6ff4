/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * pciem.h - the PCIem kernel <-> userspace ABI.
 *
 * GENERATED from crates/pciem-abi by `cargo xtask gen-header`; do not edit.
 * A test fails when this file differs from a fresh generation.
 */

#ifndef PCIEM_UAPI_PCIEM_H
#define PCIEM_UAPI_PCIEM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#if defined(__KERNEL__)
#include <linux/build_bug.h>
#elif !defined(__cplusplus)
#include <assert.h>
#endif

#define PCIEM_ASSERT_SIZE(s, n) \
	static_assert(sizeof(struct s) == (n), "sizeof(struct " #s ")")
#define PCIEM_ASSERT_OFFSET(s, f, off) \
	static_assert(__builtin_offsetof(struct s, f) == (off), "offsetof(" #s ", " #f ")")

/**
 * Version of this ABI. Bumped on any incompatible change; reported by
 * `PCIEM_IOCTL_GET_VERSION`.
 *
 * - 1: the first version.
 * - 2: ring slots carry a `ticket` (the last word of `pciem_event`, which
 *   was `reserved`), and consumers poll the slot instead of `tail`.
 * - 3: trap mode (`trap`): `SET_BAR_MODE`, `ADD_TRAP_RANGE`,
 *   `SET_READ_TIMEOUT`, `START`, `COMPLETE_READ`, the read-response page,
 *   model-answered `MMIO_READ` events and `ERROR` events; the ring's
 *   `consumer_state` (formerly the first word of `reserved0`).
 * - 4: DMA checking (`dmacheck`): `SET_DMA_CHECK` (a device that does
 *   not call it gets the module's default, `enforce`),
 *   `PCIEM_EVENT_DMA_FAULT` events, and `EFAULT` for a DMA outside the
 *   driver's mappings.
 * - 5: surprise removal (`fault`): `SURPRISE_REMOVE`; config reads of a
 *   removed device return all-ones; `SET_ROOT_PORT` (a virtual root port
 *   with a hot-plug slot and optionally AER above the device, which then
 *   sits on bus 1); `INJECT_AER`; `PCIEM_RESET_BUS` reset events.
 * - 6: multi-function devices (`function`): `SET_FUNCTION` selects the
 *   function (0..7) that the following ioctls describe or act for; events
 *   carry their function in `flags` (`PCIEM_EVENT_FUNCTION_MASK`, 0 for
 *   function 0); the instance file maps function `n`'s BARs at page
 *   offset `n * PCIEM_MMAP_FUNCTION_STRIDE`. A single-function device sees
 *   no difference from version 5.
 */
#define PCIEM_ABI_VERSION 6

/**
 * Size of a PCI Express configuration space in bytes.
 */
#define PCIEM_CONFIG_SPACE_SIZE 4096

/**
 * Size of the conventional (PCI-compatible) part of configuration space.
 */
#define PCIEM_CONFIG_LEGACY_SIZE 256

/**
 * Number of BAR slots of a type-0 header.
 */
#define PCIEM_MAX_BARS 6

/**
 * Bytes of capability-specific payload carried by `pciem_cap_config`.
 */
#define PCIEM_CAP_DATA_MAX 64

/**
 * Upper bound on the length of one DMA transfer (16 MiB). Longer transfers
 * are split by the caller; the kernel rejects them with `EINVAL`.
 */
#define PCIEM_DMA_MAX_LEN (16 << 20)

/**
 * Upper bound on the number of watched registers of one device (the x86
 * debug registers).
 */
#define PCIEM_MAX_WATCHPOINTS 4

/**
 * MSI capability; payload `pciem_cap_msi_userspace`.
 */
#define PCIEM_CAP_MSI 1

/**
 * MSI-X capability; payload `pciem_cap_msix_userspace`.
 */
#define PCIEM_CAP_MSIX 2

/**
 * Power Management capability; payload `pciem_cap_pm_userspace`.
 */
#define PCIEM_CAP_PM 3

/**
 * PCI Express capability; payload `pciem_cap_pcie_userspace`.
 */
#define PCIEM_CAP_PCIE 4

/**
 * Vendor-specific capability; payload `pciem_cap_vendor_userspace`.
 */
#define PCIEM_CAP_VENDOR 5

/**
 * PASID extended capability; payload `pciem_cap_pasid_userspace`.
 */
#define PCIEM_CAP_PASID 6

/**
 * Device Serial Number extended capability; payload
 * `pciem_cap_dsn_userspace`.
 */
#define PCIEM_CAP_DSN 7

/**
 * Vendor-specific extended capability; payload
 * `pciem_cap_vsec_userspace`.
 */
#define PCIEM_CAP_VSEC 8

/**
 * Advanced Error Reporting extended capability; payload
 * `pciem_cap_aer_userspace`.
 */
#define PCIEM_CAP_AER 9

/**
 * PCI Express device/port type: endpoint.
 */
#define PCIEM_PCIE_TYPE_ENDPOINT 0

/**
 * PCI Express device/port type: legacy endpoint.
 */
#define PCIEM_PCIE_TYPE_LEGACY_ENDPOINT 1

/**
 * PCI Express device/port type: root-complex integrated endpoint.
 */
#define PCIEM_PCIE_TYPE_RC_ENDPOINT 9

/**
 * Most bytes a vendor-specific capability may carry after its 3-byte
 * header.
 */
#define PCIEM_VENDOR_DATA_MAX 56

/**
 * Most bytes a vendor-specific extended capability may carry after its
 * 8-byte header (extended capability header + VSEC header).
 */
#define PCIEM_VSEC_DATA_MAX 52

/**
 * BAR is in I/O space (bit 0 of a BAR register). Not supported by PCIem:
 * only memory BARs can be backed by the physical pool.
 */
#define PCIEM_BAR_SPACE_IO 1

/**
 * Memory BAR decoding a 32-bit address (bits 2:1 = 00).
 */
#define PCIEM_BAR_MEM_TYPE_32 0

/**
 * Memory BAR decoding a 64-bit address (bits 2:1 = 10); it uses this slot and
 * the next one.
 */
#define PCIEM_BAR_MEM_TYPE_64 4

/**
 * Memory BAR is prefetchable (bit 3).
 */
#define PCIEM_BAR_MEM_PREFETCH 8

/**
 * The bits of `pciem_bar_config.flags` that carry meaning.
 */
#define PCIEM_BAR_FLAGS_MASK 15

/**
 * Atomic fetch-and-add; `result` is the old value.
 */
#define PCIEM_ATOMIC_FETCH_ADD 1

/**
 * Atomic fetch-and-subtract.
 */
#define PCIEM_ATOMIC_FETCH_SUB 2

/**
 * Atomic exchange.
 */
#define PCIEM_ATOMIC_SWAP 3

/**
 * Atomic compare-and-swap: store `operand` if the value equals `compare`.
 */
#define PCIEM_ATOMIC_CAS 4

/**
 * Atomic fetch-and-AND.
 */
#define PCIEM_ATOMIC_FETCH_AND 5

/**
 * Atomic fetch-and-OR.
 */
#define PCIEM_ATOMIC_FETCH_OR 6

/**
 * Atomic fetch-and-XOR.
 */
#define PCIEM_ATOMIC_FETCH_XOR 7

/**
 * PRP DMA direction: device writes the user buffer into host memory.
 * Without it the device reads host memory into the user buffer.
 */
#define PCIEM_PRP_FLAG_WRITE 1

/**
 * Most PRP list entries followed in one transfer (chained lists included).
 */
#define PCIEM_PRP_MAX_ENTRIES 4096

/**
 * DMA check mode: the module parameter `dma_check=` decides (what a
 * device gets without `PCIEM_IOCTL_SET_DMA_CHECK`).
 */
#define PCIEM_DMA_CHECK_DEFAULT 0

/**
 * DMA check mode: no tracking, no checks.
 */
#define PCIEM_DMA_CHECK_OFF 1

/**
 * DMA check mode: violations are reported, the access proceeds.
 */
#define PCIEM_DMA_CHECK_REPORT 2

/**
 * DMA check mode: violations are reported and the access fails with
 * `EFAULT`; nothing moves.
 */
#define PCIEM_DMA_CHECK_ENFORCE 3

/**
 * `PCIEM_EVENT_DMA_FAULT`: a DMA the model performed was outside what the
 * driver mapped. `offset` is the bus address of the first offending byte,
 * `size` the length of the access, `flags` the kind
 * (`PCIEM_DMA_FAULT_*`), `bar` the access (`PCIEM_DMA_ACCESS_*`), `data`
 * the detail of the kind (bytes outside the mapping for
 * `PCIEM_DMA_FAULT_OUTSIDE`, nanoseconds since the unmap for
 * `PCIEM_DMA_FAULT_AFTER_UNMAP`, zero otherwise) and `id` 1 when the
 * access was refused (enforce mode), 0 when it went ahead.
 */
#define PCIEM_EVENT_DMA_FAULT 6

/**
 * Fault kind: no live mapping of this device covers the address, and
 * none was unmapped there recently.
 */
#define PCIEM_DMA_FAULT_UNMAPPED 1

/**
 * Fault kind: the access runs past the start or end of a live mapping
 * (by the number of bytes in the event's `data`).
 */
#define PCIEM_DMA_FAULT_OUTSIDE 2

/**
 * Fault kind: the address is mapped, but for the other direction (a
 * device write into a `DMA_TO_DEVICE` buffer, or a read of a
 * `DMA_FROM_DEVICE` one; an atomic needs `DMA_BIDIRECTIONAL`).
 */
#define PCIEM_DMA_FAULT_WRONG_DIRECTION 3

/**
 * Fault kind: the address belonged to a mapping that the driver has
 * already unmapped (or freed).
 */
#define PCIEM_DMA_FAULT_AFTER_UNMAP 4

/**
 * Access of a DMA fault: the device read host memory.
 */
#define PCIEM_DMA_ACCESS_READ 0

/**
 * Access of a DMA fault: the device wrote host memory.
 */
#define PCIEM_DMA_ACCESS_WRITE 1

/**
 * Access of a DMA fault: an atomic (reads and writes host memory).
 */
#define PCIEM_DMA_ACCESS_ATOMIC 2

/**
 * Direction of a mapping as the driver gave it (Linux's
 * `enum dma_data_direction`): device and CPU may both read and write.
 */
#define PCIEM_DMA_BIDIRECTIONAL 0

/**
 * Direction of a mapping: the device only reads it (`DMA_TO_DEVICE`).
 */
#define PCIEM_DMA_TO_DEVICE 1

/**
 * Direction of a mapping: the device only writes it (`DMA_FROM_DEVICE`).
 */
#define PCIEM_DMA_FROM_DEVICE 2

/**
 * Number of slots in the event ring (a power of two).
 */
#define PCIEM_RING_SIZE 1024

/**
 * `consumer_state`: the consumer never said (the initial value): the
 * producer signals the eventfd after every event.
 */
#define PCIEM_RING_CONSUMER_LEGACY 0

/**
 * `consumer_state`: the consumer is draining and will look again before
 * it sleeps: the producer need not signal. (Saves an inter-processor
 * interrupt per event on the producing CPU.)
 */
#define PCIEM_RING_CONSUMER_AWAKE 1

/**
 * `consumer_state`: the consumer is about to sleep on the eventfd or
 * sleeps: the producer signals. The consumer stores this value, then
 * (after a full fence) looks at the ring once more before it sleeps; the
 * producer publishes an event, then (after a full fence) loads the state,
 * so one of the two always sees the other.
 */
#define PCIEM_RING_CONSUMER_SLEEPING 2

/**
 * The driver wrote a watched register; `data` is the value written.
 */
#define PCIEM_EVENT_MMIO_WRITE 1

/**
 * The driver read a trapped register. Without `PCIEM_EVENT_FLAG_POSTED`
 * the driver's CPU waits for the answer to `id` (see `crate.trap`); with
 * it, `data` is the value the backing supplied.
 */
#define PCIEM_EVENT_MMIO_READ 2

/**
 * The host wrote configuration space and changed it; `offset`, `size` and
 * `data` describe the write, `bar` is unused.
 */
#define PCIEM_EVENT_CONFIG_WRITE 3

/**
 * The function was reset; `data` is one of `PCIEM_RESET_*`.
 */
#define PCIEM_EVENT_RESET 4

/**
 * Something the driver did could not be carried out; `flags` is one of
 * `PCIEM_ERROR_*` (see `crate.trap`).
 */
#define PCIEM_EVENT_ERROR 5

/**
 * Reset by Function Level Reset (PCIe Device Control bit 15).
 */
#define PCIEM_RESET_FLR 1

/**
 * Reset by a D3hot to D0 transition without No_Soft_Reset.
 */
#define PCIEM_RESET_D3HOT_D0 2

/**
 * Reset by a Secondary Bus Reset of the root port above the device
 * (`SET_ROOT_PORT`), as Linux does to recover from a fatal error.
 */
#define PCIEM_RESET_BUS 3

/**
 * Event flag: the event needs no response. An `MMIO_READ` event without
 * this flag waits for the read value identified by `id`.
 */
#define PCIEM_EVENT_FLAG_POSTED 1

/**
 * `pciem_root_port.flags`: the port has a hot-plug slot (required).
 */
#define PCIEM_ROOT_PORT_HOTPLUG 1

/**
 * `pciem_root_port.flags`: the port has an AER capability with the Root
 * Port registers, so that `PCIEM_IOCTL_INJECT_AER` reaches Linux's AER
 * core.
 */
#define PCIEM_ROOT_PORT_AER 2

/**
 * `pciem_aer_inject.severity`: a correctable error (ERR_COR): the AER
 * core logs it and calls the driver's `cor_error_detected`.
 */
#define PCIEM_AER_CORRECTABLE 0

/**
 * `pciem_aer_inject.severity`: an uncorrectable non-fatal error
 * (ERR_NONFATAL): `error_detected(normal)`, `mmio_enabled`, `resume`.
 */
#define PCIEM_AER_NONFATAL 1

/**
 * `pciem_aer_inject.severity`: an uncorrectable fatal error (ERR_FATAL):
 * `error_detected(frozen)`, a secondary bus reset of the port (the model
 * gets a `PCIEM_EVENT_RESET` with `PCIEM_RESET_BUS`), `slot_reset`,
 * `resume`.
 */
#define PCIEM_AER_FATAL 2

/**
 * Functions of one device: devfn 0..7 of its slot.
 */
#define PCIEM_MAX_FUNCTIONS 8

/**
 * Shift of the function number in `pciem_event.flags`.
 */
#define PCIEM_EVENT_FUNCTION_SHIFT 8

/**
 * Bits of `pciem_event.flags` holding the number of the function the
 * event happened to.
 */
#define PCIEM_EVENT_FUNCTION_MASK (7 << PCIEM_EVENT_FUNCTION_SHIFT)

/**
 * Page offsets of the instance file's mmap per function: function `n`'s
 * BAR `b` is at page `n * PCIEM_MMAP_FUNCTION_STRIDE + b`.
 */
#define PCIEM_MMAP_FUNCTION_STRIDE 16

/**
 * The ioctl type byte of PCIem.
 */
#define PCIEM_IOCTL_MAGIC 80

/**
 * Deliver through whichever mechanism the driver enabled: MSI-X, else MSI,
 * else INTx (assert). This is what a zero-initialised argument means.
 */
#define PCIEM_IRQ_AUTO 0

/**
 * MSI vector `vector`.
 */
#define PCIEM_IRQ_MSI 1

/**
 * MSI-X table entry `vector`.
 */
#define PCIEM_IRQ_MSIX 2

/**
 * Legacy INTx on the device's interrupt pin (level-triggered).
 */
#define PCIEM_IRQ_INTX 3

/**
 * INTx: assert the line (the default for `PCIEM_IRQ_INTX`).
 */
#define PCIEM_IRQ_FLAG_ASSERT 1

/**
 * INTx: deassert the line.
 */
#define PCIEM_IRQ_FLAG_DEASSERT 2

/**
 * irqfd: INTx is asserted when the eventfd is signalled and stays asserted
 * until deasserted (level semantics).
 */
#define PCIEM_IRQFD_FLAG_LEVEL 1

/**
 * irqfd: signalling this eventfd deasserts INTx.
 */
#define PCIEM_IRQFD_FLAG_DEASSERT 2

/**
 * irqfd: detach the eventfd previously bound to `kind`/`vector` (for INTx,
 * together with `LEVEL` or `DEASSERT` to say which); `eventfd` is ignored.
 */
#define PCIEM_IRQFD_FLAG_REMOVE 4

/**
 * Watch mode (the default): the BAR is plain memory shared with the
 * device process; writes to at most four registers are reported by
 * hardware watchpoints.
 */
#define PCIEM_BAR_MODE_WATCH 0

/**
 * Trap mode: every kernel access through a mapping of the BAR faults and
 * is emulated (see the module documentation).
 */
#define PCIEM_BAR_MODE_TRAP 1

/**
 * Loads covered by the range are answered synchronously by the model.
 */
#define PCIEM_TRAP_READ_MODEL 1

/**
 * Loads covered by the range are served from the backing and reported as
 * posted `MMIO_READ` events carrying the value read.
 */
#define PCIEM_TRAP_READ_NOTIFY 2

/**
 * Stores covered by the range are delivered as events but not stored into
 * the backing.
 */
#define PCIEM_TRAP_WRITE_NO_STORE 4

/**
 * The bits of `pciem_trap_range.flags` that carry meaning.
 */
#define PCIEM_TRAP_FLAGS_MASK 7

/**
 * Upper bound on the number of trap ranges of one device.
 */
#define PCIEM_MAX_TRAP_RANGES 32

/**
 * Default read timeout (10 ms).
 */
#define PCIEM_READ_TIMEOUT_DEFAULT_US 10000

/**
 * Largest read timeout accepted (1 s): the faulting CPU spins meanwhile.
 */
#define PCIEM_READ_TIMEOUT_MAX_US 1000000

/**
 * Number of read-response slots (one page of 64-byte slots).
 */
#define PCIEM_READ_SLOTS 64

/**
 * Page offset of the read-response page in the instance file's mmap (the
 * BARs are at pages 0..=5). Function `n` of a multi-function device has
 * its own at `n * PCIEM_MMAP_FUNCTION_STRIDE + 8`.
 */
#define PCIEM_MMAP_READ_RESPONSES_PGOFF 8

/**
 * `PCIEM_EVENT_ERROR` kind: the faulting instruction could not be
 * emulated (the access completed as a master abort: loads all-ones,
 * stores dropped). `data` and `id` hold its first 16 bytes
 * (little-endian), `size` how many of them were readable.
 */
#define PCIEM_ERROR_UNDECODABLE 1

/**
 * `PCIEM_EVENT_ERROR` kind: a model-answered read timed out (completed
 * all-ones); `offset`/`size`/`bar` name it and `id` is its id.
 */
#define PCIEM_ERROR_READ_TIMEOUT 2

/**
 * Find the driver's mapping of the BAR automatically, by tracing the
 * ioremap family (recommended).
 */
#define PCIEM_WP_FLAG_BAR_KPROBES 1

/**
 * Use the kernel virtual address in `pciem_watchpoint_config.addr`.
 */
#define PCIEM_WP_FLAG_BAR_MANUAL 2

/**
 * Remove the watchpoint on `bar_index`/`offset` instead of adding one.
 */
#define PCIEM_WP_FLAG_CLEAR 4

/**
 * Reported by `PCIEM_IOCTL_GET_VERSION`.
 */
struct pciem_version {
	/**
	 * `PCIEM_ABI_VERSION` of the kernel module.
	 */
	__u32 abi_version;
	/**
	 * `PCIEM_RING_SIZE` of the kernel module.
	 */
	__u32 ring_size;
	/**
	 * `sizeof(struct pciem_event)` of the kernel module.
	 */
	__u32 event_size;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_CREATE_DEVICE`: starts describing a new device on
 * this open file.
 */
struct pciem_create_device {
	/**
	 * No flags are defined yet; must be zero.
	 */
	__u32 flags;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_ADD_BAR`: declares one memory BAR.
 */
struct pciem_bar_config {
	/**
	 * BAR slot, 0..=5. A 64-bit BAR also occupies `bar_index + 1`.
	 */
	__u32 bar_index;
	/**
	 * `PCIEM_BAR_*` bits (equal to Linux's `PCI_BASE_ADDRESS_*`).
	 */
	__u32 flags;
	/**
	 * Size in bytes: a power of two, at least 16 (4096 or more is
	 * recommended so the BAR can be mapped by pages).
	 */
	__u64 size;
};

/**
 * Argument of `PCIEM_IOCTL_SET_CONFIG`: the identity of the device.
 *
 * `class_code` is in configuration-space order: `{prog_if, subclass,
 * base_class}` (offsets 0x09, 0x0A, 0x0B).
 */
struct pciem_config_space {
	/**
	 * Vendor ID (offset 0x00).
	 */
	__u16 vendor_id;
	/**
	 * Device ID (offset 0x02).
	 */
	__u16 device_id;
	/**
	 * Subsystem vendor ID (offset 0x2C).
	 */
	__u16 subsys_vendor_id;
	/**
	 * Subsystem ID (offset 0x2E).
	 */
	__u16 subsys_device_id;
	/**
	 * Revision ID (offset 0x08).
	 */
	__u8 revision;
	/**
	 * Programming interface, subclass, base class (offsets 0x09..=0x0B).
	 */
	__u8 class_code[3];
	/**
	 * Header type (offset 0x0E); only 0 (type-0, single function) is
	 * supported.
	 */
	__u8 header_type;
	/**
	 * Interrupt pin (offset 0x3D): 0 none, 1..=4 INTA..INTD.
	 */
	__u8 interrupt_pin;
	/**
	 * Must be zero.
	 */
	__u16 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_SET_CONFIG_IMAGE`: a complete configuration
 * space with its access masks, as built by `pciem-core`.
 *
 * For every byte, bits set in `wmask` are writable by the host, bits set in
 * `w1cmask` are write-1-to-clear; all other bits are read-only. BAR sizes are
 * implied by the BARs' write masks.
 */
struct pciem_config_image {
	/**
	 * The initial contents of configuration space.
	 */
	__u8 config[PCIEM_CONFIG_SPACE_SIZE];
	/**
	 * Per-bit writability.
	 */
	__u8 wmask[PCIEM_CONFIG_SPACE_SIZE];
	/**
	 * Per-bit write-1-to-clear.
	 */
	__u8 w1cmask[PCIEM_CONFIG_SPACE_SIZE];
};

/**
 * Argument of `PCIEM_IOCTL_GET_BAR_INFO`: `bar_index` in, the rest out.
 */
struct pciem_bar_info_query {
	/**
	 * BAR slot to query (in).
	 */
	__u32 bar_index;
	/**
	 * `PCIEM_BAR_*` bits of the BAR (out).
	 */
	__u32 flags;
	/**
	 * Size in bytes, 0 if the slot is unused (out).
	 */
	__u64 size;
	/**
	 * Bus address the BAR is currently assigned (out).
	 */
	__u64 bus_addr;
};

/**
 * Argument of `PCIEM_IOCTL_ADD_CAPABILITY`.
 */
struct pciem_cap_config {
	/**
	 * One of `PCIEM_CAP_*`.
	 */
	__u32 cap_type;
	/**
	 * Bytes of `cap_data` in use: the size of the payload struct.
	 */
	__u32 cap_size;
	/**
	 * Offset in configuration space, or 0 to place the capability after the
	 * previous one (standard capabilities from 0x40, extended from 0x100).
	 */
	__u32 offset;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
	/**
	 * The payload, one of the `pciem_cap_*_userspace` structs.
	 */
	__u8 cap_data[PCIEM_CAP_DATA_MAX];
};

/**
 * MSI payload.
 */
struct pciem_cap_msi_userspace {
	/**
	 * log2 of the number of vectors, 0..=5 (1..=32 vectors).
	 */
	__u8 num_vectors_log2;
	/**
	 * Non-zero: 64-bit message address.
	 */
	__u8 has_64bit;
	/**
	 * Non-zero: per-vector mask and pending bits.
	 */
	__u8 has_masking;
	/**
	 * Must be zero.
	 */
	__u8 reserved;
};

/**
 * MSI-X payload. The table and PBA live in BAR memory.
 */
struct pciem_cap_msix_userspace {
	/**
	 * Number of table entries, 1..=2048.
	 */
	__u16 table_size;
	/**
	 * BAR holding the vector table.
	 */
	__u8 table_bar;
	/**
	 * BAR holding the pending-bit array.
	 */
	__u8 pba_bar;
	/**
	 * Offset of the table in its BAR (8-byte aligned).
	 */
	__u32 table_offset;
	/**
	 * Offset of the PBA in its BAR (8-byte aligned).
	 */
	__u32 pba_offset;
};

/**
 * Power Management payload.
 */
struct pciem_cap_pm_userspace {
	/**
	 * Non-zero: D3hot to D0 does not reset the function (PMCSR bit 3).
	 * When zero, that transition is reported as a reset.
	 */
	__u8 no_soft_reset;
	/**
	 * PME support bits (PMC bits 15:11 >> 11): D0, D1, D2, D3hot, D3cold.
	 */
	__u8 pme_support;
	/**
	 * Non-zero: D1 supported.
	 */
	__u8 d1_support;
	/**
	 * Non-zero: D2 supported.
	 */
	__u8 d2_support;
};

/**
 * PCI Express payload.
 */
struct pciem_cap_pcie_userspace {
	/**
	 * One of `PCIEM_PCIE_TYPE_*`.
	 */
	__u8 device_type;
	/**
	 * Maximum link speed: 1 = 2.5 GT/s, 2 = 5, 3 = 8, 4 = 16, 5 = 32,
	 * 6 = 64 GT/s.
	 */
	__u8 max_link_speed;
	/**
	 * Maximum link width in lanes: 1, 2, 4, 8, 12, 16 or 32.
	 */
	__u8 max_link_width;
	/**
	 * Non-zero: the function supports Function Level Reset.
	 */
	__u8 flr;
	/**
	 * Max payload size supported, encoded 0..=5 (128..=4096 bytes).
	 */
	__u8 max_payload;
	/**
	 * Must be zero.
	 */
	__u8 reserved[3];
};

/**
 * Vendor-specific capability payload.
 */
struct pciem_cap_vendor_userspace {
	/**
	 * Bytes of `data` in use, 0..=`PCIEM_VENDOR_DATA_MAX`.
	 */
	__u16 data_len;
	/**
	 * Must be zero.
	 */
	__u16 reserved;
	/**
	 * Read-only contents following the capability header.
	 */
	__u8 data[PCIEM_VENDOR_DATA_MAX];
};

/**
 * PASID payload.
 */
struct pciem_cap_pasid_userspace {
	/**
	 * Max PASID width, 1..=20 bits.
	 */
	__u8 max_pasid_width;
	/**
	 * Non-zero: execute permission supported.
	 */
	__u8 exec;
	/**
	 * Non-zero: privileged mode supported.
	 */
	__u8 privileged;
	/**
	 * Must be zero.
	 */
	__u8 reserved;
};

/**
 * Device Serial Number payload.
 */
struct pciem_cap_dsn_userspace {
	/**
	 * The 64-bit serial number.
	 */
	__u64 serial;
};

/**
 * Vendor-specific extended capability payload.
 */
struct pciem_cap_vsec_userspace {
	/**
	 * VSEC ID.
	 */
	__u16 vsec_id;
	/**
	 * VSEC revision, 0..=15.
	 */
	__u8 vsec_rev;
	/**
	 * Must be zero.
	 */
	__u8 reserved;
	/**
	 * Bytes of `data` in use, 0..=`PCIEM_VSEC_DATA_MAX`.
	 */
	__u16 data_len;
	/**
	 * Must be zero.
	 */
	__u16 reserved2;
	/**
	 * Read-only contents following the VSEC header.
	 */
	__u8 data[PCIEM_VSEC_DATA_MAX];
};

/**
 * Advanced Error Reporting payload: the initial values of the writable
 * mask and severity registers.
 */
struct pciem_cap_aer_userspace {
	/**
	 * Uncorrectable Error Mask.
	 */
	__u32 uncor_mask;
	/**
	 * Uncorrectable Error Severity.
	 */
	__u32 uncor_severity;
	/**
	 * Correctable Error Mask.
	 */
	__u32 cor_mask;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_SET_WATCHPOINT`: report driver writes to one
 * register of a BAR as `PCIEM_EVENT_MMIO_WRITE` events.
 */
struct pciem_watchpoint_config {
	/**
	 * BAR slot of the register.
	 */
	__u32 bar_index;
	/**
	 * Offset of the register in the BAR, aligned to `width`.
	 */
	__u32 offset;
	/**
	 * Width in bytes: 1, 2, 4 or 8.
	 */
	__u32 width;
	/**
	 * `PCIEM_WP_FLAG_*`.
	 */
	__u32 flags;
	/**
	 * Kernel virtual address of the register, only with
	 * `PCIEM_WP_FLAG_BAR_MANUAL`; otherwise zero.
	 */
	__u64 addr;
};

/**
 * Argument of `PCIEM_IOCTL_SET_EVENTFD`: an eventfd signalled whenever the
 * kernel publishes events into the shared ring.
 */
struct pciem_eventfd_config {
	/**
	 * The eventfd, or -1 to detach the current one.
	 */
	__s32 eventfd;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_INJECT_IRQ`.
 */
struct pciem_irq_inject {
	/**
	 * MSI vector or MSI-X entry; 0 for INTx.
	 */
	__u32 vector;
	/**
	 * One of `PCIEM_IRQ_AUTO`, `_MSI`, `_MSIX`, `_INTX`.
	 */
	__u32 kind;
	/**
	 * `PCIEM_IRQ_FLAG_*` (INTx only).
	 */
	__u32 flags;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_SET_IRQFD`: bind an eventfd to an interrupt, so
 * that signalling the eventfd (from any process or thread) raises it with no
 * ioctl. One eventfd per interrupt (`EBUSY` if already bound); an INTx
 * binding takes exactly one of `LEVEL` and `DEASSERT`. Closing the eventfd
 * ends its binding.
 *
 * Errors: `EBADF` for an fd that is not open; `EINVAL` for an fd that is
 * not an eventfd, an unknown kind or bad flags; `EBUSY` when that
 * interrupt is already bound; `ENOENT` for REMOVE of an unbound
 * interrupt; `ENOSPC` past the module's limit of bindings; `ENODEV` once
 * the device is gone.
 */
struct pciem_irqfd_config {
	/**
	 * The eventfd.
	 */
	__s32 eventfd;
	/**
	 * MSI vector or MSI-X entry; 0 for INTx.
	 */
	__u32 vector;
	/**
	 * One of `PCIEM_IRQ_*` kinds.
	 */
	__u32 kind;
	/**
	 * `PCIEM_IRQFD_FLAG_*`.
	 */
	__u32 flags;
};

/**
 * Argument of `PCIEM_IOCTL_DMA_READ` (host memory at `bus_addr` into the
 * user buffer) and `PCIEM_IOCTL_DMA_WRITE` (user buffer into host memory).
 *
 * Errors (each with a reason in the kernel log): `EINVAL` for a zero or
 * over-limit length, a range that wraps around, or non-zero
 * `flags`/`reserved`; `ENXIO` for a bus address that does not reach RAM
 * (or is not mapped in the device's IOMMU domain, or, for DMA_WRITE, reaches
 * reserved memory); `EFAULT` for an inaccessible user buffer; `ENODEV`
 * before REGISTER; `EPERM` while the driver has not set Bus Master Enable;
 * `EINTR` when a fatal signal ends a long transfer.
 */
struct pciem_dma_op {
	/**
	 * Bus address (IOVA when the device sits behind an IOMMU).
	 */
	__u64 bus_addr;
	/**
	 * Address of the user buffer.
	 */
	__u64 user_addr;
	/**
	 * Bytes to transfer, 1..=`PCIEM_DMA_MAX_LEN`.
	 */
	__u64 length;
	/**
	 * No flags are defined yet; must be zero.
	 */
	__u32 flags;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_DMA_ATOMIC`: one 8-byte atomic operation on an
 * 8-byte aligned bus address.
 *
 * Errors: `EINVAL` for an address that is not 8-byte aligned, an unknown
 * `op` or non-zero `flags` (memory is not touched); otherwise as for
 * `pciem_dma_op`.
 */
struct pciem_dma_atomic {
	/**
	 * Bus address, 8-byte aligned.
	 */
	__u64 bus_addr;
	/**
	 * Operand (the new value for SWAP and CAS).
	 */
	__u64 operand;
	/**
	 * Expected value, CAS only.
	 */
	__u64 compare;
	/**
	 * Out: the value before the operation.
	 */
	__u64 result;
	/**
	 * One of `PCIEM_ATOMIC_*`.
	 */
	__u32 op;
	/**
	 * Must be zero.
	 */
	__u32 flags;
};

/**
 * Argument of `PCIEM_IOCTL_DMA_INDIRECT`: NVMe-style scatter DMA described
 * by PRP1/PRP2, where PRP2 is either the second page or a pointer to a PRP
 * list whose last entry chains to the next list page.
 *
 * Errors: `EINVAL` for misaligned entries, a bad length or page size, or
 * unknown flags; `ELOOP` for a list chain that loops; `E2BIG` for a chain
 * longer than any valid transfer needs; otherwise as for `pciem_dma_op`.
 */
struct pciem_dma_indirect {
	/**
	 * First data pointer (may have a page offset).
	 */
	__u64 prp1;
	/**
	 * Second page, or PRP list pointer.
	 */
	__u64 prp2;
	/**
	 * Address of the user buffer.
	 */
	__u64 user_addr;
	/**
	 * Bytes to transfer, 1..=`PCIEM_DMA_MAX_LEN`.
	 */
	__u64 length;
	/**
	 * Memory page size of the PRPs: a power of two from 4096; 0 means 4096.
	 */
	__u32 page_size;
	/**
	 * `PCIEM_PRP_FLAG_*`.
	 */
	__u32 flags;
};

/**
 * Argument of `PCIEM_IOCTL_P2P_READ` / `PCIEM_IOCTL_P2P_WRITE`: a transfer
 * to or from a peer's BAR, allowed only inside the module's `p2p_regions`.
 *
 * Errors: `EACCES` for a transfer not wholly inside one whitelisted region
 * (also when none is configured); `EINVAL` for a malformed request;
 * `EFAULT` for an inaccessible user buffer; `ENODEV` before REGISTER;
 * `EPERM` while bus mastering is disabled.
 */
struct pciem_p2p_op {
	/**
	 * Physical address in the peer's BAR.
	 */
	__u64 target_addr;
	/**
	 * Address of the user buffer.
	 */
	__u64 user_addr;
	/**
	 * Bytes to transfer, 1..=`PCIEM_DMA_MAX_LEN`.
	 */
	__u64 length;
	/**
	 * No flags are defined yet; must be zero.
	 */
	__u32 flags;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_SET_BAR_MODE`: the access mode of one BAR,
 * before REGISTER.
 */
struct pciem_bar_mode {
	/**
	 * BAR slot, 0..=5 (the first slot of a 64-bit BAR).
	 */
	__u32 bar_index;
	/**
	 * `PCIEM_BAR_MODE_*`.
	 */
	__u32 mode;
	/**
	 * Must be zero.
	 */
	__u32 flags;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_ADD_TRAP_RANGE`: how accesses to a range of a
 * trapped BAR are handled, before REGISTER. Ranges of one BAR must not
 * overlap; READ_MODEL and READ_NOTIFY exclude each other.
 */
struct pciem_trap_range {
	/**
	 * BAR slot; the BAR must be in trap mode.
	 */
	__u32 bar_index;
	/**
	 * `PCIEM_TRAP_*`.
	 */
	__u32 flags;
	/**
	 * First byte of the range in the BAR.
	 */
	__u64 offset;
	/**
	 * Length in bytes, at least 1; the range lies inside the BAR.
	 */
	__u64 length;
};

/**
 * Argument of `PCIEM_IOCTL_SET_READ_TIMEOUT`: how long a model-answered
 * read waits before it completes all-ones.
 */
struct pciem_read_timeout {
	/**
	 * Microseconds, 1..=`PCIEM_READ_TIMEOUT_MAX_US`.
	 */
	__u32 timeout_us;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_COMPLETE_READ`: the answer to the
 * `MMIO_READ` event whose `id` this is (the same effect as writing the
 * read-response slot).
 */
struct pciem_read_completion {
	/**
	 * The event's `id`.
	 */
	__u64 id;
	/**
	 * The value read, in the low `size` bytes.
	 */
	__u64 value;
};

/**
 * Argument of `PCIEM_IOCTL_SET_DMA_CHECK`: the device's DMA check mode,
 * before REGISTER.
 */
struct pciem_dma_check_mode {
	/**
	 * `PCIEM_DMA_CHECK_*`.
	 */
	__u32 mode;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_SURPRISE_REMOVE`. Only after REGISTER; once
 * per device (`EALREADY` after).
 */
struct pciem_surprise_remove {
	/**
	 * Must be zero (no flags are defined yet).
	 */
	__u32 flags;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_SET_ROOT_PORT`, before REGISTER.
 */
struct pciem_root_port {
	/**
	 * `PCIEM_ROOT_PORT_*`; `PCIEM_ROOT_PORT_HOTPLUG` must be set.
	 */
	__u32 flags;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_SET_FUNCTION`.
 */
struct pciem_function {
	/**
	 * The function the following ioctls are about, below
	 * `PCIEM_MAX_FUNCTIONS`.
	 */
	__u32 function;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * Argument of `PCIEM_IOCTL_INJECT_AER`: the device reports an error to its
 * root port (which needs `PCIEM_ROOT_PORT_AER`; the device needs an AER
 * capability). The device's AER status register of the severity gets
 * `status`, an uncorrectable error also its First Error Pointer and
 * `header_log`; the port records the message in Root Error Status and
 * Error Source and interrupts if the AER driver enabled that severity.
 */
struct pciem_aer_inject {
	/**
	 * `PCIEM_AER_*`.
	 */
	__u32 severity;
	/**
	 * Bits of the Correctable or Uncorrectable Error Status register
	 * (at least one, only implemented ones).
	 */
	__u32 status;
	/**
	 * The TLP header of an uncorrectable error (Header Log).
	 */
	__u32 header_log[4];
	/**
	 * Must be zero.
	 */
	__u32 flags;
	/**
	 * Must be zero.
	 */
	__u32 reserved;
};

/**
 * One read-response slot. The kernel allocates slot `id % PCIEM_READ_SLOTS`
 * to a waiting read; the model writes `value`, then `id` (release).
 */
struct pciem_read_response {
	/**
	 * The id being answered; the kernel takes `value` when this equals the
	 * id it waits for.
	 */
	__u64 id;
	/**
	 * The value read.
	 */
	__u64 value;
	/**
	 * Padding to a cache line; ignored.
	 */
	__u64 reserved[6];
};

/**
 * The read-response page.
 */
struct pciem_read_responses {
	/**
	 * The slots.
	 */
	struct pciem_read_response slots[PCIEM_READ_SLOTS];
};

/**
 * One event, 64 bytes (one cache line).
 */
struct pciem_event {
	/**
	 * Sequence number: 0 for the first event the producer tried to publish,
	 * +1 for each after, whether it fitted in the ring or overflowed.
	 */
	__u64 seq;
	/**
	 * One of `PCIEM_EVENT_*`.
	 */
	__u32 type;
	/**
	 * BAR slot (MMIO events).
	 */
	__u32 bar;
	/**
	 * Offset in the BAR or in configuration space.
	 */
	__u64 offset;
	/**
	 * Value written, or the reset kind.
	 */
	__u64 data;
	/**
	 * Access width in bytes.
	 */
	__u32 size;
	/**
	 * `PCIEM_EVENT_FLAG_*`.
	 */
	__u32 flags;
	/**
	 * Producer's monotonic clock in nanoseconds.
	 */
	__u64 timestamp_ns;
	/**
	 * Request identifier of a model-answered read; the second 8
	 * instruction bytes of an `ERROR` event; zero otherwise.
	 */
	__u64 id;
	/**
	 * Ring publication stamp: `p + 1` for the `p`-th slot the producer
	 * filled (see the module documentation). Written by the ring producer,
	 * whatever the caller put here; ignored outside the ring.
	 */
	__u64 ticket;
};

/**
 * The shared event ring; see the module documentation for the protocol.
 */
struct pciem_shared_ring {
	/**
	 * Consumer index: next slot to read, in `0..PCIEM_RING_SIZE`. Written
	 * only by the consumer, after it is done with the slots before it.
	 */
	__u32 head;
	/**
	 * `PCIEM_RING_CONSUMER_*`, written only by the consumer: whether the
	 * producer must signal the ring's eventfd for each event (see
	 * `PCIEM_RING_CONSUMER_AWAKE`).
	 */
	__u32 consumer_state;
	/**
	 * Padding keeping `tail` 128 bytes away.
	 */
	__u8 reserved0[120];
	/**
	 * Producer index: next slot to fill, in `0..PCIEM_RING_SIZE`. Written
	 * only by the producer, after the tickets of the slots before it.
	 */
	__u32 tail;
	/**
	 * Padding.
	 */
	__u32 reserved1;
	/**
	 * Events that did not fit. Written only by the producer.
	 */
	__u64 overflow;
	/**
	 * Padding up to the first event.
	 */
	__u8 reserved2[112];
	/**
	 * The slots; each is published by its `ticket`.
	 */
	struct pciem_event events[PCIEM_RING_SIZE];
};

/* ioctl numbers (pciem_abi::PCIEM_IOCTLS). */
#define PCIEM_IOCTL_GET_VERSION _IOR(PCIEM_IOCTL_MAGIC, 0x00, struct pciem_version)
#define PCIEM_IOCTL_CREATE_DEVICE _IOW(PCIEM_IOCTL_MAGIC, 0x01, struct pciem_create_device)
#define PCIEM_IOCTL_ADD_BAR _IOW(PCIEM_IOCTL_MAGIC, 0x02, struct pciem_bar_config)
#define PCIEM_IOCTL_ADD_CAPABILITY _IOW(PCIEM_IOCTL_MAGIC, 0x03, struct pciem_cap_config)
#define PCIEM_IOCTL_SET_CONFIG _IOW(PCIEM_IOCTL_MAGIC, 0x04, struct pciem_config_space)
#define PCIEM_IOCTL_SET_CONFIG_IMAGE _IOW(PCIEM_IOCTL_MAGIC, 0x05, struct pciem_config_image)
#define PCIEM_IOCTL_REGISTER _IO(PCIEM_IOCTL_MAGIC, 0x06)
#define PCIEM_IOCTL_SET_WATCHPOINT _IOW(PCIEM_IOCTL_MAGIC, 0x07, struct pciem_watchpoint_config)
#define PCIEM_IOCTL_SET_EVENTFD _IOW(PCIEM_IOCTL_MAGIC, 0x08, struct pciem_eventfd_config)
#define PCIEM_IOCTL_SET_IRQFD _IOW(PCIEM_IOCTL_MAGIC, 0x09, struct pciem_irqfd_config)
#define PCIEM_IOCTL_INJECT_IRQ _IOW(PCIEM_IOCTL_MAGIC, 0x0A, struct pciem_irq_inject)
#define PCIEM_IOCTL_GET_BAR_INFO _IOWR(PCIEM_IOCTL_MAGIC, 0x0B, struct pciem_bar_info_query)
#define PCIEM_IOCTL_DMA_READ _IOW(PCIEM_IOCTL_MAGIC, 0x0C, struct pciem_dma_op)
#define PCIEM_IOCTL_DMA_WRITE _IOW(PCIEM_IOCTL_MAGIC, 0x0D, struct pciem_dma_op)
#define PCIEM_IOCTL_DMA_ATOMIC _IOWR(PCIEM_IOCTL_MAGIC, 0x0E, struct pciem_dma_atomic)
#define PCIEM_IOCTL_DMA_INDIRECT _IOW(PCIEM_IOCTL_MAGIC, 0x0F, struct pciem_dma_indirect)
#define PCIEM_IOCTL_P2P_READ _IOW(PCIEM_IOCTL_MAGIC, 0x10, struct pciem_p2p_op)
#define PCIEM_IOCTL_P2P_WRITE _IOW(PCIEM_IOCTL_MAGIC, 0x11, struct pciem_p2p_op)
#define PCIEM_IOCTL_SET_BAR_MODE _IOW(PCIEM_IOCTL_MAGIC, 0x12, struct pciem_bar_mode)
#define PCIEM_IOCTL_ADD_TRAP_RANGE _IOW(PCIEM_IOCTL_MAGIC, 0x13, struct pciem_trap_range)
#define PCIEM_IOCTL_SET_READ_TIMEOUT _IOW(PCIEM_IOCTL_MAGIC, 0x14, struct pciem_read_timeout)
#define PCIEM_IOCTL_START _IO(PCIEM_IOCTL_MAGIC, 0x15)
#define PCIEM_IOCTL_COMPLETE_READ _IOW(PCIEM_IOCTL_MAGIC, 0x16, struct pciem_read_completion)
#define PCIEM_IOCTL_SET_DMA_CHECK _IOW(PCIEM_IOCTL_MAGIC, 0x17, struct pciem_dma_check_mode)
#define PCIEM_IOCTL_SURPRISE_REMOVE _IOW(PCIEM_IOCTL_MAGIC, 0x18, struct pciem_surprise_remove)
#define PCIEM_IOCTL_SET_ROOT_PORT _IOW(PCIEM_IOCTL_MAGIC, 0x19, struct pciem_root_port)
#define PCIEM_IOCTL_INJECT_AER _IOW(PCIEM_IOCTL_MAGIC, 0x1A, struct pciem_aer_inject)
#define PCIEM_IOCTL_SET_FUNCTION _IOW(PCIEM_IOCTL_MAGIC, 0x1B, struct pciem_function)

/* Layout pinned by pciem_abi::layout (sizes and field offsets). */
PCIEM_ASSERT_SIZE(pciem_version, 16);
PCIEM_ASSERT_OFFSET(pciem_version, abi_version, 0);
PCIEM_ASSERT_OFFSET(pciem_version, ring_size, 4);
PCIEM_ASSERT_OFFSET(pciem_version, event_size, 8);
PCIEM_ASSERT_OFFSET(pciem_version, reserved, 12);
PCIEM_ASSERT_SIZE(pciem_create_device, 8);
PCIEM_ASSERT_OFFSET(pciem_create_device, flags, 0);
PCIEM_ASSERT_OFFSET(pciem_create_device, reserved, 4);
PCIEM_ASSERT_SIZE(pciem_bar_config, 16);
PCIEM_ASSERT_OFFSET(pciem_bar_config, bar_index, 0);
PCIEM_ASSERT_OFFSET(pciem_bar_config, flags, 4);
PCIEM_ASSERT_OFFSET(pciem_bar_config, size, 8);
PCIEM_ASSERT_SIZE(pciem_config_space, 16);
PCIEM_ASSERT_OFFSET(pciem_config_space, vendor_id, 0);
PCIEM_ASSERT_OFFSET(pciem_config_space, device_id, 2);
PCIEM_ASSERT_OFFSET(pciem_config_space, subsys_vendor_id, 4);
PCIEM_ASSERT_OFFSET(pciem_config_space, subsys_device_id, 6);
PCIEM_ASSERT_OFFSET(pciem_config_space, revision, 8);
PCIEM_ASSERT_OFFSET(pciem_config_space, class_code, 9);
PCIEM_ASSERT_OFFSET(pciem_config_space, header_type, 12);
PCIEM_ASSERT_OFFSET(pciem_config_space, interrupt_pin, 13);
PCIEM_ASSERT_OFFSET(pciem_config_space, reserved, 14);
PCIEM_ASSERT_SIZE(pciem_config_image, 12288);
PCIEM_ASSERT_OFFSET(pciem_config_image, config, 0);
PCIEM_ASSERT_OFFSET(pciem_config_image, wmask, 4096);
PCIEM_ASSERT_OFFSET(pciem_config_image, w1cmask, 8192);
PCIEM_ASSERT_SIZE(pciem_bar_info_query, 24);
PCIEM_ASSERT_OFFSET(pciem_bar_info_query, bar_index, 0);
PCIEM_ASSERT_OFFSET(pciem_bar_info_query, flags, 4);
PCIEM_ASSERT_OFFSET(pciem_bar_info_query, size, 8);
PCIEM_ASSERT_OFFSET(pciem_bar_info_query, bus_addr, 16);
PCIEM_ASSERT_SIZE(pciem_cap_config, 80);
PCIEM_ASSERT_OFFSET(pciem_cap_config, cap_type, 0);
PCIEM_ASSERT_OFFSET(pciem_cap_config, cap_size, 4);
PCIEM_ASSERT_OFFSET(pciem_cap_config, offset, 8);
PCIEM_ASSERT_OFFSET(pciem_cap_config, reserved, 12);
PCIEM_ASSERT_OFFSET(pciem_cap_config, cap_data, 16);
PCIEM_ASSERT_SIZE(pciem_cap_msi_userspace, 4);
PCIEM_ASSERT_OFFSET(pciem_cap_msi_userspace, num_vectors_log2, 0);
PCIEM_ASSERT_OFFSET(pciem_cap_msi_userspace, has_64bit, 1);
PCIEM_ASSERT_OFFSET(pciem_cap_msi_userspace, has_masking, 2);
PCIEM_ASSERT_OFFSET(pciem_cap_msi_userspace, reserved, 3);
PCIEM_ASSERT_SIZE(pciem_cap_msix_userspace, 12);
PCIEM_ASSERT_OFFSET(pciem_cap_msix_userspace, table_size, 0);
PCIEM_ASSERT_OFFSET(pciem_cap_msix_userspace, table_bar, 2);
PCIEM_ASSERT_OFFSET(pciem_cap_msix_userspace, pba_bar, 3);
PCIEM_ASSERT_OFFSET(pciem_cap_msix_userspace, table_offset, 4);
PCIEM_ASSERT_OFFSET(pciem_cap_msix_userspace, pba_offset, 8);
PCIEM_ASSERT_SIZE(pciem_cap_pm_userspace, 4);
PCIEM_ASSERT_OFFSET(pciem_cap_pm_userspace, no_soft_reset, 0);
PCIEM_ASSERT_OFFSET(pciem_cap_pm_userspace, pme_support, 1);
PCIEM_ASSERT_OFFSET(pciem_cap_pm_userspace, d1_support, 2);
PCIEM_ASSERT_OFFSET(pciem_cap_pm_userspace, d2_support, 3);
PCIEM_ASSERT_SIZE(pciem_cap_pcie_userspace, 8);
PCIEM_ASSERT_OFFSET(pciem_cap_pcie_userspace, device_type, 0);
PCIEM_ASSERT_OFFSET(pciem_cap_pcie_userspace, max_link_speed, 1);
PCIEM_ASSERT_OFFSET(pciem_cap_pcie_userspace, max_link_width, 2);
PCIEM_ASSERT_OFFSET(pciem_cap_pcie_userspace, flr, 3);
PCIEM_ASSERT_OFFSET(pciem_cap_pcie_userspace, max_payload, 4);
PCIEM_ASSERT_OFFSET(pciem_cap_pcie_userspace, reserved, 5);
PCIEM_ASSERT_SIZE(pciem_cap_vendor_userspace, 60);
PCIEM_ASSERT_OFFSET(pciem_cap_vendor_userspace, data_len, 0);
PCIEM_ASSERT_OFFSET(pciem_cap_vendor_userspace, reserved, 2);
PCIEM_ASSERT_OFFSET(pciem_cap_vendor_userspace, data, 4);
PCIEM_ASSERT_SIZE(pciem_cap_pasid_userspace, 4);
PCIEM_ASSERT_OFFSET(pciem_cap_pasid_userspace, max_pasid_width, 0);
PCIEM_ASSERT_OFFSET(pciem_cap_pasid_userspace, exec, 1);
PCIEM_ASSERT_OFFSET(pciem_cap_pasid_userspace, privileged, 2);
PCIEM_ASSERT_OFFSET(pciem_cap_pasid_userspace, reserved, 3);
PCIEM_ASSERT_SIZE(pciem_cap_dsn_userspace, 8);
PCIEM_ASSERT_OFFSET(pciem_cap_dsn_userspace, serial, 0);
PCIEM_ASSERT_SIZE(pciem_cap_vsec_userspace, 60);
PCIEM_ASSERT_OFFSET(pciem_cap_vsec_userspace, vsec_id, 0);
PCIEM_ASSERT_OFFSET(pciem_cap_vsec_userspace, vsec_rev, 2);
PCIEM_ASSERT_OFFSET(pciem_cap_vsec_userspace, reserved, 3);
PCIEM_ASSERT_OFFSET(pciem_cap_vsec_userspace, data_len, 4);
PCIEM_ASSERT_OFFSET(pciem_cap_vsec_userspace, reserved2, 6);
PCIEM_ASSERT_OFFSET(pciem_cap_vsec_userspace, data, 8);
PCIEM_ASSERT_SIZE(pciem_cap_aer_userspace, 16);
PCIEM_ASSERT_OFFSET(pciem_cap_aer_userspace, uncor_mask, 0);
PCIEM_ASSERT_OFFSET(pciem_cap_aer_userspace, uncor_severity, 4);
PCIEM_ASSERT_OFFSET(pciem_cap_aer_userspace, cor_mask, 8);
PCIEM_ASSERT_OFFSET(pciem_cap_aer_userspace, reserved, 12);
PCIEM_ASSERT_SIZE(pciem_watchpoint_config, 24);
PCIEM_ASSERT_OFFSET(pciem_watchpoint_config, bar_index, 0);
PCIEM_ASSERT_OFFSET(pciem_watchpoint_config, offset, 4);
PCIEM_ASSERT_OFFSET(pciem_watchpoint_config, width, 8);
PCIEM_ASSERT_OFFSET(pciem_watchpoint_config, flags, 12);
PCIEM_ASSERT_OFFSET(pciem_watchpoint_config, addr, 16);
PCIEM_ASSERT_SIZE(pciem_eventfd_config, 8);
PCIEM_ASSERT_OFFSET(pciem_eventfd_config, eventfd, 0);
PCIEM_ASSERT_OFFSET(pciem_eventfd_config, reserved, 4);
PCIEM_ASSERT_SIZE(pciem_irq_inject, 16);
PCIEM_ASSERT_OFFSET(pciem_irq_inject, vector, 0);
PCIEM_ASSERT_OFFSET(pciem_irq_inject, kind, 4);
PCIEM_ASSERT_OFFSET(pciem_irq_inject, flags, 8);
PCIEM_ASSERT_OFFSET(pciem_irq_inject, reserved, 12);
PCIEM_ASSERT_SIZE(pciem_irqfd_config, 16);
PCIEM_ASSERT_OFFSET(pciem_irqfd_config, eventfd, 0);
PCIEM_ASSERT_OFFSET(pciem_irqfd_config, vector, 4);
PCIEM_ASSERT_OFFSET(pciem_irqfd_config, kind, 8);
PCIEM_ASSERT_OFFSET(pciem_irqfd_config, flags, 12);
PCIEM_ASSERT_SIZE(pciem_dma_op, 32);
PCIEM_ASSERT_OFFSET(pciem_dma_op, bus_addr, 0);
PCIEM_ASSERT_OFFSET(pciem_dma_op, user_addr, 8);
PCIEM_ASSERT_OFFSET(pciem_dma_op, length, 16);
PCIEM_ASSERT_OFFSET(pciem_dma_op, flags, 24);
PCIEM_ASSERT_OFFSET(pciem_dma_op, reserved, 28);
PCIEM_ASSERT_SIZE(pciem_dma_atomic, 40);
PCIEM_ASSERT_OFFSET(pciem_dma_atomic, bus_addr, 0);
PCIEM_ASSERT_OFFSET(pciem_dma_atomic, operand, 8);
PCIEM_ASSERT_OFFSET(pciem_dma_atomic, compare, 16);
PCIEM_ASSERT_OFFSET(pciem_dma_atomic, result, 24);
PCIEM_ASSERT_OFFSET(pciem_dma_atomic, op, 32);
PCIEM_ASSERT_OFFSET(pciem_dma_atomic, flags, 36);
PCIEM_ASSERT_SIZE(pciem_dma_indirect, 40);
PCIEM_ASSERT_OFFSET(pciem_dma_indirect, prp1, 0);
PCIEM_ASSERT_OFFSET(pciem_dma_indirect, prp2, 8);
PCIEM_ASSERT_OFFSET(pciem_dma_indirect, user_addr, 16);
PCIEM_ASSERT_OFFSET(pciem_dma_indirect, length, 24);
PCIEM_ASSERT_OFFSET(pciem_dma_indirect, page_size, 32);
PCIEM_ASSERT_OFFSET(pciem_dma_indirect, flags, 36);
PCIEM_ASSERT_SIZE(pciem_p2p_op, 32);
PCIEM_ASSERT_OFFSET(pciem_p2p_op, target_addr, 0);
PCIEM_ASSERT_OFFSET(pciem_p2p_op, user_addr, 8);
PCIEM_ASSERT_OFFSET(pciem_p2p_op, length, 16);
PCIEM_ASSERT_OFFSET(pciem_p2p_op, flags, 24);
PCIEM_ASSERT_OFFSET(pciem_p2p_op, reserved, 28);
PCIEM_ASSERT_SIZE(pciem_bar_mode, 16);
PCIEM_ASSERT_OFFSET(pciem_bar_mode, bar_index, 0);
PCIEM_ASSERT_OFFSET(pciem_bar_mode, mode, 4);
PCIEM_ASSERT_OFFSET(pciem_bar_mode, flags, 8);
PCIEM_ASSERT_OFFSET(pciem_bar_mode, reserved, 12);
PCIEM_ASSERT_SIZE(pciem_trap_range, 24);
PCIEM_ASSERT_OFFSET(pciem_trap_range, bar_index, 0);
PCIEM_ASSERT_OFFSET(pciem_trap_range, flags, 4);
PCIEM_ASSERT_OFFSET(pciem_trap_range, offset, 8);
PCIEM_ASSERT_OFFSET(pciem_trap_range, length, 16);
PCIEM_ASSERT_SIZE(pciem_read_timeout, 8);
PCIEM_ASSERT_OFFSET(pciem_read_timeout, timeout_us, 0);
PCIEM_ASSERT_OFFSET(pciem_read_timeout, reserved, 4);
PCIEM_ASSERT_SIZE(pciem_read_completion, 16);
PCIEM_ASSERT_OFFSET(pciem_read_completion, id, 0);
PCIEM_ASSERT_OFFSET(pciem_read_completion, value, 8);
PCIEM_ASSERT_SIZE(pciem_dma_check_mode, 8);
PCIEM_ASSERT_OFFSET(pciem_dma_check_mode, mode, 0);
PCIEM_ASSERT_OFFSET(pciem_dma_check_mode, reserved, 4);
PCIEM_ASSERT_SIZE(pciem_surprise_remove, 8);
PCIEM_ASSERT_OFFSET(pciem_surprise_remove, flags, 0);
PCIEM_ASSERT_OFFSET(pciem_surprise_remove, reserved, 4);
PCIEM_ASSERT_SIZE(pciem_root_port, 8);
PCIEM_ASSERT_OFFSET(pciem_root_port, flags, 0);
PCIEM_ASSERT_OFFSET(pciem_root_port, reserved, 4);
PCIEM_ASSERT_SIZE(pciem_function, 8);
PCIEM_ASSERT_OFFSET(pciem_function, function, 0);
PCIEM_ASSERT_OFFSET(pciem_function, reserved, 4);
PCIEM_ASSERT_SIZE(pciem_aer_inject, 32);
PCIEM_ASSERT_OFFSET(pciem_aer_inject, severity, 0);
PCIEM_ASSERT_OFFSET(pciem_aer_inject, status, 4);
PCIEM_ASSERT_OFFSET(pciem_aer_inject, header_log, 8);
PCIEM_ASSERT_OFFSET(pciem_aer_inject, flags, 24);
PCIEM_ASSERT_OFFSET(pciem_aer_inject, reserved, 28);
PCIEM_ASSERT_SIZE(pciem_read_response, 64);
PCIEM_ASSERT_OFFSET(pciem_read_response, id, 0);
PCIEM_ASSERT_OFFSET(pciem_read_response, value, 8);
PCIEM_ASSERT_OFFSET(pciem_read_response, reserved, 16);
PCIEM_ASSERT_SIZE(pciem_read_responses, 4096);
PCIEM_ASSERT_OFFSET(pciem_read_responses, slots, 0);
PCIEM_ASSERT_SIZE(pciem_event, 64);
PCIEM_ASSERT_OFFSET(pciem_event, seq, 0);
PCIEM_ASSERT_OFFSET(pciem_event, type, 8);
PCIEM_ASSERT_OFFSET(pciem_event, bar, 12);
PCIEM_ASSERT_OFFSET(pciem_event, offset, 16);
PCIEM_ASSERT_OFFSET(pciem_event, data, 24);
PCIEM_ASSERT_OFFSET(pciem_event, size, 32);
PCIEM_ASSERT_OFFSET(pciem_event, flags, 36);
PCIEM_ASSERT_OFFSET(pciem_event, timestamp_ns, 40);
PCIEM_ASSERT_OFFSET(pciem_event, id, 48);
PCIEM_ASSERT_OFFSET(pciem_event, ticket, 56);
PCIEM_ASSERT_SIZE(pciem_shared_ring, 65792);
PCIEM_ASSERT_OFFSET(pciem_shared_ring, head, 0);
PCIEM_ASSERT_OFFSET(pciem_shared_ring, consumer_state, 4);
PCIEM_ASSERT_OFFSET(pciem_shared_ring, reserved0, 8);
PCIEM_ASSERT_OFFSET(pciem_shared_ring, tail, 128);
PCIEM_ASSERT_OFFSET(pciem_shared_ring, reserved1, 132);
PCIEM_ASSERT_OFFSET(pciem_shared_ring, overflow, 136);
PCIEM_ASSERT_OFFSET(pciem_shared_ring, reserved2, 144);
PCIEM_ASSERT_OFFSET(pciem_shared_ring, events, 256);

#endif /* PCIEM_UAPI_PCIEM_H */
