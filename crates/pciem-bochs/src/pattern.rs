//! Known pictures to draw into video memory, as 32 bpp XRGB little-endian
//! bytes (what `/dev/fb0` and the driver's framebuffers hold).

/// Eight colour bars, left to right: white, yellow, cyan, green, magenta,
/// red, blue, black.
pub const BARS: [[u8; 3]; 8] = [
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
    [0, 0, 0],
];

/// One XRGB8888 pixel as little-endian bytes (B, G, R, X).
pub const fn xrgb([r, g, b]: [u8; 3]) -> [u8; 4] {
    [b, g, r, 0]
}

/// The colour of [`bars`] at column `x` of `width`.
pub fn bar_at(x: u32, width: u32) -> [u8; 3] {
    BARS[(x as usize * BARS.len()) / width.max(1) as usize]
}

/// Vertical colour bars ([`BARS`]), `width` × `height`, pitch `width * 4`.
pub fn bars(width: u32, height: u32) -> Vec<u8> {
    let row: Vec<u8> = (0..width).flat_map(|x| xrgb(bar_at(x, width))).collect();
    row.repeat(height as usize)
}

/// A pattern in which every pixel differs from its neighbours: red from
/// x, green from y, blue from both; the X byte carries the low bits of
/// x + y, so every byte of the buffer is checked.
pub fn gradient(width: u32, height: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(width as usize * height as usize * 4);
    for y in 0..height {
        for x in 0..width {
            v.extend_from_slice(&[(x ^ y) as u8, (y * 3) as u8, (x * 5) as u8, (x + y) as u8]);
        }
    }
    v
}

/// The colour [`gradient`] shows at (`x`, `y`).
pub fn gradient_at(x: u32, y: u32) -> [u8; 3] {
    [(x * 5) as u8, (y * 3) as u8, (x ^ y) as u8]
}

/// A checkerboard of `cell`-pixel squares in `a` and `b`.
pub fn checker(width: u32, height: u32, cell: u32, a: [u8; 3], b: [u8; 3]) -> Vec<u8> {
    let cell = cell.max(1);
    let mut v = Vec::with_capacity(width as usize * height as usize * 4);
    for y in 0..height {
        for x in 0..width {
            let c = if (x / cell + y / cell).is_multiple_of(2) {
                a
            } else {
                b
            };
            v.extend_from_slice(&xrgb(c));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_gradient_layout() {
        let b = bars(16, 2);
        assert_eq!(b.len(), 16 * 2 * 4);
        assert_eq!(&b[0..4], &[255, 255, 255, 0]);
        assert_eq!(&b[60..64], &[0, 0, 0, 0]);
        assert_eq!(bar_at(2, 16), [255, 255, 0]);
        let g = gradient(4, 4);
        let at = (2 * 4 + 3) * 4;
        let [r, gr, bl] = gradient_at(3, 2);
        assert_eq!(&g[at..at + 3], &[bl, gr, r]);
    }
}
