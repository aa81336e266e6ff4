//! Peer-to-peer transfers inside and outside the whitelist.

use pciem_vmtest::dmadrv::{errno, pattern};
use pciem_vmtest::{Dev, Report, TEST_DEVICE_UNBOUND};

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
        errno(&res) == Some(libc::EFAULT),
        format!("plain DMA_READ of the peer region (no DMA mapping) -> EFAULT ({res:?})"),
    );
}

/// P2P into a second PCIem device's BAR (whitelisted by the `pool` entry,
/// the BAR pool), checked through that device's own BAR mapping: the peer
/// sees what the initiator wrote, and the initiator reads what the peer
/// stored.
pub fn peer_bar(r: &mut Report, dev: &Dev, pool: Option<(u64, u64)>) {
    let Some((pool_base, pool_size)) = pool else {
        r.check(
            false,
            "P2P to a peer BAR: pass the whitelisted BAR pool ADDR:SIZE as the second argument",
        );
        return;
    };
    let Some(peer) = r.step("open /dev/pciem for the peer", Dev::open()) else {
        return;
    };
    let described = peer.describe_test_device(TEST_DEVICE_UNBOUND);
    r.step("describe the peer device", described);
    let Some(inst) = r.step("register the peer", peer.register()) else {
        return;
    };
    let Some(bar) = r.step("peer BAR2 info", peer.bar_info(2)) else {
        return;
    };
    r.check(
        bar.bus_addr >= pool_base && bar.bus_addr + bar.size <= pool_base + pool_size,
        format!(
            "peer BAR2 {:#x}+{:#x} lies in the whitelisted pool",
            bar.bus_addr, bar.size
        ),
    );
    let Some(map) = r.step("map the peer's BAR2", inst.map_bar(2, bar.size as usize)) else {
        return;
    };

    let data = pattern(0x7077, 4096);
    let res = dev.p2p_write(bar.bus_addr + 0x100, &data);
    let seen: Vec<u8> = (0..1024)
        .flat_map(|i| map.read32(0x100 + i * 4).to_le_bytes())
        .collect();
    r.check(
        res.is_ok() && seen == data,
        format!("P2P_WRITE into the peer's BAR2 is what the peer reads there ({res:?})"),
    );

    let words: Vec<u32> = (0..256u32)
        .map(|i| 0xa5a5_0000 ^ (i * 0x0101_0101))
        .collect();
    for (i, w) in words.iter().enumerate() {
        map.write32(0x2000 + i * 4, *w);
    }
    let mut got = vec![0u8; 1024];
    let res = dev.p2p_read(bar.bus_addr + 0x2000, &mut got);
    let expect: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    r.check(
        res.is_ok() && got == expect,
        format!("P2P_READ of the peer's BAR2 returns what the peer stored ({res:?})"),
    );
}
