//! PRP-list DMA over the driver's PRP pages.

use pciem_abi::{pciem_dma_indirect, PCIEM_DMA_MAX_LEN};
use pciem_vmtest::dmadrv::{errno, pattern, Buf};
use pciem_vmtest::{Dev, Report};

use crate::{PAGE, UNMAPPED};

/// PRP transfers over the driver's PRP pages.
pub fn prp(r: &mut Report, dev: &Dev, b: &Buf) {
    let pg = |k: u64| b.addr + k * PAGE;
    let entries = |page: u64, off: u64, list: &[u64]| {
        let bytes: Vec<u8> = list.iter().flat_map(|e| e.to_le_bytes()).collect();
        b.cpu_write(page * PAGE + off, &bytes)
    };
    // Data pages 0..40 hold known bytes.
    let img = pattern(0x5eed, 40 * PAGE as usize);
    if r.step("PRP data pages filled", b.cpu_write(0, &img))
        .is_none()
    {
        return;
    }
    let at = |k: u64, off: usize, len: usize| {
        let s = k as usize * PAGE as usize + off;
        img[s..s + len].to_vec()
    };

    // PRP1 only.
    let mut got = vec![0; 100];
    let res = dev.prp_read(pg(0) + 16, 0, &mut got);
    r.check(
        res.is_ok() && got == at(0, 16, 100),
        format!("PRP1 only, in-page offset: read ({res:?})"),
    );

    // PRP2 is the second page.
    let len = 2048 + 3000;
    let expect = [at(1, 2048, 2048), at(5, 0, 3000)].concat();
    let mut got = vec![0; len];
    let res = dev.prp_read(pg(1) + 2048, pg(5), &mut got);
    r.check(
        res.is_ok() && got == expect,
        format!("PRP2 as the second page: read ({res:?})"),
    );
    let data = pattern(0xabc, len);
    let res = dev.prp_write(pg(1) + 2048, pg(5), &data);
    let seen = [
        b.cpu_read(PAGE + 2048, 2048).unwrap_or_default(),
        b.cpu_read(5 * PAGE, 3000).unwrap_or_default(),
    ]
    .concat();
    let untouched = b.cpu_read(PAGE, 2048).ok() == Some(at(1, 0, 2048))
        && b.cpu_read(5 * PAGE + 3000, 1).ok() == Some(at(5, 3000, 1));
    r.check(
        res.is_ok() && seen == data && untouched,
        format!("PRP2 as the second page: write lands, neighbours untouched ({res:?})"),
    );
    let _ = b.cpu_write(0, &img);

    // A chained list: PRP2 points 16 bytes before the end of page 48 (one
    // data entry, then the chain to page 49), which holds three more.
    let order = [10u64, 11, 20, 13, 30];
    let ok = entries(48, PAGE - 16, &[pg(11), pg(49)]).is_ok()
        && entries(49, 0, &[pg(20), pg(13), pg(30)]).is_ok();
    r.check(ok, "PRP lists written in pages 48 and 49");
    let len = 4 * PAGE as usize + 1000;
    let expect: Vec<u8> = order
        .iter()
        .enumerate()
        .flat_map(|(i, &k)| at(k, 0, if i == 4 { 1000 } else { PAGE as usize }))
        .collect();
    let mut got = vec![0; len];
    let res = dev.prp_read(pg(10), pg(48) + PAGE - 16, &mut got);
    r.check(
        res.is_ok() && got == expect,
        format!("chained PRP list: read gathers pages 10, 11, 20, 13, 30 ({res:?})"),
    );
    let data = pattern(0xfeed, len);
    let res = dev.prp_write(pg(10), pg(48) + PAGE - 16, &data);
    let seen: Vec<u8> = order
        .iter()
        .enumerate()
        .flat_map(|(i, &k)| {
            b.cpu_read(k * PAGE, if i == 4 { 1000 } else { PAGE as usize })
                .unwrap_or_default()
        })
        .collect();
    r.check(
        res.is_ok() && seen == data && b.cpu_read(12 * PAGE, 16).ok() == Some(at(12, 0, 16)),
        format!("chained PRP list: write scatters into the same pages ({res:?})"),
    );
    let _ = b.cpu_write(0, &img);

    // Exactly PCIEM_DMA_MAX_LEN: 4096 pages, PRP1 plus 4095 entries in
    // nine full list pages (511 data entries and a chain each, then 7),
    // transfer page n taken from data page n % 8.
    let total = (PCIEM_DMA_MAX_LEN / PAGE) as usize;
    let mut ok = true;
    let mut n = 1usize;
    for j in 0..9u64 {
        let left = total - n;
        let mut list: Vec<u64> = (0..left.min(512))
            .map(|i| pg(((n + i) % 8) as u64))
            .collect();
        if left > 512 {
            list.truncate(511);
            list.push(pg(41 + j));
        }
        n += list.len().min(511);
        ok &= entries(40 + j, 0, &list).is_ok();
    }
    let mut got = vec![0u8; PCIEM_DMA_MAX_LEN as usize];
    let res = dev.prp_read(pg(0), pg(40), &mut got);
    let right = got
        .chunks(PAGE as usize)
        .enumerate()
        .all(|(n, c)| c == at((n % 8) as u64, 0, PAGE as usize));
    r.check(
        ok && n == total && res.is_ok() && right,
        format!("PRP read of exactly PCIEM_DMA_MAX_LEN through nine chained list pages ({res:?})"),
    );
    drop(got);

    // An 8 KiB PRP page size: PRP1 runs to the end of its 8 KiB page.
    let k0 = (b.addr / PAGE) % 2;
    let len = (8192 - 100) + 5000;
    let mut got = vec![0u8; len];
    let req = pciem_dma_indirect {
        prp1: pg(k0 + 2) + 100,
        prp2: pg(k0 + 6),
        user_addr: got.as_mut_ptr() as u64,
        length: len as u64,
        page_size: 8192,
        flags: 0,
    };
    // SAFETY: the kernel writes at most `len` bytes into `got`, which is
    // live and not otherwise used during the call.
    let res = unsafe { dev.dma_indirect_raw(&req) };
    let expect = [at(k0 + 2, 100, 8192 - 100), at(k0 + 6, 0, 5000)].concat();
    r.check(
        res.is_ok() && got == expect,
        format!("PRP read with an 8 KiB page size ({res:?})"),
    );

    // A loop: page 50 chains to 51, which chains back to 50.
    let ok = entries(50, PAGE - 16, &[pg(0), pg(51) + PAGE - 16]).is_ok()
        && entries(51, PAGE - 16, &[pg(1), pg(50) + PAGE - 16]).is_ok();
    let mut got = vec![0; 10 * PAGE as usize];
    let res = dev.prp_read(pg(2), pg(50) + PAGE - 16, &mut got);
    r.check(
        ok && errno(&res) == Some(libc::ELOOP),
        format!("PRP list that loops -> ELOOP ({res:?})"),
    );

    // Over-long: 21 list pages of one data entry each, chained in order,
    // for a transfer that needs 29 entries: more list pages than any valid
    // transfer needs.
    let mut ok = true;
    for k in 40..=60u64 {
        ok &= entries(k, PAGE - 16, &[pg(0), pg(k + 1) + PAGE - 16]).is_ok();
    }
    let mut got = vec![0; 30 * PAGE as usize];
    let res = dev.prp_read(pg(2), pg(40) + PAGE - 16, &mut got);
    r.check(
        ok && errno(&res) == Some(libc::E2BIG),
        format!("over-long PRP list chain -> E2BIG ({res:?})"),
    );

    let mut got = vec![0; 2 * PAGE as usize];
    let res = dev.prp_read(pg(0), pg(5) + 8, &mut got);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("PRP2 data pointer not page aligned -> EINVAL ({res:?})"),
    );
    let res = dev.prp_read(pg(0), UNMAPPED, &mut got);
    r.check(
        errno(&res) == Some(libc::EFAULT),
        format!("PRP2 at an unmapped bus address -> EFAULT, refused by the DMA check ({res:?})"),
    );
    let res = dev.prp_read(pg(0), 0, &mut []);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("zero-length PRP transfer -> EINVAL ({res:?})"),
    );
    let mut big = vec![0; PCIEM_DMA_MAX_LEN as usize + 1];
    let res = dev.prp_read(pg(0), pg(48), &mut big);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("PRP transfer over PCIEM_DMA_MAX_LEN -> EINVAL ({res:?})"),
    );
    let mut small = [0u8; 8];
    let req = pciem_dma_indirect {
        prp1: pg(0),
        user_addr: small.as_mut_ptr() as u64,
        length: 8,
        flags: 0x80,
        ..Default::default()
    };
    // SAFETY: the kernel writes at most 8 bytes into `small`, which is live.
    let res = unsafe { dev.dma_indirect_raw(&req) };
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("unknown PRP flags -> EINVAL ({res:?})"),
    );
}
