//! `pciem-nvme`: an NVMe controller that exists only as this program.
//!
//! `--backend mock` runs it in-process under a small Rust NVMe driver that
//! brings it up, creates I/O queues, writes and verifies a pattern and
//! prints a summary. `--backend chardev` puts it on the real PCI bus
//! through `/dev/pciem`, where Linux's own `nvme` driver binds to it, and
//! serves it until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use pciem_nvme::command::{nvm, Command};
use pciem_nvme::driver::{pattern, Driver, DriverError, IrqSetup, PrpLayout};
use pciem_nvme::{FileStorage, LbaSize, MemStorage, Nvme, NvmeConfig, Storage};

/// An NVMe 1.4-subset controller as a PCIem device model.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// `mock`: in-process host and a Rust test driver (no root needed);
    /// `chardev`: the real /dev/pciem (root, pciem.ko loaded), served
    /// until SIGINT or SIGTERM.
    #[arg(long, value_enum, default_value_t = Backend::Mock)]
    backend: Backend,
    /// The backing file (chardev: required; mock: optional, memory by
    /// default). Created sparse at --size if it does not exist; an
    /// existing file must be exactly --size bytes.
    #[arg(long)]
    disk: Option<PathBuf>,
    /// Namespace size in bytes; K, M, G, T suffixes are powers of 1024.
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Logical block size: 512 or 4096.
    #[arg(long, default_value_t = 512, value_parser = parse_lba_size)]
    lba_size: u64,
    /// Serial number (at most 20 ASCII characters).
    #[arg(long, default_value = "PCIEM0001")]
    serial: String,
    /// Model number (at most 40 ASCII characters).
    #[arg(long, default_value = "PCIem NVMe controller")]
    model: String,
    /// Firmware revision (at most 8 ASCII characters).
    #[arg(long, default_value = "0.1")]
    firmware: String,
    /// PCI vendor ID (and Identify Controller VID), e.g. 0x1234.
    #[arg(long, default_value = "0x1234", value_parser = parse_u16)]
    vendor_id: u16,
    /// PCI device ID.
    #[arg(long, default_value = "0x4e56", value_parser = parse_u16)]
    device_id: u16,
    /// PCI subsystem vendor ID (and Identify Controller SSVID).
    #[arg(long, default_value = "0x1234", value_parser = parse_u16)]
    subsystem_vendor_id: u16,
    /// chardev: the control file.
    #[arg(long, default_value = pciem_backend_chardev::DEFAULT_PATH)]
    device: PathBuf,
    /// chardev: wait for events with poll(2) instead of io-uring.
    #[arg(long)]
    poll: bool,
    /// chardev, fault injection: the first Write command at this LBA has its data
    /// DMA read poisoned (it completes with Data Transfer Error, Do Not
    /// Retry); later writes there succeed.
    #[arg(long)]
    poison_write_lba: Option<u64>,
    /// mock: I/O queue pairs the test driver creates.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    queues: u16,
    /// mock: mebibytes the test driver writes and verifies.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    mib: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// In-process mock host and the Rust test driver.
    Mock,
    /// The real /dev/pciem kernel interface.
    Chardev,
}

/// What went wrong, for the exit message.
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("--disk is required with --backend chardev")]
    NoDisk,
    #[error("--size is required with --disk")]
    NoSize,
    #[error("{0}")]
    Storage(#[from] pciem_nvme::StorageError),
    #[error("{0}")]
    Controller(#[from] pciem_nvme::NewError),
    #[error("chardev backend: {0}")]
    Chardev(#[from] pciem_backend_chardev::ChardevError),
    #[error("installing the SIGINT/SIGTERM handlers: {0}")]
    Signals(std::io::Error),
    #[error("test driver: {0}")]
    Driver(#[from] DriverError),
    #[error("verification failed: {0}")]
    Verify(String),
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown size suffix {c:?} (K, M, G or T)")),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 1073741824, 512M, 1G)"))?;
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if bytes == 0 {
        return Err("the size must be positive".into());
    }
    Ok(bytes)
}

fn parse_lba_size(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if LbaSize::from_bytes(n).is_some() => Ok(n),
        _ => Err(format!("{s:?}: the block size must be 512 or 4096")),
    }
}

fn parse_u16(s: &str) -> Result<u16, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("{s:?} is not a 16-bit number"))
}

fn config(cli: &Cli, size: u64) -> NvmeConfig {
    NvmeConfig {
        vendor_id: cli.vendor_id,
        device_id: cli.device_id,
        subsystem_vendor_id: cli.subsystem_vendor_id,
        subsystem_id: 0x0001,
        serial: cli.serial.clone(),
        model: cli.model.clone(),
        firmware: cli.firmware.clone(),
        size,
        lba_size: LbaSize::from_bytes(cli.lba_size).unwrap_or(LbaSize::B512),
    }
}

fn storage(cli: &Cli, default_size: u64) -> Result<(Box<dyn Storage>, u64), AppError> {
    match (&cli.disk, cli.size) {
        (Some(path), Some(size)) => Ok((Box::new(FileStorage::open(path, size)?), size)),
        (Some(_), None) => Err(AppError::NoSize),
        (None, size) => {
            let size = size.unwrap_or(default_size);
            Ok((Box::new(MemStorage::new(size)), size))
        }
    }
}

/// The controller on the real bus until SIGINT/SIGTERM.
fn run_chardev(cli: &Cli) -> Result<(), AppError> {
    use pciem_backend_chardev::{RunOptions, Session, StopSignal, WaitMode};

    let path = cli.disk.as_ref().ok_or(AppError::NoDisk)?;
    let (store, size) = storage(cli, 0)?;
    let cfg = config(cli, size);
    let mut nvme = Nvme::new(cfg.clone(), store)?;
    if let Some(lba) = cli.poison_write_lba {
        nvme.poison_next_write_at(lba);
    }
    let stop = StopSignal::new().map_err(AppError::Signals)?;
    stop.on_termination().map_err(AppError::Signals)?;
    let options = RunOptions {
        path: cli.device.clone(),
        wait: if cli.poll {
            WaitMode::Poll
        } else {
            WaitMode::Auto
        },
        ..Default::default()
    };
    let mut session = Session::open(&nvme, options)?;
    println!(
        "pciem-nvme: controller {:04x}:{:04x} registered through {} (event loop: {}); namespace 1: {} bytes in {}-byte blocks from {}; serial {:?}, model {:?}; SIGINT or SIGTERM removes it",
        cfg.vendor_id,
        cfg.device_id,
        cli.device.display(),
        session.loop_kind(),
        cfg.size,
        cfg.lba_size.bytes(),
        path.display(),
        cfg.serial,
        cfg.model,
    );
    let report = session.run(&mut nvme, &stop);
    // Whatever the driver did, every completed write is made durable
    // before the device goes away.
    let flushed = nvme.flush();
    drop(session);
    let report = report?;
    flushed?;
    let s = nvme.stats();
    println!(
        "pciem-nvme: device removed, backing file flushed; {} events ({} lost, kernel overflow counter {}), {} handler errors",
        report.events, report.lost, report.overflow, report.handler_errors
    );
    for e in &report.errors {
        println!("  handler error: {e}");
    }
    let h = nvme.health();
    println!(
        "controller: {} commands ({} with an error status), {} completions, {} interrupts ({} refused), {} resets, {} shutdowns, {} invalid doorbell writes, fatal {} times; {} reads, {} writes",
        s.commands, s.errors, s.completions, s.interrupts, s.interrupt_errors, s.resets, s.shutdowns,
        s.invalid_doorbells, s.fatal, h.host_reads, h.host_writes
    );
    Ok(())
}

/// The mock run: bring-up, a pattern written over several queues with
/// many commands in flight, read back and compared, flush, shutdown.
fn run_mock(cli: &Cli) -> Result<(), AppError> {
    let started = Instant::now();
    let (store, size) = storage(cli, 64 << 20)?;
    let cfg = config(cli, size);
    let lbs = cfg.lba_size.bytes() as usize;
    let nvme = Nvme::new(cfg.clone(), store)?;
    let mut d = Driver::new(nvme, false)?;
    d.bring_up(IrqSetup::MsiX, cli.queues, 64)?;
    let id = d.identify(0x01, 0)?;
    let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&id[r]).trim_end().to_string();
    let (serial, model) = (text(4..24), text(24..64));

    // 128 KiB commands, 8 in flight per queue, round-robin over queues.
    let chunk = 128 * 1024usize;
    let total = (cli.mib << 20).min(size) as usize;
    let blocks_per = chunk / lbs;
    let commands = total.div_ceil(chunk);
    let seed = 0x5eed;
    let mut written = 0u64;
    let t0 = Instant::now();
    for pass in [nvm::WRITE, nvm::READ] {
        let mut next = 0usize;
        while next < commands {
            let mut batch = Vec::new();
            for q in 1..=cli.queues {
                let mut cmds = Vec::new();
                for _ in 0..8 {
                    if next >= commands {
                        break;
                    }
                    let slba = (next * blocks_per) as u64;
                    let len = chunk.min(total - next * chunk);
                    let t = d.prepare(len, PrpLayout::default())?;
                    if pass == nvm::WRITE {
                        let data: Vec<u8> = (0..len / lbs)
                            .flat_map(|i| pattern(slba + i as u64, lbs, seed))
                            .collect();
                        d.harness()
                            .dma_write(t.data, &data)
                            .map_err(DriverError::from)?;
                    }
                    let mut c = Driver::rw_command(pass, slba, (len / lbs) as u32, &t);
                    c.cid = d.cid();
                    cmds.push(c);
                    batch.push((q, slba, len, t));
                    next += 1;
                }
                if !cmds.is_empty() {
                    d.submit(q, &cmds)?;
                }
            }
            // Reap every queue's completions, then check what was read.
            for q in 1..=cli.queues {
                let n = batch.iter().filter(|b| b.0 == q).count();
                for _ in 0..n {
                    let c = d.reap(q)?;
                    if !c.status.is_success() {
                        return Err(AppError::Verify(format!(
                            "command {} on queue {q}: {}",
                            c.cid, c.status
                        )));
                    }
                }
            }
            for (_, slba, len, t) in batch {
                if pass == nvm::READ {
                    let mut got = vec![0u8; len];
                    d.harness()
                        .dma_read(t.data, &mut got)
                        .map_err(DriverError::from)?;
                    for (i, block) in got.chunks_exact(lbs).enumerate() {
                        if block != pattern(slba + i as u64, lbs, seed) {
                            return Err(AppError::Verify(format!(
                                "LBA {} read back wrong",
                                slba + i as u64
                            )));
                        }
                    }
                } else {
                    written += len as u64;
                }
                d.release(t);
            }
        }
    }
    let io_time = t0.elapsed();
    let flush = Command {
        opcode: nvm::FLUSH,
        nsid: 1,
        ..Command::default()
    };
    d.run_ok(1, "Flush", flush)?;
    d.shutdown()?;
    let irqs = d.harness().take_irqs().len();
    let errors = d.harness().device_errors();
    let nvme = d.into_nvme()?;
    let s = nvme.stats();
    println!("pciem-nvme on the mock backend (device thread, MSI-X)");
    println!("  identify            serial {serial:?}, model {model:?}");
    println!(
        "  namespace           {} blocks of {} bytes ({} MiB)",
        cfg.blocks(),
        lbs,
        size >> 20
    );
    println!(
        "  I/O queues          {} of 64 entries, 8 commands in flight each",
        cli.queues
    );
    println!(
        "  pattern             {} MiB written in {} commands, read back and verified",
        written >> 20,
        commands
    );
    println!(
        "  throughput          {:.1} MiB/s (write + read, {} ms)",
        (2 * written) as f64 / (1 << 20) as f64 / io_time.as_secs_f64(),
        io_time.as_millis()
    );
    println!(
        "  controller          {} commands, {} errors, {} interrupts raised ({} still queued at the driver), {} shutdown",
        s.commands, s.errors, s.interrupts, irqs, s.shutdowns
    );
    println!("  host errors         {}", errors.len());
    println!("  total time          {} ms", started.elapsed().as_millis());
    if s.errors != 0 || !errors.is_empty() || s.shutdowns != 1 {
        return Err(AppError::Verify("the controller reported errors".into()));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.backend {
        Backend::Mock => run_mock(&cli),
        Backend::Chardev => run_chardev(&cli),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pciem-nvme: {e}");
            ExitCode::FAILURE
        }
    }
}
