// SPDX-License-Identifier: GPL-2.0
/*
 * protopciem.c - driver for the ProtoPCIem framebuffer/compute card
 * (1f0c:0001; programming model in docs/protopciem.md).
 *
 * Probe enables the device, claims and maps BAR0 (registers) and BAR2
 * (framebuffer mirror), allocates the DMA-coherent command buffer and the
 * two frame buffers, takes one interrupt: MSI, else INTx, else none, in
 * which case commands complete by polling STATUS, and resets the card, as
 * a driver for real hardware would. (A PCIem device in watch mode cannot
 * answer during probe: its process is still inside REGISTER. Load the
 * driver with probe_reset=0 for such a card; it then resets before the
 * first command instead.)
 *
 * /dev/protopciem (protopciemN for further cards), ABI in
 * include/uapi/protopciem.h (rendered from crates/protopciem/src/uapi.rs):
 *   write()  a command buffer (<= 4 MiB) -> EXECUTE_CMDBUF
 *   read()   the framebuffer read back from BAR2
 *   mmap()   the two frame buffers, for SUBMIT_FRAME
 *   ioctl()  ADD, MULTIPLY, XOR, PROCESS_BUFFER, SUBMIT_FRAME,
 *            LAST_COMPLETION, RESET
 * sysfs (on the PCI device): stats.
 *
 * One command runs at a time (dev->lock). Every wait is bounded by
 * cmd_timeout_ms and ends early when the card goes away: remove() raises
 * `dying` and wakes the waiter before it takes the lock, so removing the
 * card while a command is in flight returns -ENODEV to that caller instead
 * of hanging. remove() frees the DMA buffers, except frame buffers a
 * process still maps, which stay until the last close; open files keep
 * the driver's state alive, and after remove every operation on them
 * fails with -ENODEV.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include <protopciem.h>

#define PPM_VENDOR		0x1f0c
#define PPM_DEVICE		0x0001

#define PPM_REG_BAR		0
#define PPM_FB_BAR		2
#define PPM_REG_BAR_SIZE	0x10000
#define PPM_FB_BAR_SIZE		0x100000

/* BAR0 registers (crates/protopciem/src/regs.rs). */
#define PPM_CONTROL		0x00
#define PPM_STATUS		0x04
#define PPM_CMD			0x08
#define PPM_DATA		0x0c
#define PPM_RESULT_LO		0x10
#define PPM_RESULT_HI		0x14
#define PPM_DMA_SRC_LO		0x20
#define PPM_DMA_SRC_HI		0x24
#define PPM_DMA_DST_LO		0x28
#define PPM_DMA_DST_HI		0x2c
#define PPM_DMA_LEN		0x30
#define PPM_ERROR_CODE		0x38

#define PPM_CONTROL_ENABLE	BIT(0)
#define PPM_CONTROL_RESET	BIT(1)
#define PPM_STATUS_BUSY		BIT(0)
#define PPM_STATUS_DONE		BIT(1)
#define PPM_STATUS_ERROR	BIT(2)

enum ppm_cmd {
	PPM_CMD_ADD = 1,
	PPM_CMD_MULTIPLY = 2,
	PPM_CMD_XOR = 3,
	PPM_CMD_PROCESS_BUFFER = 4,
	PPM_CMD_EXECUTE_CMDBUF = 5,
	PPM_CMD_DMA_FRAME = 6,
	PPM_NR_CMDS = 9,	/* index 0 unused; 7/8 (P2P) are not exposed */
};

static const char *const ppm_cmd_names[PPM_NR_CMDS] = {
	[PPM_CMD_ADD] = "add",
	[PPM_CMD_MULTIPLY] = "multiply",
	[PPM_CMD_XOR] = "xor",
	[PPM_CMD_PROCESS_BUFFER] = "process_buffer",
	[PPM_CMD_EXECUTE_CMDBUF] = "execute_cmdbuf",
	[PPM_CMD_DMA_FRAME] = "dma_frame",
};

static bool probe_reset = true;
module_param(probe_reset, bool, 0644);
MODULE_PARM_DESC(probe_reset, "Reset the card in probe (default); 0 defers the reset to the first command, for cards that cannot answer during probe");

static unsigned int cmd_timeout_ms = 2000;
module_param(cmd_timeout_ms, uint, 0644);
MODULE_PARM_DESC(cmd_timeout_ms, "How long a command may take before it fails with ETIMEDOUT (ms, 1..60000)");

static bool force_polling;
module_param(force_polling, bool, 0444);
MODULE_PARM_DESC(force_polling, "Complete commands by polling STATUS even when an interrupt is available");

enum ppm_irq_mode { PPM_IRQ_POLL, PPM_IRQ_INTX, PPM_IRQ_MSI };

static const char *const ppm_irq_mode_names[] = {
	[PPM_IRQ_POLL] = "poll",
	[PPM_IRQ_INTX] = "intx",
	[PPM_IRQ_MSI] = "msi",
};

struct ppm_stats {
	atomic64_t by_cmd[PPM_NR_CMDS];
	atomic64_t interrupts;
	atomic64_t device_errors;
	atomic64_t timeouts;
	atomic64_t aborted;
	atomic64_t resets;
	atomic64_t bytes_in;
	atomic64_t fb_reads;
};

struct ppm_dev {
	struct kref ref;
	struct pci_dev *pdev;		/* holds a reference until the last put */
	void __iomem *regs;
	void __iomem *fb;
	int id;
	char name[24];
	struct miscdevice misc;
	bool misc_registered;

	/* Serialises commands and guards everything below it. */
	struct mutex lock;
	bool gone;			/* remove() ran: no hardware any more */
	bool need_reset;
	struct protopciem_completion last;

	/* Set by remove() before it takes `lock`, so waiters give up. */
	atomic_t dying;
	wait_queue_head_t wq;
	enum ppm_irq_mode irq_mode;
	int irq;

	/*
	 * Orders mmap() of a frame against remove() freeing the frames, and
	 * guards the count of user mappings of frames (mmaps).
	 */
	struct mutex map_lock;
	unsigned int mmaps;

	void *cmdbuf;
	dma_addr_t cmdbuf_dma;
	void *frames[PROTOPCIEM_NUM_FRAMES];
	dma_addr_t frames_dma[PROTOPCIEM_NUM_FRAMES];

	struct ppm_stats stats;
};

static DEFINE_IDA(ppm_ida);

/* Frees the command buffer, and the frame buffers too if @frames. */
static void ppm_free_dma(struct ppm_dev *pd, bool frames)
{
	int i;

	for (i = 0; frames && i < PROTOPCIEM_NUM_FRAMES; i++) {
		if (pd->frames[i])
			dma_free_coherent(&pd->pdev->dev, PROTOPCIEM_FRAME_BYTES,
					  pd->frames[i], pd->frames_dma[i]);
		pd->frames[i] = NULL;
	}
	if (pd->cmdbuf)
		dma_free_coherent(&pd->pdev->dev, PROTOPCIEM_MAX_CMDBUF,
				  pd->cmdbuf, pd->cmdbuf_dma);
	pd->cmdbuf = NULL;
}

/* Last reference: no file is open and remove() has run (or probe failed). */
static void ppm_release(struct kref *ref)
{
	struct ppm_dev *pd = container_of(ref, struct ppm_dev, ref);

	ppm_free_dma(pd, true);
	if (pd->id >= 0)
		ida_free(&ppm_ida, pd->id);
	pci_dev_put(pd->pdev);
	kfree(pd);
}

static void ppm_put(struct ppm_dev *pd)
{
	kref_put(&pd->ref, ppm_release);
}

static u32 ppm_rd(struct ppm_dev *pd, u32 reg)
{
	return ioread32(pd->regs + reg);
}

static void ppm_wr(struct ppm_dev *pd, u32 reg, u32 val)
{
	iowrite32(val, pd->regs + reg);
}

static unsigned long ppm_timeout_jiffies(void)
{
	unsigned int ms = clamp(READ_ONCE(cmd_timeout_ms), 1U, 60000U);

	return msecs_to_jiffies(ms);
}

/*
 * Wait until `done(pd)` holds, the card goes away, the timeout passes or
 * the caller is killed. With an interrupt the handler wakes us; with
 * `poll` (no interrupt, or a condition no interrupt announces) we poll.
 */
static int ppm_wait(struct ppm_dev *pd, bool (*done)(struct ppm_dev *pd),
		    bool poll)
{
	unsigned long deadline = jiffies + ppm_timeout_jiffies();
	long left;

	for (;;) {
		if (atomic_read(&pd->dying))
			return -ENODEV;
		if (done(pd))
			return 0;
		if (time_after_eq(jiffies, deadline))
			return done(pd) ? 0 : -ETIMEDOUT;
		if (fatal_signal_pending(current))
			return -EINTR;
		if (poll) {
			usleep_range(20, 100);
			continue;
		}
		left = (long)(deadline - jiffies);
		left = wait_event_killable_timeout(pd->wq,
						   atomic_read(&pd->dying) || done(pd),
						   max(left, 1L));
		if (left == -ERESTARTSYS)
			return -EINTR;
	}
}

static bool ppm_status_done(struct ppm_dev *pd)
{
	return ppm_rd(pd, PPM_STATUS) & PPM_STATUS_DONE;
}

static bool ppm_reset_done(struct ppm_dev *pd)
{
	return !(ppm_rd(pd, PPM_CONTROL) & PPM_CONTROL_RESET);
}

/* CONTROL = ENABLE | RESET, then wait for the card to clear RESET. */
static int ppm_reset_locked(struct ppm_dev *pd)
{
	int ret;

	lockdep_assert_held(&pd->lock);
	if (pd->gone)
		return -ENODEV;
	ppm_wr(pd, PPM_CONTROL, PPM_CONTROL_ENABLE | PPM_CONTROL_RESET);
	/* The reset raises no interrupt: always poll for it. */
	ret = ppm_wait(pd, ppm_reset_done, true);
	if (ret) {
		dev_info_ratelimited(&pd->pdev->dev,
				     "reset did not complete: %d\n", ret);
		pd->need_reset = true;
		return ret;
	}
	if (!(ppm_rd(pd, PPM_CONTROL) & PPM_CONTROL_ENABLE)) {
		dev_info_ratelimited(&pd->pdev->dev,
				     "card not enabled after reset\n");
		pd->need_reset = true;
		return -EIO;
	}
	pd->need_reset = false;
	atomic64_inc(&pd->stats.resets);
	return 0;
}

struct ppm_args {
	u32 data;
	u64 src;
	u64 dst;
	u32 len;
};

/*
 * Run one command: program the operands, write CMD, wait for DONE, collect
 * RESULT and ERROR_CODE, clear STATUS. Returns 0, -EIO when the card
 * reported an error (pd->last says which), or the wait's error.
 */
static int ppm_run_locked(struct ppm_dev *pd, enum ppm_cmd cmd,
			  const struct ppm_args *a)
{
	u64 t0;
	u32 status;
	int ret;

	lockdep_assert_held(&pd->lock);
	if (pd->gone || atomic_read(&pd->dying))
		return -ENODEV;
	if (pd->need_reset) {
		ret = ppm_reset_locked(pd);
		if (ret)
			return ret;
	}

	ppm_wr(pd, PPM_STATUS, 0);
	ppm_wr(pd, PPM_DATA, a->data);
	ppm_wr(pd, PPM_DMA_SRC_LO, lower_32_bits(a->src));
	ppm_wr(pd, PPM_DMA_SRC_HI, upper_32_bits(a->src));
	ppm_wr(pd, PPM_DMA_DST_LO, lower_32_bits(a->dst));
	ppm_wr(pd, PPM_DMA_DST_HI, upper_32_bits(a->dst));
	ppm_wr(pd, PPM_DMA_LEN, a->len);

	memset(&pd->last, 0, sizeof(pd->last));
	pd->last.command = cmd;
	t0 = ktime_get_ns();
	ppm_wr(pd, PPM_CMD, cmd);
	ret = ppm_wait(pd, ppm_status_done,
		       pd->irq_mode == PPM_IRQ_POLL);
	pd->last.duration_ns = ktime_get_ns() - t0;
	atomic64_inc(&pd->stats.by_cmd[cmd]);

	if (ret) {
		pd->last.driver_errno = -ret;
		if (ret == -ETIMEDOUT)
			atomic64_inc(&pd->stats.timeouts);
		else
			atomic64_inc(&pd->stats.aborted);
		/* A late completion must not be taken for the next command's. */
		pd->need_reset = true;
		dev_info_ratelimited(&pd->pdev->dev,
				     "%s did not complete: %d\n",
				     ppm_cmd_names[cmd], ret);
		return ret;
	}

	status = ppm_rd(pd, PPM_STATUS);
	pd->last.status = status;
	pd->last.result = ((u64)ppm_rd(pd, PPM_RESULT_HI) << 32) |
			  ppm_rd(pd, PPM_RESULT_LO);
	pd->last.error_code = ppm_rd(pd, PPM_ERROR_CODE);
	ppm_wr(pd, PPM_STATUS, 0);

	if (status & PPM_STATUS_ERROR) {
		atomic64_inc(&pd->stats.device_errors);
		dev_info_ratelimited(&pd->pdev->dev,
				     "%s failed on the card: error code %u, detail %#llx\n",
				     ppm_cmd_names[cmd], pd->last.error_code,
				     pd->last.result);
		return -EIO;
	}
	return 0;
}

static irqreturn_t ppm_irq(int irq, void *data)
{
	struct ppm_dev *pd = data;

	/* INTx may be shared: claim only what is ours. */
	if (pd->irq_mode == PPM_IRQ_INTX && !ppm_status_done(pd))
		return IRQ_NONE;
	atomic64_inc(&pd->stats.interrupts);
	wake_up(&pd->wq);
	return IRQ_HANDLED;
}

/* ---- /dev/protopciem ---------------------------------------------------- */

static struct ppm_dev *ppm_from_file(struct file *file)
{
	return file->private_data;
}

static int ppm_open(struct inode *inode, struct file *file)
{
	/* misc_open() set private_data to our miscdevice, under misc_mtx. */
	struct miscdevice *misc = file->private_data;
	struct ppm_dev *pd = container_of(misc, struct ppm_dev, misc);

	kref_get(&pd->ref);
	file->private_data = pd;
	return 0;
}

static int ppm_file_release(struct inode *inode, struct file *file)
{
	ppm_put(ppm_from_file(file));
	return 0;
}

static ssize_t ppm_write(struct file *file, const char __user *ubuf,
			 size_t len, loff_t *ppos)
{
	struct ppm_dev *pd = ppm_from_file(file);
	struct ppm_args a = {};
	int ret;

	if (!len)
		return 0;
	if (len > PROTOPCIEM_MAX_CMDBUF) {
		dev_info_ratelimited(&pd->pdev->dev,
				     "command buffer of %zu bytes refused (limit %u)\n",
				     len, PROTOPCIEM_MAX_CMDBUF);
		return -EINVAL;
	}
	if (mutex_lock_killable(&pd->lock))
		return -EINTR;
	if (pd->gone) {
		ret = -ENODEV;
		goto out;
	}
	if (copy_from_user(pd->cmdbuf, ubuf, len)) {
		ret = -EFAULT;
		goto out;
	}
	a.src = pd->cmdbuf_dma;
	a.len = len;
	ret = ppm_run_locked(pd, PPM_CMD_EXECUTE_CMDBUF, &a);
	if (!ret)
		atomic64_add(len, &pd->stats.bytes_in);
out:
	mutex_unlock(&pd->lock);
	return ret ? ret : (ssize_t)len;
}

/* The framebuffer as the card mirrored it into BAR2. */
static ssize_t ppm_read(struct file *file, char __user *ubuf, size_t len,
			loff_t *ppos)
{
	struct ppm_dev *pd = ppm_from_file(file);
	size_t chunk_max = 64 * 1024, done = 0;
	loff_t pos = *ppos;
	void *bounce;
	int ret = 0;

	if (pos < 0)
		return -EINVAL;
	if (pos >= PROTOPCIEM_FRAME_BYTES || !len)
		return 0;
	len = min_t(size_t, len, PROTOPCIEM_FRAME_BYTES - pos);
	bounce = kmalloc(chunk_max, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	if (mutex_lock_killable(&pd->lock)) {
		kfree(bounce);
		return -EINTR;
	}
	if (pd->gone) {
		ret = -ENODEV;
		goto out;
	}
	while (done < len) {
		size_t n = min(len - done, chunk_max);

		memcpy_fromio(bounce, pd->fb + pos + done, n);
		if (copy_to_user(ubuf + done, bounce, n)) {
			ret = -EFAULT;
			break;
		}
		done += n;
	}
	atomic64_inc(&pd->stats.fb_reads);
out:
	mutex_unlock(&pd->lock);
	kfree(bounce);
	if (!done)
		return ret;
	*ppos = pos + done;
	return done;
}

static loff_t ppm_llseek(struct file *file, loff_t off, int whence)
{
	return fixed_size_llseek(file, off, whence, PROTOPCIEM_FRAME_BYTES);
}

/*
 * Counts the user mappings of frames (a split or a fork copies one), so
 * remove() knows whether it may free the frame buffers. The vma holds the
 * file, and the file a reference on pd.
 */
static void ppm_vm_open(struct vm_area_struct *vma)
{
	struct ppm_dev *pd = ppm_from_file(vma->vm_file);

	mutex_lock(&pd->map_lock);
	pd->mmaps++;
	mutex_unlock(&pd->map_lock);
}

static void ppm_vm_close(struct vm_area_struct *vma)
{
	struct ppm_dev *pd = ppm_from_file(vma->vm_file);

	mutex_lock(&pd->map_lock);
	pd->mmaps--;
	mutex_unlock(&pd->map_lock);
}

static const struct vm_operations_struct ppm_vm_ops = {
	.open = ppm_vm_open,
	.close = ppm_vm_close,
};

/* Frame i is at byte offset i * PROTOPCIEM_FRAME_BYTES (page aligned). */
static int ppm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ppm_dev *pd = ppm_from_file(file);
	unsigned long frame_pages = PROTOPCIEM_FRAME_BYTES >> PAGE_SHIFT;
	unsigned long size = vma->vm_end - vma->vm_start;
	unsigned long index;
	int ret;

	if (!(vma->vm_flags & VM_SHARED)) {
		dev_info_ratelimited(&pd->pdev->dev,
				     "mmap of a frame buffer must be MAP_SHARED\n");
		return -EINVAL;
	}
	if (vma->vm_pgoff % frame_pages) {
		dev_info_ratelimited(&pd->pdev->dev,
				     "mmap offset %#lx is not a frame boundary\n",
				     vma->vm_pgoff << PAGE_SHIFT);
		return -EINVAL;
	}
	index = vma->vm_pgoff / frame_pages;
	if (index >= PROTOPCIEM_NUM_FRAMES || size > PROTOPCIEM_FRAME_BYTES) {
		dev_info_ratelimited(&pd->pdev->dev,
				     "mmap of frame %lu, %lu bytes refused\n",
				     index, size);
		return -EINVAL;
	}
	/*
	 * Not dev->lock: mmap() runs under mmap_lock, and write()/read()
	 * fault user pages (taking mmap_lock) while holding dev->lock.
	 * map_lock orders this against remove(), which frees the frames when
	 * no process maps one.
	 */
	mutex_lock(&pd->map_lock);
	if (atomic_read(&pd->dying) || !pd->frames[index]) {
		ret = -ENODEV;
		goto out;
	}
	/* dma_mmap_coherent() reads vm_pgoff as the offset into the buffer. */
	vma->vm_pgoff = 0;
	ret = dma_mmap_coherent(&pd->pdev->dev, vma, pd->frames[index],
				pd->frames_dma[index], PROTOPCIEM_FRAME_BYTES);
	if (!ret) {
		vma->vm_ops = &ppm_vm_ops;
		pd->mmaps++;
	}
out:
	mutex_unlock(&pd->map_lock);
	return ret;
}

static long ppm_ioctl_compute(struct ppm_dev *pd, enum ppm_cmd cmd,
			      void __user *uarg)
{
	struct protopciem_compute c;
	struct ppm_args a = {};
	int ret;

	if (copy_from_user(&c, uarg, sizeof(c)))
		return -EFAULT;
	a.data = c.data;
	if (mutex_lock_killable(&pd->lock))
		return -EINTR;
	ret = ppm_run_locked(pd, cmd, &a);
	c.error_code = pd->last.error_code;
	c.result = pd->last.result;
	mutex_unlock(&pd->lock);
	if ((!ret || ret == -EIO) && copy_to_user(uarg, &c, sizeof(c)))
		return -EFAULT;
	return ret;
}

static long ppm_ioctl_process(struct ppm_dev *pd, void __user *uarg)
{
	struct protopciem_buffer b;
	struct ppm_args a = {};
	void __user *data;
	int ret;

	if (copy_from_user(&b, uarg, sizeof(b)))
		return -EFAULT;
	if (!b.len || b.len > PROTOPCIEM_MAX_BUFFER) {
		dev_info_ratelimited(&pd->pdev->dev,
				     "PROCESS_BUFFER of %u bytes refused (1..%u)\n",
				     b.len, PROTOPCIEM_MAX_BUFFER);
		return -EINVAL;
	}
	data = u64_to_user_ptr(b.addr);
	if (mutex_lock_killable(&pd->lock))
		return -EINTR;
	if (pd->gone) {
		ret = -ENODEV;
		goto out;
	}
	if (copy_from_user(pd->cmdbuf, data, b.len)) {
		ret = -EFAULT;
		goto out;
	}
	a.src = pd->cmdbuf_dma;
	a.dst = pd->cmdbuf_dma;
	a.len = b.len;
	ret = ppm_run_locked(pd, PPM_CMD_PROCESS_BUFFER, &a);
	if (!ret && copy_to_user(data, pd->cmdbuf, b.len))
		ret = -EFAULT;
	b.error_code = pd->last.error_code;
	b.result = pd->last.result;
out:
	mutex_unlock(&pd->lock);
	if ((!ret || ret == -EIO) && copy_to_user(uarg, &b, sizeof(b)))
		return -EFAULT;
	return ret;
}

static long ppm_ioctl_frame(struct ppm_dev *pd, void __user *uarg)
{
	struct protopciem_frame f;
	struct ppm_args a = {};
	int ret;

	if (copy_from_user(&f, uarg, sizeof(f)))
		return -EFAULT;
	if (f.index >= PROTOPCIEM_NUM_FRAMES) {
		dev_info_ratelimited(&pd->pdev->dev,
				     "SUBMIT_FRAME of frame %u refused (0..%u)\n",
				     f.index, PROTOPCIEM_NUM_FRAMES - 1);
		return -EINVAL;
	}
	if (mutex_lock_killable(&pd->lock))
		return -EINTR;
	if (pd->gone) {
		ret = -ENODEV;
		goto out;
	}
	a.src = pd->frames_dma[f.index];
	a.len = PROTOPCIEM_FRAME_BYTES;
	ret = ppm_run_locked(pd, PPM_CMD_DMA_FRAME, &a);
	f.error_code = pd->last.error_code;
	f.result = pd->last.result;
out:
	mutex_unlock(&pd->lock);
	if ((!ret || ret == -EIO) && copy_to_user(uarg, &f, sizeof(f)))
		return -EFAULT;
	return ret;
}

static long ppm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ppm_dev *pd = ppm_from_file(file);
	void __user *uarg = (void __user *)arg;
	struct protopciem_completion last;
	int ret;

	switch (cmd) {
	case PROTOPCIEM_IOCTL_ADD:
		return ppm_ioctl_compute(pd, PPM_CMD_ADD, uarg);
	case PROTOPCIEM_IOCTL_MULTIPLY:
		return ppm_ioctl_compute(pd, PPM_CMD_MULTIPLY, uarg);
	case PROTOPCIEM_IOCTL_XOR:
		return ppm_ioctl_compute(pd, PPM_CMD_XOR, uarg);
	case PROTOPCIEM_IOCTL_PROCESS_BUFFER:
		return ppm_ioctl_process(pd, uarg);
	case PROTOPCIEM_IOCTL_SUBMIT_FRAME:
		return ppm_ioctl_frame(pd, uarg);
	case PROTOPCIEM_IOCTL_LAST_COMPLETION:
		if (mutex_lock_killable(&pd->lock))
			return -EINTR;
		last = pd->last;
		mutex_unlock(&pd->lock);
		return copy_to_user(uarg, &last, sizeof(last)) ? -EFAULT : 0;
	case PROTOPCIEM_IOCTL_RESET:
		if (mutex_lock_killable(&pd->lock))
			return -EINTR;
		ret = ppm_reset_locked(pd);
		mutex_unlock(&pd->lock);
		return ret;
	default:
		dev_info_ratelimited(&pd->pdev->dev, "unknown ioctl %#x\n", cmd);
		return -ENOTTY;
	}
}

static const struct file_operations ppm_fops = {
	.owner = THIS_MODULE,
	.open = ppm_open,
	.release = ppm_file_release,
	.read = ppm_read,
	.write = ppm_write,
	.llseek = ppm_llseek,
	.mmap = ppm_mmap,
	.unlocked_ioctl = ppm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

/* ---- sysfs -------------------------------------------------------------- */

static ssize_t stats_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct ppm_dev *pd = dev_get_drvdata(dev);
	struct ppm_stats *s = &pd->stats;
	u64 total = 0;
	int len = 0, i;

	for (i = 1; i < PPM_NR_CMDS; i++)
		total += atomic64_read(&s->by_cmd[i]);
	len += sysfs_emit_at(buf, len, "commands %llu\n", total);
	for (i = 1; i < PPM_NR_CMDS; i++)
		if (ppm_cmd_names[i])
			len += sysfs_emit_at(buf, len, "%s %lld\n", ppm_cmd_names[i],
					     atomic64_read(&s->by_cmd[i]));
	len += sysfs_emit_at(buf, len, "interrupts %lld\n",
			     atomic64_read(&s->interrupts));
	len += sysfs_emit_at(buf, len, "device_errors %lld\n",
			     atomic64_read(&s->device_errors));
	len += sysfs_emit_at(buf, len, "timeouts %lld\n",
			     atomic64_read(&s->timeouts));
	len += sysfs_emit_at(buf, len, "aborted %lld\n",
			     atomic64_read(&s->aborted));
	len += sysfs_emit_at(buf, len, "resets %lld\n",
			     atomic64_read(&s->resets));
	len += sysfs_emit_at(buf, len, "cmdbuf_bytes %lld\n",
			     atomic64_read(&s->bytes_in));
	len += sysfs_emit_at(buf, len, "fb_reads %lld\n",
			     atomic64_read(&s->fb_reads));
	len += sysfs_emit_at(buf, len, "irq_mode %s\n",
			     ppm_irq_mode_names[pd->irq_mode]);
	return len;
}
static DEVICE_ATTR_RO(stats);

static struct attribute *ppm_attrs[] = {
	&dev_attr_stats.attr,
	NULL,
};
ATTRIBUTE_GROUPS(ppm);

/* ---- probe / remove ----------------------------------------------------- */

static int ppm_alloc_dma(struct ppm_dev *pd)
{
	struct device *dev = &pd->pdev->dev;
	int i;

	pd->cmdbuf = dma_alloc_coherent(dev, PROTOPCIEM_MAX_CMDBUF,
					&pd->cmdbuf_dma, GFP_KERNEL);
	if (!pd->cmdbuf)
		return -ENOMEM;
	for (i = 0; i < PROTOPCIEM_NUM_FRAMES; i++) {
		pd->frames[i] = dma_alloc_coherent(dev, PROTOPCIEM_FRAME_BYTES,
						   &pd->frames_dma[i],
						   GFP_KERNEL);
		if (!pd->frames[i])
			return -ENOMEM;	/* the caller frees what was allocated */
	}
	return 0;
}

/* MSI, else INTx, else polling; only a failure to allocate is fatal. */
static void ppm_setup_irq(struct ppm_dev *pd)
{
	struct pci_dev *pdev = pd->pdev;
	int nvec, ret;

	pd->irq_mode = PPM_IRQ_POLL;
	pd->irq = -1;
	if (force_polling)
		return;
	nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
	if (nvec < 1) {
		dev_info(&pdev->dev, "no MSI or INTx (%d): polling\n", nvec);
		return;
	}
	pd->irq_mode = pdev->msi_enabled ? PPM_IRQ_MSI : PPM_IRQ_INTX;
	pd->irq = pci_irq_vector(pdev, 0);
	ret = request_irq(pd->irq, ppm_irq,
			  pd->irq_mode == PPM_IRQ_INTX ? IRQF_SHARED : 0,
			  pd->name, pd);
	if (ret) {
		dev_info(&pdev->dev, "request_irq(%d) failed (%d): polling\n",
			 pd->irq, ret);
		pci_free_irq_vectors(pdev);
		pd->irq_mode = PPM_IRQ_POLL;
		pd->irq = -1;
	}
}

static void ppm_teardown_irq(struct ppm_dev *pd)
{
	if (pd->irq_mode == PPM_IRQ_POLL)
		return;
	free_irq(pd->irq, pd);
	pci_free_irq_vectors(pd->pdev);
	pd->irq = -1;
}

static int ppm_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct ppm_dev *pd;
	int ret;

	if (pci_resource_len(pdev, PPM_REG_BAR) < PPM_REG_BAR_SIZE ||
	    pci_resource_len(pdev, PPM_FB_BAR) < PROTOPCIEM_FRAME_BYTES ||
	    !(pci_resource_flags(pdev, PPM_REG_BAR) & IORESOURCE_MEM) ||
	    !(pci_resource_flags(pdev, PPM_FB_BAR) & IORESOURCE_MEM)) {
		dev_info(&pdev->dev, "BAR0/BAR2 missing or too small\n");
		return -ENODEV;
	}

	pd = kzalloc(sizeof(*pd), GFP_KERNEL);
	if (!pd)
		return -ENOMEM;
	kref_init(&pd->ref);
	mutex_init(&pd->lock);
	mutex_init(&pd->map_lock);
	init_waitqueue_head(&pd->wq);
	atomic_set(&pd->dying, 0);
	pd->pdev = pci_dev_get(pdev);
	pd->need_reset = true;
	pd->irq_mode = PPM_IRQ_POLL;
	pd->id = ida_alloc(&ppm_ida, GFP_KERNEL);
	if (pd->id < 0) {
		ret = pd->id;
		goto err_put;
	}
	if (pd->id == 0)
		snprintf(pd->name, sizeof(pd->name), "protopciem");
	else
		snprintf(pd->name, sizeof(pd->name), "protopciem%d", pd->id);

	ret = pci_enable_device_mem(pdev);
	if (ret)
		goto err_put;
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(32));
	if (ret)
		goto err_regions;

	pd->regs = pci_iomap(pdev, PPM_REG_BAR, PPM_REG_BAR_SIZE);
	if (!pd->regs) {
		ret = -ENOMEM;
		goto err_regions;
	}
	pd->fb = pci_iomap(pdev, PPM_FB_BAR, PROTOPCIEM_FRAME_BYTES);
	if (!pd->fb) {
		ret = -ENOMEM;
		goto err_unmap_regs;
	}
	ret = ppm_alloc_dma(pd);
	if (ret) {
		dev_info(&pdev->dev, "cannot allocate DMA buffers\n");
		goto err_free_dma;
	}

	pci_set_drvdata(pdev, pd);
	ppm_setup_irq(pd);
	if (probe_reset) {
		mutex_lock(&pd->lock);
		ret = ppm_reset_locked(pd);
		mutex_unlock(&pd->lock);
		if (ret) {
			dev_info(&pdev->dev, "the card did not reset in probe (%d)\n",
				 ret);
			goto err_irq;
		}
	}

	pd->misc.minor = MISC_DYNAMIC_MINOR;
	pd->misc.name = pd->name;
	pd->misc.fops = &ppm_fops;
	pd->misc.parent = &pdev->dev;
	pd->misc.mode = 0600;
	ret = misc_register(&pd->misc);
	if (ret)
		goto err_irq;
	pd->misc_registered = true;

	dev_info(&pdev->dev, "ProtoPCIem: /dev/%s, %s, cmdbuf %u bytes at %pad\n",
		 pd->name, ppm_irq_mode_names[pd->irq_mode],
		 PROTOPCIEM_MAX_CMDBUF, &pd->cmdbuf_dma);
	return 0;

err_irq:
	ppm_teardown_irq(pd);
	pci_set_drvdata(pdev, NULL);
err_free_dma:
	ppm_free_dma(pd, true);
	pci_iounmap(pdev, pd->fb);
err_unmap_regs:
	pci_iounmap(pdev, pd->regs);
err_regions:
	pci_clear_master(pdev);
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_put:
	ppm_put(pd);
	return ret;
}

/*
 * The DMA buffers go while the driver is still bound, as the DMA API asks
 * (what is left at unbind is a leak), except frame buffers a process
 * still maps: freeing those would leave the mapping on freed pages, so
 * they stay until the last close, and the unbind reports them.
 */
static void ppm_free_unmapped_dma(struct ppm_dev *pd)
{
	mutex_lock(&pd->map_lock);
	if (pd->mmaps)
		dev_info(&pd->pdev->dev,
			 "%u frame mapping(s) still open: frame buffers freed at the last close\n",
			 pd->mmaps);
	ppm_free_dma(pd, !pd->mmaps);
	mutex_unlock(&pd->map_lock);
}

static void ppm_remove(struct pci_dev *pdev)
{
	struct ppm_dev *pd = pci_get_drvdata(pdev);

	/* Make a command in flight give up now, then wait for it. */
	atomic_set(&pd->dying, 1);
	wake_up_all(&pd->wq);
	misc_deregister(&pd->misc);	/* no new opens after this */
	mutex_lock(&pd->lock);
	pd->gone = true;
	mutex_unlock(&pd->lock);

	ppm_teardown_irq(pd);
	pci_iounmap(pdev, pd->fb);
	pci_iounmap(pdev, pd->regs);
	pd->fb = NULL;
	pd->regs = NULL;
	pci_clear_master(pdev);
	ppm_free_unmapped_dma(pd);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	pci_set_drvdata(pdev, NULL);
	dev_info(&pdev->dev, "removed (%lld timeouts, %lld aborted commands)\n",
		 atomic64_read(&pd->stats.timeouts),
		 atomic64_read(&pd->stats.aborted));
	ppm_put(pd);
}

static const struct pci_device_id ppm_ids[] = {
	{ PCI_DEVICE(PPM_VENDOR, PPM_DEVICE) },
	{ }
};
MODULE_DEVICE_TABLE(pci, ppm_ids);

static struct pci_driver ppm_driver = {
	.name = KBUILD_MODNAME,
	.id_table = ppm_ids,
	.probe = ppm_probe,
	.remove = ppm_remove,
	.dev_groups = ppm_groups,
};
module_pci_driver(ppm_driver);

MODULE_DESCRIPTION("Driver for the ProtoPCIem framebuffer/compute card");
MODULE_LICENSE("GPL");
