// SPDX-License-Identifier: GPL-2.0
/*
 * trap.c - trap mode: every kernel access to a trapped BAR faults and is
 * emulated.
 *
 * When the ioremap tracer (watch.c) sees a mapping that covers a BAR in
 * trap mode, it hands the overlap to pciem_trap_map_add() before ioremap
 * returns to the driver. We save the kernel page-table entries of that
 * range and clear them, so that every load and store through the mapping
 * faults. The fault reaches bad_area_nosemaphore() (a kernel address with
 * no present page and no exception-table entry); a kprobe on its entry
 * looks the address up in our table and, if it is ours, decodes and
 * emulates the faulting instruction with pciem-core's x86 emulator (through
 * the Rust shim) against the BAR's backing and the device model, writes the
 * registers back, advances the instruction pointer, and makes the probed
 * function return at once through pciem_trap_skip(). Nothing is ever
 * re-enabled or single-stepped, so any number of CPUs may fault on the same
 * BAR at once: each emulates its own access under no lock but the ring's.
 *
 * The fault handler runs with interrupts off, in whatever context the
 * driver was (hard irq, softirq, under spinlocks). A model-answered read
 * spins there until the answer arrives, the device dies, or the device's
 * read timeout passes (then it completes all-ones, as a PCIe completion
 * timeout would, and is counted).
 *
 * pciem_trap_lock (raw) guards the mapping table. A fault that finds a
 * mapping takes a reference on the device's trap_inflight count inside the
 * lock; teardown removes the device's mappings and waits for the count to
 * drain, so an emulation never outlives the device.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/eventfd.h>
#include <linux/io.h>
#include <linux/kprobes.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/smp.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <asm/pgtable.h>
#include <asm/tlbflush.h>

#include "pciem_internal.h"

#define PCIEM_TRAP_MAPS		64
/*
 * A read's id: a generation above the function's number above the bits
 * that name its response slot, so that COMPLETE_READ (which does not take
 * the device lock, hence no SET_FUNCTION) finds the function the read is
 * waiting in.
 */
#define PCIEM_READ_SLOT_BITS	ilog2(PCIEM_READ_SLOTS)
#define PCIEM_READ_FN_BITS	ilog2(PCIEM_MAX_FUNCTIONS)
static_assert((PCIEM_MAX_FUNCTIONS & (PCIEM_MAX_FUNCTIONS - 1)) == 0);
static_assert((PCIEM_READ_SLOTS & (PCIEM_READ_SLOTS - 1)) == 0);
#define PCIEM_INSN_MAX		16

/* One saved page-table entry of a trapped mapping. */
struct pciem_trap_pte {
	unsigned long va;
	unsigned int level;	/* PG_LEVEL_4K/2M/1G */
	unsigned long val;	/* the entry before we cleared it */
};

/* A driver mapping of (part of) a trapped BAR. */
struct pciem_trap_map {
	struct pciem_dev *dev;	/* NULL: the device is gone (orphan) */
	u32 bar;
	unsigned long va;	/* first byte of the BAR covered */
	unsigned long len;
	u64 bar_off;		/* BAR offset of va */
	unsigned long cookie;	/* page of what ioremap returned */
	struct pciem_trap_pte *ptes;
	unsigned int nptes;
	bool used;
};

static DEFINE_RAW_SPINLOCK(pciem_trap_lock);
static struct pciem_trap_map pciem_trap_maps[PCIEM_TRAP_MAPS];
static bool pciem_trap_hooked;

/* Where the probed bad_area_nosemaphore() returns from at once. */
static noinline void pciem_trap_skip(void)
{
	barrier();
}

/* ---- page tables ---------------------------------------------------- */

static unsigned long pciem_level_size(unsigned int level)
{
	switch (level) {
	case PG_LEVEL_4K:
		return PAGE_SIZE;
	case PG_LEVEL_2M:
		return PMD_SIZE;
	case PG_LEVEL_1G:
		return PUD_SIZE;
	}
	return 0;
}

/*
 * Writes @val into the entry mapping @va at @level. The entries we clear
 * are written as 0 (none, not merely not-present), which is what vunmap
 * expects to find if a mapping is ever torn down without us.
 */
static int pciem_set_entry(unsigned long va, unsigned int level,
			   unsigned long val)
{
	unsigned int found;
	pte_t *ptep = lookup_address(va, &found);

	if (!ptep || found != level)
		return -ENOENT;
	switch (level) {
	case PG_LEVEL_4K:
		set_pte(ptep, __pte(val));
		return 0;
	case PG_LEVEL_2M:
		set_pmd((pmd_t *)ptep, __pmd(val));
		return 0;
	case PG_LEVEL_1G:
		set_pud((pud_t *)ptep, __pud(val));
		return 0;
	}
	return -EINVAL;
}

static void pciem_flush_local(void *unused)
{
	__flush_tlb_all();
}

/*
 * Removes the translations of cleared entries from every CPU's TLB. Called
 * by the ioremap tracer once it has dropped its lock, before ioremap
 * returns: no CPU but this one has been handed the address yet, and
 * vmalloc flushed every CPU before it reused the range, so this is belt
 * and braces against speculative walks. Where IPIs cannot be sent (the
 * caller had interrupts off) only this CPU is flushed.
 */
void pciem_trap_flush(void)
{
	if (!irqs_disabled() && !in_interrupt()) {
		on_each_cpu(pciem_flush_local, NULL, 1);
		return;
	}
	__flush_tlb_all();
}

/* Restores saved entries (pciem_trap_lock not held). */
static void pciem_trap_restore(struct pciem_trap_pte *ptes, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (pciem_set_entry(ptes[i].va, ptes[i].level, ptes[i].val))
			pr_warn("trap: page table entry of 0x%lx changed level; left cleared\n",
				ptes[i].va);
	}
}

/*
 * Clears the entries covering [va, va + len). Called from the ioremap
 * kretprobe, before the driver has the address; the caller then runs
 * pciem_trap_flush().
 */
void pciem_trap_map_add(struct pciem_dev *dev, u32 bar, unsigned long cookie,
			unsigned long va, unsigned long len, u64 bar_off)
{
	struct pciem_trap_pte *ptes;
	struct pciem_trap_map *m = NULL;
	unsigned long flags, addr, end = va + len;
	unsigned int n = 0, max, i;

	if (!pciem_trap_hooked || !len)
		return;
	max = DIV_ROUND_UP(len, PAGE_SIZE) + 1;
	ptes = kcalloc(max, sizeof(*ptes), GFP_ATOMIC);
	if (!ptes)
		goto fail;
	for (addr = va & PAGE_MASK; addr < end && n < max; n++) {
		unsigned int level;
		unsigned long size;
		pte_t *ptep = lookup_address(addr, &level);

		size = pciem_level_size(level);
		if (!ptep || !size || !pte_present(*ptep)) {
			pr_err("trap: 0x%lx is not mapped at a known level\n",
			       addr);
			goto fail_restore;
		}
		ptes[n].va = addr & ~(size - 1);
		ptes[n].level = level;
		ptes[n].val = pte_val(*ptep);
		if (pciem_set_entry(ptes[n].va, level, 0))
			goto fail_restore;
		addr = ptes[n].va + size;
	}

	raw_spin_lock_irqsave(&pciem_trap_lock, flags);
	for (i = 0; i < PCIEM_TRAP_MAPS && !m; i++)
		if (!pciem_trap_maps[i].used)
			m = &pciem_trap_maps[i];
	if (m) {
		m->dev = dev;
		m->bar = bar;
		m->va = va;
		m->len = len;
		m->bar_off = bar_off;
		m->cookie = cookie & PAGE_MASK;
		m->ptes = ptes;
		m->nptes = n;
		m->used = true;
	}
	raw_spin_unlock_irqrestore(&pciem_trap_lock, flags);
	if (!m) {
		pr_err("trap: more than %d trapped mappings at once\n",
		       PCIEM_TRAP_MAPS);
		goto fail_restore;
	}
	/* This CPU now; every CPU once the tracer dropped its lock. */
	__flush_tlb_all();
	return;

fail_restore:
	pciem_trap_restore(ptes, n);
	kfree(ptes);
fail:
	/*
	 * The driver keeps a working, untrapped mapping: its accesses reach
	 * the backing directly and the model hears nothing. Say so loudly.
	 */
	pr_err("trap: BAR%u of %s could not be trapped: the driver's accesses bypass the model\n",
	       bar, dev->pdev ? pci_name(dev->pdev) : "a new device");
	atomic64_inc(&dev->trap_stats.untrapped);
}

/* iounmap(@cookie): restore and forget the trapped mappings it made. */
void pciem_trap_iounmap(unsigned long cookie)
{
	struct pciem_trap_map found[4];
	unsigned long flags;
	int i, n;

	do {
		n = 0;
		raw_spin_lock_irqsave(&pciem_trap_lock, flags);
		for (i = 0; i < PCIEM_TRAP_MAPS && n < ARRAY_SIZE(found); i++) {
			struct pciem_trap_map *m = &pciem_trap_maps[i];

			if (!m->used || m->cookie != (cookie & PAGE_MASK))
				continue;
			found[n++] = *m;
			m->used = false;
			m->ptes = NULL;
		}
		raw_spin_unlock_irqrestore(&pciem_trap_lock, flags);
		for (i = 0; i < n; i++) {
			pciem_trap_restore(found[i].ptes, found[i].nptes);
			kfree(found[i].ptes);
		}
	} while (n == ARRAY_SIZE(found));
}

/* ---- the BAR side of an access ------------------------------------- */

static void __iomem *pciem_trap_backing(struct pciem_dev *dev, u32 bar)
{
	return pciem_bar_kva(dev, bar);
}

/* The @width-byte (1, 2, 4, else 8) register at @p; watch.c shares it. */
u64 pciem_io_read(void __iomem *p, u32 width)
{
	switch (width) {
	case 1:
		return readb(p);
	case 2:
		return readw(p);
	case 4:
		return readl(p);
	default:
		return readq(p);
	}
}

static void pciem_io_write(void __iomem *p, u32 width, u64 val)
{
	switch (width) {
	case 1:
		writeb(val, p);
		break;
	case 2:
		writew(val, p);
		break;
	case 4:
		writel(val, p);
		break;
	default:
		writeq(val, p);
		break;
	}
}

/* The PCIEM_TRAP_* flags of an access (pciem-core decides, as in the mock). */
static u32 pciem_trap_flags(struct pciem_dev *dev, u32 bar, u64 off, u32 width)
{
	return pciem_rs_access_classify(dev->access, bar, off, width);
}

static void pciem_trap_kick(struct pciem_dev *dev);

/*
 * Waits, bounded by the read timeout, until the ring has a free slot: a
 * long string move stores more events in one fault than the ring holds,
 * and the model can only drain it meanwhile if we wake it ourselves (the
 * irq_work that normally does cannot run on this CPU until we return).
 * After the timeout the event overflows, counted as always.
 */
static void pciem_trap_wait_room(struct pciem_dev *dev)
{
	/* Functions 1..7 publish to function 0's ring. */
	struct pciem_dev *owner = dev->fn0 ? dev->fn0 : dev;
	u64 deadline = 0;

	for (;;) {
		u32 head = READ_ONCE(owner->ring->head);
		u32 tail = READ_ONCE(owner->prod.pos) % PCIEM_RING_SIZE;

		if (((tail - head) & (PCIEM_RING_SIZE - 1)) < PCIEM_RING_SIZE - 1)
			return;
		if (!deadline) {
			pciem_trap_kick(dev);
			deadline = ktime_get_mono_fast_ns() + READ_ONCE(dev->read_timeout_ns);
		}
		if (READ_ONCE(dev->trap_dead) || READ_ONCE(dev->link_down) ||
		    ktime_get_mono_fast_ns() > deadline)
			return;
		cpu_relax();
	}
}

static void pciem_trap_event(struct pciem_dev *dev, u32 type, u32 bar, u64 off,
			     u32 width, u64 data, u32 flags, u64 id)
{
	struct pciem_event ev = {
		.type = type,
		.bar = bar,
		.offset = off,
		.size = width,
		.data = data,
		.flags = flags,
		.id = id,
		.timestamp_ns = ktime_get_mono_fast_ns(),
	};

	pciem_trap_wait_room(dev);
	pciem_ring_push(dev, &ev);
}

/* Wakes the device process now: this CPU will spin, irq_work cannot run. */
static void pciem_trap_kick(struct pciem_dev *dev)
{
	unsigned long flags;

	/* Function 0 holds the eventfd of every function's events. */
	if (dev->fn0)
		dev = dev->fn0;
	if (in_nmi() || !eventfd_signal_allowed() ||
	    !pciem_ring_consumer_sleeps(dev))
		return;
	spin_lock_irqsave(&dev->evfd_lock, flags);
	if (dev->evfd)
		eventfd_signal(dev->evfd);
	spin_unlock_irqrestore(&dev->evfd_lock, flags);
}

/* A read answered by the model; all-ones on timeout or death. */
static u64 pciem_trap_model_read(struct pciem_dev *dev, u32 bar, u64 off,
				 u32 width, unsigned long ip)
{
	struct pciem_event ev = {
		.type = PCIEM_EVENT_MMIO_READ,
		.bar = bar,
		.offset = off,
		.size = width,
	};
	struct pciem_read_response *slot;
	u64 id, start, deadline, val = ~0ULL;
	bool nudged = false;
	unsigned int s;

	atomic64_inc(&dev->trap_stats.model_reads);
	if (READ_ONCE(dev->trap_dead) || READ_ONCE(dev->link_down))
		return val;
	for (s = 0; s < PCIEM_READ_SLOTS; s++)
		if (!test_and_set_bit(s, &dev->resp_busy))
			break;
	if (s == PCIEM_READ_SLOTS) {
		atomic64_inc(&dev->trap_stats.timeouts);
		return val;
	}
	id = ((u64)atomic64_inc_return(&dev->read_gen) <<
	      (PCIEM_READ_SLOT_BITS + PCIEM_READ_FN_BITS)) |
	     ((u64)dev->fn_nr << PCIEM_READ_SLOT_BITS) | s;
	slot = &dev->resp->slots[s];
	pciem_trap_wait_room(dev);
	ev.id = id;
	ev.timestamp_ns = ktime_get_mono_fast_ns();
	if (pciem_ring_push(dev, &ev)) {
		/* The ring is full: the request never reached the model. */
		atomic64_inc(&dev->trap_stats.timeouts);
		goto out;
	}
	pciem_trap_kick(dev);
	start = ktime_get_mono_fast_ns();
	deadline = start + READ_ONCE(dev->read_timeout_ns);
	/*
	 * ktime_get_mono_fast_ns(), not local_clock(): with an unstable TSC
	 * sched_clock stops advancing past the last tick while interrupts
	 * are off, and the deadline would never come.
	 */
	for (;;) {
		u64 now;

		/* Pairs with the release in pciem_trap_complete(). */
		if (smp_load_acquire(&slot->id) == id) {
			val = READ_ONCE(slot->value);
			break;
		}
		now = ktime_get_mono_fast_ns();
		/*
		 * The wake-up may have queued the model on this CPU, which
		 * cannot schedule until we return: after 1 ms, make the idle
		 * CPUs look for work so one of them pulls it over.
		 */
		if (!nudged && now - start > NSEC_PER_MSEC) {
			wake_up_all_idle_cpus();
			nudged = true;
		}
		/* The model died, or the link went down under the read. */
		if (READ_ONCE(dev->trap_dead) || READ_ONCE(dev->link_down))
			break;
		if (now > deadline) {
			atomic64_inc(&dev->trap_stats.timeouts);
			if (!xchg(&dev->trap_logged_timeout, true))
				pr_warn("%s: BAR%u+0x%llx: the model did not answer a %u-byte read from %pS within %llu us; it read all-ones (logged once per device)\n",
					pci_name(dev->pdev), bar, off, width,
					(void *)ip,
					dev->read_timeout_ns / NSEC_PER_USEC);
			pciem_trap_event(dev, PCIEM_EVENT_ERROR, bar, off,
					 width, 0, PCIEM_ERROR_READ_TIMEOUT,
					 id);
			break;
		}
		cpu_relax();
	}
out:
	clear_bit(s, &dev->resp_busy);
	if (width < 8)
		val &= (1ULL << (8 * width)) - 1;
	return val;
}

/* ---- the emulator's memory ----------------------------------------- */

struct pciem_trap_ctx {
	struct pciem_trap_map m;	/* the mapping that faulted (a copy) */
	unsigned long ip;
	bool dead;			/* the device is gone: master abort */
};

/* BAR offset of [addr, addr + width) if it lies in the faulting mapping. */
static bool pciem_trap_hit(struct pciem_trap_ctx *c, u64 addr, u32 width,
			   u64 *off)
{
	if (addr < c->m.va || addr + width > c->m.va + c->m.len ||
	    addr + width < addr)
		return false;
	*off = c->m.bar_off + (addr - c->m.va);
	return true;
}

/*
 * A store into the MSI-X table may have unmasked a held entry: re-check
 * now instead of at the next 5 ms poll.
 */
static void pciem_trap_msix_written(struct pciem_dev *dev, u32 bar, u64 off)
{
	void __iomem *p = pciem_trap_backing(dev, bar) + off;

	if (!dev->msix_entries || READ_ONCE(dev->irq_dead) ||
	    p < dev->msix_table ||
	    p >= dev->msix_table + dev->msix_entries * PCI_MSIX_ENTRY_SIZE ||
	    bitmap_empty(dev->msix_held, dev->msix_entries))
		return;
	mod_delayed_work(system_wq, &dev->msix_poll, 0);
}

static int pciem_trap_mem_read(void *ctx, u64 addr, u32 width, u64 *val)
{
	struct pciem_trap_ctx *c = ctx;
	struct pciem_dev *dev = c->m.dev;
	u64 off;
	u32 flags;

	if (width != 1 && width != 2 && width != 4 && width != 8)
		return -EINVAL;
	if (!pciem_trap_hit(c, addr, width, &off)) {
		/* Ordinary memory (the other side of a string move). */
		*val = 0;
		return copy_from_kernel_nofault(val, (void *)addr, width) ?
			-EFAULT : 0;
	}
	if (c->dead) {
		*val = ~0ULL;
		return 0;
	}
	atomic64_inc(&dev->trap_stats.loads);
	flags = pciem_trap_flags(dev, c->m.bar, off, width);
	if (flags & PCIEM_TRAP_READ_MODEL) {
		*val = pciem_trap_model_read(dev, c->m.bar, off, width, c->ip);
		return 0;
	}
	*val = pciem_io_read(pciem_trap_backing(dev, c->m.bar) + off, width);
	if (flags & PCIEM_TRAP_READ_NOTIFY)
		pciem_trap_event(dev, PCIEM_EVENT_MMIO_READ, c->m.bar, off,
				 width, *val, PCIEM_EVENT_FLAG_POSTED, 0);
	return 0;
}

/* A store to ordinary kernel memory (the other side of a string move). */
static int pciem_poke(u64 addr, u32 width, u64 val)
{
	switch (width) {
	case 1:
		__put_kernel_nofault((u8 *)addr, &(u8){ val }, u8, fault);
		return 0;
	case 2:
		__put_kernel_nofault((u16 *)addr, &(u16){ val }, u16, fault);
		return 0;
	case 4:
		__put_kernel_nofault((u32 *)addr, &(u32){ val }, u32, fault);
		return 0;
	default:
		__put_kernel_nofault((u64 *)addr, &val, u64, fault);
		return 0;
	}
fault:
	return -EFAULT;
}

static int pciem_trap_mem_write(void *ctx, u64 addr, u32 width, u64 val)
{
	struct pciem_trap_ctx *c = ctx;
	struct pciem_dev *dev = c->m.dev;
	u64 off;

	if (width != 1 && width != 2 && width != 4 && width != 8)
		return -EINVAL;
	if (!pciem_trap_hit(c, addr, width, &off))
		return pciem_poke(addr, width, val);
	if (c->dead)
		return 0;
	atomic64_inc(&dev->trap_stats.stores);
	if (!(pciem_trap_flags(dev, c->m.bar, off, width) &
	      PCIEM_TRAP_WRITE_NO_STORE))
		pciem_io_write(pciem_trap_backing(dev, c->m.bar) + off, width,
			       val);
	if (width < 8)
		val &= (1ULL << (8 * width)) - 1;
	pciem_trap_event(dev, PCIEM_EVENT_MMIO_WRITE, c->m.bar, off, width,
			 val, PCIEM_EVENT_FLAG_POSTED, 0);
	pciem_trap_msix_written(dev, c->m.bar, off);
	return 0;
}

static const struct pciem_rs_mem_ops pciem_trap_mem_ops = {
	.read = pciem_trap_mem_read,
	.write = pciem_trap_mem_write,
};

/* pt_regs <-> the emulator's registers, in x86 encoding order. */
static void pciem_regs_in(const struct pt_regs *r, struct pciem_rs_regs *g)
{
	g->gpr[0] = r->ax;
	g->gpr[1] = r->cx;
	g->gpr[2] = r->dx;
	g->gpr[3] = r->bx;
	g->gpr[4] = r->sp;
	g->gpr[5] = r->bp;
	g->gpr[6] = r->si;
	g->gpr[7] = r->di;
	g->gpr[8] = r->r8;
	g->gpr[9] = r->r9;
	g->gpr[10] = r->r10;
	g->gpr[11] = r->r11;
	g->gpr[12] = r->r12;
	g->gpr[13] = r->r13;
	g->gpr[14] = r->r14;
	g->gpr[15] = r->r15;
	g->rip = r->ip;
	g->rflags = r->flags;
}

static void pciem_regs_out(const struct pciem_rs_regs *g, struct pt_regs *r)
{
	r->ax = g->gpr[0];
	r->cx = g->gpr[1];
	r->dx = g->gpr[2];
	r->bx = g->gpr[3];
	/* sp: no emulated form writes it; an exception frame's sp stays. */
	r->bp = g->gpr[5];
	r->si = g->gpr[6];
	r->di = g->gpr[7];
	r->r8 = g->gpr[8];
	r->r9 = g->gpr[9];
	r->r10 = g->gpr[10];
	r->r11 = g->gpr[11];
	r->r12 = g->gpr[12];
	r->r13 = g->gpr[13];
	r->r14 = g->gpr[14];
	r->r15 = g->gpr[15];
	r->ip = g->rip;
}

/* Up to PCIEM_INSN_MAX bytes at @ip; how many could be read. */
static u32 pciem_fetch_insn(unsigned long ip, u8 *buf)
{
	u32 n = PCIEM_INSN_MAX;

	while (n && copy_from_kernel_nofault(buf, (void *)ip, n))
		n = min_t(u32, n - 1, PAGE_SIZE - offset_in_page(ip));
	return n;
}

/*
 * The instruction cannot be emulated. If its length is known it completes
 * as a master abort (a load leaves its destination as it was, since it is
 * unknown which register that is; a store is dropped) and execution goes on;
 * otherwise the mapping stops being trapped, so the instruction retries
 * against the backing itself. Either way: an ERROR event and one line.
 */
static void pciem_trap_undecodable(struct pciem_trap_ctx *c,
				   struct pt_regs *regs, const u8 *insn,
				   u32 n, u32 len, u64 fault_off)
{
	struct pciem_dev *dev = c->m.dev;
	u64 lo = 0, hi = 0;

	memcpy(&lo, insn, min_t(u32, n, 8));
	if (n > 8)
		memcpy(&hi, insn + 8, n - 8);
	atomic64_inc(&dev->trap_stats.undecodable);
	pciem_trap_event(dev, PCIEM_EVENT_ERROR, c->m.bar, fault_off, n, lo,
			 PCIEM_ERROR_UNDECODABLE, hi);
	if (!xchg(&dev->trap_logged_insn, true))
		pr_warn("%s: BAR%u+0x%llx: %pS made an access pciem cannot emulate (%*ph); %s (logged once per device)\n",
			dev->pdev ? pci_name(dev->pdev) : "pciem", c->m.bar,
			fault_off, (void *)regs->ip, n, insn,
			len ? "it completed as a master abort" :
			"its length is unknown: the mapping is no longer trapped");
	if (len) {
		regs->ip += len;
		return;
	}
	pciem_trap_iounmap(c->m.cookie);
	atomic64_inc(&dev->trap_stats.untrapped);
}

/* kprobe on bad_area_nosemaphore(regs, error_code, address). */
static int pciem_trap_fault(struct kprobe *kp, struct pt_regs *pregs)
{
	struct pt_regs *regs = (struct pt_regs *)regs_get_kernel_argument(pregs, 0);
	unsigned long addr = regs_get_kernel_argument(pregs, 2);
	struct pciem_trap_ctx c = { };
	struct pciem_rs_regs g;
	struct pciem_dev *dev;
	u8 insn[PCIEM_INSN_MAX];
	unsigned long flags;
	u32 n, len = 0;
	bool found = false;
	int i, ret;

	if (!regs || user_mode(regs))
		return 0;
	raw_spin_lock_irqsave(&pciem_trap_lock, flags);
	for (i = 0; i < PCIEM_TRAP_MAPS; i++) {
		const struct pciem_trap_map *m = &pciem_trap_maps[i];

		if (m->used && addr >= m->va && addr - m->va < m->len) {
			c.m = *m;
			found = true;
			if (m->dev)
				atomic_inc(&m->dev->trap_inflight);
			break;
		}
	}
	raw_spin_unlock_irqrestore(&pciem_trap_lock, flags);
	if (!found)
		return 0;

	dev = c.m.dev;
	c.ip = regs->ip;
	c.dead = !dev || READ_ONCE(dev->trap_dead) ||
		 READ_ONCE(dev->link_down);
	n = pciem_fetch_insn(regs->ip, insn);
	pciem_regs_in(regs, &g);
	ret = pciem_rs_emulate(insn, n, &g, &pciem_trap_mem_ops, &c, &len);
	if (!ret) {
		pciem_regs_out(&g, regs);
	} else if (dev) {
		pciem_trap_undecodable(&c, regs, insn, n, len,
				       c.m.bar_off + (addr - c.m.va));
	} else if (len) {
		regs->ip += len;
	}
	if (dev) {
		atomic64_inc(&dev->trap_stats.faults);
		atomic_dec(&dev->trap_inflight);
	}
	instruction_pointer_set(pregs, (unsigned long)pciem_trap_skip);
	return 1;
}

NOKPROBE_SYMBOL(pciem_trap_fault);

static struct kprobe pciem_fault_probe = {
	.symbol_name = "bad_area_nosemaphore",
	.pre_handler = pciem_trap_fault,
};

int pciem_trap_init(void)
{
	int ret = register_kprobe(&pciem_fault_probe);

	if (ret) {
		pr_warn("trap mode unavailable: cannot probe bad_area_nosemaphore (%d)\n",
			ret);
		return 0;
	}
	pciem_trap_hooked = true;
	return 0;
}

/* rmmod: no device is left, but a leaked mapping may still be trapped. */
void pciem_trap_exit(void)
{
	int i;

	for (i = 0; i < PCIEM_TRAP_MAPS; i++) {
		struct pciem_trap_map *m = &pciem_trap_maps[i];

		if (!m->used)
			continue;
		pr_warn("trap: a mapping at 0x%lx was never unmapped; restoring it\n",
			m->va);
		pciem_trap_restore(m->ptes, m->nptes);
		kfree(m->ptes);
		m->used = false;
	}
	if (pciem_trap_hooked)
		unregister_kprobe(&pciem_fault_probe);
	pciem_trap_hooked = false;
}

bool pciem_trap_available(void)
{
	return pciem_trap_hooked;
}

/* ---- per device ------------------------------------------------------ */

int pciem_trap_dev_init(struct pciem_dev *dev)
{
	dev->resp = vmalloc_user(PAGE_SIZE);
	dev->access = kzalloc(pciem_rs_access_size(), GFP_KERNEL);
	if (!dev->resp || !dev->access) {
		pciem_trap_dev_free(dev);
		return -ENOMEM;
	}
	pciem_rs_access_init(dev->access);
	dev->read_timeout_ns = (u64)PCIEM_READ_TIMEOUT_DEFAULT_US * NSEC_PER_USEC;
	return 0;
}

void pciem_trap_dev_free(struct pciem_dev *dev)
{
	vfree(dev->resp);
	dev->resp = NULL;
	kfree(dev->access);
	dev->access = NULL;
}

/*
 * The device process is gone (its last file is closing): reads waiting for
 * the model return all-ones at once, and so do later ones.
 */
void pciem_trap_model_gone(struct pciem_dev *dev)
{
	int i;

	WRITE_ONCE(dev->trap_dead, true);
	/* Functions 1..7 share function 0's device process. */
	for (i = 1; i < PCIEM_MAX_FUNCTIONS; i++)
		if (dev->fns[i])
			WRITE_ONCE(dev->fns[i]->trap_dead, true);
}

/*
 * The device has left the bus: its mappings that a driver never unmapped
 * become orphans (faults on them complete as master aborts). Returns once
 * no fault is emulating against the device.
 */
void pciem_trap_orphan(struct pciem_dev *dev)
{
	unsigned long flags;
	int i;

	WRITE_ONCE(dev->trap_dead, true);
	raw_spin_lock_irqsave(&pciem_trap_lock, flags);
	for (i = 0; i < PCIEM_TRAP_MAPS; i++)
		if (pciem_trap_maps[i].used && pciem_trap_maps[i].dev == dev)
			pciem_trap_maps[i].dev = NULL;
	raw_spin_unlock_irqrestore(&pciem_trap_lock, flags);
	while (atomic_read(&dev->trap_inflight))
		usleep_range(100, 200);
}

bool pciem_dev_trapped(const struct pciem_dev *dev)
{
	int i;

	for (i = 0; i < PCIEM_NUM_BARS; i++)
		if (dev->bar_mode[i] == PCIEM_BAR_MODE_TRAP)
			return true;
	return false;
}

/* SET_BAR_MODE, dev->lock held. */
int pciem_trap_set_mode(struct pciem_dev *dev, const struct pciem_bar_mode *m)
{
	const char *reason = NULL;
	int ret;

	lockdep_assert_held(&dev->lock);
	if (dev->state == PCIEM_REGISTERED) {
		pr_info_ratelimited("SET_BAR_MODE: the device is already registered\n");
		return -EBUSY;
	}
	if (m->mode == PCIEM_BAR_MODE_TRAP && !pciem_trap_hooked) {
		pr_info_ratelimited("SET_BAR_MODE: trap mode is unavailable on this kernel (see the load-time message)\n");
		return -EOPNOTSUPP;
	}
	ret = pciem_rs_access_set_mode(dev->access, m, &reason);
	if (ret) {
		pr_info_ratelimited("SET_BAR_MODE: %s (%d)\n", reason, ret);
		return ret;
	}
	dev->bar_mode[m->bar_index] = m->mode;
	return 0;
}

/* ADD_TRAP_RANGE, dev->lock held. BAR sizes are checked at REGISTER. */
int pciem_trap_add_range(struct pciem_dev *dev,
			 const struct pciem_trap_range *r)
{
	const char *reason = NULL;
	int ret;

	lockdep_assert_held(&dev->lock);
	if (dev->state == PCIEM_REGISTERED) {
		pr_info_ratelimited("ADD_TRAP_RANGE: the device is already registered\n");
		return -EBUSY;
	}
	ret = pciem_rs_access_add_range(dev->access, r, &reason);
	if (ret)
		pr_info_ratelimited("ADD_TRAP_RANGE: BAR%u+0x%llx (%llu bytes, flags 0x%x): %s (%d)\n",
				    r->bar_index, r->offset, r->length,
				    r->flags, reason, ret);
	return ret;
}

/*
 * REGISTER, after the BARs are laid out: every trapped BAR exists and is at
 * least a page, every range lies inside its BAR.
 */
int pciem_trap_check_layout(struct pciem_dev *dev)
{
	u64 sizes[PCIEM_NUM_BARS];
	const char *reason = NULL;
	u32 i;
	int ret;

	for (i = 0; i < PCIEM_NUM_BARS; i++) {
		sizes[i] = dev->bars[i].size;
		if (dev->bar_mode[i] == PCIEM_BAR_MODE_TRAP && sizes[i] &&
		    sizes[i] < PAGE_SIZE) {
			pr_info("REGISTER: trapped BAR%u is smaller than a page (%llu bytes)\n",
				i, sizes[i]);
			return -EINVAL;
		}
	}
	ret = pciem_rs_access_check(dev->access, sizes, &reason);
	if (ret)
		pr_info("REGISTER: trap declarations: %s (%d)\n", reason, ret);
	return ret;
}

int pciem_trap_set_timeout(struct pciem_dev *dev,
			   const struct pciem_read_timeout *t)
{
	if (t->reserved || !t->timeout_us ||
	    t->timeout_us > PCIEM_READ_TIMEOUT_MAX_US) {
		pr_info_ratelimited("SET_READ_TIMEOUT: timeout_us must be 1..%u and reserved zero\n",
				    PCIEM_READ_TIMEOUT_MAX_US);
		return -EINVAL;
	}
	WRITE_ONCE(dev->read_timeout_ns, (u64)t->timeout_us * NSEC_PER_USEC);
	return 0;
}

/* COMPLETE_READ: the same effect as the model writing the slot. */
int pciem_trap_complete(struct pciem_dev *dev,
			const struct pciem_read_completion *c)
{
	struct pciem_read_response *slot;
	unsigned int s = c->id % PCIEM_READ_SLOTS;
	unsigned int fn = (c->id >> PCIEM_READ_SLOT_BITS) %
			  PCIEM_MAX_FUNCTIONS;

	/* Functions are fixed from REGISTER and freed with function 0. */
	if (fn) {
		/* Pairs with the release in pciem_fn_select(). */
		struct pciem_dev *f = smp_load_acquire(&dev->fns[fn]);

		if (!f) {
			pr_info_ratelimited("COMPLETE_READ: id 0x%llx names function %u, which does not exist\n",
					    c->id, fn);
			return -ENOENT;
		}
		dev = f;
	}
	if (!(c->id >> (PCIEM_READ_SLOT_BITS + PCIEM_READ_FN_BITS)) ||
	    !test_bit(s, &dev->resp_busy)) {
		pr_info_ratelimited("COMPLETE_READ: no read with id 0x%llx is waiting\n",
				    c->id);
		return -ENOENT;
	}
	slot = &dev->resp->slots[s];
	WRITE_ONCE(slot->value, c->value);
	/* The value before the id: pairs with pciem_trap_model_read(). */
	smp_store_release(&slot->id, c->id);
	return 0;
}

int pciem_trap_mmap(struct pciem_dev *dev, struct vm_area_struct *vma)
{
	if (vma->vm_end - vma->vm_start != PAGE_SIZE) {
		pr_info_ratelimited("read-response mmap: exactly one page\n");
		return -EINVAL;
	}
	return remap_vmalloc_range(vma, dev->resp, 0);
}

ssize_t pciem_trap_stats_show(struct pciem_dev *dev, char *buf)
{
	const struct pciem_trap_stats *s = &dev->trap_stats;

	return sysfs_emit(buf,
			  "faults %lld\nloads %lld\nstores %lld\nmodel_reads %lld\nread_timeouts %lld\nundecodable %lld\nuntrapped %lld\n",
			  atomic64_read(&s->faults), atomic64_read(&s->loads),
			  atomic64_read(&s->stores),
			  atomic64_read(&s->model_reads),
			  atomic64_read(&s->timeouts),
			  atomic64_read(&s->undecodable),
			  atomic64_read(&s->untrapped));
}
