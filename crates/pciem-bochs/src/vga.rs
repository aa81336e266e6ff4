//! The legacy VGA registers the window at MMIO 0x400 exposes (ports
//! 0x3c0..0x3df): enough of the attribute controller for blanking, the
//! DAC palette (used by 8 bpp modes), and plain index/data storage for
//! the sequencer, graphics and CRT controllers.
//!
//! The driver uses only the blanking dance: write MISC (colour mode), read
//! input status 1 to reset the attribute flip-flop, then write the
//! attribute index with bit 5 (palette address source) set to show the
//! picture or clear to blank it.

use crate::regs::vga::*;

/// The VGA register state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vga {
    /// Attribute controller index (bit 5: the picture is shown).
    att_index: u8,
    /// Attribute controller flip-flop: the next 0x3c0 write is data.
    att_data_next: bool,
    att: [u8; 0x20],
    misc: u8,
    seq_index: u8,
    seq: [u8; 0x100],
    gfx_index: u8,
    gfx: [u8; 0x100],
    crt_index: u8,
    crt: [u8; 0x100],
    /// Input status 1, toggled on every read (retrace and display enable
    /// bits), as polling software expects it to change.
    st01: u8,
    dac_read_index: u8,
    dac_write_index: u8,
    dac_sub: u8,
    /// 0 after a write-index set, 3 after a read-index set.
    dac_state: u8,
    palette: [u8; 768],
}

impl Default for Vga {
    fn default() -> Self {
        Self::new()
    }
}

impl Vga {
    /// The registers at reset: blanked, palette black.
    pub fn new() -> Self {
        Self {
            att_index: 0,
            att_data_next: false,
            att: [0; 0x20],
            misc: 0,
            seq_index: 0,
            seq: [0; 0x100],
            gfx_index: 0,
            gfx: [0; 0x100],
            crt_index: 0,
            crt: [0; 0x100],
            st01: 0,
            dac_read_index: 0,
            dac_write_index: 0,
            dac_sub: 0,
            dac_state: 0,
            palette: [0; 768],
        }
    }

    /// Whether the picture is blanked (attribute index bit 5 clear).
    pub fn blanked(&self) -> bool {
        self.att_index & ATT_PAS == 0
    }

    /// The 256-entry DAC palette, three 6- or 8-bit components each.
    pub fn palette(&self) -> &[u8; 768] {
        &self.palette
    }

    /// The driver reads port `port`.
    pub fn read(&mut self, port: u16) -> u8 {
        match port {
            ATT_W => self.att_index,
            ATT_R => self.att[usize::from(self.att_index & 0x1f)],
            MIS_R => self.misc,
            SEQ_I => self.seq_index,
            SEQ_D => self.seq[usize::from(self.seq_index)],
            PEL_IR => self.dac_state,
            PEL_IW => self.dac_write_index,
            PEL_D => {
                let v =
                    self.palette[usize::from(self.dac_read_index) * 3 + usize::from(self.dac_sub)];
                self.dac_sub += 1;
                if self.dac_sub == 3 {
                    self.dac_sub = 0;
                    self.dac_read_index = self.dac_read_index.wrapping_add(1);
                }
                v
            }
            GFX_I => self.gfx_index,
            GFX_D => self.gfx[usize::from(self.gfx_index)],
            CRT_IC => self.crt_index,
            CRT_DC => self.crt[usize::from(self.crt_index)],
            IS1_RC => {
                self.att_data_next = false;
                self.st01 ^= 0x09;
                self.st01
            }
            _ => 0,
        }
    }

    /// The driver writes `value` to port `port`.
    pub fn write(&mut self, port: u16, value: u8) {
        match port {
            ATT_W => {
                if self.att_data_next {
                    self.att[usize::from(self.att_index & 0x1f)] = value;
                } else {
                    self.att_index = value & 0x3f;
                }
                self.att_data_next = !self.att_data_next;
            }
            MIS_W => self.misc = value,
            SEQ_I => self.seq_index = value,
            SEQ_D => self.seq[usize::from(self.seq_index)] = value,
            PEL_IR => {
                self.dac_read_index = value;
                self.dac_sub = 0;
                self.dac_state = 3;
            }
            PEL_IW => {
                self.dac_write_index = value;
                self.dac_sub = 0;
                self.dac_state = 0;
            }
            PEL_D => {
                self.palette[usize::from(self.dac_write_index) * 3 + usize::from(self.dac_sub)] =
                    value;
                self.dac_sub += 1;
                if self.dac_sub == 3 {
                    self.dac_sub = 0;
                    self.dac_write_index = self.dac_write_index.wrapping_add(1);
                }
            }
            GFX_I => self.gfx_index = value,
            GFX_D => self.gfx[usize::from(self.gfx_index)] = value,
            CRT_IC => self.crt_index = value,
            CRT_DC => self.crt[usize::from(self.crt_index)] = value,
            // Feature control (IS1 write) and the rest: ignored.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drivers_blank_sequence() {
        let mut v = Vga::new();
        assert!(v.blanked(), "blanked at reset");
        // Unblank: MISC, reset the flip-flop, index with PAS.
        v.write(MIS_W, 0x01);
        v.read(IS1_RC);
        v.write(ATT_W, 0x20);
        assert!(!v.blanked());
        assert_eq!(v.read(MIS_R), 0x01);
        // Blank again the same way.
        v.read(IS1_RC);
        v.write(ATT_W, 0x00);
        assert!(v.blanked());
    }

    #[test]
    fn flip_flop_alternates_index_and_data() {
        let mut v = Vga::new();
        v.read(IS1_RC);
        v.write(ATT_W, 0x25); // index 5, PAS
        v.write(ATT_W, 0x3c); // data
        assert_eq!(v.read(ATT_R), 0x3c);
        assert!(!v.blanked());
        v.write(ATT_W, 0x01); // index again: blanks
        assert!(v.blanked());
        // Without resetting the flip-flop, a write lands as data.
        v.write(ATT_W, 0x20);
        assert!(v.blanked());
    }

    #[test]
    fn dac_palette_auto_increments() {
        let mut v = Vga::new();
        v.write(PEL_IW, 2);
        for b in [10, 20, 30, 40, 50, 60] {
            v.write(PEL_D, b);
        }
        assert_eq!(&v.palette()[6..12], &[10, 20, 30, 40, 50, 60]);
        assert_eq!(v.read(PEL_IW), 4);
        v.write(PEL_IR, 3);
        assert_eq!(v.read(PEL_IR), 3);
        assert_eq!([v.read(PEL_D), v.read(PEL_D), v.read(PEL_D)], [40, 50, 60]);
    }

    #[test]
    fn status_toggles_and_index_registers_store() {
        let mut v = Vga::new();
        let a = v.read(IS1_RC);
        let b = v.read(IS1_RC);
        assert_ne!(a, b);
        v.write(SEQ_I, 4);
        v.write(SEQ_D, 0x0e);
        v.write(CRT_IC, 0x11);
        v.write(CRT_DC, 0x80);
        v.write(GFX_I, 6);
        v.write(GFX_D, 0x05);
        assert_eq!(
            (v.read(SEQ_D), v.read(CRT_DC), v.read(GFX_D)),
            (0x0e, 0x80, 0x05)
        );
        assert_eq!(v.read(0x3df), 0);
    }
}
