// SPDX-License-Identifier: GPL-2.0
/*
 * dma.c - DMA issued by the device process: DMA_READ, DMA_WRITE,
 * DMA_ATOMIC and DMA_INDIRECT (NVMe-style PRP lists).
 *
 * A bus address is what the device's driver got from the DMA API. When the
 * device sits in a translating IOMMU domain it is an IOVA and is translated
 * page by page with iommu_iova_to_phys(); otherwise (no IOMMU, or an
 * identity domain) the bus address is the physical address. Every target
 * page must be RAM (page_is_ram); writes and atomics also refuse reserved
 * pages (the kernel image, firmware tables), whose direct-map alias may be
 * read-only. A transfer moves at most PCIEM_DMA_MAX_LEN (16 MiB) bytes and
 * is copied one page at a time through kmap_local_page(), so no large
 * kernel buffer is ever allocated; a fatal signal ends a long transfer.
 *
 * Before anything moves, each access (each PRP-list page and segment) is
 * checked against the driver's DMA mappings (dmacheck.c): EFAULT in
 * enforce mode for one outside them.
 *
 * Errors: EINVAL for a malformed request (zero or over-limit length,
 * wrap-around, non-zero flags, unaligned atomic, unknown atomic op,
 * malformed PRPs), ENXIO for a bus address that does not reach RAM, EFAULT
 * for an inaccessible user buffer, EIO for a read a fault rule poisoned
 * (inject.c; nothing of that access is copied), ENODEV before REGISTER, EPERM while the
 * driver has not enabled bus mastering (PCI_COMMAND_MASTER), as a real
 * device cannot master the bus then, ELOOP for a PRP
 * list that loops, E2BIG for a PRP list chain longer than any valid
 * transfer needs. Each is explained in the kernel log (ratelimited).
 *
 * Called with dev->lock held (the ioctl path), which keeps dev->pdev alive.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/highmem.h>
#include <linux/iommu.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "pciem_internal.h"

/* The translation in force for one request. */
struct pciem_dma_ctx {
	struct pciem_dev *dev;
	struct iommu_domain *domain;	/* translating domain, or NULL */
	const char *what;		/* ioctl name for the log */
};

/*
 * The DMA checker's verdict on an access (dmacheck.c): 0, or -EFAULT in
 * enforce mode. A translating IOMMU domain is its own checker: the DMA API
 * goes to the IOMMU then, never through our operations.
 */
static int pciem_dma_checked(const struct pciem_dma_ctx *c, u64 bus, u64 len,
			     u32 access, bool quiet)
{
	if (c->domain)
		return 0;
	return pciem_dmac_check(c->dev, bus, len, access, quiet);
}

static int dma_err(int err, const char *what, const char *reason)
{
	pr_info_ratelimited("%s: %s\n", what, reason);
	return err;
}

int pciem_dma_may_master(struct pciem_dev *dev, const char *what)
{
	const char *reason = NULL;
	unsigned long flags;
	u32 cmd = 0;
	int ret;

	if (dev->state != PCIEM_REGISTERED || !dev->pdev)
		return dma_err(-ENODEV, what, "the device is not on the bus (REGISTER first)");
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	ret = pciem_rs_cfg_read(dev->img, PCI_COMMAND, 2, &cmd, &reason);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (ret)
		return dma_err(ret, what, reason);
	if (!(cmd & PCI_COMMAND_MASTER))
		return dma_err(-EPERM, what, "Bus Master Enable is clear in the Command register (the driver has not called pci_set_master)");
	return 0;
}

static int pciem_dma_ctx_init(struct pciem_dev *dev, const char *what,
			      struct pciem_dma_ctx *c)
{
	struct iommu_domain *domain;
	int ret;

	lockdep_assert_held(&dev->lock);
	c->dev = dev;
	c->what = what;
	c->domain = NULL;
	ret = pciem_dma_may_master(dev, what);
	if (ret)
		return ret;
	domain = iommu_get_domain_for_dev(&dev->pdev->dev);
	if (domain && domain->type == IOMMU_DOMAIN_BLOCKED)
		return dma_err(-ENXIO, what, "the device's IOMMU domain blocks all DMA");
	if (domain && (domain->type & __IOMMU_DOMAIN_PAGING))
		c->domain = domain;
	return 0;
}

/* The RAM page and offset that bus address @bus reaches. */
static int pciem_dma_page(const struct pciem_dma_ctx *c, u64 bus, bool write,
			  struct page **page, unsigned int *off)
{
	phys_addr_t phys;
	unsigned long pfn;

	if (c->domain) {
		phys = iommu_iova_to_phys(c->domain, bus);
		if (!phys)
			return dma_err(-ENXIO, c->what, "bus address not mapped in the device's IOMMU domain");
	} else {
		phys = bus;
		if ((u64)phys != bus)
			return dma_err(-ENXIO, c->what, "bus address beyond the physical address space");
	}
	pfn = PHYS_PFN(phys);
	if (!pfn_valid(pfn) || !page_is_ram(pfn))
		return dma_err(-ENXIO, c->what, "bus address does not reach RAM");
	*page = pfn_to_page(pfn);
	if (write && PageReserved(*page))
		return dma_err(-ENXIO, c->what, "bus address reaches reserved memory, which is never written");
	*off = offset_in_page(phys);
	return 0;
}

/*
 * Moves @len bytes between bus address @bus and exactly one of @ubuf (user)
 * or @kbuf (kernel), towards host memory if @to_host, page by page.
 */
static int pciem_dma_copy(const struct pciem_dma_ctx *c, u64 bus, u64 len,
			  void __user *ubuf, void *kbuf, bool to_host)
{
	if (bus + len < bus)
		return dma_err(-EINVAL, c->what, "bus address range wraps around");
	while (len) {
		struct page *page;
		unsigned int off;
		unsigned long left = 0;
		size_t n;
		void *va;
		int ret;

		ret = pciem_dma_page(c, bus, to_host, &page, &off);
		if (ret)
			return ret;
		n = min_t(u64, len, PAGE_SIZE - off);
		va = kmap_local_page(page);
		if (ubuf && to_host)
			left = copy_from_user(va + off, ubuf, n);
		else if (ubuf)
			left = copy_to_user(ubuf, va + off, n);
		else if (to_host)
			memcpy(va + off, kbuf, n);
		else
			memcpy(kbuf, va + off, n);
		kunmap_local(va);
		if (left)
			return dma_err(-EFAULT, c->what, "user buffer not accessible");
		bus += n;
		len -= n;
		if (ubuf)
			ubuf += n;
		else
			kbuf += n;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	return 0;
}

/* Common checks of a transfer of @len bytes from/to user address @uaddr. */
static int pciem_dma_check_len(const char *what, u64 uaddr, u64 len)
{
	const char *reason = NULL;
	int ret = pciem_rs_dma_check_len(uaddr, len, &reason);

	return ret ? dma_err(ret, what, reason) : 0;
}

int pciem_dma_rw(struct pciem_dev *dev, void __user *uarg, bool to_host)
{
	const char *what = to_host ? "DMA_WRITE" : "DMA_READ";
	struct pciem_dma_ctx c;
	struct pciem_dma_op op;
	int ret;

	if (copy_from_user(&op, uarg, sizeof(op)))
		return -EFAULT;
	if (op.flags || op.reserved)
		return dma_err(-EINVAL, what, "flags and reserved must be zero");
	ret = pciem_dma_check_len(what, op.user_addr, op.length);
	if (ret)
		return ret;
	ret = pciem_dma_ctx_init(dev, what, &c);
	if (ret)
		return ret;
	if (op.bus_addr + op.length < op.bus_addr)
		return dma_err(-EINVAL, what, "bus address range wraps around");
	ret = pciem_dma_checked(&c, op.bus_addr, op.length,
				to_host ? PCIEM_DMA_ACCESS_WRITE : PCIEM_DMA_ACCESS_READ,
				false);
	if (ret)
		return ret;
	if (!to_host) {
		ret = pciem_inject_dma_read(dev, op.bus_addr, op.length, what);
		if (ret)
			return ret;
	}
	return pciem_dma_copy(&c, op.bus_addr, op.length,
			      u64_to_user_ptr(op.user_addr), NULL, to_host);
}

int pciem_dma_atomic(struct pciem_dev *dev, void __user *uarg)
{
	const char *what = "DMA_ATOMIC";
	struct pciem_dma_atomic a;
	const char *reason = NULL;
	struct pciem_dma_ctx c;
	struct page *page;
	unsigned int off;
	u64 old, new_val;
	u64 *p;
	void *va;
	int ret;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.flags)
		return dma_err(-EINVAL, what, "flags must be zero");
	if (a.bus_addr & 7)
		return dma_err(-EINVAL, what, "bus address not 8-byte aligned");
	/* Rejects an unknown op before memory is touched. */
	ret = pciem_rs_atomic_apply(a.op, a.operand, a.compare, 0, &new_val,
				    &reason);
	if (ret)
		return dma_err(ret, what, reason);
	ret = pciem_dma_ctx_init(dev, what, &c);
	if (ret)
		return ret;
	ret = pciem_dma_checked(&c, a.bus_addr, 8, PCIEM_DMA_ACCESS_ATOMIC, false);
	if (ret)
		return ret;
	/* An atomic reads the word first: a poisoned read fails it whole. */
	ret = pciem_inject_dma_read(dev, a.bus_addr, 8, what);
	if (ret)
		return ret;
	/* 8-byte aligned, so the word never straddles a page. */
	ret = pciem_dma_page(&c, a.bus_addr, true, &page, &off);
	if (ret)
		return ret;

	va = kmap_local_page(page);
	p = va + off;
	old = READ_ONCE(*p);
	do {
		/* The op was validated above: this cannot fail. */
		pciem_rs_atomic_apply(a.op, a.operand, a.compare, old,
				      &new_val, &reason);
	} while (!try_cmpxchg64(p, &old, new_val));
	kunmap_local(va);

	a.result = old;
	if (copy_to_user(uarg, &a, sizeof(a)))
		return -EFAULT;
	return 0;
}

/*
 * State of one DMA_INDIRECT walk, handed to the Rust walker's callbacks.
 * With checking in enforce mode a transfer is walked twice: first to check
 * (and report) every list page and segment, moving nothing but list
 * entries into the kernel; then to copy, re-checking quietly in case the
 * driver rewrote its lists in between.
 */
struct pciem_prp_ctx {
	struct pciem_dma_ctx dma;
	void __user *ubuf;
	u64 length;
	bool to_host;
	bool check_only;	/* first walk: check, move no data */
	bool quiet;		/* second walk: already reported */
};

static int pciem_prp_read_list(void *ctx, u64 addr, u8 *buf, u32 len)
{
	struct pciem_prp_ctx *p = ctx;
	int ret;

	ret = pciem_dma_checked(&p->dma, addr, len, PCIEM_DMA_ACCESS_READ,
				p->quiet);
	if (ret)
		return ret;
	/* Charged on the walk that moves data, so each transfer counts once. */
	if (!p->check_only) {
		ret = pciem_inject_dma_read(p->dma.dev, addr, len, p->dma.what);
		if (ret)
			return ret;
	}
	return pciem_dma_copy(&p->dma, addr, len, NULL, buf, false);
}

static int pciem_prp_segment(void *ctx, u64 pos, u64 addr, u64 len)
{
	struct pciem_prp_ctx *p = ctx;
	int ret;

	/* The walker keeps segments inside the transfer; check anyway. */
	if (pos > p->length || len > p->length - pos)
		return dma_err(-EINVAL, p->dma.what, "PRP segment outside the transfer");
	ret = pciem_dma_checked(&p->dma, addr, len,
				p->to_host ? PCIEM_DMA_ACCESS_WRITE : PCIEM_DMA_ACCESS_READ,
				p->quiet);
	if (ret || p->check_only)
		return ret;
	if (!p->to_host) {
		ret = pciem_inject_dma_read(p->dma.dev, addr, len, p->dma.what);
		if (ret)
			return ret;
	}
	return pciem_dma_copy(&p->dma, addr, len, p->ubuf + pos, NULL,
			      p->to_host);
}

int pciem_dma_indirect(struct pciem_dev *dev, void __user *uarg)
{
	struct pciem_dma_indirect req;
	struct pciem_prp_ctx p = {};
	const char *reason = NULL;
	int ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~PCIEM_PRP_FLAG_WRITE)
		return dma_err(-EINVAL, "DMA_INDIRECT", "unknown flags");
	ret = pciem_dma_check_len("DMA_INDIRECT", req.user_addr, req.length);
	if (ret)
		return ret;
	ret = pciem_dma_ctx_init(dev, "DMA_INDIRECT", &p.dma);
	if (ret)
		return ret;
	p.ubuf = u64_to_user_ptr(req.user_addr);
	p.length = req.length;
	p.to_host = req.flags & PCIEM_PRP_FLAG_WRITE;
	if (dev->dmac.active && dev->dmac.mode == PCIEM_DMA_CHECK_ENFORCE) {
		p.check_only = true;
		ret = pciem_rs_prp_walk(&req, &p, pciem_prp_read_list,
					pciem_prp_segment, &reason);
		if (ret == -EFAULT)
			return ret;
		p.check_only = false;
		p.quiet = true;
	}
	if (!ret)
		ret = pciem_rs_prp_walk(&req, &p, pciem_prp_read_list,
					pciem_prp_segment, &reason);
	if (ret && ret != -EINTR && ret != -EIO)
		pr_info_ratelimited("DMA_INDIRECT: %s (%d)\n", reason, ret);
	return ret;
}
