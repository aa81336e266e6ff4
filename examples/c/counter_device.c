// SPDX-License-Identifier: MIT
/*
 * counter_device - a PCIem device program in C: the counting device of the
 * original project's walkthrough, built against the generated
 * pciem_userspace.h.
 *
 * The device: vendor:device 1234:5678 (or as given), class 0x00FF00
 * (unclassified), one 4 KiB 32-bit memory BAR, MSI with one vector.
 * BAR0 holds three 32-bit registers:
 *
 *   0x00 CONTROL  the driver writes 1 to count (watched: each write is an
 *                 event in the ring)
 *   0x04 STATUS   bit 0 set when the device raised an interrupt
 *   0x08 COUNTER  the count so far
 *
 * Every tenth count the device raises MSI vector 0. A function reset from
 * the host clears the count.
 *
 * usage: counter_device [-d CONTROL_DEVICE] [VENDOR DEVICE]
 *   CONTROL_DEVICE defaults to /dev/pciem; VENDOR and DEVICE are hex IDs.
 * Runs until SIGINT or SIGTERM, then prints what it did and closes the
 * device, which removes it from the bus. Exit status: 0 after a signal,
 * 1 when a step fails (the step is named on stderr), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
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

#define CONTROL_COUNT (1u << 0)
#define STATUS_IRQ_PENDING (1u << 0)

#define BAR0_SIZE 4096
#define IRQ_EVERY 10

static volatile sig_atomic_t stop_requested;

static void request_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct counter_device {
	int ctl_fd;		/* /dev/pciem: configuration, ioctls, the ring */
	int instance_fd;	/* returned by REGISTER: maps the BARs */
	int event_fd;		/* signalled when the kernel adds events */
	struct pciem_shared_ring *ring;
	volatile uint32_t *bar0;
	size_t bar0_size;
	uint32_t head;		/* next ring slot to consume */
	bool seq_known;
	uint64_t next_seq;	/* expected seq of the next event */

	uint32_t counter;
	uint64_t events;
	uint64_t irqs;
	uint64_t lost;
};

static int step_failed(const char *step)
{
	fprintf(stderr, "counter_device: %s: %s\n", step, strerror(errno));
	return -1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: counter_device [-d CONTROL_DEVICE] [VENDOR DEVICE]\n"
		"  VENDOR, DEVICE: 16-bit IDs in hex (default 1234 5678)\n");
	return 2;
}

static bool parse_id(const char *text, uint16_t *id)
{
	unsigned long value;
	char *end;

	errno = 0;
	value = strtoul(text, &end, 16);
	if (errno || end == text || *end || value > 0xffff)
		return false;
	*id = (uint16_t)value;
	return true;
}

/* Describe the device and put it on the bus. */
static int create_device(struct counter_device *dev, uint16_t vendor,
			 uint16_t device)
{
	struct pciem_create_device create = { 0 };
	struct pciem_bar_config bar = {
		.bar_index = 0,
		.size = BAR0_SIZE,
		.flags = PCI_BASE_ADDRESS_SPACE_MEMORY |
			 PCI_BASE_ADDRESS_MEM_TYPE_32,
	};
	struct pciem_cap_msi_userspace msi = {
		.num_vectors_log2 = 0,	/* one vector */
		.has_64bit = 1,
		.has_masking = 0,
	};
	struct pciem_cap_config cap = {
		.cap_type = PCIEM_CAP_MSI,
		.cap_size = sizeof(msi),
	};
	struct pciem_config_space cfg = {
		.vendor_id = vendor,
		.device_id = device,
		.subsys_vendor_id = vendor,
		.subsys_device_id = device,
		.revision = 0x01,
		.class_code = { 0x00, 0x00, 0xff },
		.header_type = 0x00,
	};
	/* Set before REGISTER: the kernel arms it once a driver maps BAR0. */
	struct pciem_watchpoint_config wp = {
		.bar_index = 0,
		.offset = REG_CONTROL,
		.width = 4,
		.flags = PCIEM_WP_FLAG_BAR_KPROBES,
	};
	int ret;

	memcpy(cap.cap_data, &msi, sizeof(msi));

	if (ioctl(dev->ctl_fd, PCIEM_IOCTL_CREATE_DEVICE, &create) < 0)
		return step_failed("CREATE_DEVICE");
	if (ioctl(dev->ctl_fd, PCIEM_IOCTL_ADD_BAR, &bar) < 0)
		return step_failed("ADD_BAR");
	if (ioctl(dev->ctl_fd, PCIEM_IOCTL_ADD_CAPABILITY, &cap) < 0)
		return step_failed("ADD_CAPABILITY (MSI)");
	if (ioctl(dev->ctl_fd, PCIEM_IOCTL_SET_CONFIG, &cfg) < 0)
		return step_failed("SET_CONFIG");
	if (ioctl(dev->ctl_fd, PCIEM_IOCTL_SET_WATCHPOINT, &wp) < 0)
		return step_failed("SET_WATCHPOINT");
	ret = ioctl(dev->ctl_fd, PCIEM_IOCTL_REGISTER, 0);
	if (ret < 0)
		return step_failed("REGISTER");
	dev->instance_fd = ret;
	return 0;
}

/* The event ring with its eventfd, and BAR0. */
static int map_shared_memory(struct counter_device *dev)
{
	struct pciem_bar_info_query bar0_info = { .bar_index = 0 };
	struct pciem_eventfd_config efd_cfg;
	void *p;

	dev->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->event_fd < 0)
		return step_failed("eventfd");
	efd_cfg = (struct pciem_eventfd_config){ .eventfd = dev->event_fd };
	if (ioctl(dev->ctl_fd, PCIEM_IOCTL_SET_EVENTFD, &efd_cfg) < 0)
		return step_failed("SET_EVENTFD");

	p = mmap(NULL, sizeof(*dev->ring), PROT_READ | PROT_WRITE, MAP_SHARED,
		 dev->ctl_fd, 0);
	if (p == MAP_FAILED)
		return step_failed("mmap event ring");
	dev->ring = p;

	if (ioctl(dev->ctl_fd, PCIEM_IOCTL_GET_BAR_INFO, &bar0_info) < 0)
		return step_failed("GET_BAR_INFO");
	if (bar0_info.size < REG_COUNTER + 4) {
		errno = EPROTO;
		fprintf(stderr, "counter_device: BAR0 has %" PRIu64 " bytes\n",
			(uint64_t)bar0_info.size);
		return step_failed("GET_BAR_INFO");
	}
	p = mmap(NULL, (size_t)bar0_info.size, PROT_READ | PROT_WRITE,
		 MAP_SHARED, dev->instance_fd, 0);
	if (p == MAP_FAILED)
		return step_failed("mmap BAR0");
	dev->bar0 = p;
	dev->bar0_size = (size_t)bar0_info.size;

	printf("counter_device: on the bus, BAR0 %zu bytes at bus address 0x%" PRIx64 "\n",
	       dev->bar0_size, (uint64_t)bar0_info.bus_addr);
	fflush(stdout);
	return 0;
}

static void reset_registers(struct counter_device *dev)
{
	dev->counter = 0;
	dev->bar0[REG_CONTROL / 4] = 0;
	dev->bar0[REG_STATUS / 4] = 0;
	dev->bar0[REG_COUNTER / 4] = 0;
}

static void raise_irq(struct counter_device *dev)
{
	struct pciem_irq_inject irq = { .vector = 0 };

	dev->bar0[REG_STATUS / 4] |= STATUS_IRQ_PENDING;
	if (ioctl(dev->ctl_fd, PCIEM_IOCTL_INJECT_IRQ, &irq) < 0) {
		/* E.g. the driver has not enabled MSI: keep counting. */
		fprintf(stderr, "counter_device: INJECT_IRQ at count %u: %s\n",
			dev->counter, strerror(errno));
		return;
	}
	dev->irqs++;
}

static void handle_mmio_write(struct counter_device *dev,
			      const struct pciem_event *evt)
{
	if (evt->bar != 0 || evt->offset != REG_CONTROL)
		return;
	if (!(evt->data & CONTROL_COUNT))
		return;
	dev->counter++;
	dev->bar0[REG_COUNTER / 4] = dev->counter;
	if (dev->counter % IRQ_EVERY == 0)
		raise_irq(dev);
}

static void handle_event(struct counter_device *dev,
			 const struct pciem_event *evt)
{
	/* seq counts every event the kernel tried to publish, so a gap is
	 * exactly the number lost to a full ring. */
	if (dev->seq_known && evt->seq != dev->next_seq) {
		uint64_t gap = evt->seq - dev->next_seq;

		fprintf(stderr, "counter_device: %" PRIu64 " events lost\n", gap);
		dev->lost += gap;
	}
	dev->seq_known = true;
	dev->next_seq = evt->seq + 1;
	dev->events++;

	switch (evt->type) {
	case PCIEM_EVENT_MMIO_WRITE:
		handle_mmio_write(dev, evt);
		break;
	case PCIEM_EVENT_MMIO_READ:
		printf("counter_device: driver read BAR%u+0x%" PRIx64 "\n",
		       evt->bar, (uint64_t)evt->offset);
		break;
	case PCIEM_EVENT_RESET:
		printf("counter_device: function reset (kind %" PRIu64 "), count cleared\n",
		       (uint64_t)evt->data);
		reset_registers(dev);
		break;
	case PCIEM_EVENT_CONFIG_WRITE:
		/* Nothing in this device depends on configuration writes. */
		break;
	default:
		fprintf(stderr, "counter_device: unknown event type %u\n",
			evt->type);
		break;
	}
}

/* Consume every published event. Returns -1 if the ring is corrupt. */
static int drain_ring(struct counter_device *dev)
{
	uint32_t tail = atomic_load_explicit(&dev->ring->tail,
					     memory_order_acquire);

	if (tail >= PCIEM_RING_SIZE) {
		errno = EPROTO;
		return step_failed("event ring tail out of range");
	}
	while (dev->head != tail) {
		handle_event(dev, &dev->ring->events[dev->head]);
		dev->head = (dev->head + 1) % PCIEM_RING_SIZE;
		/* Hand the slot back to the producer. */
		atomic_store_explicit(&dev->ring->head, dev->head,
				      memory_order_release);
	}
	return 0;
}

/*
 * Sleep until the kernel signals the eventfd or a stop signal arrives.
 * The signals are blocked everywhere except inside ppoll, so one that
 * arrives just before we sleep is not missed.
 */
static int wait_for_events(struct counter_device *dev, const sigset_t *run_mask)
{
	struct pollfd pfd = { .fd = dev->event_fd, .events = POLLIN };
	uint64_t count;

	if (ppoll(&pfd, 1, NULL, run_mask) < 0) {
		if (errno == EINTR)
			return 0;
		return step_failed("ppoll");
	}
	if (read(dev->event_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return step_failed("read eventfd");
	return 0;
}

static int run(struct counter_device *dev, const sigset_t *run_mask)
{
	dev->head = atomic_load(&dev->ring->head);
	if (dev->head >= PCIEM_RING_SIZE) {
		errno = EPROTO;
		return step_failed("event ring head out of range");
	}
	reset_registers(dev);
	while (!stop_requested) {
		if (drain_ring(dev) < 0)
			return -1;
		if (dev->head == atomic_load_explicit(&dev->ring->tail,
						      memory_order_acquire) &&
		    wait_for_events(dev, run_mask) < 0)
			return -1;
	}
	return 0;
}

static void release(struct counter_device *dev)
{
	if (dev->bar0)
		munmap((void *)dev->bar0, dev->bar0_size);
	if (dev->ring)
		munmap(dev->ring, sizeof(*dev->ring));
	if (dev->event_fd >= 0)
		close(dev->event_fd);
	if (dev->instance_fd >= 0)
		close(dev->instance_fd);
	/* Closing the last file removes the device from the bus. */
	if (dev->ctl_fd >= 0)
		close(dev->ctl_fd);
}

int main(int argc, char **argv)
{
	struct counter_device dev = {
		.ctl_fd = -1,
		.instance_fd = -1,
		.event_fd = -1,
	};
	const char *control = "/dev/pciem";
	uint16_t vendor = 0x1234, device = 0x5678;
	struct sigaction sa;
	sigset_t stop_signals, run_mask;
	int argi = 1, status = 1;

	if (argc - argi >= 2 && strcmp(argv[argi], "-d") == 0) {
		control = argv[argi + 1];
		argi += 2;
	}
	if (argc - argi == 2) {
		if (!parse_id(argv[argi], &vendor) ||
		    !parse_id(argv[argi + 1], &device))
			return usage();
	} else if (argc - argi != 0) {
		return usage();
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = request_stop;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	if (sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigprocmask(SIG_BLOCK, &stop_signals, &run_mask) < 0) {
		step_failed("signal setup");
		return 1;
	}
	sigdelset(&run_mask, SIGINT);
	sigdelset(&run_mask, SIGTERM);

	dev.ctl_fd = open(control, O_RDWR | O_CLOEXEC);
	if (dev.ctl_fd < 0) {
		fprintf(stderr, "counter_device: open %s: %s\n", control,
			strerror(errno));
		return 1;
	}
	if (create_device(&dev, vendor, device) == 0 &&
	    map_shared_memory(&dev) == 0) {
		printf("counter_device: %04x:%04x running; SIGINT or SIGTERM stops it\n",
		       vendor, device);
		fflush(stdout);
		if (run(&dev, &run_mask) == 0)
			status = 0;
		printf("counter_device: stopped: count %u, %" PRIu64 " events, %" PRIu64
		       " interrupts, %" PRIu64 " events lost (kernel overflow counter %" PRIu64 ")\n",
		       dev.counter, dev.events, dev.irqs, dev.lost,
		       (uint64_t)atomic_load_explicit(&dev.ring->overflow,
						      memory_order_relaxed));
	}
	release(&dev);
	return status;
}
