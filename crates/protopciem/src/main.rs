//! `protopciem`: run the ProtoPCIem card under a driver workload, or dump
//! its configuration space for `lspci`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use protopciem::framebuffer::{HEIGHT, WIDTH};
use protopciem::mock::MockBus;

/// The ProtoPCIem card: a 640×480 framebuffer and compute accelerator that
/// exists only as this program.
///
/// With no subcommand, runs the driver workload on the in-process mock host
/// (no root needed): reset, the compute commands with checked results,
/// PROCESS_BUFFER, a DMA'd frame, P2P, and a command buffer that draws a
/// test scene. Prints a summary and writes the framebuffer as a PNG.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the driver workload (the default).
    Run(RunArgs),
    /// Print the configuration space in the format of `lspci -xxxx`, for
    /// `lspci -F FILE -vvv`.
    DumpConfig(DumpArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Where the device runs: `mock` is the in-process host with a
    /// simulated driver; `chardev` puts the card on the real PCI bus
    /// through /dev/pciem (root, pciem.ko loaded) and serves the kernel
    /// driver until SIGINT or SIGTERM, then removes it.
    #[arg(long, value_enum, default_value_t = Backend::Mock)]
    backend: Backend,
    /// Where to write the final framebuffer as a 640×480 RGB PNG
    /// [default: target/protopciem.png]. Its directory must exist (only
    /// the default's `target/` is created, and that is said).
    #[arg(long)]
    out: Option<PathBuf>,
    /// mock only: run the device model on the caller's thread, handling
    /// events when the driver next looks (deterministic), instead of on its
    /// own thread woken by the event ring.
    #[arg(long)]
    stepping: bool,
    /// chardev only: the control file [default: /dev/pciem].
    #[arg(long)]
    device: Option<PathBuf>,
    /// chardev only: wait for events with poll(2) instead of io-uring.
    #[arg(long)]
    poll: bool,
    /// How the host serves BAR0: `trap` (every driver store reaches the
    /// model; the driver binds once the device serves events) or `watch`
    /// (CONTROL and CMD watched by hardware watchpoints).
    #[arg(long, value_enum, default_value_t = BarMode::Trap)]
    mode: BarMode,
    /// chardev, fault injection: surprise-remove the card when the driver writes its
    /// N-th command (from 1), instead of running it. The link goes down at
    /// once (the driver reads all-ones), and the host removes the card as
    /// hot-unplugged hardware; the process keeps running until SIGINT or
    /// SIGTERM.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    surprise_remove_at_command: Option<u64>,
    /// chardev: put the card below a virtual PCIe root port with a
    /// hot-plug slot, so that Linux's pciehp handles a surprise removal
    /// (pciem.ko must have a BAR pool, phys_region=).
    #[arg(long)]
    root_port: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BarMode {
    /// Trap mode.
    Trap,
    /// Watch mode.
    Watch,
}

impl From<BarMode> for protopciem::config::Mode {
    fn from(m: BarMode) -> Self {
        match m {
            BarMode::Trap => Self::Trap,
            BarMode::Watch => Self::Watch,
        }
    }
}

#[derive(Debug, clap::Args)]
struct DumpArgs {
    /// The bus address printed before the dump.
    #[arg(long, default_value = "00:00.0")]
    slot: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// In-process mock host and driver harness.
    Mock,
    /// The real /dev/pciem kernel interface.
    Chardev,
}

/// Where the framebuffer goes when `--out` is not given.
const DEFAULT_OUT: &str = "target/protopciem.png";

/// The BAR pool one ProtoPCIem card takes (its bridge window, naturally
/// aligned: BAR0's 64 KiB and BAR2's 1 MiB), for the missing-module advice.
const POOL_HINT: &str = "ProtoPCIem needs 2 MiB of pool: boot with memmap=2M$0x3f000000 (a range \
    /proc/iomem shows as System RAM) and load pciem.ko with phys_region=0x3f000000:2M";

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("{flag} applies only to --backend {backend}")]
    WrongBackend {
        flag: &'static str,
        backend: &'static str,
    },
    #[error("--out {}: the directory {} does not exist (create it first)", path.display(), dir.display())]
    OutDir { path: PathBuf, dir: PathBuf },
    #[error("chardev backend: {0}; {POOL_HINT}")]
    ChardevOpen(pciem_backend_chardev::ChardevError),
    #[error("chardev backend: {0}")]
    Chardev(#[from] pciem_backend_chardev::ChardevError),
    #[error("installing the SIGINT/SIGTERM handlers: {0}")]
    Signals(std::io::Error),
    #[error("building the configuration space: {0}")]
    Config(#[from] pciem_core::BuildError),
    #[error("mock backend: {0}")]
    Bus(#[from] protopciem::demo::BusError),
    #[error("workload failed: {0}")]
    Demo(#[from] protopciem::demo::DemoError),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("encoding {path}: {source}")]
    Png {
        path: PathBuf,
        source: png::EncodingError,
    },
}

/// Refuses flags that the chosen backend would ignore.
fn check_flags(args: &RunArgs) -> Result<(), AppError> {
    let (flag, backend) = match args.backend {
        Backend::Mock if args.device.is_some() => ("--device", "chardev"),
        Backend::Mock if args.poll => ("--poll", "chardev"),
        Backend::Mock if args.surprise_remove_at_command.is_some() => {
            ("--surprise-remove-at-command", "chardev")
        }
        Backend::Mock if args.root_port => ("--root-port", "chardev"),
        Backend::Chardev if args.stepping => ("--stepping", "mock"),
        _ => return Ok(()),
    };
    Err(AppError::WrongBackend { flag, backend })
}

/// The PNG's path, checked before any work is done: an explicit `--out`
/// must name an existing directory; the default's `target/` is created
/// (and said so).
fn out_path(args: &RunArgs) -> Result<PathBuf, AppError> {
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(path);
    };
    if dir.is_dir() {
        return Ok(path);
    }
    if args.out.is_some() {
        return Err(AppError::OutDir {
            dir: dir.to_owned(),
            path,
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| AppError::Io {
        path: dir.to_owned(),
        source,
    })?;
    println!("created {} for the framebuffer", dir.display());
    Ok(path)
}

fn write_png(path: &Path, rgb: &[u8]) -> Result<(), AppError> {
    let io = |source| AppError::Io {
        path: path.to_owned(),
        source,
    };
    let enc = |source| AppError::Png {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let mut e = png::Encoder::new(BufWriter::new(file), WIDTH as u32, HEIGHT as u32);
    e.set_color(png::ColorType::Rgb);
    e.set_depth(png::BitDepth::Eight);
    let mut w = e.write_header().map_err(enc)?;
    w.write_image_data(rgb).map_err(enc)?;
    w.finish().map_err(enc)
}

/// The card on the real bus until SIGINT/SIGTERM; the device is removed
/// when the session (and with it every file) is dropped.
fn run_chardev(args: &RunArgs, out: &Path) -> Result<(), AppError> {
    use pciem_backend_chardev::{RunOptions, Session, StopSignal, WaitMode};

    let stop = StopSignal::new().map_err(AppError::Signals)?;
    stop.on_termination().map_err(AppError::Signals)?;
    let mut model = protopciem::device::ProtoPciem::with_mode(args.mode.into());
    let device = args
        .device
        .clone()
        .unwrap_or_else(|| PathBuf::from(pciem_backend_chardev::DEFAULT_PATH));
    if let Some(n) = args.surprise_remove_at_command {
        model = model.surprise_remove_at_command(n);
    }
    let options = RunOptions {
        path: device.clone(),
        wait: if args.poll {
            WaitMode::Poll
        } else {
            WaitMode::Auto
        },
        root_port: args.root_port,
        ..Default::default()
    };
    let mut session = Session::open(&model, options).map_err(|e| match e {
        e @ pciem_backend_chardev::ChardevError::Open { .. } => AppError::ChardevOpen(e),
        e => AppError::Chardev(e),
    })?;
    println!(
        "protopciem: device {:04x}:{:04x} registered through {} (event loop: {}, BAR0 in {} mode); SIGINT or SIGTERM removes it",
        protopciem::config::VENDOR_ID,
        protopciem::config::DEVICE_ID,
        device.display(),
        session.loop_kind(),
        match args.mode {
            BarMode::Trap => "trap",
            BarMode::Watch => "watch",
        }
    );
    let report = session.run(&mut model, &stop)?;
    drop(session);
    if model.removed() {
        println!("protopciem: the card was surprise-removed mid-command");
    }
    let s = model.stats();
    println!(
        "protopciem: device removed; {} events handled ({} lost to ring overflow, kernel overflow counter {}), {} handler errors",
        report.events, report.lost, report.overflow, report.handler_errors
    );
    for e in &report.errors {
        println!("  handler error: {e}");
    }
    println!(
        "device: {} commands, {} interrupts raised, {} errors, {} bytes mirrored to BAR2",
        s.commands, s.interrupts, s.errors, s.bar2_bytes
    );
    write_png(out, model.framebuffer().pixels())?;
    println!("framebuffer written to {}", out.display());
    Ok(())
}

fn run(args: &RunArgs) -> Result<(), AppError> {
    check_flags(args)?;
    let out = out_path(args)?;
    if args.backend == Backend::Chardev {
        return run_chardev(args, &out);
    }
    let mut bus = if args.stepping {
        MockBus::stepping_with(args.mode.into())?
    } else {
        MockBus::threaded_with(args.mode.into())?
    };
    let summary = protopciem::demo::run(&mut bus)?;
    let lost = bus.harness().events_lost();
    let host_errors = bus.harness().device_errors();
    let s = bus.into_stats()?;
    println!("{summary}");
    println!(
        "device ({}): {} commands, {} interrupts raised, {} errors, {} bytes mirrored to BAR2",
        if args.stepping {
            "stepping"
        } else {
            "own thread"
        },
        s.commands,
        s.interrupts,
        s.errors,
        s.bar2_bytes
    );
    println!(
        "events lost: {lost}, host errors returned by handlers: {}",
        host_errors.len()
    );
    write_png(&out, &summary.frame)?;
    println!("framebuffer written to {}", out.display());
    Ok(())
}

fn dump_config(args: &DumpArgs) -> Result<(), AppError> {
    let space = protopciem::config::config_space()?;
    let (base, sub, _) = protopciem::config::CLASS;
    // lspci's dump parser reads only the slot from this line; the rest says
    // what lspci itself would print.
    let header = format!(
        "{} Class {base:02x}{sub:02x}: Device {:04x}:{:04x}",
        args.slot,
        space.vendor_id(),
        space.device_id()
    );
    let mut out = String::new();
    space
        .write_lspci_dump(&header, true, &mut out)
        .expect("formatting into a String cannot fail");
    print!("{out}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => run(&cli.run),
        Some(Cmd::Run(a)) => run(a),
        Some(Cmd::DumpConfig(a)) => dump_config(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("protopciem: {e}");
            ExitCode::FAILURE
        }
    }
}
