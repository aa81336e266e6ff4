//! Scenario: malformed ioctl arguments and mmap requests get an errno (and
//! a reason in the kernel log), never an oops; the device still works
//! afterwards.

use std::io;

use pciem_abi::*;
use pciem_vmtest::sysfs::{self, run};
use pciem_vmtest::{Dev, Report, TEST_DEVICE_UNBOUND};
use zerocopy::IntoBytes;

/// Raw ioctl with an arbitrary argument pointer.
fn raw_ioctl(dev: &Dev, req: u32, arg: *mut libc::c_void) -> io::Result<i32> {
    // SAFETY: the kernel validates `arg`; we pass either a live object of
    // the encoded size or a deliberately bad address it must reject.
    let ret = unsafe { libc::ioctl(dev.raw(), req as libc::c_ulong, arg) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn with<T: IntoBytes + zerocopy::Immutable>(dev: &Dev, req: u32, arg: &T) -> Option<i32> {
    raw_ioctl(dev, req, arg.as_bytes().as_ptr() as *mut libc::c_void)
        .err()
        .and_then(|e| e.raw_os_error())
}

fn main() {
    let mut r = Report::new("badinput");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        r.finish()
    };
    let bad_ptr = 0x10usize as *mut libc::c_void;
    for (name, req) in [
        ("GET_VERSION", PCIEM_IOCTL_GET_VERSION),
        ("CREATE_DEVICE", PCIEM_IOCTL_CREATE_DEVICE),
        ("SET_CONFIG_IMAGE", PCIEM_IOCTL_SET_CONFIG_IMAGE),
        ("GET_BAR_INFO", PCIEM_IOCTL_GET_BAR_INFO),
    ] {
        let e = raw_ioctl(&dev, req, bad_ptr)
            .err()
            .and_then(|e| e.raw_os_error());
        r.check(
            e == Some(libc::EFAULT),
            format!("{name} with a bad pointer: EFAULT ({e:?})"),
        );
    }
    let e = raw_ioctl(&dev, 0x5099, core::ptr::null_mut())
        .err()
        .and_then(|e| e.raw_os_error());
    r.check(
        e == Some(libc::ENOTTY),
        format!("unknown ioctl: ENOTTY ({e:?})"),
    );
    let e = with(
        &dev,
        PCIEM_IOCTL_CREATE_DEVICE,
        &pciem_create_device {
            flags: 1,
            reserved: 0,
        },
    );
    r.check(
        e == Some(libc::EINVAL),
        format!("CREATE_DEVICE with flags: EINVAL ({e:?})"),
    );
    let e = with(&dev, PCIEM_IOCTL_REGISTER, &0u8);
    r.check(
        e.is_some(),
        format!("REGISTER before describing: refused ({e:?})"),
    );
    r.step("CREATE_DEVICE", dev.create());
    for (what, bar) in [
        (
            "index 9",
            pciem_bar_config {
                bar_index: 9,
                flags: 0,
                size: 4096,
            },
        ),
        (
            "size 3",
            pciem_bar_config {
                bar_index: 0,
                flags: 0,
                size: 3,
            },
        ),
        (
            "I/O space",
            pciem_bar_config {
                bar_index: 0,
                flags: PCIEM_BAR_SPACE_IO,
                size: 4096,
            },
        ),
    ] {
        let e = with(&dev, PCIEM_IOCTL_ADD_BAR, &bar);
        r.check(e.is_some(), format!("ADD_BAR {what}: refused ({e:?})"));
    }
    r.step("ADD_BAR 0 4K", dev.add_bar(0, 4096, 0));
    r.step("ADD_CAPABILITY MSI", dev.add_msi(0));
    r.step(
        "SET_CONFIG",
        dev.set_identity(0x1f0c, TEST_DEVICE_UNBOUND, 0x0b4000),
    );
    let e = with(
        &dev,
        PCIEM_IOCTL_SET_EVENTFD,
        &pciem_eventfd_config {
            eventfd: 0,
            reserved: 0,
        },
    );
    r.check(
        e.is_some(),
        format!("SET_EVENTFD on a non-eventfd: refused ({e:?})"),
    );
    let e = with(
        &dev,
        PCIEM_IOCTL_SET_EVENTFD,
        &pciem_eventfd_config {
            eventfd: 9999,
            reserved: 0,
        },
    );
    r.check(
        e.is_some(),
        format!("SET_EVENTFD on a closed fd: refused ({e:?})"),
    );
    let mut q = pciem_bar_info_query {
        bar_index: 6,
        ..Default::default()
    };
    let e = raw_ioctl(
        &dev,
        PCIEM_IOCTL_GET_BAR_INFO,
        (&mut q as *mut pciem_bar_info_query).cast(),
    )
    .err()
    .and_then(|e| e.raw_os_error());
    r.check(
        e == Some(libc::EINVAL),
        format!("GET_BAR_INFO index 6: EINVAL ({e:?})"),
    );
    let Some(inst) = r.step("REGISTER", dev.register()) else {
        r.finish()
    };
    for (what, wp) in [
        (
            "BAR 9",
            pciem_watchpoint_config {
                bar_index: 9,
                offset: 0,
                width: 4,
                flags: PCIEM_WP_FLAG_BAR_KPROBES,
                addr: 0,
            },
        ),
        (
            "width 3",
            pciem_watchpoint_config {
                bar_index: 0,
                offset: 0,
                width: 3,
                flags: PCIEM_WP_FLAG_BAR_KPROBES,
                addr: 0,
            },
        ),
        (
            "misaligned",
            pciem_watchpoint_config {
                bar_index: 0,
                offset: 2,
                width: 4,
                flags: PCIEM_WP_FLAG_BAR_KPROBES,
                addr: 0,
            },
        ),
        (
            "past the BAR",
            pciem_watchpoint_config {
                bar_index: 0,
                offset: 4096,
                width: 4,
                flags: PCIEM_WP_FLAG_BAR_KPROBES,
                addr: 0,
            },
        ),
        (
            "unknown flag",
            pciem_watchpoint_config {
                bar_index: 0,
                offset: 0,
                width: 4,
                flags: 0x100,
                addr: 0,
            },
        ),
        (
            "manual wrong addr",
            pciem_watchpoint_config {
                bar_index: 0,
                offset: 0,
                width: 4,
                flags: PCIEM_WP_FLAG_BAR_MANUAL,
                addr: 0xffff_ffff_dead_0000,
            },
        ),
    ] {
        let e = with(&dev, PCIEM_IOCTL_SET_WATCHPOINT, &wp);
        r.check(
            e.is_some(),
            format!("SET_WATCHPOINT {what}: refused ({e:?})"),
        );
    }
    for (what, irq) in [
        (
            "kind 7",
            pciem_irq_inject {
                vector: 0,
                kind: 7,
                flags: 0,
                reserved: 0,
            },
        ),
        (
            "vector 99",
            pciem_irq_inject {
                vector: 99,
                kind: PCIEM_IRQ_MSI,
                flags: 0,
                reserved: 0,
            },
        ),
        (
            "reserved set",
            pciem_irq_inject {
                vector: 0,
                kind: PCIEM_IRQ_MSI,
                flags: 0,
                reserved: 1,
            },
        ),
        (
            "MSI-X",
            pciem_irq_inject {
                vector: 0,
                kind: PCIEM_IRQ_MSIX,
                flags: 0,
                reserved: 0,
            },
        ),
    ] {
        let e = with(&dev, PCIEM_IOCTL_INJECT_IRQ, &irq);
        r.check(e.is_some(), format!("INJECT_IRQ {what}: refused ({e:?})"));
    }
    // mmap: the ring only at offset 0 and not longer than the ring.
    let page = 4096;
    for (what, fd, off, len) in [
        ("ring at offset 1 page", dev.raw(), page, page as usize),
        ("ring longer than the ring", dev.raw(), 0, 1 << 20),
    ] {
        // SAFETY: a fresh mapping request the kernel must refuse.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                off,
            )
        };
        r.check(p == libc::MAP_FAILED, format!("mmap {what}: refused"));
    }
    // SAFETY: as above, a private mapping of a BAR must be refused.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            dev.raw(),
            0,
        )
    };
    r.check(p == libc::MAP_FAILED, "MAP_PRIVATE of the ring: refused");
    r.step("the device still works: mmap BAR0", inst.map_bar(0, 4096));
    r.step("the device still works: GET_BAR_INFO", dev.bar_info(0));
    let (_, log) = run("dmesg", &[]);
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| {
            ["BUG:", "WARNING:", "Call Trace", "Oops"]
                .iter()
                .any(|p| l.contains(p))
        })
        .collect();
    r.check(
        bad.is_empty(),
        format!("no BUG/WARNING/Oops in the kernel log {bad:?}"),
    );
    r.finish()
}
