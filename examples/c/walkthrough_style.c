// SPDX-License-Identifier: MIT
/*
 * Compile-only check: a device program written the way the original
 * project's walkthrough writes one (designated initializers, field and
 * constant names, the ring loop) compiles against pciem_userspace.h
 * unchanged. It is never run; counter_device.c is the real program.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pciem_userspace.h"

int main(void)
{
	int fd = open("/dev/pciem", O_RDWR);
	struct pciem_create_device create = {0};
	struct pciem_bar_config bar = {
		.bar_index = 0,
		.size = 4096,
		.flags = PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_32,
	};
	struct pciem_cap_msi_userspace msi = {
		.num_vectors_log2 = 0,
		.has_64bit = 1,
		.has_masking = 0,
	};
	struct pciem_cap_config cap = {
		.cap_type = PCIEM_CAP_MSI,
		.cap_size = sizeof(msi),
	};
	struct pciem_config_space cfg = {
		.vendor_id = 0x1234,
		.device_id = 0x5678,
		.subsys_vendor_id = 0x1234,
		.subsys_device_id = 0x5678,
		.revision = 0x01,
		.class_code = {0x00, 0x00, 0xFF},
		.header_type = 0x00,
	};
	struct pciem_watchpoint_config wp = {
		.bar_index = 0,
		.offset = 0x00,
		.width = 4,
		.flags = PCIEM_WP_FLAG_BAR_KPROBES,
	};
	struct pciem_irq_inject irq = { .vector = 0 };
	int instance_fd, efd;
	struct pciem_eventfd_config efd_cfg;
	struct pciem_shared_ring *ring;
	struct pciem_bar_info_query bar0_info = { .bar_index = 0 };
	volatile uint32_t *bar0;
	uint32_t head, tail;

	ioctl(fd, PCIEM_IOCTL_CREATE_DEVICE, &create);
	ioctl(fd, PCIEM_IOCTL_ADD_BAR, &bar);
	memcpy(cap.cap_data, &msi, sizeof(msi));
	ioctl(fd, PCIEM_IOCTL_ADD_CAPABILITY, &cap);
	ioctl(fd, PCIEM_IOCTL_SET_CONFIG, &cfg);
	ioctl(fd, PCIEM_IOCTL_SET_WATCHPOINT, &wp);
	instance_fd = ioctl(fd, PCIEM_IOCTL_REGISTER, 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	efd_cfg.eventfd = efd;
	ioctl(fd, PCIEM_IOCTL_SET_EVENTFD, &efd_cfg);
	ring = mmap(NULL, sizeof(struct pciem_shared_ring), PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
	head = atomic_load(&ring->head);
	ioctl(fd, PCIEM_IOCTL_GET_BAR_INFO, &bar0_info);
	bar0 = mmap(NULL, bar0_info.size, PROT_READ | PROT_WRITE, MAP_SHARED,
		    instance_fd, 0);
	tail = atomic_load(&ring->tail);
	while (head != tail) {
		atomic_thread_fence(memory_order_acquire);
		struct pciem_event *evt = &ring->events[head];

		switch (evt->type) {
		case PCIEM_EVENT_MMIO_WRITE:
			if (evt->bar == 0 && evt->offset == 0x00 && (evt->data & 1))
				bar0[0x08 / 4] += 1;
			break;
		case PCIEM_EVENT_MMIO_READ:
			printf("Driver read offset 0x%lx\n", evt->offset);
			break;
		}
		head = (head + 1) % PCIEM_RING_SIZE;
		atomic_store(&ring->head, head);
	}
	ioctl(fd, PCIEM_IOCTL_INJECT_IRQ, &irq);
	return 0;
}
