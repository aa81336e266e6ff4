//! Scenario: pciem.ko refuses to load, with errno and a reason in the
//! kernel log, when `p2p_regions=` is malformed, empty-sized, wrapping,
//! self-overlapping, too long or in System RAM; a good list loads.
//!
//! Usage: `vmtest-p2p-params PATH/TO/pciem.ko POOL P2P_REGION`, where POOL
//! is a valid `phys_region=` value and P2P_REGION a carved-out `ADDR:SIZE`.
//! It unloads pciem first if loaded (no device may be alive), and leaves
//! it loaded with the good list.

use pciem_vmtest::sysfs::run;
use pciem_vmtest::Report;

fn dmesg_tail() -> String {
    let (_, log) = run("dmesg", &[]);
    log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
}

/// A page-aligned 1 MiB range inside the first System RAM block above 1 MiB.
fn ram_region() -> Option<String> {
    let iomem = std::fs::read_to_string("/proc/iomem").ok()?;
    let line = iomem.lines().find(|l| {
        l.ends_with(": System RAM") && !l.starts_with(' ') && !l.starts_with("00000000-")
    })?;
    let (lo, _) = line.split(':').next()?.trim().split_once('-')?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    Some(format!("{:#x}:1M", (lo + 0xfff) & !0xfff))
}

fn main() {
    let mut r = Report::new("p2p-params");
    let mut args = std::env::args().skip(1);
    let (Some(ko), Some(pool), Some(good)) = (args.next(), args.next(), args.next()) else {
        r.check(
            false,
            "usage: vmtest-p2p-params PATH/TO/pciem.ko POOL P2P_REGION",
        );
        r.finish()
    };
    if std::path::Path::new("/sys/module/pciem").exists() {
        let (ok, out) = run("rmmod", &["pciem"]);
        r.check(ok, format!("rmmod pciem {}", out.trim()));
    }
    let base = good.split(':').next().unwrap_or("0");
    let ram = ram_region().unwrap_or_else(|| "0x100000:1M".to_string());
    let cases: [(&str, String, &str); 7] = [
        ("no size", base.to_string(), "expected ADDR:SIZE"),
        ("trailing junk", format!("{good}x"), "trailing characters"),
        ("zero size", format!("{base}:0"), "size is zero"),
        ("wrapping", "0xfffffffffffff000:1M".into(), "wraps around"),
        (
            "overlapping entries",
            format!("{good},{good}"),
            "overlaps entry 1",
        ),
        (
            "empty second entry",
            format!("{good},"),
            "entry 2: expected ADDR:SIZE",
        ),
        ("in System RAM", ram, "overlaps System RAM"),
    ];
    let phys = format!("phys_region={pool}");
    for (what, list, reason) in cases {
        let param = format!("p2p_regions={list}");
        let (ok, out) = run("insmod", &[ko.as_str(), phys.as_str(), param.as_str()]);
        let log = dmesg_tail();
        r.check(
            !ok && log.contains(reason),
            format!(
                "{what}: insmod refused ({}) and the log says '{reason}'",
                out.trim()
            ),
        );
    }
    // Nine distinct entries: more than the eight allowed.
    let (addr, _) = good.split_once(':').unwrap_or(("0", ""));
    let addr = pciem_vmtest::sysfs::parse_num(addr).unwrap_or(0);
    let nine: Vec<String> = (0..9)
        .map(|i| format!("{:#x}:4K", addr + i * 4096))
        .collect();
    let param = format!("p2p_regions={}", nine.join(","));
    let (ok, out) = run("insmod", &[ko.as_str(), phys.as_str(), param.as_str()]);
    r.check(
        !ok && dmesg_tail().contains("more than 8 regions"),
        format!("nine distinct entries: insmod refused ({})", out.trim()),
    );

    let param = format!("p2p_regions={good}");
    let (ok, out) = run("insmod", &[ko.as_str(), phys.as_str(), param.as_str()]);
    r.check(ok, format!("insmod with {param} {}", out.trim()));
    r.check(
        dmesg_tail().contains("1 peer-to-peer region(s) whitelisted"),
        "the log counts the whitelisted region",
    );
    r.check(
        std::fs::read_to_string("/sys/module/pciem/parameters/p2p_regions")
            .map(|s| s.trim() == good)
            .unwrap_or(false),
        "the parameter is visible in /sys/module/pciem/parameters",
    );
    r.finish()
}
