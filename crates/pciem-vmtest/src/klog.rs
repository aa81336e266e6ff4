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
