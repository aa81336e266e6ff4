//! A synthetic device described and registered through `/dev/pciem`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use pciem_abi::{
    pciem_bar_config, pciem_bar_info_query, pciem_cap_config, pciem_cap_msi_userspace,
    pciem_config_space, pciem_eventfd_config, pciem_irq_inject, pciem_version,
    pciem_watchpoint_config, PCIEM_CAP_MSI, PCIEM_IOCTL_GET_BAR_INFO, PCIEM_IOCTL_GET_VERSION,
    PCIEM_IOCTL_INJECT_IRQ, PCIEM_IOCTL_REGISTER, PCIEM_IOCTL_SET_EVENTFD,
    PCIEM_IOCTL_SET_WATCHPOINT, PCIEM_IRQ_MSI, PCIEM_WP_FLAG_BAR_KPROBES,
};
use pciem_abi::{
    pciem_dma_atomic, pciem_dma_indirect, pciem_dma_op, pciem_p2p_op, PCIEM_IOCTL_DMA_ATOMIC,
    PCIEM_IOCTL_DMA_INDIRECT, PCIEM_IOCTL_DMA_READ, PCIEM_IOCTL_DMA_WRITE, PCIEM_IOCTL_P2P_READ,
    PCIEM_IOCTL_P2P_WRITE, PCIEM_PRP_FLAG_WRITE,
};
use pciem_backend_chardev::ioctl as chardev;
use zerocopy::IntoBytes;

use crate::ring::Ring;

/// Issues `ioctl(fd, req, arg)`; `arg` may be null for `_IO` requests.
fn ioctl_raw(fd: RawFd, req: u32, arg: *mut libc::c_void) -> io::Result<i32> {
    // SAFETY: every caller passes either null (for an `_IO` request) or a
    // pointer to a live value of exactly the argument type encoded in `req`,
    // so the kernel reads/writes only that object, plus, for the DMA and
    // P2P requests, the user buffer the argument names, which each caller
    // vouches for (see `dma_raw`).
    let ret = unsafe { libc::ioctl(fd, req as libc::c_ulong, arg) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Issues `ioctl(fd, req, addr)` with an argument address the kernel must
/// check: the bad-input cases (NULL, an unmapped page, an object of the
/// wrong size or with bad fields), where the errno is what is tested.
pub fn ioctl_at(fd: RawFd, req: u32, addr: usize) -> io::Result<i32> {
    // SAFETY: the kernel validates `addr` (copy_from_user/copy_to_user):
    // callers pass either a live object of the size encoded in `req` or an
    // address it must refuse to touch, never memory it may not write.
    let ret = unsafe { libc::ioctl(fd, req as libc::c_ulong, addr as *mut libc::c_void) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The control file: one device per open `/dev/pciem`.
#[derive(Debug)]
pub struct Dev {
    fd: OwnedFd,
}

/// The instance file returned by `REGISTER`; its mmap maps the BARs.
#[derive(Debug)]
pub struct Instance {
    fd: OwnedFd,
}

impl Dev {
    /// Opens `/dev/pciem`.
    pub fn open() -> io::Result<Self> {
        let path = CString::new("/dev/pciem").expect("no NUL in a literal");
        // SAFETY: `path` is a valid NUL-terminated string that outlives the
        // call.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by open() and is owned by nobody
        // else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// The raw control fd.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn ioctl_in<T: IntoBytes + zerocopy::Immutable>(&self, req: u32, arg: &T) -> io::Result<i32> {
        ioctl_raw(self.raw(), req, arg as *const T as *mut libc::c_void)
    }

    /// `GET_VERSION`.
    pub fn version(&self) -> io::Result<pciem_version> {
        let mut v = pciem_version::default();
        ioctl_raw(
            self.raw(),
            PCIEM_IOCTL_GET_VERSION,
            &mut v as *mut pciem_version as *mut libc::c_void,
        )?;
        Ok(v)
    }

    /// `SURPRISE_REMOVE`: the link goes down now, the kernel removes the
    /// device from a worker.
    pub fn surprise_remove(&self) -> io::Result<()> {
        let arg = pciem_abi::pciem_surprise_remove::default();
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_SURPRISE_REMOVE, &arg)
            .map(drop)
    }

    /// `REINSERT`: bring the surprise-removed device back.
    pub fn reinsert(&self) -> io::Result<()> {
        let arg = pciem_abi::pciem_reinsert::default();
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_REINSERT, &arg)
            .map(drop)
    }

    /// `SET_FAULT`: arm one rule of the device's fault plan, or clear them
    /// all (`kind` `PCIEM_FAULT_CLEAR`).
    pub fn set_fault(&self, req: &pciem_abi::pciem_fault_rule) -> io::Result<()> {
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_SET_FAULT, req)
            .map(drop)
    }

    /// `SET_FUNCTION`: the following per-function ioctls describe or act
    /// for function `function` (created on first selection before
    /// REGISTER).
    pub fn set_function(&self, function: u32) -> io::Result<()> {
        let arg = pciem_abi::pciem_function {
            function,
            reserved: 0,
        };
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_SET_FUNCTION, &arg)
            .map(drop)
    }

    /// `SET_ROOT_PORT` with a hot-plug slot: the device goes below a
    /// virtual root port.
    pub fn set_root_port(&self) -> io::Result<()> {
        self.set_root_port_flags(pciem_abi::PCIEM_ROOT_PORT_HOTPLUG)
    }

    /// `SET_ROOT_PORT` with `flags` (`PCIEM_ROOT_PORT_*`).
    pub fn set_root_port_flags(&self, flags: u32) -> io::Result<()> {
        let arg = pciem_abi::pciem_root_port { flags, reserved: 0 };
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_SET_ROOT_PORT, &arg)
            .map(drop)
    }

    /// `INJECT_AER`.
    pub fn inject_aer(&self, req: &pciem_abi::pciem_aer_inject) -> io::Result<()> {
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_INJECT_AER, req)
            .map(drop)
    }

    /// `ADD_CAPABILITY` of type `cap_type` (`PCIEM_CAP_*`) with `data` as
    /// its payload (at most 64 bytes).
    pub fn add_cap_raw(&self, cap_type: u32, data: &[u8]) -> io::Result<()> {
        let mut cap = pciem_cap_config {
            cap_type,
            cap_size: data.len() as u32,
            ..Default::default()
        };
        cap.cap_data
            .get_mut(..data.len())
            .ok_or_else(|| io::Error::other("capability payload over 64 bytes"))?
            .copy_from_slice(data);
        chardev::add_capability(self.fd.as_fd(), &cap).map_err(io::Error::from)
    }

    /// `CREATE_DEVICE` (through the chardev backend's ioctl layer, as every
    /// well-formed call here: the scenarios test the layer users get).
    pub fn create(&self) -> io::Result<()> {
        chardev::create_device(self.fd.as_fd()).map_err(io::Error::from)
    }

    /// `SET_DMA_CHECK`: the DMA check mode (`PCIEM_DMA_CHECK_*`).
    pub fn set_dma_check(&self, mode: u32) -> io::Result<()> {
        let arg = pciem_abi::pciem_dma_check_mode { mode, reserved: 0 };
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_SET_DMA_CHECK, &arg)
            .map(drop)
    }

    /// `ADD_BAR`.
    pub fn add_bar(&self, bar_index: u32, size: u64, flags: u32) -> io::Result<()> {
        let bar = pciem_bar_config {
            bar_index,
            flags,
            size,
        };
        chardev::add_bar(self.fd.as_fd(), &bar).map_err(io::Error::from)
    }

    /// `ADD_CAPABILITY` with a 64-bit MSI capability of `1 << log2` vectors.
    pub fn add_msi(&self, log2: u8) -> io::Result<()> {
        let msi = pciem_cap_msi_userspace {
            num_vectors_log2: log2,
            has_64bit: 1,
            has_masking: 0,
            reserved: 0,
        };
        let mut cap = pciem_cap_config {
            cap_type: PCIEM_CAP_MSI,
            cap_size: core::mem::size_of::<pciem_cap_msi_userspace>() as u32,
            ..Default::default()
        };
        cap.cap_data[..4].copy_from_slice(msi.as_bytes());
        chardev::add_capability(self.fd.as_fd(), &cap).map_err(io::Error::from)
    }

    /// `SET_CONFIG` with the given identity; `class` is `0xCCSSPP`.
    pub fn set_identity(&self, vendor: u16, device: u16, class: u32) -> io::Result<()> {
        let cfg = pciem_config_space {
            vendor_id: vendor,
            device_id: device,
            subsys_vendor_id: vendor,
            subsys_device_id: device,
            revision: 1,
            class_code: [class as u8, (class >> 8) as u8, (class >> 16) as u8],
            header_type: 0,
            interrupt_pin: 0,
            reserved: 0,
        };
        chardev::set_config(self.fd.as_fd(), &cfg).map_err(io::Error::from)
    }

    /// `SET_CONFIG_IMAGE`: hand over a complete configuration space.
    pub fn set_image(&self, img: &pciem_abi::pciem_config_image) -> io::Result<()> {
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_SET_CONFIG_IMAGE, img)
            .map(drop)
    }

    /// `REGISTER`: the device appears on the bus.
    pub fn register(&self) -> io::Result<Instance> {
        let fd = ioctl_raw(self.raw(), PCIEM_IOCTL_REGISTER, core::ptr::null_mut())?;
        // SAFETY: REGISTER returns a new file descriptor owned by the caller.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Instance { fd })
    }

    /// `GET_BAR_INFO`.
    pub fn bar_info(&self, bar_index: u32) -> io::Result<pciem_bar_info_query> {
        let mut q = pciem_bar_info_query {
            bar_index,
            ..Default::default()
        };
        ioctl_raw(
            self.raw(),
            PCIEM_IOCTL_GET_BAR_INFO,
            &mut q as *mut pciem_bar_info_query as *mut libc::c_void,
        )?;
        Ok(q)
    }

    /// `SET_WATCHPOINT` on `bar`+`offset` (found by ioremap tracing).
    pub fn watch(&self, bar_index: u32, offset: u32, width: u32) -> io::Result<()> {
        let wp = pciem_watchpoint_config {
            bar_index,
            offset,
            width,
            flags: PCIEM_WP_FLAG_BAR_KPROBES,
            addr: 0,
        };
        self.ioctl_in(PCIEM_IOCTL_SET_WATCHPOINT, &wp).map(drop)
    }

    /// Creates an eventfd and attaches it with `SET_EVENTFD`.
    pub fn attach_eventfd(&self) -> io::Result<OwnedFd> {
        // SAFETY: eventfd() has no pointer arguments.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` was just created and is owned by nobody else.
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        let cfg = pciem_eventfd_config {
            eventfd: efd.as_raw_fd(),
            reserved: 0,
        };
        self.ioctl_in(PCIEM_IOCTL_SET_EVENTFD, &cfg)?;
        Ok(efd)
    }

    /// `INJECT_IRQ` of MSI vector `vector`.
    pub fn inject_msi(&self, vector: u32) -> io::Result<()> {
        let irq = pciem_irq_inject {
            vector,
            kind: PCIEM_IRQ_MSI,
            flags: 0,
            reserved: 0,
        };
        self.ioctl_in(PCIEM_IOCTL_INJECT_IRQ, &irq).map(drop)
    }

    /// `DMA_READ`: host memory at `bus_addr` into `buf`.
    pub fn dma_read(&self, bus_addr: u64, buf: &mut [u8]) -> io::Result<()> {
        let op = pciem_dma_op {
            bus_addr,
            user_addr: buf.as_mut_ptr() as u64,
            length: buf.len() as u64,
            flags: 0,
            reserved: 0,
        };
        // SAFETY: the kernel writes at most `buf.len()` bytes at `buf`,
        // which is live and exclusively borrowed for the call.
        unsafe { self.dma_raw(PCIEM_IOCTL_DMA_READ, &op) }
    }

    /// `DMA_WRITE`: `data` into host memory at `bus_addr`.
    pub fn dma_write(&self, bus_addr: u64, data: &[u8]) -> io::Result<()> {
        let op = pciem_dma_op {
            bus_addr,
            user_addr: data.as_ptr() as u64,
            length: data.len() as u64,
            flags: 0,
            reserved: 0,
        };
        // SAFETY: DMA_WRITE only reads the user buffer, which is live for
        // the call.
        unsafe { self.dma_raw(PCIEM_IOCTL_DMA_WRITE, &op) }
    }

    /// `DMA_READ` or `DMA_WRITE` (`req`) with a hand-made argument, for
    /// malformed requests.
    ///
    /// # Safety
    /// For `DMA_READ` the kernel may write `op.length` bytes at
    /// `op.user_addr`: that memory must be writable and unused, or unmapped.
    pub unsafe fn dma_raw(&self, req: u32, op: &pciem_dma_op) -> io::Result<()> {
        self.ioctl_in(req, op).map(drop)
    }

    /// `DMA_ATOMIC`: one 8-byte atomic; returns the value before it.
    pub fn dma_atomic(
        &self,
        bus_addr: u64,
        op: u32,
        operand: u64,
        compare: u64,
    ) -> io::Result<u64> {
        let mut a = pciem_dma_atomic {
            bus_addr,
            operand,
            compare,
            result: 0,
            op,
            flags: 0,
        };
        ioctl_raw(
            self.raw(),
            PCIEM_IOCTL_DMA_ATOMIC,
            &mut a as *mut pciem_dma_atomic as *mut libc::c_void,
        )?;
        Ok(a.result)
    }

    /// `DMA_INDIRECT` read: the PRP-described host memory into `buf`.
    pub fn prp_read(&self, prp1: u64, prp2: u64, buf: &mut [u8]) -> io::Result<()> {
        let req = pciem_dma_indirect {
            prp1,
            prp2,
            user_addr: buf.as_mut_ptr() as u64,
            length: buf.len() as u64,
            page_size: 0,
            flags: 0,
        };
        // SAFETY: the kernel writes at most `buf.len()` bytes at `buf`,
        // which is live and exclusively borrowed for the call.
        unsafe { self.dma_indirect_raw(&req) }
    }

    /// `DMA_INDIRECT` write: `data` into the PRP-described host memory.
    pub fn prp_write(&self, prp1: u64, prp2: u64, data: &[u8]) -> io::Result<()> {
        let req = pciem_dma_indirect {
            prp1,
            prp2,
            user_addr: data.as_ptr() as u64,
            length: data.len() as u64,
            page_size: 0,
            flags: PCIEM_PRP_FLAG_WRITE,
        };
        // SAFETY: a PRP write only reads the user buffer, live for the call.
        unsafe { self.dma_indirect_raw(&req) }
    }

    /// `DMA_INDIRECT` with a hand-made argument.
    ///
    /// # Safety
    /// Without `PCIEM_PRP_FLAG_WRITE` the kernel may write `req.length`
    /// bytes at `req.user_addr`: that memory must be writable and unused.
    pub unsafe fn dma_indirect_raw(&self, req: &pciem_dma_indirect) -> io::Result<()> {
        self.ioctl_in(PCIEM_IOCTL_DMA_INDIRECT, req).map(drop)
    }

    /// `P2P_READ`: the peer memory at `target_addr` into `buf`.
    pub fn p2p_read(&self, target_addr: u64, buf: &mut [u8]) -> io::Result<()> {
        let op = pciem_p2p_op {
            target_addr,
            user_addr: buf.as_mut_ptr() as u64,
            length: buf.len() as u64,
            flags: 0,
            reserved: 0,
        };
        self.ioctl_in(PCIEM_IOCTL_P2P_READ, &op).map(drop)
    }

    /// `P2P_WRITE`: `data` into the peer memory at `target_addr`.
    pub fn p2p_write(&self, target_addr: u64, data: &[u8]) -> io::Result<()> {
        let op = pciem_p2p_op {
            target_addr,
            user_addr: data.as_ptr() as u64,
            length: data.len() as u64,
            flags: 0,
            reserved: 0,
        };
        self.ioctl_in(PCIEM_IOCTL_P2P_WRITE, &op).map(drop)
    }

    /// Maps the event ring (offset 0 of the control file).
    pub fn map_ring(&self) -> io::Result<Ring> {
        Ring::map(self.raw())
    }

    /// The usual test device: BAR0 4 KiB (32-bit), BAR2 64 KiB (64-bit,
    /// prefetchable), one MSI vector, class co-processor. Not registered.
    pub fn describe_test_device(&self, device: u16) -> io::Result<()> {
        self.create()?;
        self.add_bar(0, 4096, pciem_abi::PCIEM_BAR_MEM_TYPE_32)?;
        self.add_bar(
            2,
            64 << 10,
            pciem_abi::PCIEM_BAR_MEM_TYPE_64 | pciem_abi::PCIEM_BAR_MEM_PREFETCH,
        )?;
        self.add_msi(0)?;
        self.set_identity(crate::TEST_VENDOR, device, 0x0b_40_00)
    }
}

impl Instance {
    /// The raw instance fd.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Maps `len` bytes of BAR `bar_index`.
    pub fn map_bar(&self, bar_index: u32, len: usize) -> io::Result<MappedBar> {
        // SAFETY: sysconf has no pointer arguments.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as libc::off_t;
        MappedBar::map(self.fd.as_raw_fd(), bar_index as libc::off_t * page, len)
    }

    /// Tries to map `len` bytes at page offset `pgoff` (for bounds tests).
    pub fn try_map(&self, pgoff: u32, len: usize) -> io::Result<MappedBar> {
        // SAFETY: sysconf has no pointer arguments.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as libc::off_t;
        MappedBar::map(self.fd.as_raw_fd(), pgoff as libc::off_t * page, len)
    }
}

/// A shared mapping of a BAR, accessed with volatile 32-bit loads/stores.
#[derive(Debug)]
pub struct MappedBar {
    ptr: NonNull<u32>,
    len: usize,
}

impl MappedBar {
    fn map(fd: RawFd, offset: libc::off_t, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping chosen by the kernel; no existing
        // memory is affected.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p as *mut u32).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Self { ptr, len })
    }

    /// Reads the 32-bit register at byte offset `off`.
    pub fn read32(&self, off: usize) -> u32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.len,
            "offset outside the mapping"
        );
        // SAFETY: the assertion keeps the access aligned and inside the live
        // mapping; volatile because the driver changes it behind our back.
        unsafe { self.ptr.as_ptr().add(off / 4).read_volatile() }
    }

    /// Writes the 32-bit register at byte offset `off`.
    pub fn write32(&self, off: usize, val: u32) {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.len,
            "offset outside the mapping"
        );
        // SAFETY: as in read32.
        unsafe { self.ptr.as_ptr().add(off / 4).write_volatile(val) }
    }
}

impl Drop for MappedBar {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `map`, which nothing
        // else references once `self` is gone.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Creates a non-blocking eventfd (for `SET_IRQFD` and friends).
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd() has no pointer arguments.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if efd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `efd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(efd) })
}

/// Adds 1 to an eventfd's counter, which wakes whatever waits on it.
pub fn signal(efd: &OwnedFd) -> io::Result<()> {
    let one = 1u64;
    // SAFETY: writes 8 bytes from a live u64 to an fd we own.
    let n = unsafe { libc::write(efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    if n == 8 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Dev {
    /// `INJECT_IRQ` of any kind (`PCIEM_IRQ_*`) with `PCIEM_IRQ_FLAG_*`.
    pub fn inject(&self, kind: u32, vector: u32, flags: u32) -> io::Result<()> {
        let irq = pciem_irq_inject {
            vector,
            kind,
            flags,
            reserved: 0,
        };
        self.ioctl_in(PCIEM_IOCTL_INJECT_IRQ, &irq).map(drop)
    }

    /// `SET_IRQFD`: binds (or with `PCIEM_IRQFD_FLAG_REMOVE` unbinds) the
    /// eventfd `fd` to interrupt `kind`/`vector`.
    pub fn set_irqfd(&self, fd: RawFd, kind: u32, vector: u32, flags: u32) -> io::Result<()> {
        let cfg = pciem_abi::pciem_irqfd_config {
            eventfd: fd,
            vector,
            kind,
            flags,
        };
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_SET_IRQFD, &cfg)
            .map(drop)
    }
}

/// Trap mode (ABI 3): the ioctls of `pciem_abi::trap`.
impl Dev {
    /// `SET_BAR_MODE`: `mode` is `PCIEM_BAR_MODE_*`; before REGISTER.
    pub fn set_bar_mode(&self, bar_index: u32, mode: u32) -> io::Result<()> {
        let m = pciem_abi::pciem_bar_mode {
            bar_index,
            mode,
            flags: 0,
            reserved: 0,
        };
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_SET_BAR_MODE, &m)
            .map(drop)
    }

    /// `ADD_TRAP_RANGE`: `flags` is `PCIEM_TRAP_*`; before REGISTER.
    pub fn add_trap_range(
        &self,
        bar_index: u32,
        flags: u32,
        offset: u64,
        length: u64,
    ) -> io::Result<()> {
        let r = pciem_abi::pciem_trap_range {
            bar_index,
            flags,
            offset,
            length,
        };
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_ADD_TRAP_RANGE, &r)
            .map(drop)
    }

    /// `SET_READ_TIMEOUT` in microseconds.
    pub fn set_read_timeout(&self, timeout_us: u32) -> io::Result<()> {
        let t = pciem_abi::pciem_read_timeout {
            timeout_us,
            reserved: 0,
        };
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_SET_READ_TIMEOUT, &t)
            .map(drop)
    }

    /// `START`: drivers may bind (from a kernel worker; returns at once).
    pub fn start(&self) -> io::Result<()> {
        ioctl_raw(
            self.raw(),
            pciem_abi::PCIEM_IOCTL_START,
            core::ptr::null_mut(),
        )
        .map(drop)
    }

    /// `COMPLETE_READ`: answers the model-answered read `id` with `value`.
    pub fn complete_read(&self, id: u64, value: u64) -> io::Result<()> {
        let c = pciem_abi::pciem_read_completion { id, value };
        self.ioctl_in(pciem_abi::PCIEM_IOCTL_COMPLETE_READ, &c)
            .map(drop)
    }
}

impl Instance {
    /// Maps the read-response page (page offset
    /// `PCIEM_MMAP_READ_RESPONSES_PGOFF`).
    pub fn map_responses(&self) -> io::Result<Responses> {
        let len = core::mem::size_of::<pciem_abi::pciem_read_responses>();
        // SAFETY: sysconf has no pointer arguments.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as libc::off_t;
        // SAFETY: a fresh shared mapping chosen by the kernel.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.raw(),
                pciem_abi::PCIEM_MMAP_READ_RESPONSES_PGOFF as libc::off_t * page,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let page = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Responses { page })
    }
}

/// The read-response page: how a model answers `MMIO_READ` events that
/// wait (no `PCIEM_EVENT_FLAG_POSTED`).
#[derive(Debug)]
pub struct Responses {
    page: NonNull<pciem_abi::pciem_read_responses>,
}

impl Responses {
    /// Answers read `id` with `value`: slot `id % PCIEM_READ_SLOTS`,
    /// `value` first, then `id` with release ordering.
    pub fn answer(&self, id: u64, value: u64) {
        use std::sync::atomic::{AtomicU64, Ordering};
        let s = (id % pciem_abi::PCIEM_READ_SLOTS as u64) as usize;
        // SAFETY: `s` is in bounds; both fields are aligned u64s inside the
        // live mapping, which the kernel reads (acquire on `id`) while we
        // write; accessing them only atomically keeps that sound.
        unsafe {
            let slot = core::ptr::addr_of_mut!((*self.page.as_ptr()).slots[s]);
            AtomicU64::from_ptr(core::ptr::addr_of_mut!((*slot).value))
                .store(value, Ordering::Relaxed);
            AtomicU64::from_ptr(core::ptr::addr_of_mut!((*slot).id)).store(id, Ordering::Release);
        }
    }
}

impl Drop for Responses {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the page mapped in `map_responses`.
        unsafe {
            libc::munmap(
                self.page.as_ptr().cast(),
                core::mem::size_of::<pciem_abi::pciem_read_responses>(),
            )
        };
    }
}

/// Byte-granular access to a mapped BAR (the trap scenarios check odd
/// offsets and widths).
impl MappedBar {
    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: mmap refuses zero length).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `buf.len()` bytes at `off` out of the BAR, byte by byte.
    pub fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        assert!(
            off <= self.len && buf.len() <= self.len - off,
            "range outside the mapping"
        );
        let base = self.ptr.as_ptr().cast::<u8>();
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: in bounds by the assertion; volatile because the
            // kernel changes the memory behind our back.
            *b = unsafe { base.add(off + i).read_volatile() };
        }
    }

    /// Copies `data` into the BAR at `off`, byte by byte.
    pub fn write_bytes(&self, off: usize, data: &[u8]) {
        assert!(
            off <= self.len && data.len() <= self.len - off,
            "range outside the mapping"
        );
        let base = self.ptr.as_ptr().cast::<u8>();
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as in read_bytes.
            unsafe { base.add(off + i).write_volatile(*b) };
        }
    }

    /// The `width` (1..=8) bytes at `off`, little-endian.
    pub fn read_le(&self, off: usize, width: usize) -> u64 {
        let mut b = [0u8; 8];
        self.read_bytes(off, &mut b[..width]);
        u64::from_le_bytes(b)
    }

    /// Stores the low `width` (1..=8) bytes of `val` at `off`.
    pub fn write_le(&self, off: usize, width: usize, val: u64) {
        self.write_bytes(off, &val.to_le_bytes()[..width]);
    }
}
