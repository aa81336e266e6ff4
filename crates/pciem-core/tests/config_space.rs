//! Configuration-space semantics: layout, masks, BAR sizing, capabilities,
//! effects and builder errors.

use pciem_abi::*;
use pciem_core::config::regs::*;
use pciem_core::config::{
    validate_image, AerCap, Bar, BuildError, CapSpace, Capability, ConfigBuilder, MsiCap, MsixCap,
    PasidCap, PcieCap, PmCap, WriteEffects,
};
use pciem_core::ConfigSpace;

fn full() -> ConfigSpace {
    ConfigBuilder::new(0x1f0c, 0x0002)
        .subsystem(0xaaaa, 0xbbbb)
        .revision(3)
        .class(0x0b, 0x40, 0x01)
        .interrupt_pin(1)
        .bar(0, Bar::memory64(64 << 10))
        .bar(2, Bar::memory64(1 << 20).prefetchable())
        .bar(4, Bar::memory32(4096))
        .msi(MsiCap::new(8).maskable(true))
        .msix(MsixCap {
            table_size: 16,
            table_bar: 4,
            table_offset: 0,
            pba_bar: 4,
            pba_offset: 0x800,
        })
        .pm(PmCap {
            no_soft_reset: false,
            pme_support: 0x19,
            d1: false,
            d2: false,
        })
        .pcie(PcieCap::endpoint(4, 8))
        .vendor(&[1, 2, 3, 4, 5])
        .aer(AerCap::default())
        .dsn(0x0123_4567_89ab_cdef)
        .pasid(PasidCap {
            max_width: 20,
            exec: true,
            privileged: false,
        })
        .vsec(0x42, 1, &[9; 12])
        .build()
        .expect("valid description")
}

#[test]
fn header_fields() {
    let c = full();
    assert_eq!(c.read(0x00, 2).unwrap(), 0x1f0c);
    assert_eq!(c.read(0x02, 2).unwrap(), 0x0002);
    assert_eq!(c.read(0x08, 4).unwrap(), 0x0b40_0103);
    assert_eq!(c.read(0x2c, 4).unwrap(), 0xbbbb_aaaa);
    assert_eq!(c.read(0x3d, 1).unwrap(), 1);
    assert_eq!(c.read(0x0e, 1).unwrap(), 0);
    assert_ne!(c.read(0x06, 2).unwrap() & 0x10, 0, "capability list bit");
    assert_eq!(validate_image(c.image()), Ok(()));
}

#[test]
fn read_only_and_writable_header_bits() {
    let mut c = full();
    c.write(0x00, 4, 0xffff_ffff).unwrap();
    assert_eq!(c.read(0x00, 4).unwrap(), 0x0002_1f0c);
    let fx = c.write(0x04, 2, 0xffff).unwrap();
    assert_eq!(c.read(0x04, 2).unwrap(), COMMAND_WMASK as u32);
    assert!(fx.contains(WriteEffects::CHANGED | WriteEffects::COMMAND));
    // The same write again changes nothing.
    assert_eq!(c.write(0x04, 2, 0xffff).unwrap(), WriteEffects::empty());
    c.write(0x3c, 1, 0x5a).unwrap();
    assert_eq!(c.read(0x3c, 1).unwrap(), 0x5a);
    c.write(0x3d, 1, 0x3).unwrap();
    assert_eq!(c.read(0x3d, 1).unwrap(), 1, "interrupt pin is read-only");
}

#[test]
fn status_error_bits_are_write_one_to_clear() {
    let mut c = full();
    c.device_write(0x06, 2, 0xf910 | 0x8).unwrap();
    c.write(0x06, 2, 0x0100).unwrap();
    assert_eq!(c.read(0x06, 2).unwrap(), 0xf818);
    c.write(0x06, 2, 0xffff).unwrap();
    assert_eq!(
        c.read(0x06, 2).unwrap(),
        0x0018,
        "INTx status and cap list stay"
    );
}

#[test]
fn bar_sizing_32_and_64_bit() {
    let mut c = full();
    // BAR0: 64 KiB, 64-bit.
    c.write(0x10, 4, 0xffff_ffff).unwrap();
    c.write(0x14, 4, 0xffff_ffff).unwrap();
    assert_eq!(c.read(0x10, 4).unwrap(), 0xffff_0004);
    assert_eq!(c.read(0x14, 4).unwrap(), 0xffff_ffff);
    // BAR2: 1 MiB, 64-bit prefetchable.
    c.write(0x18, 4, 0xffff_ffff).unwrap();
    assert_eq!(c.read(0x18, 4).unwrap(), 0xfff0_000c);
    // BAR4: 4 KiB, 32-bit.
    let fx = c.write(0x20, 4, 0xffff_ffff).unwrap();
    assert!(fx.contains(WriteEffects::BAR));
    assert_eq!(c.read(0x20, 4).unwrap(), 0xffff_f000);
    // BAR5 unused: reads zero whatever is written.
    c.write(0x24, 4, 0xffff_ffff).unwrap();
    assert_eq!(c.read(0x24, 4).unwrap(), 0);
    // Programming an address.
    c.write(0x20, 4, 0xfebf_1000).unwrap();
    let b = c.bar(4).unwrap();
    assert_eq!(
        (b.size, b.address, b.is_64bit()),
        (4096, 0xfebf_1000, false)
    );
    assert_eq!(c.bar(1), None, "upper half of BAR0");
    assert_eq!(c.bar(0).unwrap().size, 64 << 10);
    assert_eq!(c.bar(2).unwrap().size, 1 << 20);
    assert_eq!(c.bars().count(), 3);
}

#[test]
fn big_64bit_bar_and_set_address() {
    let mut c = ConfigBuilder::new(1, 2)
        .bar(0, Bar::memory64(8 << 30))
        .build()
        .unwrap();
    c.write(0x10, 4, 0xffff_ffff).unwrap();
    c.write(0x14, 4, 0xffff_ffff).unwrap();
    assert_eq!(c.read(0x10, 4).unwrap(), 0x4);
    assert_eq!(c.read(0x14, 4).unwrap(), 0xffff_fffe);
    assert_eq!(c.bar(0).unwrap().size, 8 << 30);
    assert!(c.set_bar_address(0, 0x4_0000_0000).is_ok());
    assert_eq!(c.bar(0).unwrap().address, 0x4_0000_0000);
    assert!(c.set_bar_address(0, 0x1000).is_err(), "misaligned");
    assert!(c.set_bar_address(1, 0).is_err());
}

#[test]
fn capability_chain() {
    let c = full();
    let std_caps: Vec<_> = c.capabilities().collect();
    let ids: Vec<u16> = std_caps.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids, [0x05, 0x11, 0x01, 0x10, 0x09]);
    assert_eq!(std_caps[0].1, 0x40);
    let ext: Vec<u16> = c.ext_capabilities().map(|(id, _)| id).collect();
    assert_eq!(ext, [0x0001, 0x0003, 0x001b, 0x000b]);
    assert_eq!(c.find_ext_capability(0x0001), Some(0x100));
    let dsn = c.find_ext_capability(0x0003).unwrap();
    assert_eq!(c.read(dsn + 4, 4).unwrap(), 0x89ab_cdef);
    assert_eq!(c.read(dsn + 8, 4).unwrap(), 0x0123_4567);
    let vendor = c.find_capability(0x09).unwrap();
    assert_eq!(c.read(vendor + 2, 1).unwrap(), 8);
    assert_eq!(c.read(vendor + 3, 1).unwrap(), 1);
    // No extended capabilities: 0x100 reads zero.
    let plain = ConfigBuilder::new(1, 2).build().unwrap();
    assert_eq!(plain.read(0x100, 4).unwrap(), 0);
    assert_eq!(plain.read(0x06, 2).unwrap() & 0x10, 0);
    assert_eq!(plain.capabilities().count(), 0);
}

#[test]
fn msi_state_masks_and_pending() {
    let mut c = full();
    let msi = c.find_capability(0x05).unwrap();
    let s = c.msi().unwrap();
    assert_eq!(
        (s.enabled, s.vectors_capable, s.vectors_enabled),
        (false, 8, 1)
    );
    assert!(s.is_64bit && s.per_vector_mask);
    let fx = c.write(msi + 4, 4, 0xfee0_100f).unwrap();
    assert!(fx.contains(WriteEffects::MSI));
    c.write(msi + 8, 4, 0x1).unwrap();
    c.write(msi + 12, 2, 0x4321).unwrap();
    c.write(msi + 2, 2, 0x0031).unwrap(); // enable, 8 vectors
    c.write(msi + 16, 4, 0xffff_ffff).unwrap();
    let s = c.msi().unwrap();
    assert!(s.enabled);
    assert_eq!(s.vectors_enabled, 8);
    assert_eq!(s.address, 0x1_fee0_100c);
    assert_eq!(s.data, 0x4321);
    assert_eq!(s.mask, 0xff, "only implemented vectors are maskable");
    assert!(s.is_masked(3));
    assert!(c.set_msi_pending(3, true));
    assert!(!c.set_msi_pending(8, true));
    c.write(msi + 20, 4, 0).unwrap();
    assert_eq!(
        c.msi().unwrap().pending,
        0x8,
        "pending is read-only to the host"
    );
    // Control's capability bits are read-only.
    c.write(msi + 2, 2, 0xffff).unwrap();
    assert_eq!(c.read(msi + 2, 2).unwrap() & !0x71, 0x0186);
}

#[test]
fn msix_state() {
    let mut c = full();
    let o = c.find_capability(0x11).unwrap();
    let s = c.msix().unwrap();
    assert_eq!(
        (s.table_size, s.table_bar, s.pba_bar, s.pba_offset),
        (16, 4, 4, 0x800)
    );
    let fx = c.write(o + 2, 2, 0xc000).unwrap();
    assert!(fx.contains(WriteEffects::MSIX));
    let s = c.msix().unwrap();
    assert!(s.enabled && s.function_mask);
    assert_eq!(c.read(o + 2, 2).unwrap(), 0xc00f);
}

#[test]
fn power_management_transitions() {
    let mut c = full();
    let pm = c.find_capability(0x01).unwrap();
    let pmcsr = pm + 4;
    let fx = c.write(pmcsr, 2, 0x3).unwrap();
    assert!(fx.contains(WriteEffects::PM_STATE));
    assert_eq!(c.power_state(), Some(3));
    let fx = c.write(pmcsr, 2, 0x0).unwrap();
    assert!(fx.contains(WriteEffects::PM_STATE | WriteEffects::D3HOT_TO_D0_RESET));
    // D1 is not supported: the write is ignored.
    let fx = c.write(pmcsr, 2, 0x1).unwrap();
    assert_eq!(c.power_state(), Some(0));
    assert!(!fx.contains(WriteEffects::PM_STATE));
    // With No_Soft_Reset, D3hot -> D0 is no reset.
    let mut n = ConfigBuilder::new(1, 2)
        .pm(PmCap {
            no_soft_reset: true,
            ..PmCap::default()
        })
        .build()
        .unwrap();
    let p = n.find_capability(0x01).unwrap() + 4;
    n.write(p, 2, 3).unwrap();
    let fx = n.write(p, 2, 0).unwrap();
    assert!(fx.contains(WriteEffects::PM_STATE));
    assert!(!fx.contains(WriteEffects::D3HOT_TO_D0_RESET));
}

#[test]
fn pcie_flr_and_status() {
    let mut c = full();
    let e = c.find_capability(0x10).unwrap();
    assert_eq!(c.read(e + 0x0c, 4).unwrap() & 0x3ff, 0x84, "Gen4 x8");
    assert_eq!(c.read(e + 0x12, 2).unwrap() & 0x3ff, 0x84);
    let fx = c.write(e + 8, 2, 0x8000).unwrap();
    assert!(fx.contains(WriteEffects::FLR));
    assert_eq!(
        c.read(e + 8, 2).unwrap() & 0x8000,
        0,
        "Initiate FLR reads 0"
    );
    let fx = c.write(e + 9, 1, 0x80).unwrap();
    assert!(fx.contains(WriteEffects::FLR), "byte write of the FLR bit");
    c.device_write(e + 0x0a, 2, 0x000f).unwrap();
    c.write(e + 0x0a, 2, 0x0005).unwrap();
    assert_eq!(c.read(e + 0x0a, 2).unwrap(), 0x000a);
    // Without FLR capability the bit does nothing.
    let mut n = ConfigBuilder::new(1, 2)
        .pcie(PcieCap {
            flr: false,
            ..PcieCap::endpoint(1, 1)
        })
        .build()
        .unwrap();
    let e = n.find_capability(0x10).unwrap();
    assert!(!n
        .write(e + 8, 2, 0x8000)
        .unwrap()
        .contains(WriteEffects::FLR));
}

#[test]
fn aer_status_and_masks() {
    let mut c = full();
    let a = c.find_ext_capability(0x0001).unwrap();
    c.device_write(a + 4, 4, 0x0000_1010).unwrap();
    c.write(a + 4, 4, 0x0000_0010).unwrap();
    assert_eq!(c.read(a + 4, 4).unwrap(), 0x1000);
    c.write(a + 8, 4, 0xffff_ffff).unwrap();
    assert_eq!(c.read(a + 8, 4).unwrap(), AER_UNCOR_BITS);
    assert_eq!(c.read(a + 0x0c, 4).unwrap(), AER_UNCOR_SEVERITY_DEFAULT);
}

#[test]
fn unaligned_and_bad_accesses() {
    let mut c = full();
    assert_eq!(c.read(0x01, 4).unwrap(), 0x0000_021f);
    assert_eq!(c.read(0x01, 2).unwrap(), 0x021f);
    assert!(c.read(0xffd, 4).is_err());
    assert!(c.read(0xffc, 4).is_ok());
    assert!(c.read(0, 3).is_err());
    assert!(c.write(0xfff, 2, 0).is_err());
    assert!(c.write(0, 8, 0).is_err());
}

#[test]
fn builder_errors() {
    let e = |b: ConfigBuilder| b.build().unwrap_err();
    assert_eq!(
        e(ConfigBuilder::new(1, 1).bar(6, Bar::memory32(4096))),
        BuildError::BarIndex(6)
    );
    assert!(matches!(
        e(ConfigBuilder::new(1, 1).bar(0, Bar::memory32(3000))),
        BuildError::BarSize { .. }
    ));
    assert!(matches!(
        e(ConfigBuilder::new(1, 1).bar(0, Bar::memory32(8))),
        BuildError::BarSize { .. }
    ));
    assert!(matches!(
        e(ConfigBuilder::new(1, 1).bar(0, Bar::memory32(4 << 30))),
        BuildError::BarSize { .. }
    ));
    assert_eq!(
        e(ConfigBuilder::new(1, 1).bar(5, Bar::memory64(4096))),
        BuildError::Bar64AtLastSlot
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1)
            .bar(0, Bar::memory64(4096))
            .bar(1, Bar::memory32(4096))),
        BuildError::BarClash(1)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1)
            .bar(1, Bar::memory32(4096))
            .bar(0, Bar::memory64(4096))),
        BuildError::BarClash(0)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1).msi(MsiCap::new(3))),
        BuildError::MsiVectors(3)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1).msi(MsiCap::new(64))),
        BuildError::MsiVectors(64)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1)
            .msi(MsiCap::new(1))
            .msi(MsiCap::new(1))),
        BuildError::DuplicateCapability("MSI")
    );
    let msix = MsixCap {
        table_size: 300,
        table_bar: 0,
        table_offset: 0,
        pba_bar: 0,
        pba_offset: 0x1000,
    };
    assert_eq!(
        e(ConfigBuilder::new(1, 1).msix(msix)),
        BuildError::MsixBarMissing(0)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1)
            .bar(0, Bar::memory32(4096))
            .msix(msix)),
        BuildError::MsixOutsideBar(0)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1).msix(MsixCap {
            table_size: 0,
            ..msix
        })),
        BuildError::MsixTableSize(0)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1).msix(MsixCap {
            table_offset: 4,
            ..msix
        })),
        BuildError::MsixMisaligned
    );
    // Overlap and misplacement.
    let v = Capability::Msi(MsiCap::new(1));
    let p = Capability::Pm(PmCap::default());
    assert_eq!(
        e(ConfigBuilder::new(1, 1)
            .capability_at(0x40, v)
            .capability_at(0x44, p)),
        BuildError::Overlap(0x44)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1).capability_at(0x3c, v)),
        BuildError::Misplaced(0x3c)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1).capability_at(0x42, v)),
        BuildError::Misplaced(0x42)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1).capability_at(0xfc, p)),
        BuildError::Overflow(CapSpace::Standard)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1).capability_at(0x200, Capability::Dsn(1))),
        BuildError::Misplaced(0x200)
    );
    assert_eq!(
        e(ConfigBuilder::new(1, 1).capability_at(0xffc, Capability::Dsn(1))),
        BuildError::Overflow(CapSpace::Extended)
    );
    // Standard space overflow by auto-placement: 0xc0 bytes hold 3 PCIe caps
    // at most, and vendor caps repeat.
    let mut b = ConfigBuilder::new(1, 1);
    for _ in 0..4 {
        b = b.vendor(&[0; 56]);
    }
    assert_eq!(e(b), BuildError::Overflow(CapSpace::Standard));
    let mut b = ConfigBuilder::new(1, 1);
    for _ in 0..17 {
        b = b.vendor(&[0; 1]);
    }
    assert_eq!(e(b), BuildError::TooManyCapabilities(16));
    assert_eq!(
        e(ConfigBuilder::new(1, 1).vendor(&[0; 57])),
        BuildError::VendorDataTooLong(57)
    );
    assert!(matches!(
        e(ConfigBuilder::new(1, 1).pcie(PcieCap::endpoint(7, 1))),
        BuildError::BadField(_)
    ));
    assert!(matches!(
        e(ConfigBuilder::new(1, 1).interrupt_pin(5)),
        BuildError::BadField(_)
    ));
    // Errors have kernel-printable reasons.
    assert!(!BuildError::Overlap(0).reason().is_empty());
}

#[test]
fn abi_incremental_path_matches_the_chained_builder() {
    let mut b = ConfigBuilder::new(0, 0);
    b.identity(&pciem_config_space {
        vendor_id: 0x1234,
        device_id: 0x5678,
        subsys_vendor_id: 0x1234,
        subsys_device_id: 0x5678,
        revision: 1,
        class_code: [0x00, 0x00, 0xff],
        header_type: 0,
        interrupt_pin: 0,
        reserved: 0,
    })
    .unwrap();
    b.add_bar_abi(&pciem_bar_config {
        bar_index: 0,
        flags: PCIEM_BAR_MEM_TYPE_32,
        size: 4096,
    })
    .unwrap();
    let msi = pciem_cap_msi_userspace {
        num_vectors_log2: 0,
        has_64bit: 1,
        has_masking: 0,
        reserved: 0,
    };
    let mut cap = pciem_cap_config {
        cap_type: PCIEM_CAP_MSI,
        cap_size: 4,
        ..Default::default()
    };
    cap.cap_data[..4].copy_from_slice(zerocopy::IntoBytes::as_bytes(&msi));
    b.add_capability_abi(&cap).unwrap();
    let via_abi = b.build().unwrap();
    let chained = ConfigBuilder::new(0x1234, 0x5678)
        .revision(1)
        .class(0xff, 0, 0)
        .bar(0, Bar::memory32(4096))
        .msi(MsiCap::new(1))
        .build()
        .unwrap();
    assert_eq!(via_abi, chained);

    // Bad ABI inputs.
    let bad = |c: pciem_cap_config| {
        ConfigBuilder::new(1, 1)
            .add_capability_abi(&c)
            .map(|_| ())
            .unwrap_err()
    };
    assert_eq!(
        bad(pciem_cap_config {
            cap_type: 99,
            ..cap
        }),
        BuildError::UnknownCapType(99)
    );
    assert!(matches!(
        bad(pciem_cap_config { cap_size: 3, ..cap }),
        BuildError::CapSize { .. }
    ));
    assert!(matches!(
        bad(pciem_cap_config {
            cap_size: 1000,
            ..cap
        }),
        BuildError::CapSize { .. }
    ));
    assert_eq!(
        bad(pciem_cap_config { reserved: 1, ..cap }),
        BuildError::Reserved
    );
    // The error names the value given (num_vectors_log2), not a sentinel.
    for log2 in [6u8, 31, 32, 255] {
        let mut big = cap;
        big.cap_data[0] = log2;
        assert_eq!(bad(big), BuildError::MsiVectorsLog2(log2));
        assert!(bad(big).to_string().contains(&format!("2^{log2}")));
    }
    let add_bar = |bar_index, flags, size| {
        ConfigBuilder::new(1, 1)
            .add_bar_abi(&pciem_bar_config {
                bar_index,
                flags,
                size,
            })
            .map(|_| ())
            .unwrap_err()
    };
    assert_eq!(add_bar(0, PCIEM_BAR_SPACE_IO, 16), BuildError::IoBar(0));
    assert_eq!(add_bar(0, 0x10, 4096), BuildError::BarFlags(0));
    assert_eq!(add_bar(9, 0, 4096), BuildError::BarIndex(9));
    assert!(matches!(add_bar(0, 0, 0), BuildError::BarSize { .. }));
    let mut id = pciem_config_space {
        header_type: 1,
        ..Default::default()
    };
    assert_eq!(
        ConfigBuilder::new(1, 1).identity(&id).map(|_| ()),
        Err(BuildError::HeaderType(1))
    );
    id.header_type = 0;
    id.reserved = 7;
    assert_eq!(
        ConfigBuilder::new(1, 1).identity(&id).map(|_| ()),
        Err(BuildError::Reserved)
    );
}

#[test]
fn validate_rejects_broken_images() {
    let good = full().into_image();
    assert_eq!(validate_image(&good), Ok(()));
    let mut img = good;
    img.config[0x0e] = 1;
    assert_eq!(validate_image(&img), Err(BuildError::HeaderType(1)));
    let mut img = good;
    img.config[0x20] |= 1;
    assert_eq!(validate_image(&img), Err(BuildError::IoBar(4)));
    let mut img = good;
    img.wmask[0x21] = 0xe0; // 0xffffe000 with a hole -> not a power of two run
    img.wmask[0x22] = 0x0f;
    assert!(matches!(
        validate_image(&img),
        Err(BuildError::BarSize { .. })
    ));
    // A capability loop.
    let mut img = good;
    let c = ConfigSpace::from_image_ref(&good);
    let last = c.capabilities().last().unwrap().1 as usize;
    img.config[last + 1] = 0x40;
    assert!(matches!(validate_image(&img), Err(BuildError::BadImage(_))));
    // A pointer into the header.
    let mut img = good;
    img.config[0x34] = 0x20;
    assert!(matches!(validate_image(&img), Err(BuildError::BadImage(_))));
    // An extended chain pointing below 0x100.
    let mut img = good;
    img.config[0x103] = 0x08;
    assert!(matches!(validate_image(&img), Err(BuildError::BadImage(_))));
}

#[test]
fn msi_hold_and_take_unmasked() {
    let mut c = full();
    let msi = c.find_capability(0x05).unwrap();
    // Disabled: nothing is held or due.
    assert!(!c.msi_hold_if_masked(0));
    assert_eq!(c.msi_take_unmasked(), 0);
    c.write(msi + 2, 2, 0x0021).unwrap(); // enable, 4 of 8 vectors
    c.write(msi + 16, 4, 0b1010).unwrap(); // mask vectors 1 and 3
    assert!(!c.msi_hold_if_masked(0), "unmasked: delivered now");
    assert!(c.msi_hold_if_masked(1));
    assert!(c.msi_hold_if_masked(3));
    assert_eq!(c.msi().unwrap().pending, 0b1010);
    // Still masked: nothing due, nothing cleared.
    assert_eq!(c.msi_take_unmasked(), 0);
    c.write(msi + 16, 4, 0b1000).unwrap(); // unmask vector 1
    assert_eq!(c.msi_take_unmasked(), 0b0010);
    assert_eq!(c.msi().unwrap().pending, 0b1000, "taken once");
    assert_eq!(c.msi_take_unmasked(), 0);
    // A pending vector beyond those enabled stays pending.
    c.write(msi + 16, 4, 0b1_0000).unwrap();
    assert!(c.msi_hold_if_masked(4));
    c.write(msi + 16, 4, 0).unwrap();
    assert_eq!(c.msi_take_unmasked(), 0b1000);
    assert_eq!(c.msi().unwrap().pending, 0b1_0000);
}

#[test]
fn reset_restores_the_image_but_keeps_the_bars() {
    let initial = full();
    let mut c = initial.clone();
    let msi = c.find_capability(0x05).unwrap();
    // The host assigns BAR0 (64-bit) and BAR4, enables memory and MSI.
    c.write(0x10, 4, 0xfe00_0000).unwrap();
    c.write(0x14, 4, 0x1).unwrap();
    c.write(0x20, 4, 0xfd00_0000).unwrap();
    c.write(0x04, 2, 0x0006).unwrap();
    c.write(msi + 2, 2, 0x0001).unwrap();
    c.write(0x3c, 1, 0x0b).unwrap(); // Interrupt Line
    let bars: Vec<_> = c.bars().map(|b| (b.index, b.address)).collect();
    assert!(bars.contains(&(0, 0x1_fe00_0000)) && bars.contains(&(4, 0xfd00_0000)));
    c.reset_keeping_bars(&initial);
    assert_eq!(
        c.bars().map(|b| (b.index, b.address)).collect::<Vec<_>>(),
        bars
    );
    assert_eq!(c.command(), initial.command());
    assert!(!c.msi().unwrap().enabled);
    assert_eq!(c.read(0x3c, 1).unwrap(), initial.read(0x3c, 1).unwrap());
    // Everything but the six BAR registers is the initial image again.
    for off in (0..0x1000u16)
        .step_by(4)
        .filter(|o| !(0x10..0x28).contains(o))
    {
        assert_eq!(
            c.read(off, 4).unwrap(),
            initial.read(off, 4).unwrap(),
            "{off:#x}"
        );
    }
}
