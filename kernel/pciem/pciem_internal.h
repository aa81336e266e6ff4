/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pciem_internal.h - state shared by the pieces of pciem.ko.
 *
 * One struct pciem_dev per open /dev/pciem file. Its lifetime is a kref:
 * the control file holds one reference and the instance file (returned by
 * REGISTER) holds another; the last release tears the device down.
 * Functions 1..7 of a multi-function device are struct pciem_devs owned by
 * function 0 (function.c); their locks nest inside function 0's.
 *
 * Locking, outermost first:
 *   dev->lock (mutex)      - every ioctl and the watch arming work; guards
 *                            the state machine, the builder, bars[] layout
 *                            and watches[] bookkeeping.
 *   dev->cfg_lock (raw)    - the configuration image once the device is on
 *                            the bus (pci_ops run in any context).
 *   pciem_map_lock (raw)   - the list of live devices and every BAR's
 *                            traced driver mapping (kprobe context).
 *   dev->ring_lock (raw)   - the ring producer; taken from process, irq and
 *                            #DB (NMI-like) context, never while waiting for
 *                            anything else, so it cannot deadlock.
 *   dev->evfd_lock         - the notification eventfd pointer.
 */
#ifndef PCIEM_INTERNAL_H
#define PCIEM_INTERNAL_H

#include <linux/irq_work.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rbtree.h>
#include <linux/seqlock.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "../rust/pciem_rs.h"

/* The ABI's limits (uapi/pciem.h), under the names the module uses. */
#define PCIEM_NUM_BARS		PCIEM_MAX_BARS
#define PCIEM_NUM_WATCHES	PCIEM_MAX_WATCHPOINTS
/* Multiple Message Capable tops out at 32 vectors (PCI spec). */
#define PCIEM_MAX_MSI		32

enum pciem_state {
	PCIEM_EMPTY,		/* opened, nothing described yet */
	PCIEM_BUILDING,		/* CREATE seen; incremental description */
	PCIEM_IMAGE,		/* a complete image was handed over */
	PCIEM_REGISTERED,	/* on the bus */
	/*
	 * Being freed: set in pciem_dev_release() once the last file is gone,
	 * so no ioctl can see it; deferred work still running then (arm_work,
	 * msix_poll) sees a device that is no longer REGISTERED.
	 */
	PCIEM_DEAD,
};

struct pciem_bar {
	u64 size;		/* 0: slot unused */
	u32 flags;		/* PCIEM_BAR_* */
	phys_addr_t phys;	/* bus address (== physical address) */
	void *backing;		/* trapped BARs: their memory (vmalloc_user) */
	/* The driver's mapping, recorded by the ioremap tracer. */
	void __iomem *map_cookie;	/* what ioremap returned */
	void __iomem *map_kva;		/* kernel address of BAR offset map_off */
	u64 map_off;
	u64 map_len;
};

struct pciem_dev;

/* trap.c: what trap mode counts, per device (sysfs pciem_trap). */
struct pciem_trap_stats {
	atomic64_t faults;	/* emulated instructions */
	atomic64_t loads;	/* BAR loads among them */
	atomic64_t stores;	/* BAR stores among them */
	atomic64_t model_reads;	/* loads answered (or not) by the model */
	atomic64_t timeouts;	/* model reads that completed all-ones */
	atomic64_t undecodable;	/* instructions we could not emulate */
	atomic64_t untrapped;	/* mappings left untrapped */
};

/* dmacheck.c: the driver's DMA mappings and what checking found. */
#define PCIEM_DMAC_STACK	8	/* frames saved per mapping */
#define PCIEM_DMAC_HISTORY	64	/* unmaps remembered */
/*
 * Tag of history slot s: 1..PCIEM_DMAC_HISTORY (a live record's tag is
 * its address, never that small).
 */
#define PCIEM_DMAC_TAG_GONE(s)	((u64)(s) + 1)

struct pciem_dmac_gone {
	u64 start;
	u64 len;
	u32 dir;
	u64 when_ns;		/* ktime_get_ns() of the unmap */
	unsigned int nr_stack;
	unsigned long stack[PCIEM_DMAC_STACK];	/* of the mapping call */
};

/*
 * A mapping the checker found allows one kind of access on its own: later
 * accesses of that kind inside it pass without a walk, until it goes.
 */
struct pciem_dmac_hit {
	u64 start;
	u64 last;		/* inclusive */
	u32 access;		/* PCIEM_DMA_ACCESS_* */
	bool valid;
};

#define PCIEM_DMAC_HITS	4

struct pciem_dma_check {
	u32 mode;		/* PCIEM_DMA_CHECK_OFF/REPORT/ENFORCE */
	bool active;		/* our DMA ops are on the PCI device */
	struct device *dev;	/* that device, while active */
	spinlock_t lock;	/* live, gone, gone_next, nr_live */
	struct rb_root_cached live;	/* struct pciem_dmac_rec */
	u64 nr_live;
	struct pciem_dmac_gone gone[PCIEM_DMAC_HISTORY];
	unsigned int gone_next;
	/* Written under lock, read locklessly by the check's fast path. */
	seqcount_spinlock_t hit_seq;
	struct pciem_dmac_hit hits[PCIEM_DMAC_HITS];
	unsigned int hit_next;
	atomic64_t maps;
	atomic64_t unmaps;
	atomic64_t faults[PCIEM_DMA_FAULT_AFTER_UNMAP + 1];	/* by kind */
	atomic64_t leaks;
	atomic64_t mask;	/* mappings refused by the DMA mask */
	atomic64_t bad_unmap;	/* unmaps of what was not mapped */
	atomic64_t nomem;	/* mappings failed for want of a record */
};

struct pciem_watch {
	struct pciem_dev *dev;
	struct perf_event * __percpu *bp;	/* NULL: not armed */
	void __iomem *addr;
	u32 bar;
	u32 offset;
	u32 width;
	bool used;		/* slot holds a request */
	bool pending;		/* requested before REGISTER, not armed yet */
	bool stale;		/* the mapping went away; read nothing */
	/*
	 * The register's value when the driver's mapping was traced, for a
	 * pending watch: arming takes milliseconds (it sleeps), and a store in
	 * between produces no event, so arming compares and says so.
	 */
	bool snap_valid;
	u64 snap;
};

struct pciem_dev {
	struct kref kref;
	struct mutex lock;	/* see "Locking" at the top of this file */
	enum pciem_state state;

	struct pciem_rs_builder *builder;
	struct pciem_config_image *img;
	raw_spinlock_t cfg_lock;

	struct pciem_bar bars[PCIEM_NUM_BARS];
	phys_addr_t region_phys;
	u64 region_size;
	struct resource window;		/* the pool region, if any */
	struct resource trap_window;	/* the trapped BARs' addresses */
	bool trap_from_pool;		/* trap_window is a pool range */
	struct resource busn;

	int domain;
	struct pci_sysdata sysdata;
	struct pci_bus *bus;
	struct pci_dev *pdev;
	struct list_head live_node;	/* pciem_live_devs, pciem_map_lock */

	struct pciem_shared_ring *ring;
	size_t ring_bytes;
	struct pciem_rs_producer prod;
	raw_spinlock_t ring_lock;
	struct irq_work notify_work;
	spinlock_t evfd_lock;	/* guards evfd */
	struct eventfd_ctx *evfd;

	struct irq_work irq_work;
	unsigned long irq_pending;	/* bitmap of MSI vectors to raise */
	int msi_virq[PCIEM_MAX_MSI];	/* resolved at injection time */
	bool irq_dead;

	struct pciem_watch watches[PCIEM_NUM_WATCHES];
	struct work_struct arm_work;

	/*
	 * irq.c: MSI-X and INTx. The table and PBA are pool memory the
	 * module maps once (region_kva) before the tracer is published.
	 * msix_held and msix_raise use atomic bitops; the PBA itself is
	 * only written under dev->lock (ioctl and msix_poll).
	 */
	void __iomem *region_kva;	/* the whole BAR run, or NULL */
	struct pciem_config_image *img_initial;	/* restored by a reset */
	u32 msix_entries;		/* usable table entries, 0: none */
	void __iomem *msix_table;
	void __iomem *msix_pba;
	unsigned long *msix_held;	/* pending in the PBA while masked */
	unsigned long *msix_raise;	/* entries for the irq_work */
	int *msix_virq;			/* resolved in process context */
	struct delayed_work msix_poll;	/* re-reads masks while any held */
	int intx_virq;			/* the INTx irq of our chip, 0: none */
	bool intx_line;			/* asserted (cfg_lock) */
	bool intx_masked;		/* masked by the irq core (cfg_lock) */
	unsigned long intx_raise;	/* bit 0: run the INTx flow handler */

	/* irqfd.c: bound eventfds, under dev->lock. */
	struct list_head irqfds;
	struct work_struct irqfd_reap;	/* frees bindings whose eventfd closed */

	/*
	 * trap.c. Modes and ranges are fixed at REGISTER; the rest is used
	 * from the fault handler, with interrupts off.
	 */
	u32 bar_mode[PCIEM_NUM_BARS];	/* mirrors what access accepted */
	struct pciem_rs_access *access;	/* pciem-core's AccessMap */
	u64 read_timeout_ns;
	struct pciem_read_responses *resp;	/* mmapped by the process */
	unsigned long resp_busy;		/* slots with a waiting read */
	atomic64_t read_gen;
	atomic_t trap_inflight;		/* faults emulating against us */
	bool trap_dead;			/* the model is gone */
	bool trap_logged_timeout;
	bool trap_logged_insn;
	struct pciem_trap_stats trap_stats;
	struct work_struct start_work;	/* START: bus add, drivers probe */
	bool started;

	struct pciem_dma_check dmac;	/* dmacheck.c */

	/*
	 * fault.c. link_down is raised once (READ_ONCE anywhere, any
	 * context); removed is written under the PCI rescan lock.
	 */
	bool link_down;
	bool removed;
	struct work_struct remove_work;

	/*
	 * port.c: the virtual root port (SET_ROOT_PORT). port_img is under
	 * cfg_lock once on the bus; port_notified says pciehp was told of a
	 * surprise removal (under dev->lock).
	 */
	bool want_port;
	bool port_aer;			/* the port has AER (port.c) */
	bool port_notified;
	struct pciem_config_image *port_img;
	struct pci_dev *port_pdev;
	struct irq_work port_irq_work;
	int port_virq;

	/*
	 * function.c: a multi-function device. Function 0 is the control
	 * file's device and owns functions 1..7 (fns[], fixed from REGISTER
	 * on); each of those points back with fn0 and shares function 0's
	 * files, ring, bus and domain. sel (under fn0's lock) is the function
	 * the next ioctls address. region_guard: a page allocated after each
	 * function's pool window so that no two windows of one bridge are
	 * adjacent (the PCI core would merge them, see pciem_layout_bars()).
	 */
	struct pciem_dev *fn0;		/* NULL for function 0 */
	struct pciem_dev *fns[PCIEM_MAX_FUNCTIONS];	/* [0] unused */
	u32 fn_nr;
	u32 sel;
	u64 region_guard;
};

/**
 * pciem_fn() - Function @i of a device.
 * @dev: function 0.
 * @i: the function number, below PCIEM_MAX_FUNCTIONS.
 *
 * Return: @dev for 0, function @i if SET_FUNCTION created it, else NULL.
 */
static inline struct pciem_dev *pciem_fn(struct pciem_dev *dev, int i)
{
	return i ? dev->fns[i] : dev;
}

/* main.c */
/**
 * pciem_dev_put() - Drop a reference to a device.
 * @dev: the device.
 *
 * The last reference tears the device down (hot-removal, ring, pool range)
 * and frees it.
 *
 * Context: process; may sleep when it drops the last reference.
 */
void pciem_dev_put(struct pciem_dev *dev);

/* function.c: multi-function devices */
/**
 * pciem_fn_select() - SET_FUNCTION: choose the function the ioctls address.
 * @dev: function 0 (the control file's device).
 * @req: the function number and reserved zero.
 *
 * Before REGISTER a function is created on first selection.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EINVAL for a number above 7 or reserved bits, -ENOENT for a
 * function never described once registered, -ENOMEM.
 */
int pciem_fn_select(struct pciem_dev *dev, const struct pciem_function *req);
/**
 * pciem_fn_multi() - Whether the device has functions besides function 0.
 * @dev: function 0.
 *
 * Return: true if SET_FUNCTION created any function 1..7.
 */
bool pciem_fn_multi(const struct pciem_dev *dev);
/**
 * pciem_fn_any_trapped() - Whether any function has a trapped BAR.
 * @dev: function 0.
 *
 * Return: true if a BAR of any function is in trap mode (the device then
 * waits for START before its drivers probe).
 */
bool pciem_fn_any_trapped(const struct pciem_dev *dev);
/**
 * pciem_pdev_to_dev() - The function behind one of our PCI devices.
 * @pdev: a PCI device on one of our buses.
 *
 * Return: the function's state (function 0's for the root port).
 */
struct pciem_dev *pciem_pdev_to_dev(const struct pci_dev *pdev);
/**
 * pciem_fn_lock_all() - Take the locks of functions 1..7.
 * @dev: function 0, its lock held.
 *
 * Function n's lock is lockdep subclass n, always taken after function 0's.
 */
void pciem_fn_lock_all(struct pciem_dev *dev);
/**
 * pciem_fn_unlock_all() - Release what pciem_fn_lock_all() took.
 * @dev: function 0.
 */
void pciem_fn_unlock_all(struct pciem_dev *dev);
/**
 * pciem_fn_quiesce() - Stop the work of functions 1..7 before the bus goes.
 * @dev: function 0, being released.
 *
 * Their irqfds and breakpoints go and no interrupt work runs any more.
 *
 * Context: process, without any function's lock; sleeps.
 */
void pciem_fn_quiesce(struct pciem_dev *dev);
/**
 * pciem_fn_free_all() - Free functions 1..7.
 * @dev: function 0, being released, its bus gone.
 */
void pciem_fn_free_all(struct pciem_dev *dev);

/* pool.c: the physical BAR pool named by phys_region= */
/**
 * pciem_pool_init() - Claim the BAR pool named by phys_region=.
 * @param: "ADDR:SIZE", or NULL/empty for no pool (only fully trapped
 *	devices can then register).
 *
 * Context: module init.
 * Return: 0, -EINVAL for a malformed or unaligned range, -EADDRINUSE when
 * it overlaps System RAM (not carved out with memmap=), or another errno
 * from reserving it.
 */
int pciem_pool_init(const char *param);
/**
 * pciem_pool_exit() - Release the BAR pool.
 *
 * Context: module exit, once no device holds a range.
 */
void pciem_pool_exit(void);
/**
 * pciem_pool_alloc() - Take a naturally aligned run of pool pages.
 * @size: bytes wanted (rounded up to whole pages).
 * @align: alignment of the run, a power of two of at least a page.
 * @out: set to the run's physical address on success.
 *
 * Context: process; takes the pool mutex.
 * Return: 0, -EINVAL for a zero @size or a bad @align, -ENOSPC when there
 * is no pool or no free run.
 */
int pciem_pool_alloc(u64 size, u64 align, phys_addr_t *out);
/**
 * pciem_pool_ready() - Whether a BAR pool was configured.
 *
 * Return: true if phys_region= named a pool that was claimed.
 */
bool pciem_pool_ready(void);
/**
 * pciem_pool_free() - Give back a run taken by pciem_pool_alloc().
 * @phys: the run's physical address.
 * @size: the size it was taken with.
 *
 * Context: process; takes the pool mutex.
 */
void pciem_pool_free(phys_addr_t phys, u64 size);

/* bus.c: the virtual root bus */
/**
 * pciem_bus_register() - Put the device on a new virtual root bus.
 * @dev: the device, described (its image built).
 *
 * Lays out the BARs in a pool range, scans the bus and, unless a BAR is
 * trapped (those wait for START), adds the device so drivers probe it.
 *
 * Context: process, with @dev->lock held.
 * Return: 0 or a negative errno; on failure nothing is left on a bus.
 */
int pciem_bus_register(struct pciem_dev *dev);
/**
 * pciem_bar_kva() - The kernel address of a BAR's backing.
 * @dev: the registered device.
 * @i: BAR index, below PCIEM_NUM_BARS.
 *
 * Return: the address of BAR @i's first byte, or NULL if it has none.
 */
void __iomem *pciem_bar_kva(struct pciem_dev *dev, u32 i);
/**
 * pciem_bus_unregister() - Hot-remove the device and free its bus.
 * @dev: the device.
 *
 * The bound driver's remove() runs; the bus, PCI domain and pool range are
 * freed.
 *
 * Context: process (the last release); sleeps.
 */
void pciem_bus_unregister(struct pciem_dev *dev);
/**
 * pciem_bus_remove_files() - Remove the module's sysfs files of the device.
 * @dev: the device, still on the bus (after removal its directory is gone).
 *
 * Context: process, under the PCI rescan lock.
 */
void pciem_bus_remove_files(struct pciem_dev *dev);

/* ring.c: the shared event ring and its eventfd */
/**
 * pciem_ring_init() - Allocate the device's event ring.
 * @dev: the device being opened.
 *
 * Context: process.
 * Return: 0 or -ENOMEM.
 */
int pciem_ring_init(struct pciem_dev *dev);
/**
 * pciem_ring_free() - Free the ring and drop the notification eventfd.
 * @dev: the device being released.
 *
 * Context: process, once nothing can push any more.
 */
void pciem_ring_free(struct pciem_dev *dev);
/**
 * pciem_ring_mmap() - Map the ring into the device process.
 * @dev: the device.
 * @vma: a MAP_SHARED mapping at offset 0, at most the ring's size.
 *
 * Return: 0, or -EINVAL for another offset, size or a private mapping.
 */
int pciem_ring_mmap(struct pciem_dev *dev, struct vm_area_struct *vma);
/**
 * pciem_ring_push() - Publish an event to the device process.
 * @dev: the device.
 * @ev: the event; its seq and ticket are filled in.
 *
 * A full ring counts the loss in the ring's overflow field, which the
 * consumer sees. The eventfd is signalled (from an irq_work) if the
 * consumer said it may sleep.
 *
 * Context: any, including #DB (NMI-like); takes the raw ring lock.
 * Return: 0, or -ENOSPC when the event did not fit.
 */
int pciem_ring_push(struct pciem_dev *dev, struct pciem_event *ev);
/**
 * pciem_ring_consumer_sleeps() - Whether the consumer needs the eventfd.
 * @dev: the device.
 *
 * Context: any.
 * Return: false only while the consumer has said it is draining and will
 * look again before it sleeps.
 */
bool pciem_ring_consumer_sleeps(struct pciem_dev *dev);
/**
 * pciem_ring_set_eventfd() - Set or clear the notification eventfd.
 * @dev: the device.
 * @fd: an eventfd of the caller, or negative to clear it.
 *
 * Context: process (SET_EVENTFD).
 * Return: 0, -EBADF for a closed @fd, -EINVAL for a file that is not an
 * eventfd.
 */
int pciem_ring_set_eventfd(struct pciem_dev *dev, int fd);

/* watch.c: ioremap tracing and hardware watchpoints */
/**
 * pciem_watch_init() - Start tracing ioremap and iounmap.
 *
 * Context: module init.
 * Return: 0, -ENOENT if no ioremap function can be traced (no
 * KRETPROBES), or the errno of tracing iounmap.
 */
int pciem_watch_init(void);
/**
 * pciem_watch_exit() - Stop tracing; report any ioremap calls missed.
 *
 * Context: module exit.
 */
void pciem_watch_exit(void);
/**
 * pciem_watch_dev_init() - Prepare a new device's watch bookkeeping.
 * @dev: the device being opened.
 */
void pciem_watch_dev_init(struct pciem_dev *dev);
/**
 * pciem_watch_publish() - Let the ioremap tracer see the device's BARs.
 * @dev: the device, its BARs laid out.
 *
 * Context: process; takes pciem_map_lock.
 */
void pciem_watch_publish(struct pciem_dev *dev);
/**
 * pciem_watch_unpublish() - Hide the device from the ioremap tracer.
 * @dev: the device.
 *
 * Waits for a queued arming work to finish.
 *
 * Context: process, without @dev->lock (the arming work takes it).
 */
void pciem_watch_unpublish(struct pciem_dev *dev);
/**
 * pciem_watch_set() - SET_WATCHPOINT: watch a register, or stop.
 * @dev: the device.
 * @wp: the request from the device process.
 *
 * Before REGISTER the watch waits for the driver's mapping; after it, the
 * mapping must exist.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EINVAL for a malformed request, -EEXIST for a register
 * already watched, -ENOSPC when every watch is used, -ENOENT for CLEAR of
 * an unwatched register, -EAGAIN before the driver maps the BAR, or the
 * errno of registering the breakpoint.
 */
int pciem_watch_set(struct pciem_dev *dev,
		    const struct pciem_watchpoint_config *wp);
/**
 * pciem_watch_arm_pending() - Arm waiting watches, drop stale ones.
 * @dev: the device.
 *
 * Arms watches whose BAR the driver has now mapped, and unregisters the
 * breakpoints of watches whose mapping went away (they wait again).
 *
 * Context: process, with @dev->lock held.
 */
void pciem_watch_arm_pending(struct pciem_dev *dev);
/**
 * pciem_watch_release_all() - Unregister every watch's breakpoint.
 * @dev: the device, before it leaves the bus.
 *
 * No breakpoint handler runs for @dev after this returns.
 *
 * Context: process, with @dev->lock held.
 */
void pciem_watch_release_all(struct pciem_dev *dev);

/* trap.c: trap mode */
/**
 * pciem_io_read() - Read a register of a given width.
 * @p: its kernel address.
 * @width: 1, 2 or 4 bytes; any other value reads 8.
 *
 * Context: any.
 * Return: the value, zero-extended.
 */
u64 pciem_io_read(void __iomem *p, u32 width);
/**
 * pciem_trap_init() - Hook page faults for trap mode, if possible.
 *
 * Trap mode is then unavailable (SET_BAR_MODE says so) rather than the
 * module failing to load.
 *
 * Context: module init.
 * Return: 0.
 */
int pciem_trap_init(void);
/**
 * pciem_trap_exit() - Unhook page faults and restore leaked mappings.
 *
 * Context: module exit, once no device is left.
 */
void pciem_trap_exit(void);
/**
 * pciem_trap_available() - Whether trap mode could be hooked at load.
 *
 * Return: true if the page-fault hook is in place.
 */
bool pciem_trap_available(void);
/**
 * pciem_trap_dev_init() - Allocate a device's trap-mode state.
 * @dev: the device being opened.
 *
 * Context: process.
 * Return: 0 or -ENOMEM.
 */
int pciem_trap_dev_init(struct pciem_dev *dev);
/**
 * pciem_trap_dev_free() - Free what pciem_trap_dev_init() allocated.
 * @dev: the device being released.
 */
void pciem_trap_dev_free(struct pciem_dev *dev);
/**
 * pciem_trap_model_gone() - The device process is gone.
 * @dev: the device.
 *
 * Reads waiting for the model return all-ones at once, and so do later
 * ones.
 *
 * Context: any.
 */
void pciem_trap_model_gone(struct pciem_dev *dev);
/**
 * pciem_trap_orphan() - Detach the device from its trapped mappings.
 * @dev: the device, which has left the bus.
 *
 * Mappings a driver never unmapped become orphans whose faults complete
 * as master aborts. Returns once no fault is being handled for @dev.
 *
 * Context: process; may sleep.
 */
void pciem_trap_orphan(struct pciem_dev *dev);
/**
 * pciem_dev_trapped() - Whether any BAR of the device is in trap mode.
 * @dev: the device.
 *
 * Return: true if a BAR is trapped.
 */
bool pciem_dev_trapped(const struct pciem_dev *dev);
/**
 * pciem_trap_set_mode() - SET_BAR_MODE.
 * @dev: the device, not yet registered.
 * @m: the BAR and its mode.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EBUSY after REGISTER, -EOPNOTSUPP when trap mode is
 * unavailable, or -EINVAL for a request pciem-core refuses.
 */
int pciem_trap_set_mode(struct pciem_dev *dev, const struct pciem_bar_mode *m);
/**
 * pciem_trap_add_range() - ADD_TRAP_RANGE.
 * @dev: the device, not yet registered.
 * @r: the range and its policies (BAR sizes are checked at REGISTER).
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EBUSY after REGISTER, or the errno pciem-core gives.
 */
int pciem_trap_add_range(struct pciem_dev *dev,
			 const struct pciem_trap_range *r);
/**
 * pciem_trap_check_layout() - Check trap declarations against the BARs.
 * @dev: the device at REGISTER, its BARs laid out.
 *
 * Every trapped BAR must exist and be at least a page, every range must
 * lie inside its BAR.
 *
 * Return: 0 or the errno pciem-core gives.
 */
int pciem_trap_check_layout(struct pciem_dev *dev);
/**
 * pciem_trap_set_timeout() - SET_READ_TIMEOUT.
 * @dev: the device.
 * @t: the timeout for model-answered reads.
 *
 * Return: 0, or -EINVAL outside 1..PCIEM_READ_TIMEOUT_MAX_US or with
 * reserved bits set.
 */
int pciem_trap_set_timeout(struct pciem_dev *dev,
			   const struct pciem_read_timeout *t);
/**
 * pciem_trap_complete() - COMPLETE_READ: answer a model-answered read.
 * @dev: the device.
 * @c: the read's id and value.
 *
 * The same effect as the model writing the read-response page.
 *
 * Context: process, without @dev->lock (a waiting driver may hold it up).
 * Return: 0, or -ENOENT when no read with that id is waiting.
 */
int pciem_trap_complete(struct pciem_dev *dev,
			const struct pciem_read_completion *c);
/**
 * pciem_trap_mmap() - Map the read-response page.
 * @dev: the device.
 * @vma: a mapping of exactly one page.
 *
 * Return: 0, -EINVAL for another size, or the errno of the remap.
 */
int pciem_trap_mmap(struct pciem_dev *dev, struct vm_area_struct *vma);
/**
 * pciem_trap_stats_show() - The sysfs pciem_trap counters.
 * @dev: the device.
 * @buf: the sysfs page.
 *
 * Return: the number of bytes written to @buf.
 */
ssize_t pciem_trap_stats_show(struct pciem_dev *dev, char *buf);
/**
 * pciem_trap_map_add() - Trap a new driver mapping of a trapped BAR.
 * @dev: the device.
 * @bar: the BAR index.
 * @cookie: what ioremap returned (what iounmap will be given).
 * @va: the kernel address of the part of the mapping inside the BAR.
 * @len: its length in bytes.
 * @bar_off: the BAR offset @va maps.
 *
 * Clears the page-table entries so that every access faults; the caller
 * runs pciem_trap_flush() once it has dropped its lock.
 *
 * Context: the ioremap kretprobe, with pciem_map_lock held.
 */
void pciem_trap_map_add(struct pciem_dev *dev, u32 bar, unsigned long cookie,
			unsigned long va, unsigned long len, u64 bar_off);
/**
 * pciem_trap_iounmap() - Forget the trapped mappings an ioremap made.
 * @cookie: the address iounmap was given.
 *
 * Context: the iounmap kprobe.
 */
void pciem_trap_iounmap(unsigned long cookie);
/**
 * pciem_trap_flush() - Flush the TLB entries of newly trapped mappings.
 *
 * Context: the ioremap kretprobe, after dropping pciem_map_lock and before
 * ioremap returns to the driver.
 */
void pciem_trap_flush(void);

/* irq.c: interrupt injection */
/**
 * pciem_irq_dev_init() - Prepare a new device's interrupt works.
 * @dev: the device being opened.
 */
void pciem_irq_dev_init(struct pciem_dev *dev);
/**
 * pciem_irq_inject() - INJECT_IRQ.
 * @dev: the registered device.
 * @req: the kind (AUTO, MSI, MSI-X, INTx), vector and flags.
 *
 * A vector the driver masked is held (MSI: its Pending bit; MSI-X: its
 * PBA bit) and delivered when unmasked.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EINVAL for a malformed request, -ENODEV before REGISTER,
 * -EIO when the driver has not enabled the mechanism, -EOPNOTSUPP when the
 * device lacks it.
 */
int pciem_irq_inject(struct pciem_dev *dev, const struct pciem_irq_inject *req);
/**
 * pciem_irq_stop() - Stop every injection for good.
 * @dev: the device being released.
 *
 * After this returns no interrupt work runs or is queued again.
 *
 * Context: process, without @dev->lock; sleeps.
 */
void pciem_irq_stop(struct pciem_dev *dev);
/**
 * pciem_irq_config_written() - React to a host configuration write.
 * @dev: the device.
 * @effects: PCIEM_RS_EFFECT_* bits the write had.
 *
 * Unmasked MSI vectors and MSI-X entries held while masked are delivered
 * (from the unmask work); a command write may let an asserted INTx line
 * through.
 *
 * Context: any (the PCI config accessors), cfg_lock not held.
 */
void pciem_irq_config_written(struct pciem_dev *dev, u32 effects);
/**
 * pciem_irq_register() - Set up interrupts before the bus scan.
 * @dev: the device, its BARs mapped.
 *
 * Sizes the MSI-X bookkeeping (a table or PBA outside its BAR leaves MSI-X
 * unusable, not the device) and gives an interrupt pin its irq.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -ENOMEM, or the errno of allocating the INTx irq.
 */
int pciem_irq_register(struct pciem_dev *dev);
/**
 * pciem_irq_unregister() - Free what pciem_irq_register() set up.
 * @dev: the device, off the bus (its driver freed its irqs).
 */
void pciem_irq_unregister(struct pciem_dev *dev);
/**
 * pciem_irq_reset_locked() - Interrupt state of a function reset.
 * @dev: the device (FLR, or D3hot to D0).
 *
 * The INTx line is deasserted and nothing held while masked survives.
 *
 * Context: any, with @dev->cfg_lock held.
 */
void pciem_irq_reset_locked(struct pciem_dev *dev);
/**
 * pciem_irq_map_intx() - The host bridge's map_irq.
 * @pdev: the device.
 * @slot: its slot (unused: one device per bus).
 * @pin: its interrupt pin (unused: one irq per device).
 *
 * Return: the device's INTx irq, or -1 if it has no interrupt pin.
 */
int pciem_irq_map_intx(const struct pci_dev *pdev, u8 slot, u8 pin);

/* irqfd.c: eventfds bound to interrupts */
/**
 * pciem_irqfd_dev_init() - Prepare a new device's irqfd list.
 * @dev: the device being opened.
 */
void pciem_irqfd_dev_init(struct pciem_dev *dev);
/**
 * pciem_irqfd_set() - SET_IRQFD: bind an eventfd to an interrupt, or unbind.
 * @dev: the device.
 * @cfg: the eventfd, interrupt and flags.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EINVAL for a malformed request or a file that is not an
 * eventfd, -EBADF for a closed fd, -EBUSY when the interrupt is bound
 * already, -ENOENT for REMOVE of an unbound one, -ENOSPC at the limit,
 * -ENOMEM.
 */
int pciem_irqfd_set(struct pciem_dev *dev, const struct pciem_irqfd_config *cfg);
/**
 * pciem_irqfd_release_all() - Unbind every irqfd and wait for them.
 * @dev: the device being released.
 *
 * Context: process, without @dev->lock (the inject work takes it).
 */
void pciem_irqfd_release_all(struct pciem_dev *dev);

/* dma.c: DMA, atomics and PRP-list DMA issued by the device process */
/**
 * pciem_dma_may_master() - Whether the device may master the bus now.
 * @dev: the device.
 * @what: the operation, for the log.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -ENODEV before REGISTER, -EPERM while Bus Master Enable is
 * clear.
 */
int pciem_dma_may_master(struct pciem_dev *dev, const char *what);
/**
 * pciem_dma_rw() - DMA_READ or DMA_WRITE.
 * @dev: the device.
 * @uarg: the user's struct pciem_dma_op.
 * @to_host: true for DMA_WRITE (into host memory).
 *
 * Context: process, with @dev->lock held.
 * Return: 0 or a negative errno (see the top of dma.c).
 */
int pciem_dma_rw(struct pciem_dev *dev, void __user *uarg, bool to_host);
/**
 * pciem_dma_atomic() - DMA_ATOMIC: an atomic operation on host memory.
 * @dev: the device.
 * @uarg: the user's struct pciem_dma_atomic; the old value is written back.
 *
 * Context: process, with @dev->lock held.
 * Return: 0 or a negative errno (see the top of dma.c).
 */
int pciem_dma_atomic(struct pciem_dev *dev, void __user *uarg);
/**
 * pciem_dma_indirect() - DMA_INDIRECT: a transfer described by PRPs.
 * @dev: the device.
 * @uarg: the user's struct pciem_dma_indirect.
 *
 * Context: process, with @dev->lock held.
 * Return: 0 or a negative errno (see the top of dma.c).
 */
int pciem_dma_indirect(struct pciem_dev *dev, void __user *uarg);

/* dmacheck.c: DMA checking against the driver's mappings */
/**
 * pciem_dmac_init() - Parse dma_check= and watch the PCI bus.
 *
 * Context: module init.
 * Return: 0, -EINVAL for an unknown dma_check= value, or the errno of
 * registering the bus notifier.
 */
int pciem_dmac_init(void);
/**
 * pciem_dmac_exit() - Stop watching the PCI bus.
 *
 * Context: module exit.
 */
void pciem_dmac_exit(void);
/**
 * pciem_dmac_dev_init() - Prepare a new device's DMA checker.
 * @dev: the device being opened.
 */
void pciem_dmac_dev_init(struct pciem_dev *dev);
/**
 * pciem_dmac_set_mode() - SET_DMA_CHECK.
 * @dev: the device, not yet registered.
 * @m: the mode.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EINVAL for an unknown mode or reserved bits, -EBUSY after
 * REGISTER.
 */
int pciem_dmac_set_mode(struct pciem_dev *dev,
			const struct pciem_dma_check_mode *m);
/**
 * pciem_dmac_attach() - Start tracking the driver's DMA mappings.
 * @dev: the device, on the bus, before a driver binds.
 *
 * Does nothing when checking is off; logs and maps directly if it cannot
 * be set up.
 *
 * Context: process.
 */
void pciem_dmac_attach(struct pciem_dev *dev);
/**
 * pciem_dmac_detach() - Stop tracking and forget every mapping.
 * @dev: the device.
 *
 * Context: process; waits for an RCU grace period.
 */
void pciem_dmac_detach(struct pciem_dev *dev);
/**
 * pciem_dmac_check() - Check a DMA of the model against the mappings.
 * @dev: the device.
 * @addr: bus address of the access.
 * @len: its length in bytes (0 passes).
 * @access: the direction(s) of the access.
 * @quiet: log nothing and send no event (a dry run).
 *
 * A violation is counted, logged and sent as a DMA_FAULT event.
 *
 * Context: process.
 * Return: 0 to go ahead, -EFAULT to refuse (enforce mode), or another
 * negative errno from the rules.
 */
int pciem_dmac_check(struct pciem_dev *dev, u64 addr, u64 len, u32 access,
		     bool quiet);
/**
 * pciem_dmac_show() - The sysfs pciem_dma_check counters.
 * @dev: the device.
 * @buf: the sysfs page.
 *
 * Return: the number of bytes written to @buf.
 */
ssize_t pciem_dmac_show(struct pciem_dev *dev, char *buf);

/* p2p.c: peer-to-peer transfers inside the p2p_regions= whitelist */
/**
 * pciem_p2p_init() - Parse and map the p2p_regions= whitelist.
 *
 * Context: module init.
 * Return: 0, -EINVAL for a malformed or overlapping list, -ENOMEM when a
 * region cannot be mapped.
 */
int pciem_p2p_init(void);
/**
 * pciem_p2p_exit() - Unmap the whitelist.
 *
 * Context: module exit.
 */
void pciem_p2p_exit(void);
/**
 * pciem_p2p_xfer() - P2P_READ or P2P_WRITE.
 * @dev: the device.
 * @uarg: the user's struct pciem_p2p_op.
 * @to_peer: true for P2P_WRITE.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EACCES outside the whitelist, -EINVAL for a malformed
 * request, -EFAULT for a bad user buffer, -ENODEV before REGISTER,
 * -ENOMEM.
 */
int pciem_p2p_xfer(struct pciem_dev *dev, void __user *uarg, bool to_peer);

/* fault.c: surprise removal */
/**
 * pciem_fault_dev_init() - Prepare a new device's surprise-removal work.
 * @dev: the device being opened.
 */
void pciem_fault_dev_init(struct pciem_dev *dev);
/**
 * pciem_fault_flush() - Let a surprise removal under way finish.
 * @dev: the device being released (before its bus goes).
 *
 * Context: process; sleeps.
 */
void pciem_fault_flush(struct pciem_dev *dev);
/**
 * pciem_surprise_remove() - SURPRISE_REMOVE: take the link down.
 * @dev: the registered device.
 * @req: the request (flags and reserved zero).
 *
 * Every accessor then sees all-ones; the root port's pciehp, when it
 * handles the slot, removes the device, else the module does.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EINVAL for a malformed request or before REGISTER,
 * -EALREADY when the link is down already.
 */
int pciem_surprise_remove(struct pciem_dev *dev,
			  const struct pciem_surprise_remove *req);
/**
 * pciem_link_check() - Refuse an operation once the link is down.
 * @dev: the device.
 * @what: the operation, for the log.
 *
 * Return: 0 while the link is up, -ENODEV after a surprise removal.
 */
int pciem_link_check(struct pciem_dev *dev, const char *what);

/* port.c: the virtual root port */
/**
 * pciem_port_dev_init() - Prepare a new device's root-port interrupt work.
 * @dev: the device being opened.
 */
void pciem_port_dev_init(struct pciem_dev *dev);
/**
 * pciem_port_set() - SET_ROOT_PORT: put the device below a root port.
 * @dev: the device, not yet registered.
 * @req: the flags (PCIEM_ROOT_PORT_HOTPLUG, optionally _AER).
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EBUSY after REGISTER, -EINVAL for bad flags or reserved
 * bits.
 */
int pciem_port_set(struct pciem_dev *dev, const struct pciem_root_port *req);
/**
 * pciem_port_build() - Build the root port's configuration image.
 * @dev: the device at REGISTER, its BARs laid out in one pool region.
 *
 * The region becomes the port's memory window.
 *
 * Return: 0, -EINVAL when the BARs are not in one 32-bit region, -ENOMEM,
 * or the errno pciem-core gives.
 */
int pciem_port_build(struct pciem_dev *dev);
/**
 * pciem_port_free() - Free the root port's image and wait for its work.
 * @dev: the device being released.
 */
void pciem_port_free(struct pciem_dev *dev);
/**
 * pciem_port_link_down() - Tell the root port the link went down.
 * @dev: the device.
 *
 * Presence and link active go; the port interrupts if pciehp enabled it.
 *
 * Context: process, with @dev->lock held.
 * Return: true if pciehp was interrupted (it removes the device), false if
 * the caller must remove it.
 */
bool pciem_port_link_down(struct pciem_dev *dev);
/**
 * pciem_port_inject_aer() - INJECT_AER: report an error through the port.
 * @dev: the registered device, below a root port with AER.
 * @req: severity, status bits and header log.
 *
 * Records the error in the device's AER capability and the port's Root
 * Error registers, and raises the port's interrupt when due.
 *
 * Context: process, with @dev->lock held.
 * Return: 0, -EINVAL for a malformed request or before REGISTER,
 * -EOPNOTSUPP without a root port with AER, or the errno pciem-core gives.
 */
int pciem_port_inject_aer(struct pciem_dev *dev,
			  const struct pciem_aer_inject *req);
/**
 * pciem_port_wait_removal() - Wait for pciehp's removal of the device.
 * @dev: the device being released.
 *
 * When pciehp was told, its removal must be over before the bus goes; if
 * it never comes, the module removes the device itself.
 *
 * Context: process; sleeps.
 */
void pciem_port_wait_removal(struct pciem_dev *dev);

#endif /* PCIEM_INTERNAL_H */
