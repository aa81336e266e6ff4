//! The Bochs VBE ("DISPI") register file: what each register reads, what
//! each write does, and how bad values are corrected.
//!
//! The interface has no way to report an error, so — as QEMU's std VGA
//! does — every write that would describe an impossible mode is corrected
//! to the nearest valid one, and the driver sees the corrected value when
//! it reads the register back: an unsupported depth becomes 8 bpp, a width
//! is rounded down to a multiple of 8, a height is cut to what fits in
//! video memory, and offsets that would put the visible area past the end
//! of video memory go back to 0. Corrections apply while the mode is
//! enabled (and once when it is switched on), like the real device.

use crate::regs::dispi::*;

/// The DISPI registers and the scanout geometry they imply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispi {
    regs: [u16; COUNT as usize],
    vram_size: u64,
    /// Bytes per line of the current mode (valid while enabled).
    line_length: u32,
    /// Byte offset of the visible area's first pixel in video memory.
    start: u64,
}

/// What a DISPI write did beyond storing the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispiEffect {
    /// Nothing else.
    None,
    /// The mode was switched on and video memory `0..len` must be cleared
    /// (ENABLE without NOCLEARMEM).
    ClearVram {
        /// Bytes to clear from offset 0.
        len: u64,
    },
}

impl Dispi {
    /// The registers at reset, for `vram_size` bytes of video memory.
    pub fn new(vram_size: u64) -> Self {
        let mut regs = [0u16; COUNT as usize];
        regs[ID as usize] = ID5;
        Self {
            regs,
            vram_size,
            line_length: 0,
            start: 0,
        }
    }

    /// Whether the VBE mode is on.
    pub fn enabled(&self) -> bool {
        self.regs[ENABLE as usize] & ENABLED != 0
    }

    /// Register `index` as stored (no GETCAPS substitution); 0 past the end.
    pub fn reg(&self, index: u16) -> u16 {
        match index {
            VIDEO_MEMORY_64K => self.video_memory_64k(),
            i if i < COUNT => self.regs[i as usize],
            _ => 0,
        }
    }

    fn video_memory_64k(&self) -> u16 {
        (self.vram_size / (64 << 10)).min(u64::from(u16::MAX)) as u16
    }

    /// What the driver reads from register `index`.
    pub fn read(&self, index: u16) -> u16 {
        if self.regs[ENABLE as usize] & GETCAPS != 0 {
            match index {
                XRES => return MAX_XRES,
                YRES => return MAX_YRES,
                BPP => return MAX_BPP,
                _ => {}
            }
        }
        self.reg(index)
    }

    /// The driver writes `value` to register `index`.
    pub fn write(&mut self, index: u16, value: u16) -> DispiEffect {
        match index {
            ID if (ID0..=ID5).contains(&value) => self.regs[ID as usize] = value,
            XRES | YRES | BPP | VIRT_WIDTH | X_OFFSET | Y_OFFSET => {
                self.regs[index as usize] = value;
                self.fixup();
            }
            BANK => {
                let banks = (self.vram_size >> 16).max(1);
                let mask = (banks.next_power_of_two() - 1).min(u64::from(u16::MAX)) as u16;
                self.regs[BANK as usize] = value & mask;
            }
            ENABLE => {
                let switching_on = value & ENABLED != 0 && !self.enabled();
                let mut effect = DispiEffect::None;
                if switching_on {
                    self.regs[VIRT_WIDTH as usize] = 0;
                    self.regs[X_OFFSET as usize] = 0;
                    self.regs[Y_OFFSET as usize] = 0;
                    self.regs[ENABLE as usize] |= ENABLED;
                    self.fixup();
                    if value & NOCLEARMEM == 0 {
                        effect = DispiEffect::ClearVram {
                            len: u64::from(self.regs[YRES as usize]) * u64::from(self.line_length),
                        };
                    }
                }
                self.regs[ENABLE as usize] = value;
                return effect;
            }
            // VIRT_HEIGHT and VIDEO_MEMORY_64K are read-only; other indexes
            // do not exist.
            _ => {}
        }
        DispiEffect::None
    }

    /// Bits per pixel of the current depth register as memory is laid out
    /// (15 bpp takes 16 bits), or `None` for a depth the device refuses.
    pub fn bits_of(bpp: u16) -> Option<u32> {
        match bpp {
            4 | 8 | 16 | 24 | 32 => Some(u32::from(bpp)),
            15 => Some(16),
            _ => None,
        }
    }

    /// Corrects the registers to a mode that fits (only while enabled).
    fn fixup(&mut self) {
        if !self.enabled() {
            return;
        }
        let r = &mut self.regs;
        let bits = match Self::bits_of(r[BPP as usize]) {
            Some(b) => b,
            None => {
                r[BPP as usize] = 8;
                8
            }
        };
        r[XRES as usize] &= !7;
        if r[XRES as usize] == 0 {
            r[XRES as usize] = 8;
        }
        r[XRES as usize] = r[XRES as usize].min(MAX_XRES);
        r[VIRT_WIDTH as usize] &= !7;
        r[VIRT_WIDTH as usize] = r[VIRT_WIDTH as usize].min(MAX_XRES);
        if r[VIRT_WIDTH as usize] < r[XRES as usize] {
            r[VIRT_WIDTH as usize] = r[XRES as usize];
        }
        let line = u32::from(r[VIRT_WIDTH as usize]) * bits / 8;
        let max_y = (self.vram_size / u64::from(line.max(1))).min(u64::from(u16::MAX)) as u16;
        if r[YRES as usize] == 0 {
            r[YRES as usize] = 1;
        }
        r[YRES as usize] = r[YRES as usize].min(MAX_YRES).min(max_y);
        r[X_OFFSET as usize] = r[X_OFFSET as usize].min(MAX_XRES);
        r[Y_OFFSET as usize] = r[Y_OFFSET as usize].min(MAX_YRES);
        let visible = u64::from(r[YRES as usize]) * u64::from(line);
        let x_bytes = |r: &[u16]| u64::from(r[X_OFFSET as usize]) * u64::from(bits) / 8;
        let mut offset = x_bytes(r) + u64::from(r[Y_OFFSET as usize]) * u64::from(line);
        if offset + visible > self.vram_size {
            r[Y_OFFSET as usize] = 0;
            offset = x_bytes(r);
            if offset + visible > self.vram_size {
                r[X_OFFSET as usize] = 0;
                offset = 0;
            }
        }
        r[VIRT_HEIGHT as usize] = max_y;
        self.line_length = line;
        self.start = offset;
    }

    /// Bytes per line of the enabled mode.
    pub fn line_length(&self) -> u32 {
        self.line_length
    }

    /// Byte offset in video memory of the visible area's first pixel.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Video memory size this register file was built for.
    pub fn vram_size(&self) -> u64 {
        self.vram_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VRAM: u64 = 16 << 20;

    /// The driver's mode-set sequence (bochs_hw_setmode).
    fn setmode(d: &mut Dispi, x: u16, y: u16, bpp: u16) -> DispiEffect {
        d.write(ENABLE, 0);
        d.write(BPP, bpp);
        d.write(XRES, x);
        d.write(YRES, y);
        d.write(BANK, 0);
        d.write(VIRT_WIDTH, x);
        d.write(VIRT_HEIGHT, 1234);
        d.write(X_OFFSET, 0);
        d.write(Y_OFFSET, 0);
        d.write(ENABLE, ENABLED | LFB_ENABLED)
    }

    #[test]
    fn identity_and_memory() {
        let mut d = Dispi::new(VRAM);
        assert_eq!(d.read(ID), 0xb0c5);
        assert_eq!(d.read(VIDEO_MEMORY_64K), 256);
        d.write(ID, 0xb0c2);
        assert_eq!(d.read(ID), 0xb0c2);
        d.write(ID, 0x1234);
        assert_eq!(d.read(ID), 0xb0c2, "a bad ID is ignored");
        d.write(VIDEO_MEMORY_64K, 1);
        assert_eq!(d.read(VIDEO_MEMORY_64K), 256);
        assert_eq!(d.read(0x20), 0);
    }

    #[test]
    fn a_good_mode_is_kept_and_clears_the_visible_area() {
        let mut d = Dispi::new(VRAM);
        let e = setmode(&mut d, 1024, 768, 32);
        assert_eq!(e, DispiEffect::ClearVram { len: 768 * 4096 });
        assert_eq!((d.read(XRES), d.read(YRES), d.read(BPP)), (1024, 768, 32));
        assert_eq!(d.line_length(), 4096);
        // VIRT_HEIGHT is what fits, not what the driver wrote.
        assert_eq!(d.read(VIRT_HEIGHT), 4096);
        assert!(d.enabled());
        // NOCLEARMEM.
        d.write(ENABLE, 0);
        assert_eq!(
            d.write(ENABLE, ENABLED | LFB_ENABLED | NOCLEARMEM),
            DispiEffect::None
        );
    }

    #[test]
    fn bad_depth_becomes_8bpp_and_15_takes_16_bits() {
        let mut d = Dispi::new(VRAM);
        setmode(&mut d, 640, 480, 7);
        assert_eq!(d.read(BPP), 8);
        assert_eq!(d.line_length(), 640);
        setmode(&mut d, 640, 480, 15);
        assert_eq!(d.read(BPP), 15);
        assert_eq!(d.line_length(), 1280);
    }

    #[test]
    fn oversized_modes_are_cut_to_video_memory() {
        let mut d = Dispi::new(VRAM);
        // 8192 x 4096 x 32 bpp would need 128 MiB: the height is cut.
        setmode(&mut d, 8192, 4096, 32);
        assert_eq!(d.read(XRES), 8192);
        assert_eq!(d.read(YRES), 512);
        assert_eq!(d.read(VIRT_HEIGHT), 512);
        // Widths round down to a multiple of 8, never to 0, and stop at
        // the maximum.
        setmode(&mut d, 1023, 10, 32);
        assert_eq!(d.read(XRES), 1016);
        setmode(&mut d, 3, 10, 32);
        assert_eq!(d.read(XRES), 8);
        setmode(&mut d, 40000, 10, 8);
        assert_eq!(d.read(XRES), MAX_XRES);
        setmode(&mut d, 640, 0, 8);
        assert_eq!(d.read(YRES), 1);
    }

    #[test]
    fn page_flips_and_offsets_past_the_end() {
        let mut d = Dispi::new(VRAM);
        setmode(&mut d, 1024, 768, 32);
        d.write(Y_OFFSET, 768);
        assert_eq!(d.start(), 768 * 4096);
        d.write(X_OFFSET, 8);
        assert_eq!(d.start(), 768 * 4096 + 32);
        // The visible area would run past video memory: Y goes back to 0.
        d.write(Y_OFFSET, 4000);
        assert_eq!(d.read(Y_OFFSET), 0);
        assert_eq!(d.start(), 32);
        // A wider virtual screen changes the pitch.
        d.write(X_OFFSET, 0);
        d.write(VIRT_WIDTH, 2048);
        assert_eq!(d.line_length(), 8192);
        assert_eq!(d.read(VIRT_HEIGHT), 2048);
        // Narrower than the mode: raised to XRES.
        d.write(VIRT_WIDTH, 100);
        assert_eq!(d.read(VIRT_WIDTH), 1024);
    }

    #[test]
    fn getcaps_reads_the_maxima() {
        let mut d = Dispi::new(VRAM);
        d.write(ENABLE, GETCAPS);
        assert_eq!(
            (d.read(XRES), d.read(YRES), d.read(BPP)),
            (16000, 12000, 32)
        );
        d.write(ENABLE, 0);
        assert_eq!(d.read(XRES), 0);
    }

    #[test]
    fn corrections_wait_for_enable() {
        let mut d = Dispi::new(VRAM);
        d.write(BPP, 9);
        assert_eq!(d.read(BPP), 9, "stored as written while disabled");
        d.write(XRES, 640);
        d.write(YRES, 480);
        d.write(ENABLE, ENABLED);
        assert_eq!(d.read(BPP), 8);
        d.write(BANK, 0xffff);
        assert_eq!(d.read(BANK), 0xff);
    }
}
