// SPDX-License-Identifier: GPL-2.0
/*
 * dmacheck.c - DMA checking: the model may touch only what the driver
 * mapped.
 *
 * Unless its DMA check mode is off, each PCIem device gets its own DMA
 * operations. They map like the kernel's direct mapping (bus address ==
 * physical address, no IOMMU, no bounce buffers) and record every live
 * mapping in an interval tree: bus address, length, direction, whether it
 * is a coherent allocation, and the stack of the call that made it, from
 * which a report later names the driver's call site. The last
 * PCIEM_DMAC_HISTORY unmaps are remembered with their time.
 *
 * Every DMA the model issues (dma.c: read, write, atomic, each PRP-list
 * page and segment) is checked first by pciem-core's dmacheck rules
 * (pciem_rs_dma_check), which read this state through two callbacks.
 * A violation is counted (sysfs pciem_dma_check), logged (ratelimited,
 * one line) and sent to the model as a PCIEM_EVENT_DMA_FAULT; in enforce
 * mode the access then fails with EFAULT before any byte moves.
 *
 * A 32-bit DMA mask is honoured: coherent memory comes from ZONE_DMA32,
 * and a streaming mapping of memory above the mask fails (no bounce
 * buffering) with a log line, never with a wrong address. When the driver
 * unbinds, every mapping still live is reported as a leak.
 *
 * Locking: dc->lock (irqsave: drivers map and unmap from interrupt
 * context) guards the tree, the history and the records; it is innermost.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-map-ops.h>
#include <linux/interval_tree.h>
#include <linux/kallsyms.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/stacktrace.h>
#include <linux/xarray.h>

#include "pciem_internal.h"

/* One live mapping. */
struct pciem_dmac_rec {
	struct interval_tree_node it;	/* bus addresses, inclusive */
	u64 len;
	u32 dir;			/* PCIEM_DMA_* */
	bool coherent;
	unsigned int nr_stack;
	unsigned long stack[PCIEM_DMAC_STACK];
};

static char *dma_check = "enforce";
module_param(dma_check, charp, 0444);
MODULE_PARM_DESC(dma_check,
		 "default DMA check mode of new devices: off, report or enforce (default)");

static u32 pciem_dmac_default;

static const char * const pciem_dmac_mode_names[] = {
	[PCIEM_DMA_CHECK_OFF] = "off",
	[PCIEM_DMA_CHECK_REPORT] = "report",
	[PCIEM_DMA_CHECK_ENFORCE] = "enforce",
};

static const struct dma_map_ops pciem_dmac_ops;

/*
 * The trackers of the devices on the bus, by struct device. A driver may
 * call the DMA API on a device after it was removed (dma_free_coherent()
 * from a file release, with a reference on the pci_dev): by then the
 * device's pciem_dev may be gone, so the operations find its tracker here,
 * under RCU, and map or free untracked when there is none.
 */
static DEFINE_XARRAY(pciem_dmac_reg);

/* The tracker of @d, or NULL; call under rcu_read_lock(). */
static struct pciem_dma_check *pciem_dmac_get(struct device *d)
{
	return xa_load(&pciem_dmac_reg, (unsigned long)d);
}

static const char *pciem_dmac_dir_name(u32 dir)
{
	switch (dir) {
	case PCIEM_DMA_TO_DEVICE:
		return "DMA_TO_DEVICE";
	case PCIEM_DMA_FROM_DEVICE:
		return "DMA_FROM_DEVICE";
	default:
		return "DMA_BIDIRECTIONAL";
	}
}

static u32 pciem_dmac_dir(enum dma_data_direction dir)
{
	switch (dir) {
	case DMA_TO_DEVICE:
		return PCIEM_DMA_TO_DEVICE;
	case DMA_FROM_DEVICE:
		return PCIEM_DMA_FROM_DEVICE;
	default:
		return PCIEM_DMA_BIDIRECTIONAL;
	}
}

/*
 * The driver's frame among a saved stack: the first one outside this file
 * and the DMA API's own functions (dma_map_page_attrs, dma_alloc_attrs,
 * dma_pool's pool_alloc_page, ...). 0 if none is.
 */
static unsigned long pciem_dmac_caller(const unsigned long *stack,
				       unsigned int n)
{
	static const char * const skip[] = {
		"pciem_dmac_", "dma_", "__dma_", "dmam_", "debug_dma_",
		"pool_alloc_page",
	};
	char name[KSYM_NAME_LEN];
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		bool ours = false;

		if (!sprint_symbol_no_offset(name, stack[i]))
			continue;
		for (j = 0; j < ARRAY_SIZE(skip); j++)
			ours |= !strncmp(name, skip[j], strlen(skip[j]));
		if (!ours)
			return stack[i];
	}
	return 0;
}

/* Drops the cached hits inside start..=last; dc->lock held. */
static void pciem_dmac_forget_hits(struct pciem_dma_check *dc, u64 start,
				   u64 last)
{
	unsigned int i;

	lockdep_assert_held(&dc->lock);
	write_seqcount_begin(&dc->hit_seq);
	for (i = 0; i < PCIEM_DMAC_HITS; i++) {
		struct pciem_dmac_hit *h = &dc->hits[i];

		if (h->valid && h->start <= last && start <= h->last)
			h->valid = false;
	}
	write_seqcount_end(&dc->hit_seq);
}

/* Caches that @m alone allows @access; dc->lock held. */
static void pciem_dmac_remember_hit(struct pciem_dma_check *dc,
				    const struct pciem_rs_dma_map *m, u32 access)
{
	struct pciem_dmac_hit *h = &dc->hits[dc->hit_next++ % PCIEM_DMAC_HITS];

	lockdep_assert_held(&dc->lock);
	write_seqcount_begin(&dc->hit_seq);
	h->start = m->start;
	h->last = m->start + m->len - 1;
	h->access = access;
	h->valid = true;
	write_seqcount_end(&dc->hit_seq);
}

/* Whether a cached hit already allows the access (no lock taken). */
static bool pciem_dmac_cached(struct pciem_dma_check *dc, u64 addr, u64 last,
			      u32 access)
{
	unsigned int seq, i;
	bool hit;

	do {
		seq = read_seqcount_begin(&dc->hit_seq);
		hit = false;
		for (i = 0; i < PCIEM_DMAC_HITS && !hit; i++) {
			const struct pciem_dmac_hit *h = &dc->hits[i];

			hit = h->valid && h->access == access &&
			      h->start <= addr && last <= h->last;
		}
	} while (read_seqcount_retry(&dc->hit_seq, seq));
	return hit;
}

/* The driver's frame that called into the DMA API right now. */
static unsigned long pciem_dmac_here(void)
{
	unsigned long stack[PCIEM_DMAC_STACK];
	unsigned int n = stack_trace_save(stack, PCIEM_DMAC_STACK, 0);

	return pciem_dmac_caller(stack, n);
}

/*
 * Records a mapping of @d; false (and counted) if there is no memory for
 * the record. A device without a tracker (removed) maps untracked.
 */
static bool pciem_dmac_add(struct device *d, u64 start, u64 len, u32 dir,
			   bool coherent, gfp_t gfp)
{
	struct pciem_dma_check *dc;
	struct pciem_dmac_rec *rec;
	unsigned long flags;

	if (!len)
		return true;
	rec = kmalloc(sizeof(*rec), gfp | __GFP_NOWARN);
	rcu_read_lock();
	dc = pciem_dmac_get(d);
	if (!dc) {
		rcu_read_unlock();
		kfree(rec);
		return true;
	}
	if (!rec) {
		atomic64_inc(&dc->nomem);
		rcu_read_unlock();
		pr_warn_ratelimited("%s: no memory to record a DMA mapping; the mapping fails\n",
				    dev_name(d));
		return false;
	}
	rec->it.start = start;
	rec->it.last = start + len - 1;
	rec->len = len;
	rec->dir = dir;
	rec->coherent = coherent;
	rec->nr_stack = stack_trace_save(rec->stack, PCIEM_DMAC_STACK, 0);
	spin_lock_irqsave(&dc->lock, flags);
	interval_tree_insert(&rec->it, &dc->live);
	dc->nr_live++;
	spin_unlock_irqrestore(&dc->lock, flags);
	atomic64_inc(&dc->maps);
	rcu_read_unlock();
	return true;
}

/*
 * Removes the record of the mapping at @start of @len bytes into the
 * history. A driver that unmaps what it never mapped (twice, or with a
 * different length or kind) is reported; @what names its call.
 */
static void pciem_dmac_remove(struct device *d, u64 start, u64 len,
			      u32 dir, bool coherent, const char *what)
{
	struct pciem_dma_check *dc;
	struct interval_tree_node *n;
	struct pciem_dmac_rec *rec = NULL;
	struct pciem_dmac_gone *g;
	unsigned long flags;

	if (!len)
		return;
	rcu_read_lock();
	dc = pciem_dmac_get(d);
	if (!dc) {
		/* Removed: nothing is tracked any more. */
		rcu_read_unlock();
		return;
	}
	spin_lock_irqsave(&dc->lock, flags);
	for (n = interval_tree_iter_first(&dc->live, start, start); n;
	     n = interval_tree_iter_next(n, start, start)) {
		struct pciem_dmac_rec *r = container_of(n, struct pciem_dmac_rec, it);

		if (r->it.start == start && r->len == len && r->coherent == coherent) {
			rec = r;
			break;
		}
	}
	if (rec) {
		interval_tree_remove(&rec->it, &dc->live);
		dc->nr_live--;
		pciem_dmac_forget_hits(dc, rec->it.start, rec->it.last);
		g = &dc->gone[dc->gone_next++ % PCIEM_DMAC_HISTORY];
		g->start = start;
		g->len = len;
		g->dir = rec->dir;
		g->when_ns = ktime_get_ns();
		g->nr_stack = rec->nr_stack;
		memcpy(g->stack, rec->stack, sizeof(g->stack));
	}
	spin_unlock_irqrestore(&dc->lock, flags);
	if (!rec) {
		atomic64_inc(&dc->bad_unmap);
		rcu_read_unlock();
		pr_warn_ratelimited("%s: %s of %#llx+%#llx, which is not mapped (unmapped twice, or never mapped with this length), by %pS\n",
				    dev_name(d), what, start, len,
				    (void *)pciem_dmac_here());
		return;
	}
	if (rec->dir != dir) {
		atomic64_inc(&dc->bad_unmap);
		pr_warn_ratelimited("%s: %s of %#llx+%#llx as %s, mapped as %s, by %pS\n",
				    dev_name(d), what, start, len,
				    pciem_dmac_dir_name(dir),
				    pciem_dmac_dir_name(rec->dir),
				    (void *)pciem_dmac_here());
	}
	atomic64_inc(&dc->unmaps);
	rcu_read_unlock();
	kfree(rec);
}

/* Counts a mapping refused by the DMA mask. */
static void pciem_dmac_count_mask(struct device *d)
{
	struct pciem_dma_check *dc;

	rcu_read_lock();
	dc = pciem_dmac_get(d);
	if (dc)
		atomic64_inc(&dc->mask);
	rcu_read_unlock();
}

/* A streaming mapping beyond the DMA mask: refused, counted, logged. */
static bool pciem_dmac_fits(struct device *d, u64 phys, u64 len, u64 mask)
{
	if (len && phys + len - 1 <= mask)
		return true;
	if (!len && phys <= mask)
		return true;
	pciem_dmac_count_mask(d);
	pr_warn_ratelimited("%s: DMA mapping of %#llx+%#llx is above the device's DMA mask %#llx (PCIem does not bounce); the mapping fails, by %pS\n",
			    dev_name(d), phys, len, mask,
			    (void *)pciem_dmac_here());
	return false;
}

static u64 pciem_dmac_stream_mask(struct device *d)
{
	u64 mask = d->dma_mask ? *d->dma_mask : 0;

	return min_not_zero(mask, d->bus_dma_limit);
}

static void *pciem_dmac_alloc(struct device *d, size_t size,
			      dma_addr_t *handle, gfp_t gfp,
			      unsigned long attrs)
{
	u64 mask = d->coherent_dma_mask;
	unsigned int order = get_order(size);
	struct page *page;
	phys_addr_t phys;

	gfp &= ~(__GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM);
	if (mask < DMA_BIT_MASK(32))
		gfp |= GFP_DMA;
	else if (mask < DMA_BIT_MASK(64))
		gfp |= GFP_DMA32;
	page = alloc_pages(gfp | __GFP_ZERO, order);
	if (!page)
		return NULL;
	phys = page_to_phys(page);
	if (phys + size - 1 > mask) {
		__free_pages(page, order);
		pciem_dmac_count_mask(d);
		pr_warn_ratelimited("%s: no coherent memory below the DMA mask %#llx for %zu bytes, by %pS\n",
				    dev_name(d), mask, size,
				    (void *)pciem_dmac_here());
		return NULL;
	}
	if (!pciem_dmac_add(d, phys, size, PCIEM_DMA_BIDIRECTIONAL, true,
			    gfp & ~(__GFP_DMA | __GFP_DMA32 | __GFP_ZERO))) {
		__free_pages(page, order);
		return NULL;
	}
	*handle = phys;
	return page_address(page);
}

static void pciem_dmac_free(struct device *d, size_t size, void *vaddr,
			    dma_addr_t handle, unsigned long attrs)
{
	pciem_dmac_remove(d, handle, size,
			  PCIEM_DMA_BIDIRECTIONAL, true, "dma_free_coherent");
	free_pages((unsigned long)vaddr, get_order(size));
}

static dma_addr_t pciem_dmac_map_page(struct device *d, struct page *page,
				      unsigned long offset, size_t size,
				      enum dma_data_direction dir,
				      unsigned long attrs)
{
	u64 phys = page_to_phys(page) + offset;

	if (!pciem_dmac_fits(d, phys, size, pciem_dmac_stream_mask(d)))
		return DMA_MAPPING_ERROR;
	if (!pciem_dmac_add(d, phys, size,
			    pciem_dmac_dir(dir), false, GFP_ATOMIC))
		return DMA_MAPPING_ERROR;
	return phys;
}

static void pciem_dmac_unmap_page(struct device *d, dma_addr_t addr,
				  size_t size, enum dma_data_direction dir,
				  unsigned long attrs)
{
	pciem_dmac_remove(d, addr, size, pciem_dmac_dir(dir),
			  false, "dma_unmap_page");
}

static void pciem_dmac_unmap_sg(struct device *d, struct scatterlist *sgl,
				int nents, enum dma_data_direction dir,
				unsigned long attrs)
{
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		pciem_dmac_remove(d, sg_dma_address(sg),
				  sg_dma_len(sg), pciem_dmac_dir(dir), false,
				  "dma_unmap_sg");
}

static int pciem_dmac_map_sg(struct device *d, struct scatterlist *sgl,
			     int nents, enum dma_data_direction dir,
			     unsigned long attrs)
{
	u64 mask = pciem_dmac_stream_mask(d);
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i) {
		u64 phys = sg_phys(sg);

		if (!pciem_dmac_fits(d, phys, sg->length, mask) ||
		    !pciem_dmac_add(d, phys, sg->length,
				    pciem_dmac_dir(dir), false, GFP_ATOMIC)) {
			pciem_dmac_unmap_sg(d, sgl, i, dir, attrs);
			return -EIO;
		}
		sg->dma_address = phys;
		sg_dma_len(sg) = sg->length;
	}
	return nents;
}

/* Peer-to-peer (a BAR): not RAM, not tracked, not checked. */
static dma_addr_t pciem_dmac_map_resource(struct device *d, phys_addr_t phys,
					  size_t size,
					  enum dma_data_direction dir,
					  unsigned long attrs)
{
	return phys;
}

static int pciem_dmac_mmap(struct device *d, struct vm_area_struct *vma,
			   void *vaddr, dma_addr_t handle, size_t size,
			   unsigned long attrs)
{
	unsigned long count = PAGE_ALIGN(size) >> PAGE_SHIFT;

	if (vma->vm_pgoff >= count || vma_pages(vma) > count - vma->vm_pgoff)
		return -ENXIO;
	return remap_pfn_range(vma, vma->vm_start,
			       PHYS_PFN(handle) + vma->vm_pgoff,
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}

static int pciem_dmac_get_sgtable(struct device *d, struct sg_table *sgt,
				  void *vaddr, dma_addr_t handle, size_t size,
				  unsigned long attrs)
{
	int ret = sg_alloc_table(sgt, 1, GFP_KERNEL);

	if (!ret)
		sg_set_page(sgt->sgl, virt_to_page(vaddr), PAGE_ALIGN(size), 0);
	return ret;
}

/* Masks below 32 bits would need ZONE_DMA bouncing: refused at set time. */
static int pciem_dmac_supported(struct device *d, u64 mask)
{
	return mask >= DMA_BIT_MASK(32);
}

static const struct dma_map_ops pciem_dmac_ops = {
	.alloc = pciem_dmac_alloc,
	.free = pciem_dmac_free,
	.mmap = pciem_dmac_mmap,
	.get_sgtable = pciem_dmac_get_sgtable,
	.map_page = pciem_dmac_map_page,
	.unmap_page = pciem_dmac_unmap_page,
	.map_sg = pciem_dmac_map_sg,
	.unmap_sg = pciem_dmac_unmap_sg,
	.map_resource = pciem_dmac_map_resource,
	.dma_supported = pciem_dmac_supported,
};

/* The callbacks of pciem_rs_dma_check(); called with dc->lock held. */
static void pciem_dmac_overlapping(void *ctx, u64 lo, u64 hi,
				   pciem_rs_dma_visit visit, void *vctx)
{
	struct pciem_dma_check *dc = ctx;
	struct interval_tree_node *n;

	lockdep_assert_held(&dc->lock);
	for (n = interval_tree_iter_first(&dc->live, lo, hi); n;
	     n = interval_tree_iter_next(n, lo, hi)) {
		struct pciem_dmac_rec *r = container_of(n, struct pciem_dmac_rec, it);
		struct pciem_rs_dma_map m = {
			.start = r->it.start,
			.len = r->len,
			.dir = r->dir,
			.tag = (u64)(uintptr_t)r,
		};

		if (!visit(vctx, &m))
			break;
	}
}

static bool pciem_dmac_unmapped_at(void *ctx, u64 addr,
				   struct pciem_rs_dma_map *out)
{
	struct pciem_dma_check *dc = ctx;
	unsigned int i, n = min_t(unsigned int, dc->gone_next, PCIEM_DMAC_HISTORY);

	for (i = 1; i <= n; i++) {
		unsigned int slot = (dc->gone_next - i) % PCIEM_DMAC_HISTORY;
		const struct pciem_dmac_gone *g = &dc->gone[slot];

		if (addr >= g->start && addr - g->start < g->len) {
			out->start = g->start;
			out->len = g->len;
			out->dir = g->dir;
			out->tag = PCIEM_DMAC_TAG_GONE(slot);
			return true;
		}
	}
	return false;
}

static const char * const pciem_dmac_access_names[] = {
	[PCIEM_DMA_ACCESS_READ] = "read",
	[PCIEM_DMA_ACCESS_WRITE] = "write",
	[PCIEM_DMA_ACCESS_ATOMIC] = "atomic",
};

/* What the report says about the culprit, copied under dc->lock. */
struct pciem_dmac_culprit {
	unsigned long stack[PCIEM_DMAC_STACK];
	unsigned int nr_stack;
	u64 gone_ns;		/* unmapped this long ago (AFTER_UNMAP) */
	bool coherent;
};

static void pciem_dmac_report(struct pciem_dev *dev, u64 addr, u64 len,
			      u32 access, const struct pciem_rs_dma_fault *f,
			      const struct pciem_dmac_culprit *c, bool refuse)
{
	struct pciem_dma_check *dc = &dev->dmac;
	const char *verdict = refuse ? "refused" : "allowed (report mode)";
	const char *acc = pciem_dmac_access_names[access];
	const struct pciem_rs_dma_map *m = &f->culprit;
	unsigned long caller = 0;
	struct pciem_event ev = {
		.type = PCIEM_EVENT_DMA_FAULT,
		.bar = access,
		.offset = f->first_bad,
		.size = (u32)min_t(u64, len, U32_MAX),
		.flags = f->kind,
		.id = refuse,
	};

	if (f->kind <= PCIEM_DMA_FAULT_AFTER_UNMAP)
		atomic64_inc(&dc->faults[f->kind]);
	if (f->has_culprit)
		caller = pciem_dmac_caller(c->stack, c->nr_stack);
	switch (f->kind) {
	case PCIEM_DMA_FAULT_OUTSIDE:
		ev.data = f->bytes;
		pr_warn_ratelimited("%s: DMA %s of %llu bytes at %#llx: outside the %s mapping %#llx+%#llx (%s, mapped by %pS) by %llu bytes; %s\n",
				    pci_name(dev->pdev), acc, len, addr,
				    c->coherent ? "coherent" : "streaming",
				    m->start, m->len, pciem_dmac_dir_name(m->dir),
				    (void *)caller, f->bytes, verdict);
		break;
	case PCIEM_DMA_FAULT_WRONG_DIRECTION:
		pr_warn_ratelimited("%s: DMA %s of %llu bytes at %#llx: wrong direction, %#llx+%#llx is mapped %s (mapped by %pS); %s\n",
				    pci_name(dev->pdev), acc, len, addr,
				    m->start, m->len, pciem_dmac_dir_name(m->dir),
				    (void *)caller, verdict);
		break;
	case PCIEM_DMA_FAULT_AFTER_UNMAP:
		ev.data = c->gone_ns;
		pr_warn_ratelimited("%s: DMA %s of %llu bytes at %#llx: after unmap, %#llx+%#llx was unmapped %llu ms ago (mapped by %pS); %s\n",
				    pci_name(dev->pdev), acc, len, addr,
				    m->start, m->len, div_u64(c->gone_ns, NSEC_PER_MSEC),
				    (void *)caller, verdict);
		break;
	default:
		pr_warn_ratelimited("%s: DMA %s of %llu bytes at %#llx: %#llx is not mapped by the driver; %s\n",
				    pci_name(dev->pdev), acc, len, addr,
				    f->first_bad, verdict);
		break;
	}
	pciem_ring_push(dev, &ev);
}

int pciem_dmac_check(struct pciem_dev *dev, u64 addr, u64 len, u32 access,
		     bool quiet)
{
	struct pciem_dma_check *dc = &dev->dmac;
	struct pciem_dmac_culprit c = {};
	struct pciem_rs_dma_map cover;
	struct pciem_rs_dma_fault f;
	unsigned long flags;
	bool refuse;
	int ret;

	if (dc->mode == PCIEM_DMA_CHECK_OFF || !dc->active || !len)
		return 0;
	/* The caller rejected ranges that wrap around. */
	if (pciem_dmac_cached(dc, addr, addr + len - 1, access))
		return 0;
	spin_lock_irqsave(&dc->lock, flags);
	ret = pciem_rs_dma_check(addr, len, access, dc, pciem_dmac_overlapping,
				 pciem_dmac_unmapped_at, &f, &cover);
	if (!ret && cover.len)
		pciem_dmac_remember_hit(dc, &cover, access);
	if (ret == 1 && f.has_culprit) {
		if (f.culprit.tag <= PCIEM_DMAC_HISTORY) {
			const struct pciem_dmac_gone *g =
				&dc->gone[f.culprit.tag - 1];

			c.nr_stack = g->nr_stack;
			memcpy(c.stack, g->stack, sizeof(c.stack));
			c.gone_ns = ktime_get_ns() - g->when_ns;
		} else {
			const struct pciem_dmac_rec *r =
				(void *)(uintptr_t)f.culprit.tag;

			c.nr_stack = r->nr_stack;
			c.coherent = r->coherent;
			memcpy(c.stack, r->stack, sizeof(c.stack));
		}
	}
	spin_unlock_irqrestore(&dc->lock, flags);
	if (ret <= 0)
		return ret;
	refuse = dc->mode == PCIEM_DMA_CHECK_ENFORCE;
	if (!quiet)
		pciem_dmac_report(dev, addr, len, access, &f, &c, refuse);
	return refuse ? -EFAULT : 0;
}

/* SET_DMA_CHECK, called with dev->lock held. */
int pciem_dmac_set_mode(struct pciem_dev *dev,
			const struct pciem_dma_check_mode *m)
{
	lockdep_assert_held(&dev->lock);
	if (m->reserved || m->mode > PCIEM_DMA_CHECK_ENFORCE) {
		pr_info_ratelimited("SET_DMA_CHECK: mode must be PCIEM_DMA_CHECK_DEFAULT, _OFF, _REPORT or _ENFORCE and reserved zero\n");
		return -EINVAL;
	}
	if (dev->state == PCIEM_REGISTERED) {
		pr_info_ratelimited("SET_DMA_CHECK: the device is already registered\n");
		return -EBUSY;
	}
	dev->dmac.mode = m->mode == PCIEM_DMA_CHECK_DEFAULT ?
			 pciem_dmac_default : m->mode;
	return 0;
}

void pciem_dmac_dev_init(struct pciem_dev *dev)
{
	struct pciem_dma_check *dc = &dev->dmac;

	spin_lock_init(&dc->lock);
	seqcount_spinlock_init(&dc->hit_seq, &dc->lock);
	dc->live = RB_ROOT_CACHED;
	dc->mode = pciem_dmac_default;
}

/* Frees every record, reporting each as a leak of @leaker if it is set. */
static unsigned int pciem_dmac_drop_all(struct pciem_dma_check *dc,
					struct device *leaker)
{
	struct interval_tree_node *n;
	unsigned int count = 0;
	unsigned long flags;

	for (;;) {
		struct pciem_dmac_rec *r;

		spin_lock_irqsave(&dc->lock, flags);
		n = interval_tree_iter_first(&dc->live, 0, ULONG_MAX);
		if (n) {
			interval_tree_remove(n, &dc->live);
			dc->nr_live--;
			pciem_dmac_forget_hits(dc, n->start, n->last);
		}
		spin_unlock_irqrestore(&dc->lock, flags);
		if (!n)
			return count;
		r = container_of(n, struct pciem_dmac_rec, it);
		if (leaker) {
			atomic64_inc(&dc->leaks);
			pr_warn_ratelimited("%s: DMA leak at driver unbind: %s %#llx+%#llx (%s) still mapped, mapped by %pS\n",
					    dev_name(leaker),
					    r->coherent ? "coherent buffer" : "streaming mapping",
					    (u64)r->it.start, r->len,
					    pciem_dmac_dir_name(r->dir),
					    (void *)pciem_dmac_caller(r->stack, r->nr_stack));
		}
		count++;
		kfree(r);
	}
}

void pciem_dmac_attach(struct pciem_dev *dev)
{
	struct device *d = &dev->pdev->dev;
	int ret;

	if (dev->dmac.mode == PCIEM_DMA_CHECK_OFF)
		return;
	ret = xa_err(xa_store(&pciem_dmac_reg, (unsigned long)d, &dev->dmac,
			      GFP_KERNEL));
	if (ret) {
		pr_warn("%s: DMA checking unavailable (%d): the device maps directly\n",
			pci_name(dev->pdev), ret);
		dev->dmac.mode = PCIEM_DMA_CHECK_OFF;
		return;
	}
	dev->dmac.dev = d;
	set_dma_ops(d, &pciem_dmac_ops);
	dev->dmac.active = true;
}

void pciem_dmac_detach(struct pciem_dev *dev)
{
	if (!dev->dmac.active)
		return;
	dev->dmac.active = false;
	xa_erase(&pciem_dmac_reg, (unsigned long)dev->dmac.dev);
	/* No DMA operation still uses the tracker after this. */
	synchronize_rcu();
	pciem_dmac_drop_all(&dev->dmac, NULL);
}

ssize_t pciem_dmac_show(struct pciem_dev *dev, char *buf)
{
	struct pciem_dma_check *dc = &dev->dmac;

	return sysfs_emit(buf,
			  "mode %s\nlive %llu\nmaps %lld\nunmaps %lld\nunmapped %lld\noutside %lld\nwrong_direction %lld\nafter_unmap %lld\nleaks %lld\nmask %lld\nbad_unmap %lld\nnomem %lld\n",
			  pciem_dmac_mode_names[dc->mode], READ_ONCE(dc->nr_live),
			  atomic64_read(&dc->maps), atomic64_read(&dc->unmaps),
			  atomic64_read(&dc->faults[PCIEM_DMA_FAULT_UNMAPPED]),
			  atomic64_read(&dc->faults[PCIEM_DMA_FAULT_OUTSIDE]),
			  atomic64_read(&dc->faults[PCIEM_DMA_FAULT_WRONG_DIRECTION]),
			  atomic64_read(&dc->faults[PCIEM_DMA_FAULT_AFTER_UNMAP]),
			  atomic64_read(&dc->leaks), atomic64_read(&dc->mask),
			  atomic64_read(&dc->bad_unmap), atomic64_read(&dc->nomem));
}

/* When a driver lets go of one of our devices, what it left mapped leaks. */
static int pciem_dmac_notify(struct notifier_block *nb, unsigned long action,
			     void *data)
{
	struct device *d = data;
	struct pciem_dma_check *dc;

	if (action != BUS_NOTIFY_UNBOUND_DRIVER || get_dma_ops(d) != &pciem_dmac_ops)
		return NOTIFY_DONE;
	rcu_read_lock();
	dc = pciem_dmac_get(d);
	if (dc)
		pciem_dmac_drop_all(dc, d);
	rcu_read_unlock();
	return NOTIFY_OK;
}

static struct notifier_block pciem_dmac_nb = {
	.notifier_call = pciem_dmac_notify,
};

int pciem_dmac_init(void)
{
	unsigned int i;

	for (i = PCIEM_DMA_CHECK_OFF; i <= PCIEM_DMA_CHECK_ENFORCE; i++)
		if (dma_check && !strcmp(dma_check, pciem_dmac_mode_names[i]))
			pciem_dmac_default = i;
	if (!pciem_dmac_default) {
		pr_err("dma_check=%s: expected off, report or enforce\n",
		       dma_check ? dma_check : "(null)");
		return -EINVAL;
	}
	return bus_register_notifier(&pci_bus_type, &pciem_dmac_nb);
}

void pciem_dmac_exit(void)
{
	bus_unregister_notifier(&pci_bus_type, &pciem_dmac_nb);
}
