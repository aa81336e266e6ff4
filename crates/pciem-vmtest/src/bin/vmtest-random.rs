//! Scenario: a seeded random sequence of opens, ioctls (well-formed,
//! half-sensible and pure garbage), mmaps, writes into mappings, closes and
//! forks against the real `/dev/pciem`, for a bounded time. It passes when
//! nothing hangs (the harness's timeout would catch it), the kernel log
//! stays clean, every device is released at the end, and a fresh device
//! still registers, binds and takes an interrupt.
//!
//! Usage: `vmtest-random [SECONDS [SEED]]` (default 20 s, seed from the
//! clock). The seed is printed first so a failing run can be replayed;
//! `vmtest-random SECONDS SEED trace` prints every operation as it goes.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use pciem_abi::*;
use pciem_vmtest::sysfs::{self, driver_of, find_devices, read_hex, wait_until};
use pciem_vmtest::{
    klog, Dev, Report, TESTDRV, TEST_DEVICE_IOMAP, TEST_DEVICE_UNBOUND, TEST_VENDOR,
};

const PAGE: usize = 4096;
const MAX_FILES: usize = 6;
const MAX_MAPS: usize = 16;

/// xorshift64*: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// Mostly plausible values, sometimes edge cases.
    fn interesting(&mut self) -> u64 {
        match self.below(6) {
            0 => 0,
            1 => u64::MAX >> self.below(64),
            2 => 1 << self.below(64),
            3 => self.below(16),
            4 => (1 << self.below(24)) + self.below(3),
            _ => self.next(),
        }
    }
}

/// One open control file, its instance file once registered.
struct Slot {
    dev: Dev,
    inst: Option<OwnedFd>,
}

/// A live mapping made by the driver loop.
struct Map {
    addr: usize,
    len: usize,
}

/// The ioctls fed random bytes (argument size from the request encoding).
/// DMA_WRITE, DMA_ATOMIC, DMA_INDIRECT and P2P_WRITE are left out on
/// purpose: a device may write any bus address, so random ones would
/// corrupt the guest by design, not by a bug.
const IOCTLS: &[u32] = &[
    PCIEM_IOCTL_GET_VERSION,
    PCIEM_IOCTL_CREATE_DEVICE,
    PCIEM_IOCTL_ADD_BAR,
    PCIEM_IOCTL_ADD_CAPABILITY,
    PCIEM_IOCTL_SET_CONFIG,
    PCIEM_IOCTL_SET_CONFIG_IMAGE,
    PCIEM_IOCTL_REGISTER,
    PCIEM_IOCTL_SET_WATCHPOINT,
    PCIEM_IOCTL_SET_EVENTFD,
    PCIEM_IOCTL_SET_IRQFD,
    PCIEM_IOCTL_INJECT_IRQ,
    PCIEM_IOCTL_GET_BAR_INFO,
    PCIEM_IOCTL_DMA_READ,
    PCIEM_IOCTL_P2P_READ,
    PCIEM_IOCTL_SET_FUNCTION,
];

fn ioc(fd: RawFd, req: u32, arg: *mut u8) -> io::Result<i32> {
    // SAFETY: `arg` is null or points into `Driver::buf`, which is larger
    // than any argument an ioctl of this ABI reads or writes (its size is
    // checked against the request encoding before the call).
    let ret = unsafe { libc::ioctl(fd, req as libc::c_ulong, arg) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn as_arg<T: zerocopy::IntoBytes + zerocopy::Immutable>(buf: &mut [u8], v: &T) -> *mut u8 {
    let b = v.as_bytes();
    buf[..b.len()].copy_from_slice(b);
    buf.as_mut_ptr()
}

struct Driver {
    rng: Rng,
    files: Vec<Slot>,
    maps: Vec<Map>,
    /// Argument scratch space: bigger than any ioctl argument.
    buf: Vec<u8>,
    /// Operation name -> (calls, successes).
    stats: BTreeMap<&'static str, (u64, u64)>,
    /// errno -> count.
    errnos: BTreeMap<i32, u64>,
    forks: u64,
    /// Print every operation before doing it (replaying a failure).
    trace: bool,
}

impl Driver {
    fn note(&mut self, op: &'static str, r: io::Result<i32>) -> io::Result<i32> {
        if self.trace {
            eprintln!("TRACE {} {op} -> {r:?}", std::process::id());
        }
        let e = self.stats.entry(op).or_default();
        e.0 += 1;
        match &r {
            Ok(_) => e.1 += 1,
            Err(err) => {
                *self
                    .errnos
                    .entry(err.raw_os_error().unwrap_or(-1))
                    .or_default() += 1
            }
        }
        r
    }

    fn pick(&mut self) -> Option<usize> {
        if self.files.is_empty() {
            None
        } else {
            Some(self.rng.below(self.files.len() as u64) as usize)
        }
    }

    /// A random fd: usually one of ours, sometimes a stale or odd number.
    fn some_fd(&mut self) -> RawFd {
        let i = self.pick();
        match (i, self.rng.below(10)) {
            (Some(i), 0..=5) => self.files[i].dev.raw(),
            (Some(i), 6..=7) => self.files[i]
                .inst
                .as_ref()
                .map(|f| f.as_raw_fd())
                .unwrap_or(-1),
            _ => self.rng.below(40) as RawFd - 2,
        }
    }

    fn step(&mut self) {
        let pick = self.rng.below(100);
        if self.trace {
            eprintln!("TRACE {} op {pick}", std::process::id());
        }
        match pick {
            0..=7 => self.open(),
            8..=11 => self.close(),
            12..=16 => self.describe(),
            17..=22 => self.add_bar(),
            23..=26 => self.add_cap(),
            27..=32 => self.register(),
            33..=37 => self.bar_info(),
            38..=42 => self.watch(),
            43..=46 => self.eventfd(),
            47..=51 => self.inject(),
            52..=61 => self.garbage(),
            62..=71 => self.mmap(),
            72..=77 => self.touch(),
            78..=81 => self.munmap(),
            82..=84 => self.close_instance(),
            85..=86 => self.fork(),
            87..=92 => self.create(),
            93..=96 => self.set_function(),
            _ => self.version(),
        }
    }

    fn open(&mut self) {
        if self.files.len() >= MAX_FILES {
            return self.close();
        }
        match Dev::open() {
            Ok(dev) => {
                let _ = self.note("open", Ok(0));
                self.files.push(Slot { dev, inst: None });
            }
            Err(e) => {
                let _ = self.note("open", Err(e));
            }
        }
    }

    fn close(&mut self) {
        if let Some(i) = self.pick() {
            if self.trace {
                eprintln!("TRACE close fd {}", self.files[i].dev.raw());
            }
            self.files.swap_remove(i);
            let _ = self.note("close", Ok(0));
        }
    }

    fn close_instance(&mut self) {
        if let Some(i) = self.pick() {
            if self.files[i].inst.take().is_some() {
                let _ = self.note("close instance", Ok(0));
            }
        }
    }

    /// CREATE_DEVICE alone, so that ADD_BAR / ADD_CAPABILITY / SET_CONFIG
    /// find files in the building state.
    fn create(&mut self) {
        let Some(i) = self.pick() else { return };
        let r = self.files[i].dev.create().map(|_| 0);
        let _ = self.note("CREATE_DEVICE", r);
    }

    /// SET_FUNCTION with a function number that is mostly valid (0..7),
    /// sometimes 8, so that later descriptions, REGISTERs, injections and
    /// mmaps meet multi-function devices.
    fn set_function(&mut self) {
        let Some(i) = self.pick() else { return };
        let f = self.rng.below(9) as u32;
        let r = self.files[i].dev.set_function(f).map(|_| 0);
        let _ = self.note("SET_FUNCTION", r);
    }

    /// A sensible description: sometimes the device a driver binds to.
    fn describe(&mut self) {
        let Some(i) = self.pick() else { return };
        let id = if self.rng.chance(30) {
            TEST_DEVICE_IOMAP
        } else {
            TEST_DEVICE_UNBOUND
        };
        let r = self.files[i].dev.describe_test_device(id).map(|_| 0);
        let _ = self.note("describe", r);
    }

    fn add_bar(&mut self) {
        let fd = match self.pick() {
            Some(i) if self.rng.chance(70) => self.files[i].dev.raw(),
            _ => self.some_fd(),
        };
        let b = pciem_bar_config {
            bar_index: self.rng.below(8) as u32,
            flags: self.rng.below(16) as u32,
            size: if self.rng.chance(60) {
                1 << (4 + self.rng.below(20))
            } else {
                self.rng.interesting()
            },
        };
        let arg = as_arg(&mut self.buf, &b);
        let r = ioc(fd, PCIEM_IOCTL_ADD_BAR, arg);
        let _ = self.note("ADD_BAR", r);
    }

    fn add_cap(&mut self) {
        let fd = match self.pick() {
            Some(i) if self.rng.chance(70) => self.files[i].dev.raw(),
            _ => self.some_fd(),
        };
        // Payload sizes of PCIEM_CAP_1..=9 (MSI, MSI-X, PM, PCIe, vendor,
        // PASID, DSN, VSEC, AER), so that half the calls get past the size
        // check to the payload checks.
        use core::mem::size_of;
        const SIZES: [usize; 9] = [
            size_of::<pciem_cap_msi_userspace>(),
            size_of::<pciem_cap_msix_userspace>(),
            size_of::<pciem_cap_pm_userspace>(),
            size_of::<pciem_cap_pcie_userspace>(),
            size_of::<pciem_cap_vendor_userspace>(),
            size_of::<pciem_cap_pasid_userspace>(),
            size_of::<pciem_cap_dsn_userspace>(),
            size_of::<pciem_cap_vsec_userspace>(),
            size_of::<pciem_cap_aer_userspace>(),
        ];
        let cap_type = self.rng.below(11) as u32;
        let known = SIZES.get((cap_type as usize).wrapping_sub(1)).copied();
        let mut c = pciem_cap_config {
            cap_type,
            cap_size: match known {
                Some(n) if self.rng.chance(60) => n as u32,
                _ if self.rng.chance(70) => self.rng.below(65) as u32,
                _ => self.rng.interesting() as u32,
            },
            offset: if self.rng.chance(70) {
                0
            } else {
                self.rng.below(0x1100) as u32
            },
            reserved: u32::from(self.rng.chance(5)),
            ..Default::default()
        };
        self.rng.fill(&mut c.cap_data);
        let arg = as_arg(&mut self.buf, &c);
        let r = ioc(fd, PCIEM_IOCTL_ADD_CAPABILITY, arg);
        let _ = self.note("ADD_CAPABILITY", r);
    }

    fn register(&mut self) {
        let Some(i) = self.pick() else { return };
        let fd = if self.rng.chance(80) {
            self.files[i].dev.raw()
        } else {
            self.some_fd()
        };
        let r = ioc(fd, PCIEM_IOCTL_REGISTER, core::ptr::null_mut());
        if let Ok(new) = r {
            // SAFETY: REGISTER returned a new fd that nobody else owns.
            let inst = unsafe { OwnedFd::from_raw_fd(new) };
            // Whichever file it came from, keep it with slot i; dropping
            // the previous instance (if any) closes it.
            self.files[i].inst = Some(inst);
        }
        let _ = self.note("REGISTER", r);
    }

    fn bar_info(&mut self) {
        let fd = self.some_fd();
        let q = pciem_bar_info_query {
            bar_index: self.rng.below(8) as u32,
            ..Default::default()
        };
        let arg = as_arg(&mut self.buf, &q);
        let r = ioc(fd, PCIEM_IOCTL_GET_BAR_INFO, arg);
        let _ = self.note("GET_BAR_INFO", r);
    }

    fn watch(&mut self) {
        let fd = self.some_fd();
        let w = pciem_watchpoint_config {
            bar_index: self.rng.below(7) as u32,
            offset: (self.rng.below(32) * 4) as u32,
            width: [1, 2, 4, 8, 3, 0][self.rng.below(6) as usize],
            flags: [
                PCIEM_WP_FLAG_BAR_KPROBES,
                PCIEM_WP_FLAG_BAR_KPROBES,
                PCIEM_WP_FLAG_CLEAR,
                PCIEM_WP_FLAG_BAR_MANUAL,
                self.rng.below(16) as u32,
            ][self.rng.below(5) as usize],
            addr: 0,
        };
        let arg = as_arg(&mut self.buf, &w);
        let r = ioc(fd, PCIEM_IOCTL_SET_WATCHPOINT, arg);
        let _ = self.note("SET_WATCHPOINT", r);
    }

    fn eventfd(&mut self) {
        let target = self.some_fd();
        // SAFETY: eventfd() has no pointer arguments.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        let efd = (efd >= 0).then(|| {
            // SAFETY: just created, owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(efd) }
        });
        let num = match (self.rng.below(4), &efd) {
            (0..=1, Some(e)) => e.as_raw_fd(),
            (2, _) => -1,
            _ => self.some_fd(),
        };
        let e = pciem_eventfd_config {
            eventfd: num,
            reserved: u32::from(self.rng.chance(5)),
        };
        let arg = as_arg(&mut self.buf, &e);
        let r = ioc(target, PCIEM_IOCTL_SET_EVENTFD, arg);
        let _ = self.note("SET_EVENTFD", r);
        // Closing our copy right away: the kernel must hold its own
        // reference to the eventfd context.
        drop(efd);
    }

    fn inject(&mut self) {
        let fd = self.some_fd();
        let i = pciem_irq_inject {
            vector: if self.rng.chance(80) {
                0
            } else {
                self.rng.interesting() as u32
            },
            kind: self.rng.below(5) as u32,
            flags: if self.rng.chance(80) {
                0
            } else {
                self.rng.below(4) as u32
            },
            reserved: u32::from(self.rng.chance(5)),
        };
        let arg = as_arg(&mut self.buf, &i);
        let r = ioc(fd, PCIEM_IOCTL_INJECT_IRQ, arg);
        let _ = self.note("INJECT_IRQ", r);
    }

    /// Any ioctl of the ABI with random bytes, a null or a wild pointer.
    fn garbage(&mut self) {
        let fd = self.some_fd();
        let req = IOCTLS[self.rng.below(IOCTLS.len() as u64) as usize];
        let size = ((req >> 16) & 0x3fff) as usize;
        assert!(size <= self.buf.len(), "scratch buffer too small");
        let arg = match self.rng.below(10) {
            0 => core::ptr::null_mut(),
            1 => (self.rng.next() as usize & !0xfff) as *mut u8,
            _ => {
                let mut tmp = std::mem::take(&mut self.buf);
                self.rng.fill(&mut tmp[..size]);
                self.buf = tmp;
                self.buf.as_mut_ptr()
            }
        };
        let r = ioc(fd, req, arg);
        if let Ok(new) = r {
            if req == PCIEM_IOCTL_REGISTER {
                // SAFETY: as in register(): a new fd nobody else owns.
                drop(unsafe { OwnedFd::from_raw_fd(new) });
            }
        }
        let _ = self.note("garbage ioctl", r);
    }

    fn mmap(&mut self) {
        if self.maps.len() >= MAX_MAPS {
            return self.munmap();
        }
        // Not stdin/stdout/stderr: stdin is the harness's scenario list,
        // a real file whose pages past its end would SIGBUS when touched.
        let fd = match self.some_fd() {
            0..=2 => -1,
            fd => fd,
        };
        let pgoff = if self.rng.chance(20) {
            // A BAR of function 1..7 (page 16 * function + BAR).
            16 * (1 + self.rng.below(7)) + self.rng.below(7)
        } else if self.rng.chance(75) {
            self.rng.below(7)
        } else {
            self.rng.interesting() >> 12
        };
        let len = [PAGE, PAGE, 2 * PAGE, 16 * PAGE, 17 * PAGE, 1 << 20][self.rng.below(6) as usize];
        let flags = if self.rng.chance(85) {
            libc::MAP_SHARED
        } else {
            libc::MAP_PRIVATE
        };
        let off = (pgoff as usize).wrapping_mul(PAGE) as libc::off_t;
        // SAFETY: a fresh mapping chosen by the kernel; kept in `maps`
        // and unmapped by munmap() or at the end.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                off,
            )
        };
        if self.trace {
            let what = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
            eprintln!("TRACE mmap fd {fd} {what:?} pgoff {pgoff} len {len} flags {flags} -> {p:?}");
        }
        let r = if p == libc::MAP_FAILED {
            Err(io::Error::last_os_error())
        } else {
            self.maps.push(Map {
                addr: p as usize,
                len,
            });
            Ok(0)
        };
        let _ = self.note("mmap", r);
    }

    /// Reads and writes a word of a live mapping. Only the first page is
    /// touched: a BAR mapping never extends past what the kernel allowed,
    /// and the ring's first page always exists.
    fn touch(&mut self) {
        if self.maps.is_empty() {
            return;
        }
        let m = &self.maps[self.rng.below(self.maps.len() as u64) as usize];
        let off = (self.rng.below(PAGE as u64 / 4) * 4) as usize;
        let p = (m.addr + off) as *mut u32;
        let v = self.rng.next() as u32;
        if self.trace {
            eprintln!("TRACE touch {:#x}+{off:#x} (len {})", m.addr, m.len);
        }
        // SAFETY: `p` is 4-byte aligned inside the first page of a live
        // mapping this process made; the memory is BAR or ring memory
        // that nothing in this process holds references into.
        unsafe {
            let old = p.read_volatile();
            p.write_volatile(old ^ v);
        }
        let _ = self.note("touch mapping", Ok(0));
    }

    fn munmap(&mut self) {
        if self.maps.is_empty() {
            return;
        }
        let i = self.rng.below(self.maps.len() as u64) as usize;
        let m = self.maps.swap_remove(i);
        if self.trace {
            eprintln!("TRACE munmap {:#x} len {}", m.addr, m.len);
        }
        // SAFETY: unmaps a mapping this process made and no longer uses.
        unsafe { libc::munmap(m.addr as *mut libc::c_void, m.len) };
        let _ = self.note("munmap", Ok(0));
    }

    /// A child inherits every file and mapping, does a few operations of
    /// its own and exits (or is killed): the kernel sees files shared by
    /// two processes and released from either.
    fn fork(&mut self) {
        let seed = self.rng.next();
        let kill = self.rng.chance(50);
        // SAFETY: the child runs only the single-threaded driver loop on
        // its copy of the address space and then _exit()s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            self.rng = Rng(seed | 1);
            for _ in 0..20 {
                self.step_no_fork();
            }
            // SAFETY: _exit skips destructors, so the parent's view of
            // the shared files stays as it was.
            unsafe { libc::_exit(0) };
        }
        if pid < 0 {
            let _ = self.note("fork", Err(io::Error::last_os_error()));
            return;
        }
        if kill {
            // SAFETY: signals our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        self.forks += 1;
        let _ = self.note("fork", Ok(0));
    }

    fn step_no_fork(&mut self) {
        loop {
            let save = self.rng.0;
            if (85..=86).contains(&self.rng.below(100)) {
                continue;
            }
            self.rng.0 = save;
            return self.step();
        }
    }

    fn version(&mut self) {
        let fd = self.some_fd();
        let v = pciem_version::default();
        let arg = as_arg(&mut self.buf, &v);
        let r = ioc(fd, PCIEM_IOCTL_GET_VERSION, arg);
        let _ = self.note("GET_VERSION", r);
    }
}

/// On SIGBUS/SIGSEGV: print the signal, the faulting address and this
/// process's memory map to stderr, then exit 128+signal, so that a crash
/// of the driver loop says where it happened.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let mut msg = [0u8; 96];
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    let text = format_into(&mut msg, sig, code, addr);
    // SAFETY: write/open/read/_exit are async-signal-safe; the buffers
    // are local and the path is NUL-terminated.
    unsafe {
        libc::write(2, text.as_ptr().cast(), text.len());
        let fd = libc::open(c"/proc/self/maps".as_ptr(), libc::O_RDONLY);
        let mut buf = [0u8; 512];
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            libc::write(2, buf.as_ptr().cast(), n as usize);
        }
        libc::_exit(128 + sig);
    }
}

/// Formats the fault line without allocating (signal context).
fn format_into(buf: &mut [u8; 96], sig: i32, code: i32, addr: usize) -> &[u8] {
    use std::io::Write;
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = writeln!(cur, "FAULT: signal {sig} code {code} at {addr:#x}; maps:");
    let n = cur.position() as usize;
    &buf[..n]
}

fn install_fault_reporter() {
    for sig in [libc::SIGBUS, libc::SIGSEGV] {
        // SAFETY: a zeroed sigaction is a valid starting point; the
        // handler has the SA_SIGINFO signature.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(sig, &sa, core::ptr::null_mut());
        }
    }
}

fn live_devices() -> Option<u64> {
    read_hex(Path::new("/sys/module/pciem/parameters/live_devices"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let mut r = Report::new("random");
    println!("INFO: seed {seed}, {secs} s (replay: vmtest-random {secs} {seed})");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let live0 = live_devices();
    install_fault_reporter();
    let mut d = Driver {
        rng: Rng(seed | 1),
        files: Vec::new(),
        maps: Vec::new(),
        buf: vec![0u8; 16 << 10],
        stats: BTreeMap::new(),
        errnos: BTreeMap::new(),
        forks: 0,
        trace: args.next().as_deref() == Some("trace"),
    };
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        d.step();
        ops += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    for m in d.maps.drain(..) {
        // SAFETY: unmaps a mapping this process made and no longer uses.
        unsafe { libc::munmap(m.addr as *mut libc::c_void, m.len) };
    }
    d.files.clear();
    println!(
        "INFO: {ops} operations in {elapsed:.1} s ({:.0}/s), {} forks",
        ops as f64 / elapsed,
        d.forks
    );
    for (op, (n, ok)) in &d.stats {
        println!("INFO:   {op:<16} {n:>7} calls, {ok:>6} succeeded");
    }
    let errs: Vec<String> = d.errnos.iter().map(|(e, n)| format!("{e}:{n}")).collect();
    println!("INFO:   errno:count {}", errs.join(" "));
    r.check(ops > 0, format!("{ops} random operations ran"));
    r.check(
        d.stats.get("REGISTER").map(|s| s.1).unwrap_or(0) > 0,
        "some REGISTERs succeeded (the sequence reached the registered state)",
    );
    r.check(
        wait_until(Duration::from_secs(5), || live_devices() == live0),
        format!(
            "every device was released (live_devices {:?}, was {live0:?})",
            live_devices()
        ),
    );
    r.check(
        find_devices(TEST_VENDOR, TEST_DEVICE_IOMAP).is_empty()
            && find_devices(TEST_VENDOR, TEST_DEVICE_UNBOUND).is_empty(),
        "no test device is left on the bus",
    );
    // The module still does its job.
    let dev = Dev::open();
    let works = dev.and_then(|dev| {
        dev.describe_test_device(TEST_DEVICE_IOMAP)?;
        let inst = dev.register()?;
        let bound = wait_until(Duration::from_secs(3), || {
            find_devices(TEST_VENDOR, TEST_DEVICE_IOMAP)
                .first()
                .and_then(|p| driver_of(p))
                .as_deref()
                == Some(TESTDRV)
        });
        if !bound {
            return Err(io::Error::other("pciem_testdrv did not bind"));
        }
        let bar = inst.map_bar(0, PAGE)?;
        bar.write32(0x10, 0x1234_5678);
        let p = find_devices(TEST_VENDOR, TEST_DEVICE_IOMAP)
            .pop()
            .ok_or_else(|| io::Error::other("device vanished"))?;
        let seen = sysfs::testdrv_read(&p, 0x10)?;
        if seen != 0x1234_5678 {
            return Err(io::Error::other(format!("driver read {seen:#x}")));
        }
        dev.inject_msi(0)?;
        Ok(())
    });
    r.step(
        "afterwards a device registers, binds, shares BAR0 and takes an MSI",
        works,
    );
    let bad = klog::problems();
    r.check(bad.is_empty(), format!("kernel log clean {bad:?}"));
    r.finish()
}
