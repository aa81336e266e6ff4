//! The Bochs/QEMU "std VGA" display adapter (PCI 1234:1111) as a PCIem
//! device model, for Linux's own `bochs` DRM driver.
//!
//! - BAR0: video memory (16 MiB by default), prefetchable and directly
//!   mapped, so the driver's and userspace's mappings (TTM, `/dev/fb0`)
//!   reach it without a trap.
//! - BAR2: 4 KiB of registers in trap mode: the EDID ([`edid`]) at 0x000,
//!   the VGA ports 0x3c0..0x3df ([`vga`]) at 0x400, the DISPI registers
//!   ([`dispi`]) at 0x500 and QEMU's extension registers (size, framebuffer
//!   byte order) at 0x600. Reads of registers are answered by the model.
//!
//! [`Bochs`] implements [`pciem_core::Device`]; its [`Display`] handle
//! gives another thread the current [`Scanout`], which renders video
//! memory into a [`Frame`] ([`png_io`] writes it as PNG). [`mock`] is a
//! driver for the mock backend that does what the Linux driver does.
//! See `docs/bochs.md`.

pub mod capture;
pub mod device;
pub mod dispi;
pub mod edid;
pub mod mock;
pub mod pattern;
pub mod png_io;
pub mod regs;
pub mod scanout;
pub mod vga;

pub use device::{Bochs, BochsError, Display};
pub use scanout::{Frame, Mode, Scanout};
