//! Scenario: the bad-input table. Every ioctl (and the two mmaps) with each
//! kind of invalid argument gets one row naming the errno it must fail
//! with: null, unmapped, kernel and half-mapped pointers, out-of-range BAR
//! indices, zero / non-power-of-two / huge BAR sizes, a 64-bit BAR's upper
//! half, capability overflow, calls in the wrong order, double REGISTER,
//! watchpoint and IRQ vectors out of range, closed eventfds. Each row runs
//! on a fresh device brought to the stage the row names, so rows cannot
//! disturb each other. Ioctls this kernel does not implement yet are
//! listed in `NOT_YET` and must answer ENOTTY; their rows join the table
//! once the kernel has them. DMA rows read only host RAM of this process
//! (its physical address from /proc/self/pagemap) and never write any
//! memory but its own. Afterwards a device still registers and binds, and
//! the kernel log is clean.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::time::Duration;

use pciem_abi::*;
use pciem_core::config::{Bar, Capability, MsiCap};
use pciem_core::ConfigBuilder;
use pciem_vmtest::sysfs::{driver_of, find_devices, wait_until};
use pciem_vmtest::{
    klog, sysfs, Dev, Instance, Report, TESTDRV, TEST_DEVICE_IOMAP, TEST_DEVICE_UNBOUND,
    TEST_VENDOR,
};
use zerocopy::{Immutable, IntoBytes};

const PAGE: usize = 4096;

/// How far a row's device gets before the row's call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// `/dev/pciem` opened, nothing else.
    Open,
    /// CREATE_DEVICE done.
    Created,
    /// The usual test device described (BAR0 4K, BAR2 64K 64-bit, MSI),
    /// with an ID no driver binds to; not registered.
    Described,
    /// The same, registered; no driver bound (MSI stays disabled).
    Registered,
    /// Registered with the ID `pciem_testdrv` binds to; the driver has
    /// mapped BAR0 and enabled one MSI vector.
    Bound,
    /// Registered, no driver, and Bus Master Enable set in the Command
    /// register through sysfs (DMA and P2P need it).
    Master,
}

/// A device at some stage, and its instance file once registered.
struct Fx {
    dev: Dev,
    inst: Option<Instance>,
}

impl Fx {
    fn fd(&self) -> RawFd {
        self.dev.raw()
    }

    fn inst_fd(&self) -> io::Result<RawFd> {
        self.inst
            .as_ref()
            .map(Instance::raw)
            .ok_or_else(|| io::Error::other("row needs a registered device"))
    }
}

/// Sets Bus Master Enable (Command bit 2) of the one device with this ID,
/// as `pci_set_master` would, by a config write through sysfs.
fn set_bus_master(device: u16) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let path = find_devices(TEST_VENDOR, device)
        .pop()
        .ok_or_else(|| io::Error::other("device not in sysfs"))?;
    let cfg = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path.join("config"))?;
    let mut cmd = [0u8; 2];
    cfg.read_exact_at(&mut cmd, 4)?;
    let v = u16::from_le_bytes(cmd) | 0x4;
    cfg.write_all_at(&v.to_le_bytes(), 4)
}

/// The first `p2p_regions=` entry pciem.ko was loaded with, as
/// (address, size).
fn p2p_region() -> io::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/sys/module/pciem/parameters/p2p_regions")?;
    let first = text.trim().split(',').next().unwrap_or_default();
    let (a, sz) = first
        .split_once(':')
        .ok_or_else(|| io::Error::other(format!("p2p_regions {text:?}")))?;
    let num = |t: &str| {
        let (digits, mult) = match t.chars().last() {
            Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
            Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
            Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
            _ => (t, 1),
        };
        sysfs::parse_num(digits).map(|n| n * mult)
    };
    match (num(a), num(sz)) {
        (Some(a), Some(sz)) => Ok((a, sz)),
        _ => Err(io::Error::other(format!("p2p_regions {text:?}"))),
    }
}

fn fixture(stage: Stage) -> io::Result<Fx> {
    let dev = Dev::open()?;
    let mut inst = None;
    match stage {
        Stage::Open => {}
        Stage::Created => dev.create()?,
        Stage::Described => dev.describe_test_device(TEST_DEVICE_UNBOUND)?,
        Stage::Registered => {
            dev.describe_test_device(TEST_DEVICE_UNBOUND)?;
            inst = Some(dev.register()?);
        }
        Stage::Master => {
            dev.describe_test_device(TEST_DEVICE_UNBOUND)?;
            // No driver maps anything for this device: with DMA checking
            // every DMA row would end in the checker's EFAULT. The rows
            // are about the module's own validation behind it (the checker
            // has vmtest-dma-check).
            dev.set_dma_check(pciem_abi::PCIEM_DMA_CHECK_OFF)?;
            inst = Some(dev.register()?);
            set_bus_master(TEST_DEVICE_UNBOUND)?;
        }
        Stage::Bound => {
            dev.describe_test_device(TEST_DEVICE_IOMAP)?;
            inst = Some(dev.register()?);
            let bound = wait_until(Duration::from_secs(3), || {
                find_devices(TEST_VENDOR, TEST_DEVICE_IOMAP)
                    .first()
                    .and_then(|d| driver_of(d))
                    .as_deref()
                    == Some(TESTDRV)
            });
            if !bound {
                return Err(io::Error::other("pciem_testdrv did not bind"));
            }
        }
    }
    Ok(Fx { dev, inst })
}

/// One row of the table.
struct Row {
    ioctl: &'static str,
    what: &'static str,
    stage: Stage,
    want: i32,
    call: fn(&Fx) -> io::Result<i32>,
}

const fn row(
    ioctl: &'static str,
    what: &'static str,
    stage: Stage,
    want: i32,
    call: fn(&Fx) -> io::Result<i32>,
) -> Row {
    Row {
        ioctl,
        what,
        stage,
        want,
        call,
    }
}

fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::EALREADY => "EALREADY",
        libc::ERANGE => "ERANGE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EACCES => "EACCES",
        libc::ELOOP => "ELOOP",
        libc::EINTR => "EINTR",
        _ => "E?",
    }
}

/// `ioctl(fd, req, addr)` with any address, good or bad.
fn ioc_at(fd: RawFd, req: u32, addr: usize) -> io::Result<i32> {
    pciem_vmtest::device::ioctl_at(fd, req, addr)
}

/// A DMA_POISON rule of `len` bytes at `addr`, until cleared.
const fn poison_rule(addr: u64, len: u64) -> pciem_fault_rule {
    pciem_fault_rule {
        kind: PCIEM_FAULT_DMA_POISON,
        bar: 0,
        addr,
        len,
        count: 0,
        flags: 0,
    }
}

/// A READ_TIMEOUT rule on BAR `bar`.
const fn timeout_rule(bar: u32, addr: u64, len: u64) -> pciem_fault_rule {
    pciem_fault_rule {
        kind: PCIEM_FAULT_READ_TIMEOUT,
        bar,
        addr,
        len,
        count: 0,
        flags: 0,
    }
}

fn ioc<T: IntoBytes + Immutable>(fd: RawFd, req: u32, arg: &T) -> io::Result<i32> {
    ioc_at(fd, req, arg.as_bytes().as_ptr() as usize)
}

/// A user address that is never mapped: below `vm.mmap_min_addr` (64 KiB
/// on this kernel), where no mmap of ours can land. (A page unmapped
/// after use would not do: the next mmap reuses the hole.)
fn unmapped() -> usize {
    0x1000
}

/// The last 16 bytes of a mapped page followed by a page with no access:
/// an argument that starts in valid memory and runs off its end. The
/// guard page stays reserved, so no later mapping fills it.
fn half_mapped() -> usize {
    static ADDR: OnceLock<usize> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let p = anon_map(2 * PAGE);
        // SAFETY: changes the protection of the second page of the
        // mapping just made, which nothing references.
        unsafe { libc::mprotect((p + PAGE) as *mut libc::c_void, PAGE, libc::PROT_NONE) };
        p + PAGE - 16
    })
}

fn anon_map(len: usize) -> usize {
    // SAFETY: a fresh anonymous mapping chosen by the kernel.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "anonymous mmap failed");
    p as usize
}

/// An address in the kernel half: `access_ok` must reject it.
const KERNEL_ADDR: usize = 0xffff_8880_0000_0000;

fn bar(fx: &Fx, bar_index: u32, flags: u32, size: u64) -> io::Result<i32> {
    let b = pciem_bar_config {
        bar_index,
        flags,
        size,
    };
    ioc(fx.fd(), PCIEM_IOCTL_ADD_BAR, &b)
}

fn cap_raw(fx: &Fx, cap_type: u32, cap_size: u32, offset: u32, data: &[u8]) -> io::Result<i32> {
    let mut c = pciem_cap_config {
        cap_type,
        cap_size,
        offset,
        ..Default::default()
    };
    let n = data.len().min(c.cap_data.len());
    c.cap_data[..n].copy_from_slice(&data[..n]);
    ioc(fx.fd(), PCIEM_IOCTL_ADD_CAPABILITY, &c)
}

fn msi(fx: &Fx, log2: u8) -> io::Result<i32> {
    cap_raw(fx, PCIEM_CAP_MSI, 4, 0, &[log2, 1, 0, 0])
}

/// A vendor-specific capability carrying `len` data bytes.
fn vendor(fx: &Fx, len: u16) -> io::Result<i32> {
    let v = pciem_cap_vendor_userspace {
        data_len: len,
        reserved: 0,
        data: [0x5a; PCIEM_VENDOR_DATA_MAX],
    };
    let size = core::mem::size_of::<pciem_cap_vendor_userspace>() as u32;
    cap_raw(fx, PCIEM_CAP_VENDOR, size, 0, v.as_bytes())
}

fn identity(fx: &Fx, header_type: u8, pin: u8, reserved: u16) -> io::Result<i32> {
    let c = pciem_config_space {
        vendor_id: TEST_VENDOR,
        device_id: TEST_DEVICE_UNBOUND,
        subsys_vendor_id: TEST_VENDOR,
        subsys_device_id: TEST_DEVICE_UNBOUND,
        revision: 1,
        class_code: [0, 0x40, 0x0b],
        header_type,
        interrupt_pin: pin,
        reserved,
    };
    ioc(fx.fd(), PCIEM_IOCTL_SET_CONFIG, &c)
}

fn register(fd: RawFd) -> io::Result<i32> {
    let fd = ioc_at(fd, PCIEM_IOCTL_REGISTER, 0)?;
    // SAFETY: a successful REGISTER returns a new fd that we own; closing
    // it right away keeps the row from leaking it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(fd)
}

fn watch(
    fx: &Fx,
    bar_index: u32,
    offset: u32,
    width: u32,
    flags: u32,
    addr: u64,
) -> io::Result<i32> {
    let w = pciem_watchpoint_config {
        bar_index,
        offset,
        width,
        flags,
        addr,
    };
    ioc(fx.fd(), PCIEM_IOCTL_SET_WATCHPOINT, &w)
}

fn kwatch(fx: &Fx, bar_index: u32, offset: u32, width: u32) -> io::Result<i32> {
    watch(fx, bar_index, offset, width, PCIEM_WP_FLAG_BAR_KPROBES, 0)
}

fn eventfd(fx: &Fx, fd: i32, reserved: u32) -> io::Result<i32> {
    let e = pciem_eventfd_config {
        eventfd: fd,
        reserved,
    };
    ioc(fx.fd(), PCIEM_IOCTL_SET_EVENTFD, &e)
}

fn inject(fx: &Fx, vector: u32, kind: u32, flags: u32, reserved: u32) -> io::Result<i32> {
    let i = pciem_irq_inject {
        vector,
        kind,
        flags,
        reserved,
    };
    ioc(fx.fd(), PCIEM_IOCTL_INJECT_IRQ, &i)
}

fn bar_info(fd: RawFd, bar_index: u32) -> io::Result<i32> {
    let mut q = pciem_bar_info_query {
        bar_index,
        ..Default::default()
    };
    ioc_at(
        fd,
        PCIEM_IOCTL_GET_BAR_INFO,
        &mut q as *mut pciem_bar_info_query as usize,
    )
}

/// mmap of `fd`, unmapped again at once if it succeeds.
fn map(fd: RawFd, pgoff: usize, len: usize, flags: i32) -> io::Result<i32> {
    // SAFETY: a fresh mapping chosen by the kernel; unmapped below.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            (pgoff * PAGE) as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(p, len) };
    Ok(0)
}

fn valid_image() -> io::Result<pciem_core::ConfigSpace> {
    ConfigBuilder::new(TEST_VENDOR, TEST_DEVICE_UNBOUND)
        .class(0x0b, 0x40, 0x00)
        .bar(0, Bar::memory64(8192))
        .capability(Capability::Msi(MsiCap::new(1)))
        .build()
        .map_err(|e| io::Error::other(e.to_string()))
}

fn set_image(fx: &Fx, img: &pciem_config_image) -> io::Result<i32> {
    ioc(fx.fd(), PCIEM_IOCTL_SET_CONFIG_IMAGE, img)
}

fn zero_image() -> Box<pciem_config_image> {
    use zerocopy::FromZeros;
    Box::new(pciem_config_image::new_zeroed())
}

/// A fresh eventfd.
fn new_eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd() has no pointer arguments.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if efd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(efd) })
}

fn irqfd(fx: &Fx, eventfd: i32, vector: u32, kind: u32, flags: u32) -> io::Result<i32> {
    let c = pciem_irqfd_config {
        eventfd,
        vector,
        kind,
        flags,
    };
    ioc(fx.fd(), PCIEM_IOCTL_SET_IRQFD, &c)
}

/// Opens /dev/null: an open file that is not an eventfd.
fn dev_null() -> io::Result<OwnedFd> {
    std::fs::File::open("/dev/null").map(OwnedFd::from)
}

/// The number of an fd that was an eventfd and has been closed.
fn closed_eventfd() -> io::Result<i32> {
    // SAFETY: eventfd() has no pointer arguments.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `efd` is ours; closing it leaves a number that names nothing.
    unsafe { libc::close(efd) };
    Ok(efd)
}

/// A locked page of this process and its physical address: host RAM the
/// device may legitimately read (no IOMMU in the VM, so bus == physical),
/// found through /proc/self/pagemap (root sees the frame numbers).
fn own_page() -> io::Result<(usize, u64)> {
    static PAGE_AT: OnceLock<Option<(usize, u64)>> = OnceLock::new();
    let found = *PAGE_AT.get_or_init(|| {
        let va = anon_map(PAGE);
        // SAFETY: `va` is a fresh private mapping of one page; writing it
        // makes the kernel allocate the frame, mlock keeps it there.
        unsafe {
            (va as *mut u8).write_volatile(1);
            libc::mlock(va as *const libc::c_void, PAGE);
        }
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open("/proc/self/pagemap").ok()?;
        f.seek(SeekFrom::Start((va / PAGE) as u64 * 8)).ok()?;
        let mut e = [0u8; 8];
        f.read_exact(&mut e).ok()?;
        let e = u64::from_le_bytes(e);
        let pfn = e & ((1 << 55) - 1);
        (e >> 63 == 1 && pfn != 0).then_some((va, pfn * PAGE as u64))
    });
    found.ok_or_else(|| io::Error::other("no physical address for a page of ours"))
}

fn dma(
    fx: &Fx,
    req: u32,
    bus_addr: u64,
    user_addr: u64,
    length: u64,
    flags: u32,
    reserved: u32,
) -> io::Result<i32> {
    let op = pciem_dma_op {
        bus_addr,
        user_addr,
        length,
        flags,
        reserved,
    };
    ioc(fx.fd(), req, &op)
}

/// DMA_READ of `length` bytes at `bus_addr` into a buffer of ours.
fn dma_read(fx: &Fx, bus_addr: u64, length: u64) -> io::Result<i32> {
    let mut buf = vec![0u8; length.min(1 << 20) as usize];
    dma(
        fx,
        PCIEM_IOCTL_DMA_READ,
        bus_addr,
        buf.as_mut_ptr() as u64,
        length,
        0,
        0,
    )
}

fn atomic(fx: &Fx, bus_addr: u64, op: u32, flags: u32) -> io::Result<i32> {
    let a = pciem_dma_atomic {
        bus_addr,
        operand: 1,
        compare: 0,
        result: 0,
        op,
        flags,
    };
    ioc(fx.fd(), PCIEM_IOCTL_DMA_ATOMIC, &a)
}

fn prp(fx: &Fx, prp1: u64, prp2: u64, length: u64, flags: u32) -> io::Result<i32> {
    let mut buf = vec![0u8; length.min(1 << 20) as usize];
    let req = pciem_dma_indirect {
        prp1,
        prp2,
        user_addr: buf.as_mut_ptr() as u64,
        length,
        page_size: 0,
        flags,
    };
    ioc(fx.fd(), PCIEM_IOCTL_DMA_INDIRECT, &req)
}

fn p2p(fx: &Fx, req: u32, target_addr: u64, length: u64, flags: u32) -> io::Result<i32> {
    let mut buf = vec![0u8; length.min(1 << 20) as usize];
    let op = pciem_p2p_op {
        target_addr,
        user_addr: buf.as_mut_ptr() as u64,
        length,
        flags,
        reserved: 0,
    };
    ioc(fx.fd(), req, &op)
}

/// The local APIC: an address that is not RAM.
const NOT_RAM: u64 = 0xfee0_0000;

use Stage::{Bound, Created, Described, Master, Open, Registered};

/// The table. Expected errnos are what a careful kernel must say; where
/// the kernel said something else the kernel was fixed.
/// The table: one row per malformed argument, in the order they run.
static ROWS: &[Row] = &[
    // ---- SET_FUNCTION: multi-function devices (ABI 6).
    row(
        "SET_FUNCTION",
        "function 8 (a slot has 0..7)",
        Open,
        libc::EINVAL,
        |f| {
            let a = pciem_function {
                function: 8,
                reserved: 0,
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_FUNCTION, &a)
        },
    ),
    row(
        "SET_FUNCTION",
        "reserved not zero",
        Open,
        libc::EINVAL,
        |f| {
            let a = pciem_function {
                function: 1,
                reserved: 1,
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_FUNCTION, &a)
        },
    ),
    row("SET_FUNCTION", "null pointer", Open, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_SET_FUNCTION, 0)
    }),
    row(
        "SET_FUNCTION",
        "after REGISTER, a function never described",
        Registered,
        libc::ENOENT,
        |f| f.dev.set_function(1).map(|_| 0),
    ),
    row(
        "CREATE_DEVICE",
        "function 1 described twice",
        Described,
        libc::EEXIST,
        |f| {
            f.dev.set_function(1)?;
            f.dev.describe_test_device(TEST_DEVICE_UNBOUND)?;
            f.dev.set_function(1)?;
            f.dev.create().map(|_| 0)
        },
    ),
    row(
        "REGISTER",
        "function 1 described, function 0 not (a hole at 0)",
        Open,
        libc::EINVAL,
        |f| {
            f.dev.set_function(1)?;
            f.dev.describe_test_device(TEST_DEVICE_UNBOUND)?;
            f.dev.register().map(|_| 0)
        },
    ),
    row(
        "REGISTER",
        "function 2 selected, never described",
        Described,
        libc::EINVAL,
        |f| {
            f.dev.set_function(2)?;
            f.dev.register().map(|_| 0)
        },
    ),
    row(
        "REGISTER",
        "multi-function device below a root port",
        Described,
        libc::EOPNOTSUPP,
        |f| {
            f.dev.set_root_port()?;
            f.dev.set_function(1)?;
            f.dev.describe_test_device(TEST_DEVICE_UNBOUND)?;
            f.dev.register().map(|_| 0)
        },
    ),
    row(
        "SURPRISE_REMOVE",
        "a multi-function device",
        Described,
        libc::EOPNOTSUPP,
        |f| {
            f.dev.set_function(1)?;
            f.dev.describe_test_device(TEST_DEVICE_UNBOUND)?;
            let _inst = f.dev.register()?;
            f.dev.surprise_remove().map(|_| 0)
        },
    ),
    // ---- GET_VERSION: only pointer checks.
    row("GET_VERSION", "null pointer", Open, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_GET_VERSION, 0)
    }),
    row("GET_VERSION", "unmapped pointer", Open, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_GET_VERSION, unmapped())
    }),
    row("GET_VERSION", "kernel address", Open, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_GET_VERSION, KERNEL_ADDR)
    }),
    row(
        "GET_VERSION",
        "struct runs into an unmapped page",
        Open,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_GET_VERSION, half_mapped() + 8),
    ),
    // ---- unknown requests.
    row("unknown", "foreign ioctl 0x5099", Open, libc::ENOTTY, |f| {
        ioc_at(f.fd(), 0x5099, 0)
    }),
    row(
        "unknown",
        "pciem magic, number 0x7f",
        Open,
        libc::ENOTTY,
        |f| ioc_at(f.fd(), 0x8000_507f, 0),
    ),
    row(
        "unknown",
        "GET_VERSION encoded with a wrong size",
        Open,
        libc::ENOTTY,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_GET_VERSION + (1 << 16), 0),
    ),
    // ---- CREATE_DEVICE.
    row("CREATE_DEVICE", "null pointer", Open, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_CREATE_DEVICE, 0)
    }),
    row(
        "CREATE_DEVICE",
        "unmapped pointer",
        Open,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_CREATE_DEVICE, unmapped()),
    ),
    row("CREATE_DEVICE", "flags set", Open, libc::EINVAL, |f| {
        let c = pciem_create_device {
            flags: 1,
            reserved: 0,
        };
        ioc(f.fd(), PCIEM_IOCTL_CREATE_DEVICE, &c)
    }),
    row("CREATE_DEVICE", "reserved set", Open, libc::EINVAL, |f| {
        let c = pciem_create_device {
            flags: 0,
            reserved: 1,
        };
        ioc(f.fd(), PCIEM_IOCTL_CREATE_DEVICE, &c)
    }),
    row("CREATE_DEVICE", "twice", Created, libc::EEXIST, |f| {
        f.dev.create().map(|_| 0)
    }),
    row(
        "CREATE_DEVICE",
        "after REGISTER",
        Registered,
        libc::EEXIST,
        |f| f.dev.create().map(|_| 0),
    ),
    row(
        "CREATE_DEVICE",
        "on the instance file",
        Registered,
        libc::EEXIST,
        |f| {
            ioc(
                f.inst_fd()?,
                PCIEM_IOCTL_CREATE_DEVICE,
                &pciem_create_device::default(),
            )
        },
    ),
    // ---- ADD_BAR.
    row("ADD_BAR", "null pointer", Created, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_ADD_BAR, 0)
    }),
    row("ADD_BAR", "before CREATE_DEVICE", Open, libc::EINVAL, |f| {
        bar(f, 0, 0, 4096)
    }),
    row("ADD_BAR", "index 6", Created, libc::EINVAL, |f| {
        bar(f, 6, 0, 4096)
    }),
    row("ADD_BAR", "index u32::MAX", Created, libc::EINVAL, |f| {
        bar(f, u32::MAX, 0, 4096)
    }),
    row("ADD_BAR", "size 0", Created, libc::EINVAL, |f| {
        bar(f, 0, 0, 0)
    }),
    row("ADD_BAR", "size 3", Created, libc::EINVAL, |f| {
        bar(f, 0, 0, 3)
    }),
    row("ADD_BAR", "size 8 (below 16)", Created, libc::EINVAL, |f| {
        bar(f, 0, 0, 8)
    }),
    row(
        "ADD_BAR",
        "size 0x3000 (not a power of two)",
        Created,
        libc::EINVAL,
        |f| bar(f, 0, 0, 0x3000),
    ),
    row(
        "ADD_BAR",
        "32-bit BAR of 8 GiB",
        Created,
        libc::EINVAL,
        |f| bar(f, 0, PCIEM_BAR_MEM_TYPE_32, 8 << 30),
    ),
    row("ADD_BAR", "size u64::MAX", Created, libc::EINVAL, |f| {
        bar(f, 0, PCIEM_BAR_MEM_TYPE_64, u64::MAX)
    }),
    row("ADD_BAR", "I/O space", Created, libc::EINVAL, |f| {
        bar(f, 0, PCIEM_BAR_SPACE_IO, 4096)
    }),
    row(
        "ADD_BAR",
        "reserved type bit 1",
        Created,
        libc::EINVAL,
        |f| bar(f, 0, 2, 4096),
    ),
    row("ADD_BAR", "unknown flag 0x10", Created, libc::EINVAL, |f| {
        bar(f, 0, 0x10, 4096)
    }),
    row(
        "ADD_BAR",
        "64-bit BAR at slot 5",
        Created,
        libc::EINVAL,
        |f| bar(f, 5, PCIEM_BAR_MEM_TYPE_64, 4096),
    ),
    row(
        "ADD_BAR",
        "the upper half of a 64-bit BAR",
        Created,
        libc::EINVAL,
        |f| {
            bar(f, 0, PCIEM_BAR_MEM_TYPE_64, 4096)?;
            bar(f, 1, PCIEM_BAR_MEM_TYPE_32, 4096)
        },
    ),
    row(
        "ADD_BAR",
        "64-bit BAR whose upper slot is taken",
        Created,
        libc::EINVAL,
        |f| {
            bar(f, 2, PCIEM_BAR_MEM_TYPE_32, 4096)?;
            bar(f, 1, PCIEM_BAR_MEM_TYPE_64, 4096)
        },
    ),
    row(
        "ADD_BAR",
        "the same slot twice",
        Created,
        libc::EINVAL,
        |f| {
            bar(f, 3, PCIEM_BAR_MEM_TYPE_32, 4096)?;
            bar(f, 3, PCIEM_BAR_MEM_TYPE_32, 4096)
        },
    ),
    row("ADD_BAR", "after REGISTER", Registered, libc::EBUSY, |f| {
        bar(f, 4, 0, 4096)
    }),
    row(
        "ADD_BAR",
        "after SET_CONFIG_IMAGE",
        Open,
        libc::EBUSY,
        |f| {
            set_image(f, valid_image()?.image())?;
            bar(f, 2, 0, 4096)
        },
    ),
    // ---- ADD_CAPABILITY.
    row(
        "ADD_CAPABILITY",
        "null pointer",
        Created,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_ADD_CAPABILITY, 0),
    ),
    row(
        "ADD_CAPABILITY",
        "struct runs into an unmapped page",
        Created,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_ADD_CAPABILITY, half_mapped()),
    ),
    row(
        "ADD_CAPABILITY",
        "before CREATE_DEVICE",
        Open,
        libc::EINVAL,
        |f| msi(f, 0),
    ),
    row(
        "ADD_CAPABILITY",
        "unknown type 99",
        Created,
        libc::EINVAL,
        |f| cap_raw(f, 99, 4, 0, &[0; 4]),
    ),
    row(
        "ADD_CAPABILITY",
        "MSI with cap_size 3",
        Created,
        libc::EINVAL,
        |f| cap_raw(f, PCIEM_CAP_MSI, 3, 0, &[0, 1, 0, 0]),
    ),
    row(
        "ADD_CAPABILITY",
        "cap_size 1000 (past cap_data)",
        Created,
        libc::EINVAL,
        |f| cap_raw(f, PCIEM_CAP_MSI, 1000, 0, &[0, 1, 0, 0]),
    ),
    row(
        "ADD_CAPABILITY",
        "reserved set",
        Created,
        libc::EINVAL,
        |f| {
            let mut c = pciem_cap_config {
                cap_type: PCIEM_CAP_MSI,
                cap_size: 4,
                reserved: 1,
                ..Default::default()
            };
            c.cap_data[1] = 1;
            ioc(f.fd(), PCIEM_IOCTL_ADD_CAPABILITY, &c)
        },
    ),
    row(
        "ADD_CAPABILITY",
        "MSI with 64 vectors",
        Created,
        libc::EINVAL,
        |f| msi(f, 6),
    ),
    row(
        "ADD_CAPABILITY",
        "MSI twice",
        Described,
        libc::EINVAL,
        |f| msi(f, 0),
    ),
    row(
        "ADD_CAPABILITY",
        "offset 0x41 (misaligned; refused at layout)",
        Created,
        libc::EINVAL,
        |f| {
            bar(f, 0, 0, 4096)?;
            identity(f, 0, 0, 0)?;
            cap_raw(f, PCIEM_CAP_MSI, 4, 0x41, &[0, 1, 0, 0])?;
            register(f.fd())
        },
    ),
    row(
        "ADD_CAPABILITY",
        "offset 0x1000 (past config space)",
        Created,
        libc::EINVAL,
        |f| cap_raw(f, PCIEM_CAP_MSI, 4, 0x1000, &[0, 1, 0, 0]),
    ),
    row(
        "ADD_CAPABILITY",
        "vendor data of 57 bytes",
        Created,
        libc::E2BIG,
        |f| vendor(f, PCIEM_VENDOR_DATA_MAX as u16 + 1),
    ),
    row(
        "ADD_CAPABILITY",
        "a 17th capability",
        Created,
        libc::ENOSPC,
        |f| {
            for _ in 0..16 {
                vendor(f, 1)?;
            }
            vendor(f, 1)
        },
    ),
    row(
        "ADD_CAPABILITY",
        "after REGISTER",
        Registered,
        libc::EBUSY,
        |f| vendor(f, 1),
    ),
    // ---- SET_CONFIG.
    row("SET_CONFIG", "null pointer", Created, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_SET_CONFIG, 0)
    }),
    row(
        "SET_CONFIG",
        "before CREATE_DEVICE",
        Open,
        libc::EINVAL,
        |f| identity(f, 0, 0, 0),
    ),
    row("SET_CONFIG", "reserved set", Created, libc::EINVAL, |f| {
        identity(f, 0, 0, 1)
    }),
    row(
        "SET_CONFIG",
        "header type 1 (bridge)",
        Created,
        libc::EINVAL,
        |f| identity(f, 1, 0, 0),
    ),
    row(
        "SET_CONFIG",
        "interrupt pin 5",
        Created,
        libc::EINVAL,
        |f| identity(f, 0, 5, 0),
    ),
    row(
        "SET_CONFIG",
        "after REGISTER",
        Registered,
        libc::EBUSY,
        |f| identity(f, 0, 0, 0),
    ),
    // ---- SET_CONFIG_IMAGE.
    row(
        "SET_CONFIG_IMAGE",
        "null pointer",
        Open,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_SET_CONFIG_IMAGE, 0),
    ),
    row(
        "SET_CONFIG_IMAGE",
        "12 KiB struct from a 16-byte mapping",
        Open,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_SET_CONFIG_IMAGE, half_mapped()),
    ),
    row(
        "SET_CONFIG_IMAGE",
        "an all-zero image, then REGISTER",
        Open,
        libc::EINVAL,
        |f| {
            set_image(f, &zero_image())?;
            register(f.fd())
        },
    ),
    row(
        "SET_CONFIG_IMAGE",
        "header type 1",
        Open,
        libc::EINVAL,
        |f| {
            let mut img = Box::new(*valid_image()?.image());
            img.config[0x0e] = 1;
            set_image(f, &img)
        },
    ),
    row(
        "SET_CONFIG_IMAGE",
        "writable BAR type bits",
        Open,
        libc::EINVAL,
        |f| {
            let mut img = Box::new(*valid_image()?.image());
            img.wmask[0x10] |= 0x1;
            set_image(f, &img)
        },
    ),
    row(
        "SET_CONFIG_IMAGE",
        "after REGISTER",
        Registered,
        libc::EBUSY,
        |f| set_image(f, valid_image()?.image()),
    ),
    // ---- REGISTER: order, doubles, and descriptions that only fail
    // when the whole configuration space is laid out.
    row(
        "REGISTER",
        "before anything is described",
        Open,
        libc::EINVAL,
        |f| register(f.fd()),
    ),
    row(
        "REGISTER",
        "without SET_CONFIG (vendor ID 0)",
        Created,
        libc::EINVAL,
        |f| {
            bar(f, 0, 0, 4096)?;
            register(f.fd())
        },
    ),
    row("REGISTER", "twice", Registered, libc::EBUSY, |f| {
        register(f.fd())
    }),
    row(
        "REGISTER",
        "on the instance file",
        Registered,
        libc::EBUSY,
        |f| register(f.inst_fd()?),
    ),
    row(
        "REGISTER",
        "a 1 GiB BAR (larger than the pool)",
        Created,
        libc::ENOSPC,
        |f| {
            bar(f, 0, PCIEM_BAR_MEM_TYPE_64, 1 << 30)?;
            identity(f, 0, 0, 0)?;
            register(f.fd())
        },
    ),
    row(
        "REGISTER",
        "capabilities overflow 256 bytes",
        Described,
        libc::ENOSPC,
        |f| {
            for _ in 0..4 {
                vendor(f, PCIEM_VENDOR_DATA_MAX as u16)?;
            }
            register(f.fd())
        },
    ),
    row(
        "REGISTER",
        "MSI-X table in an undeclared BAR",
        Created,
        libc::EINVAL,
        |f| {
            bar(f, 0, 0, 4096)?;
            identity(f, 0, 0, 0)?;
            let x = pciem_cap_msix_userspace {
                table_size: 4,
                table_bar: 4,
                pba_bar: 4,
                table_offset: 0,
                pba_offset: 0x800,
            };
            let size = core::mem::size_of::<pciem_cap_msix_userspace>() as u32;
            cap_raw(f, PCIEM_CAP_MSIX, size, 0, x.as_bytes())?;
            register(f.fd())
        },
    ),
    // ---- GET_BAR_INFO.
    row(
        "GET_BAR_INFO",
        "null pointer",
        Described,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_GET_BAR_INFO, 0),
    ),
    row(
        "GET_BAR_INFO",
        "unmapped pointer",
        Registered,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_GET_BAR_INFO, unmapped()),
    ),
    row("GET_BAR_INFO", "index 6", Registered, libc::EINVAL, |f| {
        bar_info(f.fd(), 6)
    }),
    row(
        "GET_BAR_INFO",
        "index u32::MAX",
        Described,
        libc::EINVAL,
        |f| bar_info(f.fd(), u32::MAX),
    ),
    row(
        "GET_BAR_INFO",
        "before anything is described",
        Open,
        libc::EINVAL,
        |f| bar_info(f.fd(), 0),
    ),
    // ---- SET_WATCHPOINT.
    row(
        "SET_WATCHPOINT",
        "null pointer",
        Registered,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_SET_WATCHPOINT, 0),
    ),
    row("SET_WATCHPOINT", "BAR 9", Registered, libc::EINVAL, |f| {
        kwatch(f, 9, 0, 4)
    }),
    row(
        "SET_WATCHPOINT",
        "BAR 1 (unused slot)",
        Registered,
        libc::EINVAL,
        |f| kwatch(f, 1, 0, 4),
    ),
    row("SET_WATCHPOINT", "width 0", Registered, libc::EINVAL, |f| {
        kwatch(f, 0, 0, 0)
    }),
    row("SET_WATCHPOINT", "width 3", Registered, libc::EINVAL, |f| {
        kwatch(f, 0, 0, 3)
    }),
    row(
        "SET_WATCHPOINT",
        "width 16",
        Registered,
        libc::EINVAL,
        |f| kwatch(f, 0, 0, 16),
    ),
    row(
        "SET_WATCHPOINT",
        "offset not aligned to width",
        Registered,
        libc::EINVAL,
        |f| kwatch(f, 0, 2, 4),
    ),
    row(
        "SET_WATCHPOINT",
        "offset just past the BAR",
        Registered,
        libc::EINVAL,
        |f| kwatch(f, 0, 4096, 4),
    ),
    row(
        "SET_WATCHPOINT",
        "offset u32::MAX-3",
        Registered,
        libc::EINVAL,
        |f| kwatch(f, 0, u32::MAX - 3, 4),
    ),
    row(
        "SET_WATCHPOINT",
        "unknown flag 0x100",
        Registered,
        libc::EINVAL,
        |f| watch(f, 0, 0, 4, 0x100, 0),
    ),
    row(
        "SET_WATCHPOINT",
        "no way to find the mapping",
        Registered,
        libc::EINVAL,
        |f| watch(f, 0, 0, 4, 0, 0),
    ),
    row(
        "SET_WATCHPOINT",
        "addr without BAR_MANUAL",
        Registered,
        libc::EINVAL,
        |f| watch(f, 0, 0, 4, PCIEM_WP_FLAG_BAR_KPROBES, 0x1000),
    ),
    row(
        "SET_WATCHPOINT",
        "BAR_MANUAL before REGISTER",
        Described,
        libc::EINVAL,
        |f| watch(f, 0, 0, 4, PCIEM_WP_FLAG_BAR_MANUAL, 0xffff_ffff_dead_0000),
    ),
    row(
        "SET_WATCHPOINT",
        "BAR not mapped by any driver",
        Registered,
        libc::EAGAIN,
        |f| kwatch(f, 0, 0, 4),
    ),
    row(
        "SET_WATCHPOINT",
        "CLEAR of a register not watched",
        Registered,
        libc::ENOENT,
        |f| watch(f, 0, 8, 4, PCIEM_WP_FLAG_CLEAR, 0),
    ),
    row(
        "SET_WATCHPOINT",
        "the same register twice",
        Bound,
        libc::EEXIST,
        |f| {
            kwatch(f, 0, 0, 4)?;
            kwatch(f, 0, 0, 4)
        },
    ),
    row(
        "SET_WATCHPOINT",
        "the same register twice, before REGISTER",
        Described,
        libc::EEXIST,
        |f| {
            kwatch(f, 0, 8, 4)?;
            kwatch(f, 0, 8, 2)
        },
    ),
    row(
        "SET_WATCHPOINT",
        "a fifth register",
        Bound,
        libc::ENOSPC,
        |f| {
            for off in [0, 4, 8, 12] {
                kwatch(f, 0, off, 4)?;
            }
            kwatch(f, 0, 16, 4)
        },
    ),
    // ---- SET_EVENTFD.
    // ---- fault injection (docs/fault-injection.md); no row may
    // succeed: a surprise removal would take the fixture away.
    row(
        "SURPRISE_REMOVE",
        "null pointer",
        Registered,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_SURPRISE_REMOVE, 0),
    ),
    row(
        "SURPRISE_REMOVE",
        "flags set",
        Registered,
        libc::EINVAL,
        |f| {
            let a = pciem_surprise_remove {
                flags: 1,
                reserved: 0,
            };
            ioc(f.fd(), PCIEM_IOCTL_SURPRISE_REMOVE, &a)
        },
    ),
    row(
        "SURPRISE_REMOVE",
        "before REGISTER",
        Described,
        libc::EINVAL,
        |f| {
            ioc(
                f.fd(),
                PCIEM_IOCTL_SURPRISE_REMOVE,
                &pciem_surprise_remove::default(),
            )
        },
    ),
    row(
        "SET_ROOT_PORT",
        "null pointer",
        Described,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_SET_ROOT_PORT, 0),
    ),
    row(
        "SET_ROOT_PORT",
        "no HOTPLUG flag",
        Described,
        libc::EINVAL,
        |f| {
            let a = pciem_root_port {
                flags: PCIEM_ROOT_PORT_AER,
                reserved: 0,
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_ROOT_PORT, &a)
        },
    ),
    row(
        "SET_ROOT_PORT",
        "unknown flag",
        Described,
        libc::EINVAL,
        |f| {
            let a = pciem_root_port {
                flags: PCIEM_ROOT_PORT_HOTPLUG | 1 << 7,
                reserved: 0,
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_ROOT_PORT, &a)
        },
    ),
    row(
        "SET_ROOT_PORT",
        "after REGISTER",
        Registered,
        libc::EBUSY,
        |f| {
            let a = pciem_root_port {
                flags: PCIEM_ROOT_PORT_HOTPLUG,
                reserved: 0,
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_ROOT_PORT, &a)
        },
    ),
    row(
        "INJECT_AER",
        "null pointer",
        Registered,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_INJECT_AER, 0),
    ),
    row(
        "INJECT_AER",
        "before REGISTER",
        Described,
        libc::EINVAL,
        |f| {
            let a = pciem_aer_inject {
                status: 1,
                ..Default::default()
            };
            ioc(f.fd(), PCIEM_IOCTL_INJECT_AER, &a)
        },
    ),
    row(
        "INJECT_AER",
        "no root port",
        Registered,
        libc::EOPNOTSUPP,
        |f| {
            let a = pciem_aer_inject {
                status: 1,
                ..Default::default()
            };
            ioc(f.fd(), PCIEM_IOCTL_INJECT_AER, &a)
        },
    ),
    // REINSERT (ABI 7): none may succeed (the fixtures are never removed).
    row("REINSERT", "null pointer", Registered, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_REINSERT, 0)
    }),
    row("REINSERT", "flags set", Registered, libc::EINVAL, |f| {
        let a = pciem_reinsert {
            flags: 1,
            reserved: 0,
        };
        ioc(f.fd(), PCIEM_IOCTL_REINSERT, &a)
    }),
    row("REINSERT", "reserved set", Registered, libc::EINVAL, |f| {
        let a = pciem_reinsert {
            flags: 0,
            reserved: 1,
        };
        ioc(f.fd(), PCIEM_IOCTL_REINSERT, &a)
    }),
    row(
        "REINSERT",
        "before REGISTER",
        Described,
        libc::EINVAL,
        |f| ioc(f.fd(), PCIEM_IOCTL_REINSERT, &pciem_reinsert::default()),
    ),
    row(
        "REINSERT",
        "a device that was not removed",
        Registered,
        libc::EALREADY,
        |f| ioc(f.fd(), PCIEM_IOCTL_REINSERT, &pciem_reinsert::default()),
    ),
    // SET_FAULT (ABI 7). The test device's BAR 0 and 2 are directly
    // mapped, slot 5 is unused.
    row("SET_FAULT", "null pointer", Registered, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_SET_FAULT, 0)
    }),
    row(
        "SET_FAULT",
        "before REGISTER",
        Described,
        libc::EINVAL,
        |f| ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &poison_rule(0x1000, 8)),
    ),
    row("SET_FAULT", "unknown kind", Registered, libc::EINVAL, |f| {
        let a = pciem_fault_rule {
            kind: 9,
            ..poison_rule(0x1000, 8)
        };
        ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &a)
    }),
    row(
        "SET_FAULT",
        "undefined flag",
        Registered,
        libc::EINVAL,
        |f| {
            let a = pciem_fault_rule {
                flags: 2,
                ..poison_rule(0x1000, 8)
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &a)
        },
    ),
    row(
        "SET_FAULT",
        "AER flag without a root port",
        Registered,
        libc::EOPNOTSUPP,
        |f| {
            let a = pciem_fault_rule {
                flags: PCIEM_FAULT_FLAG_AER,
                ..poison_rule(0x1000, 8)
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &a)
        },
    ),
    row(
        "SET_FAULT",
        "AER flag on a READ_TIMEOUT rule",
        Registered,
        libc::EINVAL,
        |f| {
            let a = pciem_fault_rule {
                flags: PCIEM_FAULT_FLAG_AER,
                ..timeout_rule(0, 0, 4)
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &a)
        },
    ),
    row(
        "SET_FAULT",
        "CLEAR with a range",
        Registered,
        libc::EINVAL,
        |f| {
            let a = pciem_fault_rule {
                kind: PCIEM_FAULT_CLEAR,
                ..poison_rule(0x1000, 8)
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &a)
        },
    ),
    row("SET_FAULT", "len 0", Registered, libc::EINVAL, |f| {
        ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &poison_rule(0x1000, 0))
    }),
    row(
        "SET_FAULT",
        "range wraps around",
        Registered,
        libc::EINVAL,
        |f| ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &poison_rule(u64::MAX, 2)),
    ),
    row(
        "SET_FAULT",
        "DMA_POISON naming a BAR",
        Registered,
        libc::EINVAL,
        |f| {
            let a = pciem_fault_rule {
                bar: 2,
                ..poison_rule(0x1000, 8)
            };
            ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &a)
        },
    ),
    row(
        "SET_FAULT",
        "READ_TIMEOUT on a directly mapped BAR",
        Registered,
        libc::EINVAL,
        |f| ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &timeout_rule(0, 0, 4)),
    ),
    row(
        "SET_FAULT",
        "READ_TIMEOUT on an unused BAR slot",
        Registered,
        libc::EINVAL,
        |f| ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &timeout_rule(5, 0, 4)),
    ),
    row(
        "SET_FAULT",
        "READ_TIMEOUT on BAR 6",
        Registered,
        libc::EINVAL,
        |f| ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &timeout_rule(6, 0, 4)),
    ),
    row(
        "SET_FAULT",
        "a ninth rule (table full)",
        Registered,
        libc::ENOSPC,
        |f| {
            for i in 0..u64::from(PCIEM_MAX_FAULT_RULES) {
                ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &poison_rule(i << 12, 8))?;
            }
            ioc(f.fd(), PCIEM_IOCTL_SET_FAULT, &poison_rule(0x10_0000, 8))
        },
    ),
    row("SET_EVENTFD", "null pointer", Open, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_SET_EVENTFD, 0)
    }),
    row("SET_EVENTFD", "reserved set", Open, libc::EINVAL, |f| {
        let efd = f.dev.attach_eventfd()?;
        eventfd(f, efd.as_raw_fd(), 1)
    }),
    row(
        "SET_EVENTFD",
        "an open file that is not an eventfd",
        Open,
        libc::EINVAL,
        |f| {
            let null = dev_null()?;
            eventfd(f, null.as_raw_fd(), 0)
        },
    ),
    row("SET_EVENTFD", "a closed eventfd", Open, libc::EBADF, |f| {
        eventfd(f, closed_eventfd()?, 0)
    }),
    row(
        "SET_EVENTFD",
        "fd 9999 (never opened)",
        Open,
        libc::EBADF,
        |f| eventfd(f, 9999, 0),
    ),
    row("SET_EVENTFD", "fd -2", Open, libc::EBADF, |f| {
        eventfd(f, -2, 0)
    }),
    row("SET_EVENTFD", "fd i32::MIN", Open, libc::EBADF, |f| {
        eventfd(f, i32::MIN, 0)
    }),
    // ---- INJECT_IRQ.
    row(
        "INJECT_IRQ",
        "null pointer",
        Registered,
        libc::EFAULT,
        |f| ioc_at(f.fd(), PCIEM_IOCTL_INJECT_IRQ, 0),
    ),
    row(
        "INJECT_IRQ",
        "before REGISTER",
        Described,
        libc::ENODEV,
        |f| inject(f, 0, PCIEM_IRQ_MSI, 0, 0),
    ),
    row("INJECT_IRQ", "reserved set", Bound, libc::EINVAL, |f| {
        inject(f, 0, PCIEM_IRQ_MSI, 0, 1)
    }),
    row(
        "INJECT_IRQ",
        "INTx flags on MSI",
        Bound,
        libc::EINVAL,
        |f| inject(f, 0, PCIEM_IRQ_MSI, PCIEM_IRQ_FLAG_ASSERT, 0),
    ),
    row("INJECT_IRQ", "kind 7", Bound, libc::EINVAL, |f| {
        inject(f, 0, 7, 0, 0)
    }),
    row("INJECT_IRQ", "INTx vector 1", Bound, libc::EINVAL, |f| {
        inject(f, 1, PCIEM_IRQ_INTX, PCIEM_IRQ_FLAG_ASSERT, 0)
    }),
    row(
        "INJECT_IRQ",
        "INTx with both ASSERT and DEASSERT",
        Bound,
        libc::EINVAL,
        |f| {
            inject(
                f,
                0,
                PCIEM_IRQ_INTX,
                PCIEM_IRQ_FLAG_ASSERT | PCIEM_IRQ_FLAG_DEASSERT,
                0,
            )
        },
    ),
    row(
        "INJECT_IRQ",
        "MSI-X on a device without MSI-X",
        Bound,
        libc::EOPNOTSUPP,
        |f| inject(f, 0, PCIEM_IRQ_MSIX, 0, 0),
    ),
    row(
        "INJECT_IRQ",
        "INTx on a device without a pin",
        Bound,
        libc::EOPNOTSUPP,
        |f| inject(f, 0, PCIEM_IRQ_INTX, PCIEM_IRQ_FLAG_ASSERT, 0),
    ),
    row(
        "INJECT_IRQ",
        "MSI the driver has not enabled",
        Registered,
        libc::EIO,
        |f| inject(f, 0, PCIEM_IRQ_MSI, 0, 0),
    ),
    row(
        "INJECT_IRQ",
        "MSI vector 1 of 1",
        Bound,
        libc::EINVAL,
        |f| inject(f, 1, PCIEM_IRQ_MSI, 0, 0),
    ),
    row("INJECT_IRQ", "MSI vector 32", Bound, libc::EINVAL, |f| {
        inject(f, 32, PCIEM_IRQ_MSI, 0, 0)
    }),
    row(
        "INJECT_IRQ",
        "MSI vector u32::MAX",
        Bound,
        libc::EINVAL,
        |f| inject(f, u32::MAX, PCIEM_IRQ_MSI, 0, 0),
    ),
    // ---- SET_IRQFD.
    row("SET_IRQFD", "null pointer", Registered, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_SET_IRQFD, 0)
    }),
    row(
        "SET_IRQFD",
        "unknown flags",
        Registered,
        libc::EINVAL,
        |f| {
            let e = new_eventfd()?;
            irqfd(f, e.as_raw_fd(), 0, PCIEM_IRQ_MSI, 0x80)
        },
    ),
    row(
        "SET_IRQFD",
        "unknown kind 9",
        Registered,
        libc::EINVAL,
        |f| {
            let e = new_eventfd()?;
            irqfd(f, e.as_raw_fd(), 0, 9, 0)
        },
    ),
    row(
        "SET_IRQFD",
        "MSI vector 32",
        Registered,
        libc::EINVAL,
        |f| {
            let e = new_eventfd()?;
            irqfd(f, e.as_raw_fd(), 32, PCIEM_IRQ_MSI, 0)
        },
    ),
    row(
        "SET_IRQFD",
        "MSI-X entry 2048",
        Registered,
        libc::EINVAL,
        |f| {
            let e = new_eventfd()?;
            irqfd(f, e.as_raw_fd(), 2048, PCIEM_IRQ_MSIX, 0)
        },
    ),
    row(
        "SET_IRQFD",
        "INTx vector 1",
        Registered,
        libc::EINVAL,
        |f| {
            let e = new_eventfd()?;
            irqfd(f, e.as_raw_fd(), 1, PCIEM_IRQ_INTX, PCIEM_IRQFD_FLAG_LEVEL)
        },
    ),
    row(
        "SET_IRQFD",
        "INTx without LEVEL or DEASSERT",
        Registered,
        libc::EINVAL,
        |f| {
            let e = new_eventfd()?;
            irqfd(f, e.as_raw_fd(), 0, PCIEM_IRQ_INTX, 0)
        },
    ),
    row("SET_IRQFD", "LEVEL on MSI", Registered, libc::EINVAL, |f| {
        let e = new_eventfd()?;
        irqfd(f, e.as_raw_fd(), 0, PCIEM_IRQ_MSI, PCIEM_IRQFD_FLAG_LEVEL)
    }),
    row(
        "SET_IRQFD",
        "a closed eventfd",
        Registered,
        libc::EBADF,
        |f| irqfd(f, closed_eventfd()?, 0, PCIEM_IRQ_MSI, 0),
    ),
    row("SET_IRQFD", "fd -1", Registered, libc::EBADF, |f| {
        irqfd(f, -1, 0, PCIEM_IRQ_MSI, 0)
    }),
    row(
        "SET_IRQFD",
        "an open file that is not an eventfd",
        Registered,
        libc::EINVAL,
        |f| {
            let null = dev_null()?;
            irqfd(f, null.as_raw_fd(), 0, PCIEM_IRQ_MSI, 0)
        },
    ),
    row(
        "SET_IRQFD",
        "the same interrupt twice",
        Registered,
        libc::EBUSY,
        |f| {
            let (a, b) = (new_eventfd()?, new_eventfd()?);
            irqfd(f, a.as_raw_fd(), 0, PCIEM_IRQ_MSI, 0)?;
            irqfd(f, b.as_raw_fd(), 0, PCIEM_IRQ_MSI, 0)
        },
    ),
    row(
        "SET_IRQFD",
        "REMOVE of an unbound interrupt",
        Registered,
        libc::ENOENT,
        |f| {
            let e = new_eventfd()?;
            irqfd(f, e.as_raw_fd(), 3, PCIEM_IRQ_MSI, PCIEM_IRQFD_FLAG_REMOVE)
        },
    ),
    // ---- DMA_READ / DMA_WRITE.
    row(
        "DMA_READ",
        "without Bus Master Enable",
        Registered,
        libc::EPERM,
        |f| dma_read(f, own_page()?.1, 64),
    ),
    row(
        "DMA_ATOMIC",
        "without Bus Master Enable",
        Registered,
        libc::EPERM,
        |f| atomic(f, own_page()?.1 + 8, PCIEM_ATOMIC_FETCH_ADD, 0),
    ),
    row(
        "DMA_INDIRECT",
        "without Bus Master Enable",
        Registered,
        libc::EPERM,
        |f| {
            let bus = own_page()?.1;
            prp(f, bus, 0, 64, 0)
        },
    ),
    row(
        "P2P_READ",
        "without Bus Master Enable",
        Registered,
        libc::EPERM,
        |f| {
            let (addr, _) = p2p_region()?;
            p2p(f, PCIEM_IOCTL_P2P_READ, addr, 64, 0)
        },
    ),
    row("DMA_READ", "null pointer", Master, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_DMA_READ, 0)
    }),
    row("DMA_READ", "unmapped argument", Master, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_DMA_READ, unmapped())
    }),
    row(
        "DMA_READ",
        "before REGISTER",
        Described,
        libc::ENODEV,
        |f| dma_read(f, own_page()?.1, 64),
    ),
    row("DMA_READ", "flags set", Master, libc::EINVAL, |f| {
        let bus = own_page()?.1;
        dma(f, PCIEM_IOCTL_DMA_READ, bus, own_page()?.0 as u64, 64, 1, 0)
    }),
    row("DMA_READ", "reserved set", Master, libc::EINVAL, |f| {
        let bus = own_page()?.1;
        dma(f, PCIEM_IOCTL_DMA_READ, bus, own_page()?.0 as u64, 64, 0, 1)
    }),
    row("DMA_READ", "zero length", Master, libc::EINVAL, |f| {
        dma_read(f, own_page()?.1, 0)
    }),
    row(
        "DMA_READ",
        "16 MiB + 1 (oversized)",
        Master,
        libc::EINVAL,
        |f| dma_read(f, own_page()?.1, PCIEM_DMA_MAX_LEN + 1),
    ),
    row(
        "DMA_READ",
        "user buffer wraps around",
        Master,
        libc::EINVAL,
        |f| {
            dma(
                f,
                PCIEM_IOCTL_DMA_READ,
                own_page()?.1,
                u64::MAX - 15,
                64,
                0,
                0,
            )
        },
    ),
    row(
        "DMA_READ",
        "bus range wraps around",
        Master,
        libc::EINVAL,
        |f| dma_read(f, u64::MAX - 15, 64),
    ),
    row(
        "DMA_READ",
        "bus address 2^60 (no such memory)",
        Master,
        libc::ENXIO,
        |f| dma_read(f, 1 << 60, 64),
    ),
    row(
        "DMA_READ",
        "bus address of the local APIC (not RAM)",
        Master,
        libc::ENXIO,
        |f| dma_read(f, NOT_RAM, 64),
    ),
    row(
        "DMA_READ",
        "bus address of the BAR pool (reserved, not RAM)",
        Master,
        libc::ENXIO,
        |f| {
            let q = f.dev.bar_info(0)?;
            dma_read(f, q.bus_addr, 64)
        },
    ),
    row(
        "DMA_READ",
        "into an unmapped user buffer",
        Master,
        libc::EFAULT,
        |f| {
            dma(
                f,
                PCIEM_IOCTL_DMA_READ,
                own_page()?.1,
                unmapped() as u64,
                64,
                0,
                0,
            )
        },
    ),
    row(
        "DMA_READ",
        "into a read-only user buffer",
        Master,
        libc::EFAULT,
        |f| {
            // The text of this program: mapped, but not writable.
            dma(
                f,
                PCIEM_IOCTL_DMA_READ,
                own_page()?.1,
                main as *const () as u64,
                64,
                0,
                0,
            )
        },
    ),
    row("DMA_WRITE", "null pointer", Master, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_DMA_WRITE, 0)
    }),
    row("DMA_WRITE", "zero length", Master, libc::EINVAL, |f| {
        let (va, bus) = own_page()?;
        dma(f, PCIEM_IOCTL_DMA_WRITE, bus, va as u64, 0, 0, 0)
    }),
    row(
        "DMA_WRITE",
        "to the local APIC (not RAM)",
        Master,
        libc::ENXIO,
        |f| {
            let (va, _) = own_page()?;
            dma(f, PCIEM_IOCTL_DMA_WRITE, NOT_RAM, va as u64, 64, 0, 0)
        },
    ),
    row(
        "DMA_WRITE",
        "from an unmapped user buffer (into our page)",
        Master,
        libc::EFAULT,
        |f| {
            dma(
                f,
                PCIEM_IOCTL_DMA_WRITE,
                own_page()?.1,
                unmapped() as u64,
                64,
                0,
                0,
            )
        },
    ),
    // ---- DMA_ATOMIC.
    row("DMA_ATOMIC", "null pointer", Master, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_DMA_ATOMIC, 0)
    }),
    row(
        "DMA_ATOMIC",
        "before REGISTER",
        Described,
        libc::ENODEV,
        |f| atomic(f, own_page()?.1 + 8, PCIEM_ATOMIC_FETCH_ADD, 0),
    ),
    row(
        "DMA_ATOMIC",
        "unaligned bus address",
        Master,
        libc::EINVAL,
        |f| atomic(f, own_page()?.1 + 4, PCIEM_ATOMIC_FETCH_ADD, 0),
    ),
    row("DMA_ATOMIC", "unknown op 99", Master, libc::EINVAL, |f| {
        atomic(f, own_page()?.1 + 8, 99, 0)
    }),
    row("DMA_ATOMIC", "op 0", Master, libc::EINVAL, |f| {
        atomic(f, own_page()?.1 + 8, 0, 0)
    }),
    row("DMA_ATOMIC", "flags set", Master, libc::EINVAL, |f| {
        atomic(f, own_page()?.1 + 8, PCIEM_ATOMIC_FETCH_ADD, 1)
    }),
    row(
        "DMA_ATOMIC",
        "on the local APIC (not RAM)",
        Master,
        libc::ENXIO,
        |f| atomic(f, NOT_RAM, PCIEM_ATOMIC_FETCH_ADD, 0),
    ),
    // ---- DMA_INDIRECT (PRP lists).
    row("DMA_INDIRECT", "null pointer", Master, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_DMA_INDIRECT, 0)
    }),
    row("DMA_INDIRECT", "unknown flags", Master, libc::EINVAL, |f| {
        let bus = own_page()?.1;
        prp(f, bus, 0, 64, 0x80)
    }),
    row("DMA_INDIRECT", "zero length", Master, libc::EINVAL, |f| {
        let bus = own_page()?.1;
        prp(f, bus, 0, 0, 0)
    }),
    row(
        "DMA_INDIRECT",
        "before REGISTER",
        Described,
        libc::ENODEV,
        |f| {
            let bus = own_page()?.1;
            prp(f, bus, 0, 64, 0)
        },
    ),
    row(
        "DMA_INDIRECT",
        "a PRP list that chains to itself",
        Master,
        libc::ELOOP,
        |f| {
            // The list is the last two entries of our page: one data
            // pointer (our page again), then a chain pointer back to the
            // same two entries. Reads only: nothing of the host is written.
            let (va, bus) = own_page()?;
            let list = bus + PAGE as u64 - 16;
            // SAFETY: the last 16 bytes of our own locked page.
            unsafe {
                ((va + PAGE - 16) as *mut u64).write_volatile(bus);
                ((va + PAGE - 8) as *mut u64).write_volatile(list);
            }
            prp(f, bus, list, 10 * PAGE as u64, 0)
        },
    ),
    row(
        "DMA_INDIRECT",
        "a list pointer that is not RAM",
        Master,
        libc::ENXIO,
        |f| {
            let bus = own_page()?.1;
            prp(f, bus, NOT_RAM, 10 * PAGE as u64, 0)
        },
    ),
    // ---- P2P_READ / P2P_WRITE.
    row("P2P_READ", "null pointer", Master, libc::EFAULT, |f| {
        ioc_at(f.fd(), PCIEM_IOCTL_P2P_READ, 0)
    }),
    row("P2P_READ", "flags set", Master, libc::EINVAL, |f| {
        p2p(f, PCIEM_IOCTL_P2P_READ, 0x1000, 64, 1)
    }),
    row("P2P_READ", "zero length", Master, libc::EINVAL, |f| {
        p2p(f, PCIEM_IOCTL_P2P_READ, 0x1000, 0, 0)
    }),
    row(
        "P2P_READ",
        "before REGISTER",
        Described,
        libc::ENODEV,
        |f| p2p(f, PCIEM_IOCTL_P2P_READ, 0x1000, 64, 0),
    ),
    row(
        "P2P_READ",
        "outside the whitelist (RAM at 0x1000)",
        Master,
        libc::EACCES,
        |f| p2p(f, PCIEM_IOCTL_P2P_READ, 0x1000, 64, 0),
    ),
    row(
        "P2P_READ",
        "straddling the end of a whitelisted region",
        Master,
        libc::EACCES,
        |f| {
            let (addr, size) = p2p_region()?;
            p2p(f, PCIEM_IOCTL_P2P_READ, addr + size - 32, 64, 0)
        },
    ),
    row(
        "P2P_WRITE",
        "outside the whitelist (the local APIC)",
        Master,
        libc::EACCES,
        |f| p2p(f, PCIEM_IOCTL_P2P_WRITE, NOT_RAM, 64, 0),
    ),
    // ---- mmap of the control file: the event ring.
    row("mmap ring", "offset 1 page", Open, libc::EINVAL, |f| {
        map(f.fd(), 1, PAGE, libc::MAP_SHARED)
    }),
    row(
        "mmap ring",
        "longer than the ring",
        Open,
        libc::EINVAL,
        |f| map(f.fd(), 0, 1 << 20, libc::MAP_SHARED),
    ),
    row("mmap ring", "MAP_PRIVATE", Open, libc::EINVAL, |f| {
        map(f.fd(), 0, PAGE, libc::MAP_PRIVATE)
    }),
    // ---- mmap of the instance file: BARs.
    row(
        "mmap BAR",
        "offset 6 pages (no BAR 6)",
        Registered,
        libc::EINVAL,
        |f| map(f.inst_fd()?, 6, PAGE, libc::MAP_SHARED),
    ),
    row(
        "mmap BAR",
        "offset 2^30 pages",
        Registered,
        libc::EINVAL,
        |f| map(f.inst_fd()?, 1 << 30, PAGE, libc::MAP_SHARED),
    ),
    row("mmap BAR", "unused slot 1", Registered, libc::ENXIO, |f| {
        map(f.inst_fd()?, 1, PAGE, libc::MAP_SHARED)
    }),
    row(
        "mmap BAR",
        "upper half of 64-bit BAR 2",
        Registered,
        libc::ENXIO,
        |f| map(f.inst_fd()?, 3, PAGE, libc::MAP_SHARED),
    ),
    row(
        "mmap BAR",
        "BAR0 4 KiB mapped with 8 KiB",
        Registered,
        libc::EINVAL,
        |f| map(f.inst_fd()?, 0, 2 * PAGE, libc::MAP_SHARED),
    ),
    row(
        "mmap read responses",
        "of function 1, which does not exist (page 16 + 8)",
        Registered,
        libc::ENXIO,
        |f| map(f.inst_fd()?, 16 + 8, PAGE, libc::MAP_SHARED),
    ),
    row(
        "COMPLETE_READ",
        "an id naming function 5, which does not exist",
        Registered,
        libc::ENOENT,
        |f| f.dev.complete_read(1 << 9 | 5 << 6, 0).map(|_| 0),
    ),
    row("mmap BAR", "MAP_PRIVATE", Registered, libc::EINVAL, |f| {
        map(f.inst_fd()?, 0, PAGE, libc::MAP_PRIVATE)
    }),
];

/// Ioctls added by other work; until this kernel has them they must be
/// unknown (ENOTTY), whatever the argument.
const NOT_YET: &[(&str, u32)] = &[];

fn main() {
    let mut r = Report::new("badinput");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let table = ROWS;
    let (mut ok, mut bad) = (0usize, 0usize);
    for row in table {
        let got = fixture(row.stage).and_then(|fx| (row.call)(&fx));
        let pass = matches!(&got, Err(e) if e.raw_os_error() == Some(row.want));
        let seen = match &got {
            Ok(v) => format!("succeeded ({v})"),
            Err(e) => match e.raw_os_error() {
                Some(n) => errno_name(n).to_string(),
                None => format!("setup failed: {e}"),
            },
        };
        if pass {
            ok += 1;
        } else {
            bad += 1;
        }
        r.check(
            pass,
            format!(
                "{:<16} {:<40} [{:?}] want {}, got {}",
                row.ioctl,
                row.what,
                row.stage,
                errno_name(row.want),
                seen
            ),
        );
    }
    println!(
        "INFO: bad-input table: {} rows, {ok} as expected, {bad} not",
        table.len()
    );
    for &(name, req) in NOT_YET {
        let got = fixture(Stage::Registered).and_then(|f| ioc_at(f.fd(), req, 0));
        let e = got.as_ref().err().and_then(io::Error::raw_os_error);
        r.check(
            e == Some(libc::ENOTTY),
            format!(
                "{name:<16} not in this kernel: ENOTTY ({})",
                e.map(errno_name).unwrap_or("no errno")
            ),
        );
    }
    // Nothing above may have left the module unable to do its job.
    if let Some(fx) = r.step(
        "afterwards a device still registers and binds",
        fixture(Bound),
    ) {
        let info = fx.dev.bar_info(2);
        r.check(
            info.map(|q| q.size == 64 << 10).unwrap_or(false),
            "afterwards GET_BAR_INFO reports BAR2 as 64 KiB",
        );
        r.step("afterwards an MSI injects", fx.dev.inject_msi(0));
    }
    let live = sysfs::read_hex(std::path::Path::new(
        "/sys/module/pciem/parameters/live_devices",
    ));
    r.check(
        live == Some(0),
        format!("every row's device was released (live_devices {live:?})"),
    );
    let bad = klog::problems();
    r.check(bad.is_empty(), format!("kernel log clean {bad:?}"));
    r.finish()
}
