//! pciutils' lspci is the judge of our layout: dump a space with every
//! capability kind, let `lspci -F` decode it, and check what it says.

use std::process::Command;

use pciem_core::config::{AerCap, Bar, ConfigBuilder, MsiCap, MsixCap, PasidCap, PcieCap, PmCap};

#[test]
fn lspci_decodes_every_capability() {
    let mut cfg = ConfigBuilder::new(0x1f0c, 0x0042)
        .class(0x0b, 0x40, 0x00)
        .bar(0, Bar::memory64(64 << 10))
        .bar(2, Bar::memory64(1 << 20).prefetchable())
        .bar(4, Bar::memory32(16 << 10))
        .msi(MsiCap::new(8).maskable(true))
        .msix(MsixCap {
            table_size: 32,
            table_bar: 4,
            table_offset: 0,
            pba_bar: 4,
            pba_offset: 0x2000,
        })
        .pm(PmCap {
            pme_support: 0x19,
            ..PmCap::default()
        })
        .pcie(PcieCap::endpoint(4, 8))
        .vendor(&[0xde, 0xad])
        .aer(AerCap::default())
        .dsn(0x0011_2233_4455_6677)
        .pasid(PasidCap {
            max_width: 20,
            exec: true,
            privileged: true,
        })
        .vsec(0x1234, 2, &[0; 8])
        .build()
        .unwrap();
    // A dump carries no sizes; lspci shows a 32-bit non-prefetchable BAR
    // only once it has an address.
    cfg.set_bar_address(4, 0xfe00_0000).unwrap();
    let mut text = String::new();
    cfg.write_lspci_dump("00:00.0 Class 0b40: Device 1f0c:0042", true, &mut text)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("pciem-lspci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dump.txt");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new("lspci")
        .arg("-F")
        .arg(&file)
        .args(["-vvv", "-nn"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lspci ({e}); run `cargo xtask setup` to install pciutils")
        });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "lspci failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded = String::from_utf8_lossy(&out.stdout);
    for want in [
        "[1f0c:0042]",
        "Region 0: Memory at <unassigned> (64-bit, non-prefetchable)",
        "Region 2: Memory at <unassigned> (64-bit, prefetchable)",
        "Region 4: Memory at fe000000 (32-bit, non-prefetchable)",
        "MSI: Enable- Count=1/8 Maskable+ 64bit+",
        "MSI-X: Enable- Count=32 Masked-",
        "Vector table: BAR=4 offset=00000000",
        "PBA: BAR=4 offset=00002000",
        "Power Management version 3",
        "Express (v2) Endpoint",
        "Speed 16GT/s, Width x8",
        "Vendor Specific Information: Len=05",
        "Advanced Error Reporting",
        "Device Serial Number 00-11-22-33-44-55-66-77",
        "Process Address Space ID (PASID)",
        "PASIDCap: Exec+ Priv+, Max PASID Width: 14",
        "Vendor Specific Information: ID=1234 Rev=2 Len=010",
    ] {
        assert!(
            decoded.contains(want),
            "lspci output lacks {want:?}:\n{decoded}"
        );
    }
    assert!(
        !decoded.contains("Region 1:"),
        "upper half of BAR0 decoded as a BAR:\n{decoded}"
    );
}
