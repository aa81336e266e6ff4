//! ioctl numbers, encoded as Linux's generic `_IOC` (x86-64, arm64, riscv).

use core::mem::size_of;

use crate::{
    pciem_aer_inject, pciem_bar_config, pciem_bar_info_query, pciem_bar_mode, pciem_cap_config,
    pciem_config_image, pciem_config_space, pciem_create_device, pciem_dma_atomic,
    pciem_dma_check_mode, pciem_dma_indirect, pciem_dma_op, pciem_eventfd_config, pciem_fault_rule,
    pciem_function, pciem_irq_inject, pciem_irqfd_config, pciem_p2p_op, pciem_read_completion,
    pciem_read_timeout, pciem_reinsert, pciem_root_port, pciem_surprise_remove, pciem_trap_range,
    pciem_version, pciem_watchpoint_config,
};

/// The ioctl type byte of PCIem.
pub const PCIEM_IOCTL_MAGIC: u8 = b'P';

/// Direction bits of an ioctl number, from the caller's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoctlDir {
    /// `_IO`: no argument struct.
    None,
    /// `_IOW`: userspace writes the argument.
    Write,
    /// `_IOR`: the kernel fills the argument.
    Read,
    /// `_IOWR`: both.
    ReadWrite,
}

impl IoctlDir {
    /// The `_IOC_*` direction bits.
    pub const fn bits(self) -> u32 {
        match self {
            IoctlDir::None => 0,
            IoctlDir::Write => 1,
            IoctlDir::Read => 2,
            IoctlDir::ReadWrite => 3,
        }
    }

    /// The C macro that encodes this direction.
    pub const fn c_macro(self) -> &'static str {
        match self {
            IoctlDir::None => "_IO",
            IoctlDir::Write => "_IOW",
            IoctlDir::Read => "_IOR",
            IoctlDir::ReadWrite => "_IOWR",
        }
    }
}

/// Linux's `_IOC(dir, type, nr, size)`. `size` must fit in 14 bits; larger
/// sizes fail to compile when used in a constant.
pub const fn ioc(dir: IoctlDir, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size < (1 << 14), "ioctl argument too large for _IOC");
    (dir.bits() << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// One ioctl of the ABI: the data the C header's `#define` is made from.
#[derive(Clone, Copy, Debug)]
pub struct IoctlDef {
    /// C name, e.g. `PCIEM_IOCTL_ADD_BAR`.
    pub name: &'static str,
    /// Direction.
    pub dir: IoctlDir,
    /// Sequence number within [`PCIEM_IOCTL_MAGIC`].
    pub nr: u8,
    /// C struct name of the argument (`None` for `_IO`).
    pub arg: Option<&'static str>,
    /// Size of the argument in bytes (0 for `_IO`).
    pub size: usize,
    /// The encoded number.
    pub value: u32,
}

macro_rules! ioctls {
    ($( $(#[$doc:meta])* $name:ident = $dir:ident, $nr:literal, $arg:tt; )*) => {
        $(
            $(#[$doc])*
            pub const $name: u32 = ioctls!(@value $dir, $nr, $arg);
        )*

        /// Every ioctl of the ABI, in number order.
        pub const PCIEM_IOCTLS: &[IoctlDef] = &[
            $(
                IoctlDef {
                    name: stringify!($name),
                    dir: IoctlDir::$dir,
                    nr: $nr,
                    arg: ioctls!(@name $arg),
                    size: ioctls!(@size $arg),
                    value: $name,
                },
            )*
        ];
    };
    (@value $dir:ident, $nr:literal, $arg:tt) => {
        ioc(IoctlDir::$dir, PCIEM_IOCTL_MAGIC, $nr, ioctls!(@size $arg))
    };
    (@size ()) => { 0 };
    (@size $arg:ident) => { size_of::<$arg>() };
    (@name ()) => { None };
    (@name $arg:ident) => { Some(stringify!($arg)) };
}

ioctls! {
    /// Read the module's ABI version ([`pciem_version`]).
    PCIEM_IOCTL_GET_VERSION = Read, 0x00, pciem_version;
    /// Start describing a device on this file ([`pciem_create_device`]).
    PCIEM_IOCTL_CREATE_DEVICE = Write, 0x01, pciem_create_device;
    /// Add a memory BAR ([`pciem_bar_config`]).
    PCIEM_IOCTL_ADD_BAR = Write, 0x02, pciem_bar_config;
    /// Add a capability ([`pciem_cap_config`]).
    PCIEM_IOCTL_ADD_CAPABILITY = Write, 0x03, pciem_cap_config;
    /// Set the device's identity ([`pciem_config_space`]).
    PCIEM_IOCTL_SET_CONFIG = Write, 0x04, pciem_config_space;
    /// Replace the whole configuration space with a prebuilt image
    /// ([`pciem_config_image`]); BARs are taken from it.
    PCIEM_IOCTL_SET_CONFIG_IMAGE = Write, 0x05, pciem_config_image;
    /// Put the device on the bus. Returns the instance fd, whose mmap at
    /// offset `bar_index * page_size` maps that BAR.
    PCIEM_IOCTL_REGISTER = None, 0x06, ();
    /// Add or clear a watched register ([`pciem_watchpoint_config`]).
    PCIEM_IOCTL_SET_WATCHPOINT = Write, 0x07, pciem_watchpoint_config;
    /// Attach the ring's notification eventfd ([`pciem_eventfd_config`]).
    PCIEM_IOCTL_SET_EVENTFD = Write, 0x08, pciem_eventfd_config;
    /// Bind an eventfd to an interrupt ([`pciem_irqfd_config`]).
    PCIEM_IOCTL_SET_IRQFD = Write, 0x09, pciem_irqfd_config;
    /// Raise (or for INTx, assert/deassert) an interrupt
    /// ([`pciem_irq_inject`]).
    PCIEM_IOCTL_INJECT_IRQ = Write, 0x0A, pciem_irq_inject;
    /// Query a BAR's size and bus address ([`pciem_bar_info_query`]).
    PCIEM_IOCTL_GET_BAR_INFO = ReadWrite, 0x0B, pciem_bar_info_query;
    /// Copy host memory at a bus address into a user buffer
    /// ([`pciem_dma_op`]).
    PCIEM_IOCTL_DMA_READ = Write, 0x0C, pciem_dma_op;
    /// Copy a user buffer into host memory at a bus address
    /// ([`pciem_dma_op`]).
    PCIEM_IOCTL_DMA_WRITE = Write, 0x0D, pciem_dma_op;
    /// One 8-byte atomic on host memory ([`pciem_dma_atomic`]).
    PCIEM_IOCTL_DMA_ATOMIC = ReadWrite, 0x0E, pciem_dma_atomic;
    /// PRP-list scatter DMA ([`pciem_dma_indirect`]).
    PCIEM_IOCTL_DMA_INDIRECT = Write, 0x0F, pciem_dma_indirect;
    /// Read from a whitelisted peer region ([`pciem_p2p_op`]).
    PCIEM_IOCTL_P2P_READ = Write, 0x10, pciem_p2p_op;
    /// Write to a whitelisted peer region ([`pciem_p2p_op`]).
    PCIEM_IOCTL_P2P_WRITE = Write, 0x11, pciem_p2p_op;
    /// Put a BAR in watch or trap mode, before REGISTER ([`pciem_bar_mode`]).
    PCIEM_IOCTL_SET_BAR_MODE = Write, 0x12, pciem_bar_mode;
    /// Declare how a range of a trapped BAR is served, before REGISTER
    /// ([`pciem_trap_range`]).
    PCIEM_IOCTL_ADD_TRAP_RANGE = Write, 0x13, pciem_trap_range;
    /// Set the model-answered read timeout ([`pciem_read_timeout`]).
    PCIEM_IOCTL_SET_READ_TIMEOUT = Write, 0x14, pciem_read_timeout;
    /// Let drivers bind to a registered device with trapped BARs (from a
    /// kernel worker; returns at once). Once only; `EALREADY` after.
    PCIEM_IOCTL_START = None, 0x15, ();
    /// Answer a model-answered read ([`pciem_read_completion`]).
    PCIEM_IOCTL_COMPLETE_READ = Write, 0x16, pciem_read_completion;
    /// Choose the device's DMA check mode, before REGISTER
    /// ([`pciem_dma_check_mode`]).
    PCIEM_IOCTL_SET_DMA_CHECK = Write, 0x17, pciem_dma_check_mode;
    /// Take the device's link down and remove it from the bus as a
    /// surprise hot-unplug ([`pciem_surprise_remove`]); returns once the
    /// link is down, the removal runs in a kernel worker.
    PCIEM_IOCTL_SURPRISE_REMOVE = Write, 0x18, pciem_surprise_remove;
    /// Put a virtual PCIe root port with a hot-plug slot above the device,
    /// before REGISTER ([`pciem_root_port`]).
    PCIEM_IOCTL_SET_ROOT_PORT = Write, 0x19, pciem_root_port;
    /// Report an AER error to the root port ([`pciem_aer_inject`]).
    PCIEM_IOCTL_INJECT_AER = Write, 0x1A, pciem_aer_inject;
    /// Select the function (0..7) that the following ioctls describe or
    /// act for ([`pciem_function`], [`crate::function`]).
    PCIEM_IOCTL_SET_FUNCTION = Write, 0x1B, pciem_function;
    /// Arm one fault rule or clear them all ([`pciem_fault_rule`],
    /// [`crate::fault`]).
    PCIEM_IOCTL_SET_FAULT = Write, 0x1C, pciem_fault_rule;
    /// Bring a surprise-removed device back ([`pciem_reinsert`]); returns
    /// once the link is up, the driver probes from a kernel worker (or
    /// pciehp).
    PCIEM_IOCTL_REINSERT = Write, 0x1D, pciem_reinsert;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_linux_macros() {
        // _IO('P', 6) and _IOW('P', 2, 16-byte struct), computed by hand.
        assert_eq!(PCIEM_IOCTL_REGISTER, 0x0000_5006);
        assert_eq!(PCIEM_IOCTL_ADD_BAR, 0x4010_5002);
        assert_eq!(PCIEM_IOCTL_GET_BAR_INFO, 0xC018_500B);
        assert_eq!(PCIEM_IOCTL_GET_VERSION, 0x8010_5000);
    }

    #[test]
    fn numbers_are_unique_and_in_order() {
        for (i, w) in PCIEM_IOCTLS.windows(2).enumerate() {
            assert!(w[0].nr < w[1].nr, "ioctl {} out of order", i + 1);
        }
    }
}
