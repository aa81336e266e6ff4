// SPDX-License-Identifier: GPL-2.0
/*
 * pciem_dmabug.c - a PCI driver with one DMA bug per variant, for the
 * vmtest-dma-check scenario: PCIem's DMA checker must report each exactly
 * once, of the right kind, naming the function below that made the
 * mapping.
 *
 * It binds to 1f0c:7e57 with a 64-bit DMA mask and keeps two 8 KiB
 * buffers (kmalloc, so physically contiguous) filled with DMABUG_FILL.
 * Per-device sysfs files (on the PCI device):
 *   bug     (wo) a variant name: set it up (see below)
 *   job     (ro) "ADDR LEN read|write": the DMA the device must now make
 *   intact  (ro) 1 if both buffers still hold only DMABUG_FILL
 *   finish  (wo) any value: unmap what the variant left mapped (not for
 *           use_after_unmap, already unmapped, nor for leak)
 *   mask    (ro) the result of the mask32 variant
 * Variants (each function is the call site the report must name):
 *   use_after_unmap  dmabug_use_after_unmap maps 4 KiB DMA_FROM_DEVICE and
 *                    unmaps it; job: write 4 KiB there
 *   overrun_byte     dmabug_overrun_byte maps 4 KiB DMA_FROM_DEVICE;
 *                    job: write 4097 bytes
 *   overrun_page     dmabug_overrun_page maps 4 KiB DMA_TO_DEVICE; job:
 *                    read 8 KiB
 *   wrong_direction  dmabug_wrong_direction maps 4 KiB DMA_TO_DEVICE; job:
 *                    write 64 bytes
 *   leak             dmabug_leak maps 4 KiB of the second buffer
 *                    DMA_TO_DEVICE and never unmaps it (reported at unbind)
 *   mask32           dmabug_mask32 sets a 32-bit mask, allocates coherent
 *                    memory (must be below 4 GiB) and maps a page above
 *                    4 GiB (must fail); mask reads
 *                    "coherent_below_4g=B high_page=0xP map_refused=B"
 *                    (high_page=0 when the guest has no RAM above 4 GiB)
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dma-mapping.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#define DMABUG_BUF	8192
#define DMABUG_FILL	0x5a
#define DMABUG_TRIES	64	/* pages tried when looking for a high one */

struct dmabug {
	struct pci_dev *pdev;
	struct mutex lock;	/* the fields below */
	u8 *buf;		/* the variants' buffer */
	u8 *leak_buf;		/* the leak variant's buffer */
	dma_addr_t mapped;	/* what finish unmaps; 0: nothing */
	size_t mapped_len;
	enum dma_data_direction mapped_dir;
	dma_addr_t job_addr;
	size_t job_len;
	bool job_write;
	char mask[96];
};

/*
 * Each variant refills the buffer and calls dma_map_single() itself, so
 * that the call site a report names is the variant's own function.
 */

static noinline int dmabug_use_after_unmap(struct dmabug *b)
{
	dma_addr_t a;

	memset(b->buf, DMABUG_FILL, DMABUG_BUF);
	a = dma_map_single(&b->pdev->dev, b->buf, PAGE_SIZE, DMA_FROM_DEVICE);
	if (dma_mapping_error(&b->pdev->dev, a))
		return -ENOMEM;
	dma_unmap_single(&b->pdev->dev, a, PAGE_SIZE, DMA_FROM_DEVICE);
	b->job_addr = a;
	b->job_len = PAGE_SIZE;
	b->job_write = true;
	return 0;
}

static noinline int dmabug_overrun_byte(struct dmabug *b)
{
	dma_addr_t a;

	memset(b->buf, DMABUG_FILL, DMABUG_BUF);
	a = dma_map_single(&b->pdev->dev, b->buf, PAGE_SIZE, DMA_FROM_DEVICE);
	if (dma_mapping_error(&b->pdev->dev, a))
		return -ENOMEM;
	b->mapped = a;
	b->mapped_len = PAGE_SIZE;
	b->mapped_dir = DMA_FROM_DEVICE;
	b->job_addr = a;
	b->job_len = PAGE_SIZE + 1;
	b->job_write = true;
	return 0;
}

static noinline int dmabug_overrun_page(struct dmabug *b)
{
	dma_addr_t a;

	memset(b->buf, DMABUG_FILL, DMABUG_BUF);
	a = dma_map_single(&b->pdev->dev, b->buf, PAGE_SIZE, DMA_TO_DEVICE);
	if (dma_mapping_error(&b->pdev->dev, a))
		return -ENOMEM;
	b->mapped = a;
	b->mapped_len = PAGE_SIZE;
	b->mapped_dir = DMA_TO_DEVICE;
	b->job_addr = a;
	b->job_len = 2 * PAGE_SIZE;
	b->job_write = false;
	return 0;
}

static noinline int dmabug_wrong_direction(struct dmabug *b)
{
	dma_addr_t a;

	memset(b->buf, DMABUG_FILL, DMABUG_BUF);
	a = dma_map_single(&b->pdev->dev, b->buf, PAGE_SIZE, DMA_TO_DEVICE);
	if (dma_mapping_error(&b->pdev->dev, a))
		return -ENOMEM;
	b->mapped = a;
	b->mapped_len = PAGE_SIZE;
	b->mapped_dir = DMA_TO_DEVICE;
	b->job_addr = a;
	b->job_len = 64;
	b->job_write = true;
	return 0;
}

static noinline int dmabug_leak(struct dmabug *b)
{
	dma_addr_t a = dma_map_single(&b->pdev->dev, b->leak_buf, PAGE_SIZE,
				      DMA_TO_DEVICE);

	if (dma_mapping_error(&b->pdev->dev, a))
		return -ENOMEM;
	/* Never unmapped: remove() forgets it. */
	b->job_addr = a;
	b->job_len = 0;
	b->job_write = false;
	return 0;
}

static noinline int dmabug_mask32(struct dmabug *b)
{
	struct device *dev = &b->pdev->dev;
	struct page *pages[DMABUG_TRIES];
	struct page *high = NULL;
	bool below = false, refused = false;
	dma_addr_t handle;
	int i, n = 0, ret;
	void *cpu;

	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(32));
	if (ret)
		return ret;
	cpu = dma_alloc_coherent(dev, PAGE_SIZE, &handle, GFP_KERNEL);
	if (cpu) {
		below = handle + PAGE_SIZE - 1 <= DMA_BIT_MASK(32);
		dma_free_coherent(dev, PAGE_SIZE, cpu, handle);
	}
	/* The page allocator hands out high memory first; look for some. */
	for (i = 0; i < DMABUG_TRIES && !high; i++) {
		struct page *p = alloc_page(GFP_KERNEL);

		if (!p)
			break;
		if (page_to_phys(p) > DMA_BIT_MASK(32))
			high = p;
		else
			pages[n++] = p;
	}
	while (n)
		__free_page(pages[--n]);
	if (high) {
		dma_addr_t a = dma_map_page(dev, high, 0, PAGE_SIZE,
					    DMA_TO_DEVICE);

		refused = dma_mapping_error(dev, a);
		if (!refused)
			dma_unmap_page(dev, a, PAGE_SIZE, DMA_TO_DEVICE);
	}
	snprintf(b->mask, sizeof(b->mask),
		 "coherent_below_4g=%d high_page=%#llx map_refused=%d\n",
		 below, high ? (u64)page_to_phys(high) : 0ULL, refused);
	if (high)
		__free_page(high);
	b->job_len = 0;
	return dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
}

static void dmabug_finish_locked(struct dmabug *b)
{
	if (b->mapped)
		dma_unmap_single(&b->pdev->dev, b->mapped, b->mapped_len,
				 b->mapped_dir);
	b->mapped = 0;
}

static ssize_t bug_store(struct device *d, struct device_attribute *attr,
			 const char *buf, size_t count)
{
	static const struct {
		const char *name;
		int (*fn)(struct dmabug *b);
	} bugs[] = {
		{ "use_after_unmap", dmabug_use_after_unmap },
		{ "overrun_byte", dmabug_overrun_byte },
		{ "overrun_page", dmabug_overrun_page },
		{ "wrong_direction", dmabug_wrong_direction },
		{ "leak", dmabug_leak },
		{ "mask32", dmabug_mask32 },
	};
	struct dmabug *b = dev_get_drvdata(d);
	int i, ret = -EINVAL;

	mutex_lock(&b->lock);
	for (i = 0; i < ARRAY_SIZE(bugs); i++) {
		if (sysfs_streq(buf, bugs[i].name)) {
			dmabug_finish_locked(b);
			ret = bugs[i].fn(b);
			break;
		}
	}
	mutex_unlock(&b->lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_WO(bug);

static ssize_t job_show(struct device *d, struct device_attribute *attr,
			char *buf)
{
	struct dmabug *b = dev_get_drvdata(d);
	ssize_t n;

	mutex_lock(&b->lock);
	n = sysfs_emit(buf, "%#llx %zu %s\n", (u64)b->job_addr, b->job_len,
		       b->job_write ? "write" : "read");
	mutex_unlock(&b->lock);
	return n;
}
static DEVICE_ATTR_RO(job);

static ssize_t intact_show(struct device *d, struct device_attribute *attr,
			   char *buf)
{
	struct dmabug *b = dev_get_drvdata(d);
	bool ok;

	mutex_lock(&b->lock);
	ok = !memchr_inv(b->buf, DMABUG_FILL, DMABUG_BUF) &&
	     !memchr_inv(b->leak_buf, DMABUG_FILL, DMABUG_BUF);
	mutex_unlock(&b->lock);
	return sysfs_emit(buf, "%d\n", ok);
}
static DEVICE_ATTR_RO(intact);

static ssize_t finish_store(struct device *d, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	struct dmabug *b = dev_get_drvdata(d);

	mutex_lock(&b->lock);
	dmabug_finish_locked(b);
	mutex_unlock(&b->lock);
	return count;
}
static DEVICE_ATTR_WO(finish);

static ssize_t mask_show(struct device *d, struct device_attribute *attr,
			 char *buf)
{
	struct dmabug *b = dev_get_drvdata(d);
	ssize_t n;

	mutex_lock(&b->lock);
	n = sysfs_emit(buf, "%s", b->mask);
	mutex_unlock(&b->lock);
	return n;
}
static DEVICE_ATTR_RO(mask);

static struct attribute *dmabug_attrs[] = {
	&dev_attr_bug.attr,
	&dev_attr_job.attr,
	&dev_attr_intact.attr,
	&dev_attr_finish.attr,
	&dev_attr_mask.attr,
	NULL,
};
ATTRIBUTE_GROUPS(dmabug);

static int dmabug_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct dmabug *b;
	int ret;

	b = devm_kzalloc(&pdev->dev, sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->pdev = pdev;
	mutex_init(&b->lock);
	b->buf = devm_kmalloc(&pdev->dev, DMABUG_BUF, GFP_KERNEL);
	b->leak_buf = devm_kmalloc(&pdev->dev, DMABUG_BUF, GFP_KERNEL);
	if (!b->buf || !b->leak_buf)
		return -ENOMEM;
	memset(b->buf, DMABUG_FILL, DMABUG_BUF);
	memset(b->leak_buf, DMABUG_FILL, DMABUG_BUF);
	strscpy(b->mask, "not run\n", sizeof(b->mask));
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	pci_set_drvdata(pdev, b);
	return 0;
}

static void dmabug_remove(struct pci_dev *pdev)
{
	struct dmabug *b = pci_get_drvdata(pdev);

	mutex_lock(&b->lock);
	dmabug_finish_locked(b);
	mutex_unlock(&b->lock);
}

static const struct pci_device_id dmabug_ids[] = {
	{ PCI_DEVICE(0x1f0c, 0x7e57) },
	{ }
};
MODULE_DEVICE_TABLE(pci, dmabug_ids);

static struct pci_driver dmabug_driver = {
	.name = "pciem_dmabug",
	.id_table = dmabug_ids,
	.probe = dmabug_probe,
	.remove = dmabug_remove,
	.dev_groups = dmabug_groups,
};
module_pci_driver(dmabug_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("PCIem test: a driver with deliberate DMA bugs");
