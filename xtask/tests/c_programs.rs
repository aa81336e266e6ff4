//! The C programs written against the header compile unchanged with
//! warnings as errors: the counter device (a real program, run in the VM)
//! and a file in the walkthrough's exact style (compile-only).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// Build `examples/c/<name>.c` once per test process (tests run in
/// parallel and must not write the same executable concurrently).
fn build(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some((_, exe)) = built.iter().find(|(n, _)| n == name) {
        return exe.clone();
    }
    let root = xtask::root();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-programs");
    match xtask::ctest::build_example(&root, &dir, name) {
        Ok(exe) => {
            built.push((name.to_string(), exe.clone()));
            exe
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn counter_device_builds() {
    let exe = build("counter_device");
    assert!(exe.is_file());
}

#[test]
fn walkthrough_style_builds() {
    let exe = build("walkthrough_style");
    assert!(exe.is_file());
}

/// A control device that does not exist: the program fails at the first
/// step, naming it, rather than crash.
#[test]
fn counter_device_reports_a_missing_control_device() {
    let missing = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-such-pciem");
    let out = std::process::Command::new(build("counter_device"))
        .arg("-d")
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("open {}: No such file", missing.display())),
        "{stderr}"
    );
}

/// A file that is not /dev/pciem rejects the first ioctl; the program names
/// that step and unwinds.
#[test]
fn counter_device_names_the_failing_ioctl() {
    let out = std::process::Command::new(build("counter_device"))
        .args(["-d", "/dev/null", "1f0c", "0001"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CREATE_DEVICE: "), "{stderr}");
}

#[test]
fn counter_device_rejects_bad_usage() {
    let exe = build("counter_device");
    for args in [
        &["12345", "1"][..],
        &["zz", "1"],
        &["1"],
        &["-d"],
        &["1", "2", "3"],
    ] {
        let out = std::process::Command::new(&exe)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage"), "{args:?}: {stderr}");
    }
}
