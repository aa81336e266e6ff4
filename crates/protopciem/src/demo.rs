//! The driver workload the `protopciem` binary runs: what the kernel driver
//! does with the card, step by step, with every result checked.
//!
//! It is written against [`DriverBus`], the driver's view of a bus with the
//! card on it (registers, BAR2, DMA memory, the interrupt), so the same
//! workload runs on any harness that offers that view.

use std::fmt;
use std::time::{Duration, Instant};

use crate::cmdbuf::CmdBufBuilder;
use crate::framebuffer::{Framebuffer, Rgb, FRAME_BYTES, HEIGHT, STRIDE, WIDTH};
use crate::regs::{self, Command, ErrorCode};

/// How long the driver waits for a completion interrupt.
pub const IRQ_TIMEOUT: Duration = Duration::from_secs(5);

/// A failure of the harness underneath the driver (not of the card).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BusError(pub String);

/// The driver's view of the card.
pub trait DriverBus {
    /// Write a 32-bit register in BAR0 (what `iowrite32` does).
    fn write_reg(&mut self, offset: u64, value: u32) -> Result<(), BusError>;
    /// Read a 32-bit register in BAR0.
    fn read_reg(&mut self, offset: u64) -> Result<u32, BusError>;
    /// Read BAR2 from `offset` into `buf`.
    fn read_fb(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BusError>;
    /// Allocate a DMA buffer of `len` bytes; returns its bus address.
    fn alloc_dma(&mut self, len: usize) -> Result<u64, BusError>;
    /// Write into a DMA buffer.
    fn write_dma(&mut self, addr: u64, data: &[u8]) -> Result<(), BusError>;
    /// Read from a DMA buffer.
    fn read_dma(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), BusError>;
    /// Wait for the next interrupt (MSI vector 0); `false` on timeout.
    fn wait_irq(&mut self, timeout: Duration) -> Result<bool, BusError>;
    /// A peer memory region the card may reach by P2P, if the harness has
    /// one: `(address, length)`. The default has none.
    fn p2p_region(&mut self) -> Option<(u64, u64)> {
        None
    }
}

/// Why the workload stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The harness failed.
    #[error("harness: {0}")]
    Bus(#[from] BusError),
    /// The card gave a wrong answer.
    #[error("{command}: {what}")]
    Check {
        /// Command being checked.
        command: &'static str,
        /// What was wrong.
        what: String,
    },
}

fn check(command: &'static str, ok: bool, what: impl FnOnce() -> String) -> Result<(), DemoError> {
    if ok {
        Ok(())
    } else {
        Err(DemoError::Check {
            command,
            what: what(),
        })
    }
}

/// Per-command counts and time, as the driver saw them.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// (command, times run, total time from CMD write to interrupt).
    pub per_command: Vec<(Command, u64, Duration)>,
    /// Completion interrupts received.
    pub interrupts: u64,
    /// Commands that ended with STATUS.ERROR.
    pub errors: u64,
    /// The final framebuffer, read back from BAR2.
    pub frame: Vec<u8>,
}

impl Summary {
    /// Commands run in all.
    pub fn commands(&self) -> u64 {
        self.per_command.iter().map(|c| c.1).sum()
    }

    fn record(&mut self, cmd: Command, took: Duration) {
        match self.per_command.iter_mut().find(|c| c.0 == cmd) {
            Some(c) => {
                c.1 += 1;
                c.2 += took;
            }
            None => self.per_command.push((cmd, 1, took)),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16} {:>6} {:>14}", "command", "runs", "time/command")?;
        for (cmd, n, total) in &self.per_command {
            let per = total.as_secs_f64() * 1e6 / *n as f64;
            writeln!(f, "{:<16} {:>6} {:>11.1} µs", cmd.name(), n, per)?;
        }
        write!(
            f,
            "commands: {}  interrupts: {}  errors: {}",
            self.commands(),
            self.interrupts,
            self.errors
        )
    }
}

/// What a finished command left in the registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// STATUS.
    pub status: u32,
    /// RESULT_HI:RESULT_LO.
    pub result: u64,
    /// ERROR_CODE.
    pub error: u32,
}

/// A driver for the card on a [`DriverBus`].
pub struct Driver<'a, B: DriverBus + ?Sized> {
    bus: &'a mut B,
    summary: Summary,
}

impl<'a, B: DriverBus + ?Sized> Driver<'a, B> {
    /// A driver on `bus`.
    pub fn new(bus: &'a mut B) -> Self {
        Self {
            bus,
            summary: Summary::default(),
        }
    }

    /// The bus underneath.
    pub fn bus(&mut self) -> &mut B {
        self.bus
    }

    /// What has been counted so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Reset and enable the card; checks that the reset cleared STATUS and
    /// self-cleared.
    pub fn reset(&mut self) -> Result<(), DemoError> {
        self.bus
            .write_reg(regs::CONTROL, regs::CONTROL_ENABLE | regs::CONTROL_RESET)?;
        // The device clears RESET when it is done; with the device on its
        // own thread that takes a moment, so poll as a driver would.
        let deadline = Instant::now() + IRQ_TIMEOUT;
        let mut control = self.bus.read_reg(regs::CONTROL)?;
        while control & regs::CONTROL_RESET != 0 && Instant::now() < deadline {
            std::thread::yield_now();
            control = self.bus.read_reg(regs::CONTROL)?;
        }
        check("RESET", control == regs::CONTROL_ENABLE, || {
            format!("CONTROL reads {control:#x} after reset, expected ENABLE only")
        })?;
        let status = self.bus.read_reg(regs::STATUS)?;
        check("RESET", status == 0, || {
            format!("STATUS {status:#x} after reset")
        })
    }

    /// Program DMA_SRC/DST/LEN.
    pub fn set_dma(&mut self, src: u64, dst: u64, len: u32) -> Result<(), BusError> {
        self.bus.write_reg(regs::DMA_SRC_LO, src as u32)?;
        self.bus.write_reg(regs::DMA_SRC_HI, (src >> 32) as u32)?;
        self.bus.write_reg(regs::DMA_DST_LO, dst as u32)?;
        self.bus.write_reg(regs::DMA_DST_HI, (dst >> 32) as u32)?;
        self.bus.write_reg(regs::DMA_LEN, len)
    }

    /// Start command number `raw`, wait for its interrupt, clear STATUS and
    /// return what it left.
    pub fn run_raw(&mut self, raw: u32) -> Result<Completion, DemoError> {
        let t0 = Instant::now();
        self.bus.write_reg(regs::CMD, raw)?;
        let got = self.bus.wait_irq(IRQ_TIMEOUT)?;
        let took = t0.elapsed();
        let name = Command::from_raw(raw).map_or("unknown command", Command::name);
        check(name, got, || format!("no interrupt within {IRQ_TIMEOUT:?}"))?;
        self.summary.interrupts += 1;
        let status = self.bus.read_reg(regs::STATUS)?;
        let lo = self.bus.read_reg(regs::RESULT_LO)?;
        let hi = self.bus.read_reg(regs::RESULT_HI)?;
        let error = self.bus.read_reg(regs::ERROR_CODE)?;
        let cmd_after = self.bus.read_reg(regs::CMD)?;
        self.bus.write_reg(regs::STATUS, 0)?;
        check(name, status & regs::STATUS_DONE != 0, || {
            format!("STATUS {status:#x} lacks DONE after the interrupt")
        })?;
        check(name, cmd_after == 0, || {
            format!("CMD reads {cmd_after} after completion")
        })?;
        if status & regs::STATUS_ERROR != 0 {
            self.summary.errors += 1;
        }
        if let Some(cmd) = Command::from_raw(raw) {
            self.summary.record(cmd, took);
        }
        Ok(Completion {
            status,
            result: u64::from(lo) | (u64::from(hi) << 32),
            error,
        })
    }

    /// Run `cmd` and require success; returns RESULT.
    pub fn run_ok(&mut self, cmd: Command) -> Result<u64, DemoError> {
        let c = self.run_raw(cmd as u32)?;
        check(cmd.name(), c.status == regs::STATUS_DONE, || {
            format!(
                "STATUS {:#x}, ERROR_CODE {} ({:?})",
                c.status,
                c.error,
                ErrorCode::from_raw(c.error)
            )
        })?;
        Ok(c.result)
    }

    /// Run a compute command on `data` and check RESULT against `expected`.
    pub fn compute(&mut self, cmd: Command, data: u32, expected: u64) -> Result<(), DemoError> {
        self.bus.write_reg(regs::DATA, data)?;
        let r = self.run_ok(cmd)?;
        check(cmd.name(), r == expected, || {
            format!("DATA {data:#x}: RESULT {r:#x}, expected {expected:#x}")
        })
    }

    /// Copy `data` into a fresh DMA buffer; returns its bus address.
    pub fn upload(&mut self, data: &[u8]) -> Result<u64, BusError> {
        let addr = self.bus.alloc_dma(data.len())?;
        self.bus.write_dma(addr, data)?;
        Ok(addr)
    }

    /// Submit a command buffer (what the driver's `write()` does); returns
    /// the number of records the card executed.
    pub fn submit(&mut self, cmdbuf: &[u8]) -> Result<u64, DemoError> {
        let src = self.upload(cmdbuf)?;
        self.set_dma(src, 0, cmdbuf.len() as u32)?;
        self.run_ok(Command::ExecuteCmdbuf)
    }

    /// Read the whole frame back from BAR2.
    pub fn read_frame(&mut self) -> Result<Vec<u8>, BusError> {
        let mut frame = vec![0; FRAME_BYTES];
        self.bus.read_fb(0, &mut frame)?;
        Ok(frame)
    }

    /// Finish: read the frame back and hand over the counts.
    pub fn finish(mut self) -> Result<Summary, DemoError> {
        self.summary.frame = self.read_frame()?;
        Ok(self.summary)
    }
}

/// A 640×480 frame of smooth colour bands: what the workload DMAs with
/// DMA_FRAME.
pub fn gradient_frame() -> Vec<u8> {
    let mut f = vec![0; FRAME_BYTES];
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let i = y * STRIDE + x * 3;
            f[i] = (x * 255 / (WIDTH - 1)) as u8;
            f[i + 1] = (y * 255 / (HEIGHT - 1)) as u8;
            f[i + 2] = ((x + y) % 256) as u8;
        }
    }
    f
}

/// The `w`×`h` RGB gradient the test scene blits.
pub fn gradient_tile(w: u16, h: u16) -> Vec<u8> {
    let (w, h) = (usize::from(w), usize::from(h));
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            px.push((x * 255 / w.max(2).saturating_sub(1)) as u8);
            px.push((y * 255 / h.max(2).saturating_sub(1)) as u8);
            px.push(255 - (x * 255 / w.max(2).saturating_sub(1)) as u8);
        }
    }
    px
}

/// The test scene: a dark background, a white frame around the screen, a
/// blitted gradient panel in the middle, a fan of coloured lines from the
/// bottom-left corner and a yellow cross through the panel, and a gradient
/// tile hanging off the bottom-right corner (clipped).
pub fn test_scene() -> CmdBufBuilder {
    const WHITE: Rgb = Rgb::new(255, 255, 255);
    let (w, h) = (WIDTH as u16 - 1, HEIGHT as u16 - 1);
    let mut b = CmdBufBuilder::new()
        .clear(Rgb::new(16, 24, 48))
        .line(0, 0, w, 0, WHITE)
        .line(w, 0, w, h, WHITE)
        .line(w, h, 0, h, WHITE)
        .line(0, h, 0, 0, WHITE)
        .nop(16);
    let panel = gradient_tile(256, 160);
    b = b.blit(192, 160, 256, 160, &panel).expect("256×160×3 bytes");
    let colours = [
        Rgb::new(255, 64, 64),
        Rgb::new(255, 160, 0),
        Rgb::new(255, 255, 0),
        Rgb::new(0, 220, 0),
        Rgb::new(0, 160, 255),
        Rgb::new(160, 64, 255),
    ];
    for i in 0..24u16 {
        let c = colours[usize::from(i) % colours.len()];
        // From the bottom-left corner to points along the top and right.
        let (x, y) = if i < 12 {
            (40 + i * 50, 8)
        } else {
            (630, 8 + (i - 12) * 38)
        };
        b = b.line(8, h - 8, x, y, c);
    }
    b = b.line(192, 160, 447, 319, Rgb::new(255, 255, 0)).line(
        447,
        160,
        192,
        319,
        Rgb::new(255, 255, 0),
    );
    let corner = gradient_tile(64, 48);
    b.blit(600, 450, 64, 48, &corner).expect("64×48×3 bytes")
}

/// The whole workload: reset, the compute commands, PROCESS_BUFFER, a
/// DMA'd frame read back through BAR2, P2P if the bus has a peer region,
/// then the test scene, checked pixel for pixel against a software
/// rendering of the same command buffer.
pub fn run<B: DriverBus + ?Sized>(bus: &mut B) -> Result<Summary, DemoError> {
    let mut d = Driver::new(bus);
    d.reset()?;

    for data in [0u32, 1, 21, 0x7FFF_FFFF, 0xFFFF_FFFF] {
        let v = u64::from(data);
        d.compute(Command::Add, data, v + v)?;
        d.compute(Command::Multiply, data, v * v)?;
        d.compute(Command::Xor, data, v ^ 0xFFFF_FFFF)?;
    }

    // PROCESS_BUFFER over 64 KiB: every byte complemented, RESULT = sum.
    let input: Vec<u8> = (0..65536u32).map(|i| (i * 7 + (i >> 8)) as u8).collect();
    let sum: u64 = input.iter().map(|&b| u64::from(b)).sum();
    let src = d.upload(&input)?;
    let dst = d.bus().alloc_dma(input.len())?;
    d.set_dma(src, dst, input.len() as u32)?;
    let r = d.run_ok(Command::ProcessBuffer)?;
    check("PROCESS_BUFFER", r == sum, || {
        format!("RESULT {r}, expected {sum}")
    })?;
    let mut out = vec![0; input.len()];
    d.bus().read_dma(dst, &mut out)?;
    let bad = input.iter().zip(&out).position(|(a, b)| *b != !*a);
    check("PROCESS_BUFFER", bad.is_none(), || {
        format!(
            "output byte {} is not the complement of the input",
            bad.unwrap_or(0)
        )
    })?;

    // DMA_FRAME, read back through BAR2.
    let frame = gradient_frame();
    let src = d.upload(&frame)?;
    d.set_dma(src, 0, FRAME_BYTES as u32)?;
    let r = d.run_ok(Command::DmaFrame)?;
    check("DMA_FRAME", r == FRAME_BYTES as u64, || {
        format!("RESULT {r}")
    })?;
    let back = d.read_frame()?;
    check("DMA_FRAME", back == frame, || {
        "BAR2 differs from the frame sent".into()
    })?;

    // P2P: write a pattern to the peer, read it back into host memory.
    if let Some((peer, len)) = d.bus().p2p_region() {
        let n = len.min(4096) as usize;
        let pattern: Vec<u8> = (0..n).map(|i| (i * 13) as u8).collect();
        let src = d.upload(&pattern)?;
        d.set_dma(src, peer, n as u32)?;
        d.run_ok(Command::P2pWrite)?;
        let dst = d.bus().alloc_dma(n)?;
        d.set_dma(peer, dst, n as u32)?;
        d.run_ok(Command::P2pRead)?;
        let mut back = vec![0; n];
        d.bus().read_dma(dst, &mut back)?;
        check("P2P_READ", back == pattern, || {
            "peer data did not round-trip".into()
        })?;
    }

    // The scene, checked against a software rendering.
    let scene = test_scene();
    let records = scene.records() as u64;
    let bytes = scene.build();
    let r = d.submit(&bytes)?;
    check("EXECUTE_CMDBUF", r == records, || {
        format!("RESULT {r}, expected {records}")
    })?;
    let mut expected = Framebuffer::new();
    for rec in crate::cmdbuf::parse(&bytes).map_err(|e| DemoError::Check {
        command: "EXECUTE_CMDBUF",
        what: e.to_string(),
    })? {
        rec.apply(&mut expected);
    }
    let back = d.read_frame()?;
    check("EXECUTE_CMDBUF", back == expected.pixels(), || {
        "BAR2 differs from the reference rendering".into()
    })?;

    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockBus;

    #[test]
    fn workload_passes_on_the_test_host() {
        let mut bus = MockBus::stepping().unwrap();
        let s = run(&mut bus).unwrap();
        assert_eq!(s.errors, 0);
        assert_eq!(s.interrupts, s.commands());
        assert_eq!(s.commands(), 15 + 3 + 2);
        assert_eq!(bus.stats().unwrap().errors, 0);
        assert_eq!(s.frame.len(), FRAME_BYTES);
        // The frame border is white; the background is the clear colour.
        assert_eq!(&s.frame[..3], &[255, 255, 255]);
        let mid_left = 240 * STRIDE + 100 * 3;
        assert_eq!(&s.frame[mid_left..mid_left + 3], &[16, 24, 48]);
    }
}
