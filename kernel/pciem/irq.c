// SPDX-License-Identifier: GPL-2.0
/*
 * irq.c - MSI injection.
 *
 * The driver allocated its MSI vectors through the normal PCI/MSI domain,
 * so each vector is a Linux irq whose flow handler ends in the driver's
 * handler. An injected vector is marked in dev->irq_pending and raised from
 * an irq_work, which runs in hard-irq context as generic_handle_irq()
 * requires for x86 vector-domain interrupts.
 *
 * A vector masked by the driver (per-vector masking) is not delivered: its
 * Pending bit is set in config space, as a real function would do.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/irq.h>
#include <linux/irqdesc.h>
#include <linux/msi.h>

#include "pciem_internal.h"

static void pciem_irq_fn(struct irq_work *work)
{
	struct pciem_dev *dev = container_of(work, struct pciem_dev, irq_work);
	unsigned long pending = xchg(&dev->irq_pending, 0);
	unsigned int vec;

	for_each_set_bit(vec, &pending, PCIEM_MAX_MSI) {
		int virq = READ_ONCE(dev->msi_virq[vec]);

		if (virq > 0 && generic_handle_irq(virq))
			pr_warn_ratelimited("MSI vector %u: irq %d has no handler any more\n",
					    vec, virq);
	}
}

void pciem_irq_dev_init(struct pciem_dev *dev)
{
	init_irq_work(&dev->irq_work, pciem_irq_fn);
}

/* Called with dev->lock held. */
int pciem_irq_inject(struct pciem_dev *dev, const struct pciem_irq_inject *req)
{
	struct pciem_rs_msi msi;
	const char *reason = NULL;
	unsigned long flags;
	int ret, virq;

	if (req->reserved || req->flags) {
		pr_info_ratelimited("INJECT_IRQ: reserved fields and flags must be zero for MSI\n");
		return -EINVAL;
	}
	if (req->kind != PCIEM_IRQ_AUTO && req->kind != PCIEM_IRQ_MSI) {
		pr_info_ratelimited("INJECT_IRQ: kind %u not supported yet (MSI only)\n",
				    req->kind);
		return -EOPNOTSUPP;
	}
	if (dev->state != PCIEM_REGISTERED || !dev->pdev) {
		pr_info_ratelimited("INJECT_IRQ: the device is not registered\n");
		return -ENODEV;
	}

	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	ret = pciem_rs_msi_state(dev->img, &msi, &reason);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (ret) {
		pr_info_ratelimited("INJECT_IRQ: %s (%d)\n", reason, ret);
		return ret == -ENOENT ? -EOPNOTSUPP : ret;
	}
	if (!msi.enabled || !dev->pdev->msi_enabled) {
		pr_info_ratelimited("INJECT_IRQ: the driver has not enabled MSI on %s\n",
				    pci_name(dev->pdev));
		return -EIO;
	}
	if (req->vector >= msi.vectors_enabled ||
	    req->vector >= PCIEM_MAX_MSI) {
		pr_info_ratelimited("INJECT_IRQ: vector %u out of range, %u enabled\n",
				    req->vector, msi.vectors_enabled);
		return -EINVAL;
	}
	/* Looked up here: msi_get_virq() sleeps, unmask may not. */
	virq = pci_irq_vector(dev->pdev, req->vector);
	if (virq <= 0) {
		pr_info_ratelimited("INJECT_IRQ: vector %u has no Linux irq (%d)\n",
				    req->vector, virq);
		return -EIO;
	}
	WRITE_ONCE(dev->msi_virq[req->vector], virq);

	if (msi.per_vector_mask && (msi.mask & BIT(req->vector))) {
		/* Delivered by pciem_irq_config_written() on unmask. */
		raw_spin_lock_irqsave(&dev->cfg_lock, flags);
		ret = pciem_rs_msi_set_pending(dev->img, req->vector, 1,
					       &reason);
		raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
		if (ret)
			pr_info_ratelimited("INJECT_IRQ: %s (%d)\n", reason, ret);
		return ret;
	}
	pciem_irq_raise(dev, req->vector);
	return 0;
}

void pciem_irq_raise(struct pciem_dev *dev, u32 vector)
{
	if (READ_ONCE(dev->irq_dead) || vector >= PCIEM_MAX_MSI)
		return;
	set_bit(vector, &dev->irq_pending);
	irq_work_queue(&dev->irq_work);
}

/*
 * The host wrote the MSI capability (any context, cfg_lock not held):
 * vectors pending while masked and now unmasked are delivered, and their
 * Pending bits cleared, as a real function does.
 */
void pciem_irq_config_written(struct pciem_dev *dev)
{
	const char *reason = NULL;
	struct pciem_rs_msi msi;
	unsigned long flags;
	u32 deliver = 0, v;

	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	if (!pciem_rs_msi_state(dev->img, &msi, &reason) && msi.enabled &&
	    msi.per_vector_mask) {
		deliver = msi.pending & ~msi.mask;
		if (msi.vectors_enabled < 32)
			deliver &= BIT(msi.vectors_enabled) - 1;
		for (v = 0; v < 32; v++)
			if (deliver & BIT(v))
				pciem_rs_msi_set_pending(dev->img, v, 0,
							 &reason);
	}
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	for (v = 0; v < 32; v++)
		if ((deliver & BIT(v)) && READ_ONCE(dev->msi_virq[v]) > 0)
			pciem_irq_raise(dev, v);
}

/* No more injections after this returns. */
void pciem_irq_stop(struct pciem_dev *dev)
{
	WRITE_ONCE(dev->irq_dead, true);
	irq_work_sync(&dev->irq_work);
	dev->irq_pending = 0;
}
