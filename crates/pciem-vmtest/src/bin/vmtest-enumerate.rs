//! Scenario (a): a device described through /dev/pciem appears on its own
//! root bus with the right IDs, class and BARs in sysfs and in `lspci`, its
//! BARs map by index with bounds checks, and it disappears on close.

use std::time::Duration;

use pciem_vmtest::sysfs::{self, find_devices, pci_name, read_hex, resource_line, wait_until};
use pciem_vmtest::{Dev, Report, TEST_DEVICE_UNBOUND, TEST_VENDOR};

/// Opens /dev/pciem from a thread whose effective capabilities lack
/// CAP_SYS_ADMIN (capabilities are per thread); returns the open's errno.
fn open_without_sys_admin() -> Option<i32> {
    std::thread::spawn(|| {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const CAP_V3: u32 = 0x2008_0522;
        const CAP_SYS_ADMIN: u32 = 21;
        let mut hdr = Header {
            version: CAP_V3,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: capget with a v3 header and room for two data words.
        if unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) } != 0 {
            return None;
        }
        data[0].effective &= !(1 << CAP_SYS_ADMIN);
        // SAFETY: capset of this thread only, with the same layout.
        if unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) } != 0 {
            return None;
        }
        match Dev::open() {
            Ok(_) => Some(0),
            Err(e) => e.raw_os_error(),
        }
    })
    .join()
    .ok()
    .flatten()
}

fn main() {
    let mut r = Report::new("enumerate");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let mode = std::fs::metadata("/dev/pciem").map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777
    });
    r.check(
        mode.as_ref().ok() == Some(&0o600),
        format!("/dev/pciem mode is 0600 ({mode:?})"),
    );
    let errno = open_without_sys_admin();
    r.check(
        errno == Some(libc::EPERM),
        format!("open without CAP_SYS_ADMIN fails with EPERM (errno {errno:?})"),
    );
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        r.finish()
    };
    if let Some(v) = r.step("GET_VERSION", dev.version()) {
        r.check(
            v.abi_version == pciem_abi::PCIEM_ABI_VERSION
                && v.ring_size as usize == pciem_abi::PCIEM_RING_SIZE
                && v.event_size as usize == core::mem::size_of::<pciem_abi::pciem_event>(),
            format!("version matches the ABI: {v:?}"),
        );
    }
    r.check(
        dev.add_bar(0, 4096, 0).is_err(),
        "ADD_BAR before CREATE_DEVICE is refused",
    );
    r.step(
        "describe 1f0c:7e5f, BAR0 4K 32-bit, BAR2 64K 64-bit pref, MSI",
        dev.describe_test_device(TEST_DEVICE_UNBOUND),
    );
    r.check(dev.create().is_err(), "a second CREATE_DEVICE is refused");
    let Some(inst) = r.step("REGISTER", dev.register()) else {
        r.finish()
    };
    r.check(dev.register().is_err(), "a second REGISTER is refused");

    let found = find_devices(TEST_VENDOR, TEST_DEVICE_UNBOUND);
    r.check(
        found.len() == 1,
        format!("exactly one device in sysfs: {found:?}"),
    );
    let Some(path) = found.first().cloned() else {
        r.finish()
    };
    let name = pci_name(&path);
    let domain = u32::from_str_radix(name.split(':').next().unwrap_or(""), 16).unwrap_or(0);
    r.check(
        domain >= 0x10000,
        format!("{name} is in a domain of its own (>= 0x10000)"),
    );
    r.check(
        read_hex(&path.join("class")) == Some(0x0b4000),
        "sysfs class is 0x0b4000",
    );
    r.check(
        read_hex(&path.join("subsystem_vendor")) == Some(TEST_VENDOR as u64),
        "sysfs subsystem_vendor is 0x1f0c",
    );

    let bar0 = dev.bar_info(0);
    let bar2 = dev.bar_info(2);
    let bar1 = dev.bar_info(1);
    if let (Ok(b0), Ok(b2), Ok(b1)) = (&bar0, &bar2, &bar1) {
        r.check(
            b0.size == 4096 && b0.bus_addr % 4096 == 0 && b0.bus_addr != 0,
            format!("GET_BAR_INFO 0: {b0:?}"),
        );
        r.check(
            b2.size == 65536 && b2.bus_addr % 65536 == 0 && b2.flags & 0xc == 0xc,
            format!("GET_BAR_INFO 2: naturally aligned 64-bit prefetchable {b2:?}"),
        );
        r.check(
            b1.size == 0,
            "GET_BAR_INFO 1 (upper half of nothing) is unused",
        );
        let res0 = resource_line(&path, 0);
        r.check(
            res0.map(|(s, e, _)| (s, e - s + 1)) == Some((b0.bus_addr, 4096)),
            format!("sysfs resource line 0 {res0:x?} matches BAR0"),
        );
        let res2 = resource_line(&path, 2);
        r.check(
            res2.map(|(s, e, _)| (s, e - s + 1)) == Some((b2.bus_addr, 65536)),
            format!("sysfs resource line 2 {res2:x?} matches BAR2"),
        );
        let iomem = std::fs::read_to_string("/proc/iomem").unwrap_or_default();
        r.check(
            iomem.contains("pciem window"),
            "the bridge window is in /proc/iomem",
        );

        let (ok, out) = sysfs::run("lspci", &["-vvv", "-nn", "-s", &name]);
        println!("--- lspci -vvv -nn -s {name}\n{out}---");
        r.check(ok, "lspci ran");
        r.check(out.contains("[1f0c:7e5f]"), "lspci shows [1f0c:7e5f]");
        r.check(out.contains("[0b40]"), "lspci shows class [0b40]");
        // No driver is bound, so lspci may add "[disabled]" in between.
        let region = |prefix: String, size: &str| {
            out.lines()
                .any(|l| l.trim_start().starts_with(&prefix) && l.ends_with(size))
        };
        r.check(
            region(
                format!(
                    "Region 0: Memory at {:x} (32-bit, non-prefetchable)",
                    b0.bus_addr
                ),
                "[size=4K]",
            ),
            "lspci decodes Region 0 at the bus address, 32-bit, 4K",
        );
        r.check(
            region(
                format!(
                    "Region 2: Memory at {:x} (64-bit, prefetchable)",
                    b2.bus_addr
                ),
                "[size=64K]",
            ),
            "lspci decodes Region 2 at the bus address, 64-bit prefetchable, 64K",
        );
        r.check(
            out.contains("MSI: Enable- Count=1/1") && out.contains("64bit+"),
            "lspci decodes the MSI capability (1 vector, 64-bit, disabled)",
        );
    } else {
        r.check(false, format!("GET_BAR_INFO: {bar0:?} {bar2:?} {bar1:?}"));
    }

    // mmap by BAR index, with bounds.
    if let Some(m0) = r.step("mmap BAR0 (offset 0)", inst.map_bar(0, 4096)) {
        m0.write32(0x10, 0xa5a5_0001);
        r.check(m0.read32(0x10) == 0xa5a5_0001, "BAR0 memory reads back");
    }
    if let Some(m2) = r.step("mmap BAR2 (offset 2 pages)", inst.map_bar(2, 65536)) {
        m2.write32(0, 0x5a5a_0002);
        r.check(m2.read32(0) == 0x5a5a_0002, "BAR2 memory reads back");
    }
    r.check(
        inst.try_map(0, 8192).is_err(),
        "mmap past the end of BAR0 is refused",
    );
    r.check(
        inst.try_map(1, 4096).is_err(),
        "mmap of unused BAR1 is refused",
    );
    r.check(
        inst.try_map(6, 4096).is_err(),
        "mmap of BAR index 6 is refused",
    );
    r.check(
        dev.watch(0, 0, 4)
            .is_err_and(|e| e.raw_os_error() == Some(libc::EAGAIN)),
        "SET_WATCHPOINT without a driver mapping fails with EAGAIN",
    );
    r.check(
        dev.inject_msi(0).is_err(),
        "INJECT_IRQ while the driver has not enabled MSI is refused",
    );

    drop(inst);
    drop(dev);
    r.check(
        wait_until(Duration::from_secs(5), || {
            find_devices(TEST_VENDOR, TEST_DEVICE_UNBOUND).is_empty()
        }),
        "closing the files hot-removes the device",
    );
    let iomem = std::fs::read_to_string("/proc/iomem").unwrap_or_default();
    r.check(!iomem.contains("pciem window"), "the window is released");
    image_path(&mut r);
    r.finish()
}

/// The other description path: a complete image built by pciem-core's
/// builder, handed over with SET_CONFIG_IMAGE.
fn image_path(r: &mut Report) {
    use pciem_core::config::{Bar, Capability, MsiCap};
    use pciem_core::ConfigBuilder;

    const DEVICE: u16 = 0x7e5e;
    let space = ConfigBuilder::new(TEST_VENDOR, DEVICE)
        .class(0x0b, 0x40, 0x00)
        .revision(2)
        .bar(0, Bar::memory64(8192))
        .capability(Capability::Msi(MsiCap::new(1).maskable(true)))
        .build();
    let Some(space) = r.step("pciem-core builds an image", space) else {
        return;
    };
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    r.step("SET_CONFIG_IMAGE", dev.set_image(space.image()));
    r.check(
        dev.add_bar(2, 4096, 0).is_err(),
        "ADD_BAR after SET_CONFIG_IMAGE is refused",
    );
    let Some(_inst) = r.step("REGISTER the image", dev.register()) else {
        return;
    };
    let found = find_devices(TEST_VENDOR, DEVICE);
    let Some(path) = found.first() else {
        r.check(false, "the image's device 1f0c:7e5e is in sysfs");
        return;
    };
    let res0 = resource_line(path, 0);
    r.check(
        res0.map(|(s, e, f)| (e - s + 1, f & 0x0010_0000 != 0)) == Some((8192, true)),
        format!("BAR0 is 8K and 64-bit in sysfs ({res0:x?})"),
    );
    let (_, out) = sysfs::run("lspci", &["-vvv", "-nn", "-s", &pci_name(path)]);
    r.check(
        out.contains("rev 02") && out.contains("Maskable+"),
        "lspci decodes the image (revision 2, maskable MSI)",
    );
}
