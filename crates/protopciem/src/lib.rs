//! ProtoPCIem: a small framebuffer and compute accelerator, written as a
//! PCIem device model.
//!
//! The device has a register file in BAR0 ([`regs`]), a 640×480 RGB888
//! framebuffer mirrored into BAR2 ([`framebuffer`]), one MSI vector, and
//! eight commands: three compute commands, a buffer transform
//! ([`transform`]), a command-buffer renderer ([`cmdbuf`]), a whole-frame
//! DMA and peer-to-peer reads and writes. [`ProtoPciem`] implements
//! [`pciem_core::Device`], so the same model runs on the mock backend and
//! on the real `/dev/pciem`.
//!
//! Every malformed input ends the command with STATUS = DONE | ERROR and
//! an [`regs::ErrorCode`] in the ERROR_CODE register; the device stays
//! usable. See `docs/protopciem.md` for the full programming model.

pub mod cmdbuf;
pub mod config;
pub mod demo;
pub mod device;
pub mod framebuffer;
pub mod mock;
pub mod regs;
pub mod transform;
pub mod uapi;

pub use device::{ProtoPciem, Stats};
