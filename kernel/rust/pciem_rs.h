/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * pciem_rs.h - the C view of the Rust logic shared with userspace.
 *
 * These functions are implemented in kernel/rust/ (a thin extern "C" shim)
 * by the same pciem-core source that userspace and the mock backend use:
 * configuration-space access semantics, the builder and capability layout,
 * the event-ring producer, and the rules the mock backend must not drift
 * from (which interrupt AUTO means, masked MSI/MSI-X held pending, reset
 * keeping the BARs, watch and DMA-length checks). The C module is glue to
 * Linux APIs only.
 *
 * Conventions: 0 on success or a negative errno. Every fallible function
 * takes `const char **reason`; on failure it points it at a static,
 * NUL-terminated description for the kernel log (never NULL on failure,
 * untouched on success). Pointers must be valid; the functions never sleep,
 * never allocate, never panic on any input, and may be called in atomic
 * context. Callers serialise access to one builder, image or producer.
 */
#ifndef PCIEM_RS_H
#define PCIEM_RS_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/stddef.h>
#include <linux/types.h>
#include "../include/uapi/pciem.h"

/*
 * A device-initiated transfer of @len bytes through the buffer at @addr:
 * -EINVAL for zero bytes, more than PCIEM_DMA_MAX_LEN, or a buffer that
 * wraps around the address space (pciem-core's transfer rules, which the
 * mock backend applies too).
 */
int pciem_rs_dma_check_len(u64 addr, u64 len, const char **reason);

/*
 * The interrupt PCIEM_IRQ_AUTO stands for (pciem-core's choice, the mock
 * backend's too): *kind = PCIEM_IRQ_MSIX if @msix (MSI-X enabled), else
 * PCIEM_IRQ_MSI if @msi, else PCIEM_IRQ_INTX if @intx (a line is wired) and
 * @vector is 0. -EIO if nothing is enabled, -EINVAL for INTx with a vector.
 */
int pciem_rs_irq_auto(u32 vector, u32 msix, u32 msi, u32 intx, u32 *kind,
		      const char **reason);

/*
 * A watched register (pciem-core's rules, the backends' too): its @width
 * is 1, 2, 4 or 8 and divides @offset; it lies inside its BAR of @bar_size
 * bytes (0: the device has no such BAR). -EINVAL otherwise.
 */
int pciem_rs_watch_check_shape(u32 offset, u32 width, const char **reason);
int pciem_rs_watch_check_in_bar(u32 offset, u32 width, u64 bar_size,
				const char **reason);

/*
 * A new watch on @bar + @offset beside the @n_held watches the device holds
 * (@held_bars[i] + @held_offsets[i], at most PCIEM_MAX_WATCHPOINTS): -EEXIST
 * if one of them names the same register, -ENOSPC if every debug register
 * is taken.
 */
int pciem_rs_watch_check_addition(const u32 *held_bars, const u32 *held_offsets,
				  u32 n_held, u32 bar, u32 offset,
				  const char **reason);

/*
 * MSI-X (pciem-core's rules, the mock backend's too): an entry is held in
 * the Pending Bit Array, not sent, while @function_mask is set or its
 * Vector Control word @vector_ctrl has the Mask bit; its pending bit lives
 * in the 64-bit PBA word at byte pciem_rs_msix_pba_word(entry), which
 * pciem_rs_msix_pba_update() returns with that bit set (@pending) or clear.
 */
u32 pciem_rs_msix_held(u32 function_mask, u32 vector_ctrl);
u64 pciem_rs_msix_pba_word(u32 entry);
u64 pciem_rs_msix_pba_update(u64 word, u32 entry, u32 pending);

/*
 * Opaque builder for the incremental CREATE/ADD_BAR/ADD_CAPABILITY/SET_CONFIG
 * path. Allocate pciem_rs_builder_size() bytes aligned to 8.
 */
struct pciem_rs_builder;

size_t pciem_rs_builder_size(void);
void pciem_rs_builder_init(struct pciem_rs_builder *b);
int pciem_rs_builder_set_identity(struct pciem_rs_builder *b,
				  const struct pciem_config_space *id,
				  const char **reason);
int pciem_rs_builder_add_bar(struct pciem_rs_builder *b,
			     const struct pciem_bar_config *bar,
			     const char **reason);
int pciem_rs_builder_add_cap(struct pciem_rs_builder *b,
			     const struct pciem_cap_config *cap,
			     const char **reason);
/* Lays out the header, BARs and capabilities into *out (config + masks). */
int pciem_rs_builder_build(const struct pciem_rs_builder *b,
			   struct pciem_config_image *out,
			   const char **reason);

/*
 * Checks an image handed over whole by SET_CONFIG_IMAGE: header type 0,
 * BAR masks describing power-of-two sizes with 64-bit BARs paired, no I/O
 * BARs, capability chains inside their spaces and acyclic.
 */
int pciem_rs_image_validate(const struct pciem_config_image *img,
			    const char **reason);

/* Effects of a host configuration write (WriteEffects in pciem-core). */
#define PCIEM_RS_EFFECT_CHANGED		BIT(0)
#define PCIEM_RS_EFFECT_COMMAND		BIT(1)
#define PCIEM_RS_EFFECT_BAR		BIT(2)
#define PCIEM_RS_EFFECT_MSI		BIT(3)
#define PCIEM_RS_EFFECT_MSIX		BIT(4)
#define PCIEM_RS_EFFECT_PM_STATE	BIT(5)
#define PCIEM_RS_EFFECT_FLR		BIT(6)
#define PCIEM_RS_EFFECT_D3HOT_TO_D0	BIT(7)

/*
 * Host (driver/PCI core) configuration access: size 1, 2 or 4, any offset
 * inside the 4096-byte space; writes obey the write and W1C masks.
 */
int pciem_rs_cfg_read(const struct pciem_config_image *img, u32 where,
		      u32 size, u32 *val, const char **reason);
int pciem_rs_cfg_write(struct pciem_config_image *img, u32 where, u32 size,
		       u32 val, u32 *effects, const char **reason);

/*
 * BAR `index` as the image describes it: -ENOENT if unused (or the upper
 * half of a 64-bit BAR). flags are PCIEM_BAR_* bits.
 */
int pciem_rs_bar_info(const struct pciem_config_image *img, u32 index,
		      u64 *size, u32 *flags, const char **reason);
/*
 * Device-side: program BAR `index` with `addr` (bypasses the masks; used to
 * pre-assign BARs inside the bridge window before scanning).
 */
int pciem_rs_bar_set_address(struct pciem_config_image *img, u32 index,
			     u64 addr, const char **reason);

struct pciem_rs_msi {
	u32 cap_offset;
	u32 enabled;		/* MSI Enable */
	u32 vectors_enabled;	/* 1 << Multiple Message Enable */
	u32 per_vector_mask;	/* capable of per-vector masking */
	u32 mask;		/* Mask Bits (0 if not capable) */
	u32 pending;		/* Pending Bits (0 if not capable) */
	u64 address;
	u32 data;
	u32 reserved;
};

/* -ENOENT if the image has no MSI capability. */
int pciem_rs_msi_state(const struct pciem_config_image *img,
		       struct pciem_rs_msi *out, const char **reason);
/*
 * Function reset (FLR, D3hot->D0): *img becomes *initial again except the
 * six BAR registers, which keep the addresses the host assigned.
 */
void pciem_rs_cfg_reset(struct pciem_config_image *img,
			const struct pciem_config_image *initial);

/*
 * Device-side, raising MSI @vector: if the driver masked it (per-vector
 * masking), set its Pending bit and return 1 (held); 0 to deliver it now.
 */
u32 pciem_rs_msi_hold_if_masked(struct pciem_config_image *img, u32 vector);
/*
 * Device-side, after a config write: the enabled vectors pending and no
 * longer masked (a bit each), their Pending bits cleared; 0 if MSI is off.
 */
u32 pciem_rs_msi_take_unmasked(struct pciem_config_image *img);

/*
 * The virtual root port (pciem-core config::root_port): a type-1 space with
 * a hot-plug slot (present, link up), one MSI vector, bus `secondary` below
 * it and the 1 MiB granular memory window [mem_base, mem_limit].
 */
int pciem_rs_root_port_build(struct pciem_config_image *img, u16 slot,
			     u8 secondary, u32 mem_base, u32 mem_limit, u32 aer,
			     const char **reason);
/*
 * Device side of the slot: presence and link follow `present`, a change
 * sets the change bits. Returns 1 if the port's hot-plug interrupt is due.
 */
u32 pciem_rs_root_port_presence(struct pciem_config_image *img, u32 present);
/*
 * AER (severity PCIEM_AER_*): the reporting device's status, First Error
 * Pointer, Header Log and Device Status; -ENOENT without an AER capability,
 * -EINVAL for a bad severity or status.
 */
int pciem_rs_aer_record(struct pciem_config_image *img, u32 severity,
			u32 status, const u32 header[4], const char **reason);
/*
 * The port's Root Error Status and Error Source record the message from
 * requester `source`; 1 if the port's interrupt is due.
 */
u32 pciem_rs_aer_report(struct pciem_config_image *img, u32 severity,
			u16 source);

/*
 * Producer side of the shared event ring (ABI version 2). The producer keeps
 * its own position, so a consumer scribbling on the shared page cannot make
 * it write out of bounds; `head` is read from the page and masked. A push
 * writes the slot, publishes it by its ticket (pos + 1), then stores `tail`.
 * Layout pinned by pciem-core (Producer) and by static_assert in ring.c.
 */
struct pciem_rs_producer {
	u64 pos;		/* slots filled so far; next slot pos % size */
	u32 cached_head;	/* private to the Rust side: last head it loaded */
	u32 reserved;
	u64 next_seq;
	u64 overflow;
};

void pciem_rs_producer_init(struct pciem_rs_producer *p);
/*
 * Publishes *ev (its seq is assigned here). 0 if published, -ENOSPC if the
 * ring was full: then the event is counted in the ring's overflow counter
 * and `reason` is set.
 */
int pciem_rs_ring_push(struct pciem_shared_ring *ring,
		       struct pciem_rs_producer *p,
		       const struct pciem_event *ev, const char **reason);

/*
 * After a push: 1 if the consumer needs the eventfd signalled, 0 if it said
 * it is draining and will look again before it sleeps.
 */
u32 pciem_rs_ring_needs_signal(struct pciem_shared_ring *ring);

/*
 * Atomics: *new_val = the value memory holds after `op` (PCIEM_ATOMIC_*)
 * given the value `old` before it; -EINVAL for an unknown op.
 */
int pciem_rs_atomic_apply(u32 op, u64 operand, u64 compare, u64 old,
			  u64 *new_val, const char **reason);

/*
 * NVMe-style PRP walk (pciem-core's walker) of req->prp1/prp2/length/
 * page_size: read_list() fills `len` bytes with host memory at bus address
 * `addr` (list entries), segment() moves bytes pos..pos+len of the transfer
 * at bus address `addr`; both return 0 or a negative errno, which ends the
 * walk and is returned. Malformed descriptions: -EINVAL (alignment, length,
 * page size), -ELOOP (a list chains back to a walked list page), -E2BIG
 * (more list pages than any valid transfer needs). May sleep if the
 * callbacks do.
 */
int pciem_rs_prp_walk(const struct pciem_dma_indirect *req, void *ctx,
		      int (*read_list)(void *ctx, u64 addr, u8 *buf, u32 len),
		      int (*segment)(void *ctx, u64 pos, u64 addr, u64 len),
		      const char **reason);

/* DMA checking: pciem-core's dmacheck over the module's own records. */
struct pciem_rs_dma_map {
	u64 start;
	u64 len;
	u32 dir;		/* PCIEM_DMA_BIDIRECTIONAL, _TO_DEVICE, _FROM_DEVICE */
	u32 reserved;
	u64 tag;		/* the module's record, returned as given */
};

struct pciem_rs_dma_fault {
	u32 kind;		/* PCIEM_DMA_FAULT_* */
	u32 has_culprit;	/* culprit is valid (all kinds but UNMAPPED) */
	u64 first_bad;		/* first byte no suitable mapping covers */
	u64 bytes;		/* OUTSIDE: bytes of the access outside */
	struct pciem_rs_dma_map culprit;
};

typedef bool (*pciem_rs_dma_visit)(void *vctx, const struct pciem_rs_dma_map *m);

/*
 * Checks the model's access (PCIEM_DMA_ACCESS_*) of len bytes at bus
 * address addr. overlapping() calls visit(vctx, m) for each live mapping
 * overlapping lo..=hi in ascending order of start until visit returns
 * false; unmapped_at() fills *out with the most recent unmap covering addr
 * and says whether there was one. Returns 0 when the access is allowed,
 * with *cover the one mapping that allows all of it (len 0 if it takes
 * several), 1 with *fault filled when it is not, -EINVAL for an unknown
 * access or a NULL pointer. Never sleeps unless the callbacks do.
 */
int pciem_rs_dma_check(u64 addr, u64 len, u32 access, void *ctx,
		       void (*overlapping)(void *ctx, u64 lo, u64 hi,
					   pciem_rs_dma_visit visit, void *vctx),
		       bool (*unmapped_at)(void *ctx, u64 addr,
					   struct pciem_rs_dma_map *out),
		       struct pciem_rs_dma_fault *fault,
		       struct pciem_rs_dma_map *cover);

/* Implemented in C by the module: the Rust panic handler's report. */
void pciem_rs_panic(const char *file, u32 file_len, u32 line);

struct pciem_rs_msix {
	u32 cap_offset;
	u32 enabled;		/* MSI-X Enable */
	u32 function_mask;	/* Function Mask */
	u32 table_size;		/* entries, 1..2048 */
	u32 table_bar;		/* BIR of the vector table */
	u32 table_offset;	/* offset of the table in that BAR */
	u32 pba_bar;		/* BIR of the pending-bit array */
	u32 pba_offset;		/* offset of the PBA in that BAR */
};

/*
 * -ENOENT if the image has no MSI-X capability. The table and PBA are BAR
 * memory: only their location is in the image.
 */
int pciem_rs_msix_state(const struct pciem_config_image *img,
			struct pciem_rs_msix *out, const char **reason);
/*
 * Device-side: set (asserted != 0) or clear the Interrupt Status bit of the
 * status register, which mirrors the INTx line.
 */
void pciem_rs_set_intx_status(struct pciem_config_image *img, u32 asserted);

/* Trap mode: pciem-core's AccessMap (modes, ranges, classification). */
struct pciem_rs_access;
size_t pciem_rs_access_size(void);
void pciem_rs_access_init(struct pciem_rs_access *a);
int pciem_rs_access_set_mode(struct pciem_rs_access *a,
			     const struct pciem_bar_mode *bm,
			     const char **reason);
int pciem_rs_access_add_range(struct pciem_rs_access *a,
			      const struct pciem_trap_range *tr,
			      const char **reason);
/* sizes: PCIEM_MAX_BARS values, 0 for an unused slot. */
int pciem_rs_access_check(const struct pciem_rs_access *a, const u64 *sizes,
			  const char **reason);
/* PCIEM_TRAP_* flags of an access: the union over every range it touches. */
u32 pciem_rs_access_classify(const struct pciem_rs_access *a, u32 bar,
			     u64 offset, u32 width);

/* Trap mode: pciem-core's x86-64 emulator. */
struct pciem_rs_regs {
	u64 gpr[16];		/* x86 encoding order: rax rcx rdx rbx rsp ... r15 */
	u64 rip;
	u64 rflags;
};

/* The emulator's memory: 0, or a negative errno that ends the instruction. */
struct pciem_rs_mem_ops {
	int (*read)(void *ctx, u64 addr, u32 width, u64 *val);
	int (*write)(void *ctx, u64 addr, u32 width, u64 val);
};

/*
 * Decodes the instruction in bytes[0..nbytes) (nbytes may be short of a
 * whole instruction near an unreadable page) and executes it against
 * `regs` and `ops`: its memory accesses in program order, a whole REP
 * string operation in one call, rip advanced past it. 0 on success;
 * -EOPNOTSUPP for an instruction it does not emulate, with *len its length
 * when that is known (else 0), registers untouched; a callback's errno if a
 * callback failed (registers untouched).
 */
int pciem_rs_emulate(const u8 *bytes, u32 nbytes, struct pciem_rs_regs *regs,
		     const struct pciem_rs_mem_ops *ops, void *ctx, u32 *len);

/*
 * The layout both sides rely on, pinned here and by the matching const
 * assertions in kernel/rust/src (and pciem-core for the producer): a field
 * moved, resized or renumbered on one side fails that side's build.
 */
static_assert(PCIEM_RS_EFFECT_CHANGED == 0x01);
static_assert(PCIEM_RS_EFFECT_COMMAND == 0x02);
static_assert(PCIEM_RS_EFFECT_BAR == 0x04);
static_assert(PCIEM_RS_EFFECT_MSI == 0x08);
static_assert(PCIEM_RS_EFFECT_MSIX == 0x10);
static_assert(PCIEM_RS_EFFECT_PM_STATE == 0x20);
static_assert(PCIEM_RS_EFFECT_FLR == 0x40);
static_assert(PCIEM_RS_EFFECT_D3HOT_TO_D0 == 0x80);

static_assert(sizeof(struct pciem_rs_msi) == 40);
static_assert(offsetof(struct pciem_rs_msi, cap_offset) == 0);
static_assert(offsetof(struct pciem_rs_msi, enabled) == 4);
static_assert(offsetof(struct pciem_rs_msi, vectors_enabled) == 8);
static_assert(offsetof(struct pciem_rs_msi, per_vector_mask) == 12);
static_assert(offsetof(struct pciem_rs_msi, mask) == 16);
static_assert(offsetof(struct pciem_rs_msi, pending) == 20);
static_assert(offsetof(struct pciem_rs_msi, address) == 24);
static_assert(offsetof(struct pciem_rs_msi, data) == 32);
static_assert(offsetof(struct pciem_rs_msi, reserved) == 36);

static_assert(sizeof(struct pciem_rs_producer) == 32);
static_assert(offsetof(struct pciem_rs_producer, pos) == 0);
static_assert(offsetof(struct pciem_rs_producer, cached_head) == 8);
static_assert(offsetof(struct pciem_rs_producer, reserved) == 12);
static_assert(offsetof(struct pciem_rs_producer, next_seq) == 16);
static_assert(offsetof(struct pciem_rs_producer, overflow) == 24);

static_assert(sizeof(struct pciem_rs_dma_map) == 32);
static_assert(offsetof(struct pciem_rs_dma_map, start) == 0);
static_assert(offsetof(struct pciem_rs_dma_map, len) == 8);
static_assert(offsetof(struct pciem_rs_dma_map, dir) == 16);
static_assert(offsetof(struct pciem_rs_dma_map, reserved) == 20);
static_assert(offsetof(struct pciem_rs_dma_map, tag) == 24);

static_assert(sizeof(struct pciem_rs_dma_fault) == 56);
static_assert(offsetof(struct pciem_rs_dma_fault, kind) == 0);
static_assert(offsetof(struct pciem_rs_dma_fault, has_culprit) == 4);
static_assert(offsetof(struct pciem_rs_dma_fault, first_bad) == 8);
static_assert(offsetof(struct pciem_rs_dma_fault, bytes) == 16);
static_assert(offsetof(struct pciem_rs_dma_fault, culprit) == 24);

static_assert(sizeof(struct pciem_rs_msix) == 32);
static_assert(offsetof(struct pciem_rs_msix, cap_offset) == 0);
static_assert(offsetof(struct pciem_rs_msix, enabled) == 4);
static_assert(offsetof(struct pciem_rs_msix, function_mask) == 8);
static_assert(offsetof(struct pciem_rs_msix, table_size) == 12);
static_assert(offsetof(struct pciem_rs_msix, table_bar) == 16);
static_assert(offsetof(struct pciem_rs_msix, table_offset) == 20);
static_assert(offsetof(struct pciem_rs_msix, pba_bar) == 24);
static_assert(offsetof(struct pciem_rs_msix, pba_offset) == 28);

static_assert(sizeof(struct pciem_rs_regs) == 144);
static_assert(offsetof(struct pciem_rs_regs, gpr) == 0);
static_assert(offsetof(struct pciem_rs_regs, rip) == 128);
static_assert(offsetof(struct pciem_rs_regs, rflags) == 136);

static_assert(sizeof(struct pciem_rs_mem_ops) == 16);
static_assert(offsetof(struct pciem_rs_mem_ops, read) == 0);
static_assert(offsetof(struct pciem_rs_mem_ops, write) == 8);

#endif /* PCIEM_RS_H */
