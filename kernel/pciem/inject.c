// SPDX-License-Identifier: GPL-2.0
/*
 * inject.c - the fault plan: completion timeouts and poisoned DMA on demand.
 *
 * SET_FAULT arms a rule of the function's plan (pciem-core's FaultPlan,
 * through the shim: validation, which access a rule hits and how its count
 * runs down are the mock backend's code too) or clears them all. The plan
 * is allocated on the first SET_FAULT and guarded by a raw spinlock, since
 * trap.c asks it from the page-fault path with interrupts off;
 * faults_armed lets every access skip the lock while no rule is armed.
 *
 * What a hit does is up to the caller: trap.c completes the load all-ones
 * (a completion timeout) without asking the model and posts an ERROR event
 * of kind PCIEM_ERROR_INJECTED_TIMEOUT; dma.c fails the model's DMA read
 * with -EIO (a poisoned completion) before anything is copied, and a rule
 * with PCIEM_FAULT_FLAG_AER also reports it to the root port as a
 * non-fatal Poisoned TLP Received (port.c, as INJECT_AER does).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/spinlock.h>

#include "pciem_internal.h"

void pciem_inject_dev_init(struct pciem_dev *dev)
{
	raw_spin_lock_init(&dev->faults_lock);
	dev->faults = NULL;
	dev->faults_armed = false;
}

void pciem_inject_free(struct pciem_dev *dev)
{
	kfree(dev->faults);
	dev->faults = NULL;
	WRITE_ONCE(dev->faults_armed, false);
}

int pciem_inject_set(struct pciem_dev *dev, const struct pciem_fault_rule *req)
{
	u64 sizes[PCIEM_NUM_BARS];
	const char *reason = NULL;
	struct pciem_rs_faults *plan;
	unsigned long flags;
	u32 trapped = 0;
	int i, ret;

	lockdep_assert_held(&dev->lock);
	if (dev->state != PCIEM_REGISTERED) {
		pr_info_ratelimited("SET_FAULT: the device is not on the bus (REGISTER first)\n");
		return -EINVAL;
	}
	if ((req->flags & PCIEM_FAULT_FLAG_AER) && req->kind == PCIEM_FAULT_DMA_POISON &&
	    (!dev->port_img || !dev->port_aer)) {
		pr_info_ratelimited("SET_FAULT: PCIEM_FAULT_FLAG_AER needs a root port with AER (SET_ROOT_PORT with PCIEM_ROOT_PORT_AER)\n");
		return -EOPNOTSUPP;
	}
	if (!dev->faults) {
		/* Filled before it is published: the fault path reads it. */
		plan = kzalloc(pciem_rs_faults_size(), GFP_KERNEL);
		if (!plan)
			return -ENOMEM;
		pciem_rs_faults_init(plan);
		raw_spin_lock_irqsave(&dev->faults_lock, flags);
		dev->faults = plan;
		raw_spin_unlock_irqrestore(&dev->faults_lock, flags);
	}
	for (i = 0; i < PCIEM_NUM_BARS; i++) {
		sizes[i] = dev->bars[i].size;
		if (dev->bar_mode[i] == PCIEM_BAR_MODE_TRAP)
			trapped |= BIT(i);
	}
	raw_spin_lock_irqsave(&dev->faults_lock, flags);
	ret = pciem_rs_faults_apply(dev->faults, req, sizes, trapped, &reason);
	WRITE_ONCE(dev->faults_armed, !pciem_rs_faults_empty(dev->faults));
	raw_spin_unlock_irqrestore(&dev->faults_lock, flags);
	if (ret)
		pr_info_ratelimited("SET_FAULT: %s\n", reason);
	return ret;
}

bool pciem_inject_read_timeout(struct pciem_dev *dev, u32 bar, u64 off,
			       u32 width)
{
	unsigned long flags;
	bool hit = false;

	if (!READ_ONCE(dev->faults_armed))
		return false;
	raw_spin_lock_irqsave(&dev->faults_lock, flags);
	if (dev->faults) {
		hit = pciem_rs_faults_hit_read(dev->faults, bar, off, width);
		WRITE_ONCE(dev->faults_armed,
			   !pciem_rs_faults_empty(dev->faults));
	}
	raw_spin_unlock_irqrestore(&dev->faults_lock, flags);
	return hit;
}

/*
 * The device received a Poisoned TLP: the completion of its read, reported
 * as pciem-core builds it (status bit, header), non-fatal.
 */
static void pciem_inject_report_poison(struct pciem_dev *dev, u64 addr,
				       u64 len)
{
	struct pciem_aer_inject ai = { .severity = PCIEM_AER_NONFATAL };
	int ret;

	pciem_rs_faults_poison_report(pci_dev_id(dev->pdev), addr, len,
				      &ai.status, ai.header_log);
	ret = pciem_port_inject_aer(dev, &ai);
	if (ret)
		pr_info_ratelimited("%s: the poisoned read could not be reported through AER (%d)\n",
				    pci_name(dev->pdev), ret);
}

int pciem_inject_dma_read(struct pciem_dev *dev, u64 addr, u64 len,
			  const char *what)
{
	unsigned long flags;
	u32 hit = 0;

	if (!READ_ONCE(dev->faults_armed))
		return 0;
	raw_spin_lock_irqsave(&dev->faults_lock, flags);
	if (dev->faults) {
		hit = pciem_rs_faults_hit_dma_read(dev->faults, addr, len);
		WRITE_ONCE(dev->faults_armed,
			   !pciem_rs_faults_empty(dev->faults));
	}
	raw_spin_unlock_irqrestore(&dev->faults_lock, flags);
	if (!hit)
		return 0;
	pr_info_ratelimited("%s: %llu bytes at bus address 0x%llx: poisoned by a fault rule (EIO)\n",
			    what, len, addr);
	if (hit & PCIEM_RS_FAULT_AER)
		pciem_inject_report_poison(dev, addr, len);
	return -EIO;
}
