// SPDX-License-Identifier: GPL-2.0
/*
 * main.c - /dev/pciem: one synthetic PCIe device per open file.
 *
 * The control file describes the device (CREATE, ADD_BAR, ADD_CAPABILITY,
 * SET_CONFIG, or a whole SET_CONFIG_IMAGE), REGISTER puts it on its own
 * root bus and returns the instance file, whose mmap maps the BARs. The
 * control file's mmap at offset 0 is the event ring. The other ioctls work
 * on either file; SET_FUNCTION points the per-function ones at function
 * 1..7 of a multi-function device (function.c). When the last of the two
 * files is closed the device is hot-removed and everything it held is
 * released; open files pin the module, so it cannot be unloaded under a
 * live device.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/unaligned.h>

#include "pciem_internal.h"

static char *phys_region;
module_param(phys_region, charp, 0444);
MODULE_PARM_DESC(phys_region,
		 "Physical range backing the BARs, ADDR:SIZE (e.g. 0x3f000000:2M); carve it out of RAM at boot with memmap=SIZE$ADDR");

static const struct file_operations pciem_instance_fops;

/*
 * Devices (open control files) not yet fully released, readable as the
 * live_devices parameter so that tests can see a leaked reference.
 */
static atomic_t pciem_live_devs = ATOMIC_INIT(0);

static int pciem_live_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&pciem_live_devs));
}

static const struct kernel_param_ops pciem_live_ops = {
	.get = pciem_live_get,
};
module_param_cb(live_devices, &pciem_live_ops, NULL, 0444);
MODULE_PARM_DESC(live_devices,
		 "Devices whose last file is not yet released (read-only)");

static int pciem_user_err(int err, const char *what)
{
	pr_info_ratelimited("%s\n", what);
	return err;
}

static void pciem_dev_release(struct kref *kref)
{
	struct pciem_dev *dev = container_of(kref, struct pciem_dev, kref);

	/* A driver waiting for the model's answer to a read stops waiting. */
	pciem_trap_model_gone(dev);
	/* Drivers may be probing from START's worker: let them finish. */
	cancel_work_sync(&dev->start_work);
	/* A surprise removal's driver remove() too. */
	pciem_fault_flush(dev);
	/* irqfds first: their inject work takes dev->lock. */
	pciem_irqfd_release_all(dev);
	/* Breakpoints next: their handler reads the driver's mapping. */
	mutex_lock(&dev->lock);
	pciem_watch_release_all(dev);
	if (dev->state == PCIEM_REGISTERED)
		dev->state = PCIEM_DEAD;
	mutex_unlock(&dev->lock);
	pciem_fn_quiesce(dev);
	pciem_irq_stop(dev);
	pciem_bus_unregister(dev);
	pciem_fn_free_all(dev);
	pciem_ring_free(dev);
	pciem_trap_dev_free(dev);
	vfree(dev->img);
	kfree(dev->builder);
	mutex_destroy(&dev->lock);
	kfree(dev);
	atomic_dec(&pciem_live_devs);
}

void pciem_dev_put(struct pciem_dev *dev)
{
	kref_put(&dev->kref, pciem_dev_release);
}

/*
 * START's bus add. Drivers probe here, in a kernel worker, while the device
 * process runs its event loop and can answer their reads. Neither dev->lock
 * nor any lock the device process needs is held.
 */
static void pciem_start_work_fn(struct work_struct *work)
{
	struct pciem_dev *dev = container_of(work, struct pciem_dev,
					     start_work);

	pci_lock_rescan_remove();
	if (dev->bus && !READ_ONCE(dev->trap_dead) && !dev->removed &&
	    !READ_ONCE(dev->link_down))
		pci_bus_add_devices(dev->bus);
	pci_unlock_rescan_remove();
}

/* START, dev->lock held. */
static int pciem_start(struct pciem_dev *dev)
{
	lockdep_assert_held(&dev->lock);

	if (dev->state != PCIEM_REGISTERED)
		return pciem_user_err(-EINVAL, "START: REGISTER first");
	if (!pciem_fn_any_trapped(dev))
		return pciem_user_err(-EINVAL, "START: only a device with a trapped BAR waits for START; this one was added at REGISTER");
	if (dev->started)
		return pciem_user_err(-EALREADY, "START: already started");
	dev->started = true;
	queue_work(system_unbound_wq, &dev->start_work);
	return 0;
}

static int pciem_open(struct inode *inode, struct file *file)
{
	struct pciem_dev *dev;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	kref_init(&dev->kref);
	mutex_init(&dev->lock);
	raw_spin_lock_init(&dev->cfg_lock);
	pciem_watch_dev_init(dev);
	pciem_irq_dev_init(dev);
	pciem_irqfd_dev_init(dev);
	pciem_dmac_dev_init(dev);
	pciem_fault_dev_init(dev);
	pciem_port_dev_init(dev);
	INIT_WORK(&dev->start_work, pciem_start_work_fn);
	ret = pciem_ring_init(dev);
	if (ret) {
		kfree(dev);
		return ret;
	}
	ret = pciem_trap_dev_init(dev);
	if (ret) {
		pciem_ring_free(dev);
		kfree(dev);
		return ret;
	}
	file->private_data = dev;
	atomic_inc(&pciem_live_devs);
	return 0;
}

static int pciem_release(struct inode *inode, struct file *file)
{
	pciem_dev_put(file->private_data);
	return 0;
}

static int pciem_create(struct pciem_dev *dev, void __user *uarg)
{
	struct pciem_create_device arg;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved)
		return pciem_user_err(-EINVAL, "CREATE_DEVICE: flags and reserved must be zero");
	if (dev->state != PCIEM_EMPTY)
		return pciem_user_err(-EEXIST, "CREATE_DEVICE: this file already describes a device");
	dev->builder = kzalloc(pciem_rs_builder_size(), GFP_KERNEL);
	if (!dev->builder)
		return -ENOMEM;
	pciem_rs_builder_init(dev->builder);
	dev->state = PCIEM_BUILDING;
	return 0;
}

static int pciem_building(struct pciem_dev *dev, const char *what)
{
	if (dev->state == PCIEM_BUILDING)
		return 0;
	pr_info_ratelimited("%s: %s\n", what,
			    dev->state == PCIEM_EMPTY ?
			    "call CREATE_DEVICE first" :
			    dev->state == PCIEM_IMAGE ?
			    "the device is described by a complete image" :
			    "the device is already registered");
	return dev->state == PCIEM_EMPTY ? -EINVAL : -EBUSY;
}

static int pciem_builder_err(int ret, const char *what, const char *reason)
{
	if (ret)
		pr_info_ratelimited("%s: %s (%d)\n", what, reason, ret);
	return ret;
}

static int pciem_add_bar(struct pciem_dev *dev, void __user *uarg)
{
	struct pciem_bar_config arg;
	const char *reason = NULL;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	ret = pciem_building(dev, "ADD_BAR");
	if (ret)
		return ret;
	ret = pciem_rs_builder_add_bar(dev->builder, &arg, &reason);
	return pciem_builder_err(ret, "ADD_BAR", reason);
}

static int pciem_add_cap(struct pciem_dev *dev, void __user *uarg)
{
	struct pciem_cap_config arg;
	const char *reason = NULL;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	ret = pciem_building(dev, "ADD_CAPABILITY");
	if (ret)
		return ret;
	ret = pciem_rs_builder_add_cap(dev->builder, &arg, &reason);
	return pciem_builder_err(ret, "ADD_CAPABILITY", reason);
}

static int pciem_set_config(struct pciem_dev *dev, void __user *uarg)
{
	struct pciem_config_space arg;
	const char *reason = NULL;
	int ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	ret = pciem_building(dev, "SET_CONFIG");
	if (ret)
		return ret;
	ret = pciem_rs_builder_set_identity(dev->builder, &arg, &reason);
	return pciem_builder_err(ret, "SET_CONFIG", reason);
}

static int pciem_set_image(struct pciem_dev *dev, void __user *uarg)
{
	struct pciem_config_image *img;
	const char *reason = NULL;
	int ret;

	if (dev->state == PCIEM_REGISTERED)
		return pciem_user_err(-EBUSY, "SET_CONFIG_IMAGE: the device is already registered");
	img = vmalloc(sizeof(*img));
	if (!img)
		return -ENOMEM;
	if (copy_from_user(img, uarg, sizeof(*img))) {
		vfree(img);
		return -EFAULT;
	}
	ret = pciem_rs_image_validate(img, &reason);
	if (ret) {
		vfree(img);
		return pciem_builder_err(ret, "SET_CONFIG_IMAGE", reason);
	}
	vfree(dev->img);
	dev->img = img;
	kfree(dev->builder);
	dev->builder = NULL;
	dev->state = PCIEM_IMAGE;
	return 0;
}

/* Builds the image of an incrementally described device into dev->img. */
static int pciem_build_image(struct pciem_dev *dev)
{
	const char *reason = NULL;
	int ret;

	if (!dev->img) {
		dev->img = vzalloc(sizeof(*dev->img));
		if (!dev->img)
			return -ENOMEM;
	}
	ret = pciem_rs_builder_build(dev->builder, dev->img, &reason);
	return pciem_builder_err(ret, "REGISTER", reason);
}

/*
 * What a multi-function device must be at REGISTER: every function
 * selected was described, and no root port (its link would be shared by
 * all functions: not in this version). Trapped BARs are per function: each
 * has its own read-response page (page 16 n + 8 of the instance file), and
 * its reads' ids name it (see trap.c).
 */
static int pciem_fn_check_multi(struct pciem_dev *dev)
{
	struct pciem_dev *f;
	int i;

	if (!pciem_fn_multi(dev))
		return 0;
	if (dev->want_port)
		return pciem_user_err(-EOPNOTSUPP, "REGISTER: a multi-function device cannot have a root port (not in this ABI version)");
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++) {
		f = pciem_fn(dev, i);
		if (!f)
			continue;
		if (f->state == PCIEM_EMPTY) {
			pr_info_ratelimited("REGISTER: function %d was selected but never described (CREATE_DEVICE or SET_CONFIG_IMAGE)\n",
					    i);
			return -EINVAL;
		}
	}
	return 0;
}

static int pciem_register(struct pciem_dev *dev)
{
	struct pciem_dev *f;
	struct file *inst;
	int fd, ret, i;
	u16 vendor;

	if (dev->state == PCIEM_EMPTY && pciem_fn_multi(dev))
		return pciem_user_err(-EINVAL, "REGISTER: describe function 0 first (Linux skips a slot without it)");
	if (dev->state == PCIEM_EMPTY)
		return pciem_user_err(-EINVAL, "REGISTER: describe the device first");
	if (dev->state == PCIEM_REGISTERED)
		return pciem_user_err(-EBUSY, "REGISTER: already registered");
	ret = pciem_fn_check_multi(dev);
	if (ret)
		return ret;
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++) {
		f = pciem_fn(dev, i);
		if (!f)
			continue;
		if (f->state == PCIEM_BUILDING) {
			ret = pciem_build_image(f);
			if (ret)
				return ret;
		}
		/*
		 * The PCI core reads these vendor IDs as "no device": refuse
		 * them here with a reason instead of failing the scan later.
		 */
		vendor = get_unaligned_le16(&f->img->config[PCI_VENDOR_ID]);
		if (vendor != 0x0000 && vendor != 0xffff)
			continue;
		if (i)
			pr_info_ratelimited("REGISTER: function %d: vendor ID 0x%04x means no device; set the identity first\n",
					    i, vendor);
		else
			pr_info_ratelimited("REGISTER: vendor ID 0x%04x means no device; set the identity first\n",
					    vendor);
		return -EINVAL;
	}
	/* Linux scans functions 1..7 only if function 0 says there are. */
	if (pciem_fn_multi(dev))
		dev->img->config[PCI_HEADER_TYPE] |= PCI_HEADER_TYPE_MFD;

	fd = get_unused_fd_flags(O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fd;
	kref_get(&dev->kref);
	inst = anon_inode_getfile("[pciem-instance]", &pciem_instance_fops,
				  dev, O_RDWR);
	if (IS_ERR(inst)) {
		kref_put(&dev->kref, pciem_dev_release);
		put_unused_fd(fd);
		return PTR_ERR(inst);
	}

	ret = pciem_bus_register(dev);
	if (ret) {
		put_unused_fd(fd);
		/* Drops the reference taken for it; never the last one. */
		fput(inst);
		return ret;
	}
	for (i = 0; i < PCIEM_MAX_FUNCTIONS; i++)
		if (pciem_fn(dev, i))
			pciem_watch_arm_pending(pciem_fn(dev, i));
	fd_install(fd, inst);
	return fd;
}

static int pciem_get_bar_info(struct pciem_dev *dev, void __user *uarg)
{
	struct pciem_bar_info_query q;
	const char *reason = NULL;
	int ret;

	if (copy_from_user(&q, uarg, sizeof(q)))
		return -EFAULT;
	if (q.bar_index >= PCIEM_NUM_BARS)
		return pciem_user_err(-EINVAL, "GET_BAR_INFO: BAR index out of range");
	q.flags = 0;
	q.size = 0;
	q.bus_addr = 0;
	if (dev->state == PCIEM_REGISTERED) {
		q.size = dev->bars[q.bar_index].size;
		q.flags = dev->bars[q.bar_index].flags;
		q.bus_addr = dev->bars[q.bar_index].phys;
	} else {
		if (dev->state == PCIEM_BUILDING) {
			ret = pciem_build_image(dev);
			if (ret)
				return ret;
		}
		if (!dev->img)
			return pciem_user_err(-EINVAL, "GET_BAR_INFO: describe the device first");
		ret = pciem_rs_bar_info(dev->img, q.bar_index, &q.size,
					&q.flags, &reason);
		if (ret && ret != -ENOENT)
			return pciem_builder_err(ret, "GET_BAR_INFO", reason);
	}
	if (copy_to_user(uarg, &q, sizeof(q)))
		return -EFAULT;
	return 0;
}

/*
 * What the device process does as the device (interrupts, bus mastering,
 * watches on the driver's registers) needs a link; dev->lock held.
 */
static int pciem_ioctl_link_check(struct pciem_dev *dev, unsigned int cmd)
{
	switch (cmd) {
	case PCIEM_IOCTL_INJECT_IRQ:
		return pciem_link_check(dev, "INJECT_IRQ");
	case PCIEM_IOCTL_SET_IRQFD:
		return pciem_link_check(dev, "SET_IRQFD");
	case PCIEM_IOCTL_SET_WATCHPOINT:
		return pciem_link_check(dev, "SET_WATCHPOINT");
	case PCIEM_IOCTL_DMA_READ:
	case PCIEM_IOCTL_DMA_WRITE:
	case PCIEM_IOCTL_DMA_ATOMIC:
	case PCIEM_IOCTL_DMA_INDIRECT:
		return pciem_link_check(dev, "DMA");
	case PCIEM_IOCTL_P2P_READ:
	case PCIEM_IOCTL_P2P_WRITE:
		return pciem_link_check(dev, "P2P");
	case PCIEM_IOCTL_START:
		return pciem_link_check(dev, "START");
	case PCIEM_IOCTL_INJECT_AER:
		return pciem_link_check(dev, "INJECT_AER");
	}
	return 0;
}

/*
 * The ioctls that describe one function or act for it: they go to the
 * function SET_FUNCTION selected. The others are the device's (function
 * 0's): its files, ring, bus and link.
 */
static bool pciem_ioctl_per_function(unsigned int cmd)
{
	switch (cmd) {
	case PCIEM_IOCTL_CREATE_DEVICE:
	case PCIEM_IOCTL_ADD_BAR:
	case PCIEM_IOCTL_ADD_CAPABILITY:
	case PCIEM_IOCTL_SET_CONFIG:
	case PCIEM_IOCTL_SET_CONFIG_IMAGE:
	case PCIEM_IOCTL_GET_BAR_INFO:
	case PCIEM_IOCTL_SET_WATCHPOINT:
	case PCIEM_IOCTL_INJECT_IRQ:
	case PCIEM_IOCTL_SET_IRQFD:
	case PCIEM_IOCTL_DMA_READ:
	case PCIEM_IOCTL_DMA_WRITE:
	case PCIEM_IOCTL_DMA_ATOMIC:
	case PCIEM_IOCTL_DMA_INDIRECT:
	case PCIEM_IOCTL_P2P_READ:
	case PCIEM_IOCTL_P2P_WRITE:
	case PCIEM_IOCTL_SET_BAR_MODE:
	case PCIEM_IOCTL_ADD_TRAP_RANGE:
	case PCIEM_IOCTL_SET_DMA_CHECK:
	case PCIEM_IOCTL_SET_READ_TIMEOUT:
		return true;
	}
	return false;
}

static long pciem_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pciem_dev *dev = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct pciem_dev *fdev;
	long ret;

	if (cmd == PCIEM_IOCTL_GET_VERSION) {
		struct pciem_version v = {
			.abi_version = PCIEM_ABI_VERSION,
			.ring_size = PCIEM_RING_SIZE,
			.event_size = sizeof(struct pciem_event),
		};

		return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
	}
	/*
	 * Without dev->lock: a driver waiting for this answer may hold up
	 * whoever holds the lock.
	 */
	if (cmd == PCIEM_IOCTL_COMPLETE_READ) {
		struct pciem_read_completion rc;

		if (copy_from_user(&rc, uarg, sizeof(rc)))
			return -EFAULT;
		return pciem_trap_complete(dev, &rc);
	}

	mutex_lock(&dev->lock);
	if (cmd == PCIEM_IOCTL_SET_FUNCTION) {
		struct pciem_function fa;

		ret = copy_from_user(&fa, uarg, sizeof(fa)) ? -EFAULT :
			pciem_fn_select(dev, &fa);
		mutex_unlock(&dev->lock);
		return ret;
	}
	/* REGISTER lays out every function; the others address one. */
	if (cmd == PCIEM_IOCTL_REGISTER) {
		pciem_fn_lock_all(dev);
		ret = pciem_register(dev);
		pciem_fn_unlock_all(dev);
		mutex_unlock(&dev->lock);
		return ret;
	}
	fdev = pciem_ioctl_per_function(cmd) && dev->sel ?
		dev->fns[dev->sel] : dev;
	if (fdev != dev)
		mutex_lock_nested(&fdev->lock, fdev->fn_nr);
	ret = pciem_ioctl_link_check(dev, cmd);
	if (ret)
		goto out;
	switch (cmd) {
	case PCIEM_IOCTL_CREATE_DEVICE:
		ret = pciem_create(fdev, uarg);
		break;
	case PCIEM_IOCTL_ADD_BAR:
		ret = pciem_add_bar(fdev, uarg);
		break;
	case PCIEM_IOCTL_ADD_CAPABILITY:
		ret = pciem_add_cap(fdev, uarg);
		break;
	case PCIEM_IOCTL_SET_CONFIG:
		ret = pciem_set_config(fdev, uarg);
		break;
	case PCIEM_IOCTL_SET_CONFIG_IMAGE:
		ret = pciem_set_image(fdev, uarg);
		break;
	case PCIEM_IOCTL_GET_BAR_INFO:
		ret = pciem_get_bar_info(fdev, uarg);
		break;
	case PCIEM_IOCTL_SET_WATCHPOINT: {
		struct pciem_watchpoint_config wp;

		ret = copy_from_user(&wp, uarg, sizeof(wp)) ? -EFAULT :
			pciem_watch_set(fdev, &wp);
		break;
	}
	case PCIEM_IOCTL_SET_EVENTFD: {
		struct pciem_eventfd_config ec;

		if (copy_from_user(&ec, uarg, sizeof(ec)))
			ret = -EFAULT;
		else if (ec.reserved)
			ret = pciem_user_err(-EINVAL, "SET_EVENTFD: reserved must be zero");
		else
			ret = pciem_ring_set_eventfd(dev, ec.eventfd);
		break;
	}
	case PCIEM_IOCTL_INJECT_IRQ: {
		struct pciem_irq_inject irq;

		ret = copy_from_user(&irq, uarg, sizeof(irq)) ? -EFAULT :
			pciem_irq_inject(fdev, &irq);
		break;
	}
	case PCIEM_IOCTL_SET_IRQFD: {
		struct pciem_irqfd_config fdc;

		ret = copy_from_user(&fdc, uarg, sizeof(fdc)) ? -EFAULT :
			pciem_irqfd_set(fdev, &fdc);
		break;
	}
	case PCIEM_IOCTL_DMA_READ:
		ret = pciem_dma_rw(fdev, uarg, false);
		break;
	case PCIEM_IOCTL_DMA_WRITE:
		ret = pciem_dma_rw(fdev, uarg, true);
		break;
	case PCIEM_IOCTL_DMA_ATOMIC:
		ret = pciem_dma_atomic(fdev, uarg);
		break;
	case PCIEM_IOCTL_DMA_INDIRECT:
		ret = pciem_dma_indirect(fdev, uarg);
		break;
	case PCIEM_IOCTL_P2P_READ:
		ret = pciem_p2p_xfer(fdev, uarg, false);
		break;
	case PCIEM_IOCTL_P2P_WRITE:
		ret = pciem_p2p_xfer(fdev, uarg, true);
		break;
	case PCIEM_IOCTL_SET_BAR_MODE: {
		struct pciem_bar_mode bm;

		ret = copy_from_user(&bm, uarg, sizeof(bm)) ? -EFAULT :
			pciem_trap_set_mode(fdev, &bm);
		break;
	}
	case PCIEM_IOCTL_ADD_TRAP_RANGE: {
		struct pciem_trap_range tr;

		ret = copy_from_user(&tr, uarg, sizeof(tr)) ? -EFAULT :
			pciem_trap_add_range(fdev, &tr);
		break;
	}
	case PCIEM_IOCTL_SET_READ_TIMEOUT: {
		struct pciem_read_timeout rt;

		ret = copy_from_user(&rt, uarg, sizeof(rt)) ? -EFAULT :
			pciem_trap_set_timeout(fdev, &rt);
		break;
	}
	case PCIEM_IOCTL_START:
		ret = pciem_start(dev);
		break;
	case PCIEM_IOCTL_SET_DMA_CHECK: {
		struct pciem_dma_check_mode m;

		ret = copy_from_user(&m, uarg, sizeof(m)) ? -EFAULT :
			pciem_dmac_set_mode(fdev, &m);
		break;
	}
	case PCIEM_IOCTL_SET_ROOT_PORT: {
		struct pciem_root_port rp;

		ret = copy_from_user(&rp, uarg, sizeof(rp)) ? -EFAULT :
			pciem_port_set(dev, &rp);
		break;
	}
	case PCIEM_IOCTL_INJECT_AER: {
		struct pciem_aer_inject ai;

		ret = copy_from_user(&ai, uarg, sizeof(ai)) ? -EFAULT :
			pciem_port_inject_aer(dev, &ai);
		break;
	}
	case PCIEM_IOCTL_SURPRISE_REMOVE: {
		struct pciem_surprise_remove sr;

		if (copy_from_user(&sr, uarg, sizeof(sr)))
			ret = -EFAULT;
		else if (pciem_fn_multi(dev))
			ret = pciem_user_err(-EOPNOTSUPP, "SURPRISE_REMOVE: not for a multi-function device (not in this ABI version)");
		else
			ret = pciem_surprise_remove(dev, &sr);
		break;
	}
	default:
		ret = -ENOTTY;
		break;
	}
out:
	if (fdev != dev)
		mutex_unlock(&fdev->lock);
	mutex_unlock(&dev->lock);
	return ret;
}

static int pciem_mmap(struct file *file, struct vm_area_struct *vma)
{
	return pciem_ring_mmap(file->private_data, vma);
}

/* Instance file: mmap offset N pages maps BAR N, and nothing beyond it. */
static int pciem_instance_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pciem_dev *dev = file->private_data;
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long fn, idx;
	struct pciem_bar *bar;

	if (!(vma->vm_flags & VM_SHARED))
		return pciem_user_err(-EINVAL, "BAR mmap: MAP_SHARED required");
	fn = vma->vm_pgoff / PCIEM_MMAP_FUNCTION_STRIDE;
	idx = vma->vm_pgoff % PCIEM_MMAP_FUNCTION_STRIDE;
	/* Function n's read-response page: page 16 n + 8 (8 for function 0). */
	if (idx == PCIEM_MMAP_READ_RESPONSES_PGOFF && fn < PCIEM_MAX_FUNCTIONS) {
		if (fn && !dev->fns[fn])
			return pciem_user_err(-ENXIO, "read-response mmap: no such function");
		return pciem_trap_mmap(fn ? dev->fns[fn] : dev, vma);
	}
	if (idx >= PCIEM_NUM_BARS || fn >= PCIEM_MAX_FUNCTIONS)
		return pciem_user_err(-EINVAL, "BAR mmap: offset must be function * 16 + BAR index in pages (or 8: the read-response page)");
	/* Functions are fixed from REGISTER, before this file existed. */
	if (fn && !dev->fns[fn])
		return pciem_user_err(-ENXIO, "BAR mmap: no such function");
	if (fn)
		dev = dev->fns[fn];
	bar = &dev->bars[idx];
	if (!bar->size)
		return pciem_user_err(-ENXIO, "BAR mmap: the BAR slot is unused");
	if (len > PAGE_ALIGN(bar->size))
		return pciem_user_err(-EINVAL, "BAR mmap: mapping longer than the BAR");
	/* A trapped BAR is ordinary memory; the pool is mapped uncached. */
	if (bar->backing)
		return remap_vmalloc_range(vma, bar->backing, 0);
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	return remap_pfn_range(vma, vma->vm_start, PHYS_PFN(bar->phys), len,
			       vma->vm_page_prot);
}

static const struct file_operations pciem_fops = {
	.owner = THIS_MODULE,
	.open = pciem_open,
	.release = pciem_release,
	.unlocked_ioctl = pciem_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = pciem_mmap,
	.llseek = noop_llseek,
};

static const struct file_operations pciem_instance_fops = {
	.owner = THIS_MODULE,
	.release = pciem_release,
	.unlocked_ioctl = pciem_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = pciem_instance_mmap,
	.llseek = noop_llseek,
};

static struct miscdevice pciem_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "pciem",
	.fops = &pciem_fops,
	.mode = 0600,
};

void pciem_rs_panic(const char *file, u32 file_len, u32 line)
{
	pr_emerg("Rust logic panicked at %.*s:%u\n", (int)file_len, file, line);
	BUG();
}

static int __init pciem_init(void)
{
	int ret;

	ret = pciem_pool_init(phys_region);
	if (ret)
		return ret;
	ret = pciem_p2p_init();
	if (ret)
		goto err_pool;
	ret = pciem_trap_init();
	if (ret)
		goto err_p2p;
	ret = pciem_watch_init();
	if (ret)
		goto err_trap;
	ret = pciem_dmac_init();
	if (ret)
		goto err_watch;
	ret = misc_register(&pciem_misc);
	if (ret)
		goto err_dmac;
	pr_info("ready: /dev/pciem, ABI %u, trap mode %s\n", PCIEM_ABI_VERSION,
		pciem_trap_available() ? "available" : "unavailable");
	return 0;

err_dmac:
	pciem_dmac_exit();
err_watch:
	pciem_watch_exit();
err_trap:
	pciem_trap_exit();
err_p2p:
	pciem_p2p_exit();
err_pool:
	pciem_pool_exit();
	return ret;
}

static void __exit pciem_exit(void)
{
	misc_deregister(&pciem_misc);
	pciem_dmac_exit();
	pciem_watch_exit();
	pciem_trap_exit();
	pciem_p2p_exit();
	pciem_pool_exit();
}

module_init(pciem_init);
module_exit(pciem_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("PCIem: PCIe devices modelled by userspace processes");
MODULE_AUTHOR("PCIem developers");
