//! The `/dev/protopciem` ABI of the kernel driver (`kernel/protopciem`),
//! defined once here.
//!
//! The C header `kernel/include/uapi/protopciem.h` is rendered from this
//! module by [`c_header`] (`PROTOPCIEM_BLESS=1 cargo test -p protopciem --test
//! uapi_header` writes it; that test fails when the committed file drifts). The header carries `static_assert`s
//! with the sizes and offsets computed here by the Rust compiler, so the
//! kernel build fails if the C declaration ever lays a struct out
//! differently.
//!
//! # The device file
//!
//! - `write(buf, len)`: run `buf` as a command buffer (EXECUTE_CMDBUF);
//!   `1 <= len <= `[`PROTOPCIEM_MAX_CMDBUF`]. Returns `len`, or `-EIO` when
//!   the card reported an error ([`PROTOPCIEM_IOCTL_LAST_COMPLETION`] says
//!   which), `-ETIMEDOUT` when it did not answer, `-ENODEV` once the card is
//!   gone.
//! - `read(buf, len)` at a file position: the framebuffer as read back from
//!   BAR2 (the first [`PROTOPCIEM_FRAME_BYTES`] bytes).
//! - `mmap`: the two DMA-coherent frame buffers, frame `i` at byte offset
//!   `i * PROTOPCIEM_FRAME_BYTES` (a multiple of the page size).
//! - ioctls below. A command the card ran but failed returns `-EIO` and
//!   still fills in the argument's `error_code` and `result`.

use core::mem::{offset_of, size_of};

use pciem_abi::ioctl::{ioc, IoctlDir};

/// The ioctl type byte of `/dev/protopciem`.
pub const PROTOPCIEM_IOCTL_MAGIC: u8 = b'p';
/// Largest command buffer `write()` accepts (the card's DMA limit).
pub const PROTOPCIEM_MAX_CMDBUF: u32 = crate::regs::MAX_DMA_LEN;
/// Bytes in one frame (640 × 480 RGB888).
pub const PROTOPCIEM_FRAME_BYTES: u32 = crate::framebuffer::FRAME_BYTES as u32;
/// Number of mmap'able frame buffers (double buffering).
pub const PROTOPCIEM_NUM_FRAMES: u32 = 2;
/// Largest buffer [`PROTOPCIEM_IOCTL_PROCESS_BUFFER`] accepts.
pub const PROTOPCIEM_MAX_BUFFER: u32 = crate::regs::MAX_DMA_LEN;

/// Argument of the compute ioctls (ADD, MULTIPLY, XOR).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct protopciem_compute {
    /// In: the operand (DATA).
    pub data: u32,
    /// Out: ERROR_CODE after the command (0 = success).
    pub error_code: u32,
    /// Out: RESULT_HI:RESULT_LO.
    pub result: u64,
}

/// Argument of [`PROTOPCIEM_IOCTL_PROCESS_BUFFER`]: the buffer at `addr`
/// is replaced by the card's transform of it (every byte complemented).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct protopciem_buffer {
    /// In: user address of the buffer.
    pub addr: u64,
    /// In: its length, `1..=PROTOPCIEM_MAX_BUFFER`.
    pub len: u32,
    /// Out: ERROR_CODE.
    pub error_code: u32,
    /// Out: RESULT (the sum of the bytes the card read).
    pub result: u64,
}

/// Argument of [`PROTOPCIEM_IOCTL_SUBMIT_FRAME`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct protopciem_frame {
    /// In: which mmap'ed frame buffer, `0..PROTOPCIEM_NUM_FRAMES`.
    pub index: u32,
    /// Out: ERROR_CODE.
    pub error_code: u32,
    /// Out: RESULT (bytes the card read).
    pub result: u64,
}

/// Argument of [`PROTOPCIEM_IOCTL_LAST_COMPLETION`]: what the last command
/// run through this device (by any file) left in the registers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct protopciem_completion {
    /// Command number (1..=8), 0 if none ran yet.
    pub command: u32,
    /// STATUS as the driver found it on completion.
    pub status: u32,
    /// ERROR_CODE.
    pub error_code: u32,
    /// Driver-side errno of the command (0, or a positive errno such as
    /// `ETIMEDOUT`).
    pub driver_errno: u32,
    /// RESULT.
    pub result: u64,
    /// Nanoseconds from the CMD write to the completion being seen.
    pub duration_ns: u64,
}

/// One ioctl: name, direction, number, argument struct (C name) and size.
#[derive(Clone, Copy, Debug)]
pub struct UapiIoctl {
    /// C name.
    pub name: &'static str,
    /// Direction.
    pub dir: IoctlDir,
    /// Number within [`PROTOPCIEM_IOCTL_MAGIC`].
    pub nr: u8,
    /// Argument struct, `None` for `_IO`.
    pub arg: Option<&'static str>,
    /// The encoded number.
    pub value: u32,
}

const fn num(dir: IoctlDir, nr: u8, size: usize) -> u32 {
    ioc(dir, PROTOPCIEM_IOCTL_MAGIC, nr, size)
}

/// RESULT = DATA + DATA.
pub const PROTOPCIEM_IOCTL_ADD: u32 = num(IoctlDir::ReadWrite, 1, size_of::<protopciem_compute>());
/// RESULT = DATA × DATA.
pub const PROTOPCIEM_IOCTL_MULTIPLY: u32 =
    num(IoctlDir::ReadWrite, 2, size_of::<protopciem_compute>());
/// RESULT = DATA ^ 0xFFFFFFFF.
pub const PROTOPCIEM_IOCTL_XOR: u32 = num(IoctlDir::ReadWrite, 3, size_of::<protopciem_compute>());
/// PROCESS_BUFFER on a user buffer, through the DMA-coherent buffer.
pub const PROTOPCIEM_IOCTL_PROCESS_BUFFER: u32 =
    num(IoctlDir::ReadWrite, 4, size_of::<protopciem_buffer>());
/// DMA_FRAME from one of the mmap'ed frame buffers.
pub const PROTOPCIEM_IOCTL_SUBMIT_FRAME: u32 =
    num(IoctlDir::ReadWrite, 6, size_of::<protopciem_frame>());
/// Read the last completion.
pub const PROTOPCIEM_IOCTL_LAST_COMPLETION: u32 =
    num(IoctlDir::Read, 9, size_of::<protopciem_completion>());
/// Reset and re-enable the card (CONTROL = ENABLE | RESET).
pub const PROTOPCIEM_IOCTL_RESET: u32 = num(IoctlDir::None, 10, 0);

/// Every ioctl, in number order.
pub const PROTOPCIEM_IOCTLS: &[UapiIoctl] = &[
    UapiIoctl {
        name: "PROTOPCIEM_IOCTL_ADD",
        dir: IoctlDir::ReadWrite,
        nr: 1,
        arg: Some("protopciem_compute"),
        value: PROTOPCIEM_IOCTL_ADD,
    },
    UapiIoctl {
        name: "PROTOPCIEM_IOCTL_MULTIPLY",
        dir: IoctlDir::ReadWrite,
        nr: 2,
        arg: Some("protopciem_compute"),
        value: PROTOPCIEM_IOCTL_MULTIPLY,
    },
    UapiIoctl {
        name: "PROTOPCIEM_IOCTL_XOR",
        dir: IoctlDir::ReadWrite,
        nr: 3,
        arg: Some("protopciem_compute"),
        value: PROTOPCIEM_IOCTL_XOR,
    },
    UapiIoctl {
        name: "PROTOPCIEM_IOCTL_PROCESS_BUFFER",
        dir: IoctlDir::ReadWrite,
        nr: 4,
        arg: Some("protopciem_buffer"),
        value: PROTOPCIEM_IOCTL_PROCESS_BUFFER,
    },
    UapiIoctl {
        name: "PROTOPCIEM_IOCTL_SUBMIT_FRAME",
        dir: IoctlDir::ReadWrite,
        nr: 6,
        arg: Some("protopciem_frame"),
        value: PROTOPCIEM_IOCTL_SUBMIT_FRAME,
    },
    UapiIoctl {
        name: "PROTOPCIEM_IOCTL_LAST_COMPLETION",
        dir: IoctlDir::Read,
        nr: 9,
        arg: Some("protopciem_completion"),
        value: PROTOPCIEM_IOCTL_LAST_COMPLETION,
    },
    UapiIoctl {
        name: "PROTOPCIEM_IOCTL_RESET",
        dir: IoctlDir::None,
        nr: 10,
        arg: None,
        value: PROTOPCIEM_IOCTL_RESET,
    },
];

/// One field of a uapi struct: C type, name, offset.
#[derive(Clone, Copy, Debug)]
pub struct UapiField {
    /// C type (`__u32`, `__u64`).
    pub c_type: &'static str,
    /// Name.
    pub name: &'static str,
    /// Byte offset, from `offset_of!` on the Rust struct.
    pub offset: usize,
    /// Byte size.
    pub size: usize,
}

/// One uapi struct.
#[derive(Clone, Copy, Debug)]
pub struct UapiStruct {
    /// C name (without `struct`).
    pub name: &'static str,
    /// `sizeof`, from the Rust struct.
    pub size: usize,
    /// Fields in declaration order.
    pub fields: &'static [UapiField],
}

macro_rules! uapi_structs {
    ($( $ty:ident { $( $field:ident : $rt:ty => $ct:literal ),* $(,)? } )*) => {
        /// Every uapi struct with its layout as the Rust compiler laid it out.
        pub const PROTOPCIEM_STRUCTS: &[UapiStruct] = &[
            $(
                UapiStruct {
                    name: stringify!($ty),
                    size: size_of::<$ty>(),
                    fields: &[ $( UapiField {
                        c_type: $ct,
                        name: stringify!($field),
                        offset: offset_of!($ty, $field),
                        size: size_of::<$rt>(),
                    } ),* ],
                },
            )*
        ];
        // The table must name every field with its real type: a struct
        // literal with exactly these fields fails to compile otherwise.
        #[allow(dead_code)]
        fn _every_field_is_listed() {
            $( let _ = $ty { $( $field: <$rt>::default() ),* }; )*
        }
    };
}

uapi_structs! {
    protopciem_compute { data: u32 => "__u32", error_code: u32 => "__u32", result: u64 => "__u64" }
    protopciem_buffer {
        addr: u64 => "__u64", len: u32 => "__u32", error_code: u32 => "__u32", result: u64 => "__u64"
    }
    protopciem_frame { index: u32 => "__u32", error_code: u32 => "__u32", result: u64 => "__u64" }
    protopciem_completion {
        command: u32 => "__u32", status: u32 => "__u32", error_code: u32 => "__u32",
        driver_errno: u32 => "__u32", result: u64 => "__u64", duration_ns: u64 => "__u64"
    }
}

/// Path of the rendered header, relative to the workspace root.
pub const C_HEADER_PATH: &str = "kernel/include/uapi/protopciem.h";

/// Render the C header `kernel/include/uapi/protopciem.h`.
pub fn c_header() -> String {
    let mut s = String::new();
    s.push_str(
        "/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */\n\
         /*\n \
         * protopciem.h - the /dev/protopciem ABI of the ProtoPCIem driver.\n \
         *\n \
         * GENERATED from crates/protopciem/src/uapi.rs (regenerate: PROTOPCIEM_BLESS=1\n \
         * cargo test -p protopciem --test uapi_header); do not edit. A test fails\n \
         * when this file differs from a fresh rendering.\n \
         */\n\
         #ifndef PROTOPCIEM_UAPI_PROTOPCIEM_H\n\
         #define PROTOPCIEM_UAPI_PROTOPCIEM_H\n\n\
         #include <linux/types.h>\n\
         #include <linux/ioctl.h>\n\n\
         #if defined(__KERNEL__)\n\
         #include <linux/build_bug.h>\n\
         #elif !defined(__cplusplus)\n\
         #include <assert.h>\n\
         #endif\n\n\
         #define PROTOPCIEM_ASSERT_SIZE(s, n) \\\n\
         \tstatic_assert(sizeof(struct s) == (n), \"size of \" #s)\n\
         #define PROTOPCIEM_ASSERT_OFFSET(s, f, off) \\\n\
         \tstatic_assert(__builtin_offsetof(struct s, f) == (off), #s \".\" #f)\n\
         #define PROTOPCIEM_ASSERT_IOCTL(name, value) \\\n\
         \tstatic_assert((name) == (value), #name)\n\n",
    );
    let consts = [
        ("PROTOPCIEM_MAX_CMDBUF", PROTOPCIEM_MAX_CMDBUF),
        ("PROTOPCIEM_MAX_BUFFER", PROTOPCIEM_MAX_BUFFER),
        ("PROTOPCIEM_FRAME_BYTES", PROTOPCIEM_FRAME_BYTES),
        ("PROTOPCIEM_NUM_FRAMES", PROTOPCIEM_NUM_FRAMES),
    ];
    for (name, value) in consts {
        s.push_str(&format!("#define {name} {value}u\n"));
    }
    s.push_str(&format!(
        "#define PROTOPCIEM_IOCTL_MAGIC '{}'\n\n",
        PROTOPCIEM_IOCTL_MAGIC as char
    ));
    for st in PROTOPCIEM_STRUCTS {
        s.push_str(&format!("struct {} {{\n", st.name));
        for f in st.fields {
            s.push_str(&format!("\t{} {};\n", f.c_type, f.name));
        }
        s.push_str("};\n\n");
    }
    for io in PROTOPCIEM_IOCTLS {
        match io.arg {
            Some(arg) => {
                let value = format!(
                    "{}(PROTOPCIEM_IOCTL_MAGIC, {}, struct {arg})",
                    io.dir.c_macro(),
                    io.nr
                );
                // Kernel style: lines of at most 100 columns.
                let sep = if io.name.len() + value.len() + 9 > 100 {
                    " \\\n\t"
                } else {
                    " "
                };
                s.push_str(&format!("#define {}{sep}{value}\n", io.name));
            }
            None => s.push_str(&format!(
                "#define {} _IO(PROTOPCIEM_IOCTL_MAGIC, {})\n",
                io.name, io.nr
            )),
        }
    }
    s.push_str("\n/* Layouts as the Rust definition has them. */\n");
    for st in PROTOPCIEM_STRUCTS {
        s.push_str(&format!(
            "PROTOPCIEM_ASSERT_SIZE({0}, {1});\n",
            st.name, st.size
        ));
        for f in st.fields {
            s.push_str(&format!(
                "PROTOPCIEM_ASSERT_OFFSET({0}, {1}, {2});\n",
                st.name, f.name, f.offset
            ));
        }
    }
    s.push_str("/* ioctl numbers as the Rust definition has them. */\n");
    for io in PROTOPCIEM_IOCTLS {
        s.push_str(&format!(
            "PROTOPCIEM_ASSERT_IOCTL({0}, {1:#x}u);\n",
            io.name, io.value
        ));
    }
    s.push_str("\n#endif /* PROTOPCIEM_UAPI_PROTOPCIEM_H */\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_linux_encoding() {
        // _IOWR('p', 1, 16 bytes) and _IO('p', 10), worked out by hand.
        assert_eq!(PROTOPCIEM_IOCTL_ADD, 0xC010_7001);
        assert_eq!(PROTOPCIEM_IOCTL_RESET, 0x0000_700A);
        assert_eq!(PROTOPCIEM_IOCTL_LAST_COMPLETION, 0x8020_7009);
    }

    #[test]
    fn table_is_consistent() {
        for io in PROTOPCIEM_IOCTLS {
            let size = io
                .arg
                .map(|a| {
                    PROTOPCIEM_STRUCTS
                        .iter()
                        .find(|s| s.name == a)
                        .expect("argument struct listed")
                        .size
                })
                .unwrap_or(0);
            assert_eq!(
                io.value,
                ioc(io.dir, PROTOPCIEM_IOCTL_MAGIC, io.nr, size),
                "{}",
                io.name
            );
        }
        for st in PROTOPCIEM_STRUCTS {
            // No implicit padding: the fields tile the struct exactly.
            let mut end = 0;
            for f in st.fields {
                assert_eq!(
                    f.offset, end,
                    "{}.{} has padding before it",
                    st.name, f.name
                );
                end += f.size;
            }
            assert_eq!(end, st.size, "{} has tail padding", st.name);
        }
        assert_eq!(
            PROTOPCIEM_FRAME_BYTES % 4096,
            0,
            "frames must be page-aligned in mmap"
        );
    }
}
