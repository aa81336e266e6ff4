// SPDX-License-Identifier: GPL-2.0
/*
 * pciem_dmadrv.c - a PCI driver that gives a PCIem device memory to DMA
 * into, for the vmtest-dma scenario.
 *
 * It binds to 1f0c:7e52, enables bus mastering with a 64-bit DMA mask and
 * sets up three buffers the way real drivers do:
 *   coherent  DMADRV_COHERENT_SIZE bytes from dma_alloc_coherent()
 *   stream    DMADRV_STREAM_SIZE bytes of kmalloc() memory mapped with
 *             dma_map_single(DMA_BIDIRECTIONAL)
 *   prp       DMADRV_PRP_PAGES pages from dma_alloc_coherent(), used by the
 *             scenario as PRP data and list pages
 * Per-device sysfs files (on the PCI device):
 *   dma_coherent, dma_stream, dma_prp  (binary, rw) the CPU's view of each
 *       buffer at any offset; the stream buffer is synced for the CPU
 *       before a read and for the device after a write, as the DMA API
 *       requires around CPU access to a streaming mapping
 *   coherent_addr, stream_addr, prp_addr  (ro) bus addresses, hex
 *   coherent_size, stream_size, prp_size  (ro) sizes in bytes, hex
 *   hammer  (wo) "OFFSET COUNT": COUNT CPU atomic increments of the
 *       coherent buffer's word at OFFSET, to race the device's atomics
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/dma-mapping.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#define DMADRV_COHERENT_SIZE	(4u << 20)
#define DMADRV_STREAM_SIZE	(2u << 20)
#define DMADRV_PRP_PAGES	64u
#define DMADRV_PRP_SIZE		(DMADRV_PRP_PAGES * PAGE_SIZE)

struct dmadrv {
	struct pci_dev *pdev;
	struct mutex lock;	/* serialises CPU access through sysfs */
	void *coherent;
	dma_addr_t coherent_dma;
	void *stream;
	dma_addr_t stream_dma;
	void *prp;
	dma_addr_t prp_dma;
};

enum dmadrv_buf { BUF_COHERENT, BUF_STREAM, BUF_PRP };

static void *dmadrv_cpu(struct dmadrv *d, enum dmadrv_buf b)
{
	return b == BUF_COHERENT ? d->coherent : b == BUF_STREAM ? d->stream : d->prp;
}

/* Sysfs already clamps off + count to the attribute's size. */
static ssize_t dmadrv_bin_read(struct kobject *kobj, enum dmadrv_buf b,
			       char *buf, loff_t off, size_t count)
{
	struct dmadrv *d = dev_get_drvdata(kobj_to_dev(kobj));

	mutex_lock(&d->lock);
	if (b == BUF_STREAM)
		dma_sync_single_for_cpu(&d->pdev->dev, d->stream_dma,
					DMADRV_STREAM_SIZE, DMA_BIDIRECTIONAL);
	memcpy(buf, dmadrv_cpu(d, b) + off, count);
	mutex_unlock(&d->lock);
	return count;
}

static ssize_t dmadrv_bin_write(struct kobject *kobj, enum dmadrv_buf b,
				char *buf, loff_t off, size_t count)
{
	struct dmadrv *d = dev_get_drvdata(kobj_to_dev(kobj));

	mutex_lock(&d->lock);
	memcpy(dmadrv_cpu(d, b) + off, buf, count);
	if (b == BUF_STREAM)
		dma_sync_single_for_device(&d->pdev->dev, d->stream_dma,
					   DMADRV_STREAM_SIZE, DMA_BIDIRECTIONAL);
	mutex_unlock(&d->lock);
	return count;
}

#define DMADRV_BIN(name, which, size)					\
static const int name##_which = (which);				\
static ssize_t name##_read(struct file *f, struct kobject *kobj,	\
			   struct bin_attribute *a, char *buf,		\
			   loff_t off, size_t count)			\
{									\
	return dmadrv_bin_read(kobj, name##_which, buf, off, count);	\
}									\
static ssize_t name##_write(struct file *f, struct kobject *kobj,	\
			    struct bin_attribute *a, char *buf,		\
			    loff_t off, size_t count)			\
{									\
	return dmadrv_bin_write(kobj, name##_which, buf, off, count);	\
}									\
static BIN_ATTR(name, 0600, name##_read, name##_write, size)

DMADRV_BIN(dma_coherent, BUF_COHERENT, DMADRV_COHERENT_SIZE);
DMADRV_BIN(dma_stream, BUF_STREAM, DMADRV_STREAM_SIZE);
DMADRV_BIN(dma_prp, BUF_PRP, DMADRV_PRP_SIZE);

#define DMADRV_VAL(name, expr)						\
static ssize_t name##_show(struct device *dev,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	struct dmadrv *d = dev_get_drvdata(dev);			\
									\
	return sysfs_emit(buf, "0x%llx\n", (unsigned long long)(expr));	\
}									\
static DEVICE_ATTR_RO(name)

#define DMADRV_CONST(name, value)					\
static ssize_t name##_show(struct device *dev,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "0x%lx\n", (unsigned long)(value));	\
}									\
static DEVICE_ATTR_RO(name)

DMADRV_VAL(coherent_addr, d->coherent_dma);
DMADRV_CONST(coherent_size, DMADRV_COHERENT_SIZE);
DMADRV_VAL(stream_addr, d->stream_dma);
DMADRV_CONST(stream_size, DMADRV_STREAM_SIZE);
DMADRV_VAL(prp_addr, d->prp_dma);
DMADRV_CONST(prp_size, DMADRV_PRP_SIZE);

/*
 * "OFFSET COUNT": COUNT atomic64_inc() on the coherent buffer's 8-byte word
 * at OFFSET, from the CPU, so the scenario can race the device's atomics
 * against it. Not under d->lock: it is meant to run alongside DMA.
 */
static ssize_t hammer_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	struct dmadrv *d = dev_get_drvdata(dev);
	unsigned long long off, n, i;
	atomic64_t *word;

	if (sscanf(buf, "%llu %llu", &off, &n) != 2)
		return -EINVAL;
	if (off % 8 || off > DMADRV_COHERENT_SIZE - 8 || n > 100000000ULL)
		return -EINVAL;
	word = d->coherent + off;
	for (i = 0; i < n; i++) {
		atomic64_inc(word);
		if (!(i % 4096))
			cond_resched();
	}
	return count;
}
static DEVICE_ATTR_WO(hammer);

static struct attribute *dmadrv_attrs[] = {
	&dev_attr_hammer.attr,
	&dev_attr_coherent_addr.attr,
	&dev_attr_coherent_size.attr,
	&dev_attr_stream_addr.attr,
	&dev_attr_stream_size.attr,
	&dev_attr_prp_addr.attr,
	&dev_attr_prp_size.attr,
	NULL,
};

static struct bin_attribute *dmadrv_bin_attrs[] = {
	&bin_attr_dma_coherent,
	&bin_attr_dma_stream,
	&bin_attr_dma_prp,
	NULL,
};

static const struct attribute_group dmadrv_group = {
	.attrs = dmadrv_attrs,
	.bin_attrs = dmadrv_bin_attrs,
};

static const struct attribute_group *dmadrv_groups[] = {
	&dmadrv_group,
	NULL,
};

static void dmadrv_free(struct dmadrv *d)
{
	struct device *dev = &d->pdev->dev;

	if (d->prp)
		dma_free_coherent(dev, DMADRV_PRP_SIZE, d->prp, d->prp_dma);
	if (d->stream) {
		dma_unmap_single(dev, d->stream_dma, DMADRV_STREAM_SIZE,
				 DMA_BIDIRECTIONAL);
		kfree(d->stream);
	}
	if (d->coherent)
		dma_free_coherent(dev, DMADRV_COHERENT_SIZE, d->coherent,
				  d->coherent_dma);
}

static int dmadrv_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct dmadrv *d;
	int ret;

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		return dev_err_probe(dev, ret, "no 64-bit DMA\n");
	d = devm_kzalloc(dev, sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	d->pdev = pdev;
	mutex_init(&d->lock);

	ret = -ENOMEM;
	d->coherent = dma_alloc_coherent(dev, DMADRV_COHERENT_SIZE,
					 &d->coherent_dma, GFP_KERNEL);
	if (!d->coherent)
		goto err;
	d->stream = kzalloc(DMADRV_STREAM_SIZE, GFP_KERNEL);
	if (!d->stream)
		goto err;
	d->stream_dma = dma_map_single(dev, d->stream, DMADRV_STREAM_SIZE,
				       DMA_BIDIRECTIONAL);
	if (dma_mapping_error(dev, d->stream_dma)) {
		kfree(d->stream);
		d->stream = NULL;
		goto err;
	}
	d->prp = dma_alloc_coherent(dev, DMADRV_PRP_SIZE, &d->prp_dma,
				    GFP_KERNEL);
	if (!d->prp)
		goto err;
	pci_set_drvdata(pdev, d);
	dev_info(dev, "coherent %pad stream %pad prp %pad\n",
		 &d->coherent_dma, &d->stream_dma, &d->prp_dma);
	return 0;

err:
	dmadrv_free(d);
	return dev_err_probe(dev, ret, "cannot allocate the DMA buffers\n");
}

static void dmadrv_remove(struct pci_dev *pdev)
{
	struct dmadrv *d = pci_get_drvdata(pdev);

	dmadrv_free(d);
	pci_clear_master(pdev);
}

static const struct pci_device_id dmadrv_ids[] = {
	{ PCI_DEVICE(0x1f0c, 0x7e52) },
	{ }
};
MODULE_DEVICE_TABLE(pci, dmadrv_ids);

static struct pci_driver dmadrv_driver = {
	.name = "pciem_dmadrv",
	.id_table = dmadrv_ids,
	.probe = dmadrv_probe,
	.remove = dmadrv_remove,
	.dev_groups = dmadrv_groups,
};
module_pci_driver(dmadrv_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("PCIem DMA test driver: coherent, streaming and PRP buffers in sysfs");
