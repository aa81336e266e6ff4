// SPDX-License-Identifier: MIT
/*
 * counter_device - the walkthrough's counting device, as a PCIem device
 * program in C, built against the generated header.
 *
 * BAR0 (4 KiB) holds three 32-bit registers:
 *   0x00 CONTROL  writing 1 increments the counter (watched register)
 *   0x04 STATUS   bit 0: an interrupt is pending; the driver writes 0
 *   0x08 COUNTER  current count
 * Every 10 counts the device raises MSI vector 0.
 *
 * Usage: counter_device [VENDOR DEVICE]   (hex, default 1234 5678)
 * Runs until SIGINT/SIGTERM, then closes the device (which removes it).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#define STATUS_IRQ_PENDING (1u << 0)
#define IRQ_EVERY 10

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int fail(const char *what)
{
	fprintf(stderr, "counter_device: %s: %s\n", what, strerror(errno));
	return 1;
}

struct counter {
	int fd;
	volatile uint32_t *bar0;
	uint32_t count;
	uint64_t irqs;
};

static void on_write(struct counter *c, const struct pciem_event *ev)
{
	struct pciem_irq_inject irq = { .vector = 0 };

	if (ev->bar != 0 || ev->offset != REG_CONTROL || !(ev->data & 1))
		return;
	c->count++;
	c->bar0[REG_COUNTER / 4] = c->count;
	if (c->count % IRQ_EVERY)
		return;
	c->bar0[REG_STATUS / 4] |= STATUS_IRQ_PENDING;
	if (ioctl(c->fd, PCIEM_IOCTL_INJECT_IRQ, &irq) < 0)
		fprintf(stderr, "counter_device: inject IRQ: %s\n", strerror(errno));
	else
		c->irqs++;
}

int main(int argc, char **argv)
{
	struct pciem_create_device create = { 0 };
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
		.class_code = { 0x00, 0x00, 0xff },
		.header_type = 0x00,
	};
	struct pciem_watchpoint_config wp = {
		.bar_index = 0,
		.offset = REG_CONTROL,
		.width = 4,
		.flags = PCIEM_WP_FLAG_BAR_KPROBES,
	};
	struct pciem_bar_info_query info = { .bar_index = 0 };
	struct pciem_eventfd_config efd_cfg;
	struct pciem_shared_ring *ring;
	struct counter c = { 0 };
	struct pollfd pfd;
	struct sigaction sa;
	uint32_t head;
	int instance, efd, armed = 0;

	if (argc == 3) {
		cfg.vendor_id = (uint16_t)strtoul(argv[1], NULL, 16);
		cfg.device_id = (uint16_t)strtoul(argv[2], NULL, 16);
		cfg.subsys_vendor_id = cfg.vendor_id;
		cfg.subsys_device_id = cfg.device_id;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	c.fd = open("/dev/pciem", O_RDWR | O_CLOEXEC);
	if (c.fd < 0)
		return fail("open /dev/pciem");
	if (ioctl(c.fd, PCIEM_IOCTL_CREATE_DEVICE, &create) < 0)
		return fail("CREATE_DEVICE");
	if (ioctl(c.fd, PCIEM_IOCTL_ADD_BAR, &bar) < 0)
		return fail("ADD_BAR");
	memcpy(cap.cap_data, &msi, sizeof(msi));
	if (ioctl(c.fd, PCIEM_IOCTL_ADD_CAPABILITY, &cap) < 0)
		return fail("ADD_CAPABILITY");
	if (ioctl(c.fd, PCIEM_IOCTL_SET_CONFIG, &cfg) < 0)
		return fail("SET_CONFIG");
	instance = ioctl(c.fd, PCIEM_IOCTL_REGISTER, 0);
	if (instance < 0)
		return fail("REGISTER");

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return fail("eventfd");
	efd_cfg.eventfd = efd;
	efd_cfg.reserved = 0;
	if (ioctl(c.fd, PCIEM_IOCTL_SET_EVENTFD, &efd_cfg) < 0)
		return fail("SET_EVENTFD");
	ring = mmap(NULL, sizeof(*ring), PROT_READ | PROT_WRITE, MAP_SHARED, c.fd, 0);
	if (ring == MAP_FAILED)
		return fail("mmap ring");
	if (ioctl(c.fd, PCIEM_IOCTL_GET_BAR_INFO, &info) < 0)
		return fail("GET_BAR_INFO");
	c.bar0 = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, instance, 0);
	if (c.bar0 == MAP_FAILED)
		return fail("mmap BAR0");

	printf("counter_device: registered %04x:%04x, BAR0 %llu bytes at %#llx\n",
	       cfg.vendor_id, cfg.device_id, (unsigned long long)info.size,
	       (unsigned long long)info.bus_addr);
	fflush(stdout);

	pfd.fd = efd;
	pfd.events = POLLIN;
	head = atomic_load(&ring->head);
	while (!stop) {
		uint32_t tail;

		/* The watchpoint can only be armed once a driver has mapped
		 * BAR0: retry on EAGAIN until it has. */
		if (!armed) {
			if (ioctl(c.fd, PCIEM_IOCTL_SET_WATCHPOINT, &wp) == 0)
				armed = 1;
			else if (errno != EAGAIN)
				return fail("SET_WATCHPOINT");
		}
		tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
		if (head == tail) {
			if (poll(&pfd, 1, armed ? 1000 : 100) > 0) {
				uint64_t n;

				if (read(efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
					return fail("read eventfd");
			}
			continue;
		}
		while (head != tail) {
			const struct pciem_event *ev = &ring->events[head];

			if (ev->type == PCIEM_EVENT_MMIO_WRITE)
				on_write(&c, ev);
			head = (head + 1) % PCIEM_RING_SIZE;
		}
		atomic_store_explicit(&ring->head, head, memory_order_release);
	}
	printf("counter_device: stopping: count %u, %llu interrupts, %llu events lost\n",
	       c.count, (unsigned long long)c.irqs,
	       (unsigned long long)ring->overflow);
	munmap((void *)c.bar0, info.size);
	munmap(ring, sizeof(*ring));
	close(efd);
	close(instance);
	close(c.fd);
	return 0;
}
