// SPDX-License-Identifier: GPL-2.0
/*
 * pciem_aerdrv.c - a PCI driver whose error handlers record what the AER
 * core asked of them, in order, for vmtest-aer.
 *
 * It binds to 1f0c:7e58, enables the device, maps BAR0, saves the config
 * state, and on the PCI device exposes:
 *   events  ro  the handler calls since the last clear, space separated:
 *               "cor" (cor_error_detected), "detected:N" (error_detected
 *               with pci_channel_state N: 1 normal, 2 frozen, 3 failure),
 *               "mmio" (mmio_enabled), "reset" (slot_reset), "resume"
 *   clear   wo  write anything: forget the events
 *   reg     ro  BAR0+0x0, read now ("0x%x")
 *
 * Its answers follow pci-error-recovery.rst: a normal channel can
 * recover (CAN_RECOVER), a frozen one needs a reset (NEED_RESET);
 * mmio_enabled says RECOVERED; slot_reset restores the saved state and
 * says RECOVERED.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/io.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>

#define AERDRV_LOG	512

struct aerdrv {
	struct pci_dev *pdev;
	void __iomem *bar0;
	struct mutex lock;	/* log, len */
	char log[AERDRV_LOG];
	size_t len;
};

static void aerdrv_note(struct pci_dev *pdev, const char *what)
{
	struct aerdrv *ad = pci_get_drvdata(pdev);
	int n;

	dev_info(&pdev->dev, "error handler: %s\n", what);
	if (!ad)
		return;
	mutex_lock(&ad->lock);
	n = scnprintf(ad->log + ad->len, sizeof(ad->log) - ad->len, "%s%s",
		      ad->len ? " " : "", what);
	ad->len += n;
	mutex_unlock(&ad->lock);
}

static pci_ers_result_t aerdrv_error_detected(struct pci_dev *pdev,
					      pci_channel_state_t state)
{
	char what[16];

	snprintf(what, sizeof(what), "detected:%u", (unsigned int)state);
	aerdrv_note(pdev, what);
	if (state == pci_channel_io_perm_failure)
		return PCI_ERS_RESULT_DISCONNECT;
	return state == pci_channel_io_frozen ? PCI_ERS_RESULT_NEED_RESET :
		PCI_ERS_RESULT_CAN_RECOVER;
}

static pci_ers_result_t aerdrv_mmio_enabled(struct pci_dev *pdev)
{
	aerdrv_note(pdev, "mmio");
	return PCI_ERS_RESULT_RECOVERED;
}

static pci_ers_result_t aerdrv_slot_reset(struct pci_dev *pdev)
{
	aerdrv_note(pdev, "reset");
	pci_restore_state(pdev);
	return PCI_ERS_RESULT_RECOVERED;
}

static void aerdrv_resume(struct pci_dev *pdev)
{
	aerdrv_note(pdev, "resume");
}

static void aerdrv_cor_error_detected(struct pci_dev *pdev)
{
	aerdrv_note(pdev, "cor");
}

static const struct pci_error_handlers aerdrv_err_handler = {
	.error_detected = aerdrv_error_detected,
	.mmio_enabled = aerdrv_mmio_enabled,
	.slot_reset = aerdrv_slot_reset,
	.resume = aerdrv_resume,
	.cor_error_detected = aerdrv_cor_error_detected,
};

static ssize_t events_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct aerdrv *ad = dev_get_drvdata(dev);
	ssize_t n;

	mutex_lock(&ad->lock);
	n = sysfs_emit(buf, "%s\n", ad->log);
	mutex_unlock(&ad->lock);
	return n;
}
static DEVICE_ATTR_RO(events);

static ssize_t clear_store(struct device *dev, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	struct aerdrv *ad = dev_get_drvdata(dev);

	mutex_lock(&ad->lock);
	ad->log[0] = '\0';
	ad->len = 0;
	mutex_unlock(&ad->lock);
	return count;
}
static DEVICE_ATTR_WO(clear);

static ssize_t reg_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	struct aerdrv *ad = dev_get_drvdata(dev);

	return sysfs_emit(buf, "0x%x\n", readl(ad->bar0));
}
static DEVICE_ATTR_RO(reg);

static struct attribute *aerdrv_attrs[] = {
	&dev_attr_events.attr,
	&dev_attr_clear.attr,
	&dev_attr_reg.attr,
	NULL,
};
ATTRIBUTE_GROUPS(aerdrv);

static int aerdrv_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct aerdrv *ad;
	int ret;

	ad = devm_kzalloc(&pdev->dev, sizeof(*ad), GFP_KERNEL);
	if (!ad)
		return -ENOMEM;
	ad->pdev = pdev;
	mutex_init(&ad->lock);
	ret = pci_enable_device(pdev);
	if (ret)
		return ret;
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	ad->bar0 = pci_iomap(pdev, 0, 0);
	if (!ad->bar0) {
		ret = -ENOMEM;
		goto err_regions;
	}
	pci_set_master(pdev);
	pci_save_state(pdev);
	pci_set_drvdata(pdev, ad);
	dev_info(&pdev->dev, "bound, AER capability at 0x%x\n", pdev->aer_cap);
	return 0;

err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
	return ret;
}

static void aerdrv_remove(struct pci_dev *pdev)
{
	struct aerdrv *ad = pci_get_drvdata(pdev);

	pci_iounmap(pdev, ad->bar0);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	mutex_destroy(&ad->lock);
	dev_info(&pdev->dev, "removed\n");
}

static const struct pci_device_id aerdrv_ids[] = {
	{ PCI_DEVICE(0x1f0c, 0x7e58) },
	{ }
};
MODULE_DEVICE_TABLE(pci, aerdrv_ids);

static struct pci_driver aerdrv_driver = {
	.name = "pciem_aerdrv",
	.id_table = aerdrv_ids,
	.probe = aerdrv_probe,
	.remove = aerdrv_remove,
	.err_handler = &aerdrv_err_handler,
	.dev_groups = aerdrv_groups,
};
module_pci_driver(aerdrv_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("AER test driver for PCIem VM scenarios");
