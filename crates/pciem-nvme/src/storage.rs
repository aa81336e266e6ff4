//! Where a namespace's blocks live: a [`Storage`] trait, a sparse file
//! ([`FileStorage`]) and memory ([`MemStorage`], for tests).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::fcntl::{fallocate, FallocateFlags};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An access past the end of the store.
    #[error("access of {len} bytes at {offset} is outside the store ({size} bytes)")]
    OutOfRange {
        /// Byte offset.
        offset: u64,
        /// Length.
        len: u64,
        /// Store size.
        size: u64,
    },
    /// An I/O call failed.
    #[error("{op} on {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file exists with another size than asked for.
    #[error("{path} is {actual} bytes, not the {expected} asked for (refusing to resize an existing disk)")]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Its size.
        actual: u64,
        /// The size asked for.
        expected: u64,
    },
}

/// A byte-addressed store behind a namespace. Offsets and lengths are
/// whole blocks (the controller checks them); implementations still refuse
/// anything out of range with [`StorageError::OutOfRange`].
pub trait Storage: Send {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` from `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError>;
    /// Store `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError>;
    /// Make every completed write durable.
    fn flush(&mut self) -> Result<(), StorageError>;
    /// Forget `len` bytes at `offset`; they read as zeros afterwards.
    fn deallocate(&mut self, offset: u64, len: u64) -> Result<(), StorageError>;
    /// Make `len` bytes at `offset` read as zeros.
    fn write_zeroes(&mut self, offset: u64, len: u64) -> Result<(), StorageError> {
        self.deallocate(offset, len)
    }
}

fn check_range(offset: u64, len: u64, size: u64) -> Result<(), StorageError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(StorageError::OutOfRange { offset, len, size }),
    }
}

/// Blocks in memory. Clones share the blocks, so a test can keep one to
/// inspect what the controller wrote while the controller owns another.
#[derive(Debug, Clone)]
pub struct MemStorage {
    inner: Arc<Mutex<MemInner>>,
    size: u64,
}

#[derive(Debug)]
struct MemInner {
    data: Vec<u8>,
    flushes: u64,
}

impl MemStorage {
    /// `size` zeroed bytes.
    pub fn new(size: u64) -> Self {
        MemStorage {
            inner: Arc::new(Mutex::new(MemInner {
                data: vec![0; size as usize],
                flushes: 0,
            })),
            size,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of `len` bytes at `offset` (clamped to the store).
    pub fn snapshot(&self, offset: u64, len: u64) -> Vec<u8> {
        let g = self.lock();
        let start = (offset.min(self.size)) as usize;
        let end = (offset.saturating_add(len).min(self.size)) as usize;
        g.data[start..end].to_vec()
    }

    /// Overwrite bytes directly (test setup), clamped to the store.
    pub fn fill(&self, offset: u64, data: &[u8]) {
        let mut g = self.lock();
        let start = (offset.min(self.size)) as usize;
        let n = data.len().min(g.data.len() - start);
        g.data[start..start + n].copy_from_slice(&data[..n]);
    }

    /// Flushes so far.
    pub fn flushes(&self) -> u64 {
        self.lock().flushes
    }
}

impl Storage for MemStorage {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        check_range(offset, buf.len() as u64, self.size)?;
        let o = offset as usize;
        buf.copy_from_slice(&self.lock().data[o..o + buf.len()]);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        check_range(offset, data.len() as u64, self.size)?;
        let o = offset as usize;
        self.lock().data[o..o + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.lock().flushes += 1;
        Ok(())
    }

    fn deallocate(&mut self, offset: u64, len: u64) -> Result<(), StorageError> {
        check_range(offset, len, self.size)?;
        let o = offset as usize;
        self.lock().data[o..o + len as usize].fill(0);
        Ok(())
    }
}

/// Blocks in a file, created sparse at its size. Deallocation punches
/// holes (`fallocate(PUNCH_HOLE | KEEP_SIZE)`), falling back to writing
/// zeros where the file system cannot; flush is `fdatasync`.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    path: PathBuf,
    size: u64,
    holes_punched: u64,
    can_punch: bool,
}

impl FileStorage {
    /// Open `path`, creating it sparse at `size` bytes if it does not
    /// exist. An existing file must already be `size` bytes (a disk is
    /// never silently grown or truncated).
    pub fn open(path: &Path, size: u64) -> Result<Self, StorageError> {
        let io = |op| {
            let path = path.to_owned();
            move |source| StorageError::Io { op, path, source }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io("open"))?;
        let actual = file.metadata().map_err(io("stat"))?.len();
        if actual == 0 && size != 0 {
            file.set_len(size).map_err(io("set_len"))?;
        } else if actual != size {
            return Err(StorageError::SizeMismatch {
                path: path.to_owned(),
                actual,
                expected: size,
            });
        }
        Ok(FileStorage {
            file,
            path: path.to_owned(),
            size,
            holes_punched: 0,
            can_punch: true,
        })
    }

    /// Ranges deallocated by punching a hole.
    pub fn holes_punched(&self) -> u64 {
        self.holes_punched
    }

    fn io_err(&self, op: &'static str, source: io::Error) -> StorageError {
        StorageError::Io {
            op,
            path: self.path.clone(),
            source,
        }
    }

    fn zero_fill(&mut self, offset: u64, len: u64) -> Result<(), StorageError> {
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; CHUNK.min(len) as usize];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(CHUNK) as usize;
            self.file
                .write_all_at(&zeros[..n], offset + at)
                .map_err(|e| self.io_err("pwrite", e))?;
            at += n as u64;
        }
        Ok(())
    }
}

impl Storage for FileStorage {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        check_range(offset, buf.len() as u64, self.size)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| self.io_err("pread", e))
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        check_range(offset, data.len() as u64, self.size)?;
        self.file
            .write_all_at(data, offset)
            .map_err(|e| self.io_err("pwrite", e))
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.file
            .sync_data()
            .map_err(|e| self.io_err("fdatasync", e))
    }

    fn deallocate(&mut self, offset: u64, len: u64) -> Result<(), StorageError> {
        check_range(offset, len, self.size)?;
        if len == 0 {
            return Ok(());
        }
        if self.can_punch {
            let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
            match fallocate(&self.file, flags, offset as i64, len as i64) {
                Ok(()) => {
                    self.holes_punched += 1;
                    return Ok(());
                }
                // The file system cannot punch holes: zeros it is, from now on.
                Err(nix::errno::Errno::EOPNOTSUPP) => self.can_punch = false,
                Err(e) => return Err(self.io_err("fallocate(PUNCH_HOLE)", e.into())),
            }
        }
        self.zero_fill(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pciem-nvme-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn file_is_created_sparse_and_punched() {
        let p = temp("sparse.img");
        let size = 64 << 20;
        let mut s = FileStorage::open(&p, size).unwrap();
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(md.len(), size);
        assert!(md.blocks() * 512 < size / 8, "created sparse");
        let data = vec![0xA5u8; 1 << 20];
        s.write_at(4 << 20, &data).unwrap();
        s.flush().unwrap();
        let used = std::fs::metadata(&p).unwrap().blocks();
        s.deallocate(4 << 20, 1 << 20).unwrap();
        let mut back = vec![1u8; 1 << 20];
        s.read_at(4 << 20, &mut back).unwrap();
        assert!(back.iter().all(|&b| b == 0));
        if s.holes_punched() > 0 {
            assert!(
                std::fs::metadata(&p).unwrap().blocks() < used,
                "hole punched"
            );
        }
        assert!(matches!(
            s.read_at(size - 512, &mut [0u8; 1024]),
            Err(StorageError::OutOfRange { .. })
        ));
        drop(s);
        // Reopening keeps the data; another size is refused.
        assert!(matches!(
            FileStorage::open(&p, size * 2),
            Err(StorageError::SizeMismatch { .. })
        ));
        let mut s = FileStorage::open(&p, size).unwrap();
        s.write_at(0, b"hello").unwrap();
        drop(s);
        let mut s = FileStorage::open(&p, size).unwrap();
        let mut h = [0u8; 5];
        s.read_at(0, &mut h).unwrap();
        assert_eq!(&h, b"hello");
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn memory_store() {
        let mut m = MemStorage::new(4096);
        m.write_at(10, b"abc").unwrap();
        m.write_zeroes(11, 1).unwrap();
        assert_eq!(m.snapshot(10, 3), b"a\0c");
        assert_eq!(m.clone().snapshot(10, 1), b"a");
        assert!(m.write_at(4095, b"ab").is_err());
        assert!(m.deallocate(u64::MAX, 2).is_err());
    }
}
