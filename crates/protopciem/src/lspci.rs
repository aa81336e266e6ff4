//! Configuration space as `lspci -xxxx` prints it, so that
//! `lspci -F FILE -vvv` decodes it.

use std::fmt::Write as _;

/// Format `config` (normally 4096 bytes; any multiple of 16 works) as one
/// device of an `lspci -xxxx` dump at bus address `slot` (e.g. `"00:00.0"`).
pub fn dump(config: &[u8], slot: &str) -> String {
    let byte = |i: usize| config.get(i).copied().unwrap_or(0);
    let mut s = String::new();
    // lspci prints the device's name after the slot; its dump parser only
    // reads the slot, so say what the header says.
    let _ = writeln!(
        s,
        "{slot} Class {:02x}{:02x}: Device {:02x}{:02x}:{:02x}{:02x}",
        byte(0x0b),
        byte(0x0a),
        byte(1),
        byte(0),
        byte(3),
        byte(2)
    );
    for (row, chunk) in config.chunks(16).enumerate() {
        let _ = write!(s, "{:02x}:", row * 16);
        for b in chunk {
            let _ = write!(s, " {b:02x}");
        }
        s.push('\n');
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_header() {
        let mut cfg = vec![0u8; 4096];
        cfg[..4].copy_from_slice(&[0x0c, 0x1f, 0x01, 0x00]);
        cfg[0x0b] = 0x0b;
        let d = dump(&cfg, "00:00.0");
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(lines[0], "00:00.0 Class 0b00: Device 1f0c:0001");
        assert_eq!(lines.len(), 1 + 256 + 1);
        assert!(lines[1].starts_with("00: 0c 1f 01 00 00"));
        assert!(lines[17].starts_with("100: 00"));
        assert!(lines[256].starts_with("ff0: "));
        assert_eq!(lines[1].split(' ').count(), 17);
    }
}
