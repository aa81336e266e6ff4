//! Pictures as PNG files (8-bit RGB), with the `png` crate.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::scanout::Frame;

/// Why a picture could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Encoding failed.
    #[error("encoding PNG: {0}")]
    Encode(#[from] png::EncodingError),
    /// Decoding failed.
    #[error("decoding PNG: {0}")]
    Decode(#[from] png::DecodingError),
    /// A PNG this crate does not read back (only 8-bit RGB/RGBA).
    #[error("unsupported PNG layout: {0}")]
    Layout(String),
}

/// Encodes `frame` as a PNG into `out`.
pub fn encode(frame: &Frame, out: impl Write) -> Result<(), PngError> {
    let mut e = png::Encoder::new(out, frame.width, frame.height);
    e.set_color(png::ColorType::Rgb);
    e.set_depth(png::BitDepth::Eight);
    // Screenshots are taken while the driver runs: fast beats small.
    e.set_compression(png::Compression::Fast);
    let mut w = e.write_header()?;
    w.write_image_data(&frame.rgb)?;
    w.finish()?;
    Ok(())
}

/// Writes `frame` to `path` whole: into `path.tmp`, then renamed, so a
/// reader never sees a half-written picture.
pub fn write(path: &Path, frame: &Frame) -> Result<(), PngError> {
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| PngError::Io { path: p, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = File::create(&tmp).map_err(io(&tmp))?;
    let mut out = BufWriter::new(file);
    encode(frame, &mut out)?;
    out.flush().map_err(io(&tmp))?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Decodes a PNG (8-bit RGB or RGBA; alpha dropped).
pub fn decode(bytes: &[u8]) -> Result<Frame, PngError> {
    let mut d = png::Decoder::new(std::io::Cursor::new(bytes));
    d.set_transformations(png::Transformations::EXPAND);
    let mut reader = d.read_info()?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| PngError::Layout("image too large".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf)?;
    if info.bit_depth != png::BitDepth::Eight {
        return Err(PngError::Layout(format!("bit depth {:?}", info.bit_depth)));
    }
    let px = (info.width * info.height) as usize;
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf[..px * 3].to_vec(),
        png::ColorType::Rgba => buf[..px * 4]
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => return Err(PngError::Layout(format!("colour type {other:?}"))),
    };
    Ok(Frame {
        width: info.width,
        height: info.height,
        rgb,
    })
}

/// Reads a PNG file.
pub fn read(path: &Path) -> Result<Frame, PngError> {
    let mut bytes = Vec::new();
    let f = File::open(path).map_err(|source| PngError::Io {
        path: path.to_owned(),
        source,
    })?;
    std::io::Read::read_to_end(&mut BufReader::new(f), &mut bytes).map_err(|source| {
        PngError::Io {
            path: path.to_owned(),
            source,
        }
    })?;
    decode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut f = Frame::black(3, 2);
        f.rgb[0..3].copy_from_slice(&[1, 2, 3]);
        f.rgb[15..18].copy_from_slice(&[250, 128, 7]);
        let mut bytes = Vec::new();
        encode(&f, &mut bytes).unwrap();
        assert_eq!(decode(&bytes).unwrap(), f);
        assert!(decode(b"not a png").is_err());
    }
}
