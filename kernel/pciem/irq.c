// SPDX-License-Identifier: GPL-2.0
/*
 * irq.c - interrupt injection: MSI, MSI-X and INTx.
 *
 * MSI and MSI-X: the driver allocated its vectors through the normal PCI/MSI
 * domain, so each vector is a Linux irq whose flow handler ends in the
 * driver's handler. An injected vector is marked in a bitmap and raised
 * from an irq_work, which runs in hard-irq context as generic_handle_irq()
 * requires for x86 vector-domain interrupts. The Linux irq of a vector is
 * looked up in process context (msi_get_virq() sleeps) and cached.
 *
 * MSI per-vector masks live in config space: a masked vector sets its
 * Pending bit and is delivered when a config write unmasks it, from the
 * unmask work (msix_poll, process context), where its Linux irq is looked
 * up again: the driver may have freed and re-allocated its vectors since
 * the injection, and the irq cached then would belong to someone else.
 *
 * MSI-X masks live in the vector table, which is BAR memory the driver
 * writes directly (nothing traps it). An entry injected while masked (or
 * while the Function Mask is set) gets its PBA bit set and is remembered in
 * msix_held; a delayed work re-reads the masks of the held entries every
 * PCIEM_MSIX_POLL_MS while any is held, and a config write to the MSI-X
 * control (Function Mask, Enable) re-checks at once. An unmasked held
 * entry has its PBA bit cleared and is delivered, as a real function does.
 *
 * INTx: the device gets a Linux irq of its own, from a small irq_chip of
 * this module with the level flow handler, handed to the PCI core by the
 * host bridge's map_irq. The line is level: while it is asserted, Interrupt
 * Disable is clear in the command register and the irq core has not masked
 * it, the flow handler runs; the core unmasks after the handler and, if the
 * line is still asserted, it runs again, as it would on a real wire. The
 * status register's Interrupt Status bit mirrors the line.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/io.h>
#include <linux/irq.h>
#include <linux/irqdesc.h>
#include <linux/msi.h>
#include <linux/slab.h>

#include "pciem_internal.h"

#define PCIEM_MSIX_POLL_MS	5

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
	if (dev->msix_raise) {
		for_each_set_bit(vec, dev->msix_raise, dev->msix_entries) {
			int virq;

			if (!test_and_clear_bit(vec, dev->msix_raise))
				continue;
			virq = READ_ONCE(dev->msix_virq[vec]);
			if (virq > 0 && generic_handle_irq(virq))
				pr_warn_ratelimited("MSI-X entry %u: irq %d has no handler any more\n",
						    vec, virq);
		}
	}
	if (test_and_clear_bit(0, &dev->intx_raise) && dev->intx_virq > 0)
		generic_handle_irq(dev->intx_virq);
}

static void pciem_msix_poll(struct work_struct *work);

void pciem_irq_dev_init(struct pciem_dev *dev)
{
	init_irq_work(&dev->irq_work, pciem_irq_fn);
	INIT_DELAYED_WORK(&dev->msix_poll, pciem_msix_poll);
}

static u16 pciem_command_locked(struct pciem_dev *dev)
{
	const char *reason = NULL;
	u32 cmd = 0;

	if (pciem_rs_cfg_read(dev->img, PCI_COMMAND, 2, &cmd, &reason))
		return 0;
	return cmd;
}

/* ---- INTx ------------------------------------------------------------ */

/* cfg_lock held: runs the flow handler if the line can be seen. */
static void pciem_intx_check_locked(struct pciem_dev *dev)
{
	lockdep_assert_held(&dev->cfg_lock);

	if (READ_ONCE(dev->irq_dead) || !dev->intx_line || dev->intx_masked)
		return;
	if (pciem_command_locked(dev) & PCI_COMMAND_INTX_DISABLE)
		return;
	set_bit(0, &dev->intx_raise);
	irq_work_queue(&dev->irq_work);
}

static void pciem_intx_set_line(struct pciem_dev *dev, bool asserted)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	dev->intx_line = asserted;
	pciem_rs_set_intx_status(dev->img, asserted);
	pciem_intx_check_locked(dev);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
}

/* irq chip callbacks: desc->lock held, interrupts off. */
static void pciem_intx_mask(struct irq_data *d)
{
	struct pciem_dev *dev = irq_data_get_irq_chip_data(d);
	unsigned long flags;

	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	dev->intx_masked = true;
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
}

static void pciem_intx_unmask(struct irq_data *d)
{
	struct pciem_dev *dev = irq_data_get_irq_chip_data(d);
	unsigned long flags;

	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	dev->intx_masked = false;
	/* A line still asserted after the handler fires again. */
	pciem_intx_check_locked(dev);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
}

static struct irq_chip pciem_intx_chip = {
	.name = "pciem-intx",
	.irq_mask = pciem_intx_mask,
	.irq_unmask = pciem_intx_unmask,
};

/* The host bridge's map_irq: the device's INTx is our irq. */
int pciem_irq_map_intx(const struct pci_dev *pdev, u8 slot, u8 pin)
{
	struct pciem_dev *dev = pciem_pdev_to_dev(pdev);

	return dev->intx_virq > 0 ? dev->intx_virq : -1;
}

static int pciem_intx_inject(struct pciem_dev *dev, u32 flags)
{
	if (flags & ~(PCIEM_IRQ_FLAG_ASSERT | PCIEM_IRQ_FLAG_DEASSERT) ||
	    flags == (PCIEM_IRQ_FLAG_ASSERT | PCIEM_IRQ_FLAG_DEASSERT)) {
		pr_info_ratelimited("INJECT_IRQ: INTx takes ASSERT or DEASSERT, not both, no other flag\n");
		return -EINVAL;
	}
	if (dev->intx_virq <= 0) {
		pr_info_ratelimited("INJECT_IRQ: the device has no interrupt pin (INTx)\n");
		return -EOPNOTSUPP;
	}
	pciem_intx_set_line(dev, !(flags & PCIEM_IRQ_FLAG_DEASSERT));
	return 0;
}

/* ---- MSI-X ----------------------------------------------------------- */

static void pciem_msix_raise(struct pciem_dev *dev, u32 entry, int virq)
{
	if (READ_ONCE(dev->irq_dead))
		return;
	WRITE_ONCE(dev->msix_virq[entry], virq);
	set_bit(entry, dev->msix_raise);
	irq_work_queue(&dev->irq_work);
}

/* Whether @entry is held in the PBA (pciem-core's rule, the mock's too). */
static bool pciem_msix_held(struct pciem_dev *dev, u32 entry,
			    bool function_mask)
{
	u32 ctrl = readl(dev->msix_table + entry * PCI_MSIX_ENTRY_SIZE +
			 PCI_MSIX_ENTRY_VECTOR_CTRL);

	return pciem_rs_msix_held(function_mask, ctrl);
}

/* dev->lock held: the PBA's 64-bit words are read-modify-written. */
static void pciem_msix_set_pba(struct pciem_dev *dev, u32 entry, bool set)
{
	void __iomem *word = dev->msix_pba + pciem_rs_msix_pba_word(entry);

	lockdep_assert_held(&dev->lock);
	writeq(pciem_rs_msix_pba_update(readq(word), entry, set), word);
}

static int pciem_msix_state(struct pciem_dev *dev, struct pciem_rs_msix *mx,
			    const char **reason)
{
	unsigned long flags;
	int ret;

	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	ret = pciem_rs_msix_state(dev->img, mx, reason);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	return ret;
}

/* dev->lock held. */
static int pciem_msix_inject(struct pciem_dev *dev, u32 entry)
{
	const char *reason = NULL;
	struct pciem_rs_msix mx;
	int ret, virq;

	lockdep_assert_held(&dev->lock);
	ret = pciem_msix_state(dev, &mx, &reason);
	if (ret) {
		pr_info_ratelimited("INJECT_IRQ: %s (%d)\n", reason, ret);
		return ret == -ENOENT ? -EOPNOTSUPP : ret;
	}
	if (!dev->msix_entries) {
		pr_info_ratelimited("INJECT_IRQ: the MSI-X table or PBA lies outside its BAR\n");
		return -EINVAL;
	}
	if (!mx.enabled || !dev->pdev->msix_enabled) {
		pr_info_ratelimited("INJECT_IRQ: the driver has not enabled MSI-X on %s\n",
				    pci_name(dev->pdev));
		return -EIO;
	}
	if (entry >= dev->msix_entries) {
		pr_info_ratelimited("INJECT_IRQ: MSI-X entry %u out of range, table has %u\n",
				    entry, dev->msix_entries);
		return -EINVAL;
	}
	virq = pci_irq_vector(dev->pdev, entry);
	if (virq <= 0) {
		pr_info_ratelimited("INJECT_IRQ: MSI-X entry %u has no Linux irq (%d)\n",
				    entry, virq);
		return -EIO;
	}
	if (pciem_msix_held(dev, entry, mx.function_mask)) {
		pciem_msix_set_pba(dev, entry, true);
		WRITE_ONCE(dev->msix_virq[entry], virq);
		set_bit(entry, dev->msix_held);
		if (!mx.function_mask)
			schedule_delayed_work(&dev->msix_poll,
					      msecs_to_jiffies(PCIEM_MSIX_POLL_MS));
		return 0;
	}
	pciem_msix_raise(dev, entry, virq);
	return 0;
}

static void pciem_irq_raise(struct pciem_dev *dev, u32 vector);

/*
 * Delivers the MSI vectors pending while masked that the driver has since
 * unmasked, each through the Linux irq it has now (pci_irq_vector() sleeps,
 * hence here and not in the config write). dev->lock held.
 */
static void pciem_msi_deliver_unmasked(struct pciem_dev *dev)
{
	unsigned long flags;
	u32 deliver, v;

	lockdep_assert_held(&dev->lock);
	if (!dev->pdev || !dev->pdev->msi_enabled)
		return;
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	deliver = pciem_rs_msi_take_unmasked(dev->img);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	for (v = 0; v < PCIEM_MAX_MSI; v++) {
		int virq;

		if (!(deliver & BIT(v)))
			continue;
		virq = pci_irq_vector(dev->pdev, v);
		if (virq <= 0)
			continue;
		WRITE_ONCE(dev->msi_virq[v], virq);
		pciem_irq_raise(dev, v);
	}
}

/*
 * The unmask work: delivers MSI vectors unmasked since they were held and
 * MSI-X entries that are no longer masked; re-arms while an MSI-X entry is
 * still held.
 */
static void pciem_msix_poll(struct work_struct *work)
{
	struct pciem_dev *dev = container_of(to_delayed_work(work),
					     struct pciem_dev, msix_poll);
	const char *reason = NULL;
	struct pciem_rs_msix mx;
	u32 entry;

	mutex_lock(&dev->lock);
	if (dev->state != PCIEM_REGISTERED || READ_ONCE(dev->irq_dead))
		goto out;
	pciem_msi_deliver_unmasked(dev);
	if (!dev->msix_entries)
		goto out;
	/* Disabled or function-masked: the config write that ends it kicks us. */
	if (pciem_msix_state(dev, &mx, &reason) || !mx.enabled ||
	    mx.function_mask || !dev->pdev->msix_enabled)
		goto out;
	for_each_set_bit(entry, dev->msix_held, dev->msix_entries) {
		int virq;

		if (pciem_msix_held(dev, entry, mx.function_mask))
			continue;
		virq = pci_irq_vector(dev->pdev, entry);
		pciem_msix_set_pba(dev, entry, false);
		clear_bit(entry, dev->msix_held);
		if (virq > 0)
			pciem_msix_raise(dev, entry, virq);
	}
	if (!bitmap_empty(dev->msix_held, dev->msix_entries))
		schedule_delayed_work(&dev->msix_poll,
				      msecs_to_jiffies(PCIEM_MSIX_POLL_MS));
out:
	mutex_unlock(&dev->lock);
}

/* ---- MSI ------------------------------------------------------------- */

static void pciem_irq_raise(struct pciem_dev *dev, u32 vector)
{
	if (READ_ONCE(dev->irq_dead) || vector >= PCIEM_MAX_MSI)
		return;
	set_bit(vector, &dev->irq_pending);
	irq_work_queue(&dev->irq_work);
}

/* dev->lock held. */
static int pciem_msi_inject(struct pciem_dev *dev, u32 vector)
{
	struct pciem_rs_msi msi;
	const char *reason = NULL;
	unsigned long flags;
	int ret, virq;
	u32 held;

	lockdep_assert_held(&dev->lock);
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
	if (vector >= msi.vectors_enabled || vector >= PCIEM_MAX_MSI) {
		pr_info_ratelimited("INJECT_IRQ: vector %u out of range, %u enabled\n",
				    vector, msi.vectors_enabled);
		return -EINVAL;
	}
	/* Looked up here: msi_get_virq() sleeps, unmask may not. */
	virq = pci_irq_vector(dev->pdev, vector);
	if (virq <= 0) {
		pr_info_ratelimited("INJECT_IRQ: vector %u has no Linux irq (%d)\n",
				    vector, virq);
		return -EIO;
	}
	WRITE_ONCE(dev->msi_virq[vector], virq);

	/* A masked vector is held, delivered by the unmask work. */
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	held = pciem_rs_msi_hold_if_masked(dev->img, vector);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (!held)
		pciem_irq_raise(dev, vector);
	return 0;
}

/* AUTO: whichever mechanism the driver enabled, chosen by pciem-core. */
static int pciem_irq_auto_kind(struct pciem_dev *dev, u32 vector, u32 *kind)
{
	const char *reason = NULL;
	struct pciem_rs_msix mx;
	struct pciem_rs_msi msi;
	unsigned long flags;
	bool msix_on, msi_on;
	int ret;

	msix_on = !pciem_msix_state(dev, &mx, &reason) && mx.enabled;
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	ret = pciem_rs_msi_state(dev->img, &msi, &reason);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	msi_on = !ret && msi.enabled;
	ret = pciem_rs_irq_auto(vector, msix_on, msi_on, dev->intx_virq > 0,
				kind, &reason);
	if (ret)
		pr_info_ratelimited("INJECT_IRQ: %s\n", reason);
	return ret;
}

/* Called with dev->lock held. */
int pciem_irq_inject(struct pciem_dev *dev, const struct pciem_irq_inject *req)
{
	u32 kind = req->kind;

	lockdep_assert_held(&dev->lock);
	if (req->reserved) {
		pr_info_ratelimited("INJECT_IRQ: reserved must be zero\n");
		return -EINVAL;
	}
	if (kind > PCIEM_IRQ_INTX) {
		pr_info_ratelimited("INJECT_IRQ: unknown kind %u\n", kind);
		return -EINVAL;
	}
	if (dev->state != PCIEM_REGISTERED || !dev->pdev) {
		pr_info_ratelimited("INJECT_IRQ: the device is not registered\n");
		return -ENODEV;
	}
	if (kind == PCIEM_IRQ_AUTO) {
		int ret = pciem_irq_auto_kind(dev, req->vector, &kind);

		if (ret)
			return ret;
	}
	if (kind == PCIEM_IRQ_INTX) {
		if (req->vector) {
			pr_info_ratelimited("INJECT_IRQ: INTx has only vector 0\n");
			return -EINVAL;
		}
		return pciem_intx_inject(dev, req->flags);
	}
	if (req->flags) {
		pr_info_ratelimited("INJECT_IRQ: flags are for INTx only\n");
		return -EINVAL;
	}
	if (kind == PCIEM_IRQ_MSIX)
		return pciem_msix_inject(dev, req->vector);
	return pciem_msi_inject(dev, req->vector);
}

/*
 * The host wrote config space (any context, cfg_lock not held). MSI vectors
 * pending while masked and now unmasked are delivered and their Pending
 * bits cleared; an MSI-X control write re-checks the held entries; a
 * command write may have cleared Interrupt Disable on an asserted line.
 */
void pciem_irq_config_written(struct pciem_dev *dev, u32 effects)
{
	const char *reason = NULL;
	struct pciem_rs_msi msi;
	unsigned long flags;
	bool unmasked = false;

	if (effects & PCIEM_RS_EFFECT_COMMAND) {
		raw_spin_lock_irqsave(&dev->cfg_lock, flags);
		pciem_intx_check_locked(dev);
		raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	}
	if (READ_ONCE(dev->irq_dead))
		return;
	if ((effects & PCIEM_RS_EFFECT_MSIX) && dev->msix_entries &&
	    !bitmap_empty(dev->msix_held, dev->msix_entries))
		mod_delayed_work(system_wq, &dev->msix_poll, 0);
	if (!(effects & PCIEM_RS_EFFECT_MSI))
		return;
	/* Any pending vector now unmasked: the unmask work delivers it. */
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	if (!pciem_rs_msi_state(dev->img, &msi, &reason) && msi.enabled &&
	    msi.per_vector_mask)
		unmasked = msi.pending & ~msi.mask;
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (unmasked)
		mod_delayed_work(system_wq, &dev->msix_poll, 0);
}

/*
 * The function reset (FLR or D3hot to D0), cfg_lock held: the line is
 * deasserted and nothing held while masked survives.
 */
void pciem_irq_reset_locked(struct pciem_dev *dev)
{
	u32 entry;

	lockdep_assert_held(&dev->cfg_lock);
	dev->intx_line = false;
	pciem_rs_set_intx_status(dev->img, 0);
	for (entry = 0; entry < dev->msix_entries; entry++)
		clear_bit(entry, dev->msix_held);
}

/* ---- lifetime -------------------------------------------------------- */

/*
 * Before the scan, dev->lock held, the region mapped: sizes the MSI-X
 * bookkeeping and gives an interrupt pin its irq. A table or PBA outside
 * its BAR leaves MSI-X unusable (INJECT_IRQ says why) but the device up.
 */
int pciem_irq_register(struct pciem_dev *dev)
{
	const char *reason = NULL;
	struct pciem_rs_msix mx;
	u32 pin = 0;
	int virq;

	lockdep_assert_held(&dev->lock);
	if (!pciem_rs_msix_state(dev->img, &mx, &reason)) {
		const struct pciem_bar *tb = &dev->bars[mx.table_bar % PCIEM_NUM_BARS];
		const struct pciem_bar *pb = &dev->bars[mx.pba_bar % PCIEM_NUM_BARS];
		u64 tlen = (u64)mx.table_size * PCI_MSIX_ENTRY_SIZE;
		u64 plen = DIV_ROUND_UP(mx.table_size, 64) * 8;

		if (mx.table_bar < PCIEM_NUM_BARS && mx.pba_bar < PCIEM_NUM_BARS &&
		    pciem_bar_kva(dev, mx.table_bar) &&
		    pciem_bar_kva(dev, mx.pba_bar) &&
		    (u64)mx.table_offset + tlen <= tb->size &&
		    (u64)mx.pba_offset + plen <= pb->size) {
			dev->msix_held = bitmap_zalloc(mx.table_size, GFP_KERNEL);
			dev->msix_raise = bitmap_zalloc(mx.table_size, GFP_KERNEL);
			dev->msix_virq = kcalloc(mx.table_size, sizeof(int),
						 GFP_KERNEL);
			if (!dev->msix_held || !dev->msix_raise ||
			    !dev->msix_virq) {
				pciem_irq_unregister(dev);
				return -ENOMEM;
			}
			dev->msix_table = pciem_bar_kva(dev, mx.table_bar) +
				mx.table_offset;
			dev->msix_pba = pciem_bar_kva(dev, mx.pba_bar) +
				mx.pba_offset;
			dev->msix_entries = mx.table_size;
		} else {
			pr_info("MSI-X table (BAR%u+0x%x) or PBA (BAR%u+0x%x) outside its BAR: MSI-X injection disabled\n",
				mx.table_bar, mx.table_offset, mx.pba_bar,
				mx.pba_offset);
		}
	}

	if (pciem_rs_cfg_read(dev->img, PCI_INTERRUPT_PIN, 1, &pin, &reason) ||
	    !pin)
		return 0;
	virq = irq_alloc_desc(NUMA_NO_NODE);
	if (virq < 0) {
		pciem_irq_unregister(dev);
		return virq;
	}
	dev->intx_masked = true;
	irq_set_chip_and_handler_name(virq, &pciem_intx_chip,
				      handle_level_irq, "level");
	irq_set_chip_data(virq, dev);
	dev->intx_virq = virq;
	return 0;
}

/* After the device left the bus (its driver freed its irqs). */
void pciem_irq_unregister(struct pciem_dev *dev)
{
	irq_work_sync(&dev->irq_work);
	if (dev->intx_virq > 0) {
		irq_free_desc(dev->intx_virq);
		dev->intx_virq = 0;
	}
	dev->msix_entries = 0;
	bitmap_free(dev->msix_held);
	bitmap_free(dev->msix_raise);
	kfree(dev->msix_virq);
	dev->msix_held = NULL;
	dev->msix_raise = NULL;
	dev->msix_virq = NULL;
}

/* No more injections after this returns. Called without dev->lock. */
void pciem_irq_stop(struct pciem_dev *dev)
{
	WRITE_ONCE(dev->irq_dead, true);
	/*
	 * Disabled, not only cancelled: a config write, a trapped MSI-X table
	 * store or the work itself that read irq_dead before it was set may
	 * queue it again, and after a mere cancel it would then run on a
	 * freed device. A disabled work is never queued again.
	 */
	disable_delayed_work_sync(&dev->msix_poll);
	irq_work_sync(&dev->irq_work);
	dev->irq_pending = 0;
}
