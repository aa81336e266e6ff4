// SPDX-License-Identifier: GPL-2.0
/*
 * pciem_testdrv.c - a minimal PCI driver the VM scenarios drive.
 *
 * It binds to the test IDs below, enables the device, maps BAR0 (with
 * pci_iomap, or with plain ioremap for the 0x7e51 variant, so the
 * scenarios prove the ioremap tracing does not depend on the PCI helpers),
 * allocates as many MSI vectors as the device offers and counts interrupts
 * per vector. Per-device sysfs attributes (on the PCI device):
 *   reg_offset  rw  BAR0 offset used by `reg` (hex or decimal)
 *   reg         rw  read: readl(BAR0 + reg_offset); write: writel there
 *   irq_counts  ro  interrupts seen per vector, space separated
 * Module-wide counters, read-only parameters: probes, removes.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/spinlock.h>

#define TESTDRV_MAX_VEC		32
#define TESTDRV_PLAIN_IOREMAP	1

static int probes;
module_param(probes, int, 0444);
MODULE_PARM_DESC(probes, "Number of successful probes (read-only)");
static int removes;
module_param(removes, int, 0444);
MODULE_PARM_DESC(removes, "Number of remove() calls (read-only)");

struct testdrv {
	struct pci_dev *pdev;
	void __iomem *bar0;
	resource_size_t bar0_len;
	bool plain_ioremap;
	u32 reg_offset;
	/*
	 * Serialises register writes, as a real driver does around a
	 * doorbell. PCIem reports the register's content read right after
	 * the store trapped, so two CPUs storing to one watched register at
	 * once could both report the later value; under this lock each
	 * report is the value its writer stored.
	 */
	spinlock_t reg_lock;
	int nvec;
	atomic_t irq_count[TESTDRV_MAX_VEC];
};

struct testdrv_vec {
	struct testdrv *td;
	int vec;
};

static irqreturn_t testdrv_irq(int irq, void *data)
{
	struct testdrv *td = data;
	int vec;

	for (vec = 0; vec < td->nvec; vec++) {
		if (pci_irq_vector(td->pdev, vec) == irq) {
			atomic_inc(&td->irq_count[vec]);
			return IRQ_HANDLED;
		}
	}
	return IRQ_NONE;
}

static ssize_t reg_offset_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct testdrv *td = dev_get_drvdata(dev);

	return sysfs_emit(buf, "0x%x\n", READ_ONCE(td->reg_offset));
}

static ssize_t reg_offset_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct testdrv *td = dev_get_drvdata(dev);
	u32 off;
	int ret;

	ret = kstrtou32(buf, 0, &off);
	if (ret)
		return ret;
	if (off % 4 || (u64)off + 4 > td->bar0_len)
		return -EINVAL;
	WRITE_ONCE(td->reg_offset, off);
	return count;
}
static DEVICE_ATTR_RW(reg_offset);

static ssize_t reg_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	struct testdrv *td = dev_get_drvdata(dev);

	return sysfs_emit(buf, "0x%x\n",
			  readl(td->bar0 + READ_ONCE(td->reg_offset)));
}

static ssize_t reg_store(struct device *dev, struct device_attribute *attr,
			 const char *buf, size_t count)
{
	struct testdrv *td = dev_get_drvdata(dev);
	u32 val;
	int ret;

	ret = kstrtou32(buf, 0, &val);
	if (ret)
		return ret;
	spin_lock(&td->reg_lock);
	writel(val, td->bar0 + READ_ONCE(td->reg_offset));
	spin_unlock(&td->reg_lock);
	return count;
}
static DEVICE_ATTR_RW(reg);

static ssize_t irq_counts_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct testdrv *td = dev_get_drvdata(dev);
	int vec, len = 0;

	for (vec = 0; vec < td->nvec; vec++)
		len += sysfs_emit_at(buf, len, "%s%d", vec ? " " : "",
				     atomic_read(&td->irq_count[vec]));
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}
static DEVICE_ATTR_RO(irq_counts);

static struct attribute *testdrv_attrs[] = {
	&dev_attr_reg_offset.attr,
	&dev_attr_reg.attr,
	&dev_attr_irq_counts.attr,
	NULL,
};
ATTRIBUTE_GROUPS(testdrv);

static void testdrv_free_irqs(struct testdrv *td, int n)
{
	while (n-- > 0)
		free_irq(pci_irq_vector(td->pdev, n), td);
	pci_free_irq_vectors(td->pdev);
}

static int testdrv_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct testdrv *td;
	int ret, vec;

	td = devm_kzalloc(&pdev->dev, sizeof(*td), GFP_KERNEL);
	if (!td)
		return -ENOMEM;
	td->pdev = pdev;
	spin_lock_init(&td->reg_lock);
	td->plain_ioremap = id->driver_data & TESTDRV_PLAIN_IOREMAP;

	ret = pci_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;

	td->bar0_len = pci_resource_len(pdev, 0);
	if (!td->bar0_len) {
		ret = -ENODEV;
		goto err_regions;
	}
	if (td->plain_ioremap)
		td->bar0 = ioremap(pci_resource_start(pdev, 0), td->bar0_len);
	else
		td->bar0 = pci_iomap(pdev, 0, 0);
	if (!td->bar0) {
		ret = -ENOMEM;
		goto err_regions;
	}

	/* Interrupts are optional: a device without MSI still binds. */
	ret = pci_alloc_irq_vectors(pdev, 1, TESTDRV_MAX_VEC, PCI_IRQ_MSI);
	td->nvec = ret > 0 ? ret : 0;
	for (vec = 0; vec < td->nvec; vec++) {
		ret = request_irq(pci_irq_vector(pdev, vec), testdrv_irq, 0,
				  KBUILD_MODNAME, td);
		if (ret) {
			testdrv_free_irqs(td, vec);
			goto err_unmap;
		}
	}
	pci_set_drvdata(pdev, td);
	probes++;
	dev_info(&pdev->dev, "bound: BAR0 %pR mapped at %p by %s, %d MSI vector(s)\n",
		 &pdev->resource[0], td->bar0,
		 td->plain_ioremap ? "ioremap" : "pci_iomap", td->nvec);
	return 0;

err_unmap:
	if (td->plain_ioremap)
		iounmap(td->bar0);
	else
		pci_iounmap(pdev, td->bar0);
err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
	return ret;
}

static void testdrv_remove(struct pci_dev *pdev)
{
	struct testdrv *td = pci_get_drvdata(pdev);

	testdrv_free_irqs(td, td->nvec);
	if (td->plain_ioremap)
		iounmap(td->bar0);
	else
		pci_iounmap(pdev, td->bar0);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	removes++;
	dev_info(&pdev->dev, "removed\n");
}

static const struct pci_device_id testdrv_ids[] = {
	{ PCI_DEVICE(0x1f0c, 0x7e50) },		/* pci_iomap */
	{ PCI_DEVICE(0x1f0c, 0x7e51), .driver_data = TESTDRV_PLAIN_IOREMAP },
	{ PCI_DEVICE(0x1234, 0x5678) },		/* the walkthrough's counter */
	{ }
};
MODULE_DEVICE_TABLE(pci, testdrv_ids);

static struct pci_driver testdrv_driver = {
	.name = "pciem_testdrv",
	.id_table = testdrv_ids,
	.probe = testdrv_probe,
	.remove = testdrv_remove,
	.dev_groups = testdrv_groups,
};
module_pci_driver(testdrv_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Test driver for PCIem VM scenarios");
