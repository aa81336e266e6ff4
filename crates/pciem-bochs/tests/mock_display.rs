//! The adapter on the mock backend, programmed the way Linux's `bochs`
//! driver programs it: modes, drawing, page flips, bad values; every
//! picture compared with a golden PNG in `tests/golden` (decoded pixels,
//! not file bytes). `UPDATE_GOLDEN=1 cargo test -p pciem-bochs` rewrites
//! the golden images; review them before committing.

use std::path::PathBuf;

use pciem_bochs::mock::MockDriver;
use pciem_bochs::regs::dispi::*;
use pciem_bochs::regs::{MMIO_BAR, QEXT_OFFSET, QEXT_REG_BYTEORDER, VGA_OFFSET};
use pciem_bochs::{pattern, png_io, Bochs, Frame};

fn golden(name: &str, frame: &Frame) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        png_io::write(&path, frame).unwrap();
        return;
    }
    let want = png_io::read(&path)
        .unwrap_or_else(|e| panic!("{e} (UPDATE_GOLDEN=1 writes the golden images)"));
    assert_eq!(
        (frame.width, frame.height),
        (want.width, want.height),
        "{name}: size"
    );
    if frame.rgb != want.rgb {
        let i = frame
            .rgb
            .iter()
            .zip(&want.rgb)
            .position(|(a, b)| a != b)
            .unwrap_or(0)
            / 3;
        let (x, y) = (i as u32 % frame.width, i as u32 / frame.width);
        let mut got = std::env::temp_dir();
        got.push(format!("pciem-bochs-{name}"));
        let _ = png_io::write(&got, frame);
        panic!(
            "{name}: pixel ({x},{y}) is {:?}, golden {:?}; this picture is in {}",
            frame.pixel(x, y),
            want.pixel(x, y),
            got.display()
        );
    }
}

fn driver() -> MockDriver {
    // Debug builds are slow at clearing video memory on a mode set, which
    // the register reads after it wait for: a generous read timeout.
    let mut d = MockDriver::new(Bochs::new().read_timeout_us(1_000_000)).unwrap();
    let p = d.probe().unwrap();
    assert_eq!(p.id, 0xb0c5);
    assert_eq!(p.vram, 16 << 20);
    assert_eq!(p.qext_size, 8);
    assert!(p.edid);
    d
}

#[test]
fn probe_reads_identity_and_a_valid_edid() {
    let mut d = driver();
    let edid = d.read_edid().unwrap();
    assert_eq!(edid, pciem_bochs::edid::block().to_vec());
    // EDID stores are ignored.
    d.harness().mmio_write(MMIO_BAR, 0, 1, 0x55).unwrap();
    assert_eq!(d.read_edid().unwrap()[0], 0);
    // Unassigned register space reads 0 and ignores stores.
    d.harness()
        .mmio_write(MMIO_BAR, 0x800, 4, 0xdead_beef)
        .unwrap();
    assert_eq!(d.harness().mmio_read(MMIO_BAR, 0x800, 4).unwrap(), 0);
}

#[test]
fn before_any_mode_the_screen_is_off() {
    let mut d = driver();
    let f = d.screenshot().unwrap();
    assert_eq!((f.width, f.height), (640, 480));
    assert!(f.rgb.iter().all(|&b| b == 0));
}

#[test]
fn colour_bars_at_1024x768() {
    let mut d = driver();
    assert_eq!(d.set_mode(1024, 768, 32).unwrap(), (1024, 768, 32));
    d.draw(0, &pattern::bars(1024, 768)).unwrap();
    let f = d.screenshot().unwrap();
    for (i, c) in pattern::BARS.iter().enumerate() {
        assert_eq!(f.pixel(i as u32 * 128 + 64, 400), Some(*c));
    }
    golden("bars-1024x768.png", &f);
    assert_eq!(
        d.display().mode_changes(),
        2,
        "unblanked, then the mode enabled"
    );
}

#[test]
fn gradient_at_256x192_every_pixel() {
    let mut d = driver();
    d.set_mode(256, 192, 32).unwrap();
    d.draw(0, &pattern::gradient(256, 192)).unwrap();
    let f = d.screenshot().unwrap();
    for y in 0..192 {
        for x in 0..256 {
            assert_eq!(f.pixel(x, y), Some(pattern::gradient_at(x, y)), "({x},{y})");
        }
    }
    golden("gradient-256x192.png", &f);
}

#[test]
fn page_flips_follow_y_offset() {
    let mut d = driver();
    d.set_mode(640, 480, 32).unwrap();
    let page = 640 * 480 * 4;
    d.draw(0, &pattern::bars(640, 480)).unwrap();
    d.draw(
        page,
        &pattern::checker(640, 480, 32, [255, 128, 0], [0, 64, 128]),
    )
    .unwrap();
    golden("flip-page0.png", &d.screenshot().unwrap());
    // The driver flips by pointing the base at the second page.
    d.set_base(640 * 4, page, 32).unwrap();
    assert_eq!(d.dispi_read(Y_OFFSET).unwrap(), 480);
    let f = d.screenshot().unwrap();
    assert_eq!(f.pixel(0, 0), Some([255, 128, 0]));
    assert_eq!(f.pixel(32, 0), Some([0, 64, 128]));
    golden("flip-page1.png", &f);
    d.set_base(640 * 4, 0, 32).unwrap();
    golden("flip-page0.png", &d.screenshot().unwrap());
    assert!(d.display().flips() >= 2);
}

#[test]
fn a_base_past_the_end_of_video_memory_falls_back_to_the_first_page() {
    let mut d = driver();
    d.set_mode(1024, 768, 32).unwrap();
    d.draw(0, &pattern::bars(1024, 768)).unwrap();
    // 4000 lines of 4 KiB would end past 16 MiB: the device resets Y.
    d.dispi_write(Y_OFFSET, 4000).unwrap();
    assert_eq!(d.dispi_read(Y_OFFSET).unwrap(), 0);
    golden("bars-1024x768.png", &d.screenshot().unwrap());
}

#[test]
fn sixteen_bpp_and_big_endian() {
    let mut d = driver();
    assert_eq!(d.set_mode(320, 200, 16).unwrap(), (320, 200, 16));
    // Red, green, blue, white thirds... in RGB565.
    let mut mem = Vec::new();
    for _y in 0..200 {
        for x in 0..320u32 {
            let px: u16 = match x * 4 / 320 {
                0 => 0xf800,
                1 => 0x07e0,
                2 => 0x001f,
                _ => 0xffff,
            };
            mem.extend_from_slice(&px.to_le_bytes());
        }
    }
    d.draw(0, &mem).unwrap();
    let f = d.screenshot().unwrap();
    assert_eq!(f.pixel(10, 10), Some([255, 0, 0]));
    assert_eq!(f.pixel(100, 10), Some([0, 255, 0]));
    golden("rgb565-320x200.png", &f);
    // The same bytes read big-endian are other colours.
    d.set_big_endian(true).unwrap();
    assert_eq!(
        d.harness()
            .mmio_read(MMIO_BAR, QEXT_OFFSET + QEXT_REG_BYTEORDER, 4)
            .unwrap(),
        0xbebe_bebe
    );
    let f = d.screenshot().unwrap();
    // Bytes 00 f8 read as 0x00f8: red 0, green 7 of 63, blue 24 of 31.
    assert_eq!(f.pixel(10, 10), Some([0, 28, 198]));
    // A byte-order value that is neither is ignored.
    d.harness()
        .mmio_write(MMIO_BAR, QEXT_OFFSET + QEXT_REG_BYTEORDER, 4, 0x1234)
        .unwrap();
    assert_eq!(
        d.harness()
            .mmio_read(MMIO_BAR, QEXT_OFFSET + QEXT_REG_BYTEORDER, 4)
            .unwrap(),
        0xbebe_bebe
    );
}

#[test]
fn eight_bpp_uses_the_dac_palette() {
    let mut d = driver();
    d.set_mode(256, 64, 8).unwrap();
    // A grey ramp in the DAC (6-bit components), written through the VGA
    // window at 0x3c8/0x3c9.
    let port = |p: u64| VGA_OFFSET + p - 0x3c0;
    d.harness().mmio_write(MMIO_BAR, port(0x3c8), 1, 0).unwrap();
    for i in 0..256u64 {
        for c in [i / 4, 63 - i / 4, (i * 7) % 64] {
            d.harness().mmio_write(MMIO_BAR, port(0x3c9), 1, c).unwrap();
        }
    }
    let mem: Vec<u8> = (0..64).flat_map(|_| 0..=255u8).collect();
    d.draw(0, &mem).unwrap();
    let f = d.screenshot().unwrap();
    assert_eq!(f.pixel(0, 0), Some([0, 255, 0]));
    assert_eq!(
        f.pixel(255, 0),
        Some([255, 0, ((255 * 7 % 64) << 2 | (255 * 7 % 64) >> 4) as u8])
    );
    golden("palette-256x64.png", &f);
}

#[test]
fn an_unsupported_depth_becomes_8bpp_and_a_huge_mode_is_cut() {
    let mut d = driver();
    assert_eq!(d.set_mode(640, 480, 12).unwrap(), (640, 480, 8));
    // 4096 x 4096 x 32 bpp needs 64 MiB: the height is cut to 1024.
    assert_eq!(d.set_mode(4096, 4096, 32).unwrap(), (4096, 1024, 32));
    assert_eq!(d.dispi_read(VIRT_HEIGHT).unwrap(), 1024);
    let f = d.screenshot().unwrap();
    assert_eq!((f.width, f.height), (4096, 1024));
}

#[test]
fn enabling_a_mode_clears_the_visible_area_unless_told_not_to() {
    let mut d = driver();
    d.set_mode(640, 480, 32).unwrap();
    d.draw(0, &pattern::bars(640, 480)).unwrap();
    // Mode set again: the device clears 640 * 480 * 4 bytes.
    d.set_mode(640, 480, 32).unwrap();
    assert!(d.screenshot().unwrap().rgb.iter().all(|&b| b == 0));
    d.draw(0, &pattern::bars(640, 480)).unwrap();
    d.dispi_write(ENABLE, 0).unwrap();
    d.dispi_write(ENABLE, ENABLED | LFB_ENABLED | NOCLEARMEM)
        .unwrap();
    golden("bars-640x480.png", &d.screenshot().unwrap());
}

#[test]
fn blanking_shows_black() {
    let mut d = driver();
    d.set_mode(640, 480, 32).unwrap();
    d.draw(0, &pattern::bars(640, 480)).unwrap();
    d.blank(true).unwrap();
    let f = d.screenshot().unwrap();
    assert_eq!((f.width, f.height), (640, 480));
    assert!(f.rgb.iter().all(|&b| b == 0));
    d.blank(false).unwrap();
    golden("bars-640x480.png", &d.screenshot().unwrap());
}

#[test]
fn wide_and_narrow_accesses_reach_the_right_registers() {
    let mut d = driver();
    d.blank(false).unwrap();
    // One 32-bit store covers XRES (low half) and YRES (high half).
    d.dispi_write(ENABLE, 0).unwrap();
    d.dispi_write(BPP, 32).unwrap();
    d.harness()
        .mmio_write(MMIO_BAR, 0x500 + 2 * u64::from(XRES), 4, (600 << 16) | 800)
        .unwrap();
    assert_eq!(d.dispi_read(XRES).unwrap(), 800);
    assert_eq!(d.dispi_read(YRES).unwrap(), 600);
    // A byte store changes only its byte.
    d.harness()
        .mmio_write(MMIO_BAR, 0x500 + 2 * u64::from(XRES) + 1, 1, 0x02)
        .unwrap();
    assert_eq!(d.dispi_read(XRES).unwrap(), 0x0220);
    // A 32-bit read of ID and XRES.
    let v = d.harness().mmio_read(MMIO_BAR, 0x500, 4).unwrap();
    assert_eq!(v, 0x0220_b0c5);
    // A 16-bit read of the VGA window reads two ports.
    let v = d
        .harness()
        .mmio_read(MMIO_BAR, VGA_OFFSET + 0x0c, 2)
        .unwrap();
    assert_eq!(v & 0xff, 0x01, "MISC as the probe left it");
}
