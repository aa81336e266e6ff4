//! Hex dump in the format of `lspci -xxx` / `-xxxx`, which `lspci -F FILE`
//! reads back (pciutils' "dump" access method).

use core::fmt;

use super::ConfigSpace;

impl ConfigSpace {
    /// Write `header` (e.g. `00:00.0 Class 0b00: Device 1f0c:0001`) and the
    /// first 256 bytes, or all 4096 with `extended`, as lspci prints them:
    /// lines of 16 bytes, `"{offset:02x}: " + "xx xx ..."`.
    pub fn write_lspci_dump<W: fmt::Write>(
        &self,
        header: &str,
        extended: bool,
        w: &mut W,
    ) -> fmt::Result {
        writeln!(w, "{header}")?;
        let len = if extended { 4096 } else { 256 };
        let bytes = self.image().config.get(..len).unwrap_or(&[]);
        for (row, chunk) in bytes.chunks(16).enumerate() {
            write!(w, "{:02x}:", row * 16)?;
            for b in chunk {
                write!(w, " {b:02x}")?;
            }
            writeln!(w)?;
        }
        writeln!(w)
    }
}
