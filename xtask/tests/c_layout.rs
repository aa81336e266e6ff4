//! C and C++ agree with Rust about every struct's layout and every ioctl
//! number: a file of assertions whose values come from the Rust side is
//! compiled against the generated header.

use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn gcc_agrees_with_rust() {
    let root = xtask::root();
    if let Err(e) = xtask::ctest::check_layout_c(&root, &scratch("c-layout")) {
        panic!("{e}");
    }
}

#[test]
fn gxx_agrees_with_rust() {
    let root = xtask::root();
    if let Err(e) = xtask::ctest::check_layout_cxx(&root, &scratch("cxx-layout")) {
        panic!("{e}");
    }
}

#[test]
fn the_layout_test_covers_everything() {
    let src = xtask::ctest::layout_source();
    let fields: usize = pciem_abi::layout::PCIEM_LAYOUTS
        .iter()
        .map(|l| 1 + l.fields.len())
        .sum();
    let expected = fields + pciem_abi::PCIEM_IOCTLS.len();
    assert_eq!(src.matches("\nRUST_SAYS(").count(), expected);
    assert!(src.contains("RUST_SAYS(offsetof(struct pciem_event, type) == 8,"));
    assert!(src.contains("RUST_SAYS(PCIEM_IOCTL_ADD_BAR == 0x40105002u,"));
}

/// The check is only worth something if a wrong value is caught: compile
/// the assertions against a header with one field offset and one ioctl
/// number changed.
#[test]
fn a_header_that_disagrees_is_rejected() {
    let root = xtask::root();
    let header = std::fs::read_to_string(xtask::header::path(&root)).unwrap();
    let cases = [
        // Swap two fields of pciem_event: every size stays, offsets move.
        (
            "\t__u32 type;\n",
            "\t__u32 bar_swapped_in;\n\t__u32 type;\n",
            "offset of pciem_event.type",
        ),
        (
            "#define PCIEM_IOCTL_ADD_BAR _IOW(PCIEM_IOCTL_MAGIC, 0x02,",
            "#define PCIEM_IOCTL_ADD_BAR _IOW(PCIEM_IOCTL_MAGIC, 0x12,",
            "value of PCIEM_IOCTL_ADD_BAR",
        ),
    ];
    for (i, (from, to, message)) in cases.iter().enumerate() {
        let dir = scratch(&format!("c-layout-bad-{i}"));
        let uapi = dir.join("uapi");
        std::fs::create_dir_all(&uapi).unwrap();
        assert!(header.contains(from), "{from}");
        // Drop the header's own assertions so that only the test's can fire.
        let bad: String = header
            .replacen(from, to, 1)
            .lines()
            .filter(|l| !l.starts_with("PCIEM_ASSERT_"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(uapi.join("pciem.h"), bad).unwrap();
        std::fs::write(dir.join("layout.c"), xtask::ctest::layout_source()).unwrap();
        let out = std::process::Command::new("gcc")
            .args(["-std=c11", "-fsyntax-only", "-I"])
            .arg(&uapi)
            .arg(dir.join("layout.c"))
            .output()
            .expect("gcc must be installed (cargo xtask setup)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {i} compiled");
        assert!(stderr.contains(message), "case {i}: {stderr}");
    }
}

#[test]
fn the_kernel_build_agrees_with_rust() {
    let root = xtask::root();
    if let Err(e) = xtask::ctest::check_layout_kernel(&root, &scratch("kmod-layout")) {
        panic!("{e}");
    }
}
