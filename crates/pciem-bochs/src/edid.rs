//! The EDID 1.4 block the adapter presents at offset 0 of its MMIO BAR.
//!
//! The driver reads it with `drm_edid_read_custom` and offers the modes it
//! describes: 1024×768 (the preferred, native timing), 1280×1024 (a second
//! detailed timing), 640×480, 800×600 and 1024×768 (established timings)
//! and 1280×1024 and 1600×1200 (standard timings). Every timing is the
//! VESA DMT one at 60 Hz, so a real monitor would accept it too.

/// Length of one EDID block.
pub const EDID_LEN: usize = 128;

/// The fixed 8-byte header every EDID starts with.
pub const HEADER: [u8; 8] = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];

/// A video timing (VESA DMT), in pixels, lines and kHz.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Pixel clock in kHz (a multiple of 10).
    pub clock_khz: u32,
    /// Visible pixels per line.
    pub hactive: u16,
    /// Front porch, in pixels.
    pub hfront: u16,
    /// Sync pulse, in pixels.
    pub hsync: u16,
    /// Back porch, in pixels.
    pub hback: u16,
    /// Visible lines.
    pub vactive: u16,
    /// Front porch, in lines.
    pub vfront: u16,
    /// Sync pulse, in lines.
    pub vsync: u16,
    /// Back porch, in lines.
    pub vback: u16,
    /// Sync polarities: horizontal positive, vertical positive.
    pub positive: (bool, bool),
}

impl Timing {
    /// Horizontal blanking in pixels.
    pub const fn hblank(&self) -> u16 {
        self.hfront + self.hsync + self.hback
    }

    /// Vertical blanking in lines.
    pub const fn vblank(&self) -> u16 {
        self.vfront + self.vsync + self.vback
    }
}

/// 1024×768 at 60 Hz (DMT 0x10): the preferred mode.
pub const DMT_1024X768: Timing = Timing {
    clock_khz: 65_000,
    hactive: 1024,
    hfront: 24,
    hsync: 136,
    hback: 160,
    vactive: 768,
    vfront: 3,
    vsync: 6,
    vback: 29,
    positive: (false, false),
};

/// 1280×1024 at 60 Hz (DMT 0x23).
pub const DMT_1280X1024: Timing = Timing {
    clock_khz: 108_000,
    hactive: 1280,
    hfront: 48,
    hsync: 112,
    hback: 248,
    vactive: 1024,
    vfront: 1,
    vsync: 3,
    vback: 38,
    positive: (true, true),
};

/// Physical size the EDID claims, in millimetres (about 96 dpi at the
/// preferred mode).
const SIZE_MM: (u16, u16) = (271, 203);

/// Three letters as the 15-bit EISA manufacturer ID ("PCM": PCIem).
const fn manufacturer(id: &[u8; 3]) -> [u8; 2] {
    let v = (((id[0] - b'A' + 1) as u16) << 10)
        | (((id[1] - b'A' + 1) as u16) << 5)
        | ((id[2] - b'A' + 1) as u16);
    v.to_be_bytes()
}

/// A detailed timing descriptor (18 bytes).
fn detailed(t: &Timing) -> [u8; 18] {
    let mut d = [0u8; 18];
    d[0..2].copy_from_slice(&((t.clock_khz / 10) as u16).to_le_bytes());
    let (ha, hb, va, vb) = (t.hactive, t.hblank(), t.vactive, t.vblank());
    d[2] = ha as u8;
    d[3] = hb as u8;
    d[4] = (((ha >> 8) & 0xf) << 4) as u8 | ((hb >> 8) & 0xf) as u8;
    d[5] = va as u8;
    d[6] = vb as u8;
    d[7] = (((va >> 8) & 0xf) << 4) as u8 | ((vb >> 8) & 0xf) as u8;
    d[8] = t.hfront as u8;
    d[9] = t.hsync as u8;
    d[10] = (((t.vfront & 0xf) << 4) | (t.vsync & 0xf)) as u8;
    d[11] = ((((t.hfront >> 8) & 3) << 6)
        | (((t.hsync >> 8) & 3) << 4)
        | (((t.vfront >> 4) & 3) << 2)
        | ((t.vsync >> 4) & 3)) as u8;
    d[12] = SIZE_MM.0 as u8;
    d[13] = SIZE_MM.1 as u8;
    d[14] = ((((SIZE_MM.0 >> 8) & 0xf) << 4) | ((SIZE_MM.1 >> 8) & 0xf)) as u8;
    // Digital separate sync, with the polarities.
    d[17] = 0x18 | (u8::from(t.positive.1) << 2) | (u8::from(t.positive.0) << 1);
    d
}

/// A display descriptor: tag and 13 bytes of text (newline-terminated,
/// space-padded) or data.
fn descriptor(tag: u8, payload: &[u8]) -> [u8; 18] {
    let mut d = [0u8; 18];
    d[3] = tag;
    let body = &mut d[5..];
    body.fill(0x20);
    let n = payload.len().min(13);
    body[..n].copy_from_slice(&payload[..n]);
    if n < 13 && tag == 0xfc {
        body[n] = 0x0a;
    }
    d
}

/// The monitor range limits the timings fit in.
fn range_limits() -> [u8; 18] {
    let mut d = [0u8; 18];
    d[3] = 0xfd;
    d[5] = 50; // min vertical rate, Hz
    d[6] = 75; // max vertical rate, Hz
    d[7] = 30; // min horizontal rate, kHz
    d[8] = 80; // max horizontal rate, kHz
    d[9] = 17; // max pixel clock, 10 MHz units (170 MHz)
    d[10] = 0x01; // range limits only: no formula for other modes
    d[11] = 0x0a;
    d[12..].fill(0x20);
    d
}

/// The 10-bit chromaticity coordinates of sRGB (red, green, blue, white).
const SRGB: [(f64, f64); 4] = [
    (0.640, 0.330),
    (0.300, 0.600),
    (0.150, 0.060),
    (0.3127, 0.3290),
];

fn chromaticity() -> [u8; 10] {
    let q = |v: f64| (v * 1024.0 + 0.5) as u16;
    let c: Vec<(u16, u16)> = SRGB.iter().map(|&(x, y)| (q(x), q(y))).collect();
    let lo = |(x, y): (u16, u16)| (((x & 3) << 2) | (y & 3)) as u8;
    let mut out = [0u8; 10];
    out[0] = (lo(c[0]) << 4) | lo(c[1]);
    out[1] = (lo(c[2]) << 4) | lo(c[3]);
    for (i, &(x, y)) in c.iter().enumerate() {
        out[2 + 2 * i] = (x >> 2) as u8;
        out[3 + 2 * i] = (y >> 2) as u8;
    }
    out
}

/// The adapter's EDID block, checksum included.
pub fn block() -> [u8; EDID_LEN] {
    let mut e = [0u8; EDID_LEN];
    e[0..8].copy_from_slice(&HEADER);
    e[8..10].copy_from_slice(&manufacturer(b"PCM"));
    e[10..12].copy_from_slice(&0x1111u16.to_le_bytes()); // product code
    e[12..16].copy_from_slice(&0u32.to_le_bytes()); // no serial number
    e[16] = 1; // week of manufacture
    e[17] = (2024 - 1990) as u8; // year of manufacture
    e[18] = 1; // EDID 1.4
    e[19] = 4;
    e[20] = 0xa0; // digital input, 8 bits per colour, interface undefined
    e[21] = SIZE_MM.0.div_ceil(10) as u8; // cm
    e[22] = SIZE_MM.1.div_ceil(10) as u8;
    e[23] = 120; // gamma 2.2
    e[24] = 0x06; // sRGB default, preferred timing is native, RGB 4:4:4
    e[25..35].copy_from_slice(&chromaticity());
    // Established timings: 640x480@60, 800x600@60; 1024x768@60.
    e[35] = 0x21;
    e[36] = 0x08;
    e[37] = 0x00;
    // Standard timings: 1280x1024@60 (5:4), 1600x1200@60 (4:3), then
    // unused slots (0x01 0x01).
    let std = [(1280u16, 0b10u8), (1600, 0b01)];
    for i in 0..8 {
        let (a, b) = match std.get(i) {
            Some(&(w, aspect)) => ((w / 8 - 31) as u8, aspect << 6),
            None => (0x01, 0x01),
        };
        e[38 + 2 * i] = a;
        e[39 + 2 * i] = b;
    }
    e[54..72].copy_from_slice(&detailed(&DMT_1024X768));
    e[72..90].copy_from_slice(&detailed(&DMT_1280X1024));
    e[90..108].copy_from_slice(&range_limits());
    e[108..126].copy_from_slice(&descriptor(0xfc, b"PCIem Bochs"));
    e[126] = 0; // no extension blocks
    let sum = e[..127].iter().fold(0u8, |s, &b| s.wrapping_add(b));
    e[127] = 0u8.wrapping_sub(sum);
    e
}

/// The active size of the detailed timing descriptor at `offset` in an
/// EDID block, or `None` if it is a display descriptor or out of range.
pub fn detailed_size(edid: &[u8], offset: usize) -> Option<(u16, u16)> {
    let d = edid.get(offset..offset + 18)?;
    if d[0] == 0 && d[1] == 0 {
        return None;
    }
    let w = u16::from(d[2]) | (u16::from(d[4] >> 4) << 8);
    let h = u16::from(d[5]) | (u16::from(d[7] >> 4) << 8);
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_is_valid() {
        let e = block();
        assert_eq!(e[..8], HEADER);
        assert_eq!(e.iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0);
        assert_eq!((e[18], e[19]), (1, 4));
        assert_eq!(&e[8..10], &[0x40, 0x6d]); // "PCM"
    }

    #[test]
    fn detailed_timings_describe_the_modes() {
        let e = block();
        assert_eq!(detailed_size(&e, 54), Some((1024, 768)));
        assert_eq!(detailed_size(&e, 72), Some((1280, 1024)));
        assert_eq!(detailed_size(&e, 90), None);
        // 65 MHz in 10 kHz units; blanking 320 pixels and 38 lines.
        assert_eq!(u16::from_le_bytes([e[54], e[55]]), 6500);
        assert_eq!((e[57], e[60]), (0x40, 38));
        // Refresh = clock / (htotal * vtotal) is 60 Hz within 0.5 %.
        for t in [DMT_1024X768, DMT_1280X1024] {
            let total = f64::from(t.hactive + t.hblank()) * f64::from(t.vactive + t.vblank());
            let hz = f64::from(t.clock_khz) * 1000.0 / total;
            assert!((hz - 60.0).abs() < 0.3, "{hz}");
        }
    }

    #[test]
    fn name_and_standard_timings() {
        let e = block();
        assert_eq!(e[111], 0xfc);
        assert_eq!(&e[113..125], b"PCIem Bochs\n");
        assert_eq!(&e[38..42], &[0x81, 0x80, 0xa9, 0x40]);
        assert_eq!(&e[42..44], &[0x01, 0x01]);
    }
}
