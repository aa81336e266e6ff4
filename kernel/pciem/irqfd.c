// SPDX-License-Identifier: GPL-2.0
/*
 * irqfd.c - eventfds bound to interrupts (PCIEM_IOCTL_SET_IRQFD).
 *
 * As KVM's irqfd does, the binding puts a wait-queue entry on the eventfd:
 * a signal (write to the eventfd, from any thread or process) calls
 * irqfd_wakeup() with the eventfd's lock held, in atomic context. That
 * consumes the count and queues a work item that injects exactly as
 * INJECT_IRQ would (looking up an MSI vector's Linux irq sleeps, and the
 * MSI-X PBA is updated under dev->lock). Signals that arrive before the
 * work runs are coalesced into one interrupt, as repeated MSIs would be by
 * a function whose message was not yet serviced.
 *
 * INTx is level-triggered, so an INTx binding is either LEVEL (a signal
 * asserts the line, which stays asserted) or DEASSERT (a signal deasserts
 * it); a device process binds one of each.
 *
 * A binding ends by REMOVE, when the device's files are closed, or when the
 * eventfd's last reference is closed (EPOLLHUP): it is unhooked at once and
 * freed by a work item (irqfd_reap), which never holds dev->lock while it
 * waits for the binding's inject work.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/wait.h>

#include "pciem_internal.h"

#define PCIEM_MAX_IRQFDS	64
#define PCIEM_MAX_MSIX		2048

struct pciem_irqfd {
	struct list_head node;		/* dev->irqfds, under dev->lock */
	struct pciem_dev *dev;
	struct eventfd_ctx *ctx;	/* referenced until freed */
	wait_queue_head_t *wqh;		/* the eventfd's wait queue */
	wait_queue_entry_t wait;
	poll_table pt;
	struct work_struct inject;
	u32 kind;
	u32 vector;
	bool deassert;
	bool dead;			/* unhooked: ignore, free soon */
};

static void irqfd_inject(struct work_struct *work)
{
	struct pciem_irqfd *f = container_of(work, struct pciem_irqfd, inject);
	struct pciem_dev *dev = f->dev;
	struct pciem_irq_inject req = {
		.vector = f->vector,
		.kind = f->kind,
	};

	if (f->kind == PCIEM_IRQ_INTX)
		req.flags = f->deassert ? PCIEM_IRQ_FLAG_DEASSERT :
			PCIEM_IRQ_FLAG_ASSERT;
	mutex_lock(&dev->lock);
	/* A refusal is explained in the log by the injection itself. */
	if (!pciem_link_check(dev, "irqfd"))
		pciem_irq_inject(dev, &req);
	mutex_unlock(&dev->lock);
}

/* The eventfd's wait-queue lock is held, interrupts are off. */
static int irqfd_wakeup(wait_queue_entry_t *wait, unsigned int mode, int sync,
			void *key)
{
	struct pciem_irqfd *f = container_of(wait, struct pciem_irqfd, wait);
	__poll_t events = key_to_poll(key);
	u64 cnt;

	if (events & EPOLLIN) {
		eventfd_ctx_do_read(f->ctx, &cnt);
		schedule_work(&f->inject);
	}
	if (events & EPOLLHUP) {
		/* The eventfd is being closed: detach and let the reaper free. */
		list_del_init(&wait->entry);
		WRITE_ONCE(f->dead, true);
		schedule_work(&f->dev->irqfd_reap);
	}
	return 0;
}

static void irqfd_queue_proc(struct file *file, wait_queue_head_t *wqh,
			     poll_table *pt)
{
	struct pciem_irqfd *f = container_of(pt, struct pciem_irqfd, pt);

	f->wqh = wqh;
	add_wait_queue(wqh, &f->wait);
}

/* Idempotent: the entry may already be off the queue (EPOLLHUP). */
static void irqfd_unhook(struct pciem_irqfd *f)
{
	unsigned long flags;

	if (!f->wqh)
		return;
	spin_lock_irqsave(&f->wqh->lock, flags);
	list_del_init(&f->wait.entry);
	spin_unlock_irqrestore(&f->wqh->lock, flags);
}

/* Called without dev->lock: the inject work takes it. */
static void irqfd_free_list(struct list_head *list)
{
	struct pciem_irqfd *f, *n;

	list_for_each_entry_safe(f, n, list, node) {
		irqfd_unhook(f);
		cancel_work_sync(&f->inject);
		eventfd_ctx_put(f->ctx);
		list_del(&f->node);
		kfree(f);
	}
}

static void irqfd_reap(struct work_struct *work)
{
	struct pciem_dev *dev = container_of(work, struct pciem_dev,
					     irqfd_reap);
	struct pciem_irqfd *f, *n;
	LIST_HEAD(dead);

	mutex_lock(&dev->lock);
	list_for_each_entry_safe(f, n, &dev->irqfds, node)
		if (READ_ONCE(f->dead))
			list_move(&f->node, &dead);
	mutex_unlock(&dev->lock);
	irqfd_free_list(&dead);
}

void pciem_irqfd_dev_init(struct pciem_dev *dev)
{
	INIT_LIST_HEAD(&dev->irqfds);
	INIT_WORK(&dev->irqfd_reap, irqfd_reap);
}

/* From the last release, dev->lock not held: nothing can bind any more. */
void pciem_irqfd_release_all(struct pciem_dev *dev)
{
	struct pciem_irqfd *f;
	LIST_HEAD(all);

	mutex_lock(&dev->lock);
	list_for_each_entry(f, &dev->irqfds, node)
		irqfd_unhook(f);
	list_splice_init(&dev->irqfds, &all);
	mutex_unlock(&dev->lock);
	/* Unhooked: no wakeup can queue the reaper again. */
	cancel_work_sync(&dev->irqfd_reap);
	irqfd_free_list(&all);
}

static int irqfd_err(int err, const char *why)
{
	pr_info_ratelimited("SET_IRQFD: %s\n", why);
	return err;
}

static int irqfd_check(const struct pciem_irqfd_config *cfg)
{
	u32 level = cfg->flags & (PCIEM_IRQFD_FLAG_LEVEL |
				  PCIEM_IRQFD_FLAG_DEASSERT);

	if (cfg->flags & ~(PCIEM_IRQFD_FLAG_LEVEL | PCIEM_IRQFD_FLAG_DEASSERT |
			   PCIEM_IRQFD_FLAG_REMOVE))
		return irqfd_err(-EINVAL, "unknown flags");
	switch (cfg->kind) {
	case PCIEM_IRQ_INTX:
		if (cfg->vector)
			return irqfd_err(-EINVAL, "INTx has only vector 0");
		if (cfg->flags & PCIEM_IRQFD_FLAG_REMOVE)
			return level == PCIEM_IRQFD_FLAG_LEVEL ||
				level == PCIEM_IRQFD_FLAG_DEASSERT || !level ? 0 :
				irqfd_err(-EINVAL, "LEVEL and DEASSERT together");
		if (level != PCIEM_IRQFD_FLAG_LEVEL &&
		    level != PCIEM_IRQFD_FLAG_DEASSERT)
			return irqfd_err(-EINVAL, "INTx is level-triggered: bind with exactly one of LEVEL (assert) or DEASSERT");
		return 0;
	case PCIEM_IRQ_MSI:
		if (cfg->vector >= PCIEM_MAX_MSI)
			return irqfd_err(-EINVAL, "MSI vector out of range (0..31)");
		break;
	case PCIEM_IRQ_AUTO:
	case PCIEM_IRQ_MSIX:
		if (cfg->vector >= PCIEM_MAX_MSIX)
			return irqfd_err(-EINVAL, "MSI-X entry out of range (0..2047)");
		break;
	default:
		return irqfd_err(-EINVAL, "unknown interrupt kind");
	}
	if (level)
		return irqfd_err(-EINVAL, "LEVEL and DEASSERT are for INTx only");
	return 0;
}

static struct pciem_irqfd *irqfd_find(struct pciem_dev *dev, u32 kind,
				      u32 vector, bool deassert,
				      unsigned int *live)
{
	struct pciem_irqfd *f, *found = NULL;

	*live = 0;
	list_for_each_entry(f, &dev->irqfds, node) {
		if (READ_ONCE(f->dead))
			continue;
		(*live)++;
		if (f->kind == kind && f->vector == vector &&
		    f->deassert == deassert)
			found = f;
	}
	return found;
}

/* dev->lock held. */
int pciem_irqfd_set(struct pciem_dev *dev, const struct pciem_irqfd_config *cfg)
{
	bool deassert = cfg->flags & PCIEM_IRQFD_FLAG_DEASSERT;
	struct pciem_irqfd *f;
	struct eventfd_ctx *ctx;
	unsigned int live;
	struct file *file;
	__poll_t events;
	int ret;

	lockdep_assert_held(&dev->lock);
	ret = irqfd_check(cfg);
	if (ret)
		return ret;
	f = irqfd_find(dev, cfg->kind, cfg->vector, deassert, &live);
	if (cfg->flags & PCIEM_IRQFD_FLAG_REMOVE) {
		if (!f)
			return irqfd_err(-ENOENT, "REMOVE: nothing is bound to that interrupt");
		irqfd_unhook(f);
		WRITE_ONCE(f->dead, true);
		schedule_work(&dev->irqfd_reap);
		return 0;
	}
	if (f)
		return irqfd_err(-EBUSY, "an eventfd is already bound to that interrupt (REMOVE it first)");
	if (live >= PCIEM_MAX_IRQFDS)
		return irqfd_err(-ENOSPC, "too many bindings on this device");

	file = fget(cfg->eventfd);
	if (!file)
		return irqfd_err(-EBADF, "eventfd is not an open file descriptor");
	ctx = eventfd_ctx_fileget(file);
	if (IS_ERR(ctx)) {
		fput(file);
		return irqfd_err(PTR_ERR(ctx), "the file descriptor is not an eventfd");
	}
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f) {
		eventfd_ctx_put(ctx);
		fput(file);
		return -ENOMEM;
	}
	f->dev = dev;
	f->ctx = ctx;
	f->kind = cfg->kind;
	f->vector = cfg->vector;
	f->deassert = deassert;
	INIT_WORK(&f->inject, irqfd_inject);
	init_waitqueue_func_entry(&f->wait, irqfd_wakeup);
	init_poll_funcptr(&f->pt, irqfd_queue_proc);
	list_add_tail(&f->node, &dev->irqfds);

	events = vfs_poll(file, &f->pt);
	fput(file);
	if (!f->wqh) {
		/* eventfd_poll() always queues; be safe if it did not. */
		list_del(&f->node);
		eventfd_ctx_put(ctx);
		kfree(f);
		return irqfd_err(-EINVAL, "the eventfd cannot be waited on");
	}
	/* Signalled before it was bound: deliver, as KVM does. */
	if (events & EPOLLIN)
		schedule_work(&f->inject);
	return 0;
}
