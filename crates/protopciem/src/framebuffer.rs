//! The 640×480 RGB888 framebuffer, its drawing primitives, and the dirty
//! rectangle that keeps the BAR2 mirror cheap.
//!
//! Pixel (x, y) is at byte `y * STRIDE + x * 3`, bytes R, G, B, both in the
//! model's memory and in BAR2. Drawing grows a bounding box of touched
//! pixels; [`Framebuffer::flush`] copies only the rows of that box (and,
//! when it is narrower than the screen, only its columns) into BAR2.

use pciem_core::{Host, HostError};

use crate::regs::FB_BAR;

/// Width in pixels.
pub const WIDTH: usize = 640;
/// Height in pixels.
pub const HEIGHT: usize = 480;
/// Bytes per pixel (R, G, B).
pub const BYTES_PER_PIXEL: usize = 3;
/// Bytes per row.
pub const STRIDE: usize = WIDTH * BYTES_PER_PIXEL;
/// Bytes in a whole frame: 921 600.
pub const FRAME_BYTES: usize = STRIDE * HEIGHT;

/// A colour. The command buffer also carries an alpha byte; the
/// framebuffer has no alpha channel, so it is ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rgb {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

impl Rgb {
    /// A colour from its components.
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b }
    }
}

/// A rectangle of pixels, half-open: `x0..x1` × `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rect {
    /// First column.
    pub x0: usize,
    /// First row.
    pub y0: usize,
    /// One past the last column.
    pub x1: usize,
    /// One past the last row.
    pub y1: usize,
}

impl Rect {
    /// The whole screen.
    pub const FULL: Rect = Rect {
        x0: 0,
        y0: 0,
        x1: WIDTH,
        y1: HEIGHT,
    };

    fn union(self, other: Rect) -> Rect {
        Rect {
            x0: self.x0.min(other.x0),
            y0: self.y0.min(other.y0),
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
        }
    }
}

/// The framebuffer with its dirty rectangle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Framebuffer {
    pixels: Vec<u8>,
    dirty: Option<Rect>,
}

impl Default for Framebuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framebuffer {
    /// A black framebuffer, entirely dirty (BAR2 has not been written yet).
    pub fn new() -> Self {
        Self {
            pixels: vec![0; FRAME_BYTES],
            dirty: Some(Rect::FULL),
        }
    }

    /// The pixel bytes, row-major RGB888.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The colour at (x, y), or `None` outside the screen.
    pub fn pixel(&self, x: usize, y: usize) -> Option<Rgb> {
        if x >= WIDTH || y >= HEIGHT {
            return None;
        }
        let i = y * STRIDE + x * BYTES_PER_PIXEL;
        Some(Rgb::new(
            self.pixels[i],
            self.pixels[i + 1],
            self.pixels[i + 2],
        ))
    }

    /// The area changed since the last [`Framebuffer::flush`].
    pub fn dirty(&self) -> Option<Rect> {
        self.dirty
    }

    fn mark(&mut self, r: Rect) {
        if r.x0 >= r.x1 || r.y0 >= r.y1 {
            return;
        }
        self.dirty = Some(match self.dirty {
            Some(d) => d.union(r),
            None => r,
        });
    }

    /// Fill the whole screen with `c`.
    pub fn clear(&mut self, c: Rgb) {
        for px in self.pixels.chunks_exact_mut(BYTES_PER_PIXEL) {
            px.copy_from_slice(&[c.r, c.g, c.b]);
        }
        self.mark(Rect::FULL);
    }

    /// Set (x, y) to `c`; pixels off the screen are ignored.
    pub fn put(&mut self, x: i32, y: i32, c: Rgb) {
        let (Ok(xu), Ok(yu)) = (usize::try_from(x), usize::try_from(y)) else {
            return;
        };
        if xu >= WIDTH || yu >= HEIGHT {
            return;
        }
        let i = yu * STRIDE + xu * BYTES_PER_PIXEL;
        self.pixels[i..i + BYTES_PER_PIXEL].copy_from_slice(&[c.r, c.g, c.b]);
        self.mark(Rect {
            x0: xu,
            y0: yu,
            x1: xu + 1,
            y1: yu + 1,
        });
    }

    /// Draw a one-pixel line from (x0, y0) to (x1, y1), both endpoints
    /// included, with Bresenham's integer algorithm stepping from the first
    /// endpoint to the second (all octants). Pixels off the screen are
    /// clipped; the line is still computed from its true endpoints, so the
    /// visible part is the same as if the screen were larger.
    pub fn draw_line(&mut self, x0: u16, y0: u16, x1: u16, y1: u16, c: Rgb) {
        let (mut x, mut y) = (i32::from(x0), i32::from(y0));
        let (xe, ye) = (i32::from(x1), i32::from(y1));
        let dx = (xe - x).abs();
        let dy = -(ye - y).abs();
        let sx = if x < xe { 1 } else { -1 };
        let sy = if y < ye { 1 } else { -1 };
        let mut err = dx + dy;
        loop {
            self.put(x, y, c);
            if x == xe && y == ye {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Copy a `w`×`h` block of RGB888 pixels (row-major, `w * 3` bytes per
    /// row) to (x, y), clipped at the right and bottom edges. Returns
    /// `false`, drawing nothing, if `pixels` is shorter than `w * h * 3`.
    pub fn blit(&mut self, x: u16, y: u16, w: u16, h: u16, pixels: &[u8]) -> bool {
        let (x, y, w, h) = (
            usize::from(x),
            usize::from(y),
            usize::from(w),
            usize::from(h),
        );
        let src_stride = w * BYTES_PER_PIXEL;
        if pixels.len() < src_stride * h {
            return false;
        }
        if x >= WIDTH || y >= HEIGHT {
            return true;
        }
        let vis_w = w.min(WIDTH - x);
        let vis_h = h.min(HEIGHT - y);
        for row in 0..vis_h {
            let src = &pixels[row * src_stride..row * src_stride + vis_w * BYTES_PER_PIXEL];
            let dst = (y + row) * STRIDE + x * BYTES_PER_PIXEL;
            self.pixels[dst..dst + src.len()].copy_from_slice(src);
        }
        self.mark(Rect {
            x0: x,
            y0: y,
            x1: x + vis_w,
            y1: y + vis_h,
        });
        true
    }

    /// Replace the whole frame. Returns `false`, changing nothing, unless
    /// `frame` is exactly [`FRAME_BYTES`] long.
    pub fn load_frame(&mut self, frame: &[u8]) -> bool {
        if frame.len() != FRAME_BYTES {
            return false;
        }
        self.pixels.copy_from_slice(frame);
        self.mark(Rect::FULL);
        true
    }

    /// Copy the dirty rectangle into BAR2 and forget it. Full-width areas
    /// go in one write; narrower ones row by row, only their columns.
    /// Returns the number of bytes written.
    pub fn flush(&mut self, host: &dyn Host) -> Result<u64, HostError> {
        let Some(d) = self.dirty else {
            return Ok(0);
        };
        let mut written = 0u64;
        if d.x0 == 0 && d.x1 == WIDTH {
            let span = &self.pixels[d.y0 * STRIDE..d.y1 * STRIDE];
            host.bar_write(FB_BAR, (d.y0 * STRIDE) as u64, span)?;
            written += span.len() as u64;
        } else {
            for row in d.y0..d.y1 {
                let start = row * STRIDE + d.x0 * BYTES_PER_PIXEL;
                let end = row * STRIDE + d.x1 * BYTES_PER_PIXEL;
                host.bar_write(FB_BAR, start as u64, &self.pixels[start..end])?;
                written += (end - start) as u64;
            }
        }
        self.dirty = None;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Rgb = Rgb::new(255, 255, 255);

    fn lit(fb: &Framebuffer) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                if fb.pixel(x, y) != Some(Rgb::default()) {
                    v.push((x, y));
                }
            }
        }
        v
    }

    #[test]
    fn line_endpoints_are_exact_in_every_octant() {
        let c = (100u16, 100u16);
        let ends = [
            (110, 103),
            (103, 110),
            (97, 110),
            (90, 103),
            (90, 97),
            (97, 90),
            (103, 90),
            (110, 97),
        ];
        for (ex, ey) in ends {
            let mut fb = Framebuffer::new();
            fb.draw_line(c.0, c.1, ex, ey, W);
            let px = lit(&fb);
            assert!(px.contains(&(100, 100)), "start of line to {ex},{ey}");
            assert!(
                px.contains(&(usize::from(ex), usize::from(ey))),
                "end of {ex},{ey}"
            );
            // One pixel per step of the major axis.
            let major = (i32::from(ex) - 100).abs().max((i32::from(ey) - 100).abs());
            assert_eq!(px.len() as i32, major + 1, "line to {ex},{ey}");
        }
    }

    #[test]
    fn shallow_line_pixels() {
        let mut fb = Framebuffer::new();
        // y = x / 2; at x = 1 and x = 3 the ideal line is exactly halfway
        // between two rows and the minor axis steps early (documented).
        fb.draw_line(0, 0, 4, 2, W);
        assert_eq!(lit(&fb), vec![(0, 0), (1, 1), (2, 1), (3, 2), (4, 2)]);
        let mut fb = Framebuffer::new();
        fb.draw_line(0, 0, 6, 2, W);
        assert_eq!(
            lit(&fb),
            vec![(0, 0), (1, 0), (2, 1), (3, 1), (4, 1), (5, 2), (6, 2)]
        );
    }

    #[test]
    fn single_point_line() {
        let mut fb = Framebuffer::new();
        fb.draw_line(5, 7, 5, 7, W);
        assert_eq!(lit(&fb), vec![(5, 7)]);
    }

    #[test]
    fn line_off_screen_is_clipped() {
        let mut fb = Framebuffer::new();
        fb.draw_line(630, 479, 700, 479, W);
        assert_eq!(lit(&fb), (630..640).map(|x| (x, 479)).collect::<Vec<_>>());
        let mut fb = Framebuffer::new();
        fb.draw_line(65535, 65535, 65535, 0, W);
        assert!(lit(&fb).is_empty());
    }

    #[test]
    fn blit_clips_right_and_bottom() {
        let mut fb = Framebuffer::new();
        let src: Vec<u8> = (0..4 * 3 * 3).map(|i| i as u8 + 1).collect();
        assert!(fb.blit(638, 478, 4, 3, &src));
        assert_eq!(fb.pixel(638, 478), Some(Rgb::new(1, 2, 3)));
        assert_eq!(fb.pixel(639, 478), Some(Rgb::new(4, 5, 6)));
        assert_eq!(fb.pixel(638, 479), Some(Rgb::new(13, 14, 15)));
        assert_eq!(fb.pixel(639, 479), Some(Rgb::new(16, 17, 18)));
        assert_eq!(lit(&fb).len(), 4);
        assert!(fb.blit(640, 0, 4, 3, &src));
        assert!(!fb.blit(0, 0, 5, 3, &src));
    }

    #[test]
    fn dirty_rect_tracks_drawing() {
        let mut fb = Framebuffer::new();
        fb.dirty = None;
        fb.draw_line(10, 20, 30, 25, W);
        assert_eq!(
            fb.dirty(),
            Some(Rect {
                x0: 10,
                y0: 20,
                x1: 31,
                y1: 26
            })
        );
        fb.put(5, 100, W);
        assert_eq!(
            fb.dirty(),
            Some(Rect {
                x0: 5,
                y0: 20,
                x1: 31,
                y1: 101
            })
        );
    }

    #[test]
    fn load_frame_checks_size() {
        let mut fb = Framebuffer::new();
        assert!(!fb.load_frame(&[1; FRAME_BYTES - 1]));
        assert_eq!(fb.pixel(0, 0), Some(Rgb::default()));
        assert!(fb.load_frame(&[7; FRAME_BYTES]));
        assert_eq!(fb.pixel(639, 479), Some(Rgb::new(7, 7, 7)));
    }
}
