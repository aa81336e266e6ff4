//! PASS/FAIL reporting.

use std::fmt::Display;

/// Collects the checks of one scenario.
#[derive(Debug)]
pub struct Report {
    name: &'static str,
    passed: usize,
    failed: usize,
}

impl Report {
    /// Starts scenario `name`.
    pub fn new(name: &'static str) -> Self {
        println!("SCENARIO {name}: BEGIN");
        Self {
            name,
            passed: 0,
            failed: 0,
        }
    }

    /// Records one check; `what` says what was checked.
    pub fn check(&mut self, ok: bool, what: impl Display) -> bool {
        if ok {
            self.passed += 1;
            println!("PASS: {what}");
        } else {
            self.failed += 1;
            println!("FAIL: {what}");
        }
        ok
    }

    /// Checks that the kernel log has no line of [`crate::klog::BAD`].
    pub fn check_klog_clean(&mut self) -> bool {
        let problems = crate::klog::problems();
        self.check(
            problems.is_empty(),
            format!("the kernel log is clean: {problems:?}"),
        )
    }

    /// Records a step that returned a `Result`; returns the value if it
    /// succeeded.
    pub fn step<T, E: Display>(&mut self, what: impl Display, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => {
                self.check(true, what);
                Some(v)
            }
            Err(e) => {
                self.check(false, format!("{what}: {e}"));
                None
            }
        }
    }

    /// Prints the verdict and exits: 0 only if every check passed and there
    /// was at least one.
    pub fn finish(self) -> ! {
        let ok = self.failed == 0 && self.passed > 0;
        println!(
            "SCENARIO {}: {} ({} passed, {} failed)",
            self.name,
            if ok { "PASS" } else { "FAIL" },
            self.passed,
            self.failed
        );
        std::process::exit(if ok { 0 } else { 1 })
    }
}
