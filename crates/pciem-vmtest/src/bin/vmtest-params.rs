//! Scenario: pciem.ko refuses to load, with errno and a reason in the
//! kernel log, when `phys_region=` is malformed, too small or overlaps
//! System RAM; without `phys_region=` it loads with no BAR pool (trap-only:
//! see `vmtest-trap-nomemmap`) and says so; `modinfo`-style parameter
//! descriptions exist.
//!
//! Usage: `vmtest-params PATH/TO/pciem.ko GOOD_REGION` with pciem not
//! loaded; e.g. `vmtest-params /pciem.ko 0x3f000000:2M`. It loads the
//! module with GOOD_REGION at the end and leaves it loaded.

use pciem_vmtest::sysfs::run;
use pciem_vmtest::Report;

fn dmesg_tail() -> String {
    let (_, log) = run("dmesg", &[]);
    log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
}

/// The first System RAM range in /proc/iomem, as `ADDR:SIZE`.
fn ram_region() -> Option<String> {
    let iomem = std::fs::read_to_string("/proc/iomem").ok()?;
    let line = iomem.lines().find(|l| {
        l.ends_with(": System RAM") && !l.starts_with(' ') && !l.starts_with("00000000-")
    })?;
    let range = line.split(':').next()?.trim();
    let (lo, _) = range.split_once('-')?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    Some(format!("{:#x}:{}", (lo + 0xfff) & !0xfff, 1 << 20))
}

fn main() {
    let mut r = Report::new("params");
    let mut args = std::env::args().skip(1);
    let (Some(ko), Some(good)) = (args.next(), args.next()) else {
        r.check(false, "usage: vmtest-params PATH/TO/pciem.ko ADDR:SIZE");
        r.finish()
    };
    let ram = ram_region().unwrap_or_else(|| "0x100000:1M".to_string());
    let (ok, out) = run("insmod", &[ko.as_str()]);
    let log = dmesg_tail();
    r.check(
        ok && log.contains("no BAR pool (phys_region= not set)"),
        format!(
            "no phys_region: insmod loads a trap-only module ({}) and the log says so",
            out.trim()
        ),
    );
    let (ok, out) = run("rmmod", &["pciem"]);
    r.check(ok, format!("rmmod pciem {}", out.trim()));
    let cases: [(&str, String, &str); 4] = [
        (
            "malformed phys_region",
            "phys_region=banana".into(),
            "expected ADDR:SIZE",
        ),
        (
            "too small phys_region",
            "phys_region=0x3f000000:0".into(),
            "too small",
        ),
        (
            "phys_region in System RAM",
            format!("phys_region={ram}"),
            "overlaps System RAM",
        ),
        (
            "unknown dma_check mode",
            "dma_check=sometimes".into(),
            "dma_check=sometimes: expected off, report or enforce",
        ),
    ];
    for (what, param, reason) in cases {
        let mut a = vec![ko.as_str()];
        if !param.is_empty() {
            a.push(param.as_str());
        }
        let (ok, out) = run("insmod", &a);
        let log = dmesg_tail();
        r.check(
            !ok && log.contains(reason),
            format!(
                "{what}: insmod refused ({}) and the log says '{reason}'",
                out.trim()
            ),
        );
    }
    let param = format!("phys_region={good}");
    let (ok, out) = run("insmod", &[ko.as_str(), param.as_str()]);
    r.check(ok, format!("insmod with {param} {}", out.trim()));
    r.check(
        std::fs::read_to_string("/sys/module/pciem/parameters/phys_region")
            .map(|s| s.trim() == good)
            .unwrap_or(false),
        "the parameter is visible in /sys/module/pciem/parameters",
    );
    r.check(
        std::fs::read_to_string("/sys/module/pciem/parameters/dma_check")
            .is_ok_and(|s| s.trim() == "enforce"),
        "dma_check defaults to enforce",
    );
    r.finish()
}
