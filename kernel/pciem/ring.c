// SPDX-License-Identifier: GPL-2.0
/*
 * ring.c - the event ring shared with the device process, and its eventfd.
 *
 * The ring is vmalloc_user() memory mapped by the process at offset 0 of
 * its /dev/pciem file. Events come from several contexts and CPUs (config
 * writes in any context, watchpoint hits in #DB context); ring_lock, a raw
 * spinlock held only around the shim's push, makes them one producer.
 * Signalling the eventfd is not NMI-safe, so it is deferred to an irq_work.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/eventfd.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>

#include "pciem_internal.h"

static void pciem_notify_fn(struct irq_work *work)
{
	struct pciem_dev *dev = container_of(work, struct pciem_dev,
					     notify_work);

	spin_lock(&dev->evfd_lock);
	if (dev->evfd)
		eventfd_signal(dev->evfd);
	spin_unlock(&dev->evfd_lock);
}

int pciem_ring_init(struct pciem_dev *dev)
{
	dev->ring_bytes = PAGE_ALIGN(sizeof(struct pciem_shared_ring));
	dev->ring = vmalloc_user(dev->ring_bytes);
	if (!dev->ring)
		return -ENOMEM;
	raw_spin_lock_init(&dev->ring_lock);
	spin_lock_init(&dev->evfd_lock);
	init_irq_work(&dev->notify_work, pciem_notify_fn);
	pciem_rs_producer_init(&dev->prod);
	return 0;
}

void pciem_ring_free(struct pciem_dev *dev)
{
	irq_work_sync(&dev->notify_work);
	if (dev->evfd)
		eventfd_ctx_put(dev->evfd);
	dev->evfd = NULL;
	vfree(dev->ring);
	dev->ring = NULL;
}

int pciem_ring_mmap(struct pciem_dev *dev, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;

	if (vma->vm_pgoff != 0 || len > dev->ring_bytes) {
		pr_info_ratelimited("ring mmap: offset must be 0 and length at most %zu\n",
				    dev->ring_bytes);
		return -EINVAL;
	}
	if (!(vma->vm_flags & VM_SHARED)) {
		pr_info_ratelimited("ring mmap: MAP_SHARED required\n");
		return -EINVAL;
	}
	return remap_vmalloc_range(vma, dev->ring, 0);
}

/*
 * Callable from any context, including #DB; 0, or -ENOSPC when the event
 * did not fit. A full ring is counted by the
 * shim in the ring's overflow field, which the consumer sees, and every
 * event's seq numbers the attempts, so no loss goes unnoticed.
 */
int pciem_ring_push(struct pciem_dev *dev, struct pciem_event *ev)
{
	/* Functions 1..7 publish to function 0's ring, tagged. */
	struct pciem_dev *owner = dev->fn0 ? dev->fn0 : dev;
	const char *reason = NULL;
	unsigned long flags;
	int ret;

	/* Nothing the driver does reaches a surprise-removed device. */
	if (READ_ONCE(owner->link_down))
		return -ENODEV;
	ev->flags |= dev->fn_nr << PCIEM_EVENT_FUNCTION_SHIFT;
	raw_spin_lock_irqsave(&owner->ring_lock, flags);
	ret = pciem_rs_ring_push(owner->ring, &owner->prod, ev, &reason);
	raw_spin_unlock_irqrestore(&owner->ring_lock, flags);
	if (pciem_ring_consumer_sleeps(owner))
		irq_work_queue(&owner->notify_work);
	return ret;
}

/*
 * Whether the consumer needs the eventfd for what was just published: it
 * does unless it said it is draining and will look again before it sleeps
 * (PCIEM_RING_CONSUMER_AWAKE), which saves the irq_work's self-IPI on
 * every event meanwhile. pciem-core decides (the fence pairing with the
 * consumer's is there).
 */
bool pciem_ring_consumer_sleeps(struct pciem_dev *dev)
{
	return pciem_rs_ring_needs_signal(dev->fn0 ? dev->fn0->ring : dev->ring);
}

int pciem_ring_set_eventfd(struct pciem_dev *dev, int fd)
{
	struct eventfd_ctx *ctx = NULL, *old;
	unsigned long flags;

	if (fd >= 0) {
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx)) {
			/* EBADF: no such open file; EINVAL: not an eventfd. */
			pr_info_ratelimited("SET_EVENTFD: fd %d is %s\n", fd,
					    PTR_ERR(ctx) == -EBADF ? "not an open file" :
					    "not an eventfd");
			return PTR_ERR(ctx);
		}
	} else if (fd != -1) {
		pr_info_ratelimited("SET_EVENTFD: fd %d is negative (use -1 to detach)\n",
				    fd);
		return -EBADF;
	}
	spin_lock_irqsave(&dev->evfd_lock, flags);
	old = dev->evfd;
	dev->evfd = ctx;
	spin_unlock_irqrestore(&dev->evfd_lock, flags);
	if (old)
		eventfd_ctx_put(old);
	/* Events may already be waiting: wake the new consumer. */
	if (ctx)
		irq_work_queue(&dev->notify_work);
	return 0;
}
