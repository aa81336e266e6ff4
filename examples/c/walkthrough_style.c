// SPDX-License-Identifier: MIT
/*
 * Compile-only check: a device program in the style of the original
 * project's walkthrough (its designated initializers, field names, constant
 * names, ioctl calls and ring loop) compiles against pciem_userspace.h
 * unchanged but for one printf format (see the MMIO_READ case). Error handling is as thin as the walkthrough's; it is never
 * run. counter_device.c is the complete program.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pciem_userspace.h"

#define REG_CONTROL 0x00
#define REG_STATUS 0x04
#define REG_COUNTER 0x08

#define STATUS_IRQ_PENDING (1 << 0)

struct counter_device {
	int fd;
	int instance_fd;
	uint32_t counter;
	uint32_t status;
	struct pciem_shared_ring *ring;
};

static void handle_mmio_write(int fd, struct pciem_event *evt,
			      struct counter_device *dev,
			      volatile uint32_t *bar0)
{
	if (evt->bar == 0 && evt->offset == REG_CONTROL && (evt->data & 1)) {
		dev->counter++;
		bar0[REG_COUNTER / 4] = dev->counter;
		if (dev->counter % 10 == 0) {
			struct pciem_irq_inject irq = { .vector = 0 };

			dev->status |= STATUS_IRQ_PENDING;
			ioctl(fd, PCIEM_IOCTL_INJECT_IRQ, &irq);
		}
	}
}

int main(void)
{
	int fd, ret, instance_fd;

	fd = open("/dev/pciem", O_RDWR);
	if (fd < 0) {
		perror("open /dev/pciem");
		return 1;
	}

	struct pciem_create_device create = {0};
	ret = ioctl(fd, PCIEM_IOCTL_CREATE_DEVICE, &create);
	if (ret < 0)
		return 1;

	struct pciem_bar_config bar = {
		.bar_index = 0,
		.size = 4096,
		.flags = PCI_BASE_ADDRESS_SPACE_MEMORY |
			 PCI_BASE_ADDRESS_MEM_TYPE_32,
	};
	ret = ioctl(fd, PCIEM_IOCTL_ADD_BAR, &bar);

	struct pciem_cap_msi_userspace msi = {
		.num_vectors_log2 = 0,
		.has_64bit = 1,
		.has_masking = 0,
	};
	struct pciem_cap_config cap = {
		.cap_type = PCIEM_CAP_MSI,
		.cap_size = sizeof(msi),
	};
	memcpy(cap.cap_data, &msi, sizeof(msi));
	ret = ioctl(fd, PCIEM_IOCTL_ADD_CAPABILITY, &cap);

	struct pciem_config_space cfg = {
		.vendor_id = 0x1234,
		.device_id = 0x5678,
		.subsys_vendor_id = 0x1234,
		.subsys_device_id = 0x5678,
		.revision = 0x01,
		.class_code = {0x00, 0x00, 0xFF},
		.header_type = 0x00,
	};
	ret = ioctl(fd, PCIEM_IOCTL_SET_CONFIG, &cfg);

	struct pciem_watchpoint_config wp = {
		.bar_index = 0,
		.offset = REG_CONTROL,
		.width = 4,
		.flags = PCIEM_WP_FLAG_BAR_KPROBES,
	};
	ret = ioctl(fd, PCIEM_IOCTL_SET_WATCHPOINT, &wp);
	if (ret < 0)
		perror("SET_WATCHPOINT");

	ret = ioctl(fd, PCIEM_IOCTL_REGISTER, 0);
	if (ret < 0)
		return 1;
	instance_fd = ret;

	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct pciem_eventfd_config efd_cfg = { .eventfd = efd };

	if (ioctl(fd, PCIEM_IOCTL_SET_EVENTFD, &efd_cfg) < 0)
		return 1;

	struct pciem_shared_ring *ring = mmap(NULL, sizeof(struct pciem_shared_ring),
					      PROT_READ | PROT_WRITE, MAP_SHARED,
					      fd, 0);
	uint32_t head = atomic_load(&ring->head);

	struct pciem_bar_info_query bar0_info = { .bar_index = 0 };
	ioctl(fd, PCIEM_IOCTL_GET_BAR_INFO, &bar0_info);

	volatile uint32_t *bar0 = mmap(NULL, bar0_info.size,
				       PROT_READ | PROT_WRITE,
				       MAP_SHARED, instance_fd, 0);

	struct pollfd pfd = {
		.fd = efd,
		.events = POLLIN,
	};
	struct counter_device dev = { .fd = fd, .instance_fd = instance_fd,
				      .counter = 0, .ring = ring };

	while (1) {
		uint32_t tail = atomic_load(&ring->tail);

		if (head == tail) {
			if (poll(&pfd, 1, -1) > 0) {
				uint64_t count;

				if (read(efd, &count, sizeof(count)) < 0 &&
				    errno != EAGAIN)
					break;
			}
			continue;
		}

		while (head != tail) {
			atomic_thread_fence(memory_order_acquire);

			struct pciem_event *evt = &ring->events[head];

			switch (evt->type) {
			case PCIEM_EVENT_MMIO_WRITE:
				handle_mmio_write(fd, evt, &dev, bar0);
				break;
			case PCIEM_EVENT_MMIO_READ:
				/*
				 * The one change from the walkthrough: the
				 * header uses the kernel's uapi types, and
				 * __u64 is unsigned long long (%llx, not %lx).
				 */
				printf("Driver read offset 0x%llx\n", evt->offset);
				break;
			}

			head = (head + 1) % PCIEM_RING_SIZE;
			atomic_store(&ring->head, head);
		}
	}
	return 0;
}
