//! BAR memory: shared with the driver, so every access is volatile and
//! naturally aligned pieces are copied whole (a 4-byte register written by
//! the device is never seen half-updated by the driver).

use pciem_core::HostError;

use crate::mapping::Mapping;

/// One mapped BAR.
#[derive(Debug)]
pub struct BarMemory {
    index: u8,
    map: Mapping,
}

impl BarMemory {
    /// Wraps the mapping of BAR `index`.
    pub fn new(index: u8, map: Mapping) -> Self {
        Self { index, map }
    }

    /// Size of the mapping in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Never true (see [`Mapping::is_empty`]).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn check(&self, offset: u64, len: usize) -> Result<usize, HostError> {
        let err = HostError::BarOutOfRange {
            bar: self.index,
            offset,
            len: len as u64,
            size: self.len(),
        };
        let end = offset.checked_add(len as u64).ok_or(err)?;
        if end > self.len() {
            return Err(err);
        }
        Ok(offset as usize)
    }

    /// Copies BAR bytes `offset..offset + buf.len()` into `buf`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        let start = self.check(offset, buf.len())?;
        let mut pos = 0;
        while pos < buf.len() {
            let at = start + pos;
            let width = chunk_width(at, buf.len() - pos);
            // SAFETY: `check` keeps `at..at + width` inside the live mapping,
            // and `chunk_width` returns a width `at` is aligned to (the
            // mapping is page aligned), so each access is an aligned
            // volatile load of an integer type.
            unsafe {
                let p = self.map.as_ptr().add(at);
                let dst = &mut buf[pos..pos + width];
                match width {
                    8 => dst.copy_from_slice(&p.cast::<u64>().read_volatile().to_ne_bytes()),
                    4 => dst.copy_from_slice(&p.cast::<u32>().read_volatile().to_ne_bytes()),
                    2 => dst.copy_from_slice(&p.cast::<u16>().read_volatile().to_ne_bytes()),
                    _ => dst[0] = p.read_volatile(),
                }
            }
            pos += width;
        }
        Ok(())
    }

    /// Copies `data` into BAR bytes `offset..offset + data.len()`.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), HostError> {
        let start = self.check(offset, data.len())?;
        let mut pos = 0;
        while pos < data.len() {
            let at = start + pos;
            let width = chunk_width(at, data.len() - pos);
            let src = &data[pos..pos + width];
            // SAFETY: as in `read`: aligned, in bounds, volatile stores.
            unsafe {
                let p = self.map.as_ptr().add(at);
                match width {
                    8 => p
                        .cast::<u64>()
                        .write_volatile(u64::from_ne_bytes(src.try_into().unwrap_or_default())),
                    4 => p
                        .cast::<u32>()
                        .write_volatile(u32::from_ne_bytes(src.try_into().unwrap_or_default())),
                    2 => p
                        .cast::<u16>()
                        .write_volatile(u16::from_ne_bytes(src.try_into().unwrap_or_default())),
                    _ => p.write_volatile(src[0]),
                }
            }
            pos += width;
        }
        Ok(())
    }
}

/// The widest access (8, 4, 2 or 1 bytes) that `offset` is aligned to and
/// that fits in `remaining`.
fn chunk_width(offset: usize, remaining: usize) -> usize {
    [8, 4, 2]
        .into_iter()
        .find(|&w| offset.is_multiple_of(w) && remaining >= w)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd_bar(len: usize) -> BarMemory {
        let fd = nix::sys::memfd::memfd_create(c"bar", nix::sys::memfd::MFdFlags::empty()).unwrap();
        nix::unistd::ftruncate(&fd, len as i64).unwrap();
        BarMemory::new(0, Mapping::shared(&fd, 0, len).unwrap())
    }

    #[test]
    fn widths_follow_alignment() {
        assert_eq!(chunk_width(0, 16), 8);
        assert_eq!(chunk_width(4, 16), 4);
        assert_eq!(chunk_width(6, 16), 2);
        assert_eq!(chunk_width(7, 16), 1);
        assert_eq!(chunk_width(0, 3), 2);
        assert_eq!(chunk_width(0, 1), 1);
    }

    #[test]
    fn unaligned_copies_round_trip() {
        let bar = memfd_bar(4096);
        let data: Vec<u8> = (0..37u8).collect();
        bar.write(3, &data).unwrap();
        let mut back = vec![0u8; 37];
        bar.read(3, &mut back).unwrap();
        assert_eq!(back, data);
        let mut word = [0u8; 4];
        bar.read(4, &mut word).unwrap();
        assert_eq!(word, [1, 2, 3, 4]);
    }

    #[test]
    fn out_of_range_is_an_error() {
        let bar = memfd_bar(4096);
        let e = bar.write(4094, &[0; 4]).unwrap_err();
        assert_eq!(
            e,
            HostError::BarOutOfRange {
                bar: 0,
                offset: 4094,
                len: 4,
                size: 4096
            }
        );
        let mut b = [0u8; 1];
        assert!(bar.read(u64::MAX, &mut b).is_err());
        assert!(bar.read(4095, &mut b).is_ok());
    }
}
