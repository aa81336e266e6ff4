//! Configuration space: the image with its masks, the builder, capabilities.
//!
//! PLACEHOLDER API: signatures fixed by the lead; bodies are being written.

use pciem_abi::{pciem_config_image, BarFlags};

/// Error of a configuration access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// Size other than 1, 2 or 4.
    #[error("access size {0} is not 1, 2 or 4")]
    BadSize(u8),
    /// Access past the end of configuration space.
    #[error("access of {size} bytes at {offset:#x} is past the end of configuration space")]
    OutOfRange {
        /// Offset.
        offset: u16,
        /// Size.
        size: u8,
    },
}

/// Error of the builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Placeholder.
    #[error("placeholder")]
    Placeholder,
}

bitflags::bitflags! {
    /// What a host configuration write changed.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct WriteEffects: u32 {
        /// Some bit changed.
        const CHANGED = 1 << 0;
        /// The command register changed.
        const COMMAND = 1 << 1;
        /// A BAR changed.
        const BAR = 1 << 2;
        /// MSI control, address, data or mask changed.
        const MSI = 1 << 3;
        /// MSI-X control changed.
        const MSIX = 1 << 4;
        /// The PM power state changed.
        const PM_STATE = 1 << 5;
        /// Function Level Reset was requested.
        const FLR = 1 << 6;
        /// D3hot to D0 without No_Soft_Reset: the function resets.
        const D3HOT_TO_D0_RESET = 1 << 7;
    }
}

/// A configuration space with its write and write-1-to-clear masks.
#[repr(transparent)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSpace {
    image: pciem_config_image,
}

/// A BAR as the configuration space describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarInfo {
    /// Slot.
    pub index: u8,
    /// Size in bytes.
    pub size: u64,
    /// Type bits.
    pub flags: BarFlags,
    /// Address currently programmed.
    pub address: u64,
}

/// MSI capability state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiState {
    /// Capability offset.
    pub offset: u16,
    /// MSI enable.
    pub enabled: bool,
    /// Vectors the device supports.
    pub vectors_capable: u32,
    /// Vectors the driver enabled.
    pub vectors_enabled: u32,
    /// 64-bit address capable.
    pub is_64bit: bool,
    /// Per-vector masking capable.
    pub per_vector_mask: bool,
    /// Message address.
    pub address: u64,
    /// Message data.
    pub data: u16,
    /// Mask bits.
    pub mask: u32,
    /// Pending bits.
    pub pending: u32,
}

/// MSI-X capability state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixState {
    /// Capability offset.
    pub offset: u16,
    /// MSI-X enable.
    pub enabled: bool,
    /// Function mask.
    pub function_mask: bool,
    /// Table entries.
    pub table_size: u32,
    /// Table BAR.
    pub table_bar: u8,
    /// Table offset.
    pub table_offset: u32,
    /// PBA BAR.
    pub pba_bar: u8,
    /// PBA offset.
    pub pba_offset: u32,
}

impl ConfigSpace {
    /// Wrap an image.
    pub fn from_image(image: pciem_config_image) -> Self {
        Self { image }
    }
    /// The image.
    pub fn image(&self) -> &pciem_config_image {
        &self.image
    }
    /// Host read.
    pub fn read(&self, offset: u16, size: u8) -> Result<u32, AccessError> {
        let _ = (offset, size);
        todo!()
    }
    /// Host write.
    pub fn write(&mut self, offset: u16, size: u8, value: u32) -> Result<WriteEffects, AccessError> {
        let _ = (offset, size, value);
        todo!()
    }
    /// BAR info.
    pub fn bar(&self, index: u8) -> Option<BarInfo> {
        let _ = index;
        todo!()
    }
    /// MSI state.
    pub fn msi(&self) -> Option<MsiState> {
        todo!()
    }
    /// MSI-X state.
    pub fn msix(&self) -> Option<MsixState> {
        todo!()
    }
}

/// Builder placeholder.
#[derive(Clone, Debug)]
pub struct ConfigBuilder;

/// BAR placeholder.
#[derive(Clone, Copy, Debug)]
pub struct Bar;

impl Bar {
    /// 32-bit memory BAR.
    pub fn memory32(size: u64) -> Self {
        let _ = size;
        Bar
    }
    /// 64-bit memory BAR.
    pub fn memory64(size: u64) -> Self {
        let _ = size;
        Bar
    }
    /// Prefetchable.
    pub fn prefetchable(self) -> Self {
        self
    }
}

/// MSI placeholder.
#[derive(Clone, Copy, Debug)]
pub struct MsiCap;

impl MsiCap {
    /// `vectors` vectors.
    pub fn new(vectors: u32) -> Self {
        let _ = vectors;
        MsiCap
    }
}

impl ConfigBuilder {
    /// New builder.
    pub fn new(vendor: u16, device: u16) -> Self {
        let _ = (vendor, device);
        ConfigBuilder
    }
    /// Class code.
    pub fn class(self, base: u8, sub: u8, prog_if: u8) -> Self {
        let _ = (base, sub, prog_if);
        self
    }
    /// BAR.
    pub fn bar(self, index: u8, bar: Bar) -> Self {
        let _ = (index, bar);
        self
    }
    /// MSI.
    pub fn msi(self, msi: MsiCap) -> Self {
        let _ = msi;
        self
    }
    /// Build.
    pub fn build(&self) -> Result<ConfigSpace, BuildError> {
        todo!()
    }
}
