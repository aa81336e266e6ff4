/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * protopciem.h - the /dev/protopciem ABI of the ProtoPCIem driver.
 *
 * GENERATED from crates/protopciem/src/uapi.rs (regenerate: PROTOPCIEM_BLESS=1
 * cargo test -p protopciem --test uapi_header); do not edit. A test fails
 * when this file differs from a fresh rendering.
 */
#ifndef PROTOPCIEM_UAPI_PROTOPCIEM_H
#define PROTOPCIEM_UAPI_PROTOPCIEM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#if defined(__KERNEL__)
#include <linux/build_bug.h>
#elif !defined(__cplusplus)
#include <assert.h>
#endif

#define PROTOPCIEM_ASSERT_SIZE(s, n) \
	static_assert(sizeof(struct s) == (n), "size of " #s)
#define PROTOPCIEM_ASSERT_OFFSET(s, f, off) \
	static_assert(__builtin_offsetof(struct s, f) == (off), #s "." #f)
#define PROTOPCIEM_ASSERT_IOCTL(name, value) \
	static_assert((name) == (value), #name)

#define PROTOPCIEM_MAX_CMDBUF 4194304u
#define PROTOPCIEM_MAX_BUFFER 4194304u
#define PROTOPCIEM_FRAME_BYTES 921600u
#define PROTOPCIEM_NUM_FRAMES 2u
#define PROTOPCIEM_IOCTL_MAGIC 'p'

struct protopciem_compute {
	__u32 data;
	__u32 error_code;
	__u64 result;
};

struct protopciem_buffer {
	__u64 addr;
	__u32 len;
	__u32 error_code;
	__u64 result;
};

struct protopciem_frame {
	__u32 index;
	__u32 error_code;
	__u64 result;
};

struct protopciem_completion {
	__u32 command;
	__u32 status;
	__u32 error_code;
	__u32 driver_errno;
	__u64 result;
	__u64 duration_ns;
};

#define PROTOPCIEM_IOCTL_ADD _IOWR(PROTOPCIEM_IOCTL_MAGIC, 1, struct protopciem_compute)
#define PROTOPCIEM_IOCTL_MULTIPLY _IOWR(PROTOPCIEM_IOCTL_MAGIC, 2, struct protopciem_compute)
#define PROTOPCIEM_IOCTL_XOR _IOWR(PROTOPCIEM_IOCTL_MAGIC, 3, struct protopciem_compute)
#define PROTOPCIEM_IOCTL_PROCESS_BUFFER _IOWR(PROTOPCIEM_IOCTL_MAGIC, 4, struct protopciem_buffer)
#define PROTOPCIEM_IOCTL_SUBMIT_FRAME _IOWR(PROTOPCIEM_IOCTL_MAGIC, 6, struct protopciem_frame)
#define PROTOPCIEM_IOCTL_LAST_COMPLETION \
	_IOR(PROTOPCIEM_IOCTL_MAGIC, 9, struct protopciem_completion)
#define PROTOPCIEM_IOCTL_RESET _IO(PROTOPCIEM_IOCTL_MAGIC, 10)

/* Layouts as the Rust definition has them. */
PROTOPCIEM_ASSERT_SIZE(protopciem_compute, 16);
PROTOPCIEM_ASSERT_OFFSET(protopciem_compute, data, 0);
PROTOPCIEM_ASSERT_OFFSET(protopciem_compute, error_code, 4);
PROTOPCIEM_ASSERT_OFFSET(protopciem_compute, result, 8);
PROTOPCIEM_ASSERT_SIZE(protopciem_buffer, 24);
PROTOPCIEM_ASSERT_OFFSET(protopciem_buffer, addr, 0);
PROTOPCIEM_ASSERT_OFFSET(protopciem_buffer, len, 8);
PROTOPCIEM_ASSERT_OFFSET(protopciem_buffer, error_code, 12);
PROTOPCIEM_ASSERT_OFFSET(protopciem_buffer, result, 16);
PROTOPCIEM_ASSERT_SIZE(protopciem_frame, 16);
PROTOPCIEM_ASSERT_OFFSET(protopciem_frame, index, 0);
PROTOPCIEM_ASSERT_OFFSET(protopciem_frame, error_code, 4);
PROTOPCIEM_ASSERT_OFFSET(protopciem_frame, result, 8);
PROTOPCIEM_ASSERT_SIZE(protopciem_completion, 32);
PROTOPCIEM_ASSERT_OFFSET(protopciem_completion, command, 0);
PROTOPCIEM_ASSERT_OFFSET(protopciem_completion, status, 4);
PROTOPCIEM_ASSERT_OFFSET(protopciem_completion, error_code, 8);
PROTOPCIEM_ASSERT_OFFSET(protopciem_completion, driver_errno, 12);
PROTOPCIEM_ASSERT_OFFSET(protopciem_completion, result, 16);
PROTOPCIEM_ASSERT_OFFSET(protopciem_completion, duration_ns, 24);
/* ioctl numbers as the Rust definition has them. */
PROTOPCIEM_ASSERT_IOCTL(PROTOPCIEM_IOCTL_ADD, 0xc0107001u);
PROTOPCIEM_ASSERT_IOCTL(PROTOPCIEM_IOCTL_MULTIPLY, 0xc0107002u);
PROTOPCIEM_ASSERT_IOCTL(PROTOPCIEM_IOCTL_XOR, 0xc0107003u);
PROTOPCIEM_ASSERT_IOCTL(PROTOPCIEM_IOCTL_PROCESS_BUFFER, 0xc0187004u);
PROTOPCIEM_ASSERT_IOCTL(PROTOPCIEM_IOCTL_SUBMIT_FRAME, 0xc0107006u);
PROTOPCIEM_ASSERT_IOCTL(PROTOPCIEM_IOCTL_LAST_COMPLETION, 0x80207009u);
PROTOPCIEM_ASSERT_IOCTL(PROTOPCIEM_IOCTL_RESET, 0x700au);

#endif /* PROTOPCIEM_UAPI_PROTOPCIEM_H */
