/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pciem_internal.h - state shared by the pieces of pciem.ko.
 *
 * One struct pciem_dev per open /dev/pciem file. Its lifetime is a kref:
 * the control file holds one reference and the instance file (returned by
 * REGISTER) holds another; the last release tears the device down.
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

#define PCIEM_NUM_BARS		6
#define PCIEM_NUM_WATCHES	4
#define PCIEM_MAX_MSI		32

enum pciem_state {
	PCIEM_EMPTY,		/* opened, nothing described yet */
	PCIEM_BUILDING,		/* CREATE seen; incremental description */
	PCIEM_IMAGE,		/* a complete image was handed over */
	PCIEM_REGISTERED,	/* on the bus */
	PCIEM_DEAD,		/* torn down (REGISTER failed half-way) */
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
/* Tag of history slot s: 1..PCIEM_DMAC_HISTORY (a live record's tag is
 * its address, never that small). */
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
	struct mutex lock;
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
	spinlock_t evfd_lock;
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
};

/* main.c */
void pciem_dev_put(struct pciem_dev *dev);

/* pool.c: the physical BAR pool named by phys_region= */
int pciem_pool_init(const char *param);
void pciem_pool_exit(void);
int pciem_pool_alloc(u64 size, u64 align, phys_addr_t *out);
bool pciem_pool_ready(void);
void pciem_pool_free(phys_addr_t phys, u64 size);

/* bus.c: the virtual root bus */
int pciem_bus_register(struct pciem_dev *dev);
void __iomem *pciem_bar_kva(struct pciem_dev *dev, u32 i);
void pciem_bus_unregister(struct pciem_dev *dev);
void pciem_bus_remove_files(struct pciem_dev *dev);

/* ring.c: the shared event ring and its eventfd */
int pciem_ring_init(struct pciem_dev *dev);
void pciem_ring_free(struct pciem_dev *dev);
int pciem_ring_mmap(struct pciem_dev *dev, struct vm_area_struct *vma);
int pciem_ring_push(struct pciem_dev *dev, struct pciem_event *ev);
bool pciem_ring_consumer_sleeps(struct pciem_dev *dev);
int pciem_ring_set_eventfd(struct pciem_dev *dev, int fd);

/* watch.c: ioremap tracing and hardware watchpoints */
int pciem_watch_init(void);
void pciem_watch_exit(void);
void pciem_watch_dev_init(struct pciem_dev *dev);
void pciem_watch_publish(struct pciem_dev *dev);
void pciem_watch_unpublish(struct pciem_dev *dev);
int pciem_watch_set(struct pciem_dev *dev,
		    const struct pciem_watchpoint_config *wp);
void pciem_watch_arm_pending(struct pciem_dev *dev);
void pciem_watch_release_all(struct pciem_dev *dev);

/* trap.c: trap mode */
u64 pciem_io_read(void __iomem *p, u32 width);
int pciem_trap_init(void);
void pciem_trap_exit(void);
bool pciem_trap_available(void);
int pciem_trap_dev_init(struct pciem_dev *dev);
void pciem_trap_dev_free(struct pciem_dev *dev);
void pciem_trap_model_gone(struct pciem_dev *dev);
void pciem_trap_orphan(struct pciem_dev *dev);
bool pciem_dev_trapped(const struct pciem_dev *dev);
int pciem_trap_set_mode(struct pciem_dev *dev, const struct pciem_bar_mode *m);
int pciem_trap_add_range(struct pciem_dev *dev,
			 const struct pciem_trap_range *r);
int pciem_trap_check_layout(struct pciem_dev *dev);
int pciem_trap_set_timeout(struct pciem_dev *dev,
			   const struct pciem_read_timeout *t);
int pciem_trap_complete(struct pciem_dev *dev,
			const struct pciem_read_completion *c);
int pciem_trap_mmap(struct pciem_dev *dev, struct vm_area_struct *vma);
ssize_t pciem_trap_stats_show(struct pciem_dev *dev, char *buf);
void pciem_trap_map_add(struct pciem_dev *dev, u32 bar, unsigned long cookie,
			unsigned long va, unsigned long len, u64 bar_off);
void pciem_trap_iounmap(unsigned long cookie);
void pciem_trap_flush(void);

/* irq.c: interrupt injection */
void pciem_irq_dev_init(struct pciem_dev *dev);
int pciem_irq_inject(struct pciem_dev *dev, const struct pciem_irq_inject *req);
void pciem_irq_stop(struct pciem_dev *dev);
void pciem_irq_config_written(struct pciem_dev *dev, u32 effects);
int pciem_irq_register(struct pciem_dev *dev);
void pciem_irq_unregister(struct pciem_dev *dev);
void pciem_irq_reset_locked(struct pciem_dev *dev);
int pciem_irq_map_intx(const struct pci_dev *pdev, u8 slot, u8 pin);

/* irqfd.c: eventfds bound to interrupts */
void pciem_irqfd_dev_init(struct pciem_dev *dev);
int pciem_irqfd_set(struct pciem_dev *dev, const struct pciem_irqfd_config *cfg);
void pciem_irqfd_release_all(struct pciem_dev *dev);

/* dma.c: DMA, atomics and PRP-list DMA issued by the device process */
int pciem_dma_may_master(struct pciem_dev *dev, const char *what);
int pciem_dma_rw(struct pciem_dev *dev, void __user *uarg, bool to_host);
int pciem_dma_atomic(struct pciem_dev *dev, void __user *uarg);
int pciem_dma_indirect(struct pciem_dev *dev, void __user *uarg);

/* dmacheck.c: DMA checking against the driver's mappings */
int pciem_dmac_init(void);
void pciem_dmac_exit(void);
void pciem_dmac_dev_init(struct pciem_dev *dev);
int pciem_dmac_set_mode(struct pciem_dev *dev,
			const struct pciem_dma_check_mode *m);
void pciem_dmac_attach(struct pciem_dev *dev);
void pciem_dmac_detach(struct pciem_dev *dev);
int pciem_dmac_check(struct pciem_dev *dev, u64 addr, u64 len, u32 access,
		     bool quiet);
ssize_t pciem_dmac_show(struct pciem_dev *dev, char *buf);

/* p2p.c: peer-to-peer transfers inside the p2p_regions= whitelist */
int pciem_p2p_init(void);
void pciem_p2p_exit(void);
int pciem_p2p_xfer(struct pciem_dev *dev, void __user *uarg, bool to_peer);

/* fault.c: surprise removal */
void pciem_fault_dev_init(struct pciem_dev *dev);
void pciem_fault_flush(struct pciem_dev *dev);
int pciem_surprise_remove(struct pciem_dev *dev,
			  const struct pciem_surprise_remove *req);
int pciem_link_check(struct pciem_dev *dev, const char *what);

/* port.c: the virtual root port */
void pciem_port_dev_init(struct pciem_dev *dev);
int pciem_port_set(struct pciem_dev *dev, const struct pciem_root_port *req);
int pciem_port_build(struct pciem_dev *dev);
void pciem_port_free(struct pciem_dev *dev);
bool pciem_port_link_down(struct pciem_dev *dev);
int pciem_port_inject_aer(struct pciem_dev *dev,
			  const struct pciem_aer_inject *req);
void pciem_port_wait_removal(struct pciem_dev *dev);

#endif /* PCIEM_INTERNAL_H */
