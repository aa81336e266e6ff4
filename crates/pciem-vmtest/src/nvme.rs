//! Helpers of the NVMe scenarios (`vmtest-nvme`, `vmtest-nvme-faults`):
//! finding a controller by serial in sysfs, the `pciem-nvme` device
//! process, a set of files with known content, fio runs, and the kernel
//! log since a moment.
//!
//! The target controller is a parameter: QEMU's built-in one (found by the
//! serial the VM harness gave it) or the Rust model, which these helpers
//! start as a child process on a backing file in a tmpfs.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sysfs::{read_trim, run, wait_until};

/// Serial number the scenarios give the Rust model.
pub const MODEL_SERIAL: &str = "PCIEMNVME0001";
/// Model number the scenarios give the Rust model.
pub const MODEL_NAME: &str = "PCIem NVMe Rust model";
/// Where the scenarios mount a tmpfs for the model's backing file.
pub const BACKING_DIR: &str = "/nvme-backing";
/// Where the scenarios mount the filesystem under test.
pub const MOUNT_DIR: &str = "/mnt-nvme";
/// Kernel log fragments that must not appear while nothing is meant to
/// fail (the nvme driver's timeout and reset lines, block-layer and ext4
/// errors).
pub const NVME_BAD: &[&str] = &[
    "I/O error",
    "timeout",
    "reset",
    "Abort",
    "EXT4-fs error",
    "EXT4-fs warning",
    "Buffer I/O",
    "blk_update_request",
    "critical",
    "failed",
    "Removing after probe failure",
    "did not answer",
];

/// An NVMe controller as sysfs shows it.
#[derive(Clone, Debug)]
pub struct Ctrl {
    /// `nvmeN`: the controller (`/dev/nvmeN`, `/sys/class/nvme/nvmeN`).
    pub name: String,
    /// `nvmeXnY`: its first namespace's block device.
    pub disk: String,
}

impl Ctrl {
    /// `/sys/class/nvme/nvmeN`.
    pub fn sys(&self) -> PathBuf {
        Path::new("/sys/class/nvme").join(&self.name)
    }

    /// `/dev/nvmeXnY`.
    pub fn dev(&self) -> String {
        format!("/dev/{}", self.disk)
    }

    /// `/dev/nvmeN`.
    pub fn char_dev(&self) -> String {
        format!("/dev/{}", self.name)
    }

    /// An attribute of the controller (`serial`, `model`, `state`, …).
    pub fn attr(&self, name: &str) -> String {
        read_trim(&self.sys().join(name)).unwrap_or_default()
    }

    /// The namespace's size in bytes (`/sys/block/…/size` × 512).
    pub fn disk_bytes(&self) -> Option<u64> {
        let s = read_trim(&Path::new("/sys/block").join(&self.disk).join("size")).ok()?;
        s.parse::<u64>().ok().map(|n| n * 512)
    }

    /// The namespace's logical block size.
    pub fn lba_bytes(&self) -> Option<u64> {
        read_trim(
            &Path::new("/sys/block")
                .join(&self.disk)
                .join("queue/logical_block_size"),
        )
        .ok()?
        .parse()
        .ok()
    }

    /// Whether the controller is still in sysfs.
    pub fn present(&self) -> bool {
        self.sys().exists()
    }
}

/// Whether `s` is `nvme<digits>n<digits>` (a namespace's disk) or
/// `nvme<digits>c<digits>n<digits>` (a multipath path); the disk name.
fn namespace_disk(s: &str) -> Option<String> {
    let rest = s.strip_prefix("nvme")?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (a, nsid) = rest.split_once('n')?;
    if !digits(nsid) {
        return None;
    }
    match a.split_once('c') {
        Some((x, c)) if digits(x) && digits(c) => Some(format!("nvme{x}n{nsid}")),
        None if digits(a) => Some(format!("nvme{a}n{nsid}")),
        _ => None,
    }
}

/// The controller whose serial is `serial`, with a namespace whose block
/// device node exists.
pub fn find_ctrl(serial: &str) -> Option<Ctrl> {
    let dir = fs::read_dir("/sys/class/nvme").ok()?;
    for e in dir.flatten() {
        let p = e.path();
        if read_trim(&p.join("serial")).ok().as_deref() != Some(serial) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(children) = fs::read_dir(&p) else {
            continue;
        };
        let mut disks: Vec<String> = children
            .flatten()
            .filter_map(|c| namespace_disk(&c.file_name().to_string_lossy()))
            .collect();
        disks.sort();
        if let Some(disk) = disks.into_iter().next() {
            if Path::new("/dev").join(&disk).exists() {
                return Some(Ctrl { name, disk });
            }
        }
    }
    None
}

/// Waits up to `timeout` for [`find_ctrl`].
pub fn wait_ctrl(serial: &str, timeout: Duration) -> Option<Ctrl> {
    let start = Instant::now();
    loop {
        if let Some(c) = find_ctrl(serial) {
            return Some(c);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `timeout` until no controller has this serial.
pub fn wait_ctrl_gone(serial: &str, timeout: Duration) -> bool {
    wait_until(timeout, || {
        fs::read_dir("/sys/class/nvme").map_or(true, |d| {
            !d.flatten()
                .any(|e| read_trim(&e.path().join("serial")).ok().as_deref() == Some(serial))
        })
    })
}

/// Mounts a tmpfs of `mib` MiB at [`BACKING_DIR`] (for the model's
/// backing file: hole punching needs tmpfs, the initramfs may be ramfs),
/// unless one is mounted there already.
pub fn mount_backing_tmpfs(mib: u64) -> Result<(), String> {
    // An earlier scenario of the same boot may have mounted it.
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(BACKING_DIR))
    {
        return Ok(());
    }
    fs::create_dir_all(BACKING_DIR).map_err(|e| e.to_string())?;
    let (ok, out) = run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={mib}m"),
            "tmpfs",
            BACKING_DIR,
        ],
    );
    if ok {
        Ok(())
    } else {
        Err(out)
    }
}

/// Bytes of a file actually allocated (`st_blocks` × 512).
pub fn allocated_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| m.blocks() * 512)
}

/// The `pciem-nvme` device process, its output in a log file.
#[derive(Debug)]
pub struct Model {
    child: Child,
    log: PathBuf,
}

impl Model {
    /// Starts `bin --backend chardev --disk disk --size bytes …` with the
    /// scenarios' serial and model, its output into `log`.
    pub fn start(bin: &str, disk: &Path, bytes: u64, lba: u32, log: &Path) -> Result<Self, String> {
        Self::start_with(bin, disk, bytes, lba, log, &[])
    }

    /// [`Model::start`] with `extra` arguments for the model.
    pub fn start_with(
        bin: &str,
        disk: &Path,
        bytes: u64,
        lba: u32,
        log: &Path,
        extra: &[&str],
    ) -> Result<Self, String> {
        let out = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["--backend", "chardev", "--disk"])
            .arg(disk)
            .args(["--size", &bytes.to_string()])
            .args(["--lba-size", &lba.to_string()])
            .args(["--serial", MODEL_SERIAL, "--model", MODEL_NAME])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{bin}: {e}"))?;
        Ok(Self {
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig`.
    pub fn signal(&self, sig: i32) -> bool {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe { libc::kill(self.pid(), sig) == 0 }
    }

    /// Waits up to `timeout` for the process to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Prints the process's output as `INFO:` lines (for a failure).
    pub fn show_output(&self, what: &str) {
        for l in self.output().lines().take(60) {
            println!("INFO: {what}: {l}");
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of the known-content set: its name, size and checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// File name inside the directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// [`Hasher`] value of its content.
    pub sum: u64,
}

/// The file sizes of the known-content set: empty, tiny, unaligned around
/// 512 and 4096, multi-MiB, summing to exactly `total` (the last two files
/// take what is left).
pub fn file_sizes(total: u64) -> Vec<u64> {
    let mut sizes = vec![
        0,
        1,
        511,
        513,
        4095,
        4097,
        12_345,
        65_543,
        1 << 20,
        (1 << 20) + 3,
        (3 << 20) - 7,
        8 << 20,
    ];
    let used: u64 = sizes.iter().sum();
    let rest = total.saturating_sub(used);
    sizes.push(rest / 2 + 4321);
    sizes.push(rest - (rest / 2 + 4321));
    sizes
}

/// The content of file `index`: a xorshift stream seeded by the index, so
/// every file differs and a block landing in the wrong file is caught.
struct Stream(u64);

impl Stream {
    fn new(index: u64) -> Self {
        Self(0x9e37_79b9_7f4a_7c15 ^ (index + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9))
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A 64-bit checksum of a byte stream (FNV-1a over 8-byte words, then
/// the length): cheap enough for 64 MiB under TCG.
#[derive(Debug)]
pub struct Hasher {
    h: u64,
    len: u64,
}

impl Default for Hasher {
    fn default() -> Self {
        Self {
            h: 0xcbf2_9ce4_8422_2325,
            len: 0,
        }
    }
}

impl Hasher {
    /// Adds `data`; calls must split the stream at multiples of 8 bytes
    /// except for the last.
    pub fn update(&mut self, data: &[u8]) {
        for c in data.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.h = (self.h ^ u64::from_le_bytes(w)).wrapping_mul(0x0100_0000_01b3);
        }
        self.len += data.len() as u64;
    }

    /// The checksum.
    pub fn finish(&self) -> u64 {
        (self.h ^ self.len).wrapping_mul(0x0100_0000_01b3)
    }
}

const CHUNK: usize = 1 << 20;

/// Writes the known-content set of `total` bytes into `dir` (fsync'd);
/// what was written.
pub fn write_known(dir: &Path, total: u64) -> std::io::Result<Vec<Known>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    for (i, &size) in file_sizes(total).iter().enumerate() {
        let name = format!("f{i:02}-{size}");
        let mut f = fs::File::create(dir.join(&name))?;
        let mut s = Stream::new(i as u64);
        let mut h = Hasher::default();
        let mut left = size;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            s.fill(&mut buf[..n]);
            h.update(&buf[..n]);
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.sync_all()?;
        out.push(Known {
            name,
            size,
            sum: h.finish(),
        });
    }
    Ok(out)
}

/// Reads the files of `dir` back: name, size and checksum of each file
/// named in `known`, in that order.
pub fn read_known(dir: &Path, known: &[Known]) -> std::io::Result<Vec<Known>> {
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::new();
    for k in known {
        let mut f = fs::File::open(dir.join(&k.name))?;
        let mut h = Hasher::default();
        let mut size = 0u64;
        loop {
            // Fill whole chunks so that the hasher sees 8-byte words.
            let mut got = 0;
            while got < CHUNK {
                let n = f.read(&mut buf[got..])?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            if got == 0 {
                break;
            }
            h.update(&buf[..got]);
            size += got as u64;
            if got < CHUNK {
                break;
            }
        }
        out.push(Known {
            name: k.name.clone(),
            size,
            sum: h.finish(),
        });
    }
    Ok(out)
}

/// `sync`, then drops the page cache, dentries and inodes.
pub fn sync_and_drop_caches() -> std::io::Result<()> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    fs::write("/proc/sys/vm/drop_caches", "3")
}

/// Lines of `lines` containing any of `pats`.
pub fn matching(lines: &[String], pats: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| pats.iter().any(|p| l.contains(p)))
        .cloned()
        .collect()
}

/// One fio job's figures, from its terse (version 3) line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FioResult {
    /// fio's error field.
    pub error: i64,
    /// KiB read.
    pub read_kib: u64,
    /// Read IOPS.
    pub read_iops: f64,
    /// Read bandwidth in KiB/s.
    pub read_kib_s: f64,
    /// Read completion-latency percentiles in µs (50th, 99th).
    pub read_clat_p50_us: f64,
    /// The 90th.
    pub read_clat_p90_us: f64,
    /// The 99th.
    pub read_clat_p99_us: f64,
    /// KiB written.
    pub write_kib: u64,
    /// Write IOPS.
    pub write_iops: f64,
    /// Write bandwidth in KiB/s.
    pub write_kib_s: f64,
}

/// Fields of one direction in fio's terse v3 line: 41 from the I/O total
/// to the bandwidth deviation.
const TERSE_DIR_FIELDS: usize = 41;
/// Field index (0-based) of the read direction's first field.
const TERSE_READ: usize = 5;

/// Parses fio's terse version 3 line (`3;fio-…;name;group;error;…`).
pub fn parse_terse(line: &str) -> Option<FioResult> {
    let f: Vec<&str> = line.trim().split(';').collect();
    if f.first() != Some(&"3") || f.len() < TERSE_READ + 2 * TERSE_DIR_FIELDS {
        return None;
    }
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok());
    let pct = |base: usize, p: &str| {
        // 20 percentile fields, `P%=value`, after the I/O total, bandwidth,
        // IOPS, runtime and the 4 slat and 4 clat fields.
        (base + 12..base + 32).find_map(|i| {
            let (k, v) = f.get(i)?.split_once('=')?;
            (k == p).then(|| v.parse::<f64>().ok()).flatten()
        })
    };
    let w = TERSE_READ + TERSE_DIR_FIELDS;
    Some(FioResult {
        error: f.get(4)?.parse().ok()?,
        read_kib: num(TERSE_READ)? as u64,
        read_kib_s: num(TERSE_READ + 1)?,
        read_iops: num(TERSE_READ + 2)?,
        read_clat_p50_us: pct(TERSE_READ, "50.000000%").unwrap_or(f64::NAN),
        read_clat_p90_us: pct(TERSE_READ, "90.000000%").unwrap_or(f64::NAN),
        read_clat_p99_us: pct(TERSE_READ, "99.000000%").unwrap_or(f64::NAN),
        write_kib: num(w)? as u64,
        write_kib_s: num(w + 1)?,
        write_iops: num(w + 2)?,
    })
}

/// Runs fio with `args` (plus terse output); its result, or why not.
pub fn fio(args: &[String]) -> Result<FioResult, String> {
    let out = Command::new("fio")
        .args(args)
        .args(["--output-format=terse", "--terse-version=3"])
        .output()
        .map_err(|e| format!("fio: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "fio exited with {}: {}{}",
            out.status,
            stdout.trim(),
            stderr.trim()
        ));
    }
    if stderr.contains("verify") {
        return Err(format!("fio reported a verify problem: {}", stderr.trim()));
    }
    stdout
        .lines()
        .find_map(parse_terse)
        .ok_or_else(|| format!("no terse line in fio's output: {stdout}{stderr}"))
}

/// The common fio arguments for a job `name` on `dev`: direct I/O through
/// libaio.
pub fn fio_job(name: &str, dev: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        format!("--name={name}"),
        format!("--filename={dev}"),
        "--direct=1".to_string(),
        "--ioengine=libaio".to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_disks() {
        assert_eq!(namespace_disk("nvme1n1").as_deref(), Some("nvme1n1"));
        assert_eq!(namespace_disk("nvme0c1n2").as_deref(), Some("nvme0n2"));
        assert_eq!(namespace_disk("nvme1"), None);
        assert_eq!(namespace_disk("nvmen1"), None);
        assert_eq!(namespace_disk("power"), None);
    }

    #[test]
    fn sizes_sum_to_the_total() {
        let s = file_sizes(64 << 20);
        assert_eq!(s.iter().sum::<u64>(), 64 << 20);
        assert!(s.contains(&0));
        assert!(s.iter().any(|&x| x % 512 != 0 && x > 4096));
    }

    #[test]
    fn hasher_sees_content_and_length() {
        let sum = |d: &[u8]| {
            let mut h = Hasher::default();
            h.update(d);
            h.finish()
        };
        assert_ne!(sum(&[0; 8]), sum(&[0; 16]));
        assert_ne!(sum(&[1, 2, 3]), sum(&[1, 2, 4]));
        let mut split = Hasher::default();
        split.update(&[7; 16]);
        split.update(&[9; 5]);
        let mut whole = [7u8; 21];
        whole[16..].fill(9);
        assert_eq!(split.finish(), sum(&whole));
    }

    #[test]
    fn terse_line_parses() {
        // A terse v3 line: read 4096 KiB at 1000 IOPS, p50 200 µs, p99 900 µs.
        let mut f: Vec<String> = vec!["3", "fio-3.33", "j", "0", "0"]
            .into_iter()
            .map(String::from)
            .collect();
        let mut dir = |kib: u64, bw: u64, iops: u64, p50: u64, p99: u64| {
            let mut d = vec![
                kib.to_string(),
                bw.to_string(),
                iops.to_string(),
                "4".into(),
            ];
            d.extend(std::iter::repeat_n("0".to_string(), 8));
            for (i, p) in [
                "1", "5", "10", "20", "30", "40", "50", "60", "70", "80", "90", "95", "99", "99.5",
                "99.9", "99.95", "99.99", "0", "0", "0",
            ]
            .iter()
            .enumerate()
            {
                let v = match *p {
                    "50" => p50,
                    "99" => p99,
                    _ => i as u64,
                };
                d.push(format!("{:.6}%={v}", p.parse::<f64>().unwrap()));
            }
            d.extend(std::iter::repeat_n("0".to_string(), 9));
            assert_eq!(d.len(), TERSE_DIR_FIELDS);
            f.extend(d);
        };
        dir(4096, 4000, 1000, 200, 900);
        dir(8192, 8000, 2000, 0, 0);
        let line = f.join(";");
        let r = parse_terse(&line).unwrap();
        assert_eq!(r.read_kib, 4096);
        assert_eq!(r.read_iops, 1000.0);
        assert_eq!(r.read_clat_p50_us, 200.0);
        assert_eq!(r.read_clat_p99_us, 900.0);
        assert_eq!(r.write_kib, 8192);
        assert_eq!(r.write_iops, 2000.0);
        assert!(parse_terse("2;x").is_none());
    }
}

/// Where tracefs is mounted for [`trace_start`].
const TRACING: &str = "/sys/kernel/tracing";

/// Kprobe events [`trace_start`] defines: every ioctl the model makes on
/// `/dev/pciem` (entry with its command, and return).
const KPROBES: &str = "p:nvmebd/ioctl pciem_ioctl cmd=%si:x32\nr:nvmebd/ioctl_ret pciem_ioctl\n";

/// Tracepoints [`trace_start`] enables besides the kprobes: the nvme
/// driver's command setup and completion, and interrupt handler entry.
const TRACEPOINTS: &[&str] = &[
    "nvme/nvme_setup_cmd",
    "nvme/nvme_complete_rq",
    "irq/irq_handler_entry",
    "nvmebd/ioctl",
    "nvmebd/ioctl_ret",
];

fn tracefs(file: &str, text: &str) -> std::io::Result<()> {
    fs::write(Path::new(TRACING).join(file), text)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{TRACING}/{file}: {e}")))
}

/// Starts tracing one I/O's path: the nvme driver's tracepoints, interrupt
/// entries and the model's pciem ioctls, on the global trace clock.
pub fn trace_start() -> std::io::Result<()> {
    if !Path::new(TRACING).join("trace").exists() {
        let (ok, out) = run("mount", &["-t", "tracefs", "nodev", TRACING]);
        if !ok {
            return Err(std::io::Error::other(format!("mount tracefs: {out}")));
        }
    }
    tracefs("tracing_on", "0")?;
    tracefs("trace_clock", "global")?;
    tracefs("buffer_size_kb", "8192")?;
    tracefs("kprobe_events", KPROBES)?;
    tracefs("trace", "")?;
    for e in TRACEPOINTS {
        tracefs(&format!("events/{e}/enable"), "1")?;
    }
    tracefs("tracing_on", "1")
}

/// Stops tracing; the trace, events disabled and kprobes removed.
pub fn trace_stop() -> std::io::Result<String> {
    tracefs("tracing_on", "0")?;
    let text = fs::read_to_string(Path::new(TRACING).join("trace"))?;
    for e in TRACEPOINTS {
        tracefs(&format!("events/{e}/enable"), "0")?;
    }
    tracefs("kprobe_events", "")?;
    tracefs("trace", "")?;
    Ok(text)
}

/// One trace line: timestamp (µs), task pid, event name, details.
fn trace_line(l: &str) -> Option<(f64, u32, &str, &str)> {
    // "  task-123  [001] d..1.  1234.567890: event: details"
    let (head, rest) = l.split_once(": ")?;
    let ts: f64 = head.rsplit(' ').next()?.parse().ok()?;
    let task = head.split_whitespace().next()?;
    let pid: u32 = task.rsplit('-').next()?.parse().ok()?;
    let (name, details) = rest
        .split_once(": ")
        .unwrap_or((rest.trim_end_matches(':'), ""));
    Some((ts * 1e6, pid, name, details))
}

/// The name of a pciem ioctl by its number (the low byte of the command).
fn ioctl_name(cmd: u32) -> String {
    match cmd & 0xff {
        0x0a => "INJECT_IRQ".into(),
        0x0c => "DMA_READ".into(),
        0x0d => "DMA_WRITE".into(),
        0x0f => "DMA_INDIRECT".into(),
        0x16 => "COMPLETE_READ".into(),
        n => format!("ioctl-{n:#x}"),
    }
}

/// Where one I/O's time went, from a trace of queue-depth-1 I/O on `ctrl`
/// (`nvmeN`): the segments in order, each with its median over the I/Os
/// whose shape (sequence of events) is the most common one, and how many
/// I/Os that is.
pub fn breakdown(trace: &str, ctrl: &str) -> Option<(usize, Vec<(String, f64)>)> {
    let prefix = format!("{ctrl}: ");
    let irq_name = format!("name={ctrl}q");
    // One I/O: (label, timestamp) marks from setup to completion.
    let mut ios: Vec<Vec<(String, f64)>> = Vec::new();
    let mut cur: Option<Vec<(String, f64)>> = None;
    let mut open_ioctl: Option<(u32, String)> = None;
    for (ts, pid, name, details) in trace.lines().filter_map(trace_line) {
        match name {
            "nvme_setup_cmd" if details.starts_with(&prefix) && !details.contains("qid=0,") => {
                // A second command before the first completed: not QD1.
                cur = Some(vec![("nvme_setup_cmd".into(), ts)]);
            }
            "irq_handler_entry"
                if details.contains(&irq_name) && !details.contains(&format!("{irq_name}0")) =>
            {
                if let Some(c) = cur.as_mut() {
                    c.push(("irq_handler_entry".into(), ts));
                }
            }
            "ioctl" => {
                let cmd = details
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("cmd=0x"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .unwrap_or(0);
                let n = ioctl_name(cmd);
                if let Some(c) = cur.as_mut() {
                    c.push((format!("{n} entry"), ts));
                }
                open_ioctl = Some((pid, n));
            }
            "ioctl_ret" => {
                if let (Some(c), Some((p, n))) = (cur.as_mut(), open_ioctl.take()) {
                    if p == pid {
                        c.push((format!("{n} return"), ts));
                    }
                }
            }
            "nvme_complete_rq" if details.starts_with(&prefix) && !details.contains("qid=0,") => {
                if let Some(mut c) = cur.take() {
                    c.push(("nvme_complete_rq".into(), ts));
                    ios.push(c);
                }
            }
            _ => {}
        }
    }
    let shape = |io: &Vec<(String, f64)>| io.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>();
    let mut shapes: Vec<(Vec<String>, usize)> = Vec::new();
    for io in &ios {
        let s = shape(io);
        match shapes.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => shapes.push((s, 1)),
        }
    }
    let (common, n) = shapes.into_iter().max_by_key(|(_, n)| *n)?;
    let chosen: Vec<&Vec<(String, f64)>> = ios.iter().filter(|io| shape(io) == common).collect();
    let mut out = Vec::new();
    for i in 1..common.len() {
        let mut d: Vec<f64> = chosen.iter().map(|io| io[i].1 - io[i - 1].1).collect();
        d.sort_by(f64::total_cmp);
        out.push((
            format!("{} -> {}", common[i - 1], common[i]),
            d[d.len() / 2],
        ));
    }
    let mut total: Vec<f64> = chosen
        .iter()
        .map(|io| io[io.len() - 1].1 - io[0].1)
        .collect();
    total.sort_by(f64::total_cmp);
    out.push((
        "nvme_setup_cmd -> nvme_complete_rq (total)".into(),
        total[total.len() / 2],
    ));
    Some((n, out))
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    #[test]
    fn one_io_is_broken_down() {
        let t = "\
# tracer: nop
             fio-200     [000] ..... 100.000010: nvme_setup_cmd: nvme1: disk=nvme1n1, qid=1, cmdid=5, nsid=1, flags=0x0, meta=0x0, cmd=(nvme_cmd_read slba=8, len=7, ctrl=0x0, dsmgmt=0, reftag=0)
      pciem-nvme-300     [001] ..... 100.000050: ioctl: (pciem_ioctl+0x0/0x100 [pciem]) cmd=0x4010500c
      pciem-nvme-300     [001] ..... 100.000060: ioctl_ret: (x+0x1/0x2 <- pciem_ioctl)
      pciem-nvme-300     [001] ..... 100.000100: ioctl: (pciem_ioctl+0x0/0x100 [pciem]) cmd=0x4010500d
      pciem-nvme-300     [001] ..... 100.000120: ioctl_ret: (x+0x1/0x2 <- pciem_ioctl)
      pciem-nvme-300     [001] ..... 100.000130: ioctl: (pciem_ioctl+0x0/0x100 [pciem]) cmd=0x4010500a
          <idle>-0       [000] d.h1. 100.000140: irq_handler_entry: irq=30 name=nvme1q1
      pciem-nvme-300     [001] ..... 100.000150: ioctl_ret: (x+0x1/0x2 <- pciem_ioctl)
          <idle>-0       [000] d.h1. 100.000160: nvme_complete_rq: nvme1: disk=nvme1n1, qid=1, cmdid=5, res=0x0, retries=0, flags=0x0, status=0x0
";
        let (n, segs) = breakdown(t, "nvme1").unwrap();
        assert_eq!(n, 1);
        assert_eq!(segs[0].0, "nvme_setup_cmd -> DMA_READ entry");
        assert!((segs[0].1 - 40.0).abs() < 1e-3, "{segs:?}");
        assert_eq!(segs[5].0, "INJECT_IRQ entry -> irq_handler_entry");
        assert!((segs[5].1 - 10.0).abs() < 1e-3);
        let total = segs.last().unwrap();
        assert!((total.1 - 150.0).abs() < 1e-3);
        assert!(breakdown(t, "nvme0").is_none());
    }
}
