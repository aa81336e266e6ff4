// SPDX-License-Identifier: GPL-2.0
/*
 * pool.c - the physical memory that backs BARs.
 *
 * The range is carved out of System RAM at boot with memmap=SIZE$ADDR and
 * named by the phys_region=ADDR:SIZE module parameter. It is tracked as a
 * bitmap of pages; each device takes one naturally aligned run of pages
 * that becomes its bridge window, and its BARs are laid out inside it.
 * pool_mutex guards the bitmap.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/ioport.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "pciem_internal.h"

static DEFINE_MUTEX(pool_mutex);
static unsigned long *pool_map;
static unsigned long pool_pages;
static struct resource pool_res = {
	.name = "pciem BAR pool",
	.flags = IORESOURCE_MEM,
};

/* Pages handed out, readable as the pool_pages_used parameter. */
static int pool_used_get(char *buf, const struct kernel_param *kp)
{
	unsigned long used = 0;

	mutex_lock(&pool_mutex);
	if (pool_map)
		used = bitmap_weight(pool_map, pool_pages);
	mutex_unlock(&pool_mutex);
	return sysfs_emit(buf, "%lu\n", used);
}

static const struct kernel_param_ops pool_used_ops = {
	.get = pool_used_get,
};
module_param_cb(pool_pages_used, &pool_used_ops, NULL, 0444);
MODULE_PARM_DESC(pool_pages_used,
		 "Pages of the BAR pool currently backing BARs (read-only)");

static int pool_parse(const char *param, u64 *addr, u64 *size)
{
	char *end;

	if (!param || !*param) {
		pr_err("phys_region= is not set: boot with memmap=SIZE$ADDR and load with phys_region=ADDR:SIZE\n");
		return -EINVAL;
	}
	*addr = memparse(param, &end);
	if (*end != ':') {
		pr_err("phys_region=%s: expected ADDR:SIZE\n", param);
		return -EINVAL;
	}
	*size = memparse(end + 1, &end);
	if (*end != '\0' && *end != '\n') {
		pr_err("phys_region=%s: trailing characters after SIZE\n",
		       param);
		return -EINVAL;
	}
	return 0;
}

bool pciem_pool_ready(void)
{
	return pool_map;
}

int pciem_pool_init(const char *param)
{
	u64 addr, size;
	int ret;

	if (!param || !*param) {
		pr_info("no BAR pool (phys_region= not set): only devices whose BARs are all trapped can register\n");
		return 0;
	}
	ret = pool_parse(param, &addr, &size);
	if (ret)
		return ret;
	if (!addr || !PAGE_ALIGNED(addr) || !PAGE_ALIGNED(size)) {
		pr_err("phys_region=%s: address must be non-zero and address and size page aligned\n",
		       param);
		return -EINVAL;
	}
	if (size < PAGE_SIZE) {
		pr_err("phys_region=%s: too small, need at least one page (%lu bytes)\n",
		       param, PAGE_SIZE);
		return -EINVAL;
	}
	if (addr + size < addr || addr + size - 1 > (u64)(phys_addr_t)-1) {
		pr_err("phys_region=%s: range wraps around\n", param);
		return -EINVAL;
	}
	if (region_intersects(addr, size, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("phys_region=%s: overlaps System RAM; carve it out with memmap=%llu$0x%llx first\n",
		       param, size, addr);
		return -EADDRINUSE;
	}

	pool_pages = size >> PAGE_SHIFT;
	pool_map = bitmap_zalloc(pool_pages, GFP_KERNEL);
	if (!pool_map)
		return -ENOMEM;

	pool_res.start = addr;
	pool_res.end = addr + size - 1;
	ret = insert_resource(&iomem_resource, &pool_res);
	if (ret) {
		pr_err("phys_region=%s: conflicts with another resource in /proc/iomem (%d)\n",
		       param, ret);
		bitmap_free(pool_map);
		pool_map = NULL;
		return -EBUSY;
	}
	pr_info("BAR pool %pR (%lu pages)\n", &pool_res, pool_pages);
	return 0;
}

void pciem_pool_exit(void)
{
	if (!pool_map)
		return;
	release_resource(&pool_res);
	bitmap_free(pool_map);
	pool_map = NULL;
}

/* A naturally aligned run of pages of at least @size bytes. */
int pciem_pool_alloc(u64 size, u64 align, phys_addr_t *out)
{
	unsigned long nr, mask, idx;

	if (!size || !is_power_of_2(align) || align < PAGE_SIZE)
		return -EINVAL;
	if (!pool_map)
		return -ENOSPC;
	if (size > (u64)pool_pages << PAGE_SHIFT) {
		pr_err("BAR pool too small: %llu bytes wanted, %lu in the pool\n",
		       size, pool_pages << PAGE_SHIFT);
		return -ENOSPC;
	}
	nr = PAGE_ALIGN(size) >> PAGE_SHIFT;
	mask = (align >> PAGE_SHIFT) - 1;

	mutex_lock(&pool_mutex);
	idx = bitmap_find_next_zero_area_off(pool_map, pool_pages, 0, nr, mask,
					     (pool_res.start >> PAGE_SHIFT) & mask);
	if (idx >= pool_pages || idx + nr > pool_pages) {
		mutex_unlock(&pool_mutex);
		pr_err("BAR pool exhausted: no free %llu-byte run aligned to %llu\n",
		       size, align);
		return -ENOSPC;
	}
	bitmap_set(pool_map, idx, nr);
	mutex_unlock(&pool_mutex);

	*out = pool_res.start + ((phys_addr_t)idx << PAGE_SHIFT);
	return 0;
}

void pciem_pool_free(phys_addr_t phys, u64 size)
{
	unsigned long idx = (phys - pool_res.start) >> PAGE_SHIFT;

	mutex_lock(&pool_mutex);
	bitmap_clear(pool_map, idx, PAGE_ALIGN(size) >> PAGE_SHIFT);
	mutex_unlock(&pool_mutex);
}
