//! Reading a chart back, for tests that check what was drawn: decode the
//! PNG to pixels and find the bars of one colour.

/// A decoded RGB image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Pixels, row by row.
    pub pixels: Vec<[u8; 3]>,
}

/// One bar found by [`bars`], measured along its middle row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Leftmost column of the bar's colour.
    pub left: usize,
    /// Rightmost column of the bar's colour.
    pub right: usize,
    /// Pixels of the bar's colour in that row.
    pub count: usize,
}

/// Decodes an 8-bit RGB PNG (what this crate writes), or says why not.
pub fn decode(bytes: &[u8]) -> Result<Image, String> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .map_err(|e| format!("not a PNG: {e}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "PNG too large to decode".to_owned())?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("bad PNG frame: {e}"))?;
    if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
        return Err(format!(
            "expected 8-bit RGB, got {:?} {:?}",
            info.color_type, info.bit_depth
        ));
    }
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Ok(Image {
        width: info.width as usize,
        height: info.height as usize,
        pixels,
    })
}

/// The bars of colour `colour`, top to bottom: each horizontal band of
/// rows that hold the colour, measured along the band's middle row.
pub fn bars(image: &Image, colour: [u8; 3]) -> Vec<Span> {
    let w = image.width;
    if w == 0 {
        return Vec::new();
    }
    let rows: Vec<&[[u8; 3]]> = image.pixels.chunks_exact(w).collect();
    let mut out = Vec::new();
    let mut y = 0;
    while y < rows.len() {
        let start = y;
        while y < rows.len() && rows[y].contains(&colour) {
            y += 1;
        }
        if y == start {
            y += 1;
            continue;
        }
        let mid = rows[(start + y) / 2];
        let xs: Vec<usize> = (0..w).filter(|&x| mid[x] == colour).collect();
        if let (Some(&left), Some(&right)) = (xs.first(), xs.last()) {
            out.push(Span {
                left,
                right,
                count: xs.len(),
            });
        }
    }
    out
}
