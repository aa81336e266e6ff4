//! Property tests: arbitrary builder input never panics, and arbitrary host
//! write sequences keep the configuration-space invariants.

use pciem_abi::{pciem_bar_config, pciem_cap_config, PCIEM_CAP_DATA_MAX};
use pciem_core::config::{validate_image, Bar, ConfigBuilder, MsiCap, MsixCap, PcieCap, PmCap};
use pciem_core::ConfigSpace;
use proptest::prelude::*;

fn device() -> ConfigSpace {
    ConfigBuilder::new(0x1f0c, 0x77)
        .interrupt_pin(1)
        .bar(0, Bar::memory64(64 << 10))
        .bar(2, Bar::memory32(4096))
        .bar(3, Bar::memory64(1 << 20).prefetchable())
        .msi(MsiCap::new(4).maskable(true))
        .msix(MsixCap {
            table_size: 8,
            table_bar: 2,
            table_offset: 0,
            pba_bar: 2,
            pba_offset: 0x100,
        })
        .pm(PmCap {
            pme_support: 0x8,
            ..PmCap::default()
        })
        .pcie(PcieCap::endpoint(3, 4))
        .dsn(7)
        .aer(Default::default())
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn abi_builder_input_never_panics(
        bars in proptest::collection::vec((0u32..8, 0u32..32, any::<u64>()), 0..8),
        caps in proptest::collection::vec((0u32..12, 0u32..80, 0u32..0x1100, proptest::collection::vec(any::<u8>(), PCIEM_CAP_DATA_MAX)), 0..20),
    ) {
        let mut b = ConfigBuilder::new(1, 2);
        for (bar_index, flags, size) in bars {
            let _ = b.add_bar_abi(&pciem_bar_config { bar_index, flags, size });
        }
        for (cap_type, cap_size, offset, data) in caps {
            let mut c = pciem_cap_config { cap_type, cap_size, offset, ..Default::default() };
            c.cap_data.copy_from_slice(&data);
            let _ = b.add_capability_abi(&c);
        }
        if let Ok(space) = b.build() {
            // Whatever the builder accepts is a valid image.
            prop_assert_eq!(validate_image(space.image()), Ok(()));
        }
    }

    #[test]
    fn validate_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0x140)) {
        let mut img = device().into_image();
        img.config[..0x140].copy_from_slice(&bytes);
        let _ = validate_image(&img);
        let c = ConfigSpace::from_image_ref(&img);
        // Chains always end, whatever the pointers say.
        prop_assert!(c.capabilities().count() <= 48);
        prop_assert!(c.ext_capabilities().count() <= 960);
        let _ = c.msi();
        let _ = c.msix();
        let _ = c.bars().count();
    }

    #[test]
    fn writes_keep_invariants(ops in proptest::collection::vec((0u16..0x1000, prop_oneof![Just(1u8), Just(2), Just(4)], any::<u32>()), 1..64)) {
        let mut c = device();
        let reference = c.clone();
        for (offset, size, value) in ops {
            let before = c.clone();
            let r = c.write(offset, size, value);
            if offset as usize + size as usize > 4096 {
                prop_assert!(r.is_err());
                prop_assert_eq!(&before, &c);
                continue;
            }
            let fx = r.unwrap();
            let img = c.image();
            let old = before.image();
            for i in 0..4096 {
                let (w, k) = (img.wmask[i], img.w1cmask[i]);
                let ro = !(w | k);
                // Read-only bits never change (PMCSR's state may be restored,
                // which is still no change of read-only bits).
                prop_assert_eq!(img.config[i] & ro, old.config[i] & ro, "read-only bits changed at {:#x}", i);
                // W1C bits only clear.
                prop_assert_eq!(img.config[i] & k & !w & !old.config[i], 0, "W1C bit set at {:#x}", i);
                // Masks never change.
                prop_assert_eq!(w, reference.image().wmask[i]);
                prop_assert_eq!(k, reference.image().w1cmask[i]);
                // Bits with no mask that were zero in the reference (reserved)
                // read zero.
                prop_assert_eq!(img.config[i] & ro & !reference.image().config[i], 0);
            }
            prop_assert_eq!(fx.is_empty() || fx.contains(pciem_core::config::WriteEffects::CHANGED) || fx.contains(pciem_core::config::WriteEffects::FLR), true);
            // BAR sizing answers always match the declared sizes.
            prop_assert_eq!(c.bar(0).map(|b| b.size), Some(64 << 10));
            prop_assert_eq!(c.bar(2).map(|b| b.size), Some(4096));
            prop_assert_eq!(c.bar(3).map(|b| b.size), Some(1 << 20));
            prop_assert_eq!(validate_image(c.image()), Ok(()));
            prop_assert_eq!(c.capabilities().count(), 4);
            prop_assert_eq!(c.ext_capabilities().count(), 2);
        }
    }
}

#[test]
fn bar_sizing_after_any_address() {
    let mut c = device();
    for addr in [0u32, 0x1234_5678, 0xffff_ffff, 0x8000_0000] {
        c.write(0x18, 4, addr).unwrap();
        c.write(0x18, 4, 0xffff_ffff).unwrap();
        assert_eq!(c.read(0x18, 4).unwrap(), 0xffff_f000);
    }
}
