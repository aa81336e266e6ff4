// SPDX-License-Identifier: GPL-2.0
/*
 * bus.c - one virtual root bus per device, in a PCI domain of its own.
 *
 * Configuration cycles are answered from the device's image through the
 * Rust shim (the same code userspace uses), under dev->cfg_lock: x86 does
 * config access without a global lock, so the pci_ops must serialise
 * themselves, and they may run in any context (MSI masking runs in hard
 * irq context), hence a raw spinlock.
 *
 * The device's directly mapped BARs are laid out in one naturally aligned
 * run of the pool (largest first, so each stays naturally aligned) that is
 * also a memory window of the bridge; trapped BARs, backed by ordinary
 * pages, get a second window in free address space (see
 * pciem_trap_window_alloc()). They are programmed before the scan so that
 * the PCI core only has to claim them, which works with an e820-reserved
 * window where reassignment would not.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/idr.h>
#include <linux/io.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/pci.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>

#include "pciem_internal.h"

/* Domains below 0x10000 belong to real hardware (ACPI segments, VMD). */
#define PCIEM_DOMAIN_MIN	0x10000

static DEFINE_IDA(pciem_domain_ida);

static struct pciem_dev *bus_to_dev(struct pci_bus *bus)
{
	return container_of(bus->sysdata, struct pciem_dev, sysdata);
}

/* The bus number of the device: 1 below a root port (port.c), else 0. */
static unsigned int pciem_dev_busnr(const struct pciem_dev *dev)
{
	return dev->port_img ? 1 : 0;
}

/* Function 0 of the root port's bus, when there is a port. */
static bool pciem_is_port(const struct pciem_dev *dev, struct pci_bus *bus,
			  unsigned int devfn)
{
	return dev->port_img && bus->number == 0 && devfn == 0;
}

static void pciem_cfg_reset_locked(struct pciem_dev *dev);

/*
 * The root port's configuration space. Its one device-side effect: a
 * Secondary Bus Reset resets the device below (a RESET event, data
 * PCIEM_RESET_BUS).
 */
static int pciem_port_cfg(struct pciem_dev *dev, bool write, int where,
			  int size, u32 *val)
{
	const char *reason = NULL;
	unsigned long flags;
	u32 effects = 0;
	int ret;

	u32 bctl_old = 0, bctl_new = 0;
	bool bus_reset;

	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	if (write) {
		pciem_rs_cfg_read(dev->port_img, PCI_BRIDGE_CONTROL, 2,
				  &bctl_old, &reason);
		ret = pciem_rs_cfg_write(dev->port_img, where, size, *val,
					 &effects, &reason);
		pciem_rs_cfg_read(dev->port_img, PCI_BRIDGE_CONTROL, 2,
				  &bctl_new, &reason);
	} else {
		ret = pciem_rs_cfg_read(dev->port_img, where, size, val,
					&reason);
	}
	/* Secondary Bus Reset rising: the device below is reset. */
	bus_reset = write && !ret && !(bctl_old & PCI_BRIDGE_CTL_BUS_RESET) &&
		(bctl_new & PCI_BRIDGE_CTL_BUS_RESET);
	if (bus_reset && !READ_ONCE(dev->link_down))
		pciem_cfg_reset_locked(dev);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (bus_reset && !READ_ONCE(dev->link_down)) {
		struct pciem_event ev = {
			.type = PCIEM_EVENT_RESET,
			.data = PCIEM_RESET_BUS,
			.timestamp_ns = ktime_get_mono_fast_ns(),
		};

		pciem_ring_push(dev, &ev);
	}
	if (ret) {
		pr_warn_ratelimited("root port: config %s of %d bytes at 0x%x refused: %s (%d)\n",
				    write ? "write" : "read", size, where, reason,
				    ret);
		if (!write)
			PCI_SET_ERROR_RESPONSE(val);
		return PCIBIOS_BAD_REGISTER_NUMBER;
	}
	return PCIBIOS_SUCCESSFUL;
}

/*
 * The function at @devfn of the device's bus: slot 0, function 0 or one
 * that SET_FUNCTION described; NULL for anything else.
 */
static struct pciem_dev *pciem_bus_fn(struct pciem_dev *dev,
				      struct pci_bus *bus, unsigned int devfn)
{
	unsigned int fn = PCI_FUNC(devfn);

	if (bus->number != pciem_dev_busnr(dev) || PCI_SLOT(devfn) != 0)
		return NULL;
	return fn ? dev->fns[fn] : dev;
}

static int pciem_cfg_read(struct pci_bus *bus, unsigned int devfn, int where,
			  int size, u32 *val)
{
	struct pciem_dev *dev = bus_to_dev(bus);
	struct pciem_dev *f;
	const char *reason = NULL;
	unsigned long flags;
	int ret;

	if (where < 0) {
		PCI_SET_ERROR_RESPONSE(val);
		return PCIBIOS_DEVICE_NOT_FOUND;
	}
	if (pciem_is_port(dev, bus, devfn))
		return pciem_port_cfg(dev, false, where, size, val);
	f = pciem_bus_fn(dev, bus, devfn);
	if (!f) {
		PCI_SET_ERROR_RESPONSE(val);
		return PCIBIOS_DEVICE_NOT_FOUND;
	}
	/* Surprise-removed: what a root port answers for a dead link. */
	if (READ_ONCE(dev->link_down)) {
		PCI_SET_ERROR_RESPONSE(val);
		return PCIBIOS_SUCCESSFUL;
	}
	dev = f;
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	ret = pciem_rs_cfg_read(dev->img, where, size, val, &reason);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (ret) {
		pr_warn_ratelimited("config read of %d bytes at 0x%x refused: %s (%d)\n",
				    size, where, reason, ret);
		PCI_SET_ERROR_RESPONSE(val);
		return PCIBIOS_BAD_REGISTER_NUMBER;
	}
	return PCIBIOS_SUCCESSFUL;
}

static void pciem_cfg_event(struct pciem_dev *dev, int where, int size,
			    u32 val, u32 effects)
{
	struct pciem_event ev = {
		.type = PCIEM_EVENT_CONFIG_WRITE,
		.offset = where,
		.data = val,
		.size = size,
		.flags = PCIEM_EVENT_FLAG_POSTED,
		.timestamp_ns = ktime_get_mono_fast_ns(),
	};

	if (effects & PCIEM_RS_EFFECT_CHANGED)
		pciem_ring_push(dev, &ev);
	/*
	 * A reset keys on the request alone: pcie_flr() writes Initiate FLR,
	 * a bit that always reads 0, so nothing in the image changes.
	 */
	if (effects & PCIEM_RS_EFFECT_FLR) {
		ev.type = PCIEM_EVENT_RESET;
		ev.offset = 0;
		ev.size = 0;
		ev.data = PCIEM_RESET_FLR;
		pciem_ring_push(dev, &ev);
	}
	if (effects & PCIEM_RS_EFFECT_D3HOT_TO_D0) {
		ev.type = PCIEM_EVENT_RESET;
		ev.offset = 0;
		ev.size = 0;
		ev.data = PCIEM_RESET_D3HOT_D0;
		pciem_ring_push(dev, &ev);
	}
}

/*
 * cfg_lock held: the function resets to the configuration it was
 * registered with, except that the BARs keep their addresses (pciem-core's
 * rule, the mock backend's too), and the interrupt state held while masked
 * is dropped.
 */
static void pciem_cfg_reset_locked(struct pciem_dev *dev)
{
	lockdep_assert_held(&dev->cfg_lock);
	if (!dev->img_initial)
		return;
	pciem_rs_cfg_reset(dev->img, dev->img_initial);
	pciem_irq_reset_locked(dev);
}

static int pciem_cfg_write(struct pci_bus *bus, unsigned int devfn, int where,
			   int size, u32 val)
{
	struct pciem_dev *dev = bus_to_dev(bus);
	struct pciem_dev *f;
	const char *reason = NULL;
	unsigned long flags;
	u32 effects = 0;
	int ret;

	if (where < 0)
		return PCIBIOS_DEVICE_NOT_FOUND;
	if (pciem_is_port(dev, bus, devfn))
		return pciem_port_cfg(dev, true, where, size, &val);
	f = pciem_bus_fn(dev, bus, devfn);
	if (!f)
		return PCIBIOS_DEVICE_NOT_FOUND;
	/* Surprise-removed: the write goes nowhere, as on a dead link. */
	if (READ_ONCE(dev->link_down))
		return PCIBIOS_SUCCESSFUL;
	dev = f;
	raw_spin_lock_irqsave(&dev->cfg_lock, flags);
	ret = pciem_rs_cfg_write(dev->img, where, size, val, &effects, &reason);
	if (!ret && (effects & (PCIEM_RS_EFFECT_FLR |
				PCIEM_RS_EFFECT_D3HOT_TO_D0)))
		pciem_cfg_reset_locked(dev);
	raw_spin_unlock_irqrestore(&dev->cfg_lock, flags);
	if (ret) {
		pr_warn_ratelimited("config write of %d bytes at 0x%x refused: %s (%d)\n",
				    size, where, reason, ret);
		return PCIBIOS_BAD_REGISTER_NUMBER;
	}
	pciem_cfg_event(dev, where, size, val, effects);
	pciem_irq_config_written(dev, effects);
	return PCIBIOS_SUCCESSFUL;
}

static struct pci_ops pciem_pci_ops = {
	.read = pciem_cfg_read,
	.write = pciem_cfg_write,
};

static int bar_cmp_desc(const void *a, const void *b)
{
	const struct pciem_bar *x = *(const struct pciem_bar * const *)a;
	const struct pciem_bar *y = *(const struct pciem_bar * const *)b;

	return x->size < y->size ? 1 : (x->size > y->size ? -1 : 0);
}

/* sysfs pciem_trap on the PCI device: what trap mode did for it. */
static ssize_t pciem_trap_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	return pciem_trap_stats_show(pciem_pdev_to_dev(to_pci_dev(d)), buf);
}
static DEVICE_ATTR_RO(pciem_trap);

/* sysfs pciem_dma_check on the PCI device: the DMA checker's counters. */
static ssize_t pciem_dma_check_show(struct device *d,
				    struct device_attribute *attr, char *buf)
{
	return pciem_dmac_show(pciem_pdev_to_dev(to_pci_dev(d)), buf);
}
static DEVICE_ATTR_RO(pciem_dma_check);

/* Gives @n BARs (largest first) consecutive naturally aligned addresses. */
static void pciem_place_bars(struct pciem_bar **order, int n, phys_addr_t base)
{
	u64 off = 0;
	int i;

	for (i = 0; i < n; i++) {
		order[i]->phys = base + off;
		off += max_t(u64, order[i]->size, PAGE_SIZE);
	}
}

/*
 * Bus addresses for the trapped BARs: address space with no RAM and no
 * other resource behind it, above 4 GiB, so no memmap= carve-out is needed
 * (the backing is ordinary pages). A 32-bit trapped BAR takes its address
 * from the pool instead, since free space below 4 GiB cannot be told
 * apart from firmware's unclaimed MMIO.
 */
static int pciem_trap_window_alloc(struct pciem_dev *dev, u64 size, u64 align,
				   bool need32, bool pool_ok)
{
	struct resource *w = &dev->trap_window;
	phys_addr_t phys;
	int ret;

	w->name = "pciem trap window";
	w->flags = IORESOURCE_MEM;
	if (!need32) {
		ret = allocate_resource(&iomem_resource, w, size, SZ_4G,
					(1ULL << boot_cpu_data.x86_phys_bits) - 1,
					align, NULL, NULL);
		if (!ret && region_intersects(w->start, size,
					      IORESOURCE_SYSTEM_RAM,
					      IORES_DESC_NONE) != REGION_DISJOINT) {
			release_resource(w);
			ret = -EADDRINUSE;
		}
		if (!ret)
			return 0;
		if (!pool_ok)
			return ret;
		pr_info("no free address space above 4 GiB for the trapped BARs (%d); trying the pool\n",
			ret);
	}
	if (!pciem_pool_ready()) {
		pr_err("trapped BARs: %s, and pciem.ko has no BAR pool (load it with phys_region=)\n",
		       need32 ? "a 32-bit BAR needs an address below 4 GiB (make it 64-bit)" :
		       "no free address space above 4 GiB");
		return -ENOSPC;
	}
	ret = pciem_pool_alloc(size, align, &phys);
	if (ret)
		return ret;
	w->start = phys;
	w->end = phys + size - 1;
	dev->trap_from_pool = true;
	return 0;
}

static void pciem_trap_window_free(struct pciem_dev *dev)
{
	struct resource *w = &dev->trap_window;

	if (!w->end)
		return;
	if (dev->trap_from_pool) {
		if (w->parent)
			release_resource(w);
		pciem_pool_free(w->start, resource_size(w));
	} else {
		release_resource(w);
	}
	memset(w, 0, sizeof(*w));
	dev->trap_from_pool = false;
}

static void pciem_free_backing(struct pciem_dev *dev)
{
	int i;

	for (i = 0; i < PCIEM_NUM_BARS; i++) {
		vfree(dev->bars[i].backing);
		dev->bars[i].backing = NULL;
	}
}

/*
 * Reads the BARs from the image. Directly mapped (watch-mode) BARs go into
 * one pool region; trapped BARs into a window of their own and are backed
 * by zeroed pages.
 */
static int pciem_layout_bars(struct pciem_dev *dev)
{
	struct pciem_bar *pool_bars[PCIEM_NUM_BARS], *trap_bars[PCIEM_NUM_BARS];
	u64 pool_total = 0, pool_align = PAGE_SIZE;
	u64 trap_total = 0, trap_align = PAGE_SIZE;
	const char *reason = NULL;
	int i, np = 0, nt = 0, ret;
	bool trap32 = false, fold = false, have_window = false;

	memset(dev->bars, 0, sizeof(dev->bars));
	for (i = 0; i < PCIEM_NUM_BARS; i++) {
		struct pciem_bar *bar = &dev->bars[i];
		u64 size, span;
		u32 flags;

		ret = pciem_rs_bar_info(dev->img, i, &size, &flags, &reason);
		if (ret == -ENOENT)
			continue;
		if (ret) {
			pr_err("BAR%d: %s (%d)\n", i, reason, ret);
			return ret;
		}
		if (flags & PCIEM_BAR_SPACE_IO) {
			pr_err("BAR%d: I/O BARs cannot be backed by the pool\n", i);
			return -EINVAL;
		}
		if (!size || !is_power_of_2(size)) {
			pr_err("BAR%d: size %llu is not a power of two\n", i, size);
			return -EINVAL;
		}
		bar->size = size;
		bar->flags = flags;
		/* Page granularity, so each BAR can be mmapped alone. */
		span = max_t(u64, size, PAGE_SIZE);
		if (dev->bar_mode[i] == PCIEM_BAR_MODE_TRAP) {
			if (trap_total + span < trap_total)
				return -EOVERFLOW;
			trap_total += span;
			trap_align = max(trap_align, span);
			trap32 |= !(flags & PCIEM_BAR_MEM_TYPE_64);
			trap_bars[nt++] = bar;
		} else {
			if (pool_total + span < pool_total)
				return -EOVERFLOW;
			pool_total += span;
			pool_align = max(pool_align, span);
			pool_bars[np++] = bar;
		}
	}
	if (!np && !nt) {
		pr_err("the device has no memory BAR\n");
		return -EINVAL;
	}
	/*
	 * Trapped BARs whose addresses must come from the pool share the
	 * directly mapped BARs' pool window instead of a second pool window:
	 * two pool windows can be adjacent, and pci_register_host_bridge()
	 * coalesces adjacent bridge windows, releasing one of our resources
	 * behind our back (release_resource() of a resource with no parent
	 * at removal: an oops; and the pool range freed twice).
	 */
	/* Below a root port, one 32-bit window forwards them all. */
	if (dev->want_port && nt)
		fold = true;
	if (nt && np && !fold) {
		if (!trap32 && !pciem_trap_window_alloc(dev, trap_total,
							trap_align, false,
							false))
			have_window = true;
		else
			fold = true;
	}
	if (fold) {
		if (pool_total + trap_total < pool_total)
			return -EOVERFLOW;
		for (i = 0; i < nt; i++)
			pool_bars[np++] = trap_bars[i];
		pool_total += trap_total;
		pool_align = max(pool_align, trap_align);
	}
	if (dev->want_port) {
		pool_align = max_t(u64, pool_align, SZ_1M);
		pool_total = ALIGN(pool_total, SZ_1M);
	}
	sort(pool_bars, np, sizeof(pool_bars[0]), bar_cmp_desc, NULL);
	sort(trap_bars, nt, sizeof(trap_bars[0]), bar_cmp_desc, NULL);

	if (np) {
		if (!pciem_pool_ready()) {
			pr_err("BAR%ld is not trapped, so it needs the BAR pool, and pciem.ko was loaded without phys_region=\n",
			       (long)(pool_bars[0] - dev->bars));
			return -ENOSPC;
		}
		/*
		 * The functions of one device each have a window on one
		 * bridge: a page after each keeps them apart (adjacent
		 * windows are merged, as with the trap window above).
		 */
		dev->region_guard = dev->fn0 || pciem_fn_multi(dev) ?
			PAGE_SIZE : 0;
		ret = pciem_pool_alloc(PAGE_ALIGN(pool_total) + dev->region_guard,
				       pool_align, &dev->region_phys);
		if (ret)
			goto err_free;
		dev->region_size = PAGE_ALIGN(pool_total);
		pciem_place_bars(pool_bars, np, dev->region_phys);
	}
	if (nt) {
		if (!fold) {
			if (!have_window) {
				ret = pciem_trap_window_alloc(dev, trap_total,
							      trap_align,
							      trap32, true);
				if (ret)
					goto err_free;
			}
			pciem_place_bars(trap_bars, nt,
					 dev->trap_window.start);
		}
		for (i = 0; i < nt; i++) {
			trap_bars[i]->backing =
				vmalloc_user(max_t(u64, trap_bars[i]->size,
						   PAGE_SIZE));
			if (!trap_bars[i]->backing) {
				ret = -ENOMEM;
				goto err_free;
			}
		}
	}
	for (i = 0; i < PCIEM_NUM_BARS; i++) {
		struct pciem_bar *bar = &dev->bars[i];

		if (!bar->size)
			continue;
		if (!(bar->flags & PCIEM_BAR_MEM_TYPE_64) &&
		    bar->phys + bar->size - 1 > U32_MAX) {
			pr_err("BAR%d: 32-bit BAR but its address lies above 4 GiB\n",
			       i);
			ret = -ERANGE;
			goto err_free;
		}
		ret = pciem_rs_bar_set_address(dev->img, i, bar->phys, &reason);
		if (ret) {
			pr_err("BAR%d: cannot program address: %s (%d)\n", i,
			       reason, ret);
			goto err_free;
		}
	}
	return 0;

err_free:
	pciem_free_backing(dev);
	pciem_trap_window_free(dev);
	if (dev->region_size)
		pciem_pool_free(dev->region_phys,
				dev->region_size + dev->region_guard);
	dev->region_size = 0;
	return ret;
}

/* The kernel address of BAR @i's first byte (its backing). */
void __iomem *pciem_bar_kva(struct pciem_dev *dev, u32 i)
{
	struct pciem_bar *bar = &dev->bars[i];

	if (bar->backing)
		return (void __iomem __force *)bar->backing;
	if (!dev->region_kva || !bar->size)
		return NULL;
	return dev->region_kva + (bar->phys - dev->region_phys);
}

/*
 * Inserts a pool window into /proc/iomem. insert_resource() descends
 * through the pool and memmap's "Reserved" entry, whichever nests in
 * which. A window spanning one of them exactly would adopt it as a child
 * and then block the BARs.
 */
static int pciem_insert_window(struct resource *w)
{
	int ret = insert_resource(&iomem_resource, w);

	if (ret) {
		pr_err("window %pR conflicts in /proc/iomem (%d)\n", w, ret);
		return ret;
	}
	if (w->child) {
		pr_err("window %pR would swallow %pR: make phys_region= larger than the device's BARs\n",
		       w, w->child);
		remove_resource(w);
		return -ENOSPC;
	}
	return 0;
}

static void pciem_free_bars(struct pciem_dev *dev);

/* The pool may hold whatever a previous device or boot left: zero it. */
static int pciem_clear_region(struct pciem_dev *dev)
{
	void __iomem *p = ioremap(dev->region_phys, dev->region_size);

	if (!p)
		return -ENOMEM;
	memset_io(p, 0, dev->region_size);
	iounmap(p);
	return 0;
}

static void pciem_bus_unmap(struct pciem_dev *dev)
{
	if (dev->region_kva)
		iounmap(dev->region_kva);
	dev->region_kva = NULL;
	vfree(dev->img_initial);
	dev->img_initial = NULL;
}

/*
 * One function's share of REGISTER: its BARs laid out and cleared, its
 * image saved for resets, its interrupts and its pool windows. Undone by
 * pciem_fn_unprepare().
 */
static int pciem_fn_prepare(struct pciem_dev *dev)
{
	int ret;

	ret = pciem_layout_bars(dev);
	if (ret)
		return ret;
	ret = pciem_trap_check_layout(dev);
	if (ret)
		goto err_region;
	if (dev->region_size) {
		ret = pciem_clear_region(dev);
		if (ret)
			goto err_region;
		/*
		 * Mapped now, before the tracer is published, so that this
		 * mapping is never taken for the driver's: MSI-X reads its
		 * table and PBA here.
		 */
		dev->region_kva = ioremap(dev->region_phys, dev->region_size);
		if (!dev->region_kva) {
			ret = -ENOMEM;
			goto err_map;
		}
	}
	dev->img_initial = vmalloc(sizeof(*dev->img_initial));
	if (!dev->img_initial) {
		ret = -ENOMEM;
		goto err_map;
	}
	memcpy(dev->img_initial, dev->img, sizeof(*dev->img));
	ret = pciem_irq_register(dev);
	if (ret)
		goto err_map;
	if (dev->region_size) {
		dev->window.name = "pciem window";
		dev->window.start = dev->region_phys;
		dev->window.end = dev->region_phys + dev->region_size - 1;
		dev->window.flags = IORESOURCE_MEM;
		ret = pciem_insert_window(&dev->window);
		if (ret)
			goto err_irq;
	}
	if (dev->trap_from_pool) {
		ret = pciem_insert_window(&dev->trap_window);
		if (ret)
			goto err_window;
	}
	return 0;

err_window:
	if (dev->region_size)
		release_resource(&dev->window);
err_irq:
	pciem_irq_unregister(dev);
err_map:
	pciem_bus_unmap(dev);
err_region:
	pciem_free_bars(dev);
	return ret;
}

/* Undoes pciem_fn_prepare(), once the function is off the bus. */
static void pciem_fn_unprepare(struct pciem_dev *dev)
{
	if (dev->trap_from_pool && dev->trap_window.parent)
		release_resource(&dev->trap_window);
	if (dev->region_size)
		release_resource(&dev->window);
	pciem_irq_unregister(dev);
	pciem_bus_unmap(dev);
	pciem_free_bars(dev);
}

/* The bridge forwards every function's windows. */
static void pciem_add_windows(struct pciem_dev *dev,
			      struct pci_host_bridge *bridge)
{
	struct pciem_dev *f;
	int i;

	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++) {
		f = pciem_fn(dev, i);
		if (!f)
			continue;
		if (f->region_size)
			pci_add_resource(&bridge->windows, &f->window);
		if (f->trap_window.end)
			pci_add_resource(&bridge->windows, &f->trap_window);
	}
}

/* After the scan: each function's pci_dev, NULL if one did not answer. */
static struct pciem_dev *pciem_find_pdevs(struct pciem_dev *dev)
{
	struct pciem_dev *f;
	int i;

	if (dev->port_img) {
		dev->port_pdev = pci_get_slot(dev->bus, PCI_DEVFN(0, 0));
		if (dev->port_pdev && dev->port_pdev->subordinate)
			dev->pdev = pci_get_slot(dev->port_pdev->subordinate,
						 PCI_DEVFN(0, 0));
		return dev->pdev ? NULL : dev;
	}
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++) {
		f = pciem_fn(dev, i);
		if (!f)
			continue;
		f->pdev = pci_get_slot(dev->bus, PCI_DEVFN(0, i));
		if (!f->pdev)
			return f;
	}
	return NULL;
}

static void pciem_put_pdevs(struct pciem_dev *dev)
{
	struct pciem_dev *f;
	int i;

	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++) {
		f = pciem_fn(dev, i);
		if (!f)
			continue;
		pci_dev_put(f->pdev);
		f->pdev = NULL;
	}
	pci_dev_put(dev->port_pdev);
	dev->port_pdev = NULL;
}

/* sysfs files of one function's pci_dev. */
static void pciem_add_files(struct pciem_dev *f)
{
	if (device_create_file(&f->pdev->dev, &dev_attr_pciem_trap))
		pr_warn("%s: no pciem_trap statistics in sysfs\n",
			pci_name(f->pdev));
	if (device_create_file(&f->pdev->dev, &dev_attr_pciem_dma_check))
		pr_warn("%s: no pciem_dma_check statistics in sysfs\n",
			pci_name(f->pdev));
}

/*
 * Puts the device on a new root bus. Called with dev->lock held, before
 * the device is published to the ioremap tracer (the clearing ioremap
 * above must not be mistaken for the driver's). Functions 1..7, if any,
 * are on the same bus at devfn 1..7 of slot 0.
 */
int pciem_bus_register(struct pciem_dev *dev)
{
	struct pci_host_bridge *bridge;
	struct pciem_dev *f, *missing;
	int i, ret;

	lockdep_assert_held(&dev->lock);
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++) {
		f = pciem_fn(dev, i);
		if (!f)
			continue;
		ret = pciem_fn_prepare(f);
		if (ret)
			goto err_fns;
	}
	/* Every function is prepared now: undo them all on failure. */
	i = PCIEM_MAX_FUNCTIONS;

	dev->domain = ida_alloc_range(&pciem_domain_ida, PCIEM_DOMAIN_MIN,
				      INT_MAX, GFP_KERNEL);
	if (dev->domain < 0) {
		ret = dev->domain;
		goto err_fns;
	}
	if (dev->want_port) {
		ret = pciem_port_build(dev);
		if (ret)
			goto err_domain;
	}
	dev->busn.name = "pciem bus";
	dev->busn.start = 0;
	dev->busn.end = pciem_dev_busnr(dev);
	dev->busn.flags = IORESOURCE_BUS;

	dev->sysdata.domain = dev->domain;
	dev->sysdata.node = NUMA_NO_NODE;

	bridge = pci_alloc_host_bridge(0);
	if (!bridge) {
		ret = -ENOMEM;
		goto err_port;
	}
	bridge->sysdata = &dev->sysdata;
	bridge->ops = &pciem_pci_ops;
	bridge->map_irq = pciem_irq_map_intx;
	bridge->busnr = 0;
	pciem_add_windows(dev, bridge);
	pci_add_resource(&bridge->windows, &dev->busn);

	pci_lock_rescan_remove();
	ret = pci_scan_root_bus_bridge(bridge);
	if (ret) {
		pci_unlock_rescan_remove();
		pr_err("domain %04x: scanning the root bus failed (%d)\n",
		       dev->domain, ret);
		/*
		 * Before device_add() the bridge is still ours; after it the
		 * core has already dropped it. Only the first can happen with
		 * a domain number nobody else uses.
		 */
		pci_free_host_bridge(bridge);
		goto err_port;
	}
	dev->bus = bridge->bus;
	missing = pciem_find_pdevs(dev);
	if (missing) {
		pr_err("domain %04x: function %u did not answer the scan\n",
		       dev->domain, missing->fn_nr);
		pciem_put_pdevs(dev);
		pci_stop_root_bus(dev->bus);
		pci_remove_root_bus(dev->bus);
		pci_unlock_rescan_remove();
		/* The bridge's last reference is ours: see unregister. */
		pci_free_host_bridge(bridge);
		dev->bus = NULL;
		ret = -ENODEV;
		goto err_port;
	}
	pci_bus_claim_resources(dev->bus);
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++) {
		f = pciem_fn(dev, i);
		if (!f)
			continue;
		/* Before any driver can map: its mappings must all be recorded. */
		pciem_dmac_attach(f);
		/* The tracer must know the BARs before a driver can probe. */
		pciem_watch_publish(f);
		f->state = PCIEM_REGISTERED;
	}
	/*
	 * A device with a trapped BAR waits for START: its driver's probe
	 * will wait on the model, which must be running by then.
	 */
	if (!pciem_fn_any_trapped(dev))
		pci_bus_add_devices(dev->bus);
	pci_unlock_rescan_remove();
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++)
		if (pciem_fn(dev, i))
			pciem_add_files(pciem_fn(dev, i));

	if (dev->port_pdev)
		pr_info("device %s registered below root port %s, window %pR\n",
			pci_name(dev->pdev), pci_name(dev->port_pdev),
			&dev->window);
	else if (dev->trap_window.end)
		pr_info("device %s registered on its own root bus, trapped BARs in %pR%s\n",
			pci_name(dev->pdev), &dev->trap_window,
			dev->region_size ? ", the others in the pool" : "");
	else
		pr_info("device %s registered on its own root bus, window %pR\n",
			pci_name(dev->pdev), &dev->window);
	for (i = 1; i < PCIEM_MAX_FUNCTIONS; i++)
		if (dev->fns[i])
			pr_info("function %s registered, window %pR\n",
				pci_name(dev->fns[i]->pdev),
				&dev->fns[i]->window);
	return 0;

err_port:
	pciem_port_free(dev);
err_domain:
	ida_free(&pciem_domain_ida, dev->domain);
err_fns:
	/* Functions below @i were prepared. */
	while (i-- > 0) {
		f = pciem_fn(dev, i);
		if (f)
			pciem_fn_unprepare(f);
	}
	return ret;
}

/* Gives back what pciem_layout_bars() took: pool ranges, window, pages. */
static void pciem_free_bars(struct pciem_dev *dev)
{
	pciem_free_backing(dev);
	pciem_trap_window_free(dev);
	if (dev->region_size)
		pciem_pool_free(dev->region_phys,
				dev->region_size + dev->region_guard);
	dev->region_size = 0;
}

/*
 * Removes our sysfs files from the PCI device, before it is removed (after,
 * its directory is gone). Under the rescan lock, with dev->removed false.
 */
void pciem_bus_remove_files(struct pciem_dev *dev)
{
	device_remove_file(&dev->pdev->dev, &dev_attr_pciem_trap);
	device_remove_file(&dev->pdev->dev, &dev_attr_pciem_dma_check);
}

/*
 * Hot-removes the device (the bound drivers' remove() runs) and frees the
 * bus, domain and pool ranges of every function. Called from the last
 * release, may sleep.
 */
void pciem_bus_unregister(struct pciem_dev *dev)
{
	struct pci_host_bridge *bridge;
	struct pciem_dev *f;
	int i;

	if (!dev->bus)
		return;
	bridge = to_pci_host_bridge(dev->bus->bridge);
	pci_lock_rescan_remove();
	/*
	 * A surprise removal (fault.c, or pciehp below our root port), or a
	 * sysfs remove of one function, already took the device and its files.
	 */
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++) {
		f = pciem_fn(dev, i);
		if (f && device_is_registered(&f->pdev->dev))
			pciem_bus_remove_files(f);
	}
	pci_stop_root_bus(dev->bus);
	pciem_put_pdevs(dev);
	pci_remove_root_bus(dev->bus);
	pci_unlock_rescan_remove();
	/*
	 * pci_remove_root_bus() only device_del()s the host bridge; the
	 * reference from pci_alloc_host_bridge() is ours to drop, or every
	 * device would leak its bridge (~1.7 KiB of slab, seen by
	 * vmtest-stress).
	 */
	pci_free_host_bridge(bridge);
	dev->bus = NULL;
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++) {
		f = pciem_fn(dev, i);
		if (!f)
			continue;
		/* The driver is gone (its leaks were reported at unbind). */
		pciem_dmac_detach(f);
		/* Before the backing goes: no fault may still be using it. */
		pciem_trap_orphan(f);
		pciem_watch_unpublish(f);
	}
	pciem_port_free(dev);
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++)
		if (pciem_fn(dev, i))
			pciem_fn_unprepare(pciem_fn(dev, i));
	ida_free(&pciem_domain_ida, dev->domain);
}
