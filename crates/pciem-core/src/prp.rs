//! NVMe-style PRP (Physical Region Page) walking.
//!
//! A transfer of `len` bytes is described by two entries. PRP1 points at the
//! first byte and may start anywhere in a page (dword aligned); the first
//! segment runs to the end of that page. If what is left fits in one page,
//! PRP2 points at it (page aligned). Otherwise PRP2 points at a PRP list: an
//! array of page-aligned data pointers filling the rest of its page, whose
//! last entry, when more entries are needed than fit, points at the next
//! list page.
//!
//! [`for_each_segment`] turns that description into `(position, bus address,
//! length)` segments, reading list pages through a caller-supplied function,
//! so the same walk serves the mock backend and the kernel module. It
//! rejects malformed descriptions instead of following them: a list that
//! comes back to a page it already visited (a loop), more list pages than a
//! transfer of at most [`PCIEM_DMA_MAX_LEN`] can need, misaligned pointers,
//! and lengths over the limit. It allocates nothing and cannot panic.

use pciem_abi::PCIEM_DMA_MAX_LEN;

/// The PRP description of one transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prp {
    /// First data pointer.
    pub prp1: u64,
    /// Second data pointer or PRP list pointer.
    pub prp2: u64,
    /// Memory page size: a power of two from 4096 to 128 MiB; 0 means 4096.
    pub page_size: u32,
}

/// What is wrong with a PRP description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrpError {
    /// The page size is not a power of two between 4 KiB and 128 MiB.
    #[error("page size {0} is not a power of two between 4096 and 128 MiB")]
    BadPageSize(u32),
    /// The transfer has no bytes.
    #[error("zero-length transfer")]
    Empty,
    /// The transfer is longer than [`PCIEM_DMA_MAX_LEN`].
    #[error("transfer of {0} bytes exceeds the limit")]
    TooLong(u64),
    /// A pointer lacks the alignment its role needs (PRP1: 4 bytes; data
    /// pages after the first: page aligned; list pointers: 8 bytes).
    #[error("PRP entry {addr:#x} is not {align}-byte aligned")]
    Misaligned {
        /// The entry.
        addr: u64,
        /// The alignment it needs.
        align: u64,
    },
    /// A list chains back to a list page already walked.
    #[error("PRP list loops back to page {0:#x}")]
    Loop(u64),
    /// More list pages than any valid transfer needs.
    #[error("PRP list chain is longer than {0} pages")]
    TooManyLists(usize),
}

/// Most list pages one transfer may chain: a 16 MiB transfer in 4 KiB pages
/// needs 4096 entries, 511 data entries per list page, so 9 pages.
pub const MAX_LIST_PAGES: usize = 16;

/// Entries read from a list page at a time (keeps the stack small in the
/// kernel).
const CHUNK: usize = 32;

/// Walk `prp` for a transfer of `len` bytes.
///
/// `read_list(addr, bytes)` must fill `bytes` with host memory at bus address
/// `addr` (list entries, little-endian). `segment(pos, addr, len)` is called
/// for each data segment in order: bytes `pos..pos + len` of the transfer live
/// at bus address `addr`. The first error from either callback ends the walk
/// and is returned.
pub fn for_each_segment<E, R, S>(
    prp: Prp,
    len: u64,
    mut read_list: R,
    mut segment: S,
) -> Result<(), E>
where
    E: From<PrpError>,
    R: FnMut(u64, &mut [u8]) -> Result<(), E>,
    S: FnMut(u64, u64, u64) -> Result<(), E>,
{
    let page_size = match prp.page_size {
        0 => 4096u64,
        p if p.is_power_of_two() && (4096..=(1 << 27)).contains(&p) => p as u64,
        p => return Err(PrpError::BadPageSize(p).into()),
    };
    let mask = page_size - 1;
    if len == 0 {
        return Err(PrpError::Empty.into());
    }
    if len > PCIEM_DMA_MAX_LEN {
        return Err(PrpError::TooLong(len).into());
    }
    if prp.prp1 & 3 != 0 {
        return Err(misaligned(prp.prp1, 4).into());
    }

    let first = len.min(page_size - (prp.prp1 & mask));
    segment(0, prp.prp1, first)?;
    let mut pos = first;
    let mut remaining = len - first;
    if remaining == 0 {
        return Ok(());
    }
    if remaining <= page_size {
        if prp.prp2 & mask != 0 {
            return Err(misaligned(prp.prp2, page_size).into());
        }
        return segment(pos, prp.prp2, remaining);
    }

    let mut list = prp.prp2;
    let mut visited = [0u64; MAX_LIST_PAGES];
    let mut nvisited = 0usize;
    let mut needed = remaining.div_ceil(page_size);
    loop {
        if list & 7 != 0 {
            return Err(misaligned(list, 8).into());
        }
        let list_page = list & !mask;
        if visited[..nvisited].contains(&list_page) {
            return Err(PrpError::Loop(list_page).into());
        }
        let Some(slot) = visited.get_mut(nvisited) else {
            return Err(PrpError::TooManyLists(MAX_LIST_PAGES).into());
        };
        *slot = list_page;
        nvisited += 1;

        let slots = (page_size - (list & mask)) / 8;
        let data_here = if needed > slots { slots - 1 } else { needed };
        let mut done = 0u64;
        while done < data_here {
            let n = (data_here - done).min(CHUNK as u64) as usize;
            let mut raw = [0u8; CHUNK * 8];
            let bytes = &mut raw[..n * 8];
            read_list(list + done * 8, bytes)?;
            for entry in bytes.chunks_exact(8) {
                let mut le = [0u8; 8];
                le.copy_from_slice(entry);
                let addr = u64::from_le_bytes(le);
                if addr & mask != 0 {
                    return Err(misaligned(addr, page_size).into());
                }
                let seg = remaining.min(page_size);
                segment(pos, addr, seg)?;
                pos += seg;
                remaining -= seg;
            }
            done += n as u64;
        }
        needed -= data_here;
        if needed == 0 {
            return Ok(());
        }
        let mut next = [0u8; 8];
        read_list(list + (slots - 1) * 8, &mut next)?;
        list = u64::from_le_bytes(next);
    }
}

fn misaligned(addr: u64, align: u64) -> PrpError {
    PrpError::Misaligned { addr, align }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    use super::*;

    /// Host memory made of list pages: page address -> entries.
    struct Lists(BTreeMap<u64, Vec<u64>>);

    impl Lists {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), PrpError> {
            let page = addr & !4095;
            let entries = self
                .0
                .get(&page)
                .expect("read of a page that holds no list");
            let first = ((addr & 4095) / 8) as usize;
            for (i, chunk) in buf.chunks_exact_mut(8).enumerate() {
                let e = entries.get(first + i).copied().unwrap_or(0xdead_0000);
                chunk.copy_from_slice(&e.to_le_bytes());
            }
            Ok(())
        }
    }

    fn walk(prp: Prp, len: u64, lists: &Lists) -> Result<Vec<(u64, u64, u64)>, PrpError> {
        let mut out = Vec::new();
        for_each_segment(
            prp,
            len,
            |a, b| lists.read(a, b),
            |pos, addr, n| {
                out.push((pos, addr, n));
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn prp(prp1: u64, prp2: u64) -> Prp {
        Prp {
            prp1,
            prp2,
            page_size: 0,
        }
    }

    #[test]
    fn single_page_with_offset() {
        let lists = Lists(BTreeMap::new());
        assert_eq!(
            walk(prp(0x1010, 0), 100, &lists),
            Ok(std::vec![(0, 0x1010, 100)])
        );
    }

    #[test]
    fn two_pages_use_prp2_directly() {
        let lists = Lists(BTreeMap::new());
        let segs = walk(prp(0x1800, 0x5000), 4096, &lists).unwrap();
        assert_eq!(segs, std::vec![(0, 0x1800, 2048), (2048, 0x5000, 2048)]);
    }

    #[test]
    fn list_with_chain() {
        // 1023 data pages after the first: 511 in the first list page (its
        // last slot chains), the remaining 512 fill the second page exactly.
        let first: Vec<u64> = (0..511)
            .map(|i| 0x100_0000 + i * 4096)
            .chain([0x20_0000])
            .collect();
        let second: Vec<u64> = (0..512).map(|i| 0x300_0000 + i * 4096).collect();
        let lists = Lists(BTreeMap::from([(0x10_0000, first), (0x20_0000, second)]));
        let len = 1024 * 4096;
        let segs = walk(prp(0x9000, 0x10_0000), len, &lists).unwrap();
        assert_eq!(segs.len(), 1024);
        assert_eq!(segs[1], (4096, 0x100_0000, 4096));
        assert_eq!(segs[512], (512 * 4096, 0x300_0000, 4096));
        assert_eq!(segs.iter().map(|s| s.2).sum::<u64>(), len);
        // Positions are contiguous.
        for w in segs.windows(2) {
            assert_eq!(w[0].0 + w[0].2, w[1].0);
        }
    }

    #[test]
    fn list_pointer_with_offset_holds_fewer_entries() {
        // The list starts 8 bytes before the end of its page: one slot, which
        // must chain.
        let chain = std::vec![0; 511].into_iter().chain([0x20_0000]).collect();
        let second = std::vec![0x50_0000, 0x60_0000];
        let lists = Lists(BTreeMap::from([(0x10_0000, chain), (0x20_0000, second)]));
        let segs = walk(prp(0x1000, 0x10_0ff8), 3 * 4096, &lists).unwrap();
        assert_eq!(
            segs,
            std::vec![
                (0, 0x1000, 4096),
                (4096, 0x50_0000, 4096),
                (8192, 0x60_0000, 4096)
            ]
        );
    }

    #[test]
    fn loops_are_rejected() {
        let looping: Vec<u64> = (0..511)
            .map(|i| 0x100_0000 + i * 4096)
            .chain([0x10_0000])
            .collect();
        let lists = Lists(BTreeMap::from([(0x10_0000, looping)]));
        assert_eq!(
            walk(prp(0, 0x10_0000), 2048 * 4096, &lists),
            Err(PrpError::Loop(0x10_0000))
        );
    }

    #[test]
    fn malformed_descriptions_are_rejected() {
        let lists = Lists(BTreeMap::from([(0x10_0000, std::vec![0x2001, 0x3000])]));
        assert_eq!(walk(prp(0x1002, 0), 8, &lists), Err(misaligned(0x1002, 4)));
        assert_eq!(
            walk(prp(0x1000, 0x2010), 8192, &lists),
            Err(misaligned(0x2010, 4096))
        );
        assert_eq!(
            walk(prp(0x1000, 0x10_0004), 3 * 4096, &lists),
            Err(misaligned(0x10_0004, 8))
        );
        assert_eq!(
            walk(prp(0x1000, 0x10_0000), 3 * 4096, &lists),
            Err(misaligned(0x2001, 4096))
        );
        assert_eq!(walk(prp(0x1000, 0), 0, &lists), Err(PrpError::Empty));
        assert_eq!(
            walk(prp(0x1000, 0), PCIEM_DMA_MAX_LEN + 1, &lists),
            Err(PrpError::TooLong(PCIEM_DMA_MAX_LEN + 1))
        );
        let bad_page = Prp {
            prp1: 0,
            prp2: 0,
            page_size: 3000,
        };
        assert_eq!(walk(bad_page, 1, &lists), Err(PrpError::BadPageSize(3000)));
    }

    #[test]
    fn larger_page_size() {
        let lists = Lists(BTreeMap::new());
        let p = Prp {
            prp1: 0x1_0000,
            prp2: 0x4_0000,
            page_size: 65536,
        };
        assert_eq!(
            walk(p, 65536 + 10, &lists),
            Ok(std::vec![(0, 0x1_0000, 65536), (65536, 0x4_0000, 10)])
        );
    }
}
