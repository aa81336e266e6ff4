//! Linux's own nvme driver against an NVMe controller, judged with real
//! tools: `nvme id-ctrl`, `mkfs.ext4`, a mounted filesystem filled with
//! files of known content, `fstrim`, and fio's crc32c data verification.
//!
//! `vmtest-nvme qemu SERIAL BYTES`: against QEMU's built-in controller
//! (the control: proves the tool chain in this guest).
//!
//! `vmtest-nvme pciem MODEL-BIN [4096]`: against the Rust controller (512-
//! or 4096-byte logical blocks), the
//! `pciem-nvme` device process started on a backing file in a tmpfs; in
//! the middle the model is stopped gracefully (SIGTERM) and a new process
//! is started on the same file, and every file's checksum is compared
//! again.
//!
//! The same controllers side by side under fio: `vmtest-nvme-bench`.

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use pciem_vmtest::klog;
use pciem_vmtest::nvme::{
    self, allocated_bytes, fio, fio_job, matching, read_known, sync_and_drop_caches, wait_ctrl,
    wait_ctrl_gone, write_known, Ctrl, Known, Model, BACKING_DIR, MODEL_NAME, MODEL_SERIAL,
    MOUNT_DIR, NVME_BAD,
};
use pciem_vmtest::sysfs::run;
use pciem_vmtest::Report;

/// Size of the model's namespace.
const DISK_BYTES: u64 = 256 << 20;
/// Bytes of known content written through the filesystem.
const KNOWN_BYTES: u64 = 64 << 20;
/// A file written and deleted before `fstrim`, whose blocks the trim must
/// give back.
const SCRATCH_BYTES: u64 = 16 << 20;
/// How long a controller may take to appear (probe under TCG).
const APPEAR: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["qemu", serial, bytes] => {
            let mut r = Report::new("nvme (QEMU's controller)");
            qemu(&mut r, serial, bytes.parse().unwrap_or(0));
            r.finish()
        }
        ["pciem", bin] => {
            let mut r = Report::new("nvme (Rust controller)");
            pciem(&mut r, bin, 512);
            r.finish()
        }
        ["pciem", bin, "4096"] => {
            let mut r = Report::new("nvme (Rust controller, 4 KiB blocks)");
            pciem(&mut r, bin, 4096);
            r.finish()
        }
        _ => {
            eprintln!("usage: vmtest-nvme qemu SERIAL BYTES | pciem MODEL-BIN [4096]");
            std::process::exit(2)
        }
    }
}

/// The control: the tool chain against QEMU's controller.
fn qemu(r: &mut Report, serial: &str, bytes: u64) {
    let since = klog::now();
    let Some(c) = r.step(
        format!("QEMU's controller (serial {serial}) has a namespace"),
        wait_ctrl(serial, APPEAR).ok_or("not found in /sys/class/nvme"),
    ) else {
        return;
    };
    identity(r, &c, serial, "QEMU NVMe Ctrl", bytes, 512);
    if let Some(known) = fill_and_verify(r, &c, None) {
        if mount(r, &c) {
            verify(r, &known, "again, from a fresh mount");
            umount(r);
        }
    }
    fio_verify(r, &c);
    log_clean(r, since);
}

/// The Rust controller, with a graceful stop and a restart in the middle.
fn pciem(r: &mut Report, bin: &str, lba: u32) {
    let since = klog::now();
    if r.step(
        "mount a tmpfs for the backing file",
        nvme::mount_backing_tmpfs(512),
    )
    .is_none()
    {
        return;
    }
    let disk = Path::new(BACKING_DIR).join("disk.img");
    let _ = std::fs::remove_file(&disk);
    let Some(mut m) = r.step(
        "start the model: pciem-nvme --backend chardev",
        Model::start(
            bin,
            &disk,
            DISK_BYTES,
            lba,
            Path::new("/tmp/pciem-nvme-1.log"),
        ),
    ) else {
        return;
    };
    let Some(c) = r.step(
        format!("the nvme driver binds and /dev/nvmeXn1 appears with serial {MODEL_SERIAL}"),
        wait_ctrl(MODEL_SERIAL, APPEAR).ok_or("not found in /sys/class/nvme"),
    ) else {
        m.show_output("model");
        return;
    };
    println!(
        "INFO: the Rust controller is {} with disk {}",
        c.name,
        c.dev()
    );
    identity(r, &c, MODEL_SERIAL, MODEL_NAME, DISK_BYTES, lba.into());
    r.check(
        allocated_bytes(&disk).is_some_and(|a| a < DISK_BYTES),
        format!(
            "the backing file is sparse: {:?} of {DISK_BYTES} bytes allocated",
            allocated_bytes(&disk)
        ),
    );
    let Some(known) = fill_and_verify(r, &c, Some(&disk)) else {
        m.show_output("model");
        return;
    };

    dma_check_clean(r, &c, "after mkfs and 64 MiB of files");

    // A graceful stop: SIGTERM, the model shuts the controller down and
    // removes the device; the driver lets go of it.
    r.check(m.signal(libc::SIGTERM), "SIGTERM to the model");
    let st = m.wait_exit(Duration::from_secs(30));
    r.check(
        st.is_some_and(|s| s.success()),
        format!("the model exits 0 after SIGTERM: {st:?}"),
    );
    r.check(
        wait_ctrl_gone(MODEL_SERIAL, Duration::from_secs(30)),
        "the controller is gone from /sys/class/nvme",
    );
    model_summary(r, &m, "first model");
    if !st.is_some_and(|s| s.success()) {
        m.show_output("model");
    }

    // A new process on the same file: everything written is still there.
    let Some(mut m2) = r.step(
        "start a new model process on the same backing file",
        Model::start(
            bin,
            &disk,
            DISK_BYTES,
            lba,
            Path::new("/tmp/pciem-nvme-2.log"),
        ),
    ) else {
        return;
    };
    let Some(c2) = r.step(
        "the controller comes back",
        wait_ctrl(MODEL_SERIAL, APPEAR).ok_or("not found in /sys/class/nvme"),
    ) else {
        m2.show_output("model");
        return;
    };
    println!(
        "INFO: after the restart the controller is {} with disk {}",
        c2.name,
        c2.dev()
    );
    identity(r, &c2, MODEL_SERIAL, MODEL_NAME, DISK_BYTES, lba.into());
    if mount(r, &c2) {
        verify(r, &known, "after the model restart");
        umount(r);
    }
    fio_verify(r, &c2);
    dma_check_clean(r, &c2, "after fio");
    r.check(m2.signal(libc::SIGTERM), "SIGTERM to the second model");
    let st = m2.wait_exit(Duration::from_secs(30));
    r.check(
        st.is_some_and(|s| s.success()),
        format!("the second model exits 0: {st:?}"),
    );
    r.check(
        wait_ctrl_gone(MODEL_SERIAL, Duration::from_secs(30)),
        "the controller is gone again",
    );
    model_summary(r, &m2, "second model");
    // The file's memory is the guest's: give it back for the next scenario.
    let _ = std::fs::remove_file(&disk);
    log_clean(r, since);
    r.check_klog_clean();
}

/// The model's own account at exit: shown, and no event lost, no ring
/// overflow, no handler error.
fn model_summary(r: &mut Report, m: &Model, who: &str) {
    let out = m.output();
    for l in out.lines().filter(|l| !l.trim().is_empty()) {
        println!("INFO: {who}: {l}");
    }
    let clean = out.lines().any(|l| {
        l.contains("device removed")
            && l.contains("(0 lost, kernel overflow counter 0)")
            && l.contains(", 0 handler errors")
    });
    r.check(
        clean,
        format!("the {who} reports no lost event, no ring overflow and no handler error"),
    );
}

/// Serial, model, size and block size in sysfs and from `nvme id-ctrl`.
fn identity(r: &mut Report, c: &Ctrl, serial: &str, model: &str, bytes: u64, lba: u64) {
    r.check(
        c.attr("serial") == serial && c.attr("model") == model,
        format!(
            "sysfs: serial {:?} model {:?} (want {serial:?}, {model:?})",
            c.attr("serial"),
            c.attr("model")
        ),
    );
    r.check(
        c.disk_bytes() == Some(bytes) && c.lba_bytes() == Some(lba),
        format!(
            "{}: {:?} bytes in blocks of {:?} (want {bytes}, {lba})",
            c.dev(),
            c.disk_bytes(),
            c.lba_bytes()
        ),
    );
    let (ok, out) = run("nvme", &["id-ctrl", &c.char_dev()]);
    let field = |k: &str| {
        out.lines().find_map(|l| {
            let (a, b) = l.split_once(':')?;
            (a.trim() == k).then(|| b.trim().to_string())
        })
    };
    r.check(
        ok && field("sn").as_deref() == Some(serial) && field("mn").as_deref() == Some(model),
        format!(
            "nvme id-ctrl {}: sn {:?} mn {:?}",
            c.char_dev(),
            field("sn"),
            field("mn")
        ),
    );
    if !ok {
        println!("INFO: nvme id-ctrl: {out}");
    }
    for k in ["vid", "mdts", "sqes", "cqes", "nn", "oncs", "vwc"] {
        if let Some(v) = field(k) {
            println!("INFO: id-ctrl {k}: {v}");
        }
    }
}

fn mount(r: &mut Report, c: &Ctrl) -> bool {
    let _ = std::fs::create_dir_all(MOUNT_DIR);
    let (ok, out) = run("mount", &["-t", "ext4", &c.dev(), MOUNT_DIR]);
    r.check(
        ok,
        format!("mount -t ext4 {} {MOUNT_DIR}: {}", c.dev(), out.trim()),
    )
}

fn umount(r: &mut Report) -> bool {
    let path = CString::new(MOUNT_DIR).expect("no NUL");
    // SAFETY: umount(2) with a NUL-terminated path we own.
    let rc = unsafe { libc::umount(path.as_ptr()) };
    let err = std::io::Error::last_os_error();
    r.check(
        rc == 0,
        format!(
            "umount {MOUNT_DIR}: {}",
            if rc == 0 {
                "ok".into()
            } else {
                err.to_string()
            }
        ),
    )
}

/// mkfs, mount, the known files, sync + drop caches + verify, a scratch
/// file deleted and trimmed (with `backing`, checked to be given back in
/// the model's file), umount. The files written, if all went well.
fn fill_and_verify(r: &mut Report, c: &Ctrl, backing: Option<&Path>) -> Option<Vec<Known>> {
    let t = Instant::now();
    let (ok, out) = run("mkfs.ext4", &["-q", "-F", &c.dev()]);
    r.check(
        ok,
        format!(
            "mkfs.ext4 {} ({:.1} s): {}",
            c.dev(),
            t.elapsed().as_secs_f64(),
            out.trim()
        ),
    );
    if !ok || !mount(r, c) {
        return None;
    }
    let dir = Path::new(MOUNT_DIR);
    let t = Instant::now();
    let known = r.step(
        format!(
            "write {} MiB in files of mixed sizes with known content",
            KNOWN_BYTES >> 20
        ),
        write_known(dir, KNOWN_BYTES),
    )?;
    println!(
        "MEASURE: nvme {}: wrote {} files, {} MiB, in {:.1} s",
        c.attr("serial"),
        known.len(),
        KNOWN_BYTES >> 20,
        t.elapsed().as_secs_f64()
    );
    r.step("sync and drop caches", sync_and_drop_caches());
    verify(r, &known, "after sync and drop_caches");

    // Space freed by a delete goes back to the device on fstrim.
    let scratch = dir.join("scratch");
    let wrote = std::fs::write(&scratch, vec![0x5au8; SCRATCH_BYTES as usize])
        .and_then(|()| sync_and_drop_caches());
    r.step(
        format!("write a {} MiB scratch file", SCRATCH_BYTES >> 20),
        wrote,
    );
    let before = backing.and_then(allocated_bytes);
    r.step(
        "delete it",
        std::fs::remove_file(&scratch).and_then(|()| sync_and_drop_caches()),
    );
    let (ok, out) = run("fstrim", &["-v", MOUNT_DIR]);
    r.check(
        ok && out.contains("trimmed") && !out.contains(" 0 B"),
        format!("fstrim -v: {}", out.trim()),
    );
    if let Some(backing) = backing {
        let after = allocated_bytes(backing);
        r.check(
            matches!((before, after), (Some(b), Some(a)) if b >= a + SCRATCH_BYTES * 3 / 4),
            format!(
                "the trim punched the scratch file's blocks out of the backing file: allocated {before:?} -> {after:?}"
            ),
        );
    }
    verify(r, &known, "after fstrim");
    if !umount(r) {
        return None;
    }
    Some(known)
}

/// Reads the known files back and compares their checksums.
fn verify(r: &mut Report, known: &[Known], when: &str) -> bool {
    let _ = sync_and_drop_caches();
    let t = Instant::now();
    let got = match read_known(Path::new(MOUNT_DIR), known) {
        Ok(g) => g,
        Err(e) => return r.check(false, format!("read the files back {when}: {e}")),
    };
    let secs = t.elapsed().as_secs_f64();
    let mut bad = 0;
    for (k, g) in known.iter().zip(&got) {
        let same = k == g;
        println!(
            "INFO: checksum {when}: {:<18} {:>9} bytes written {:016x} read {:016x} {}",
            k.name,
            k.size,
            k.sum,
            g.sum,
            if same { "same" } else { "DIFFERENT" }
        );
        bad += usize::from(!same);
    }
    let total: u64 = got.iter().map(|g| g.size).sum();
    r.check(
        bad == 0 && got.len() == known.len(),
        format!(
            "{when}: {} files, {total} bytes read back in {secs:.1} s, {} checksum(s) differ",
            got.len(),
            bad
        ),
    )
}

/// fio's own verification on the raw namespace: random 4 KiB and
/// sequential 128 KiB writes at queue depth 1 and 16, every block read
/// back and its crc32c checked.
fn fio_verify(r: &mut Report, c: &Ctrl) {
    let jobs: [(&str, &str, &str, u32, u64, u64); 4] = [
        ("rand4k-qd1", "randwrite", "4k", 1, 0, 4),
        ("rand4k-qd16", "randwrite", "4k", 16, 4, 4),
        ("seq128k-qd1", "write", "128k", 1, 8, 16),
        ("seq128k-qd16", "write", "128k", 16, 24, 16),
    ];
    for (name, rw, bs, qd, off_mib, mib) in jobs {
        let args = fio_job(
            name,
            &c.dev(),
            &[
                &format!("--rw={rw}"),
                &format!("--bs={bs}"),
                &format!("--iodepth={qd}"),
                &format!("--offset={off_mib}M"),
                &format!("--size={mib}M"),
                "--verify=crc32c",
                "--verify_fatal=1",
                "--do_verify=1",
            ],
        );
        let t = Instant::now();
        match fio(&args) {
            Ok(res) => {
                let kib = mib * 1024;
                println!(
                    "INFO: fio {name} on {}: wrote {} KiB ({:.0} IOPS), verified {} KiB by reading back, error {}, {:.1} s",
                    c.dev(),
                    res.write_kib,
                    res.write_iops,
                    res.read_kib,
                    res.error,
                    t.elapsed().as_secs_f64()
                );
                r.check(
                    res.error == 0 && res.write_kib == kib && res.read_kib == kib,
                    format!(
                        "fio {name} --verify=crc32c: {} KiB written, {} KiB read back and verified (want {kib}), 0 verify errors",
                        res.write_kib, res.read_kib
                    ),
                );
            }
            Err(e) => {
                r.check(false, format!("fio {name} --verify=crc32c: {e}"));
            }
        }
    }
}

/// pciem.ko checked every DMA the model made against the nvme driver's
/// mappings (enforce, the default): the driver's mappings were tracked and
/// not one access broke them (docs/dma-check.md).
fn dma_check_clean(r: &mut Report, c: &Ctrl, when: &str) {
    let text = std::fs::read_to_string(c.sys().join("device/pciem_dma_check")).unwrap_or_default();
    let count = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(' ')?.parse::<u64>().ok())
    };
    r.check(
        text.starts_with("mode enforce")
            && count("maps").is_some_and(|n| n > 1000)
            && [
                "unmapped",
                "outside",
                "wrong_direction",
                "after_unmap",
                "bad_unmap",
                "mask",
                "nomem",
            ]
            .iter()
            .all(|k| count(k) == Some(0)),
        format!(
            "DMA check {when}: every mapping of the nvme driver tracked, no violation ({})",
            text.trim().replace('\n', ", ")
        ),
    );
}

/// No I/O error, timeout or reset since `since`.
fn log_clean(r: &mut Report, since: f64) {
    let lines = klog::since(since);
    let bad = matching(&lines, NVME_BAD);
    for l in lines.iter().filter(|l| l.contains("nvme")) {
        println!("INFO: klog: {l}");
    }
    r.check(
        bad.is_empty(),
        format!("no I/O error, timeout or controller reset in the kernel log: {bad:?}"),
    );
}
