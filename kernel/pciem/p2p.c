// SPDX-License-Identifier: GPL-2.0
/*
 * p2p.c - peer-to-peer transfers (P2P_READ, P2P_WRITE) into the physical
 * ranges the administrator whitelisted with
 *   p2p_regions=ADDR:SIZE[,ADDR:SIZE...]
 * (at most PCIEM_P2P_MAX_REGIONS, e.g. a peer's BAR). The list is parsed and
 * validated at load: each range non-empty, not wrapping, not overlapping
 * another entry and not System RAM (a peer's BAR never is). Each range is
 * ioremapped once at load; a transfer must lie wholly inside one range and
 * moves through a one-page bounce buffer with memcpy_{from,to}io.
 *
 * Errors: EACCES for a transfer not wholly inside one whitelisted region
 * (including when no region is configured), EINVAL for a malformed request,
 * EFAULT for an inaccessible user buffer, ENODEV before REGISTER, EPERM
 * while bus mastering is disabled (as for DMA).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "pciem_internal.h"

#define PCIEM_P2P_MAX_REGIONS	8

static char *p2p_regions;
module_param(p2p_regions, charp, 0444);
MODULE_PARM_DESC(p2p_regions,
		 "Physical ranges peer-to-peer transfers may reach, ADDR:SIZE[,ADDR:SIZE...] (at most 8; not System RAM)");

struct pciem_p2p_region {
	u64 addr;
	u64 size;
	void __iomem *map;
};

/* Written only at load and unload. */
static struct pciem_p2p_region p2p[PCIEM_P2P_MAX_REGIONS];
static unsigned int p2p_count;

/* Parses one "ADDR:SIZE" at *s, leaving *s after it. */
static int p2p_parse_one(char **s, u64 *addr, u64 *size)
{
	char *start = *s, *end;

	*addr = memparse(start, &end);
	if (end == start || *end != ':') {
		pr_err("p2p_regions: entry %u: expected ADDR:SIZE\n", p2p_count + 1);
		return -EINVAL;
	}
	start = end + 1;
	*size = memparse(start, &end);
	if (end == start || (*end != ',' && *end != '\0' && *end != '\n')) {
		pr_err("p2p_regions: entry %u: bad SIZE or trailing characters\n",
		       p2p_count + 1);
		return -EINVAL;
	}
	*s = end;
	return 0;
}

static int p2p_check(u64 addr, u64 size)
{
	unsigned int i;

	if (!size) {
		pr_err("p2p_regions: entry %u: size is zero\n", p2p_count + 1);
		return -EINVAL;
	}
	if (addr + size < addr || addr + size - 1 > (u64)(phys_addr_t)-1) {
		pr_err("p2p_regions: entry %u: range wraps around\n", p2p_count + 1);
		return -EINVAL;
	}
	for (i = 0; i < p2p_count; i++) {
		if (addr < p2p[i].addr + p2p[i].size &&
		    p2p[i].addr < addr + size) {
			pr_err("p2p_regions: entry %u overlaps entry %u\n",
			       p2p_count + 1, i + 1);
			return -EINVAL;
		}
	}
	if (region_intersects(addr, size, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("p2p_regions: entry %u (0x%llx:0x%llx) overlaps System RAM; peer memory never does\n",
		       p2p_count + 1, addr, size);
		return -EINVAL;
	}
	return 0;
}

int pciem_p2p_init(void)
{
	char *s = p2p_regions;
	u64 addr, size;
	int ret;

	if (!s || !*s)
		return 0;
	for (;;) {
		if (p2p_count == PCIEM_P2P_MAX_REGIONS) {
			pr_err("p2p_regions: more than %d regions\n",
			       PCIEM_P2P_MAX_REGIONS);
			ret = -EINVAL;
			goto err;
		}
		ret = p2p_parse_one(&s, &addr, &size);
		if (!ret)
			ret = p2p_check(addr, size);
		if (ret)
			goto err;
		p2p[p2p_count].map = ioremap(addr, size);
		if (!p2p[p2p_count].map) {
			pr_err("p2p_regions: entry %u: cannot map 0x%llx:0x%llx\n",
			       p2p_count + 1, addr, size);
			ret = -ENOMEM;
			goto err;
		}
		p2p[p2p_count].addr = addr;
		p2p[p2p_count].size = size;
		p2p_count++;
		if (*s != ',')
			break;
		s++;
	}
	pr_info("%u peer-to-peer region(s) whitelisted\n", p2p_count);
	return 0;

err:
	pciem_p2p_exit();
	return ret;
}

void pciem_p2p_exit(void)
{
	while (p2p_count) {
		p2p_count--;
		iounmap(p2p[p2p_count].map);
		p2p[p2p_count].map = NULL;
	}
}

/* The region holding all of [addr, addr + len), or NULL. */
static const struct pciem_p2p_region *p2p_find(u64 addr, u64 len)
{
	unsigned int i;

	for (i = 0; i < p2p_count; i++) {
		if (addr >= p2p[i].addr && len <= p2p[i].size &&
		    addr - p2p[i].addr <= p2p[i].size - len)
			return &p2p[i];
	}
	return NULL;
}

int pciem_p2p_xfer(struct pciem_dev *dev, void __user *uarg, bool to_peer)
{
	const char *what = to_peer ? "P2P_WRITE" : "P2P_READ";
	const struct pciem_p2p_region *r;
	struct pciem_p2p_op op;
	void __user *ubuf;
	void __iomem *io;
	const char *reason = NULL;
	void *bounce;
	u64 len;
	int ret = 0;

	if (copy_from_user(&op, uarg, sizeof(op)))
		return -EFAULT;
	if (op.flags || op.reserved) {
		pr_info_ratelimited("%s: flags and reserved must be zero\n", what);
		return -EINVAL;
	}
	ret = pciem_rs_dma_check_len(op.user_addr, op.length, &reason);
	if (ret) {
		pr_info_ratelimited("%s: %s\n", what, reason);
		return ret;
	}
	ret = pciem_dma_may_master(dev, what);
	if (ret)
		return ret;
	r = p2p_find(op.target_addr, op.length);
	if (!r) {
		pr_info_ratelimited("%s: 0x%llx+0x%llx is not inside one p2p_regions entry\n",
				    what, op.target_addr, op.length);
		return -EACCES;
	}

	bounce = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	io = r->map + (op.target_addr - r->addr);
	ubuf = u64_to_user_ptr(op.user_addr);
	for (len = op.length; len; ) {
		size_t n = min_t(u64, len, PAGE_SIZE);

		if (to_peer) {
			if (copy_from_user(bounce, ubuf, n)) {
				ret = -EFAULT;
				break;
			}
			memcpy_toio(io, bounce, n);
		} else {
			memcpy_fromio(bounce, io, n);
			if (copy_to_user(ubuf, bounce, n)) {
				ret = -EFAULT;
				break;
			}
		}
		io += n;
		ubuf += n;
		len -= n;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
	kfree(bounce);
	if (ret == -EFAULT)
		pr_info_ratelimited("%s: user buffer not accessible\n", what);
	return ret;
}
