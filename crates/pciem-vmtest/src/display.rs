//! Helpers of `vmtest-bochs`: the `pciem-bochs` model process (its
//! `mode:` and `screenshot` lines, screenshots on SIGUSR1), files handed
//! to the harness on the console, the console's VT mode and size, and
//! child processes with their output shown.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use pciem_bochs::{png_io, Frame};

use crate::protocard::signal;
use crate::Report;

/// `KDSETMODE` (linux/kd.h).
const KDSETMODE: libc::c_ulong = 0x4b3a;
/// The VT draws text (fbcon draws).
pub const KD_TEXT: libc::c_ulong = 0;
/// The VT is in graphics mode (fbcon stops drawing).
pub const KD_GRAPHICS: libc::c_ulong = 1;

/// The `pciem-bochs` process and what it prints.
pub struct Model {
    /// The process.
    pub child: Child,
    lines: Receiver<String>,
    /// Every line it printed so far (as far as pumped).
    pub seen: Vec<String>,
    /// SIGUSR1 screenshots asked for.
    pub shots: u64,
    shot: PathBuf,
}

impl Model {
    /// Starts `bin --backend chardev --screenshot SHOT --every EVERY_MS`
    /// and waits for it to register the adapter.
    pub fn start(r: &mut Report, bin: &str, shot: &str, every_ms: &str) -> Option<Model> {
        let mut child = match Command::new(bin)
            .args([
                "--backend",
                "chardev",
                "--screenshot",
                shot,
                "--every",
                every_ms,
            ])
            .stdout(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                r.check(false, format!("spawn {bin}: {e}"));
                return None;
            }
        };
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                println!("INFO: model: {l}");
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut m = Model {
            child,
            lines: rx,
            seen: Vec::new(),
            shots: 0,
            shot: PathBuf::from(shot),
        };
        let ok = m
            .wait_line(0, Duration::from_secs(30), |l| l.contains(" registered "))
            .is_some();
        r.check(ok, format!("{bin} registered the adapter"));
        if !ok {
            let _ = m.child.kill();
            let _ = m.child.wait();
            return None;
        }
        Some(m)
    }

    /// Index of the next line the model prints (for [`Model::wait_line`]).
    pub fn mark(&mut self) -> usize {
        self.pump(Duration::ZERO);
        self.seen.len()
    }

    /// Collects what the model printed, waiting up to `wait` for a first
    /// line; whether any came.
    pub fn pump(&mut self, wait: Duration) -> bool {
        match self.lines.recv_timeout(wait) {
            Ok(l) => {
                self.seen.push(l);
                while let Ok(l) = self.lines.try_recv() {
                    self.seen.push(l);
                }
                true
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// The first line from index `from` on that satisfies `want`.
    pub fn wait_line(
        &mut self,
        from: usize,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let start = Instant::now();
        loop {
            if let Some(l) = self.seen.iter().skip(from).find(|l| want(l)) {
                return Some(l.clone());
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return None;
            }
            self.pump(left.min(Duration::from_millis(50)));
        }
    }

    /// Waits for a `mode: ` report naming `what` (e.g. `1024x768 32 bpp`).
    pub fn wait_mode(&mut self, from: usize, what: &str) -> bool {
        self.wait_line(from, Duration::from_secs(20), |l| {
            l.starts_with("mode: ") && l.contains(what)
        })
        .is_some()
    }

    /// SIGUSR1, then the PNG the model wrote.
    pub fn screenshot(&mut self) -> Result<Frame, String> {
        self.screenshot_flips().map(|(f, _)| f)
    }

    /// SIGUSR1, then the PNG the model wrote and the page flips it had
    /// counted.
    pub fn screenshot_flips(&mut self) -> Result<(Frame, u64), String> {
        let from = self.mark();
        if !signal(&self.child, libc::SIGUSR1) {
            return Err("kill(SIGUSR1) failed".into());
        }
        self.shots += 1;
        let line = self
            .wait_line(from, Duration::from_secs(30), |l| {
                l.starts_with("screenshot ") && l.contains("(SIGUSR1,")
            })
            .ok_or_else(|| "no SIGUSR1 screenshot line from the model".to_string())?;
        // "...; N page flips so far)"
        let flips = line
            .rsplit("; ")
            .next()
            .and_then(|t| t.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no flip count in {line:?}"))?;
        let frame = png_io::read(&self.shot).map_err(|e| e.to_string())?;
        Ok((frame, flips))
    }
}

/// Prints `bytes` as base64 between markers for the harness
/// (`target/vm/NAME`).
pub fn emit_file(name: &str, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len() / 3 * 4 + 4);
    for chunk in bytes.chunks(3) {
        let mut b = [0u8; 3];
        b[..chunk.len()].copy_from_slice(chunk);
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "VMTEST FILE BEGIN {name}");
    for line in text.as_bytes().chunks(76) {
        let _ = writeln!(out, "VMTEST B64 {}", String::from_utf8_lossy(line));
    }
    let _ = writeln!(out, "VMTEST FILE END {name}");
}

/// Prints `frame` as a PNG for the harness (see [`emit_file`]).
pub fn emit_png(name: &str, frame: &Frame) {
    let mut bytes = Vec::new();
    match png_io::encode(frame, &mut bytes) {
        Ok(()) => emit_file(name, &bytes),
        Err(e) => println!("INFO: encoding {name}: {e}"),
    }
}

/// Sets the VT mode of `/dev/tty1` (graphics: fbcon stops drawing).
pub fn kd_mode(mode: libc::c_ulong) -> Result<(), String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty1")
        .map_err(|e| format!("/dev/tty1: {e}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: KDSETMODE takes its argument by value; the fd is open.
    let rc = unsafe { libc::ioctl(tty.as_raw_fd(), KDSETMODE, mode) };
    if rc != 0 {
        return Err(format!("KDSETMODE: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Rows and columns of `/dev/tty1`.
pub fn tty_size() -> Result<(u32, u32), String> {
    let tty = std::fs::File::open("/dev/tty1").map_err(|e| format!("/dev/tty1: {e}"))?;
    use std::os::fd::AsRawFd;
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let rc = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if rc != 0 || ws.ws_row == 0 || ws.ws_col == 0 {
        return Err(format!("TIOCGWINSZ: rc {rc}, {}x{}", ws.ws_col, ws.ws_row));
    }
    Ok((u32::from(ws.ws_row), u32::from(ws.ws_col)))
}

/// Waits for `child`; `Some(success)`, or `None` (killed) after `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<bool> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st.success()),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Starts `cmd` with a piped stdin; its stdout and stderr are read to the
/// end on threads (it never blocks on a full pipe) and the first `show`
/// lines of each printed as `INFO: label: ...`.
pub fn spawn_shown(cmd: &mut Command, label: &str, show: usize) -> std::io::Result<Child> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let outs: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child.stdout.take().map(|o| Box::new(o) as _),
        child.stderr.take().map(|o| Box::new(o) as _),
    ];
    for out in outs.into_iter().flatten() {
        let label = label.to_string();
        std::thread::spawn(move || {
            for (i, l) in BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .enumerate()
            {
                if i < show {
                    println!("INFO: {label}: {l}");
                }
            }
        });
    }
    Ok(child)
}
