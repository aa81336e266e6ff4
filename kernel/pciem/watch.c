// SPDX-License-Identifier: GPL-2.0
/*
 * watch.c - watched registers.
 *
 * A driver's write to a BAR lands in plain memory; to hear about writes to
 * chosen registers we put an x86 data breakpoint (perf hw_breakpoint,
 * write-only) on the driver's kernel mapping of that register. The mapping
 * is found by tracing the ioremap family with kretprobes: whatever a driver
 * uses (pci_iomap, pcim_iomap*, devm_ioremap, plain ioremap) ends in one of
 * them, and a returned mapping whose physical range overlaps one of our
 * BARs is recorded on the BAR. iounmap is traced too, so a watch never reads
 * through a mapping that is gone.
 *
 * The breakpoint handler runs after the store, in #DB context (NMI-like):
 * it reads the register (the value just written), pushes an MMIO_WRITE
 * event under the raw ring lock and defers the eventfd to an irq_work.
 * The value is the register's content at that moment: if two CPUs store
 * to one watched register at once without a lock (drivers normally hold
 * one around a doorbell), both events may carry the later value. Each
 * store still produces exactly one event.
 *
 * pciem_map_lock (raw) guards pciem_live_devs and every BAR's map_* fields;
 * it is taken in kprobe context. Watch bookkeeping is under dev->lock;
 * a watch's `stale` flag is written only under pciem_map_lock: iounmap sets
 * it on every watch of the BAR (armed or being armed), and arming clears it
 * in the same critical section that finds the mapping, so an iounmap racing
 * with arming either comes first (no mapping, nothing armed) or sets
 * `stale` after it and queues arm_work, which drops the breakpoint.
 *
 * The ioremap kretprobes can miss calls when more are in flight than they
 * have instances for (maxactive); a missed ioremap is a mapping we never
 * hear of, so its watches never arm. The probes' nmissed counts are
 * checked whenever a watch waits for a mapping and at unload, and any
 * miss is logged with what it means.
 *
 * A mapping of a BAR in trap mode is not watched: it is handed to trap.c,
 * which makes its pages fault before ioremap returns to the driver.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hw_breakpoint.h>
#include <linux/io.h>
#include <linux/kprobes.h>
#include <linux/ktime.h>
#include <linux/perf_event.h>

#include "pciem_internal.h"

static DEFINE_RAW_SPINLOCK(pciem_map_lock);
static LIST_HEAD(pciem_live_devs);

struct ioremap_call {
	phys_addr_t phys;
	unsigned long size;
};

/* Snapshots the pending watches of @dev that the new mapping of @bar covers. */
static void pciem_watch_snapshot(struct pciem_dev *dev, u32 bar_index)
{
	struct pciem_bar *bar = &dev->bars[bar_index];
	int i;

	for (i = 0; i < PCIEM_NUM_WATCHES; i++) {
		struct pciem_watch *w = &dev->watches[i];

		if (!READ_ONCE(w->used) || !READ_ONCE(w->pending) ||
		    w->bar != bar_index || w->offset < bar->map_off ||
		    (u64)w->offset + w->width > bar->map_off + bar->map_len)
			continue;
		WRITE_ONCE(w->snap, pciem_io_read(bar->map_kva +
						     (w->offset - bar->map_off),
						     w->width));
		WRITE_ONCE(w->snap_valid, true);
	}
}

/* Records a new mapping [phys, phys + size) -> ret on every BAR it covers. */
static void pciem_record_mapping(phys_addr_t phys, unsigned long size,
				 void __iomem *ret)
{
	struct pciem_dev *dev;
	unsigned long flags;
	bool trapped = false;
	int i;

	raw_spin_lock_irqsave(&pciem_map_lock, flags);
	list_for_each_entry(dev, &pciem_live_devs, live_node) {
		bool want_arm = false;

		for (i = 0; i < PCIEM_NUM_BARS; i++) {
			struct pciem_bar *bar = &dev->bars[i];
			phys_addr_t lo, hi;

			if (!bar->size)
				continue;
			lo = max_t(phys_addr_t, phys, bar->phys);
			hi = min_t(phys_addr_t, phys + size,
				   bar->phys + bar->size);
			if (lo >= hi)
				continue;
			if (dev->bar_mode[i] == PCIEM_BAR_MODE_TRAP) {
				/* Before the driver has the address. */
				pciem_trap_map_add(dev, i, (unsigned long)ret,
						   (unsigned long)ret + (lo - phys),
						   hi - lo, lo - bar->phys);
				trapped = true;
				continue;
			}
			bar->map_cookie = ret;
			bar->map_kva = ret + (lo - phys);
			bar->map_off = lo - bar->phys;
			bar->map_len = hi - lo;
			pciem_watch_snapshot(dev, i);
			want_arm = true;
		}
		if (want_arm)
			schedule_work(&dev->arm_work);
	}
	raw_spin_unlock_irqrestore(&pciem_map_lock, flags);
	if (trapped)
		pciem_trap_flush();
}

static int ioremap_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct ioremap_call *call = (struct ioremap_call *)ri->data;

	/* Every traced function takes (phys_addr, size, ...). */
	call->phys = regs_get_kernel_argument(regs, 0);
	call->size = regs_get_kernel_argument(regs, 1);
	return 0;
}

static int ioremap_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct ioremap_call *call = (struct ioremap_call *)ri->data;
	void __iomem *ret = (void __iomem *)regs_return_value(regs);

	if (ret && call->size && call->phys + call->size > call->phys)
		pciem_record_mapping(call->phys, call->size, ret);
	return 0;
}

/*
 * ioremap may sleep (it allocates vmalloc space), so concurrent calls are
 * not bounded by the CPU count; this many may be in flight per function
 * before the probe misses one (which is then reported, see above).
 */
#define PCIEM_IOREMAP_MAXACTIVE	128

#define IOREMAP_PROBE(fn) {						\
	.kp.symbol_name = fn,						\
	.entry_handler = ioremap_entry,					\
	.handler = ioremap_return,					\
	.data_size = sizeof(struct ioremap_call),			\
	.maxactive = PCIEM_IOREMAP_MAXACTIVE,				\
}

/* What pci_iomap(), pcim_iomap*(), devm_ioremap*() end in on x86 6.12. */
static struct kretprobe ioremap_probes[] = {
	IOREMAP_PROBE("ioremap"),
	IOREMAP_PROBE("ioremap_uc"),
	IOREMAP_PROBE("ioremap_wc"),
	IOREMAP_PROBE("ioremap_wt"),
	IOREMAP_PROBE("ioremap_cache"),
	IOREMAP_PROBE("ioremap_prot"),
	IOREMAP_PROBE("ioremap_encrypted"),
};

static bool ioremap_probe_ok[ARRAY_SIZE(ioremap_probes)];

/* The sum of the ioremap probes' nmissed already reported. */
static atomic_t ioremap_missed_reported = ATOMIC_INIT(0);

/*
 * Logs ioremap calls the probes missed since the last report: each may be
 * a driver mapping whose watches will never arm.
 */
static void pciem_watch_report_missed(void)
{
	int i, total = 0, before;

	for (i = 0; i < ARRAY_SIZE(ioremap_probes); i++)
		if (ioremap_probe_ok[i])
			total += READ_ONCE(ioremap_probes[i].nmissed);
	before = atomic_xchg(&ioremap_missed_reported, total);
	if (total > before)
		pr_warn("the ioremap probes missed %d call(s) (more than %d in flight): a watch on a BAR mapped by one of them never arms\n",
			total - before, PCIEM_IOREMAP_MAXACTIVE);
}

/* The driver unmapped: forget the mapping and silence watches on it. */
static int iounmap_pre(struct kprobe *kp, struct pt_regs *regs)
{
	unsigned long addr = regs_get_kernel_argument(regs, 0) & PAGE_MASK;
	struct pciem_dev *dev;
	unsigned long flags;
	int i, w;

	pciem_trap_iounmap(addr);
	raw_spin_lock_irqsave(&pciem_map_lock, flags);
	list_for_each_entry(dev, &pciem_live_devs, live_node) {
		for (i = 0; i < PCIEM_NUM_BARS; i++) {
			struct pciem_bar *bar = &dev->bars[i];

			if (!bar->map_cookie ||
			    ((unsigned long)bar->map_cookie & PAGE_MASK) != addr)
				continue;
			bar->map_cookie = NULL;
			bar->map_kva = NULL;
			bar->map_len = 0;
			/*
			 * Every watch of the BAR, also one SET_WATCHPOINT is
			 * arming right now (not yet `used`).
			 */
			for (w = 0; w < PCIEM_NUM_WATCHES; w++)
				if (dev->watches[w].bar == i)
					WRITE_ONCE(dev->watches[w].stale, true);
			/* Free the debug registers. */
			schedule_work(&dev->arm_work);
		}
	}
	raw_spin_unlock_irqrestore(&pciem_map_lock, flags);
	return 0;
}

static struct kprobe iounmap_probe = {
	.symbol_name = "iounmap",
	.pre_handler = iounmap_pre,
};

int pciem_watch_init(void)
{
	int i, ret, n = 0;

	for (i = 0; i < ARRAY_SIZE(ioremap_probes); i++) {
		ret = register_kretprobe(&ioremap_probes[i]);
		if (ret) {
			pr_info("not tracing %s (%d)\n",
				ioremap_probes[i].kp.symbol_name, ret);
			continue;
		}
		ioremap_probe_ok[i] = true;
		n++;
	}
	if (!n) {
		pr_err("cannot trace any ioremap function: watchpoints need KRETPROBES\n");
		return -ENOENT;
	}
	ret = register_kprobe(&iounmap_probe);
	if (ret) {
		pr_err("cannot trace iounmap (%d)\n", ret);
		pciem_watch_exit();
		return ret;
	}
	return 0;
}

void pciem_watch_exit(void)
{
	int i;

	if (iounmap_probe.addr)
		unregister_kprobe(&iounmap_probe);
	pciem_watch_report_missed();
	for (i = 0; i < ARRAY_SIZE(ioremap_probes); i++) {
		if (ioremap_probe_ok[i])
			unregister_kretprobe(&ioremap_probes[i]);
		ioremap_probe_ok[i] = false;
	}
}

static void pciem_arm_work_fn(struct work_struct *work)
{
	struct pciem_dev *dev = container_of(work, struct pciem_dev, arm_work);

	mutex_lock(&dev->lock);
	if (dev->state == PCIEM_REGISTERED)
		pciem_watch_arm_pending(dev);
	mutex_unlock(&dev->lock);
}

void pciem_watch_dev_init(struct pciem_dev *dev)
{
	int i;

	INIT_LIST_HEAD(&dev->live_node);
	INIT_WORK(&dev->arm_work, pciem_arm_work_fn);
	for (i = 0; i < PCIEM_NUM_WATCHES; i++)
		dev->watches[i].dev = dev;
}

void pciem_watch_publish(struct pciem_dev *dev)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&pciem_map_lock, flags);
	list_add_tail(&dev->live_node, &pciem_live_devs);
	raw_spin_unlock_irqrestore(&pciem_map_lock, flags);
}

void pciem_watch_unpublish(struct pciem_dev *dev)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&pciem_map_lock, flags);
	list_del_init(&dev->live_node);
	raw_spin_unlock_irqrestore(&pciem_map_lock, flags);
	cancel_work_sync(&dev->arm_work);
}

/* #DB context, after the driver's store retired. */
static void pciem_bp_handler(struct perf_event *bp,
			     struct perf_sample_data *data,
			     struct pt_regs *regs)
{
	struct pciem_watch *w = bp->overflow_handler_context;
	struct pciem_event ev = {
		.type = PCIEM_EVENT_MMIO_WRITE,
		.flags = PCIEM_EVENT_FLAG_POSTED,
	};

	if (READ_ONCE(w->stale))
		return;
	ev.bar = w->bar;
	ev.offset = w->offset;
	ev.size = w->width;
	ev.timestamp_ns = ktime_get_mono_fast_ns();
	ev.data = pciem_io_read(w->addr, w->width);
	pciem_ring_push(w->dev, &ev);
}

static int bp_len(u32 width)
{
	switch (width) {
	case 1:
		return HW_BREAKPOINT_LEN_1;
	case 2:
		return HW_BREAKPOINT_LEN_2;
	case 4:
		return HW_BREAKPOINT_LEN_4;
	case 8:
		return HW_BREAKPOINT_LEN_8;
	}
	return -EINVAL;
}

/*
 * The driver's kernel address of @w's register, or NULL if not mapped.
 * Found, it clears @w's `stale` under pciem_map_lock: from here on an
 * iounmap of that mapping marks @w stale again (see the top of the file).
 */
static void __iomem *pciem_watch_lookup(struct pciem_dev *dev,
					struct pciem_watch *w)
{
	struct pciem_bar *b = &dev->bars[w->bar];
	void __iomem *addr = NULL;
	unsigned long flags;

	raw_spin_lock_irqsave(&pciem_map_lock, flags);
	if (b->map_kva && w->offset >= b->map_off &&
	    (u64)w->offset + w->width <= b->map_off + b->map_len) {
		addr = b->map_kva + (w->offset - b->map_off);
		WRITE_ONCE(w->stale, false);
	}
	raw_spin_unlock_irqrestore(&pciem_map_lock, flags);
	if (!addr)
		pciem_watch_report_missed();
	return addr;
}

static int pciem_watch_arm(struct pciem_watch *w, void __iomem *addr)
{
	struct perf_event_attr attr;
	struct perf_event * __percpu *bp;
	bool snap_valid;
	u64 before = 0;

	hw_breakpoint_init(&attr);
	attr.bp_addr = (unsigned long)addr;
	attr.bp_len = bp_len(w->width);
	attr.bp_type = HW_BREAKPOINT_W;

	w->addr = addr;
	snap_valid = READ_ONCE(w->snap_valid);
	if (snap_valid)
		before = pciem_io_read(addr, w->width);
	bp = register_wide_hw_breakpoint(&attr, pciem_bp_handler, w);
	if (IS_ERR(bp)) {
		pr_info_ratelimited("BAR%u+0x%x: no free debug register (%ld)\n",
				    w->bar, w->offset, PTR_ERR(bp));
		return PTR_ERR(bp);
	}
	w->bp = bp;
	w->pending = false;
	if (snap_valid) {
		u64 snap = READ_ONCE(w->snap);
		u64 after = pciem_io_read(addr, w->width);

		/*
		 * A change seen before registering certainly produced no
		 * event; one seen only after may have been trapped already.
		 */
		if (before != snap)
			pr_warn_ratelimited("BAR%u+0x%x changed from 0x%llx to 0x%llx while its watch was being armed: a driver store in that window produced no event\n",
					    w->bar, w->offset, snap, before);
		else if (after != before)
			pr_warn_ratelimited("BAR%u+0x%x changed from 0x%llx to 0x%llx while its watch was being armed: that store may have produced no event\n",
					    w->bar, w->offset, before, after);
		WRITE_ONCE(w->snap_valid, false);
	}
	return 0;
}

static void pciem_watch_disarm(struct pciem_watch *w)
{
	if (w->bp)
		unregister_wide_hw_breakpoint(w->bp);
	w->bp = NULL;
	w->used = false;
	w->pending = false;
	w->addr = NULL;
}

/*
 * Arms watches requested before REGISTER once the driver has mapped their
 * BAR, and drops armed watches whose mapping went away. dev->lock held.
 */
void pciem_watch_arm_pending(struct pciem_dev *dev)
{
	const char *reason = NULL;
	int i;

	lockdep_assert_held(&dev->lock);
	for (i = 0; i < PCIEM_NUM_WATCHES; i++) {
		struct pciem_watch *w = &dev->watches[i];
		void __iomem *addr;

		if (!w->used)
			continue;
		if (w->bp && READ_ONCE(w->stale)) {
			/* Unmapped; re-arm below if a new mapping exists. */
			unregister_wide_hw_breakpoint(w->bp);
			w->bp = NULL;
			w->pending = true;
		}
		if (!w->pending)
			continue;
		if (pciem_rs_watch_check_in_bar(w->offset, w->width,
						dev->bars[w->bar].size, &reason)) {
			pr_info("watch on BAR%u+0x%x dropped: %s\n",
				w->bar, w->offset, reason);
			pciem_watch_disarm(w);
			continue;
		}
		addr = pciem_watch_lookup(dev, w);
		if (addr && pciem_watch_arm(w, addr))
			pciem_watch_disarm(w);
	}
}

static struct pciem_watch *pciem_watch_find(struct pciem_dev *dev, u32 bar,
					    u32 offset)
{
	int i;

	for (i = 0; i < PCIEM_NUM_WATCHES; i++) {
		struct pciem_watch *w = &dev->watches[i];

		if (w->used && w->bar == bar && w->offset == offset)
			return w;
	}
	return NULL;
}

/*
 * The held watches against a new request, by pciem-core's rule (the
 * backends' too): -EEXIST if the register is watched, -ENOSPC if every
 * slot is taken.
 */
static int pciem_watch_check_addition(struct pciem_dev *dev,
				      const struct pciem_watchpoint_config *wp,
				      const char **reason)
{
	u32 bars[PCIEM_NUM_WATCHES], offsets[PCIEM_NUM_WATCHES];
	u32 n = 0;
	int i;

	for (i = 0; i < PCIEM_NUM_WATCHES; i++) {
		if (!dev->watches[i].used)
			continue;
		bars[n] = dev->watches[i].bar;
		offsets[n] = dev->watches[i].offset;
		n++;
	}
	return pciem_rs_watch_check_addition(bars, offsets, n, wp->bar_index,
					     wp->offset, reason);
}

/* SET_WATCHPOINT, dev->lock held. */
int pciem_watch_set(struct pciem_dev *dev,
		    const struct pciem_watchpoint_config *wp)
{
	const u32 known = PCIEM_WP_FLAG_BAR_KPROBES | PCIEM_WP_FLAG_BAR_MANUAL |
			  PCIEM_WP_FLAG_CLEAR;
	const char *reason = NULL;
	struct pciem_watch *w;
	void __iomem *addr;
	int i, ret;

	lockdep_assert_held(&dev->lock);
	if (wp->flags & ~known) {
		pr_info_ratelimited("SET_WATCHPOINT: unknown flags 0x%x\n",
				    wp->flags & ~known);
		return -EINVAL;
	}
	if (wp->bar_index >= PCIEM_NUM_BARS) {
		pr_info_ratelimited("SET_WATCHPOINT: BAR %u out of range\n",
				    wp->bar_index);
		return -EINVAL;
	}
	if (wp->flags & PCIEM_WP_FLAG_CLEAR) {
		w = pciem_watch_find(dev, wp->bar_index, wp->offset);
		if (!w) {
			pr_info_ratelimited("SET_WATCHPOINT: CLEAR of BAR%u+0x%x, which is not watched\n",
					    wp->bar_index, wp->offset);
			return -ENOENT;
		}
		pciem_watch_disarm(w);
		return 0;
	}
	ret = pciem_rs_watch_check_shape(wp->offset, wp->width, &reason);
	if (ret) {
		pr_info_ratelimited("SET_WATCHPOINT: width %u at offset 0x%x: %s\n",
				    wp->width, wp->offset, reason);
		return ret;
	}
	if (!(wp->flags & (PCIEM_WP_FLAG_BAR_KPROBES | PCIEM_WP_FLAG_BAR_MANUAL))) {
		pr_info_ratelimited("SET_WATCHPOINT: say how to find the mapping (BAR_KPROBES or BAR_MANUAL)\n");
		return -EINVAL;
	}
	if (!(wp->flags & PCIEM_WP_FLAG_BAR_MANUAL) && wp->addr) {
		pr_info_ratelimited("SET_WATCHPOINT: addr must be zero without BAR_MANUAL\n");
		return -EINVAL;
	}
	ret = pciem_watch_check_addition(dev, wp, &reason);
	if (ret) {
		pr_info_ratelimited("SET_WATCHPOINT: BAR%u+0x%x: %s\n",
				    wp->bar_index, wp->offset, reason);
		return ret;
	}
	for (i = 0, w = NULL; i < PCIEM_NUM_WATCHES && !w; i++) {
		if (!dev->watches[i].used)
			w = &dev->watches[i];
	}
	if (WARN_ON_ONCE(!w))
		return -ENOSPC;

	w->bar = wp->bar_index;
	w->offset = wp->offset;
	w->width = wp->width;
	w->bp = NULL;

	if (dev->state != PCIEM_REGISTERED) {
		if (wp->flags & PCIEM_WP_FLAG_BAR_MANUAL) {
			pr_info_ratelimited("SET_WATCHPOINT: BAR_MANUAL needs a registered device\n");
			return -EINVAL;
		}
		/* Armed when the driver maps the BAR. */
		w->used = true;
		w->pending = true;
		return 0;
	}
	ret = pciem_rs_watch_check_in_bar(wp->offset, wp->width,
					  dev->bars[wp->bar_index].size, &reason);
	if (ret) {
		pr_info_ratelimited("SET_WATCHPOINT: BAR%u+0x%x: %s\n",
				    wp->bar_index, wp->offset, reason);
		return ret;
	}
	addr = pciem_watch_lookup(dev, w);
	if (!addr) {
		pr_info_ratelimited("SET_WATCHPOINT: the driver has not mapped BAR%u+0x%x yet; retry after it has\n",
				    wp->bar_index, wp->offset);
		return -EAGAIN;
	}
	if ((wp->flags & PCIEM_WP_FLAG_BAR_MANUAL) &&
	    (unsigned long)addr != wp->addr) {
		pr_info_ratelimited("SET_WATCHPOINT: addr 0x%llx is not the driver's mapping of BAR%u+0x%x\n",
				    wp->addr, wp->bar_index, wp->offset);
		return -EINVAL;
	}
	w->used = true;
	ret = pciem_watch_arm(w, addr);
	if (ret)
		pciem_watch_disarm(w);
	return ret;
}

/* Before the device leaves the bus: no handler runs after this. */
void pciem_watch_release_all(struct pciem_dev *dev)
{
	int i;

	for (i = 0; i < PCIEM_NUM_WATCHES; i++)
		if (dev->watches[i].used)
			pciem_watch_disarm(&dev->watches[i]);
}
