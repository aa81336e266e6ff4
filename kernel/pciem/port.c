// SPDX-License-Identifier: GPL-2.0
/*
 * port.c - the virtual PCIe root port above a device (SET_ROOT_PORT).
 *
 * With a port, the device's root bus holds the port at 00:00.0 and the
 * device sits at 01:00.0 below it. The port's configuration space is built
 * and emulated by pciem-core (config::root_port, through the Rust shim) in
 * its own image, served by the same pci_ops as the device's (bus.c routes
 * by bus number) under dev->cfg_lock. Linux's portdrv binds to it and
 * starts pciehp on its hot-plug slot; the port's one MSI vector is the
 * interrupt of both.
 *
 * The port forwards a single 32-bit memory window, so every BAR of the
 * device comes from the BAR pool, in one region rounded to the window's
 * 1 MiB granularity (bus.c).
 *
 * A surprise removal clears the slot's Presence Detect State and the
 * link's Data Link Layer Link Active, sets their change bits and, if
 * pciehp enabled the interrupt, raises the port's MSI vector from an
 * irq_work (generic_handle_irq() wants hard-irq context): pciehp then
 * removes the device itself, logging its own "Link Down" and "Card not
 * present" lines.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/irq.h>
#include <linux/irq_work.h>
#include <linux/pci.h>
#include <linux/vmalloc.h>

#include "pciem_internal.h"

/* pciehp's removal of the device, once interrupted: how long to wait. */
#define PCIEM_PORT_REMOVAL_WAIT_MS	10000

static void pciem_port_irq_fn(struct irq_work *work)
{
	struct pciem_dev *dev = container_of(work, struct pciem_dev,
					     port_irq_work);
	int virq = READ_ONCE(dev->port_virq);

	if (virq > 0 && generic_handle_irq(virq))
		pr_warn_ratelimited("root port: irq %d has no handler any more\n",
				    virq);
}

void pciem_port_dev_init(struct pciem_dev *dev)
{
	init_irq_work(&dev->port_irq_work, pciem_port_irq_fn);
}

/* SET_ROOT_PORT, dev->lock held. */
int pciem_port_set(struct pciem_dev *dev, const struct pciem_root_port *req)
{
	lockdep_assert_held(&dev->lock);
	if (dev->state == PCIEM_REGISTERED) {
		pr_info_ratelimited("SET_ROOT_PORT: the device is already registered\n");
		return -EBUSY;
	}
	if (!(req->flags & PCIEM_ROOT_PORT_HOTPLUG) ||
	    req->flags & ~(PCIEM_ROOT_PORT_HOTPLUG | PCIEM_ROOT_PORT_AER) ||
	    req->reserved) {
		pr_info_ratelimited("SET_ROOT_PORT: flags must be PCIEM_ROOT_PORT_HOTPLUG, optionally with PCIEM_ROOT_PORT_AER, and reserved zero\n");
		return -EINVAL;
	}
	dev->want_port = true;
	dev->port_aer = req->flags & PCIEM_ROOT_PORT_AER;
	return 0;
}

/*
 * REGISTER, after the BARs are laid out in one pool region: the port's
 * image, with the region as its memory window.
 */
int pciem_port_build(struct pciem_dev *dev)
{
	const char *reason = NULL;
	u64 last = dev->region_phys + dev->region_size - 1;
	int ret;

	if (!dev->region_size || last > U32_MAX) {
		pr_err("root port: the device's BARs are not in one 32-bit pool region\n");
		return -EINVAL;
	}
	dev->port_img = vzalloc(sizeof(*dev->port_img));
	if (!dev->port_img)
		return -ENOMEM;
	/* Slot numbers are 13 bits: the domain's offset is unique enough. */
	ret = pciem_rs_root_port_build(dev->port_img,
				       (dev->domain & 0x1fff) ?: 1, 1,
				       (u32)dev->region_phys, (u32)last,
				       dev->port_aer, &reason);
	if (ret) {
		pr_err("root port: %s (%d)\n", reason, ret);
		vfree(dev->port_img);
		dev->port_img = NULL;
	}
	return ret;
}

void pciem_port_free(struct pciem_dev *dev)
{
	irq_work_sync(&dev->port_irq_work);
	vfree(dev->port_img);
	dev->port_img = NULL;
}

/*
 * The link went down under the port: presence and link active go, and the
 * port interrupts if pciehp asked it to. Returns true if pciehp was
 * interrupted (it removes the device), false if the caller must remove it.
 * Process context, dev->lock held.
 */
/*
 * Raises the port's MSI vector, if the port's driver enabled MSI. Process
 * context (pci_irq_vector() may sleep).
 */
static bool pciem_port_raise(struct pciem_dev *dev)
{
	struct pciem_rs_msi msi = { };
	const char *reason = NULL;
	unsigned long flags;
	int ret, virq;

	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	ret = pciem_rs_msi_state(dev->port_img, &msi, &reason);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (ret || !msi.enabled) {
		pr_info("%s: root port: its MSI is not enabled\n",
			pci_name(dev->port_pdev));
		return false;
	}
	virq = pci_irq_vector(dev->port_pdev, 0);
	if (virq <= 0) {
		pr_info("%s: root port: MSI enabled but no Linux irq for it (%d)\n",
			pci_name(dev->port_pdev), virq);
		return false;
	}
	WRITE_ONCE(dev->port_virq, virq);
	irq_work_queue(&dev->port_irq_work);
	return true;
}

bool pciem_port_link_down(struct pciem_dev *dev)
{
	unsigned long flags;
	bool due;

	if (!dev->port_img || !dev->port_pdev)
		return false;
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	due = pciem_rs_root_port_presence(dev->port_img, 0);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (!due) {
		pr_info("%s: root port: pciehp has not enabled the slot's interrupt; removing the device without it\n",
			pci_name(dev->port_pdev));
		return false;
	}
	return pciem_port_raise(dev);
}

/*
 * The link came back (REINSERT): presence and link active return, and the
 * port interrupts pciehp, which adds the device. Returns true if pciehp was
 * interrupted, false if the caller must add the device itself. Process
 * context, dev->lock held.
 */
bool pciem_port_link_up(struct pciem_dev *dev)
{
	unsigned long flags;
	bool due;

	if (!dev->port_img || !dev->port_pdev)
		return false;
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	due = pciem_rs_root_port_presence(dev->port_img, 1);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (!due) {
		pr_info("%s: root port: pciehp has not enabled the slot's interrupt; adding the device without it\n",
			pci_name(dev->port_pdev));
		return false;
	}
	return pciem_port_raise(dev);
}

/* INJECT_AER, dev->lock held. */
int pciem_port_inject_aer(struct pciem_dev *dev,
			  const struct pciem_aer_inject *req)
{
	const char *reason = NULL;
	unsigned long flags;
	bool due = false;
	int ret;

	lockdep_assert_held(&dev->lock);
	if (dev->state != PCIEM_REGISTERED || !dev->pdev) {
		pr_info_ratelimited("INJECT_AER: the device is not on the bus (REGISTER first)\n");
		return -EINVAL;
	}
	if (!dev->port_img || !dev->port_aer || !dev->port_pdev) {
		pr_info_ratelimited("INJECT_AER: the device has no root port with AER (SET_ROOT_PORT with PCIEM_ROOT_PORT_AER before REGISTER)\n");
		return -EOPNOTSUPP;
	}
	if (req->flags || req->reserved ||
	    req->severity > PCIEM_AER_FATAL) {
		pr_info_ratelimited("INJECT_AER: severity must be PCIEM_AER_CORRECTABLE, _NONFATAL or _FATAL, flags and reserved zero\n");
		return -EINVAL;
	}
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	ret = pciem_rs_aer_record(dev->img, req->severity, req->status,
				  req->header_log, &reason);
	if (!ret)
		due = pciem_rs_aer_report(dev->port_img, req->severity,
					  pci_dev_id(dev->pdev));
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (ret) {
		pr_info_ratelimited("INJECT_AER: status 0x%x: %s (%d)\n",
				    req->status, reason, ret);
		return ret == -ENOENT ? -EOPNOTSUPP : ret;
	}
	if (!due) {
		pr_info("%s: AER error latched at the root port; its AER driver has not enabled reporting of that severity\n",
			pci_name(dev->pdev));
		return 0;
	}
	pciem_port_raise(dev);
	return 0;
}

/*
 * The last release: when pciehp was told, its removal must be over before
 * the bus goes (it takes the rescan lock our teardown holds while its
 * interrupt thread is freed). If it never comes, the module removes the
 * device itself.
 */
void pciem_port_wait_removal(struct pciem_dev *dev)
{
	unsigned int waited = 0;

	if (!dev->port_notified || !dev->pdev)
		return;
	while (device_is_registered(&dev->pdev->dev) &&
	       waited < PCIEM_PORT_REMOVAL_WAIT_MS) {
		msleep(20);
		waited += 20;
	}
	if (device_is_registered(&dev->pdev->dev)) {
		pr_warn("%s: pciehp did not remove the device within %u ms; removing it\n",
			pci_name(dev->pdev), PCIEM_PORT_REMOVAL_WAIT_MS);
		queue_work(system_unbound_wq, &dev->remove_work);
		flush_work(&dev->remove_work);
	}
}
