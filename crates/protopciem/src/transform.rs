//! PROCESS_BUFFER's transform.
//!
//! Each byte is replaced by its bitwise complement (`b → !b`, i.e.
//! `255 - b`), and RESULT is the sum of the bytes *read* (before the
//! transform) as a 64-bit integer. The complement is its own inverse, so a
//! driver can check a round trip, and it changes every byte, so a transfer
//! that silently did nothing is caught.

/// Complement every byte of `buf` in place; returns the sum of the bytes
/// as they were.
pub fn process_in_place(buf: &mut [u8]) -> u64 {
    let mut sum = 0u64;
    for b in buf {
        sum += u64::from(*b);
        *b = !*b;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complements_and_sums_input() {
        let mut b = [0u8, 1, 0x80, 0xff];
        assert_eq!(process_in_place(&mut b), 0x180);
        assert_eq!(b, [0xff, 0xfe, 0x7f, 0x00]);
        assert_eq!(process_in_place(&mut []), 0);
    }
}
