//! Peer-to-peer transfers inside and outside the whitelist.

use pciem_vmtest::dmadrv::{errno, pattern};
use pciem_vmtest::{Dev, Report};

use crate::UNMAPPED;

pub fn p2p(r: &mut Report, dev: &Dev, region: Option<(u64, u64)>, ram: u64) {
    let Some((base, size)) = region else {
        r.check(
            false,
            "P2P: pass the p2p_regions entry ADDR:SIZE as the argument",
        );
        return;
    };
    let data = pattern(0x9292, 5000);
    let res = dev.p2p_write(base + 100, &data);
    r.check(
        res.is_ok(),
        format!("P2P_WRITE inside the region ({res:?})"),
    );
    let mut got = vec![0; 5000];
    let res = dev.p2p_read(base + 100, &mut got);
    r.check(
        res.is_ok() && got == data,
        format!("P2P_READ returns what was written ({res:?})"),
    );
    let whole = pattern(0x4242, size as usize);
    let res = dev.p2p_write(base, &whole);
    let mut got = vec![0; size as usize];
    let res2 = dev.p2p_read(base, &mut got);
    r.check(
        res.is_ok() && res2.is_ok() && got == whole,
        format!("P2P round trip of the whole region ({res:?}, {res2:?})"),
    );
    let mut one = [0u8; 1];
    let res = dev.p2p_read(base + size - 1, &mut one);
    r.check(
        res.is_ok() && one[0] == whole[size as usize - 1],
        format!("P2P_READ of the region's last byte ({res:?})"),
    );
    let mut buf = vec![0; 20];
    for (what, addr) in [
        ("straddling the region's end", base + size - 10),
        ("just below the region", base - 4096),
        ("in RAM (the driver's coherent buffer)", ram),
        ("far outside", UNMAPPED),
    ] {
        let res = dev.p2p_read(addr, &mut buf);
        r.check(
            errno(&res) == Some(libc::EACCES),
            format!("P2P_READ {what} -> EACCES ({res:?})"),
        );
        let res = dev.p2p_write(addr, &buf);
        r.check(
            errno(&res) == Some(libc::EACCES),
            format!("P2P_WRITE {what} -> EACCES ({res:?})"),
        );
    }
    let res = dev.p2p_read(base, &mut []);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("zero-length P2P_READ -> EINVAL ({res:?})"),
    );
    let res = dev.dma_read(base, &mut buf);
    r.check(
        errno(&res) == Some(libc::ENXIO),
        format!("plain DMA_READ of the peer region (not RAM) -> ENXIO ({res:?})"),
    );
}
