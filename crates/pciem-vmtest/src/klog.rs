//! The kernel log, judged the way `cargo xtask vm-test` judges it.

use crate::sysfs::run;

/// Kernel log lines that mean the kernel itself is unhappy. The harness
/// (`cargo xtask vm-test`) judges the whole guest log by this same list.
pub const BAD: &[&str] = &[
    "BUG:",
    "WARNING:",
    "Oops",
    "Call Trace",
    "general protection",
    "refcount_t",
    "list_del corruption",
    "list_add corruption",
    "sleeping function called",
];

/// Lines of the current kernel log that match [`BAD`].
pub fn problems() -> Vec<String> {
    let (_, log) = run("dmesg", &[]);
    log.lines()
        .filter(|l| BAD.iter().any(|b| l.contains(b)))
        .map(String::from)
        .collect()
}

/// The timestamp of a kernel-log line (`[  12.345678] ...`), in seconds.
pub fn time(line: &str) -> Option<f64> {
    line.strip_prefix('[')?
        .split(']')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The timestamp of the newest kernel-log line: a mark for [`since`].
/// (A mark by line count breaks once the log buffer wraps, which a full
/// `vm-test` run does.)
pub fn now() -> f64 {
    let (_, log) = run("dmesg", &[]);
    log.lines().rev().find_map(time).unwrap_or(0.0)
}

/// The kernel-log lines stamped after `mark` (from [`now`]).
pub fn since(mark: f64) -> Vec<String> {
    let (_, log) = run("dmesg", &[]);
    log.lines()
        .filter(|l| time(l).is_some_and(|t| t > mark))
        .map(String::from)
        .collect()
}
