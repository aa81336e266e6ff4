// SPDX-License-Identifier: GPL-2.0
/*
 * reinsert.c - REINSERT: a surprise-removed device comes back.
 *
 * The ioctl puts the function back to its power-on state: its
 * configuration image becomes the one it was registered with (whose BARs
 * hold the addresses the module assigned, as firmware would have), its BAR
 * memory is zeroed, the link comes up and the model is told by a RESET
 * event (PCIEM_RESET_REINSERT). Then the device is added again as new
 * hardware:
 *
 *   - below our root port, the slot reports presence and Data Link Layer
 *     Link Active with their change bits and the port interrupts pciehp,
 *     which scans the slot and adds the device, exactly as for a card
 *     plugged in;
 *   - without a port (or when pciehp has not enabled the slot's
 *     interrupt), a worker scans the slot and adds the device under the
 *     PCI rescan lock.
 *
 * Either way the PCI core creates a new pci_dev. A PCI bus notifier catches
 * it before any driver can probe (BUS_NOTIFY_ADD_DEVICE) and: claims its
 * BARs at the addresses they hold (the core would otherwise reassign them,
 * which fails for a window in e820-reserved memory, see bus.c), makes it
 * the function's pci_dev (the old one stays referenced in pdev_gone until
 * the next REINSERT or the last release, so an ioctl still using it is
 * safe), moves the DMA checker to it and gives it our sysfs files.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/io.h>
#include <linux/notifier.h>
#include <linux/pci.h>
#include <linux/workqueue.h>

#include "pciem_internal.h"

/* The bus the function sits on: below the port, or the root bus. */
static struct pci_bus *pciem_reinsert_bus(struct pciem_dev *dev)
{
	return dev->port_pdev ? dev->port_pdev->subordinate : dev->bus;
}

static void pciem_reinsert_work_fn(struct work_struct *work)
{
	struct pciem_dev *dev = container_of(work, struct pciem_dev,
					     reinsert_work);
	struct pci_bus *bus = pciem_reinsert_bus(dev);

	pci_lock_rescan_remove();
	if (!bus || !pci_scan_slot(bus, PCI_DEVFN(0, 0)))
		pr_warn("domain %04x: reinsertion: the slot scan found no device\n",
			dev->domain);
	else
		pci_bus_add_devices(bus);
	pci_unlock_rescan_remove();
}

void pciem_reinsert_dev_init(struct pciem_dev *dev)
{
	INIT_WORK(&dev->reinsert_work, pciem_reinsert_work_fn);
}

void pciem_reinsert_release(struct pciem_dev *dev)
{
	flush_work(&dev->reinsert_work);
}

void pciem_reinsert_put(struct pciem_dev *dev)
{
	pci_dev_put(dev->pdev_gone);
	dev->pdev_gone = NULL;
}

/* Power-on state: the registered image, zeroed BAR memory. */
static void pciem_reinsert_reset(struct pciem_dev *dev)
{
	unsigned long flags;
	int i;

	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	memcpy(dev->img, dev->img_initial, sizeof(*dev->img));
	pciem_irq_reset_locked(dev);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (dev->region_kva)
		memset_io(dev->region_kva, 0, dev->region_size);
	for (i = 0; i < PCIEM_NUM_BARS; i++)
		if (dev->bars[i].backing)
			memset(dev->bars[i].backing, 0, dev->bars[i].size);
}

int pciem_reinsert(struct pciem_dev *dev, const struct pciem_reinsert *req)
{
	struct pciem_event ev = {
		.type = PCIEM_EVENT_RESET,
		.data = PCIEM_RESET_REINSERT,
	};

	lockdep_assert_held(&dev->lock);
	if (req->flags || req->reserved) {
		pr_info_ratelimited("REINSERT: flags and reserved must be zero\n");
		return -EINVAL;
	}
	if (dev->state != PCIEM_REGISTERED || !dev->pdev) {
		pr_info_ratelimited("REINSERT: the device is not on the bus (REGISTER first)\n");
		return -EINVAL;
	}
	if (!READ_ONCE(dev->link_down)) {
		pr_info_ratelimited("REINSERT: %s is not removed (SURPRISE_REMOVE first)\n",
				    pci_name(dev->pdev));
		return -EALREADY;
	}
	if (device_is_registered(&dev->pdev->dev) ||
	    work_pending(&dev->remove_work)) {
		pr_info_ratelimited("REINSERT: %s: its removal has not finished yet\n",
				    pci_name(dev->pdev));
		return -EBUSY;
	}
	/* The previous cycle's pci_dev: no ioctl can be using it now. */
	pciem_reinsert_put(dev);
	pciem_reinsert_reset(dev);
	dev->port_notified = false;
	WRITE_ONCE(dev->reinserting, true);
	/* The image is back before anything can read it through the link. */
	smp_mb();
	WRITE_ONCE(dev->link_down, false);
	ev.timestamp_ns = ktime_get_mono_fast_ns();
	pciem_ring_push(dev, &ev);
	pr_info("%s: reinsertion requested: power-on state, link up\n",
		pci_name(dev->pdev));
	if (pciem_port_link_up(dev)) {
		pr_info("%s: slot presence restored; the root port interrupts pciehp\n",
			pci_name(dev->pdev));
		return 0;
	}
	queue_work(system_unbound_wq, &dev->reinsert_work);
	return 0;
}

/* The new pci_dev of a function being reinserted, before drivers probe. */
static void pciem_reinsert_adopt(struct pciem_dev *dev, struct pci_dev *pdev)
{
	int i;

	for (i = 0; i < PCI_STD_NUM_BARS; i++) {
		struct resource *r = &pdev->resource[i];

		if (r->flags && !r->parent && pci_claim_resource(pdev, i))
			pci_warn(pdev, "reinsertion: BAR %d could not be claimed at %pR\n",
				 i, r);
	}
	pciem_dmac_detach(dev);
	dev->pdev_gone = dev->pdev;
	WRITE_ONCE(dev->pdev, pci_dev_get(pdev));
	pciem_dmac_attach(dev);
	pciem_bus_add_files(dev);
	dev->removed = false;
	WRITE_ONCE(dev->reinserting, false);
	pci_info(pdev, "reinserted: BARs claimed, the driver may probe\n");
}

static int pciem_reinsert_notify(struct notifier_block *nb,
				 unsigned long action, void *data)
{
	struct pci_dev *pdev = to_pci_dev(data);
	struct pciem_dev *dev;

	if (action != BUS_NOTIFY_ADD_DEVICE || !pciem_bus_ours(pdev->bus))
		return NOTIFY_DONE;
	dev = pciem_pdev_to_dev(pdev);
	/* Not the root port, not a device that is not coming back. */
	if (pdev->devfn != PCI_DEVFN(0, 0) ||
	    pdev->bus->number != (dev->port_img ? 1 : 0) ||
	    !READ_ONCE(dev->reinserting))
		return NOTIFY_DONE;
	pciem_reinsert_adopt(dev, pdev);
	return NOTIFY_OK;
}

static struct notifier_block pciem_reinsert_nb = {
	.notifier_call = pciem_reinsert_notify,
};

int pciem_reinsert_init(void)
{
	return bus_register_notifier(&pci_bus_type, &pciem_reinsert_nb);
}

void pciem_reinsert_exit(void)
{
	bus_unregister_notifier(&pci_bus_type, &pciem_reinsert_nb);
}
