//! The ProtoPCIem device model: the [`Device`] implementation.
//!
//! # Command life cycle
//!
//! The driver programs DATA / DMA_* and then writes a command number to
//! CMD (watched in watch mode; in trap mode, the default, every BAR0
//! store reaches the model and only CONTROL and CMD do anything). The
//! device, handling that write:
//!
//! 1. sets STATUS = BUSY;
//! 2. samples DATA / DMA_SRC / DMA_DST / DMA_LEN from BAR0 (so the driver
//!    must not change them until DONE) and runs the command;
//! 3. copies the framebuffer's dirty rectangle into BAR2;
//! 4. writes RESULT_LO/HI, ERROR_CODE, CMD = 0 and, last, STATUS = DONE
//!    (| ERROR), so a driver that polls STATUS sees the rest already set;
//! 5. raises MSI vector 0.
//!
//! Events are handled one at a time, so a CMD written while a command is
//! BUSY is not lost or interleaved: it runs after the current one, with the
//! registers as they are then. A CMD write of 0 is "no command" and is
//! ignored (no status change, no interrupt). Commands require
//! CONTROL.ENABLE; without it they end with DONE | ERROR, ERROR_CODE =
//! NOT_ENABLED.
//!
//! Writing CONTROL with RESET set clears every register but CONTROL,
//! blacks out the framebuffer (and BAR2), and clears RESET in CONTROL
//! again; ENABLE takes the value written. A function-level reset does the
//! same and also clears CONTROL. Neither raises an interrupt.

use pciem_core::{
    AccessMap, BuildError, ConfigSpace, Device, Host, HostError, Irq, MmioWrite, ResetKind, Watch,
};

use crate::cmdbuf::{self, ParseError};
use crate::config::Mode;
use crate::framebuffer::{Framebuffer, FRAME_BYTES};
use crate::regs::{self, Command, ErrorCode, MAX_DMA_LEN, REG_BAR};
use crate::transform;

/// The registers ProtoPCIem watches: CONTROL and CMD.
pub const WATCHES: [Watch; 2] = [
    Watch {
        bar: REG_BAR,
        offset: regs::CONTROL,
        width: 4,
    },
    Watch {
        bar: REG_BAR,
        offset: regs::CMD,
        width: 4,
    },
];

/// Counters the model keeps about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Commands completed (successfully or not), ignoring CMD = 0 writes.
    pub commands: u64,
    /// Commands completed, by command number 1..=8 (index 0 counts
    /// unknown numbers).
    pub by_command: [u64; 9],
    /// Commands that ended with STATUS.ERROR.
    pub errors: u64,
    /// Completion interrupts the host accepted.
    pub interrupts: u64,
    /// Completion interrupts the host refused (e.g. MSI not enabled).
    pub interrupt_failures: u64,
    /// Resets (CONTROL.RESET or function-level).
    pub resets: u64,
    /// Bytes copied into BAR2 by the framebuffer mirror.
    pub bar2_bytes: u64,
}

/// Why a command failed: the ERROR_CODE and the RESULT detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Failure {
    code: ErrorCode,
    detail: u64,
}

impl Failure {
    const fn new(code: ErrorCode, detail: u64) -> Self {
        Self { code, detail }
    }

    /// A host error met while doing DMA or P2P on `addr`.
    fn from_host(e: HostError, addr: u64) -> Self {
        match e {
            // Refused by the host's DMA check (outside the driver's
            // mappings) is the same fault to the driver as unmapped memory.
            HostError::Unmapped { addr, .. }
            | HostError::Misaligned { addr, .. }
            | HostError::DmaRefused { addr, .. } => Self::new(ErrorCode::DmaFault, addr),
            HostError::TooLong { len, .. } => Self::new(ErrorCode::TooLong, len),
            HostError::P2pDenied { addr, .. } => Self::new(ErrorCode::P2pDenied, addr),
            HostError::Empty => Self::new(ErrorCode::ZeroLength, 0),
            _ => Self::new(ErrorCode::HostFault, addr),
        }
    }

    fn from_parse(e: ParseError) -> Self {
        let code = match e {
            ParseError::Truncated { .. } => ErrorCode::CmdbufTruncated,
            ParseError::BadLength { .. } => ErrorCode::CmdbufBadLength,
            ParseError::UnknownOpcode { .. } => ErrorCode::CmdbufUnknownOpcode,
        };
        Self::new(code, e.offset() as u64)
    }
}

/// The ProtoPCIem device model.
#[derive(Debug, Default)]
pub struct ProtoPciem {
    mode: Mode,
    fb: Framebuffer,
    enabled: bool,
    stats: Stats,
    /// Reused DMA buffer, so a command does not allocate 4 MiB each time.
    scratch: Vec<u8>,
    /// Commands written to CMD so far (the one being run included).
    received: u64,
    /// Fault injection: the command with this number (1-based) is never
    /// run; the card is surprise-removed while it is in flight.
    surprise_at: Option<u64>,
    /// Whether the card was surprise-removed.
    removed: bool,
}

impl ProtoPciem {
    /// A device in its reset state, BAR0 in trap mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// A device in its reset state, BAR0 in `mode`.
    pub fn with_mode(mode: Mode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// Fault injection: when the driver writes its `n`-th command (counting
    /// from 1) to CMD, the card marks itself busy and is then
    /// surprise-removed ([`Host::surprise_remove`]) instead of running it,
    /// so the driver meets a card that vanished mid-command.
    pub fn surprise_remove_at_command(mut self, n: u64) -> Self {
        self.surprise_at = Some(n);
        self
    }

    /// Whether the card was surprise-removed (see
    /// [`ProtoPciem::surprise_remove_at_command`]).
    pub fn removed(&self) -> bool {
        self.removed
    }

    /// How BAR0 is served.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The framebuffer as the model holds it (BAR2 is its mirror).
    pub fn framebuffer(&self) -> &Framebuffer {
        &self.fb
    }

    /// The model's counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn reg(host: &dyn Host, off: u64) -> Result<u32, Failure> {
        host.read_u32(REG_BAR, off)
            .map_err(|e| Failure::from_host(e, 0))
    }

    fn reg64(host: &dyn Host, lo: u64, hi: u64) -> Result<u64, Failure> {
        Ok(u64::from(Self::reg(host, lo)?) | (u64::from(Self::reg(host, hi)?) << 32))
    }

    /// DMA_LEN, checked to be non-zero and at most [`MAX_DMA_LEN`].
    fn dma_len(host: &dyn Host) -> Result<usize, Failure> {
        let len = Self::reg(host, regs::DMA_LEN)?;
        if len == 0 {
            return Err(Failure::new(ErrorCode::ZeroLength, 0));
        }
        if len > MAX_DMA_LEN {
            return Err(Failure::new(ErrorCode::TooLong, u64::from(len)));
        }
        Ok(len as usize)
    }

    /// Fill the scratch buffer with `len` bytes read from host memory.
    fn dma_in(&mut self, host: &dyn Host, addr: u64, len: usize) -> Result<(), Failure> {
        self.scratch.clear();
        self.scratch.resize(len, 0);
        host.dma_read(addr, &mut self.scratch)
            .map_err(|e| Failure::from_host(e, addr))
    }

    fn execute(&mut self, host: &dyn Host, raw: u32) -> Result<u64, Failure> {
        let cmd = Command::from_raw(raw)
            .ok_or(Failure::new(ErrorCode::UnknownCommand, u64::from(raw)))?;
        if !self.enabled {
            return Err(Failure::new(ErrorCode::NotEnabled, 0));
        }
        let data = u64::from(Self::reg(host, regs::DATA)?);
        match cmd {
            Command::Add => Ok(data + data),
            Command::Multiply => Ok(data * data),
            Command::Xor => Ok(data ^ 0xFFFF_FFFF),
            Command::ProcessBuffer => {
                let len = Self::dma_len(host)?;
                let src = Self::reg64(host, regs::DMA_SRC_LO, regs::DMA_SRC_HI)?;
                let dst = Self::reg64(host, regs::DMA_DST_LO, regs::DMA_DST_HI)?;
                self.dma_in(host, src, len)?;
                let sum = transform::process_in_place(&mut self.scratch);
                host.dma_write(dst, &self.scratch)
                    .map_err(|e| Failure::from_host(e, dst))?;
                Ok(sum)
            }
            Command::ExecuteCmdbuf => {
                let len = Self::dma_len(host)?;
                let src = Self::reg64(host, regs::DMA_SRC_LO, regs::DMA_SRC_HI)?;
                self.dma_in(host, src, len)?;
                let buf = std::mem::take(&mut self.scratch);
                let result = cmdbuf::parse(&buf).map(|records| {
                    for r in &records {
                        r.apply(&mut self.fb);
                    }
                    records.len() as u64
                });
                self.scratch = buf;
                result.map_err(Failure::from_parse)
            }
            Command::DmaFrame => {
                let len = Self::reg(host, regs::DMA_LEN)?;
                if len as usize != FRAME_BYTES {
                    return Err(Failure::new(ErrorCode::FrameSize, u64::from(len)));
                }
                let src = Self::reg64(host, regs::DMA_SRC_LO, regs::DMA_SRC_HI)?;
                self.dma_in(host, src, FRAME_BYTES)?;
                // The length was checked above, so this cannot fail.
                let _loaded = self.fb.load_frame(&self.scratch);
                Ok(FRAME_BYTES as u64)
            }
            Command::P2pRead => {
                let len = Self::dma_len(host)?;
                let peer = Self::reg64(host, regs::DMA_SRC_LO, regs::DMA_SRC_HI)?;
                let dst = Self::reg64(host, regs::DMA_DST_LO, regs::DMA_DST_HI)?;
                self.scratch.clear();
                self.scratch.resize(len, 0);
                host.p2p_read(peer, &mut self.scratch)
                    .map_err(|e| Failure::from_host(e, peer))?;
                host.dma_write(dst, &self.scratch)
                    .map_err(|e| Failure::from_host(e, dst))?;
                Ok(len as u64)
            }
            Command::P2pWrite => {
                let len = Self::dma_len(host)?;
                let src = Self::reg64(host, regs::DMA_SRC_LO, regs::DMA_SRC_HI)?;
                let peer = Self::reg64(host, regs::DMA_DST_LO, regs::DMA_DST_HI)?;
                self.dma_in(host, src, len)?;
                host.p2p_write(peer, &self.scratch)
                    .map_err(|e| Failure::from_host(e, peer))?;
                Ok(len as u64)
            }
        }
    }

    fn run_command(&mut self, host: &dyn Host, value: u64) -> Result<(), HostError> {
        if value == 0 {
            return Ok(());
        }
        host.write_u32(REG_BAR, regs::STATUS, regs::STATUS_BUSY)?;
        self.received += 1;
        if self.surprise_at == Some(self.received) {
            self.removed = true;
            return host.surprise_remove();
        }
        let raw = u32::try_from(value).unwrap_or(u32::MAX);
        let outcome = self.execute(host, raw);
        self.stats.bar2_bytes += self.fb.flush(host)?;

        let (result, code) = match outcome {
            Ok(r) => (r, ErrorCode::None),
            Err(f) => (f.detail, f.code),
        };
        self.stats.commands += 1;
        let slot = Command::from_raw(raw).map_or(0, |c| c as usize);
        self.stats.by_command[slot] += 1;
        let mut status = regs::STATUS_DONE;
        if code != ErrorCode::None {
            self.stats.errors += 1;
            status |= regs::STATUS_ERROR;
        }
        host.write_u32(REG_BAR, regs::RESULT_LO, result as u32)?;
        host.write_u32(REG_BAR, regs::RESULT_HI, (result >> 32) as u32)?;
        host.write_u32(REG_BAR, regs::ERROR_CODE, code.raw())?;
        host.write_u32(REG_BAR, regs::CMD, 0)?;
        host.write_u32(REG_BAR, regs::STATUS, status)?;
        match host.raise_irq(Irq::Msi { vector: 0 }) {
            Ok(()) => {
                self.stats.interrupts += 1;
                Ok(())
            }
            Err(e) => {
                self.stats.interrupt_failures += 1;
                Err(e)
            }
        }
    }

    /// Clear every register but CONTROL and black out the framebuffer.
    fn clear_state(&mut self, host: &dyn Host) -> Result<(), HostError> {
        self.stats.resets += 1;
        for off in (regs::STATUS..=regs::ERROR_CODE).step_by(4) {
            host.write_u32(REG_BAR, off, 0)?;
        }
        self.fb.clear(Default::default());
        self.stats.bar2_bytes += self.fb.flush(host)?;
        Ok(())
    }
}

impl Device for ProtoPciem {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        crate::config::config_space()
    }

    fn watches(&self) -> &[Watch] {
        match self.mode {
            Mode::Watch => &WATCHES,
            // Every store to a trapped BAR is delivered.
            Mode::Trap => &[],
        }
    }

    fn access_map(&self) -> Result<AccessMap, BuildError> {
        crate::config::access_map(self.mode)
    }

    fn start(&mut self, host: &dyn Host) -> Result<(), HostError> {
        for off in (regs::CONTROL..=regs::ERROR_CODE).step_by(4) {
            host.write_u32(REG_BAR, off, 0)?;
        }
        self.stats.bar2_bytes += self.fb.flush(host)?;
        Ok(())
    }

    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        if w.bar != REG_BAR {
            return Ok(());
        }
        // Watch mode delivers CONTROL and CMD whole; in trap mode the event
        // is the store itself, which may cover part of a register or two
        // registers: each register it touches gets the value the store
        // left in it (the bytes it did not write from BAR memory), in
        // register order, as the watchpoints would report them.
        for reg in [regs::CONTROL, regs::CMD] {
            if w.apply_to(reg, 4, u64::MAX).is_none() {
                continue;
            }
            let current = u64::from(host.read_u32(REG_BAR, reg)?);
            let Some(value) = w.apply_to(reg, 4, current) else {
                continue;
            };
            match reg {
                regs::CMD => self.run_command(host, value)?,
                _ => {
                    let v = value as u32;
                    self.enabled = v & regs::CONTROL_ENABLE != 0;
                    if v & regs::CONTROL_RESET != 0 {
                        self.clear_state(host)?;
                        host.write_u32(REG_BAR, regs::CONTROL, v & !regs::CONTROL_RESET)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn reset(&mut self, host: &dyn Host, _kind: ResetKind) -> Result<(), HostError> {
        self.enabled = false;
        host.write_u32(REG_BAR, regs::CONTROL, 0)?;
        self.clear_state(host)
    }
}

#[cfg(test)]
mod tests {
    //! Logic tests on the mock backend, stepping (the model handles each
    //! register write before the next access); the full driver-style tests
    //! run in `tests/`.
    use super::*;
    use crate::framebuffer::{Rgb, STRIDE};
    use crate::mock::MockBus;
    use crate::regs::*;
    use pciem_backend_mock::Harness;

    /// What BAR2 holds where nothing was mirrored (never a pixel value the
    /// tests draw).
    const UNWRITTEN: u8 = 0xAA;

    struct Rig {
        bus: MockBus,
        dma: u64,
    }

    impl Rig {
        fn new() -> Self {
            Self::with(MockBus::stepping().unwrap())
        }
        fn with(mut bus: MockBus) -> Self {
            let dma = bus.harness().dma_alloc(8 << 20).unwrap();
            let mut rig = Rig { bus, dma };
            rig.write(CONTROL, CONTROL_ENABLE);
            rig
        }
        fn h(&mut self) -> &mut Harness<ProtoPciem> {
            self.bus.harness()
        }
        fn dev(&mut self) -> &ProtoPciem {
            self.bus.harness().device().unwrap()
        }
        fn write(&mut self, off: u64, v: u32) {
            self.h().write32(REG_BAR, off, v).unwrap();
        }
        fn read(&mut self, off: u64) -> u32 {
            self.h().read32(REG_BAR, off).unwrap()
        }
        fn bar2(&mut self) -> Vec<u8> {
            let mut buf = vec![0; FRAME_BYTES];
            self.h().bar_read(FB_BAR, 0, &mut buf).unwrap();
            buf
        }
        /// Fills BAR2 with [`UNWRITTEN`], so what the model mirrors next shows.
        fn mark_bar2(&mut self) {
            self.h()
                .bar_write(FB_BAR, 0, &vec![UNWRITTEN; FRAME_BYTES])
                .unwrap();
        }
        fn irqs(&mut self) -> usize {
            self.h().take_irqs().len()
        }
        fn result(&mut self) -> u64 {
            u64::from(self.read(RESULT_LO)) | (u64::from(self.read(RESULT_HI)) << 32)
        }
        fn dma_cmd(&mut self, cmd: Command, src: u64, dst: u64, len: u32) -> (u32, ErrorCode) {
            self.write(DMA_SRC_LO, src as u32);
            self.write(DMA_SRC_HI, (src >> 32) as u32);
            self.write(DMA_DST_LO, dst as u32);
            self.write(DMA_DST_HI, (dst >> 32) as u32);
            self.write(DMA_LEN, len);
            self.cmd(cmd as u32)
        }
        fn cmd(&mut self, raw: u32) -> (u32, ErrorCode) {
            self.write(CMD, raw);
            assert_eq!(self.read(CMD), 0);
            let status = self.read(STATUS);
            let code = self.read(ERROR_CODE);
            (status, ErrorCode::from_raw(code).unwrap())
        }
    }

    const OK: u32 = STATUS_DONE;
    const BAD: u32 = STATUS_DONE | STATUS_ERROR;

    #[test]
    fn start_mirrors_a_black_frame() {
        let mut rig = Rig::new();
        rig.mark_bar2();
        // A second model started on the same host mirrors its frame over
        // the marked BAR: every byte is written, and black.
        let mut dev = ProtoPciem::new();
        dev.start(rig.h().host()).unwrap();
        assert!(rig.bar2().iter().all(|&b| b == 0));
    }

    #[test]
    fn surprise_removal_takes_the_chosen_command() {
        let bus = Harness::new(ProtoPciem::new().surprise_remove_at_command(2)).unwrap();
        let mut rig = Rig::with(MockBus::from_harness(bus).unwrap());
        rig.write(CMD, Command::Add as u32);
        assert_eq!(rig.read(STATUS), OK);
        assert!(!rig.dev().removed());
        rig.write(CMD, Command::Add as u32);
        rig.h().step().unwrap();
        assert!(rig.dev().removed());
        assert!(rig.h().host().is_removed(), "the link went down");
        assert_eq!(
            rig.dev().stats().commands,
            1,
            "the second command never ran"
        );
    }

    #[test]
    fn compute_commands() {
        let mut rig = Rig::new();
        rig.write(DATA, 0xFFFF_FFFF);
        assert_eq!(rig.cmd(Command::Add as u32), (OK, ErrorCode::None));
        assert_eq!(rig.result(), 0x1_FFFF_FFFE);
        assert_eq!(rig.cmd(Command::Multiply as u32).0, OK);
        assert_eq!(rig.result(), 0xFFFF_FFFE_0000_0001);
        rig.write(DATA, 0x1234_5678);
        assert_eq!(rig.cmd(Command::Xor as u32).0, OK);
        assert_eq!(rig.result(), 0xEDCB_A987);
        assert_eq!(rig.irqs(), 3);
        assert_eq!(rig.dev().stats().commands, 3);
    }

    #[test]
    fn disabled_device_rejects_commands_then_recovers() {
        let mut rig = Rig::new();
        rig.write(CONTROL, 0);
        assert_eq!(rig.cmd(Command::Add as u32), (BAD, ErrorCode::NotEnabled));
        rig.write(CONTROL, CONTROL_ENABLE);
        rig.write(DATA, 2);
        assert_eq!(rig.cmd(Command::Add as u32), (OK, ErrorCode::None));
        assert_eq!(rig.result(), 4);
    }

    #[test]
    fn cmd_zero_is_ignored() {
        let mut rig = Rig::new();
        rig.write(CMD, 0);
        assert_eq!(rig.read(STATUS), 0);
        assert_eq!(rig.irqs(), 0);
    }

    #[test]
    fn reset_clears_registers_and_framebuffer() {
        let mut rig = Rig::new();
        let buf = crate::cmdbuf::CmdBufBuilder::new()
            .clear(Rgb::new(1, 2, 3))
            .build();
        let dma = rig.dma;
        rig.h().dma_write(dma, &buf).unwrap();
        assert_eq!(
            rig.dma_cmd(Command::ExecuteCmdbuf, dma, 0, buf.len() as u32)
                .0,
            OK
        );
        assert_eq!(rig.bar2()[STRIDE * 479], 1);
        rig.mark_bar2();
        rig.write(CONTROL, CONTROL_ENABLE | CONTROL_RESET);
        assert_eq!(rig.read(CONTROL), CONTROL_ENABLE);
        for off in [STATUS, RESULT_LO, DMA_LEN, DMA_SRC_LO, ERROR_CODE] {
            assert_eq!(rig.read(off), 0, "register {off:#x}");
        }
        assert!(rig.bar2().iter().all(|&b| b == 0), "mirrored black");
        assert_eq!(rig.dev().framebuffer().pixel(0, 0), Some(Rgb::default()));
        rig.write(DATA, 3);
        assert_eq!(rig.cmd(Command::Add as u32).0, OK);
    }

    #[test]
    fn mirror_writes_only_dirty_rows() {
        let mut rig = Rig::new();
        rig.mark_bar2();
        let buf = crate::cmdbuf::CmdBufBuilder::new()
            .line(10, 10, 19, 11, Rgb::new(9, 9, 9))
            .build();
        let dma = rig.dma;
        rig.h().dma_write(dma, &buf).unwrap();
        rig.dma_cmd(Command::ExecuteCmdbuf, dma, 0, buf.len() as u32);
        // A 10×2 box: 60 bytes, not a frame.
        let written = |b: &[u8]| b.iter().filter(|&&x| x != UNWRITTEN).count();
        assert_eq!(written(&rig.bar2()), 60);
        assert_eq!(rig.bar2()[10 * STRIDE + 30], 9);
        // The compute commands touch no pixels and write nothing.
        rig.cmd(Command::Add as u32);
        assert_eq!(written(&rig.bar2()), 60);
    }

    #[test]
    fn p2p_refusal_is_an_error_not_a_failure() {
        let mut rig = Rig::new();
        let dma = rig.dma;
        assert_eq!(
            rig.dma_cmd(Command::P2pRead, 0xdead_0000, dma, 16),
            (BAD, ErrorCode::P2pDenied)
        );
        assert_eq!(rig.result(), 0xdead_0000);
    }
}
