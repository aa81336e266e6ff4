//! What the `config_space` fuzzer found `validate_image` getting wrong:
//! images it accepted although the OS would misread their BARs, and a
//! valid built image it refused. The crashing inputs are also kept in
//! `fuzz/corpus/config_space/` as `regress-*`.

use pciem_core::config::{validate_image, Bar, BuildError, ConfigBuilder};

fn image() -> pciem_abi::pciem_config_image {
    ConfigBuilder::new(0x1f0c, 0x77)
        .bar(0, Bar::memory64(64 << 10))
        .bar(2, Bar::memory32(4096))
        .build()
        .unwrap()
        .into_image()
}

fn sizing_readback(img: &pciem_abi::pciem_config_image, off: usize) -> u32 {
    let mut space = pciem_core::ConfigSpace::from_image(*img);
    space.write(off as u16, 4, u32::MAX).unwrap();
    space.read(off as u16, 4).unwrap()
}

#[test]
fn the_unpatched_image_is_valid_and_sizes_right() {
    let img = image();
    assert_eq!(validate_image(&img), Ok(()));
    assert_eq!(sizing_readback(&img, 0x18), 0xFFFF_F000);
}

#[test]
fn read_only_address_bits_below_the_size_must_be_zero() {
    // BAR2 (4 KiB) holding 0x30 in its read-only bits 4..12: the sizing
    // write reads back 0xFFFFF030, which Linux sizes as 16 bytes.
    let mut img = image();
    img.config[0x18] = 0x30;
    assert_eq!(sizing_readback(&img, 0x18), 0xFFFF_F030);
    assert!(matches!(validate_image(&img), Err(BuildError::BadImage(_))));
    // The same in the low half of a 64-bit BAR.
    let mut img = image();
    img.config[0x11] = 0x80;
    assert!(matches!(validate_image(&img), Err(BuildError::BadImage(_))));
}

#[test]
fn bar_bits_cannot_be_write_1_to_clear() {
    // A W1C address bit clears on the sizing write: BAR0 would then read
    // back a hole in its mask.
    let mut img = image();
    img.w1cmask[0x12] = 0x01;
    assert!(matches!(validate_image(&img), Err(BuildError::BadImage(_))));
    let mut img = image();
    img.w1cmask[0x14] = 0x80;
    assert!(matches!(validate_image(&img), Err(BuildError::BadImage(_))));
}

#[test]
fn a_64_bit_bar_of_exactly_4_gib_is_valid() {
    // Its mask, 0xFFFF_FFFF_0000_0000, was taken for an unimplemented
    // 32-bit BAR's and the image refused ("flags but no writable bits").
    for size in [1u64 << 31, 1 << 32, 1 << 33] {
        let space = ConfigBuilder::new(1, 2)
            .bar(2, Bar::memory64(size))
            .build()
            .unwrap();
        assert_eq!(
            validate_image(space.image()),
            Ok(()),
            "64-bit BAR of {size:#x}"
        );
        assert_eq!(space.bar(2).map(|b| b.size), Some(size));
    }
}
