//! Get / Set Features (NVMe 1.4, section 5.21.1): the values the model
//! keeps. None is saveable; interrupt coalescing and the keep-alive timer
//! are stored and reported, not acted on.

use crate::identify::CCTEMP;
use crate::regs::{MAX_IO_QUEUES, MSIX_VECTORS};
use crate::status::Status;

/// Arbitration.
pub const FID_ARBITRATION: u8 = 0x01;
/// Power Management.
pub const FID_POWER_MANAGEMENT: u8 = 0x02;
/// Temperature Threshold.
pub const FID_TEMPERATURE_THRESHOLD: u8 = 0x04;
/// Volatile Write Cache.
pub const FID_VOLATILE_WRITE_CACHE: u8 = 0x06;
/// Number of Queues.
pub const FID_NUMBER_OF_QUEUES: u8 = 0x07;
/// Interrupt Coalescing.
pub const FID_INTERRUPT_COALESCING: u8 = 0x08;
/// Interrupt Vector Configuration.
pub const FID_INTERRUPT_VECTOR_CONFIG: u8 = 0x09;
/// Asynchronous Event Configuration.
pub const FID_ASYNC_EVENT_CONFIG: u8 = 0x0B;
/// Keep Alive Timer.
pub const FID_KEEP_ALIVE_TIMER: u8 = 0x0F;

/// Feature values; [`Features::default`] is what a controller reset
/// restores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Features {
    /// Arbitration (DW11 as set).
    pub arbitration: u32,
    /// Power Management (PS and WH).
    pub power_management: u32,
    /// Over- and under-temperature thresholds of the composite sensor.
    pub temperature: [u16; 2],
    /// Volatile write cache enabled.
    pub write_cache: bool,
    /// I/O submission and completion queues allocated (zero-based), and
    /// whether Set Features fixed them since the last reset.
    pub queues: (u16, u16, bool),
    /// Interrupt Coalescing (threshold and time, as set).
    pub coalescing: u32,
    /// Coalescing Disable per interrupt vector.
    pub coalescing_disabled: Vec<bool>,
    /// Asynchronous Event Configuration (DW11 as set).
    pub async_events: u32,
    /// Keep Alive Timeout, milliseconds.
    pub keep_alive_ms: u32,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            arbitration: 0,
            power_management: 0,
            temperature: [CCTEMP, 0],
            write_cache: true,
            queues: (MAX_IO_QUEUES - 1, MAX_IO_QUEUES - 1, false),
            coalescing: 0,
            coalescing_disabled: vec![false; MSIX_VECTORS as usize],
            async_events: 0,
            keep_alive_ms: 0,
        }
    }
}

/// The temperature threshold a DW11 selects: `Some(index)` for the
/// composite sensor (TMPSEL 0) over (THSEL 0) or under (THSEL 1).
fn temperature_slot(dw11: u32) -> Option<usize> {
    let tmpsel = (dw11 >> 16) & 0xF;
    let thsel = (dw11 >> 20) & 0x3;
    (tmpsel == 0 && thsel < 2).then_some(thsel as usize)
}

impl Features {
    /// Get Features: the current value (DW0), or why not.
    pub fn get(&self, fid: u8, dw11: u32) -> Result<u32, Status> {
        Ok(match fid {
            FID_ARBITRATION => self.arbitration,
            FID_POWER_MANAGEMENT => self.power_management,
            FID_TEMPERATURE_THRESHOLD => {
                let slot = temperature_slot(dw11).ok_or(Status::INVALID_FIELD)?;
                u32::from(self.temperature[slot]) | (dw11 & 0x003F_0000)
            }
            FID_VOLATILE_WRITE_CACHE => u32::from(self.write_cache),
            FID_NUMBER_OF_QUEUES => u32::from(self.queues.0) | u32::from(self.queues.1) << 16,
            FID_INTERRUPT_COALESCING => self.coalescing,
            FID_INTERRUPT_VECTOR_CONFIG => {
                let iv = dw11 & 0xFFFF;
                let cd = self
                    .coalescing_disabled
                    .get(iv as usize)
                    .ok_or(Status::INVALID_FIELD)?;
                iv | u32::from(*cd) << 16
            }
            FID_ASYNC_EVENT_CONFIG => self.async_events,
            FID_KEEP_ALIVE_TIMER => self.keep_alive_ms,
            _ => return Err(Status::INVALID_FIELD),
        })
    }

    /// Set Features: store the value; DW0 of the completion, or why not.
    /// `io_queues_exist` says whether I/O queues exist (Number of Queues
    /// cannot change then).
    pub fn set(&mut self, fid: u8, dw11: u32, io_queues_exist: bool) -> Result<u32, Status> {
        match fid {
            FID_ARBITRATION => self.arbitration = dw11,
            FID_POWER_MANAGEMENT => {
                // One power state (NPSS = 0).
                if dw11 & 0x1F != 0 {
                    return Err(Status::INVALID_FIELD);
                }
                self.power_management = dw11 & 0xFF;
            }
            FID_TEMPERATURE_THRESHOLD => {
                let slot = temperature_slot(dw11).ok_or(Status::INVALID_FIELD)?;
                self.temperature[slot] = dw11 as u16;
            }
            FID_VOLATILE_WRITE_CACHE => self.write_cache = dw11 & 1 != 0,
            FID_NUMBER_OF_QUEUES => {
                let nsqr = dw11 & 0xFFFF;
                let ncqr = dw11 >> 16;
                if nsqr == 0xFFFF || ncqr == 0xFFFF {
                    return Err(Status::INVALID_FIELD);
                }
                if io_queues_exist {
                    return Err(Status::COMMAND_SEQUENCE_ERROR);
                }
                let max = u32::from(MAX_IO_QUEUES - 1);
                self.queues = (nsqr.min(max) as u16, ncqr.min(max) as u16, true);
                return self.get(fid, 0);
            }
            FID_INTERRUPT_COALESCING => self.coalescing = dw11 & 0xFFFF,
            FID_INTERRUPT_VECTOR_CONFIG => {
                let iv = (dw11 & 0xFFFF) as usize;
                let slot = self
                    .coalescing_disabled
                    .get_mut(iv)
                    .ok_or(Status::INVALID_FIELD)?;
                *slot = dw11 & (1 << 16) != 0;
            }
            FID_ASYNC_EVENT_CONFIG => self.async_events = dw11,
            FID_KEEP_ALIVE_TIMER => self.keep_alive_ms = dw11,
            _ => return Err(Status::INVALID_FIELD),
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_of_queues() {
        let mut f = Features::default();
        assert_eq!(
            f.set(FID_NUMBER_OF_QUEUES, 0x0003_0001, false),
            Ok(0x0003_0001)
        );
        assert_eq!(
            f.set(FID_NUMBER_OF_QUEUES, 0xFFFF, false),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            f.set(FID_NUMBER_OF_QUEUES, 1, true),
            Err(Status::COMMAND_SEQUENCE_ERROR)
        );
        assert_eq!(
            f.set(FID_NUMBER_OF_QUEUES, 0x7FFF_7FFF, false),
            Ok(0x003F_003F)
        );
    }

    #[test]
    fn stored_features() {
        let mut f = Features::default();
        assert_eq!(f.get(FID_VOLATILE_WRITE_CACHE, 0), Ok(1));
        f.set(FID_VOLATILE_WRITE_CACHE, 0, false).unwrap();
        assert_eq!(f.get(FID_VOLATILE_WRITE_CACHE, 0), Ok(0));
        f.set(FID_TEMPERATURE_THRESHOLD, 0x0010_0100, false)
            .unwrap();
        assert_eq!(
            f.get(FID_TEMPERATURE_THRESHOLD, 0x0010_0000),
            Ok(0x0010_0100)
        );
        assert_eq!(f.get(FID_TEMPERATURE_THRESHOLD, 0), Ok(u32::from(CCTEMP)));
        assert_eq!(
            f.set(FID_POWER_MANAGEMENT, 1, false),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(f.get(0x7F, 0), Err(Status::INVALID_FIELD));
        assert_eq!(
            f.set(FID_INTERRUPT_VECTOR_CONFIG, 0x1_0000 | MSIX_VECTORS, false),
            Err(Status::INVALID_FIELD)
        );
    }
}
