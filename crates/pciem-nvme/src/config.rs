//! What the controller says it is: PCI identity, serial, model, firmware
//! revision, and the shape of its one namespace.

/// The namespace's logical block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LbaSize {
    /// 512-byte blocks.
    B512,
    /// 4096-byte blocks.
    B4096,
}

impl LbaSize {
    /// Bytes per block.
    pub const fn bytes(self) -> u64 {
        match self {
            LbaSize::B512 => 512,
            LbaSize::B4096 => 4096,
        }
    }

    /// log2 of the block size (the LBA format's LBADS).
    pub const fn shift(self) -> u32 {
        match self {
            LbaSize::B512 => 9,
            LbaSize::B4096 => 12,
        }
    }

    /// The block size of `bytes`, if supported.
    pub const fn from_bytes(bytes: u64) -> Option<Self> {
        match bytes {
            512 => Some(LbaSize::B512),
            4096 => Some(LbaSize::B4096),
            _ => None,
        }
    }
}

/// Why a configuration is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A text field is longer than Identify Controller holds.
    #[error("{field} {value:?} is longer than {max} bytes")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: String,
        /// The field's size.
        max: usize,
    },
    /// A text field holds something other than printable ASCII.
    #[error("{field} {value:?} must be printable ASCII")]
    NotAscii {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// The namespace size is not a whole number of blocks, or is empty.
    #[error("size {size} is not a positive multiple of the {lba_size}-byte block size")]
    BadSize {
        /// Size in bytes.
        size: u64,
        /// Block size.
        lba_size: u64,
    },
}

/// The controller's identity and namespace shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvmeConfig {
    /// PCI vendor ID (also Identify Controller VID).
    pub vendor_id: u16,
    /// PCI device ID.
    pub device_id: u16,
    /// PCI subsystem vendor ID (also Identify Controller SSVID).
    pub subsystem_vendor_id: u16,
    /// PCI subsystem ID.
    pub subsystem_id: u16,
    /// Serial number, at most 20 ASCII characters.
    pub serial: String,
    /// Model number, at most 40 ASCII characters.
    pub model: String,
    /// Firmware revision, at most 8 ASCII characters.
    pub firmware: String,
    /// Namespace size in bytes.
    pub size: u64,
    /// Logical block size.
    pub lba_size: LbaSize,
}

impl Default for NvmeConfig {
    fn default() -> Self {
        NvmeConfig {
            vendor_id: 0x1234,
            device_id: 0x4e56,
            subsystem_vendor_id: 0x1234,
            subsystem_id: 0x0001,
            serial: "PCIEM0001".into(),
            model: "PCIem NVMe controller".into(),
            firmware: "0.1".into(),
            size: 64 << 20,
            lba_size: LbaSize::B512,
        }
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), ConfigError> {
    if value.len() > max {
        return Err(ConfigError::TooLong {
            field,
            value: value.into(),
            max,
        });
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ConfigError::NotAscii {
            field,
            value: value.into(),
        });
    }
    Ok(())
}

impl NvmeConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_text("serial", &self.serial, 20)?;
        check_text("model", &self.model, 40)?;
        check_text("firmware revision", &self.firmware, 8)?;
        let lbs = self.lba_size.bytes();
        if self.size == 0 || self.size % lbs != 0 {
            return Err(ConfigError::BadSize {
                size: self.size,
                lba_size: lbs,
            });
        }
        Ok(())
    }

    /// Namespace size in blocks.
    pub fn blocks(&self) -> u64 {
        self.size >> self.lba_size.shift()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let ok = NvmeConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.blocks(), (64 << 20) / 512);
        let long = NvmeConfig {
            serial: "x".repeat(21),
            ..ok.clone()
        };
        assert!(matches!(long.validate(), Err(ConfigError::TooLong { .. })));
        let bad = NvmeConfig {
            model: "caf\u{e9}".into(),
            ..ok.clone()
        };
        assert!(matches!(bad.validate(), Err(ConfigError::NotAscii { .. })));
        let odd = NvmeConfig {
            size: 4096 * 3 + 512,
            lba_size: LbaSize::B4096,
            ..ok
        };
        assert!(matches!(odd.validate(), Err(ConfigError::BadSize { .. })));
        assert_eq!(LbaSize::from_bytes(4096), Some(LbaSize::B4096));
        assert_eq!(LbaSize::from_bytes(1024), None);
    }
}
