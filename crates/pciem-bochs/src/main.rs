//! `pciem-bochs`: the Bochs/QEMU std VGA adapter on the real PCI bus
//! (`--backend chardev`) for Linux's `bochs` driver, or a driver sequence
//! on the in-process mock host; screenshots as PNG.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use pciem_bochs::capture::{screenshot, VramView};
use pciem_bochs::mock::MockDriver;
use pciem_bochs::{pattern, png_io, Bochs, Display, Mode};

/// The Bochs/QEMU "std VGA" display adapter (PCI 1234:1111) as a Rust
/// device model. With `--backend chardev` it appears on the PCI bus
/// through /dev/pciem and Linux's `bochs` DRM driver binds to it; mode
/// changes are printed as `mode: ...` lines; SIGUSR1 writes a screenshot
/// to `--screenshot PATH` (and so does the exit); SIGINT or SIGTERM
/// removes the device.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Where the adapter runs: `chardev` (the real /dev/pciem; root,
    /// pciem.ko loaded with a BAR pool of at least twice the video memory)
    /// or `mock` (a driver sequence in-process: a mode set and colour bars).
    #[arg(long, value_enum, default_value_t = Backend::Chardev)]
    backend: Backend,
    /// The control file (chardev).
    #[arg(long, default_value = pciem_backend_chardev::DEFAULT_PATH)]
    device: PathBuf,
    /// The PNG written on SIGUSR1, every `--every` ms, and at exit.
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Also write the screenshot every MS milliseconds.
    #[arg(long, value_name = "MS")]
    every: Option<u64>,
    /// Video memory in MiB: a power of two from 4 to 256.
    #[arg(long, default_value_t = 16)]
    vram_mb: u64,
    /// Read timeout of the register reads, in microseconds (the kernel's
    /// default is 10000).
    #[arg(long, default_value_t = 100_000)]
    read_timeout_us: u32,
    /// Wait for events with poll(2) instead of io-uring (chardev).
    #[arg(long)]
    poll: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The real /dev/pciem.
    Chardev,
    /// The in-process mock host.
    Mock,
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("{0}")]
    Model(#[from] pciem_bochs::BochsError),
    #[error("chardev backend: {0}")]
    Chardev(#[from] pciem_backend_chardev::ChardevError),
    #[error("mock backend: {0}")]
    Mock(#[from] pciem_backend_mock::MockError),
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("mapping video memory for screenshots: {0}")]
    Map(std::io::Error),
    #[error("{0}")]
    Png(#[from] png_io::PngError),
    #[error("--every needs --screenshot PATH")]
    EveryWithoutPath,
    #[error("--every must be at least 1 ms")]
    EveryZero,
    #[error("--every applies to --backend chardev (the mock run takes one screenshot)")]
    EveryOnMock,
    #[error("the capture thread panicked")]
    Capture,
}

/// What the capture thread does until told to stop: print mode changes,
/// write screenshots on SIGUSR1 and every `every`.
struct Capture {
    display: Display,
    vram: VramView,
    modes: Receiver<Mode>,
    usr1: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    path: Option<PathBuf>,
    every: Option<Duration>,
    shots: u64,
}

impl Capture {
    fn shoot(&mut self, why: &str) {
        let Some(path) = &self.path else {
            eprintln!("pciem-bochs: {why}: no --screenshot PATH given, nothing written");
            return;
        };
        let started = Instant::now();
        match screenshot(&self.display, &self.vram, path) {
            Ok(f) => {
                self.shots += 1;
                println!(
                    "screenshot {}: {} {}x{} ({why}, {:.0} ms; {} page flips so far)",
                    self.shots,
                    path.display(),
                    f.width,
                    f.height,
                    started.elapsed().as_secs_f64() * 1e3,
                    self.display.flips()
                );
            }
            Err(e) => eprintln!("pciem-bochs: screenshot failed: {e}"),
        }
    }

    fn run(mut self) -> u64 {
        let mut last = Instant::now();
        loop {
            match self.modes.recv_timeout(Duration::from_millis(10)) {
                Ok(m) => println!("mode: {m}"),
                Err(RecvTimeoutError::Timeout) => {}
                // The model is gone: only the stop is left to wait for.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
            }
            if self.usr1.swap(false, Ordering::AcqRel) {
                self.shoot("SIGUSR1");
            }
            if let Some(every) = self.every {
                if last.elapsed() >= every {
                    last = Instant::now();
                    self.shoot("--every");
                }
            }
            if self.done.load(Ordering::Acquire) {
                while let Ok(m) = self.modes.try_recv() {
                    println!("mode: {m}");
                }
                if self.path.is_some() {
                    self.shoot("exit");
                }
                return self.shots;
            }
        }
    }
}

fn run_chardev(cli: &Cli) -> Result<(), AppError> {
    use pciem_backend_chardev::{RunOptions, Session, StopSignal, WaitMode};

    let every = match (cli.every, &cli.screenshot) {
        (Some(0), _) => return Err(AppError::EveryZero),
        (Some(_), None) => return Err(AppError::EveryWithoutPath),
        (e, _) => e.map(Duration::from_millis),
    };
    let stop = StopSignal::new().map_err(AppError::Signals)?;
    stop.on_termination().map_err(AppError::Signals)?;
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(libc::SIGUSR1, usr1.clone()).map_err(AppError::Signals)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut model = Bochs::with_vram(cli.vram_mb << 20)?
        .read_timeout_us(cli.read_timeout_us)
        .report_modes(tx);
    let display = model.display();
    let options = RunOptions {
        path: cli.device.clone(),
        wait: if cli.poll {
            WaitMode::Poll
        } else {
            WaitMode::Auto
        },
        ..Default::default()
    };
    let mut session = Session::open(&model, options)?;
    let vram = VramView::map(&session, display.vram_size()).map_err(AppError::Map)?;
    println!(
        "pciem-bochs: device 1234:1111 registered through {} ({} MiB video memory, event loop: {}); \
         SIGUSR1 writes a screenshot, SIGINT or SIGTERM removes it",
        cli.device.display(),
        cli.vram_mb,
        session.loop_kind()
    );
    let done = Arc::new(AtomicBool::new(false));
    let capture = Capture {
        display: display.clone(),
        vram,
        modes: rx,
        usr1,
        done: done.clone(),
        path: cli.screenshot.clone(),
        every,
        shots: 0,
    };
    let thread = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || capture.run())
        .map_err(AppError::Signals)?;
    let report = session.run(&mut model, &stop);
    // The capture thread's mapping keeps the device's file open: it goes
    // first, then the session, which removes the device.
    done.store(true, Ordering::Release);
    let shots = thread.join().map_err(|_| AppError::Capture)?;
    drop(session);
    let report = report?;
    println!(
        "pciem-bochs: device removed; {} events, {} register reads answered, {} lost, \
         {} handler errors; {} mode changes, {} page flips, {shots} screenshots",
        report.events,
        report.reads_answered,
        report.lost,
        report.handler_errors,
        display.mode_changes(),
        display.flips()
    );
    for e in &report.errors {
        println!("  handler error: {e}");
    }
    Ok(())
}

/// The driver sequence on the mock host: probe, 1024x768x32, colour bars,
/// a screenshot.
fn run_mock(cli: &Cli) -> Result<(), AppError> {
    if cli.every.is_some() {
        return Err(AppError::EveryOnMock);
    }
    let mut d = MockDriver::new(Bochs::with_vram(cli.vram_mb << 20)?)?;
    let p = d.probe()?;
    println!(
        "probe: ID {:#06x}, {} MiB video memory, QEMU extension registers {} bytes, EDID {}",
        p.id,
        p.vram >> 20,
        p.qext_size,
        if p.edid { "present" } else { "absent" }
    );
    let (w, h, bpp) = d.set_mode(1024, 768, 32)?;
    println!("mode: {w}x{h} {bpp} bpp");
    d.draw(0, &pattern::bars(u32::from(w), u32::from(h)))?;
    let frame = d.screenshot()?;
    let path = cli
        .screenshot
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/pciem-bochs-mock.png"));
    png_io::write(&path, &frame)?;
    println!(
        "screenshot: {} {}x{}",
        path.display(),
        frame.width,
        frame.height
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.backend {
        Backend::Chardev => run_chardev(&cli),
        Backend::Mock => run_mock(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pciem-bochs: {e}");
            ExitCode::FAILURE
        }
    }
}
