// SPDX-License-Identifier: GPL-2.0
/*
 * fault.c - surprise removal: the device's link goes down on demand.
 *
 * SURPRISE_REMOVE raises dev->link_down. From then on the configuration
 * accessors (bus.c) answer all-ones and drop writes, trapped BAR accesses
 * complete as master aborts (trap.c; a read waiting for the model gives up
 * at once), directly mapped BARs are overwritten with all-ones (their
 * stores cannot be dropped: the driver writes plain memory), the ring takes
 * no more events, and the device process can no longer raise interrupts or
 * master the bus. Then a worker removes the device the way pciehp removes
 * hardware whose presence was lost (pciehp_unconfigure_device()): each
 * function is marked disconnected, so pci_dev_is_disconnected() and
 * pci_channel_offline() say so to its driver, and is stopped and removed
 * under the rescan lock, its driver's remove() running against the dead
 * device. The ioctl does not wait for that: a driver's remove() may wait
 * for a command it believes in flight, and the model must not be what
 * holds it up.
 *
 * The pci_dev stays referenced (dev->pdev) until the last file goes, so
 * nothing else in the module sees it vanish; dev->removed (under the
 * rescan lock) says its sysfs files are gone with it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/io.h>
#include <linux/pci.h>
#include <linux/workqueue.h>

#include "pciem_internal.h"

/* pci_dev_set_disconnected() is private to drivers/pci: the same effect. */
static void pciem_mark_disconnected(struct pci_dev *pdev)
{
	xchg(&pdev->error_state, pci_channel_io_perm_failure);
}

static void pciem_remove_work_fn(struct work_struct *work)
{
	struct pciem_dev *dev = container_of(work, struct pciem_dev,
					     remove_work);

	pci_lock_rescan_remove();
	/* Not if pciehp (or a teardown) got there first. */
	if (dev->pdev && !dev->removed &&
	    device_is_registered(&dev->pdev->dev)) {
		pciem_mark_disconnected(dev->pdev);
		pciem_bus_remove_files(dev);
		dev_info(&dev->pdev->dev, "surprise removal: link down, removing the device\n");
		pci_stop_and_remove_bus_device(dev->pdev);
		dev->removed = true;
	}
	pci_unlock_rescan_remove();
	pr_info("domain %04x: surprise removal done\n", dev->domain);
}

void pciem_fault_dev_init(struct pciem_dev *dev)
{
	INIT_WORK(&dev->remove_work, pciem_remove_work_fn);
	pciem_inject_dev_init(dev);
	pciem_reinsert_dev_init(dev);
}

/* The last release: a removal under way finishes before the bus goes. */
void pciem_fault_flush(struct pciem_dev *dev)
{
	pciem_reinsert_release(dev);
	pciem_port_wait_removal(dev);
	flush_work(&dev->remove_work);
}

/* SURPRISE_REMOVE, dev->lock held. */
int pciem_surprise_remove(struct pciem_dev *dev,
			  const struct pciem_surprise_remove *req)
{
	lockdep_assert_held(&dev->lock);
	if (req->flags || req->reserved) {
		pr_info_ratelimited("SURPRISE_REMOVE: flags and reserved must be zero\n");
		return -EINVAL;
	}
	if (dev->state != PCIEM_REGISTERED || !dev->pdev) {
		pr_info_ratelimited("SURPRISE_REMOVE: the device is not on the bus (REGISTER first)\n");
		return -EINVAL;
	}
	if (READ_ONCE(dev->link_down)) {
		pr_info_ratelimited("SURPRISE_REMOVE: %s is already removed\n",
				    pci_name(dev->pdev));
		return -EALREADY;
	}
	/*
	 * Before anything else: every accessor checks the flag, and the
	 * all-ones fill below must not be overwritten by a model answer.
	 */
	WRITE_ONCE(dev->link_down, true);
	/* The flag is visible before the fill starts (see above). */
	smp_mb();
	if (dev->region_kva)
		memset_io(dev->region_kva, 0xff, dev->region_size);
	pr_info("%s: surprise removal requested: link down\n",
		pci_name(dev->pdev));
	if (pciem_port_link_down(dev)) {
		dev->port_notified = true;
		pr_info("%s: slot presence lost; the root port interrupts pciehp\n",
			pci_name(dev->pdev));
		return 0;
	}
	queue_work(system_unbound_wq, &dev->remove_work);
	return 0;
}

/* Refuses an operation of the device process once the link is down. */
int pciem_link_check(struct pciem_dev *dev, const char *what)
{
	if (!READ_ONCE(dev->link_down))
		return 0;
	pr_info_ratelimited("%s: the device was surprise-removed (link down)\n",
			    what);
	return -ENODEV;
}
