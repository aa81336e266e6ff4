//! AER injection through the virtual root port: Linux's own AER core runs
//! the driver's error handlers.
//!
//! `vmtest-aer AERDRV_KO`. The device (1f0c:7e58, `pciem_aerdrv.ko`: BAR0
//! 4 KiB in the pool, a PCI Express endpoint capability and an AER
//! capability) sits below a root port with a hot-plug slot and AER
//! (`SET_ROOT_PORT` with `PCIEM_ROOT_PORT_AER`). It is modelled by this
//! binary re-executed as `vmtest-aer model`, which injects on command
//! (`aer SEVERITY STATUS`) and counts the reset events it receives.
//!
//! Checked, each step able to fail:
//! 1. bad input: INJECT_AER on a device without a root port is
//!    EOPNOTSUPP; a severity of 3, a zero status, a status bit of the
//!    wrong register, non-zero flags: EINVAL; the driver saw nothing.
//! 2. the port is bound to portdrv and its AER service is enabled (the
//!    kernel's "AER: enabled with IRQ" line).
//! 3. correctable (Receiver Error): the driver's `cor_error_detected` only;
//!    the kernel logs the correctable error from 01:00.0; no reset.
//! 4. non-fatal (Completer Abort, with a header log): error_detected
//!    (normal), mmio_enabled, resume, in that order; the kernel logs the
//!    uncorrected non-fatal error with the TLP header we gave and reports a
//!    successful recovery; no reset; BAR0 still reads.
//! 5. a poisoned DMA read (SET_FAULT DMA_POISON with
//!    PCIEM_FAULT_FLAG_AER, count 1; the same rule on the device without
//!    a port: EOPNOTSUPP): the read fails with EIO, the next succeeds; the
//!    AER core logs a non-fatal status bit 12 (Poisoned TLP Received) with
//!    the completion's header and the driver's handlers run as for any
//!    non-fatal error; no reset.
//! 6. fatal (Malformed TLP): error_detected (frozen), slot_reset, resume,
//!    in that order; the kernel reports the fatal error and resets the
//!    port's link; the port's secondary bus reset reached the model as a
//!    `PCIEM_RESET_BUS` event; the recovery succeeds; BAR0 reads again
//!    (the driver restored the state).
//!
//! Then the kernel log has no BUG/WARNING/Oops line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pciem_abi::{
    pciem_aer_inject, pciem_cap_aer_userspace, pciem_cap_pcie_userspace, pciem_fault_rule,
    PCIEM_AER_CORRECTABLE, PCIEM_AER_FATAL, PCIEM_AER_NONFATAL, PCIEM_BAR_MEM_TYPE_32,
    PCIEM_CAP_AER, PCIEM_CAP_PCIE, PCIEM_EVENT_RESET, PCIEM_FAULT_DMA_POISON, PCIEM_FAULT_FLAG_AER,
    PCIEM_RESET_BUS, PCIEM_ROOT_PORT_AER, PCIEM_ROOT_PORT_HOTPLUG,
};
use pciem_vmtest::klog;
use pciem_vmtest::model_process::CommandInput;
use pciem_vmtest::model_process::ModelProcess;
use pciem_vmtest::sysfs::{self, wait_until};
use pciem_vmtest::{Dev, Report, TEST_VENDOR};
use zerocopy::IntoBytes;

const DEVICE: u16 = 0x7e58;
const AERDRV: &str = "pciem_aerdrv";
/// What the model keeps in BAR0+0x0.
const MAGIC: u32 = 0xAE51_0001;
/// The TLP header logged with the non-fatal error.
const HEADER: [u32; 4] = [0x4000_0001, 0x0100_00ff, 0xfee0_0000, 0x0000_0000];
/// Correctable: Receiver Error.
const COR_RXERR: u32 = 1 << 0;
/// Uncorrectable: Completer Abort (non-fatal by default; a TLP error, so
/// the header log is printed, unlike a Completion Timeout's).
const UNCOR_COMPLETER_ABORT: u32 = 1 << 15;
/// The bus address of the poisoned read: low RAM, read (never written)
/// once the rule is used up.
const POISON_AT: u64 = 0x1000;
/// Uncorrectable: Malformed TLP (fatal by default).
const UNCOR_MALFORMED: u32 = 1 << 18;

fn describe(dev: &Dev, port: bool) -> std::io::Result<()> {
    dev.create()?;
    dev.add_bar(0, 4096, PCIEM_BAR_MEM_TYPE_32)?;
    dev.set_identity(TEST_VENDOR, DEVICE, 0xff_00_00)?;
    let pcie = pciem_cap_pcie_userspace {
        device_type: pciem_abi::PCIEM_PCIE_TYPE_ENDPOINT,
        max_link_speed: 1,
        max_link_width: 1,
        flr: 0,
        max_payload: 0,
        reserved: [0; 3],
    };
    dev.add_cap_raw(PCIEM_CAP_PCIE, pcie.as_bytes())?;
    let aer = pciem_cap_aer_userspace {
        uncor_mask: 0,
        uncor_severity: 0x0006_2030,
        cor_mask: 0x2000,
        reserved: 0,
    };
    dev.add_cap_raw(PCIEM_CAP_AER, aer.as_bytes())?;
    if port {
        dev.set_root_port_flags(PCIEM_ROOT_PORT_HOTPLUG | PCIEM_ROOT_PORT_AER)?;
        // The poisoned-read step reads host memory the driver never
        // mapped: only the fault plan may stop it.
        dev.set_dma_check(pciem_abi::PCIEM_DMA_CHECK_OFF)?;
    }
    Ok(())
}

/// A DMA_POISON rule of count 1 on 8 bytes at `addr`, reported through AER.
const fn poison_rule(addr: u64) -> pciem_fault_rule {
    pciem_fault_rule {
        kind: PCIEM_FAULT_DMA_POISON,
        bar: 0,
        addr,
        len: 8,
        count: 1,
        flags: PCIEM_FAULT_FLAG_AER,
    }
}

fn errno(r: std::io::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn inject(dev: &Dev, severity: u32, status: u32, flags: u32) -> i32 {
    let req = pciem_aer_inject {
        severity,
        status,
        header_log: HEADER,
        flags,
        reserved: 0,
    };
    match dev.inject_aer(&req) {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

// ---- the model (child process) -------------------------------------------

fn model() -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // Without a root port first: INJECT_AER has nowhere to go.
    let bare = Dev::open()?;
    describe(&bare, false)?;
    let _bare_inst = bare.register()?;
    let no_port = inject(&bare, PCIEM_AER_CORRECTABLE, COR_RXERR, 0);
    let no_port_fault = errno(bare.set_fault(&poison_rule(POISON_AT)));
    drop(_bare_inst);
    drop(bare);

    let dev = Dev::open()?;
    let efd = dev.attach_eventfd()?;
    describe(&dev, true)?;
    let inst = dev.register()?;
    let bar = inst.map_bar(0, 4096)?;
    bar.write32(0, MAGIC);
    let ring = dev.map_ring()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "NOPORT {no_port}")?;
    writeln!(out, "NOPORTFAULT {no_port_fault}")?;
    writeln!(out, "OK registered")?;
    out.flush()?;
    let mut bus_resets = 0u64;
    let mut input = CommandInput::default();
    loop {
        while let Some(ev) = ring.pop() {
            if ev.r#type == PCIEM_EVENT_RESET && ev.data == PCIEM_RESET_BUS {
                bus_resets += 1;
                // The reset cleared nothing in BAR memory, but a real
                // device would come back in its initial state: so do we.
                bar.write32(0, MAGIC);
            }
        }
        let Some(cmds) = input.wait(efd.as_raw_fd())? else {
            return Ok(()); // the scenario is done with the model
        };
        for cmd in cmds {
            let w: Vec<u64> = cmd
                .split_whitespace()
                .skip(1)
                .filter_map(sysfs::parse_num)
                .collect();
            let reply = match (cmd.split_whitespace().next(), w.as_slice()) {
                (Some("aer"), [sev, status]) => {
                    format!("AER {}", inject(&dev, *sev as u32, *status as u32, 0))
                }
                (Some("aerflags"), [flags]) => format!(
                    "AER {}",
                    inject(&dev, PCIEM_AER_CORRECTABLE, COR_RXERR, *flags as u32)
                ),
                (Some("resets"), []) => format!("RESETS {bus_resets}"),
                (Some("poison"), []) => {
                    let arm = errno(dev.set_fault(&poison_rule(POISON_AT)));
                    let mut buf = [0u8; 8];
                    let first = errno(dev.dma_read(POISON_AT, &mut buf));
                    let second = errno(dev.dma_read(POISON_AT, &mut buf));
                    format!("POISON {arm} {first} {second}")
                }
                _ => format!("ERR unknown command {cmd}"),
            };
            writeln!(out, "{reply}")?;
            out.flush()?;
        }
    }
}

// ---- the scenario's side -------------------------------------------------

fn events(dev: &Path) -> String {
    sysfs::read_trim(&dev.join("events")).unwrap_or_default()
}

/// Injects one error and waits for the driver's handlers to settle on
/// `want`; returns the kernel log lines it produced.
fn one(
    r: &mut Report,
    m: &mut ModelProcess,
    dev: &Path,
    name: &str,
    severity: u32,
    status: u32,
    want: &str,
) -> Vec<String> {
    println!("--- {name}");
    let from = klog::now();
    let _ = std::fs::write(dev.join("clear"), "1");
    let reply = m.ask(&format!("aer {severity} {status:#x}"), "AER");
    r.check(
        reply.as_deref() == Some("AER 0"),
        format!("INJECT_AER {name} accepted ({reply:?})"),
    );
    let settled = wait_until(Duration::from_secs(10), || events(dev) == want);
    // Nothing more may follow.
    std::thread::sleep(Duration::from_millis(300));
    let got = events(dev);
    r.check(
        settled && got == want,
        format!("{name}: the driver's handlers ran as \"{want}\" (got \"{got}\")"),
    );
    let lines: Vec<String> = klog::since(from);
    for l in lines.iter().filter(|l| {
        l.contains("AER") || l.contains("aer") || l.contains("reset") || l.contains("error handler")
    }) {
        println!("INFO: klog: {l}");
    }
    lines
}

/// A poisoned DMA read reported through AER (SET_FAULT with
/// PCIEM_FAULT_FLAG_AER): the read fails with EIO, the AER core logs a
/// non-fatal Poisoned TLP with its header and runs the driver's handlers;
/// count 1, so the next read succeeds.
fn poisoned(r: &mut Report, m: &mut ModelProcess, dev: &Path) {
    println!("--- a poisoned DMA read, reported through AER");
    let from = klog::now();
    let _ = std::fs::write(dev.join("clear"), "1");
    let reply = m.ask("poison", "POISON");
    r.check(
        reply.as_deref() == Some(&format!("POISON 0 {} 0", libc::EIO)),
        format!(
            "SET_FAULT DMA_POISON with AER accepted, the DMA read fails with EIO, the next succeeds ({reply:?})"
        ),
    );
    let want = "detected:1 mmio resume";
    let settled = wait_until(Duration::from_secs(10), || events(dev) == want);
    std::thread::sleep(Duration::from_millis(300));
    let got = events(dev);
    r.check(
        settled && got == want,
        format!("poisoned read: the driver's handlers ran as \"{want}\" (got \"{got}\")"),
    );
    let log: Vec<String> = klog::since(from);
    for l in log.iter().filter(|l| {
        l.contains("AER")
            || l.contains("poison")
            || l.contains("error handler")
            || l.contains("TLP")
            || l.contains("status/mask")
    }) {
        println!("INFO: klog: {l}");
    }
    r.check(
        log.iter()
            .any(|l| l.contains("poisoned by a fault rule (EIO)")),
        "pciem logged the poisoned read",
    );
    // Linux 6.12 names Uncorrectable Error Status bit 12 (Poisoned TLP
    // Received) just "TLP".
    r.check(
        log.iter().any(|l| l.contains("error status/mask=00001000"))
            && log.iter().any(|l| l.contains("[12] TLP")),
        "the AER core reports status bit 12, Poisoned TLP Received (\"[12] TLP\")",
    );
    r.check(
        log.iter().any(|l| l.contains("4a004002 00000008 01000000")),
        "with the completion's header (CplD with EP, 8 bytes, to 01:00.0)",
    );
    r.check(
        log.iter()
            .any(|l| l.to_lowercase().contains("device recovery successful")),
        "the recovery succeeded",
    );
    r.check(
        m.ask("resets", "RESETS").as_deref() == Some("RESETS 0"),
        "no reset for the non-fatal poisoned read",
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("model") {
        let code = match model() {
            Ok(()) => 0,
            Err(e) => {
                println!("ERR {e}");
                1
            }
        };
        std::process::exit(code);
    }
    let mut r = Report::new("aer");
    let Some(ko) = args.first() else {
        r.check(false, "usage: vmtest-aer AERDRV_KO");
        r.finish()
    };
    let (ok, out) = sysfs::run("insmod", &[ko]);
    r.check(ok, format!("insmod {ko} {out}"));
    let from = klog::now();
    let Some(mut m) = r.step("spawn the model", ModelProcess::spawn_self(&[])) else {
        r.finish()
    };
    let no_port = m.expect("NOPORT");
    r.check(
        no_port.as_deref() == Some(&format!("NOPORT {}", libc::EOPNOTSUPP)),
        format!("INJECT_AER without a root port: EOPNOTSUPP ({no_port:?})"),
    );
    let no_port_fault = m.expect("NOPORTFAULT");
    r.check(
        no_port_fault.as_deref() == Some(&format!("NOPORTFAULT {}", libc::EOPNOTSUPP)),
        format!("SET_FAULT with PCIEM_FAULT_FLAG_AER without a root port: EOPNOTSUPP ({no_port_fault:?})"),
    );
    if !r.check(m.expect("OK registered").is_some(), "the model registered") {
        let _ = m.kid.kill();
        r.finish()
    }
    let dev: Option<PathBuf> = sysfs::wait_device(TEST_VENDOR, DEVICE, Duration::from_secs(5));
    let bound = dev.as_ref().is_some_and(|d| {
        wait_until(Duration::from_secs(10), || {
            sysfs::driver_of(d).as_deref() == Some(AERDRV) && d.join("events").exists()
        })
    });
    let Some(dev) = dev.filter(|_| bound) else {
        r.check(false, "pciem_aerdrv bound to 1f0c:7e58");
        let _ = m.kid.kill();
        r.finish()
    };
    r.check(
        true,
        format!("pciem_aerdrv bound to {}", sysfs::pci_name(&dev)),
    );
    let port = std::fs::canonicalize(&dev)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    r.check(
        sysfs::driver_of(&port).as_deref() == Some("pcieport"),
        format!("portdrv bound to the root port {}", sysfs::pci_name(&port)),
    );
    let boot: Vec<String> = klog::since(from);
    for l in boot.iter().filter(|l| l.contains("pcieport")) {
        println!("INFO: klog: {l}");
    }
    r.check(
        boot.iter()
            .any(|l| l.contains("pcieport") && l.contains("AER: enabled with IRQ")),
        "the AER service of the port is enabled",
    );
    r.check(
        sysfs::read_hex(&dev.join("reg")) == Some(u64::from(MAGIC)),
        "BAR0 reads the model's value",
    );

    // Bad input: refused, nothing reaches the driver.
    for (cmd, what) in [
        ("aer 3 0x1", "severity 3"),
        ("aer 0 0x0", "a zero status"),
        ("aer 1 0x1", "a correctable bit as an uncorrectable error"),
        (
            "aer 0 0x4000",
            "an uncorrectable bit as a correctable error",
        ),
        ("aerflags 1", "non-zero flags"),
    ] {
        let reply = m.ask(cmd, "AER");
        r.check(
            reply.as_deref() == Some(&format!("AER {}", libc::EINVAL)),
            format!("INJECT_AER with {what}: EINVAL ({reply:?})"),
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    r.check(events(&dev).is_empty(), "the driver saw nothing of them");

    let log = one(
        &mut r,
        &mut m,
        &dev,
        "correctable",
        PCIEM_AER_CORRECTABLE,
        COR_RXERR,
        "cor",
    );
    r.check(
        log.iter().any(|l| {
            l.contains("Correctable error message received from") && l.contains(":01:00.0")
        }),
        "the kernel logs the correctable error from 01:00.0",
    );
    r.check(
        log.iter().any(|l| l.contains("RxErr")),
        "and names it (RxErr)",
    );

    let log = one(
        &mut r,
        &mut m,
        &dev,
        "non-fatal",
        PCIEM_AER_NONFATAL,
        UNCOR_COMPLETER_ABORT,
        "detected:1 mmio resume",
    );
    r.check(
        log.iter().any(|l| {
            l.contains("Uncorrectable (Non-Fatal) error message received from")
                || l.contains("Uncorrected (Non-Fatal) error message received from")
        }),
        "the kernel logs the non-fatal error",
    );
    r.check(
        log.iter().any(|l| l.contains("CmpltAbrt")),
        "and names it (CmpltAbrt)",
    );
    r.check(
        log.iter().any(|l| l.contains("40000001 010000ff fee00000")),
        "with the TLP header we gave",
    );
    r.check(
        log.iter()
            .any(|l| l.to_lowercase().contains("device recovery successful")),
        "the recovery succeeded",
    );
    r.check(
        m.ask("resets", "RESETS").as_deref() == Some("RESETS 0"),
        "no reset for a non-fatal error",
    );
    r.check(
        sysfs::read_hex(&dev.join("reg")) == Some(u64::from(MAGIC)),
        "BAR0 still reads",
    );

    poisoned(&mut r, &mut m, &dev);

    let log = one(
        &mut r,
        &mut m,
        &dev,
        "fatal",
        PCIEM_AER_FATAL,
        UNCOR_MALFORMED,
        "detected:2 reset resume",
    );
    r.check(
        log.iter()
            .any(|l| l.contains("Fatal) error message received from")),
        "the kernel logs the fatal error",
    );
    // The AER core does not read an endpoint's registers after a fatal
    // error (the link is suspect): it says so instead of naming the bit.
    r.check(
        log.iter()
            .any(|l| l.contains("PCIe Bus Error") && l.contains("Fatal")),
        "the kernel reports the fatal bus error",
    );
    r.check(
        log.iter()
            .any(|l| l.contains("Port link has been reset (0)")),
        "the AER core reset the port's link",
    );
    r.check(
        log.iter()
            .any(|l| l.to_lowercase().contains("device recovery successful")),
        "the recovery succeeded",
    );
    let resets = m.ask("resets", "RESETS");
    r.check(
        resets.as_deref() == Some("RESETS 1"),
        format!("the port's secondary bus reset reached the model once ({resets:?})"),
    );
    r.check(
        sysfs::read_hex(&dev.join("reg")) == Some(u64::from(MAGIC)),
        "BAR0 reads again after the reset (the driver restored its state)",
    );
    r.check(
        sysfs::driver_of(&dev).as_deref() == Some(AERDRV),
        "the driver is still bound",
    );

    r.check(m.finish(), "the model exited cleanly");
    r.check(
        wait_until(Duration::from_secs(5), || !dev.exists()),
        "the device left with its files",
    );
    let (ok, out) = sysfs::run("rmmod", &[AERDRV]);
    r.check(ok, format!("rmmod {AERDRV} {out}"));
    r.check_klog_clean();
    r.finish()
}
