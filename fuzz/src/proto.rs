//! `protopciem_cmdbuf`: arbitrary command buffers, commands and register
//! writes to the ProtoPCIem model on the mock backend (stepping mode, so
//! every write is handled before the next), with the programming model's
//! promises checked after every step and the card shown to work at the end.
//!
//! Checked after every step:
//! - the model's handlers return no error and every completion interrupt
//!   is accepted; a CMD write of a non-zero value gives exactly one MSI,
//!   STATUS = DONE (| ERROR, with a known non-zero ERROR_CODE exactly
//!   when ERROR is set) and CMD = 0; anything else gives no interrupt;
//! - a command buffer the parser accepts executes every record
//!   (RESULT = record count) and BAR2 then shows exactly the previous frame
//!   with those records drawn on it (a software rendering); one it rejects
//!   fails with the parser's error code and offset and draws nothing;
//! - a write with CONTROL.RESET set leaves RESET clear.
//!
//! Input format (see [`crate::wire`]): start u8 (bit 0: reset and enable
//! first), then until the end, step kind u8 and its fields:
//!
//! ```text
//! 0 command buffer  length u16 (mod 4097), bytes
//! 1 register write  offset u8 (mod 0x48), size u8 (1, 2, 4, 8), value u64
//! 2 command         number u8 (< 0xF0: mod 10, else a u32 follows),
//!                   source and destination addresses, length u8
//!                   (0xFF: a u32 follows, 0xFE: a frame, else ×16)
//! 3 upload          length u16 (mod 8193), bytes: a DMA buffer for later
//! 4 control         value u8 (ENABLE and RESET bits)
//! 5 frame           fill u8: DMA_FRAME of a whole frame
//! address:          kind u8 (0 uploaded buffer, 1 peer window, 2 raw
//!                   u64 follows, 3 nothing), index u8, offset u16
//! ```

use pciem_backend_mock::{Harness, IrqKind};
use protopciem::cmdbuf::{self, CmdBufBuilder, ParseError};
use protopciem::framebuffer::{Rgb, FRAME_BYTES};
use protopciem::mock::{MockBus, P2P_BASE};
use protopciem::regs::{self, Command, ErrorCode, FB_BAR, REG_BAR};
use protopciem::ProtoPciem;

use crate::wire::{Reader, Writer};

/// Run one input; panics on any broken promise.
pub fn run(data: &[u8]) {
    run_with_stats(data);
}

/// [`run`], returning the model's counters at the end (for checking seeds).
pub fn run_with_stats(data: &[u8]) -> protopciem::Stats {
    let mut r = Reader::new(data);
    let mut card = Card::new();
    if r.u8() & 1 != 0 {
        card.control(regs::CONTROL_ENABLE | regs::CONTROL_RESET);
    }
    let mut steps = 0;
    while !r.is_empty() && steps < 32 {
        steps += 1;
        match r.u8() % 6 {
            0 => {
                let len = r.u16() as usize % 4097;
                let bytes = r.bytes(len).to_vec();
                card.cmdbuf(&bytes);
            }
            1 => {
                let offset = (r.u8() % 0x48) as u64;
                let size = [1u8, 2, 4, 8][r.u8() as usize % 4];
                let value = r.u64();
                card.reg_write(offset, size, value);
            }
            2 => {
                let n = r.u8();
                let raw = if n < 0xF0 { (n % 10) as u32 } else { r.u32() };
                let src = card.address(&mut r);
                let dst = card.address(&mut r);
                let len = match r.u8() {
                    0xFF => r.u32(),
                    0xFE => FRAME_BYTES as u32,
                    n => n as u32 * 16,
                };
                card.set_dma(src, dst, len);
                card.command(raw);
            }
            3 => {
                let len = r.u16() as usize % 8193;
                let bytes = r.bytes(len).to_vec();
                card.upload(&bytes);
            }
            4 => {
                let v = r.u8() as u32 & (regs::CONTROL_ENABLE | regs::CONTROL_RESET);
                card.control(v);
            }
            _ => {
                let fill = r.u8();
                let frame = vec![fill; FRAME_BYTES];
                let src = card.upload(&frame);
                card.set_dma(src, 0, FRAME_BYTES as u32);
                card.command(Command::DmaFrame as u32);
            }
        }
    }
    card.still_usable()
}

struct Card {
    bus: MockBus,
    /// DMA buffers uploaded so far: (bus address, length).
    buffers: Vec<(u64, usize)>,
    /// MSI count seen so far.
    irqs: u64,
}

/// What a completed command left.
#[derive(Debug, PartialEq, Eq)]
struct Done {
    status: u32,
    result: u64,
    error: u32,
}

impl Card {
    fn new() -> Self {
        let bus = MockBus::stepping().expect("ProtoPCIem plugs into the mock");
        Card {
            bus,
            buffers: Vec::new(),
            irqs: 0,
        }
    }

    fn h(&mut self) -> &mut Harness<ProtoPciem> {
        self.bus.harness()
    }

    fn reg(&mut self, off: u64) -> u32 {
        self.h().read32(REG_BAR, off).expect("register read")
    }

    fn upload(&mut self, bytes: &[u8]) -> u64 {
        if bytes.is_empty() {
            return 0;
        }
        let addr = self.h().dma_alloc(bytes.len()).expect("DMA allocation");
        self.h().dma_write(addr, bytes).expect("DMA write");
        self.buffers.push((addr, bytes.len()));
        addr
    }

    fn address(&mut self, r: &mut Reader<'_>) -> u64 {
        let kind = r.u8() % 4;
        let index = r.u8() as usize;
        let offset = r.u16() as u64;
        match kind {
            0 if !self.buffers.is_empty() => {
                let (addr, _) = self.buffers[index % self.buffers.len()];
                addr + offset
            }
            1 => P2P_BASE + offset,
            2 => r.u64(),
            _ => 0,
        }
    }

    fn set_dma(&mut self, src: u64, dst: u64, len: u32) {
        for (off, v) in [
            (regs::DMA_SRC_LO, src as u32),
            (regs::DMA_SRC_HI, (src >> 32) as u32),
            (regs::DMA_DST_LO, dst as u32),
            (regs::DMA_DST_HI, (dst >> 32) as u32),
            (regs::DMA_LEN, len),
        ] {
            self.reg_write(off, 4, v as u64);
        }
    }

    fn control(&mut self, v: u32) {
        self.reg_write(regs::CONTROL, 4, v as u64);
    }

    /// Write CMD = `raw` and return what the command left (if it ran).
    fn command(&mut self, raw: u32) -> Option<Done> {
        self.reg_write(regs::CMD, 4, raw as u64)
    }

    /// A register write of `width` bytes, with the checks of what it must
    /// and must not have caused; returns the completion if it ran a
    /// command.
    fn reg_write(&mut self, offset: u64, width: u8, value: u64) -> Option<Done> {
        let end = offset + u64::from(width);
        let bytes = value.to_le_bytes();
        // The value each watched register holds after the write.
        let after = |card: &mut Card, reg: u64| -> Option<u32> {
            if !(reg < end && offset < reg + 4) {
                return None;
            }
            let mut v = card.reg(reg).to_le_bytes();
            for (i, b) in v.iter_mut().enumerate() {
                let at = reg + i as u64;
                if at >= offset && at < end {
                    *b = bytes[(at - offset) as usize];
                }
            }
            Some(u32::from_le_bytes(v))
        };
        let control = after(self, regs::CONTROL);
        let cmd = after(self, regs::CMD);
        self.h()
            .mmio_write(REG_BAR, offset, width, value)
            .expect("register write inside BAR0");
        let fired = cmd.is_some_and(|c| c != 0);
        let irqs = self.h().irq_count(IrqKind::Msi, 0);
        assert_eq!(
            irqs - self.irqs,
            fired as u64,
            "CMD {cmd:?}: {} interrupts",
            irqs - self.irqs
        );
        self.irqs = irqs;
        self.healthy();
        if control.is_some_and(|c| c & regs::CONTROL_RESET != 0) {
            let now = self.reg(regs::CONTROL);
            assert_eq!(now & regs::CONTROL_RESET, 0, "RESET did not self-clear");
        }
        if !fired {
            return None;
        }
        let raw = cmd.unwrap_or(0);
        let done = Done {
            status: self.reg(regs::STATUS),
            result: u64::from(self.reg(regs::RESULT_LO))
                | u64::from(self.reg(regs::RESULT_HI)) << 32,
            error: self.reg(regs::ERROR_CODE),
        };
        assert_eq!(self.reg(regs::CMD), 0, "CMD not cleared after completion");
        let failed = done.status & regs::STATUS_ERROR != 0;
        assert!(
            done.status == regs::STATUS_DONE
                || done.status == regs::STATUS_DONE | regs::STATUS_ERROR,
            "STATUS after completion: {done:?}"
        );
        assert_eq!(
            failed,
            done.error != 0,
            "ERROR bit and ERROR_CODE disagree: {done:?}"
        );
        assert!(
            ErrorCode::from_raw(done.error).is_some(),
            "unknown code {done:?}"
        );
        if Command::from_raw(raw).is_none() {
            assert_eq!(
                done.error,
                ErrorCode::UnknownCommand.raw(),
                "CMD {raw}: {done:?}"
            );
            assert_eq!(done.result, raw as u64);
        } else if self.reg(regs::CONTROL) & regs::CONTROL_ENABLE == 0 {
            assert_eq!(
                done.error,
                ErrorCode::NotEnabled.raw(),
                "disabled card ran {raw}"
            );
        }
        // As the driver does, clear STATUS for the next command.
        self.h().write32(REG_BAR, regs::STATUS, 0).expect("STATUS");
        self.healthy();
        Some(done)
    }

    /// The model's handlers never failed and every interrupt got through.
    fn healthy(&mut self) {
        let errors = self.h().device_errors();
        assert!(errors.is_empty(), "device handler errors: {errors:?}");
        let stats = self.bus.stats().expect("stepping mode");
        assert_eq!(stats.interrupt_failures, 0, "refused interrupts");
        assert_eq!(self.h().events_lost(), 0, "events lost");
    }

    fn bar2_frame(&mut self) -> Vec<u8> {
        let mut frame = vec![0; FRAME_BYTES];
        self.h().bar_read(FB_BAR, 0, &mut frame).expect("BAR2 read");
        frame
    }

    /// Submit `bytes` as a command buffer and check the outcome against the
    /// parser and a software rendering.
    fn cmdbuf(&mut self, bytes: &[u8]) {
        let enabled = self.reg(regs::CONTROL) & regs::CONTROL_ENABLE != 0;
        let before = self
            .h()
            .device()
            .expect("stepping mode")
            .framebuffer()
            .clone();
        let src = self.upload(bytes);
        self.set_dma(src, 0, bytes.len() as u32);
        let done = self
            .command(Command::ExecuteCmdbuf as u32)
            .expect("EXECUTE_CMDBUF completes");
        let shown = self.bar2_frame();
        let expect_error = |code: ErrorCode, result: u64| Done {
            status: regs::STATUS_DONE | regs::STATUS_ERROR,
            result,
            error: code.raw(),
        };
        let parsed = cmdbuf::parse(bytes);
        let want = if !enabled {
            expect_error(ErrorCode::NotEnabled, 0)
        } else if bytes.is_empty() {
            expect_error(ErrorCode::ZeroLength, 0)
        } else {
            match &parsed {
                Ok(records) => Done {
                    status: regs::STATUS_DONE,
                    result: records.len() as u64,
                    error: 0,
                },
                Err(e) => expect_error(code_of(e), e.offset() as u64),
            }
        };
        assert_eq!(done, want, "EXECUTE_CMDBUF of {} bytes", bytes.len());
        let mut rendered = before;
        if done.error == 0 {
            for rec in parsed.as_deref().unwrap_or(&[]) {
                rec.apply(&mut rendered);
            }
        }
        // Success: exactly the records drawn; failure: nothing drawn.
        assert!(
            shown == rendered.pixels(),
            "BAR2 is not the previous frame with the buffer's records drawn"
        );
    }

    /// After whatever came before: reset, compute, draw, read back.
    fn still_usable(mut self) -> protopciem::Stats {
        self.control(regs::CONTROL_ENABLE | regs::CONTROL_RESET);
        assert_eq!(self.reg(regs::CONTROL), regs::CONTROL_ENABLE);
        assert_eq!(self.reg(regs::STATUS), 0);
        self.reg_write(regs::DATA, 4, 21);
        let done = self.command(Command::Add as u32).expect("ADD completes");
        assert_eq!(
            done,
            Done {
                status: regs::STATUS_DONE,
                result: 42,
                error: 0
            }
        );
        let colour = Rgb::new(1, 2, 3);
        let buf = CmdBufBuilder::new()
            .clear(colour)
            .line(0, 0, 9, 0, Rgb::new(200, 100, 50))
            .build();
        self.cmdbuf(&buf);
        let frame = self.bar2_frame();
        assert_eq!(&frame[..3], &[200, 100, 50]);
        assert_eq!(&frame[FRAME_BYTES - 3..], &[1, 2, 3]);
        self.bus.stats().expect("stepping mode")
    }
}

fn code_of(e: &ParseError) -> ErrorCode {
    match e {
        ParseError::Truncated { .. } => ErrorCode::CmdbufTruncated,
        ParseError::BadLength { .. } => ErrorCode::CmdbufBadLength,
        ParseError::UnknownOpcode { .. } => ErrorCode::CmdbufUnknownOpcode,
    }
}

/// Corpus seeds: the demo's test scene and small buffers of every record
/// kind, the malformed-buffer cases of `tests/malformed.rs`, compute and
/// DMA commands with good and bad addresses, and register pokes.
pub fn seeds() -> crate::Seeds {
    let red = Rgb::new(255, 0, 0);
    let cmdbuf = |w: &mut Writer, buf: &[u8]| {
        let len = buf.len().min(4096);
        w.u8(0).u16(len as u16).bytes(&buf[..len]);
    };
    let start = || {
        let mut w = Writer::new();
        w.u8(1);
        w
    };
    let mut out = Vec::new();

    // The demo's scene is larger than a fuzz input should be; its records
    // are split into buffers of at most 4 KiB at record boundaries.
    let scene = protopciem::demo::test_scene().build();
    let mut w = start();
    let mut chunk_start = 0;
    let mut at = 0;
    let mut chunks = 0;
    while at < scene.len() && chunks < 4 {
        let len = u32::from_le_bytes(scene[at + 4..at + 8].try_into().unwrap()) as usize;
        if at + len - chunk_start > 4096 {
            if at > chunk_start {
                cmdbuf(&mut w, &scene[chunk_start..at]);
                chunks += 1;
            }
            chunk_start = at;
        }
        at += len;
        if len > 4096 {
            // A record too big for one input (the panel blit): skip it.
            chunk_start = at;
        }
    }
    if chunk_start < at && at <= scene.len() {
        cmdbuf(&mut w, &scene[chunk_start..at]);
    }
    out.push(("demo-scene", w.finish()));

    let mut w = start();
    let small = CmdBufBuilder::new()
        .nop(12)
        .clear(Rgb::new(9, 8, 7))
        .line(0, 0, 639, 479, red)
        .line(700, 5, 3, 900, red)
        .blit(630, 470, 4, 4, &[0x55; 48])
        .expect("4×4 blit")
        .build();
    cmdbuf(&mut w, &small);
    out.push(("every-record", w.finish()));

    // The malformed buffers of tests/malformed.rs.
    let mut w = start();
    for bad in [
        CmdBufBuilder::new().nop(8).raw(&[2, 0, 0, 0, 20]).build(),
        CmdBufBuilder::new()
            .clear(red)
            .raw(&[0, 0, 0, 0, 0x00, 0x01, 0, 0])
            .build(),
        CmdBufBuilder::new()
            .raw(&[3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
            .build(),
        CmdBufBuilder::new().clear(red).raw(&[0; 8]).build(),
        CmdBufBuilder::new()
            .raw(&[1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0])
            .build(),
        CmdBufBuilder::new()
            .clear(red)
            .raw(&[0x34, 0x12, 0, 0, 8, 0, 0, 0])
            .build(),
    ] {
        cmdbuf(&mut w, &bad);
    }
    out.push(("malformed", w.finish()));

    // Compute commands, PROCESS_BUFFER and P2P on uploaded buffers, bad
    // addresses and lengths, unknown commands.
    let mut w = start();
    w.u8(1).u8(regs::DATA as u8).u8(2).u64(0x7FFF_FFFF);
    for n in [1u8, 2, 3] {
        w.u8(2).u8(n);
        w.u8(3).u8(0).u16(0).u8(3).u8(0).u16(0).u8(0);
    }
    w.u8(3).u16(64).bytes(&[7; 64]);
    w.u8(3).u16(64).bytes(&[0; 64]);
    // PROCESS_BUFFER buffer 0 -> buffer 1, 64 bytes.
    w.u8(2).u8(4);
    w.u8(0).u8(0).u16(0).u8(0).u8(1).u16(0).u8(4);
    // P2P_WRITE buffer 0 -> peer, P2P_READ peer -> buffer 1.
    w.u8(2).u8(8);
    w.u8(0).u8(0).u16(0).u8(1).u8(0).u16(0x100).u8(4);
    w.u8(2).u8(7);
    w.u8(1).u8(0).u16(0x100).u8(0).u8(1).u16(0).u8(4);
    // P2P outside the window, unmapped DMA, zero and huge lengths.
    w.u8(2).u8(7);
    w.u8(2)
        .u8(0)
        .u16(0)
        .u64(0x1234_0000)
        .u8(0)
        .u8(1)
        .u16(0)
        .u8(4);
    w.u8(2).u8(4);
    w.u8(2)
        .u8(0)
        .u16(0)
        .u64(0xdead_beef_0000)
        .u8(3)
        .u8(0)
        .u16(0)
        .u8(0);
    w.u8(2).u8(5);
    w.u8(0)
        .u8(0)
        .u16(0)
        .u8(3)
        .u8(0)
        .u16(0)
        .u8(0xFF)
        .u32(u32::MAX);
    w.u8(2).u8(6);
    w.u8(0).u8(0).u16(0).u8(3).u8(0).u16(0).u8(0xFE);
    w.u8(2).u8(0xFF).u32(0x100);
    w.u8(3).u8(0).u16(0).u8(3).u8(0).u16(0).u8(1);
    out.push(("commands", w.finish()));

    // Register pokes: disabled card, RESET with and without ENABLE, CMD
    // written by an 8-byte store that also covers STATUS, a byte-wide CMD.
    let mut w = Writer::new();
    w.u8(0);
    w.u8(2).u8(1);
    w.u8(3).u8(0).u16(0).u8(3).u8(0).u16(0).u8(0);
    w.u8(4).u8(2);
    w.u8(4).u8(3);
    w.u8(1).u8(0x04).u8(3).u64(0x0000_0003_0000_0000);
    w.u8(1).u8(0x09).u8(0).u64(0x01);
    w.u8(1).u8(0x08).u8(0).u64(0x05);
    w.u8(1).u8(0x01).u8(3).u64(u64::MAX);
    w.u8(5).u8(0x3C);
    out.push(("registers", w.finish()));
    out
}
