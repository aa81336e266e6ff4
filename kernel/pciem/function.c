// SPDX-License-Identifier: GPL-2.0
/*
 * function.c - multi-function devices: functions 1..7 of a device.
 *
 * Each function is a struct pciem_dev of its own (configuration image,
 * BARs, interrupts, watches, DMA checker), so that every per-device piece
 * of the module works on it unchanged; what a slot shares lives in
 * function 0: the files, the event ring (ring.c tags each event with its
 * function), the root bus and its domain. Functions 1..7 are created by
 * SET_FUNCTION before REGISTER, fixed from then on, and freed with
 * function 0.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "pciem_internal.h"

static struct pciem_dev *pciem_fn_alloc(struct pciem_dev *dev, u32 nr)
{
	struct pciem_dev *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return NULL;
	kref_init(&f->kref);
	mutex_init(&f->lock);
	raw_spin_lock_init(&f->cfg_lock);
	pciem_watch_dev_init(f);
	pciem_irq_dev_init(f);
	pciem_irqfd_dev_init(f);
	pciem_dmac_dev_init(f);
	pciem_fault_dev_init(f);
	pciem_port_dev_init(f);
	if (pciem_trap_dev_init(f)) {
		mutex_destroy(&f->lock);
		kfree(f);
		return NULL;
	}
	f->fn0 = dev;
	f->fn_nr = nr;
	return f;
}

int pciem_fn_select(struct pciem_dev *dev, const struct pciem_function *req)
{
	struct pciem_dev *f;

	lockdep_assert_held(&dev->lock);
	if (req->reserved) {
		pr_info_ratelimited("SET_FUNCTION: reserved must be zero\n");
		return -EINVAL;
	}
	if (req->function >= PCIEM_MAX_FUNCTIONS) {
		pr_info_ratelimited("SET_FUNCTION: function %u: a slot has functions 0..%u\n",
				    req->function, PCIEM_MAX_FUNCTIONS - 1);
		return -EINVAL;
	}
	if (req->function && !dev->fns[req->function]) {
		if (dev->state == PCIEM_REGISTERED || dev->state == PCIEM_DEAD) {
			pr_info_ratelimited("SET_FUNCTION: function %u was not described before REGISTER\n",
					    req->function);
			return -ENOENT;
		}
		f = pciem_fn_alloc(dev, req->function);
		if (!f)
			return -ENOMEM;
		/*
		 * Published initialised: COMPLETE_READ looks functions up
		 * without dev->lock (pairs with its smp_load_acquire()).
		 */
		smp_store_release(&dev->fns[req->function], f);
	}
	dev->sel = req->function;
	return 0;
}

bool pciem_fn_multi(const struct pciem_dev *dev)
{
	int i;

	for (i = 1; i < PCIEM_MAX_FUNCTIONS; i++)
		if (dev->fns[i])
			return true;
	return false;
}

bool pciem_fn_any_trapped(const struct pciem_dev *dev)
{
	int i;

	if (pciem_dev_trapped(dev))
		return true;
	for (i = 1; i < PCIEM_MAX_FUNCTIONS; i++)
		if (dev->fns[i] && pciem_dev_trapped(dev->fns[i]))
			return true;
	return false;
}

struct pciem_dev *pciem_pdev_to_dev(const struct pci_dev *pdev)
{
	struct pciem_dev *dev = container_of(pdev->bus->sysdata,
					     struct pciem_dev, sysdata);
	unsigned int fn = PCI_FUNC(pdev->devfn);

	return fn && dev->fns[fn] ? dev->fns[fn] : dev;
}

void pciem_fn_quiesce(struct pciem_dev *dev)
{
	int i;

	for (i = 1; i < PCIEM_MAX_FUNCTIONS; i++) {
		struct pciem_dev *f = dev->fns[i];

		if (!f)
			continue;
		/* As pciem_dev_release() does for function 0. */
		pciem_irqfd_release_all(f);
		mutex_lock(&f->lock);
		pciem_watch_release_all(f);
		if (f->state == PCIEM_REGISTERED)
			f->state = PCIEM_DEAD;
		mutex_unlock(&f->lock);
		pciem_irq_stop(f);
	}
}

void pciem_fn_free_all(struct pciem_dev *dev)
{
	int i;

	for (i = 1; i < PCIEM_MAX_FUNCTIONS; i++) {
		struct pciem_dev *f = dev->fns[i];

		if (!f)
			continue;
		dev->fns[i] = NULL;
		pciem_trap_dev_free(f);
		vfree(f->img);
		kfree(f->builder);
		mutex_destroy(&f->lock);
		kfree(f);
	}
}

void pciem_fn_lock_all(struct pciem_dev *dev)
{
	int i;

	lockdep_assert_held(&dev->lock);
	for (i = 1; i < PCIEM_MAX_FUNCTIONS; i++)
		if (dev->fns[i])
			mutex_lock_nested(&dev->fns[i]->lock, i);
}

void pciem_fn_unlock_all(struct pciem_dev *dev)
{
	int i;

	for (i = PCIEM_MAX_FUNCTIONS - 1; i > 0; i--)
		if (dev->fns[i])
			mutex_unlock(&dev->fns[i]->lock);
}
