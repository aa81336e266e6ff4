//! The generated C header never drifts from pciem-abi, and C agrees with
//! Rust about every struct's layout.

use std::process::Command;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let root = xtask::root();
    let fresh = xtask::header::generate(&root).expect("generation");
    let committed = std::fs::read_to_string(xtask::header::path(&root)).expect("committed header");
    assert!(
        committed == fresh,
        "kernel/include/uapi/pciem.h is stale: run `cargo xtask gen-header`"
    );
}

#[test]
fn header_carries_every_ioctl_and_assertion() {
    let text = xtask::header::generate(&xtask::root()).unwrap();
    for def in pciem_abi::PCIEM_IOCTLS {
        assert!(
            text.contains(&format!("#define {} ", def.name)),
            "{}",
            def.name
        );
    }
    assert!(text.contains("struct pciem_event {"));
    assert!(
        text.contains(" type;"),
        "raw identifier r#type becomes `type`"
    );
    assert!(text.contains("PCIEM_STATIC_ASSERT(sizeof(struct pciem_shared_ring) == 65792"));
}

#[test]
fn gcc_agrees_with_rust_about_the_layout() {
    let root = xtask::root();
    let dir = std::env::temp_dir().join(format!("pciem-ctest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    std::fs::write(&src, xtask::ctest::layout_source()).unwrap();
    let out = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-c", "-o"])
        .arg(dir.join("layout.o"))
        .arg("-I")
        .arg(root.join("kernel/include/uapi"))
        .arg(&src)
        .output()
        .expect("gcc must be installed (cargo xtask setup)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "gcc rejected the layout:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn layout_test_can_fail() {
    // The check is only worth something if a wrong value is caught.
    let root = xtask::root();
    let dir = std::env::temp_dir().join(format!("pciem-ctest-neg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("bad.c");
    let bad = xtask::ctest::layout_source().replacen("== 64,", "== 65,", 1);
    assert_ne!(bad, xtask::ctest::layout_source());
    std::fs::write(&src, bad).unwrap();
    let status = Command::new("gcc")
        .args(["-std=c11", "-fsyntax-only", "-I"])
        .arg(root.join("kernel/include/uapi"))
        .arg(&src)
        .output()
        .unwrap()
        .status;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!status.success());
}
