//! Linux's nvme driver when the Rust controller's process fails.
//!
//! `vmtest-nvme-faults MODEL-BIN QEMU-SERIAL`:
//!
//! 1. `kill -9` of the model with ext4 mounted on its namespace and fio
//!    writing through it at queue depth 16: the device goes away (pciem
//!    removes it when its file is closed), the driver lets go of it, the
//!    I/O in flight fails with errors, fio ends, `umount` completes, and
//!    `rmmod nvme` / `insmod nvme` complete (QEMU's controller, bound to the
//!    same driver, comes back).
//! 2. `SIGSTOP` of the model under fio reads: the driver's I/O timeout
//!    fires (`nvme_core.io_timeout` set to a few seconds for the test), it
//!    reads CSTS, which a stopped model cannot answer (pciem completes the
//!    read all-ones after its trap read timeout, as a PCIe completion
//!    timeout would), so it judges the controller dead, its reset fails and
//!    it disables the controller (state `dead`, namespaces dead, the driver
//!    still bound): the end Linux 6.12 reaches when real hardware stops
//!    answering. fio ends with errors and new I/O fails at once; after
//!    `SIGCONT` and `SIGTERM` the model exits and the function and the
//!    dead controller are removed.
//!
//! 3. A poisoned DMA read (run first): the model is started with
//!    `--poison-write-lba 8`, so the controller arms a SET_FAULT DMA_POISON
//!    rule of count 1 on the first Write at LBA 8 before it reads the data;
//!    pciem fails that DMA read with EIO, the model completes the command
//!    with Data Transfer Error (Do Not Retry), and a direct-I/O `pwrite` of
//!    4 KiB at byte 4096 of the namespace fails with EIO; the same write
//!    again succeeds and reads back; the controller stays live.
//! 4. Hot-plug (second): the vendor admin command 0xC1 of pciem-nvme
//!    (`nvme admin-passthru`) makes the controller surprise-remove itself
//!    after 300 ms and reinsert itself 1.5 s later (`Host::reinsert`):
//!    Linux's nvme driver lets go of the controller, then probes the
//!    reinserted one as new hardware (admin queue, interrupts, DMA); a
//!    block written before the removal reads back through the new
//!    controller, and a new write reads back.
//!
//! Throughout, nothing oopses, warns or hangs (`klog::BAD`); the
//! deliberate error lines are shown as `INFO:`.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pciem_vmtest::klog;
use pciem_vmtest::nvme::{
    matching, mount_backing_tmpfs, wait_ctrl, wait_ctrl_gone, Ctrl, Model, BACKING_DIR,
    MODEL_SERIAL, MOUNT_DIR, NVME_BAD,
};
use pciem_vmtest::sysfs::{driver_of, read_trim, run, wait_until};
use pciem_vmtest::trapdrv::TrapStats;
use pciem_vmtest::Report;

const DISK_BYTES: u64 = 128 << 20;
const APPEAR: Duration = Duration::from_secs(60);
/// `nvme_core.io_timeout` and `admin_timeout` during the test, in seconds
/// (30 and 60 by default: too long for a TCG run).
const TIMEOUT_S: u32 = 4;
/// Where `/init` put the decompressed modules.
const MODULE_DIR: &str = "/nvme-modules";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin, qemu_serial] = &args[..] else {
        eprintln!("usage: vmtest-nvme-faults MODEL-BIN QEMU-SERIAL");
        std::process::exit(2)
    };
    let mut r = Report::new("nvme-faults");
    let params = Path::new("/sys/module/nvme_core/parameters");
    let old: Vec<(&str, String)> = ["io_timeout", "admin_timeout"]
        .into_iter()
        .map(|p| (p, read_trim(&params.join(p)).unwrap_or_default()))
        .collect();
    for (p, _) in &old {
        r.step(
            format!("nvme_core.{p} = {TIMEOUT_S} s for this test"),
            std::fs::write(params.join(p), TIMEOUT_S.to_string()),
        );
    }
    if r.step(
        "mount a tmpfs for the backing files",
        mount_backing_tmpfs(512),
    )
    .is_some()
    {
        poisoned(&mut r, bin);
        hotplug(&mut r, bin);
        killed(&mut r, bin, qemu_serial);
        stopped(&mut r, bin);
    }
    for (p, v) in &old {
        if !v.is_empty() {
            let _ = std::fs::write(params.join(p), v);
        }
    }
    r.check_klog_clean();
    r.finish()
}

/// fio in the background: `args` plus a long time-based run.
fn fio_background(args: &[&str]) -> std::io::Result<Child> {
    Command::new("fio")
        .args(args)
        .args([
            "--direct=1",
            "--ioengine=libaio",
            "--time_based=1",
            "--runtime=120",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Waits up to `timeout` for `child` to exit: its status and output.
fn wait_child(child: Child, timeout: Duration) -> Option<(std::process::ExitStatus, String)> {
    let (tx, rx) = mpsc::channel();
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(o)) => {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            Some((o.status, s))
        }
        _ => {
            // SAFETY: kill(2) of our own child, still unreaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            None
        }
    }
}

/// Runs `f` on a thread, up to `timeout`: `None` if it did not return
/// (a hang; the thread is left behind).
fn bounded<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(timeout).ok()
}

fn umount_now() -> Result<(), String> {
    let path = CString::new(MOUNT_DIR).expect("no NUL");
    // SAFETY: umount(2) with a NUL-terminated path we own.
    if unsafe { libc::umount(path.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

/// The block device's completed I/O count (reads + writes, from `stat`).
fn ios_done(c: &Ctrl) -> u64 {
    let stat = read_trim(&Path::new("/sys/block").join(&c.disk).join("stat")).unwrap_or_default();
    let f: Vec<u64> = stat
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    f.first().copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0)
}

/// Prints the log lines since `since` that mention the device or its I/O.
fn show_log(since: f64, what: &str) -> Vec<String> {
    let lines = klog::since(since);
    for l in lines
        .iter()
        .filter(|l| {
            ["nvme", "EXT4", "I/O", "pciem", "Buffer"]
                .iter()
                .any(|p| l.contains(p))
        })
        .take(40)
    {
        println!("INFO: klog ({what}): {l}");
    }
    lines
}

/// Until the fault, the bring-up and I/O were clean.
fn clean_so_far(r: &mut Report, since: f64, what: &str) {
    let bad = matching(&klog::since(since), NVME_BAD);
    r.check(
        bad.is_empty(),
        format!("{what}: no error, timeout or reset in the log before the fault: {bad:?}"),
    );
}

fn killed(r: &mut Report, bin: &str, qemu_serial: &str) {
    let since = klog::now();
    let disk = Path::new(BACKING_DIR).join("faults-kill.img");
    let _ = std::fs::remove_file(&disk);
    let Some(mut m) = r.step(
        "kill -9: start the model",
        Model::start(
            bin,
            &disk,
            DISK_BYTES,
            512,
            Path::new("/tmp/pciem-nvme-kill.log"),
        ),
    ) else {
        return;
    };
    let Some(c) = r.step(
        "kill -9: the controller appears",
        wait_ctrl(MODEL_SERIAL, APPEAR).ok_or("not found"),
    ) else {
        m.show_output("model");
        return;
    };
    let (ok, out) = run("mkfs.ext4", &["-q", "-F", &c.dev()]);
    r.check(
        ok,
        format!("kill -9: mkfs.ext4 {}: {}", c.dev(), out.trim()),
    );
    let _ = std::fs::create_dir_all(MOUNT_DIR);
    let (ok, out) = run("mount", &["-t", "ext4", &c.dev(), MOUNT_DIR]);
    if !r.check(ok, format!("kill -9: mount {}: {}", c.dev(), out.trim())) {
        return;
    }
    let dir = format!("--directory={MOUNT_DIR}");
    let Some(fio) = r.step(
        "kill -9: fio randwrite QD16 through ext4 in the background",
        fio_background(&[
            "--name=inflight",
            &dir,
            "--size=32M",
            "--rw=randwrite",
            "--bs=4k",
            "--iodepth=16",
        ]),
    ) else {
        return;
    };
    let start = ios_done(&c);
    let flowing = wait_until(Duration::from_secs(30), || ios_done(&c) > start + 200);
    r.check(
        flowing,
        format!(
            "kill -9: I/O is flowing ({} I/Os completed)",
            ios_done(&c) - start
        ),
    );
    clean_so_far(r, since, "kill -9");
    r.check(
        m.signal(libc::SIGKILL),
        "kill -9 of the model with I/O in flight",
    );
    let t = Instant::now();
    let st = m.wait_exit(Duration::from_secs(60));
    r.check(
        st.is_some(),
        format!("kill -9: the model process is gone: {st:?}"),
    );
    r.check(
        wait_ctrl_gone(MODEL_SERIAL, Duration::from_secs(60)),
        format!(
            "kill -9: the driver lets go of the controller ({:.1} s)",
            t.elapsed().as_secs_f64()
        ),
    );
    match wait_child(fio, Duration::from_secs(60)) {
        Some((st, out)) => {
            let tail: Vec<&str> = out.lines().filter(|l| l.contains("err")).take(3).collect();
            r.check(
                !st.success(),
                format!("kill -9: fio ends with an error ({st}): {tail:?}"),
            );
        }
        None => {
            r.check(false, "kill -9: fio ends within 60 s (it hung; killed)");
        }
    }
    let u = bounded(Duration::from_secs(60), umount_now);
    r.check(
        matches!(u, Some(Ok(()))),
        format!("kill -9: umount completes: {u:?}"),
    );
    let lines = show_log(since, "kill -9");
    r.check(
        lines
            .iter()
            .any(|l| l.contains("I/O error") || l.contains("EXT4-fs")),
        "kill -9: the kernel log shows the I/O failing (I/O error or ext4 lines)",
    );
    // rmmod/insmod of the driver with QEMU's controller still bound to it.
    let (ok, out) = run("rmmod", &["nvme"]);
    r.check(ok, format!("rmmod nvme: {}", out.trim()));
    r.check(
        wait_ctrl_gone(qemu_serial, Duration::from_secs(10)),
        "QEMU's controller is released by rmmod",
    );
    let (ok, out) = run("insmod", &[&format!("{MODULE_DIR}/nvme.ko")]);
    r.check(ok, format!("insmod nvme.ko again: {}", out.trim()));
    r.check(
        wait_ctrl(qemu_serial, APPEAR).is_some(),
        "QEMU's controller is bound again",
    );
}

fn stopped(r: &mut Report, bin: &str) {
    let since = klog::now();
    let disk = Path::new(BACKING_DIR).join("faults-stop.img");
    let _ = std::fs::remove_file(&disk);
    let Some(mut m) = r.step(
        "SIGSTOP: start the model",
        Model::start(
            bin,
            &disk,
            DISK_BYTES,
            512,
            Path::new("/tmp/pciem-nvme-stop.log"),
        ),
    ) else {
        return;
    };
    let Some(c) = r.step(
        "SIGSTOP: the controller appears",
        wait_ctrl(MODEL_SERIAL, APPEAR).ok_or("not found"),
    ) else {
        m.show_output("model");
        return;
    };
    let pci: PathBuf = std::fs::canonicalize(c.sys().join("device")).unwrap_or_default();
    let before = TrapStats::read(&pci).unwrap_or_default();
    let dev = format!("--filename={}", c.dev());
    let Some(fio) = r.step(
        "SIGSTOP: fio randread QD4 on the namespace in the background",
        fio_background(&[
            "--name=stopped",
            &dev,
            "--size=64M",
            "--rw=randread",
            "--bs=4k",
            "--iodepth=4",
        ]),
    ) else {
        return;
    };
    let start = ios_done(&c);
    let flowing = wait_until(Duration::from_secs(30), || ios_done(&c) > start + 200);
    r.check(flowing, "SIGSTOP: I/O is flowing");
    clean_so_far(r, since, "SIGSTOP");
    r.check(
        m.signal(libc::SIGSTOP),
        "SIGSTOP of the model with I/O in flight",
    );
    let t = Instant::now();
    // The I/O timeout, the CSTS read timing out, the failed reset: 6.12
    // marks the controller dead and its namespaces dead and keeps the
    // driver bound (it no longer removes the function itself), as it would
    // for a real controller that stopped answering.
    let dead = wait_until(Duration::from_secs(90), || c.attr("state") == "dead");
    r.check(
        dead,
        format!(
            "SIGSTOP: the driver times out, its reset fails and the controller is dead ({:.1} s, state {:?})",
            t.elapsed().as_secs_f64(),
            c.attr("state")
        ),
    );
    match wait_child(fio, Duration::from_secs(60)) {
        Some((st, _)) => {
            r.check(
                !st.success(),
                format!("SIGSTOP: fio ends with an error ({st})"),
            );
        }
        None => {
            r.check(false, "SIGSTOP: fio ends within 60 s (it hung; killed)");
        }
    }
    // New I/O to the dead namespace fails at once.
    let t = Instant::now();
    let read = bounded(Duration::from_secs(30), {
        let dev = c.dev();
        move || {
            use std::io::Read;
            let mut f = std::fs::File::open(&dev)?;
            let mut buf = vec![0u8; 4096];
            f.read(&mut buf)
        }
    });
    r.check(
        matches!(read, Some(Ok(0)) | Some(Err(_))),
        format!(
            "SIGSTOP: a read of the dead namespace fails or finds no capacity: {read:?} in {:.2} s",
            t.elapsed().as_secs_f64()
        ),
    );
    let after = TrapStats::read(&pci).unwrap_or_default();
    r.check(
        after.read_timeouts > before.read_timeouts,
        format!(
            "SIGSTOP: the driver's reads of the stopped model timed out in pciem ({} read timeouts)",
            after.read_timeouts - before.read_timeouts
        ),
    );
    r.check(
        pci.exists() && driver_of(&pci).as_deref() == Some("nvme"),
        format!(
            "SIGSTOP: the PCI function is still there with the driver holding the dead controller ({:?})",
            driver_of(&pci)
        ),
    );
    let lines = show_log(since, "SIGSTOP");
    // In order: the driver's timeout handler reads CSTS, pciem completes
    // it all-ones, the driver calls the controller down and resets it, the
    // reset finds CSTS all-ones again and gives up.
    let has = |p: &str| lines.iter().any(|l| l.contains(p));
    for (pat, what) in [
        (
            "from nvme_timeout",
            "the I/O timeout handler read CSTS and pciem timed the read out",
        ),
        (
            "controller is down; will reset",
            "the driver calls the controller down and resets it",
        ),
        (
            "Disabling device after reset failure",
            "the reset fails and the driver disables the controller",
        ),
    ] {
        r.check(has(pat), format!("SIGSTOP: kernel log: {what} ({pat:?})"));
    }
    r.check(m.signal(libc::SIGCONT), "SIGCONT of the model");
    r.check(m.signal(libc::SIGTERM), "SIGTERM of the model");
    let st = m.wait_exit(Duration::from_secs(30));
    r.check(
        st.is_some(),
        format!("SIGSTOP: the model exits after SIGCONT+SIGTERM: {st:?}"),
    );
    r.check(
        wait_until(Duration::from_secs(30), || !pci.exists()),
        "SIGSTOP: the PCI function is removed with the model",
    );
    r.check(
        wait_ctrl_gone(MODEL_SERIAL, Duration::from_secs(10)),
        "SIGSTOP: and the dead controller with it",
    );
    if st.is_none() {
        m.show_output("model");
    }
}

/// A 4 KiB aligned buffer for direct I/O.
struct Aligned(*mut u8);

impl Aligned {
    const LAYOUT: std::alloc::Layout = match std::alloc::Layout::from_size_align(4096, 4096) {
        Ok(l) => l,
        Err(_) => panic!("4096 is a power of two"),
    };

    fn new(fill: &[u8]) -> Self {
        // SAFETY: a non-zero-sized layout; checked for NULL below.
        let p = unsafe { std::alloc::alloc_zeroed(Self::LAYOUT) };
        if p.is_null() {
            std::alloc::handle_alloc_error(Self::LAYOUT);
        }
        let mut a = Aligned(p);
        let n = fill.len().min(4096);
        a.bytes_mut()[..n].copy_from_slice(&fill[..n]);
        a
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: 4096 bytes we allocated and own exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.0, 4096) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated by `new` with the same layout.
        unsafe { std::alloc::dealloc(self.0, Self::LAYOUT) };
    }
}

/// One direct-I/O transfer of 4 KiB at byte `offset` of `dev`.
fn direct_io(dev: &str, offset: i64, buf: &mut Aligned, write: bool) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(dev)?;
    // SAFETY: the buffer holds 4096 bytes for the call's duration; the fd
    // is open.
    let n = unsafe {
        if write {
            libc::pwrite(f.as_raw_fd(), buf.0.cast(), 4096, offset)
        } else {
            libc::pread(f.as_raw_fd(), buf.0.cast(), 4096, offset)
        }
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn poisoned(r: &mut Report, bin: &str) {
    let since = klog::now();
    let disk = Path::new(BACKING_DIR).join("faults-poison.img");
    let _ = std::fs::remove_file(&disk);
    let Some(mut m) = r.step(
        "poisoned DMA: start the model with --poison-write-lba 8",
        Model::start_with(
            bin,
            &disk,
            DISK_BYTES,
            512,
            Path::new("/tmp/pciem-nvme-poison.log"),
            &["--poison-write-lba", "8"],
        ),
    ) else {
        return;
    };
    let Some(c) = r.step(
        "poisoned DMA: the controller appears",
        wait_ctrl(MODEL_SERIAL, APPEAR).ok_or("not found"),
    ) else {
        m.show_output("model");
        return;
    };
    clean_so_far(r, since, "poisoned DMA");
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 31 + 7) as u8).collect();
    let mut buf = Aligned::new(&data);
    let first = direct_io(&c.dev(), 4096, &mut buf, true);
    r.check(
        first
            .as_ref()
            .is_err_and(|e| e.raw_os_error() == Some(libc::EIO)),
        format!(
            "poisoned DMA: a direct-I/O write of 4 KiB at LBA 8 of {} fails with EIO ({first:?})",
            c.dev()
        ),
    );
    let second = direct_io(&c.dev(), 4096, &mut buf, true);
    r.check(
        matches!(second, Ok(4096)),
        format!("poisoned DMA: the same write again succeeds (count 1) ({second:?})"),
    );
    let mut back = Aligned::new(&[]);
    let read = direct_io(&c.dev(), 4096, &mut back, false);
    r.check(
        matches!(read, Ok(4096)) && back.bytes_mut()[..] == data[..],
        format!("poisoned DMA: LBA 8 reads back what the second write wrote ({read:?})"),
    );
    r.check(
        c.attr("state") == "live",
        format!(
            "poisoned DMA: the controller stays live ({:?})",
            c.attr("state")
        ),
    );
    let lines = show_log(since, "poisoned DMA");
    let has = |p: &[&str]| lines.iter().any(|l| p.iter().all(|x| l.contains(x)));
    r.check(
        has(&["DMA_INDIRECT", "poisoned by a fault rule (EIO)"]),
        "poisoned DMA: kernel log: pciem failed the model's DMA read as poisoned",
    );
    r.check(
        has(&["I/O error", &c.disk, "sector 8"]),
        format!(
            "poisoned DMA: kernel log: the block layer reports the write's I/O error on {} sector 8",
            c.disk
        ),
    );
    r.check(
        m.signal(libc::SIGTERM),
        "poisoned DMA: SIGTERM of the model",
    );
    let st = m.wait_exit(Duration::from_secs(30));
    r.check(
        st.is_some_and(|s| s.success()),
        format!("poisoned DMA: the model exits cleanly: {st:?}"),
    );
    r.check(
        wait_ctrl_gone(MODEL_SERIAL, Duration::from_secs(30)),
        "poisoned DMA: the controller is removed with the model",
    );
    if st.is_none() {
        m.show_output("model");
    }
}

fn hotplug(r: &mut Report, bin: &str) {
    let since = klog::now();
    let disk = Path::new(BACKING_DIR).join("faults-hotplug.img");
    let _ = std::fs::remove_file(&disk);
    let Some(mut m) = r.step(
        "hot-plug: start the model",
        Model::start(
            bin,
            &disk,
            DISK_BYTES,
            512,
            Path::new("/tmp/pciem-nvme-hotplug.log"),
        ),
    ) else {
        return;
    };
    let Some(c) = r.step(
        "hot-plug: the controller appears",
        wait_ctrl(MODEL_SERIAL, APPEAR).ok_or("not found"),
    ) else {
        m.show_output("model");
        return;
    };
    let before: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 1) as u8).collect();
    let mut buf = Aligned::new(&before);
    let w = direct_io(&c.dev(), 0, &mut buf, true);
    r.check(
        matches!(w, Ok(4096)),
        format!("hot-plug: a block written before the removal ({w:?})"),
    );
    let (ok, out) = run(
        "nvme",
        &[
            "admin-passthru",
            &c.char_dev(),
            "--opcode=0xc1",
            "--cdw10=300",
            "--cdw11=1500",
        ],
    );
    r.check(
        ok,
        format!(
            "hot-plug: nvme admin-passthru of the vendor command 0xC1 (remove in 300 ms, back 1.5 s later): {}",
            out.trim()
        ),
    );
    let t = Instant::now();
    r.check(
        wait_ctrl_gone(MODEL_SERIAL, Duration::from_secs(30)),
        format!(
            "hot-plug: the driver lets go of the removed controller ({:.1} s)",
            t.elapsed().as_secs_f64()
        ),
    );
    let back = wait_ctrl(MODEL_SERIAL, APPEAR);
    let Some(c2) = back else {
        r.check(false, "hot-plug: the reinserted controller is probed again");
        show_log(since, "hot-plug");
        m.show_output("model");
        return;
    };
    r.check(
        true,
        format!(
            "hot-plug: the reinserted controller is probed again as {} ({:.1} s after the command)",
            c2.name,
            t.elapsed().as_secs_f64()
        ),
    );
    r.check(
        wait_until(Duration::from_secs(30), || c2.attr("state") == "live"),
        format!("hot-plug: it is live ({:?})", c2.attr("state")),
    );
    let mut back = Aligned::new(&[]);
    let rd = direct_io(&c2.dev(), 0, &mut back, false);
    r.check(
        matches!(rd, Ok(4096)) && back.bytes_mut()[..] == before[..],
        format!("hot-plug: the block written before the removal reads back ({rd:?})"),
    );
    let after: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut buf = Aligned::new(&after);
    let w = direct_io(&c2.dev(), 8192, &mut buf, true);
    let mut back = Aligned::new(&[]);
    let rd = direct_io(&c2.dev(), 8192, &mut back, false);
    r.check(
        matches!(w, Ok(4096)) && matches!(rd, Ok(4096)) && back.bytes_mut()[..] == after[..],
        format!("hot-plug: a new write reads back ({w:?}, {rd:?})"),
    );
    let lines = show_log(since, "hot-plug");
    let has = |p: &str| lines.iter().any(|l| l.contains(p));
    r.check(
        has("surprise removal requested")
            && has("reinsertion requested")
            && has("reinserted: BARs claimed"),
        "hot-plug: kernel log: removal, reinsertion, the new pci_dev adopted",
    );
    r.check(m.signal(libc::SIGTERM), "hot-plug: SIGTERM of the model");
    let st = m.wait_exit(Duration::from_secs(30));
    r.check(
        st.is_some_and(|s| s.success()),
        format!("hot-plug: the model exits cleanly: {st:?}"),
    );
    r.check(
        wait_ctrl_gone(MODEL_SERIAL, Duration::from_secs(30)),
        "hot-plug: the controller is removed with the model",
    );
    if st.is_none() {
        m.show_output("model");
    }
}
