//! The ProtoPCIem card as the guest programs drive it: `/dev/protopciem`
//! (the driver `protopciem.ko`) and the device process behind it. Shared by
//! `vmtest-protopciem` (the end-to-end checks) and `vmtest-bench` (the
//! round-trip benchmark).

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use protopciem::framebuffer::FRAME_BYTES;
use protopciem::uapi::{
    protopciem_completion, protopciem_compute, protopciem_frame, PROTOPCIEM_IOCTL_LAST_COMPLETION,
    PROTOPCIEM_IOCTL_RESET, PROTOPCIEM_IOCTL_SUBMIT_FRAME,
};

use crate::Report;

/// Vendor ID of the card.
pub const VENDOR: u16 = 0x1f0c;
/// Device ID of the card.
pub const DEVICE: u16 = 0x0001;
/// The driver's character device.
pub const DEV_PATH: &str = "/dev/protopciem";

/// `Ok` for a non-negative return, else `Err(errno)`.
pub fn errno_of(ret: libc::c_int) -> Result<(), i32> {
    if ret < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// `/dev/protopciem`, opened.
pub struct Card {
    fd: OwnedFd,
}

impl Card {
    /// Opens `/dev/protopciem`.
    pub fn open() -> std::io::Result<Self> {
        let path = CString::new(DEV_PATH).expect("no NUL in a literal");
        // SAFETY: a valid NUL-terminated path that outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// The raw fd.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// ioctl with an argument struct; Err(errno).
    pub fn ioctl<T>(&self, req: u32, arg: &mut T) -> Result<(), i32> {
        // SAFETY: `arg` is a live, exclusively borrowed value of the type
        // `req` encodes (the uapi tables pin both), read and written by the
        // kernel only within its size.
        errno_of(unsafe { libc::ioctl(self.raw(), req as libc::c_ulong, arg as *mut T) })
    }

    /// One compute command (`PROTOPCIEM_IOCTL_ADD`, `_MULTIPLY`, `_XOR`) on `data`.
    pub fn compute(&self, req: u32, data: u32) -> Result<protopciem_compute, i32> {
        let mut c = protopciem_compute {
            data,
            ..Default::default()
        };
        self.ioctl(req, &mut c).map(|()| c)
    }

    /// `PROTOPCIEM_IOCTL_RESET`.
    pub fn reset(&self) -> Result<(), i32> {
        // SAFETY: RESET is an _IO request: no argument is read.
        errno_of(unsafe { libc::ioctl(self.raw(), PROTOPCIEM_IOCTL_RESET as libc::c_ulong, 0) })
    }

    /// `PROTOPCIEM_IOCTL_LAST_COMPLETION`.
    pub fn last(&self) -> Result<protopciem_completion, i32> {
        let mut c = protopciem_completion::default();
        self.ioctl(PROTOPCIEM_IOCTL_LAST_COMPLETION, &mut c)
            .map(|()| c)
    }

    /// `write(2)`: submits a command buffer.
    pub fn write(&self, buf: &[u8]) -> Result<usize, i32> {
        // SAFETY: `buf` is a live slice of `buf.len()` bytes.
        let n = unsafe { libc::write(self.raw(), buf.as_ptr().cast(), buf.len()) };
        errno_of(n as libc::c_int).map(|()| n as usize)
    }

    /// The framebuffer read back from BAR2 (pread at 0).
    pub fn read_frame(&self) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; FRAME_BYTES];
        let mut done = 0;
        while done < buf.len() {
            // SAFETY: the destination is the live tail of `buf`.
            let n = unsafe {
                libc::pread(
                    self.raw(),
                    buf[done..].as_mut_ptr().cast(),
                    buf.len() - done,
                    done as libc::off_t,
                )
            };
            if n < 0 {
                return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
            if n == 0 {
                break;
            }
            done += n as usize;
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// `PROTOPCIEM_IOCTL_SUBMIT_FRAME` of mmap'ed frame `index`.
    pub fn submit_frame(&self, index: u32) -> Result<protopciem_frame, i32> {
        let mut f = protopciem_frame {
            index,
            ..Default::default()
        };
        self.ioctl(PROTOPCIEM_IOCTL_SUBMIT_FRAME, &mut f)
            .map(|()| f)
    }
}

/// The `p` quantile (0..=1) of sorted, non-empty `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Spawns the device process `cmd` and waits until it says its card is on
/// the bus (`READY`, or protopciem's "… registered …" line); its further
/// output is echoed as `INFO:` lines.
pub fn start_device(r: &mut Report, cmd: &[String]) -> Option<Child> {
    let mut kid = match Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(k) => k,
        Err(e) => {
            r.check(false, format!("spawn the device process {cmd:?}: {e}"));
            return None;
        }
    };
    let out = kid.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        // `READY`, or protopciem's "device ... registered through ...".
        let ready = lines.any(|l| {
            l.map(|l| l.trim() == "READY" || l.contains(" registered "))
                .unwrap_or(false)
        });
        let _ = tx.send(ready);
        // Keep draining so the child never blocks on a full pipe, and show
        // what it says (its exit report names handler errors).
        // Its exit report lists every handler error; with force_polling
        // every completion interrupt is one, so show only the first few.
        let mut handler_errors = 0usize;
        for l in lines.map_while(Result::ok) {
            if l.trim_start().starts_with("handler error:") {
                handler_errors += 1;
                if handler_errors > 3 {
                    continue;
                }
            }
            println!("INFO: device process: {l}");
        }
        if handler_errors > 3 {
            println!("INFO: device process: ({handler_errors} handler error lines in all)");
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(30)).unwrap_or(false);
    r.check(
        ready,
        format!("the device process {cmd:?} registered its card"),
    );
    if !ready {
        let _ = kid.kill();
        let _ = kid.wait();
        return None;
    }
    Some(kid)
}

/// Sends `sig` to the child.
pub fn signal(kid: &Child, sig: libc::c_int) -> bool {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(kid.id() as libc::pid_t, sig) == 0 }
}
