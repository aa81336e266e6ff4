//! What the adapter shows: the scanout geometry the registers describe,
//! and the picture rendered from video memory.

use pciem_core::HostError;

use crate::dispi::Dispi;
use crate::regs::dispi::{BPP, DAC_8BIT, ENABLE, XRES, YRES};
use crate::vga::Vga;

/// Size of the picture while the VBE mode is off (a black VGA screen).
pub const OFF_SIZE: (u32, u32) = (640, 480);

/// The largest picture rendered, in pixels (48 MiB of RGB). The registers
/// allow 16000x12000 at 8 bpp with 256 MiB of video memory; a driver
/// setting such a mode gets a refused screenshot, not a model that
/// allocates gigabytes.
pub const MAX_PIXELS: u64 = 1 << 24;

/// Everything needed to draw the current picture from video memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanout {
    /// The VBE mode is on.
    pub enabled: bool,
    /// The VGA attribute controller blanks the picture.
    pub blanked: bool,
    /// Visible width in pixels.
    pub width: u32,
    /// Visible height in lines.
    pub height: u32,
    /// Depth register: 4, 8, 15, 16, 24 or 32.
    pub bpp: u16,
    /// Bytes per line in video memory.
    pub pitch: u32,
    /// Byte offset of the first visible pixel.
    pub start: u64,
    /// Framebuffer byte order is big-endian (QEMU extension register).
    pub big_endian: bool,
    /// The DAC palette (8 bpp modes).
    pub palette: Box<[u8; 768]>,
    /// Palette entries are 8 bits (else 6).
    pub dac_8bit: bool,
}

/// The mode part of a [`Scanout`]: what a mode-change report names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// The VBE mode is on.
    pub enabled: bool,
    /// The picture is blanked.
    pub blanked: bool,
    /// Width in pixels.
    pub width: u32,
    /// Height in lines.
    pub height: u32,
    /// Depth register.
    pub bpp: u16,
    /// Bytes per line.
    pub pitch: u32,
    /// Big-endian framebuffer.
    pub big_endian: bool,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.enabled {
            return write!(
                f,
                "off (VBE disabled){}",
                if self.blanked { ", blanked" } else { "" }
            );
        }
        write!(
            f,
            "{}x{} {} bpp, pitch {} bytes, {}{}",
            self.width,
            self.height,
            self.bpp,
            self.pitch,
            if self.big_endian {
                "big-endian"
            } else {
                "little-endian"
            },
            if self.blanked { ", blanked" } else { "" }
        )
    }
}

impl Scanout {
    /// The scanout the registers describe.
    pub fn from_registers(dispi: &Dispi, vga: &Vga, big_endian: bool) -> Self {
        Self {
            enabled: dispi.enabled(),
            blanked: vga.blanked(),
            width: u32::from(dispi.reg(XRES)),
            height: u32::from(dispi.reg(YRES)),
            bpp: dispi.reg(BPP),
            pitch: dispi.line_length(),
            start: dispi.start(),
            big_endian,
            palette: Box::new(*vga.palette()),
            dac_8bit: dispi.reg(ENABLE) & DAC_8BIT != 0,
        }
    }

    /// The mode part. While the VBE mode is off only the blanking counts:
    /// the registers a driver writes before enabling are not a mode yet.
    pub fn mode(&self) -> Mode {
        if !self.enabled {
            return Mode {
                enabled: false,
                blanked: self.blanked,
                width: 0,
                height: 0,
                bpp: 0,
                pitch: 0,
                big_endian: false,
            };
        }
        Mode {
            enabled: self.enabled,
            blanked: self.blanked,
            width: self.width,
            height: self.height,
            bpp: self.bpp,
            pitch: self.pitch,
            big_endian: self.big_endian,
        }
    }

    /// Size of the picture: the mode's, or [`OFF_SIZE`] while off.
    pub fn size(&self) -> (u32, u32) {
        if self.enabled {
            (self.width, self.height)
        } else {
            OFF_SIZE
        }
    }

    /// Draws the picture, reading video memory through `vram` (offset,
    /// buffer). Blanked or off: black. Pixels past the end of video memory
    /// (`vram_size`) are black.
    pub fn render(
        &self,
        vram_size: u64,
        vram: impl FnOnce(u64, &mut [u8]) -> Result<(), HostError>,
    ) -> Result<Frame, HostError> {
        let (w, h) = self.size();
        if u64::from(w) * u64::from(h) > MAX_PIXELS {
            return Err(HostError::TooLong {
                len: u64::from(w) * u64::from(h),
                max: MAX_PIXELS,
            });
        }
        let mut frame = Frame::black(w, h);
        if !self.enabled || self.blanked || w == 0 || h == 0 {
            return Ok(frame);
        }
        let Some(bits) = Dispi::bits_of(self.bpp) else {
            return Ok(frame);
        };
        if bits == 4 {
            // Planar 4 bpp is not drawn (see docs/bochs.md).
            return Ok(frame);
        }
        let bytes_pp = (bits / 8) as usize;
        let pitch = self.pitch as usize;
        // One read of everything the picture covers, cut at the end of
        // video memory.
        let span = (h as u64 - 1) * pitch as u64 + u64::from(w) * bytes_pp as u64;
        let avail = vram_size.saturating_sub(self.start).min(span) as usize;
        let mut mem = vec![0u8; avail];
        if avail > 0 {
            vram(self.start, &mut mem)?;
        }
        let pal = |i: u8| -> [u8; 3] {
            let p = &self.palette[usize::from(i) * 3..usize::from(i) * 3 + 3];
            if self.dac_8bit {
                [p[0], p[1], p[2]]
            } else {
                // 6-bit components, scaled as QEMU does (c << 2 | c >> 4).
                let s = |c: u8| ((c & 0x3f) << 2) | ((c & 0x3f) >> 4);
                [s(p[0]), s(p[1]), s(p[2])]
            }
        };
        for y in 0..h as usize {
            for x in 0..w as usize {
                let at = y * pitch + x * bytes_pp;
                let Some(px) = mem.get(at..at + bytes_pp) else {
                    continue;
                };
                let rgb = decode(px, self.bpp, self.big_endian, &pal);
                let o = (y * w as usize + x) * 3;
                frame.rgb[o..o + 3].copy_from_slice(&rgb);
            }
        }
        Ok(frame)
    }
}

/// One pixel of depth `bpp` as RGB.
fn decode(px: &[u8], bpp: u16, big_endian: bool, pal: &impl Fn(u8) -> [u8; 3]) -> [u8; 3] {
    let word = |b: &[u8]| -> u32 {
        let mut v = 0u32;
        if big_endian {
            for &x in b {
                v = (v << 8) | u32::from(x);
            }
        } else {
            for &x in b.iter().rev() {
                v = (v << 8) | u32::from(x);
            }
        }
        v
    };
    let c5 = |v: u32| ((v << 3) | (v >> 2)) as u8;
    let c6 = |v: u32| ((v << 2) | (v >> 4)) as u8;
    match bpp {
        8 => pal(px[0]),
        15 => {
            let v = word(px);
            [c5((v >> 10) & 0x1f), c5((v >> 5) & 0x1f), c5(v & 0x1f)]
        }
        16 => {
            let v = word(px);
            [c5((v >> 11) & 0x1f), c6((v >> 5) & 0x3f), c5(v & 0x1f)]
        }
        // 24 and 32 bpp: x8r8g8b8 / r8g8b8 as a little-endian word.
        _ => {
            let v = word(px);
            [(v >> 16) as u8, (v >> 8) as u8, v as u8]
        }
    }
}

/// A picture: 8-bit RGB, rows top to bottom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

impl Frame {
    /// An all-black picture.
    pub fn black(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            rgb: vec![0; width as usize * height as usize * 3],
        }
    }

    /// The pixel at (`x`, `y`), or `None` outside.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let o = (y as usize * self.width as usize + x as usize) * 3;
        Some([self.rgb[o], self.rgb[o + 1], self.rgb[o + 2]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::dispi::*;

    fn scanout(w: u16, h: u16, bpp: u16) -> Scanout {
        let mut d = Dispi::new(1 << 20);
        d.write(BPP, bpp);
        d.write(XRES, w);
        d.write(YRES, h);
        d.write(ENABLE, ENABLED | LFB_ENABLED);
        let mut v = Vga::new();
        v.read(crate::regs::vga::IS1_RC);
        v.write(crate::regs::vga::ATT_W, 0x20);
        Scanout::from_registers(&d, &v, false)
    }

    fn render(s: &Scanout, mem: &[u8]) -> Frame {
        s.render(mem.len() as u64, |off, buf| {
            buf.copy_from_slice(&mem[off as usize..off as usize + buf.len()]);
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn depths_decode() {
        let s = scanout(8, 1, 32);
        let mut mem = vec![0u8; 1 << 20];
        mem[..4].copy_from_slice(&0x00ff_8001u32.to_le_bytes());
        assert_eq!(render(&s, &mem).pixel(0, 0), Some([0xff, 0x80, 0x01]));
        let mut be = s.clone();
        be.big_endian = true;
        mem[..4].copy_from_slice(&[0x00, 0x11, 0x22, 0x33]);
        assert_eq!(render(&be, &mem).pixel(0, 0), Some([0x11, 0x22, 0x33]));

        let s = scanout(8, 1, 16);
        mem[..2].copy_from_slice(&0xf800u16.to_le_bytes());
        assert_eq!(render(&s, &mem).pixel(0, 0), Some([0xff, 0, 0]));
        let s = scanout(8, 1, 15);
        mem[..2].copy_from_slice(&0x03e0u16.to_le_bytes());
        assert_eq!(render(&s, &mem).pixel(0, 0), Some([0, 0xff, 0]));
        let s = scanout(8, 1, 24);
        mem[..3].copy_from_slice(&[0x01, 0x02, 0x03]);
        assert_eq!(render(&s, &mem).pixel(0, 0), Some([0x03, 0x02, 0x01]));

        let mut s = scanout(8, 1, 8);
        s.palette[3..6].copy_from_slice(&[63, 0, 32]);
        mem[0] = 1;
        assert_eq!(render(&s, &mem).pixel(0, 0), Some([255, 0, 130]));
        s.dac_8bit = true;
        assert_eq!(render(&s, &mem).pixel(0, 0), Some([63, 0, 32]));
    }

    #[test]
    fn blanked_and_off_are_black() {
        let mut s = scanout(8, 2, 32);
        let mem = vec![0xffu8; 1 << 20];
        assert_eq!(render(&s, &mem).pixel(1, 1), Some([255, 255, 255]));
        s.blanked = true;
        assert_eq!(render(&s, &mem).pixel(1, 1), Some([0, 0, 0]));
        s.enabled = false;
        let f = render(&s, &mem);
        assert_eq!((f.width, f.height), OFF_SIZE);
        assert!(f.rgb.iter().all(|&b| b == 0));
    }

    #[test]
    fn a_picture_too_large_is_refused() {
        let mut s = scanout(8, 1, 8);
        (s.width, s.height) = (16000, 12000);
        let r = s.render(1 << 20, |_, _| Ok(()));
        assert!(matches!(r, Err(HostError::TooLong { .. })), "{r:?}");
    }

    #[test]
    fn memory_past_the_end_is_black() {
        let mut s = scanout(8, 4, 32);
        s.start = (1 << 20) - 32 * 2; // two lines left
        let mem = vec![0xffu8; 1 << 20];
        let f = render(&s, &mem);
        assert_eq!(f.pixel(7, 1), Some([255, 255, 255]));
        assert_eq!(f.pixel(0, 2), Some([0, 0, 0]));
    }
}
