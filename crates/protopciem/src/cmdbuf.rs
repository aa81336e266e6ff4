//! The command-buffer format of EXECUTE_CMDBUF: parsing (device side) and
//! building (driver side).
//!
//! A buffer is a sequence of packed little-endian records with no padding
//! or alignment between them. Each record starts with an 8-byte header
//! `{u16 opcode, u16 reserved, u32 length}`, where `length` counts the
//! whole record including the header:
//!
//! | opcode | record | payload after the header | length |
//! |---|---|---|---|
//! | 0 | NOP | anything (padding) | ≥ 8 |
//! | 1 | CLEAR | `u8 r, g, b, a` | exactly 12 |
//! | 2 | DRAW_LINE | `u16 x0, y0, x1, y1; u8 r, g, b, a` | exactly 20 |
//! | 3 | BLIT_RECT | `u16 x, y, w, h` then `w*h` RGB888 pixels | exactly 16 + 3·w·h |
//!
//! `reserved` and alpha are ignored. The device parses the whole buffer
//! before drawing anything, so a malformed buffer draws nothing.

use crate::framebuffer::{Framebuffer, Rgb};

/// Size of a record header.
pub const HEADER_LEN: usize = 8;
/// NOP opcode.
pub const OP_NOP: u16 = 0;
/// CLEAR opcode.
pub const OP_CLEAR: u16 = 1;
/// DRAW_LINE opcode.
pub const OP_DRAW_LINE: u16 = 2;
/// BLIT_RECT opcode.
pub const OP_BLIT_RECT: u16 = 3;

const CLEAR_LEN: usize = HEADER_LEN + 4;
const LINE_LEN: usize = HEADER_LEN + 12;
const BLIT_HEAD_LEN: usize = HEADER_LEN + 8;

/// One decoded record, borrowing its pixels from the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// Do nothing.
    Nop,
    /// Fill the screen.
    Clear(Rgb),
    /// A line, both endpoints included.
    DrawLine {
        /// Start column.
        x0: u16,
        /// Start row.
        y0: u16,
        /// End column.
        x1: u16,
        /// End row.
        y1: u16,
        /// Colour.
        color: Rgb,
    },
    /// A block of pixels, clipped at the screen edges.
    BlitRect {
        /// Left column.
        x: u16,
        /// Top row.
        y: u16,
        /// Width.
        w: u16,
        /// Height.
        h: u16,
        /// `w * h * 3` bytes, row-major RGB888.
        pixels: &'a [u8],
    },
}

impl Record<'_> {
    /// Draw the record.
    pub fn apply(&self, fb: &mut Framebuffer) {
        match *self {
            Record::Nop => {}
            Record::Clear(c) => fb.clear(c),
            Record::DrawLine {
                x0,
                y0,
                x1,
                y1,
                color,
            } => fb.draw_line(x0, y0, x1, y1, color),
            Record::BlitRect { x, y, w, h, pixels } => {
                // The parser checked `pixels.len() == w * h * 3`.
                let _drawn = fb.blit(x, y, w, h, pixels);
            }
        }
    }
}

/// Why a command buffer was rejected; `offset` is where the offending
/// record starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A header or record runs past the end of the buffer.
    #[error("record at offset {offset} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// Start of the record.
        offset: usize,
        /// Bytes the record needs.
        needed: u64,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// The length field is below the header size or wrong for the opcode.
    #[error("record at offset {offset} (opcode {opcode}) has bad length {length}")]
    BadLength {
        /// Start of the record.
        offset: usize,
        /// Its opcode.
        opcode: u16,
        /// Its length field.
        length: u32,
    },
    /// The opcode is not one of the four known.
    #[error("record at offset {offset} has unknown opcode {opcode}")]
    UnknownOpcode {
        /// Start of the record.
        offset: usize,
        /// The opcode.
        opcode: u16,
    },
}

impl ParseError {
    /// Start of the offending record.
    pub fn offset(&self) -> usize {
        match *self {
            ParseError::Truncated { offset, .. }
            | ParseError::BadLength { offset, .. }
            | ParseError::UnknownOpcode { offset, .. } => offset,
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn rgb_at(b: &[u8], at: usize) -> Rgb {
    Rgb::new(b[at], b[at + 1], b[at + 2])
}

/// Decode a whole buffer. Every record is checked before any is returned.
pub fn parse(buf: &[u8]) -> Result<Vec<Record<'_>>, ParseError> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    while offset < buf.len() {
        let rest = &buf[offset..];
        if rest.len() < HEADER_LEN {
            return Err(ParseError::Truncated {
                offset,
                needed: HEADER_LEN as u64,
                available: rest.len(),
            });
        }
        let opcode = u16_at(rest, 0);
        let length = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let bad_length = ParseError::BadLength {
            offset,
            opcode,
            length,
        };
        let len = length as usize;
        if len < HEADER_LEN {
            return Err(bad_length);
        }
        if u64::from(length) > rest.len() as u64 {
            return Err(ParseError::Truncated {
                offset,
                needed: u64::from(length),
                available: rest.len(),
            });
        }
        let rec = &rest[..len];
        let record = match opcode {
            OP_NOP => Record::Nop,
            OP_CLEAR if len == CLEAR_LEN => Record::Clear(rgb_at(rec, HEADER_LEN)),
            OP_DRAW_LINE if len == LINE_LEN => Record::DrawLine {
                x0: u16_at(rec, 8),
                y0: u16_at(rec, 10),
                x1: u16_at(rec, 12),
                y1: u16_at(rec, 14),
                color: rgb_at(rec, 16),
            },
            OP_BLIT_RECT if len >= BLIT_HEAD_LEN => {
                let (w, h) = (u16_at(rec, 12), u16_at(rec, 14));
                let pixel_bytes = u64::from(w) * u64::from(h) * 3;
                if (len - BLIT_HEAD_LEN) as u64 != pixel_bytes {
                    return Err(bad_length);
                }
                Record::BlitRect {
                    x: u16_at(rec, 8),
                    y: u16_at(rec, 10),
                    w,
                    h,
                    pixels: &rec[BLIT_HEAD_LEN..],
                }
            }
            OP_CLEAR | OP_DRAW_LINE | OP_BLIT_RECT => return Err(bad_length),
            _ => return Err(ParseError::UnknownOpcode { offset, opcode }),
        };
        out.push(record);
        offset += len;
    }
    Ok(out)
}

/// Builds a command buffer, for drivers, tests and the demo.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CmdBufBuilder {
    bytes: Vec<u8>,
    records: usize,
}

impl CmdBufBuilder {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, opcode: u16, length: usize) {
        self.bytes.extend_from_slice(&opcode.to_le_bytes());
        self.bytes.extend_from_slice(&0u16.to_le_bytes());
        // Record lengths built here are at most 16 + 3 * 65535^2 < 2^34;
        // blit() refuses sizes that do not fit in u32.
        self.bytes.extend_from_slice(&(length as u32).to_le_bytes());
        self.records += 1;
    }

    /// A NOP record of `len` bytes (at least 8; shorter is raised to 8).
    pub fn nop(mut self, len: usize) -> Self {
        let len = len.max(HEADER_LEN);
        self.header(OP_NOP, len);
        self.bytes.resize(self.bytes.len() + len - HEADER_LEN, 0);
        self
    }

    /// A CLEAR record.
    pub fn clear(mut self, c: Rgb) -> Self {
        self.header(OP_CLEAR, CLEAR_LEN);
        self.bytes.extend_from_slice(&[c.r, c.g, c.b, 0xff]);
        self
    }

    /// A DRAW_LINE record.
    pub fn line(mut self, x0: u16, y0: u16, x1: u16, y1: u16, c: Rgb) -> Self {
        self.header(OP_DRAW_LINE, LINE_LEN);
        for v in [x0, y0, x1, y1] {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.bytes.extend_from_slice(&[c.r, c.g, c.b, 0xff]);
        self
    }

    /// A BLIT_RECT record; `pixels` must hold `w * h * 3` bytes.
    pub fn blit(mut self, x: u16, y: u16, w: u16, h: u16, pixels: &[u8]) -> Option<Self> {
        let n = usize::from(w) * usize::from(h) * 3;
        if pixels.len() != n || BLIT_HEAD_LEN + n > u32::MAX as usize {
            return None;
        }
        self.header(OP_BLIT_RECT, BLIT_HEAD_LEN + n);
        for v in [x, y, w, h] {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.bytes.extend_from_slice(pixels);
        Some(self)
    }

    /// Append raw bytes (for building malformed buffers in tests).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// Number of well-formed records added (raw bytes not counted).
    pub fn records(&self) -> usize {
        self.records
    }

    /// The encoded buffer.
    pub fn build(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb = Rgb::new(255, 0, 0);

    #[test]
    fn round_trip() {
        let px = [1, 2, 3, 4, 5, 6];
        let buf = CmdBufBuilder::new()
            .nop(12)
            .clear(RED)
            .line(1, 2, 3, 4, RED)
            .blit(5, 6, 2, 1, &px)
            .unwrap()
            .build();
        assert_eq!(buf.len(), 12 + 12 + 20 + 22);
        let recs = parse(&buf).unwrap();
        assert_eq!(
            recs,
            vec![
                Record::Nop,
                Record::Clear(RED),
                Record::DrawLine {
                    x0: 1,
                    y0: 2,
                    x1: 3,
                    y1: 4,
                    color: RED
                },
                Record::BlitRect {
                    x: 5,
                    y: 6,
                    w: 2,
                    h: 1,
                    pixels: &px
                },
            ]
        );
    }

    #[test]
    fn empty_buffer_has_no_records() {
        assert_eq!(parse(&[]).unwrap(), vec![]);
    }

    #[test]
    fn truncated_header() {
        let buf = CmdBufBuilder::new().clear(RED).raw(&[1, 0, 0]).build();
        assert!(matches!(
            parse(&buf),
            Err(ParseError::Truncated { offset: 12, .. })
        ));
    }

    #[test]
    fn length_past_end() {
        let mut buf = CmdBufBuilder::new().line(0, 0, 1, 1, RED).build();
        buf.truncate(19);
        assert!(matches!(
            parse(&buf),
            Err(ParseError::Truncated {
                offset: 0,
                needed: 20,
                available: 19
            })
        ));
        let buf = CmdBufBuilder::new()
            .raw(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
            .build();
        assert!(matches!(parse(&buf), Err(ParseError::Truncated { .. })));
    }

    #[test]
    fn zero_and_short_lengths() {
        for len in [0u32, 1, 7] {
            let mut rec = vec![0, 0, 0, 0];
            rec.extend_from_slice(&len.to_le_bytes());
            assert_eq!(
                parse(&rec),
                Err(ParseError::BadLength {
                    offset: 0,
                    opcode: 0,
                    length: len
                })
            );
        }
    }

    #[test]
    fn wrong_length_for_opcode() {
        let mut buf = CmdBufBuilder::new().clear(RED).build();
        buf[4] = 16;
        buf.extend_from_slice(&[0; 4]);
        assert!(matches!(
            parse(&buf),
            Err(ParseError::BadLength { opcode: 1, .. })
        ));
        // A blit whose w*h disagrees with its length.
        let mut buf = CmdBufBuilder::new()
            .blit(0, 0, 2, 2, &[0; 12])
            .unwrap()
            .build();
        buf[12] = 3;
        assert!(matches!(
            parse(&buf),
            Err(ParseError::BadLength { opcode: 3, .. })
        ));
        // A blit header cut short.
        let buf = CmdBufBuilder::new()
            .raw(&[3, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0])
            .build();
        assert!(matches!(
            parse(&buf),
            Err(ParseError::BadLength { opcode: 3, .. })
        ));
    }

    #[test]
    fn unknown_opcode() {
        let buf = CmdBufBuilder::new()
            .nop(8)
            .raw(&[4, 0, 0, 0, 8, 0, 0, 0])
            .build();
        assert_eq!(
            parse(&buf),
            Err(ParseError::UnknownOpcode {
                offset: 8,
                opcode: 4
            })
        );
    }
}
