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

#if defined(__cplusplus)
#define PROTOPCIEM_STATIC_ASSERT(expr, msg) static_assert(expr, msg)
#else
#define PROTOPCIEM_STATIC_ASSERT(expr, msg) _Static_assert(expr, msg)
#endif

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
#define PROTOPCIEM_IOCTL_LAST_COMPLETION _IOR(PROTOPCIEM_IOCTL_MAGIC, 9, struct protopciem_completion)
#define PROTOPCIEM_IOCTL_RESET _IO(PROTOPCIEM_IOCTL_MAGIC, 10)

/* Layouts as the Rust definition has them. */
PROTOPCIEM_STATIC_ASSERT(sizeof(struct protopciem_compute) == 16, "size of protopciem_compute");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_compute, data) == 0, "protopciem_compute.data");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_compute, error_code) == 4, "protopciem_compute.error_code");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_compute, result) == 8, "protopciem_compute.result");
PROTOPCIEM_STATIC_ASSERT(sizeof(struct protopciem_buffer) == 24, "size of protopciem_buffer");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_buffer, addr) == 0, "protopciem_buffer.addr");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_buffer, len) == 8, "protopciem_buffer.len");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_buffer, error_code) == 12, "protopciem_buffer.error_code");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_buffer, result) == 16, "protopciem_buffer.result");
PROTOPCIEM_STATIC_ASSERT(sizeof(struct protopciem_frame) == 16, "size of protopciem_frame");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_frame, index) == 0, "protopciem_frame.index");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_frame, error_code) == 4, "protopciem_frame.error_code");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_frame, result) == 8, "protopciem_frame.result");
PROTOPCIEM_STATIC_ASSERT(sizeof(struct protopciem_completion) == 32, "size of protopciem_completion");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_completion, command) == 0, "protopciem_completion.command");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_completion, status) == 4, "protopciem_completion.status");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_completion, error_code) == 8, "protopciem_completion.error_code");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_completion, driver_errno) == 12, "protopciem_completion.driver_errno");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_completion, result) == 16, "protopciem_completion.result");
PROTOPCIEM_STATIC_ASSERT(__builtin_offsetof(struct protopciem_completion, duration_ns) == 24, "protopciem_completion.duration_ns");
/* ioctl numbers as the Rust definition has them. */
PROTOPCIEM_STATIC_ASSERT(PROTOPCIEM_IOCTL_ADD == 0xc0107001u, "PROTOPCIEM_IOCTL_ADD");
PROTOPCIEM_STATIC_ASSERT(PROTOPCIEM_IOCTL_MULTIPLY == 0xc0107002u, "PROTOPCIEM_IOCTL_MULTIPLY");
PROTOPCIEM_STATIC_ASSERT(PROTOPCIEM_IOCTL_XOR == 0xc0107003u, "PROTOPCIEM_IOCTL_XOR");
PROTOPCIEM_STATIC_ASSERT(PROTOPCIEM_IOCTL_PROCESS_BUFFER == 0xc0187004u, "PROTOPCIEM_IOCTL_PROCESS_BUFFER");
PROTOPCIEM_STATIC_ASSERT(PROTOPCIEM_IOCTL_SUBMIT_FRAME == 0xc0107006u, "PROTOPCIEM_IOCTL_SUBMIT_FRAME");
PROTOPCIEM_STATIC_ASSERT(PROTOPCIEM_IOCTL_LAST_COMPLETION == 0x80207009u, "PROTOPCIEM_IOCTL_LAST_COMPLETION");
PROTOPCIEM_STATIC_ASSERT(PROTOPCIEM_IOCTL_RESET == 0x700au, "PROTOPCIEM_IOCTL_RESET");

#endif /* PROTOPCIEM_UAPI_PROTOPCIEM_H */
