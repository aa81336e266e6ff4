// SPDX-License-Identifier: GPL-2.0
/*
 * pciem_testdrv.c - a minimal PCI driver the VM scenarios drive.
 *
 * It binds to the test IDs below, enables the device, maps BAR0 (with
 * pci_iomap, or with plain ioremap for the 0x7e51 variant, so the
 * scenarios prove the ioremap tracing does not depend on the PCI helpers),
 * allocates as many interrupt vectors as the device offers and counts
 * interrupts per vector. The kind depends on the device ID: MSI by default,
 * MSI-X for 0x7e53, INTx for 0x7e54 (whose handler acknowledges as
 * uio_pci_generic does: it sets Interrupt Disable if Interrupt Status is set,
 * and intx_enable clears it again). Per-device sysfs attributes:
 *   reg_offset  rw  BAR0 offset used by `reg` (hex or decimal)
 *   reg         rw  read: readl(BAR0 + reg_offset); write: writel there
 *   reg_burst   rw  write N: store 1..N at reg_offset back to back;
 *                   read: nanoseconds the last burst took (benchmarks)
 *   irq_counts  ro  interrupts seen per vector, space separated
 *   irq_kind    ro  msi, msix, intx or none
 *   mask_vec    wo  N: mask vector N in the device (disable_irq, not lazy)
 *   unmask_vec  wo  N: unmask it again (enable_irq)
 *   unmask_delay_ns ro  nanoseconds from the last unmask_vec (just before
 *                   enable_irq) to the first interrupt of that vector after
 *                   it; 0 until that interrupt came
 *   intx_enable wo  any: clear Interrupt Disable (pci_intx(pdev, 1))
 *   intx_burst  rw  N: the INTx handler acknowledges (masks) on every N-th
 *                   run only, leaving the line asserted before that
 *   d3_cycle    wo  any: save state, D3hot, D0, restore state
 * Module-wide counters, read-only parameters: probes, removes.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/irq.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/spinlock.h>

#define TESTDRV_MAX_VEC		32
#define TESTDRV_PLAIN_IOREMAP	1
#define TESTDRV_MSIX		2
#define TESTDRV_INTX		4

static int probes;
module_param(probes, int, 0444);
MODULE_PARM_DESC(probes, "Number of successful probes (read-only)");
static int removes;
module_param(removes, int, 0444);
MODULE_PARM_DESC(removes, "Number of remove() calls (read-only)");
static uint probe_write;
module_param(probe_write, uint, 0644);
MODULE_PARM_DESC(probe_write,
		 "When non-zero, probe() stores this value to BAR0+0x0 right after mapping BAR0 (watch-arming race tests)");

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
	unsigned int irq_type;		/* PCI_IRQ_MSI, _MSIX or _INTX */
	struct mutex mask_lock;		/* masked vs. disable_irq depth */
	DECLARE_BITMAP(masked, TESTDRV_MAX_VEC);
	int intx_burst;			/* handler runs per acknowledgment */
	int intx_runs;			/* runs since the last one (handler only) */
	atomic_t irq_count[TESTDRV_MAX_VEC];
	u64 burst_ns;			/* duration of the last reg_burst */
	atomic_t unmask_vec;		/* vector unmasked last, -1 once seen */
	u64 unmask_ns;			/* when (ktime_get_ns) */
	u64 unmask_delay_ns;		/* until its first interrupt, 0: none */
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
			if (atomic_cmpxchg(&td->unmask_vec, vec, -1) == vec)
				WRITE_ONCE(td->unmask_delay_ns, ktime_get_ns() -
					   READ_ONCE(td->unmask_ns));
			return IRQ_HANDLED;
		}
	}
	return IRQ_NONE;
}

/*
 * Level-triggered: acknowledged by masking INTx at the function, but only
 * on the intx_burst-th run; before that the line is left asserted, so the
 * handler must run again as soon as it returns.
 */
static irqreturn_t testdrv_intx(int irq, void *data)
{
	struct testdrv *td = data;
	u16 status = 0;

	pci_read_config_word(td->pdev, PCI_STATUS, &status);
	if (!(status & PCI_STATUS_INTERRUPT))
		return IRQ_NONE;
	atomic_inc(&td->irq_count[0]);
	if (++td->intx_runs < READ_ONCE(td->intx_burst))
		return IRQ_HANDLED;
	td->intx_runs = 0;
	pci_check_and_mask_intx(td->pdev);
	return IRQ_HANDLED;
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

/*
 * Benchmark knob: writing N stores the values 1..N to BAR0 + reg_offset,
 * back to back, each under reg_lock as `reg` does; reading returns how
 * long the last burst took in nanoseconds. With the register watched, the
 * burst measures how fast events flow into the ring; without, the cost of
 * an untrapped store (the baseline).
 */
#define TESTDRV_BURST_MAX	10000000u

static ssize_t reg_burst_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct testdrv *td = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", READ_ONCE(td->burst_ns));
}

static ssize_t reg_burst_store(struct device *dev,
			       struct device_attribute *attr,
			       const char *buf, size_t count)
{
	struct testdrv *td = dev_get_drvdata(dev);
	u32 n, i, off = READ_ONCE(td->reg_offset);
	u64 start;
	int ret;

	ret = kstrtou32(buf, 0, &n);
	if (ret)
		return ret;
	if (!n || n > TESTDRV_BURST_MAX)
		return -EINVAL;
	start = ktime_get_ns();
	for (i = 1; i <= n; i++) {
		spin_lock(&td->reg_lock);
		writel(i, td->bar0 + off);
		spin_unlock(&td->reg_lock);
		if (!(i % 1024))
			cond_resched();
	}
	WRITE_ONCE(td->burst_ns, ktime_get_ns() - start);
	return count;
}
static DEVICE_ATTR_RW(reg_burst);

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

static ssize_t irq_kind_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	struct testdrv *td = dev_get_drvdata(dev);

	if (!td->nvec)
		return sysfs_emit(buf, "none\n");
	return sysfs_emit(buf, "%s\n", td->irq_type == PCI_IRQ_MSIX ? "msix" :
			  td->irq_type == PCI_IRQ_INTX ? "intx" : "msi");
}
static DEVICE_ATTR_RO(irq_kind);

static int testdrv_set_masked(struct testdrv *td, const char *buf, bool mask)
{
	int vec, ret;

	ret = kstrtoint(buf, 0, &vec);
	if (ret)
		return ret;
	if (vec < 0 || vec >= td->nvec)
		return -EINVAL;
	mutex_lock(&td->mask_lock);
	if (test_bit(vec, td->masked) == mask) {
		/* Keeps disable_irq/enable_irq balanced. */
		ret = -EALREADY;
	} else if (mask) {
		disable_irq(pci_irq_vector(td->pdev, vec));
		set_bit(vec, td->masked);
	} else {
		clear_bit(vec, td->masked);
		WRITE_ONCE(td->unmask_delay_ns, 0);
		WRITE_ONCE(td->unmask_ns, ktime_get_ns());
		atomic_set(&td->unmask_vec, vec);
		enable_irq(pci_irq_vector(td->pdev, vec));
	}
	mutex_unlock(&td->mask_lock);
	return ret;
}

static ssize_t mask_vec_store(struct device *dev, struct device_attribute *attr,
			      const char *buf, size_t count)
{
	int ret = testdrv_set_masked(dev_get_drvdata(dev), buf, true);

	return ret ? ret : count;
}
static DEVICE_ATTR_WO(mask_vec);

static ssize_t unmask_vec_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t count)
{
	int ret = testdrv_set_masked(dev_get_drvdata(dev), buf, false);

	return ret ? ret : count;
}
static DEVICE_ATTR_WO(unmask_vec);

static ssize_t unmask_delay_ns_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	struct testdrv *td = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", READ_ONCE(td->unmask_delay_ns));
}
static DEVICE_ATTR_RO(unmask_delay_ns);

static ssize_t intx_enable_store(struct device *dev,
				 struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct testdrv *td = dev_get_drvdata(dev);

	if (td->irq_type != PCI_IRQ_INTX || !td->nvec)
		return -EINVAL;
	pci_intx(td->pdev, 1);
	return count;
}
static DEVICE_ATTR_WO(intx_enable);

static ssize_t intx_burst_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct testdrv *td = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%d\n", READ_ONCE(td->intx_burst));
}

static ssize_t intx_burst_store(struct device *dev,
				struct device_attribute *attr,
				const char *buf, size_t count)
{
	struct testdrv *td = dev_get_drvdata(dev);
	int n, ret;

	ret = kstrtoint(buf, 0, &n);
	if (ret)
		return ret;
	if (n < 1 || n > 1000)
		return -EINVAL;
	WRITE_ONCE(td->intx_burst, n);
	return count;
}
static DEVICE_ATTR_RW(intx_burst);

static ssize_t d3_cycle_store(struct device *dev, struct device_attribute *attr,
			      const char *buf, size_t count)
{
	struct testdrv *td = dev_get_drvdata(dev);
	int ret;

	if (!td->pdev->pm_cap)
		return -EOPNOTSUPP;
	pci_save_state(td->pdev);
	ret = pci_set_power_state(td->pdev, PCI_D3hot);
	if (!ret)
		ret = pci_set_power_state(td->pdev, PCI_D0);
	pci_restore_state(td->pdev);
	return ret ? ret : count;
}
static DEVICE_ATTR_WO(d3_cycle);

static struct attribute *testdrv_attrs[] = {
	&dev_attr_reg_offset.attr,
	&dev_attr_reg.attr,
	&dev_attr_reg_burst.attr,
	&dev_attr_irq_counts.attr,
	&dev_attr_irq_kind.attr,
	&dev_attr_mask_vec.attr,
	&dev_attr_unmask_vec.attr,
	&dev_attr_unmask_delay_ns.attr,
	&dev_attr_intx_enable.attr,
	&dev_attr_intx_burst.attr,
	&dev_attr_d3_cycle.attr,
	NULL,
};
ATTRIBUTE_GROUPS(testdrv);

static void testdrv_free_irqs(struct testdrv *td, int n)
{
	while (n-- > 0) {
		int irq = pci_irq_vector(td->pdev, n);

		if (test_and_clear_bit(n, td->masked))
			enable_irq(irq);
		irq_clear_status_flags(irq, IRQ_DISABLE_UNLAZY);
		free_irq(irq, td);
	}
	pci_free_irq_vectors(td->pdev);
}

static int testdrv_request_irqs(struct testdrv *td)
{
	struct pci_dev *pdev = td->pdev;
	int ret, vec;

	/* Interrupts are optional: a device without them still binds. */
	ret = pci_alloc_irq_vectors(pdev, 1,
				    td->irq_type == PCI_IRQ_INTX ? 1 : TESTDRV_MAX_VEC,
				    td->irq_type);
	td->nvec = ret > 0 ? ret : 0;
	for (vec = 0; vec < td->nvec; vec++) {
		int irq = pci_irq_vector(pdev, vec);

		/* mask_vec masks in the device at once, not on the next irq. */
		irq_set_status_flags(irq, IRQ_DISABLE_UNLAZY);
		if (td->irq_type == PCI_IRQ_INTX)
			ret = request_irq(irq, testdrv_intx, IRQF_SHARED,
					  KBUILD_MODNAME, td);
		else
			ret = request_irq(irq, testdrv_irq, 0, KBUILD_MODNAME,
					  td);
		if (ret) {
			irq_clear_status_flags(irq, IRQ_DISABLE_UNLAZY);
			testdrv_free_irqs(td, vec);
			td->nvec = 0;
			return ret;
		}
	}
	return 0;
}

static int testdrv_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct testdrv *td;
	int ret;

	td = devm_kzalloc(&pdev->dev, sizeof(*td), GFP_KERNEL);
	if (!td)
		return -ENOMEM;
	td->pdev = pdev;
	spin_lock_init(&td->reg_lock);
	td->plain_ioremap = id->driver_data & TESTDRV_PLAIN_IOREMAP;
	td->irq_type = id->driver_data & TESTDRV_MSIX ? PCI_IRQ_MSIX :
		id->driver_data & TESTDRV_INTX ? PCI_IRQ_INTX : PCI_IRQ_MSI;
	mutex_init(&td->mask_lock);
	td->intx_burst = 1;
	atomic_set(&td->unmask_vec, -1);

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
	/* A driver that resets its device first thing, as many do. */
	if (READ_ONCE(probe_write))
		writel(READ_ONCE(probe_write), td->bar0);

	ret = testdrv_request_irqs(td);
	if (ret)
		goto err_unmap;
	pci_set_drvdata(pdev, td);
	probes++;
	dev_info(&pdev->dev, "bound: BAR0 %pR mapped at %p by %s, %d %s vector(s)\n",
		 &pdev->resource[0], td->bar0,
		 td->plain_ioremap ? "ioremap" : "pci_iomap", td->nvec,
		 td->irq_type == PCI_IRQ_MSIX ? "MSI-X" :
		 td->irq_type == PCI_IRQ_INTX ? "INTx" : "MSI");
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
	{ PCI_DEVICE(0x1f0c, 0x7e53), .driver_data = TESTDRV_MSIX },
	{ PCI_DEVICE(0x1f0c, 0x7e54), .driver_data = TESTDRV_INTX },
	{ PCI_DEVICE(0x1f0c, 0x7e55) },		/* config events: PCIe + PM */
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
