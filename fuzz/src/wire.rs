//! The byte format of every target's input: little-endian integers read in
//! order with [`arbitrary::Unstructured`] (zero when the input runs out), so
//! that a seed can be written as easily as it is read.
//!
//! `#[derive(Arbitrary)]` would pick enum variants and collection lengths
//! with encodings that are awkward to produce by hand; reading plain
//! integers and mapping them (`kind % N`) keeps every seed in
//! `fuzz/corpus/` the output of a small [`Writer`] program, and keeps
//! libFuzzer's byte mutations meaningful (one byte flipped is one field
//! changed).

use arbitrary::Unstructured;

/// Reads fields from fuzzer input.
pub struct Reader<'a> {
    u: Unstructured<'a>,
}

impl<'a> Reader<'a> {
    /// Read from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            u: Unstructured::new(data),
        }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.u.is_empty()
    }

    /// Next byte (0 at the end).
    pub fn u8(&mut self) -> u8 {
        self.u.arbitrary().unwrap_or(0)
    }

    /// Next `u16`, little-endian.
    pub fn u16(&mut self) -> u16 {
        self.u.arbitrary().unwrap_or(0)
    }

    /// Next `u32`, little-endian.
    pub fn u32(&mut self) -> u32 {
        self.u.arbitrary().unwrap_or(0)
    }

    /// Next `u64`, little-endian.
    pub fn u64(&mut self) -> u64 {
        self.u.arbitrary().unwrap_or(0)
    }

    /// Up to `len` bytes (fewer if the input ends first).
    pub fn bytes(&mut self, len: usize) -> &'a [u8] {
        let n = len.min(self.u.len());
        self.u.bytes(n).unwrap_or(&[])
    }
}

/// Writes fields in the format [`Reader`] reads (for corpus seeds).
#[derive(Default)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// An empty input.
    pub fn new() -> Self {
        Self::default()
    }

    /// A byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    /// A `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Raw bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.out.extend_from_slice(v);
        self
    }

    /// The input.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let data = Writer::new()
            .u8(7)
            .u16(0x1234)
            .u32(0xdead_beef)
            .u64(u64::MAX - 1)
            .bytes(&[1, 2, 3])
            .finish();
        let mut r = Reader::new(&data);
        assert_eq!(r.u8(), 7);
        assert_eq!(r.u16(), 0x1234);
        assert_eq!(r.u32(), 0xdead_beef);
        assert_eq!(r.u64(), u64::MAX - 1);
        assert_eq!(r.bytes(8), &[1, 2, 3]);
        assert!(r.is_empty());
        assert_eq!(r.u32(), 0);
    }
}
