// SPDX-License-Identifier: GPL-2.0
/*
 * pciem_trapdrv.c - a PCI driver that makes every kind of MMIO access the
 * kernel has, for the trap-mode VM scenarios (vmtest-trap, vmtest-trap-smp).
 *
 * It binds to 1f0c:7e56, maps BAR0 with pci_iomap, reads BAR0+0x0 once in
 * probe() (a register the scenario's model answers) and exposes, on the PCI
 * device:
 *   cmd          rw  write a command line (below) to perform it; read: the
 *                    result of the last command, "0x%llx"
 *   probe_value  ro  what probe() read at BAR0+0x0, "0x%x"
 *   seq_errors   ro  seqstore read-backs that differed from the store
 * and the read-only module parameter last_result: the result of the last
 * command of any device, which outlives a device hot-removed while its
 * command ran (vmtest-trap-faults kills the model during a waited read).
 *
 * Commands (numbers in C syntax: 0x.. hex or decimal; OFF is a BAR0 offset,
 * any alignment; every access must lie inside BAR0):
 *   rb|rw|rl|rq OFF                  readb/w/l/q; result: the value
 *   rb_relaxed|rw_relaxed|rl_relaxed|rq_relaxed OFF
 *   ioread8|ioread16|ioread32|ioread64_lo_hi|ioread64_hi_lo OFF
 *                                    (on x86-64 lib/iomap.c makes the
 *                                    64-bit ones one readq for MMIO)
 *   lo_hi_readq|hi_lo_readq OFF      two readl, low or high half first
 *   wb|ww|wl|wq OFF VAL              writeb/w/l/q (and _relaxed); VAL must
 *                                    fit the width; result: 0
 *   iowrite8|iowrite16|iowrite32|iowrite64_lo_hi|iowrite64_hi_lo OFF VAL
 *   lo_hi_writeq|hi_lo_writeq OFF VAL
 *   toio OFF LEN SEED                memcpy_toio of LEN pattern bytes:
 *                                    byte i = trapdrv_pattern(SEED, i)
 *   fromio OFF LEN                   memcpy_fromio of LEN bytes; result:
 *                                    their 64-bit FNV-1a hash
 *   setio OFF LEN VAL                memset_io(OFF, VAL, LEN), VAL <= 0xff
 *   bad OFF                          `lock xaddl %eax,(%rdx)` (bytes f0 0f c1
 *                                    02, four long) on BAR0+OFF with eax = 1;
 *                                    result: eax afterwards (1 if the access
 *                                    was dropped, the old value if it ran)
 *   loop N OFF                       N times: v = readl(OFF); writel(v + 1,
 *                                    OFF); result: the last value written
 *   seqstore OFF START COUNT         on this CPU c, for i in START..START+
 *                                    COUNT: writel(c << 24 | i, OFF + 4c),
 *                                    then readl it back (a mismatch counts in
 *                                    seq_errors); preemption is off for the
 *                                    batch; result: c. Commands run
 *                                    concurrently: one writer per CPU.
 * LEN is 1..BAR0 size, N 1..1000000, COUNT 1..10000, START + COUNT <=
 * 1 << 24.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-hi-lo.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/string.h>

#define TRAPDRV_CMD_MAX		128
#define TRAPDRV_MAX_ARGS	3
#define TRAPDRV_LOOP_MAX	1000000u
#define TRAPDRV_SEQ_LIMIT	BIT(24)
#define TRAPDRV_SEQ_BATCH	10000u	/* preemption is off meanwhile */

static ulong last_result;
module_param(last_result, ulong, 0444);
MODULE_PARM_DESC(last_result,
		 "Result of the last command of any device (read-only)");

struct trapdrv {
	struct pci_dev *pdev;
	void __iomem *bar0;
	resource_size_t bar0_len;
	u32 probe_value;
	u64 result;			/* WRITE_ONCE/READ_ONCE */
	atomic64_t seq_errors;
};

/* ---- the accessors, one signature each -------------------------------- */

#define TRAPDRV_RD(name, expr)						\
static u64 trapdrv_rd_##name(void __iomem *p)				\
{									\
	return expr;							\
}

#define TRAPDRV_WR(name, stmt)						\
static void trapdrv_wr_##name(void __iomem *p, u64 v)			\
{									\
	stmt;								\
}

TRAPDRV_RD(rb, readb(p))
TRAPDRV_RD(rw, readw(p))
TRAPDRV_RD(rl, readl(p))
TRAPDRV_RD(rq, readq(p))
TRAPDRV_RD(rb_relaxed, readb_relaxed(p))
TRAPDRV_RD(rw_relaxed, readw_relaxed(p))
TRAPDRV_RD(rl_relaxed, readl_relaxed(p))
TRAPDRV_RD(rq_relaxed, readq_relaxed(p))
TRAPDRV_RD(ioread8, ioread8(p))
TRAPDRV_RD(ioread16, ioread16(p))
TRAPDRV_RD(ioread32, ioread32(p))
TRAPDRV_RD(ioread64_lo_hi, ioread64_lo_hi(p))
TRAPDRV_RD(ioread64_hi_lo, ioread64_hi_lo(p))
TRAPDRV_RD(lo_hi_readq, lo_hi_readq(p))
TRAPDRV_RD(hi_lo_readq, hi_lo_readq(p))

TRAPDRV_WR(wb, writeb(v, p))
TRAPDRV_WR(ww, writew(v, p))
TRAPDRV_WR(wl, writel(v, p))
TRAPDRV_WR(wq, writeq(v, p))
TRAPDRV_WR(wb_relaxed, writeb_relaxed(v, p))
TRAPDRV_WR(ww_relaxed, writew_relaxed(v, p))
TRAPDRV_WR(wl_relaxed, writel_relaxed(v, p))
TRAPDRV_WR(wq_relaxed, writeq_relaxed(v, p))
TRAPDRV_WR(iowrite8, iowrite8(v, p))
TRAPDRV_WR(iowrite16, iowrite16(v, p))
TRAPDRV_WR(iowrite32, iowrite32(v, p))
TRAPDRV_WR(iowrite64_lo_hi, iowrite64_lo_hi(v, p))
TRAPDRV_WR(iowrite64_hi_lo, iowrite64_hi_lo(v, p))
TRAPDRV_WR(lo_hi_writeq, lo_hi_writeq(v, p))
TRAPDRV_WR(hi_lo_writeq, hi_lo_writeq(v, p))

struct trapdrv_access {
	const char *name;
	unsigned int width;
	u64 (*rd)(void __iomem *p);
	void (*wr)(void __iomem *p, u64 v);
};

#define RD(n, w)	{ #n, w, trapdrv_rd_##n, NULL }
#define WR(n, w)	{ #n, w, NULL, trapdrv_wr_##n }

static const struct trapdrv_access trapdrv_accesses[] = {
	RD(rb, 1), RD(rw, 2), RD(rl, 4), RD(rq, 8),
	RD(rb_relaxed, 1), RD(rw_relaxed, 2), RD(rl_relaxed, 4),
	RD(rq_relaxed, 8),
	RD(ioread8, 1), RD(ioread16, 2), RD(ioread32, 4),
	RD(ioread64_lo_hi, 8), RD(ioread64_hi_lo, 8),
	RD(lo_hi_readq, 8), RD(hi_lo_readq, 8),
	WR(wb, 1), WR(ww, 2), WR(wl, 4), WR(wq, 8),
	WR(wb_relaxed, 1), WR(ww_relaxed, 2), WR(wl_relaxed, 4),
	WR(wq_relaxed, 8),
	WR(iowrite8, 1), WR(iowrite16, 2), WR(iowrite32, 4),
	WR(iowrite64_lo_hi, 8), WR(iowrite64_hi_lo, 8),
	WR(lo_hi_writeq, 8), WR(hi_lo_writeq, 8),
};

#undef RD
#undef WR

/* ---- the byte pattern and the hash (mirrored in pciem-vmtest) --------- */

/* splitmix64's finaliser of SEED + (i + 1) * golden ratio; its low byte. */
static u8 trapdrv_pattern(u64 seed, u64 i)
{
	u64 x = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x & 0xff;
}

static u64 trapdrv_fnv1a(const u8 *p, size_t len)
{
	u64 h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- commands ---------------------------------------------------------- */

/* [off, off + len) lies inside BAR0 (len >= 1). */
static bool trapdrv_in_bar(struct trapdrv *td, u64 off, u64 len)
{
	return len && off < td->bar0_len && len <= td->bar0_len - off;
}

/* An instruction pciem's emulator refuses: a locked read-modify-write. */
static noinline u32 trapdrv_bad(void __iomem *p)
{
	u32 v = 1;

	/* lock xaddl %eax, (%rdx) */
	asm volatile(".byte 0xf0, 0x0f, 0xc1, 0x02"
		     : "+a" (v) : "d" (p) : "memory");
	return v;
}

static int trapdrv_string(struct trapdrv *td, const char *op, u64 *a,
			  int n, u64 *res)
{
	u8 *buf;
	u64 i;

	if (n != (strcmp(op, "fromio") ? 3 : 2) ||
	    !trapdrv_in_bar(td, a[0], a[1]))
		return -EINVAL;
	if (!strcmp(op, "setio")) {
		if (a[2] > 0xff)
			return -EINVAL;
		memset_io(td->bar0 + a[0], (int)a[2], a[1]);
		*res = 0;
		return 0;
	}
	buf = kvmalloc(a[1], GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	if (!strcmp(op, "toio")) {
		for (i = 0; i < a[1]; i++)
			buf[i] = trapdrv_pattern(a[2], i);
		memcpy_toio(td->bar0 + a[0], buf, a[1]);
		*res = 0;
	} else {
		memcpy_fromio(buf, td->bar0 + a[0], a[1]);
		*res = trapdrv_fnv1a(buf, a[1]);
	}
	kvfree(buf);
	return 0;
}

static int trapdrv_loop(struct trapdrv *td, u64 *a, int n, u64 *res)
{
	void __iomem *p;
	u32 v = 0;
	u64 i;

	if (n != 2 || !a[0] || a[0] > TRAPDRV_LOOP_MAX ||
	    !trapdrv_in_bar(td, a[1], 4))
		return -EINVAL;
	p = td->bar0 + a[1];
	for (i = 0; i < a[0]; i++) {
		v = readl(p) + 1;
		writel(v, p);
		if (!(i % 256))
			cond_resched();
	}
	*res = v;
	return 0;
}

static int trapdrv_seqstore(struct trapdrv *td, u64 *a, int n, u64 *res)
{
	void __iomem *p;
	unsigned int cpu;
	u64 i;

	if (n != 3 || !a[2] || a[2] > TRAPDRV_SEQ_BATCH ||
	    a[1] >= TRAPDRV_SEQ_LIMIT || a[2] > TRAPDRV_SEQ_LIMIT - a[1])
		return -EINVAL;
	cpu = get_cpu();
	if (cpu > 0xff || !trapdrv_in_bar(td, a[0] + 4ULL * cpu, 4)) {
		put_cpu();
		return -EINVAL;
	}
	p = td->bar0 + a[0] + 4 * cpu;
	for (i = a[1]; i < a[1] + a[2]; i++) {
		u32 v = (u32)cpu << 24 | (u32)i;

		writel(v, p);
		if (readl(p) != v)
			atomic64_inc(&td->seq_errors);
	}
	put_cpu();
	*res = cpu;
	return 0;
}

static int trapdrv_access(struct trapdrv *td,
			  const struct trapdrv_access *acc, u64 *a, int n,
			  u64 *res)
{
	if (n != (acc->rd ? 1 : 2) || !trapdrv_in_bar(td, a[0], acc->width))
		return -EINVAL;
	if (acc->rd) {
		*res = acc->rd(td->bar0 + a[0]);
		return 0;
	}
	if (acc->width < 8 && a[1] >> (8 * acc->width))
		return -EINVAL;
	acc->wr(td->bar0 + a[0], a[1]);
	*res = 0;
	return 0;
}

static int trapdrv_timed(struct trapdrv *td, const char *op, u64 *a, int n,
			 u64 *res);	/* the timed loops, at the end of the file */

static int trapdrv_run(struct trapdrv *td, char *line, u64 *res)
{
	u64 a[TRAPDRV_MAX_ARGS];
	char *op, *tok;
	int n = 0, ret;
	size_t i;

	op = strsep(&line, " \t");
	if (!op || !*op)
		return -EINVAL;
	while ((tok = strsep(&line, " \t"))) {
		if (!*tok)
			continue;
		if (n == TRAPDRV_MAX_ARGS)
			return -E2BIG;
		ret = kstrtou64(tok, 0, &a[n]);
		if (ret)
			return ret;
		n++;
	}
	for (i = 0; i < ARRAY_SIZE(trapdrv_accesses); i++)
		if (!strcmp(op, trapdrv_accesses[i].name))
			return trapdrv_access(td, &trapdrv_accesses[i], a, n,
					      res);
	if (!strcmp(op, "toio") || !strcmp(op, "fromio") ||
	    !strcmp(op, "setio"))
		return trapdrv_string(td, op, a, n, res);
	if (!strcmp(op, "bad")) {
		if (n != 1 || !trapdrv_in_bar(td, a[0], 4))
			return -EINVAL;
		*res = trapdrv_bad(td->bar0 + a[0]);
		return 0;
	}
	if (!strcmp(op, "loop"))
		return trapdrv_loop(td, a, n, res);
	if (!strcmp(op, "seqstore"))
		return trapdrv_seqstore(td, a, n, res);
	if (!strncmp(op, "time_", 5) || !strncmp(op, "irq_", 4))
		return trapdrv_timed(td, op, a, n, res);
	return -EINVAL;
}

static ssize_t cmd_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	struct trapdrv *td = dev_get_drvdata(dev);

	return sysfs_emit(buf, "0x%llx\n", READ_ONCE(td->result));
}

static ssize_t cmd_store(struct device *dev, struct device_attribute *attr,
			 const char *buf, size_t count)
{
	struct trapdrv *td = dev_get_drvdata(dev);
	char line[TRAPDRV_CMD_MAX];
	u64 res = 0;
	int ret;

	if (count >= sizeof(line))
		return -E2BIG;
	memcpy(line, buf, count);
	line[count] = '\0';
	ret = trapdrv_run(td, strim(line), &res);
	if (ret)
		return ret;
	WRITE_ONCE(td->result, res);
	WRITE_ONCE(last_result, res);
	return count;
}
static DEVICE_ATTR_RW(cmd);

static ssize_t probe_value_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct trapdrv *td = dev_get_drvdata(dev);

	return sysfs_emit(buf, "0x%x\n", td->probe_value);
}
static DEVICE_ATTR_RO(probe_value);

static ssize_t seq_errors_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct trapdrv *td = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%lld\n", atomic64_read(&td->seq_errors));
}
static DEVICE_ATTR_RO(seq_errors);

static struct attribute *trapdrv_attrs[] = {
	&dev_attr_cmd.attr,
	&dev_attr_probe_value.attr,
	&dev_attr_seq_errors.attr,
	NULL,
};
ATTRIBUTE_GROUPS(trapdrv);

static int trapdrv_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct trapdrv *td;
	int ret;

	td = devm_kzalloc(&pdev->dev, sizeof(*td), GFP_KERNEL);
	if (!td)
		return -ENOMEM;
	td->pdev = pdev;
	atomic64_set(&td->seq_errors, 0);

	ret = pci_enable_device(pdev);
	if (ret)
		return ret;
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	td->bar0_len = pci_resource_len(pdev, 0);
	if (td->bar0_len < 4) {
		ret = -ENODEV;
		goto err_regions;
	}
	td->bar0 = pci_iomap(pdev, 0, 0);
	if (!td->bar0) {
		ret = -ENOMEM;
		goto err_regions;
	}
	/* An identification register, read the way drivers do at probe. */
	td->probe_value = readl(td->bar0);
	pci_set_drvdata(pdev, td);
	dev_info(&pdev->dev, "bound: BAR0 %pR, probe read 0x%x\n",
		 &pdev->resource[0], td->probe_value);
	return 0;

err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
	return ret;
}

static void trapdrv_remove(struct pci_dev *pdev)
{
	struct trapdrv *td = pci_get_drvdata(pdev);

	pci_iounmap(pdev, td->bar0);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	dev_info(&pdev->dev, "removed\n");
}

static const struct pci_device_id trapdrv_ids[] = {
	{ PCI_DEVICE(0x1f0c, 0x7e56) },
	{ }
};
MODULE_DEVICE_TABLE(pci, trapdrv_ids);

static struct pci_driver trapdrv_driver = {
	.name = "pciem_trapdrv",
	.id_table = trapdrv_ids,
	.probe = trapdrv_probe,
	.remove = trapdrv_remove,
	.dev_groups = trapdrv_groups,
};
module_pci_driver(trapdrv_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Trap-mode test driver for PCIem VM scenarios");

/* ==== timed loops: vmtest-bench (`cargo xtask bench-vm`) ==================
 *
 * Commands that time N accesses inside the kernel, so the sysfs write that
 * starts them is not in the figure. Each access is timed on its own: one
 * ktime_get_ns() after each, the difference from the previous reading is
 * its time (so it includes one clock read and the loop: time_loop measures
 * that floor). The accesses run in chunks of TRAPDRV_TIME_CHUNK with
 * cond_resched() between chunks, outside the timing. Result: the total
 * nanoseconds of the N accesses; `time_pct` gives percentiles of the
 * per-access times of the last timed command (any device).
 *   time_writel OFF N      writel(i, OFF) for i = 1..N
 *   time_readl OFF N       readl(OFF) N times
 *   time_loop N            N timed iterations of nothing (the floor)
 *   time_irqwork N         N times: irq_work_queue() of an irq_work that
 *                          only counts, then wait (interrupts on) until it
 *                          ran: what pciem's ring costs per event for its
 *                          eventfd wake-up (a self-IPI on x86)
 *   time_roundtrip OFF N   N times: note the interrupt count, writel(i,
 *                          OFF), busy-poll (interrupts on) until the count
 *                          moves: one doorbell -> device model -> MSI ->
 *                          handler round trip each. -ETIMEDOUT when one
 *                          takes more than TRAPDRV_RT_TIMEOUT_NS; -ENXIO
 *                          without irq_setup.
 *   time_writel_irqoff, time_readl_irqoff, time_roundtrip_irqoff OFF N
 *                          the same with interrupts off for each chunk:
 *                          an irq_work queued meanwhile (pciem's ring
 *                          queues one per event) stays pending, so it
 *                          raises one self-IPI per chunk, not one per
 *                          access (the round trip's MSI handler still
 *                          runs: on the CPU that injected it)
 *   time_pct P             result: the P-th percentile (0..100, nearest
 *                          rank below) of the last timed command's
 *                          per-access nanoseconds; -ENODATA before any
 *   irq_setup              allocate one MSI vector, request it (its handler
 *                          only counts), enable bus mastering; once per
 *                          bound device (later calls do nothing); released
 *                          when the driver unbinds. Result: the Linux irq.
 *   irq_count              result: interrupts counted since irq_setup
 * N is 1..TRAPDRV_TIME_MAX, OFF + 4 inside BAR0.
 */
#include <linux/interrupt.h>
#include <linux/irq_work.h>
#include <linux/ktime.h>
#include <linux/mutex.h>
#include <linux/sort.h>

#define TRAPDRV_TIME_CHUNK	256u
#define TRAPDRV_TIME_MAX	1000000u
#define TRAPDRV_RT_TIMEOUT_NS	(1000ULL * NSEC_PER_MSEC)

struct trapdrv_timed_irq {
	struct pci_dev *pdev;
	int irq;
	atomic_t count;
};

/* irq_setup against itself; the last timed command's percentiles 0..100. */
static DEFINE_MUTEX(trapdrv_timed_lock);
static u64 trapdrv_last_pct[101];
static bool trapdrv_last_valid;

static irqreturn_t trapdrv_timed_isr(int irq, void *data)
{
	struct trapdrv_timed_irq *ti = data;

	atomic_inc(&ti->count);
	return IRQ_HANDLED;
}

/* devres release: runs when the driver unbinds, after trapdrv_remove(). */
static void trapdrv_timed_irq_release(struct device *dev, void *res)
{
	struct trapdrv_timed_irq *ti = res;

	free_irq(ti->irq, ti);
	pci_free_irq_vectors(ti->pdev);
}

static struct trapdrv_timed_irq *trapdrv_timed_irq_of(struct trapdrv *td)
{
	return devres_find(&td->pdev->dev, trapdrv_timed_irq_release, NULL,
			   NULL);
}

static int trapdrv_irq_setup(struct trapdrv *td, u64 *res)
{
	struct pci_dev *pdev = td->pdev;
	struct trapdrv_timed_irq *ti;
	int ret;

	mutex_lock(&trapdrv_timed_lock);
	ti = trapdrv_timed_irq_of(td);
	if (ti) {
		*res = ti->irq;
		ret = 0;
		goto out;
	}
	ti = devres_alloc(trapdrv_timed_irq_release, sizeof(*ti), GFP_KERNEL);
	if (!ti) {
		ret = -ENOMEM;
		goto out;
	}
	ti->pdev = pdev;
	atomic_set(&ti->count, 0);
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
	if (ret < 0) {
		devres_free(ti);
		goto out;
	}
	ti->irq = pci_irq_vector(pdev, 0);
	ret = request_irq(ti->irq, trapdrv_timed_isr, 0, KBUILD_MODNAME, ti);
	if (ret) {
		pci_free_irq_vectors(pdev);
		devres_free(ti);
		goto out;
	}
	pci_set_master(pdev);
	/* After the MSI data's own devres, so released before it. */
	devres_add(&pdev->dev, ti);
	*res = ti->irq;
out:
	mutex_unlock(&trapdrv_timed_lock);
	return ret;
}

static atomic_t trapdrv_irqwork_runs = ATOMIC_INIT(0);

static void trapdrv_irqwork_fn(struct irq_work *work)
{
	atomic_inc(&trapdrv_irqwork_runs);
}

/* Never pending once a command returned (time_irqwork waits for it). */
static struct irq_work trapdrv_irqwork = IRQ_WORK_INIT(trapdrv_irqwork_fn);

/* Busy-waits, interrupts on, until *ctr differs from c; -ETIMEDOUT. */
static int trapdrv_timed_wait(atomic_t *ctr, int c)
{
	u64 t0 = 0, spins = 0;

	while (atomic_read(ctr) == c) {
		cpu_relax();
		if (++spins % 1024)
			continue;
		if (!t0)
			t0 = ktime_get_ns();
		else if (ktime_get_ns() - t0 > TRAPDRV_RT_TIMEOUT_NS)
			return -ETIMEDOUT;
	}
	return 0;
}

enum trapdrv_timed_op {
	TIMED_WRITEL, TIMED_READL, TIMED_LOOP, TIMED_RT, TIMED_IRQWORK
};

/* One access of kind `op`, iteration i. */
static __always_inline int trapdrv_timed_one(enum trapdrv_timed_op op,
					     void __iomem *p,
					     struct trapdrv_timed_irq *ti,
					     u64 i)
{
	int c, ret;

	switch (op) {
	case TIMED_WRITEL:
		writel((u32)(i + 1), p);
		return 0;
	case TIMED_READL:
		return readl(p) == 0x12345678 ? 1 : 0;	/* never: a sink */
	case TIMED_LOOP:
		barrier();
		return 0;
	case TIMED_RT:
		c = atomic_read(&ti->count);
		writel((u32)(i + 1), p);
		return trapdrv_timed_wait(&ti->count, c);
	case TIMED_IRQWORK:
		c = atomic_read(&trapdrv_irqwork_runs);
		irq_work_queue(&trapdrv_irqwork);
		ret = trapdrv_timed_wait(&trapdrv_irqwork_runs, c);
		if (ret)
			irq_work_sync(&trapdrv_irqwork);
		return ret;
	}
	return -EINVAL;
}

static int trapdrv_cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static int trapdrv_timed(struct trapdrv *td, const char *op, u64 *a, int n,
			 u64 *res)
{
	struct trapdrv_timed_irq *ti = NULL;
	enum trapdrv_timed_op kind;
	void __iomem *p = NULL;
	u64 count, i, end, t0, t1, total = 0, *times;
	unsigned long flags = 0;
	bool irqoff = false;
	size_t len;
	int ret = 0;

	if (!strcmp(op, "irq_setup"))
		return n ? -EINVAL : trapdrv_irq_setup(td, res);
	if (!strcmp(op, "irq_count")) {
		if (n)
			return -EINVAL;
		ti = trapdrv_timed_irq_of(td);
		if (!ti)
			return -ENXIO;
		*res = atomic_read(&ti->count);
		return 0;
	}
	if (!strcmp(op, "time_pct")) {
		if (n != 1 || a[0] > 100)
			return -EINVAL;
		mutex_lock(&trapdrv_timed_lock);
		if (trapdrv_last_valid)
			*res = trapdrv_last_pct[a[0]];
		else
			ret = -ENODATA;
		mutex_unlock(&trapdrv_timed_lock);
		return ret;
	}
	if (!strcmp(op, "time_loop") || !strcmp(op, "time_irqwork")) {
		if (n != 1)
			return -EINVAL;
		kind = strcmp(op, "time_loop") ? TIMED_IRQWORK : TIMED_LOOP;
		count = a[0];
	} else {
		len = strlen(op);
		if (len > 7 && !strcmp(op + len - 7, "_irqoff")) {
			irqoff = true;
			len -= 7;
		}
		if (len == 11 && !strncmp(op, "time_writel", len))
			kind = TIMED_WRITEL;
		else if (len == 10 && !strncmp(op, "time_readl", len))
			kind = TIMED_READL;
		else if (len == 14 && !strncmp(op, "time_roundtrip", len))
			kind = TIMED_RT;
		else
			return -EINVAL;
		if (n != 2 || !trapdrv_in_bar(td, a[0], 4))
			return -EINVAL;
		p = td->bar0 + a[0];
		count = a[1];
	}
	if (!count || count > TRAPDRV_TIME_MAX)
		return -EINVAL;
	if (kind == TIMED_RT) {
		ti = trapdrv_timed_irq_of(td);
		if (!ti)
			return -ENXIO;
	}
	times = kvmalloc_array(count, sizeof(*times), GFP_KERNEL);
	if (!times)
		return -ENOMEM;
	for (i = 0; i < count && ret >= 0; i = end) {
		end = i + min_t(u64, count - i, TRAPDRV_TIME_CHUNK);
		if (irqoff)
			local_irq_save(flags);
		t0 = ktime_get_ns();
		for (; i < end; i++) {
			ret = trapdrv_timed_one(kind, p, ti, i);
			t1 = ktime_get_ns();
			times[i] = t1 - t0;
			total += t1 - t0;
			t0 = t1;
			if (ret < 0)
				break;
		}
		if (irqoff)
			local_irq_restore(flags);
		cond_resched();
	}
	if (ret >= 0) {
		sort(times, count, sizeof(*times), trapdrv_cmp_u64, NULL);
		mutex_lock(&trapdrv_timed_lock);
		for (i = 0; i <= 100; i++)
			trapdrv_last_pct[i] = times[(count - 1) * i / 100];
		trapdrv_last_valid = true;
		mutex_unlock(&trapdrv_timed_lock);
		*res = total;
	}
	kvfree(times);
	return ret < 0 ? ret : 0;
}
