//! The committed C header of the driver ABI must be exactly what
//! `protopciem::uapi::c_header()` renders. Regenerate it with
//! `PROTOPCIEM_BLESS=1 cargo test -p protopciem --test uapi_header`.

use std::path::PathBuf;

use protopciem::uapi::{c_header, C_HEADER_PATH};

#[test]
fn committed_header_matches_the_rust_definition() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(C_HEADER_PATH);
    let fresh = c_header();
    if std::env::var_os("PROTOPCIEM_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write the header");
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        committed == fresh,
        "{C_HEADER_PATH} is stale; run `PROTOPCIEM_BLESS=1 cargo test -p protopciem --test uapi_header`"
    );
}

/// The header compiles for userspace as C and as C++ with every layout
/// and ioctl-number assertion holding (the kernel build checks the kernel
/// side: protopciem.ko includes it).
#[test]
fn header_compiles_in_c_and_cxx_with_its_assertions() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../kernel/include/uapi");
    for (compiler, lang, std) in [("gcc", "c", "-std=c11"), ("g++", "c++", "-std=c++17")] {
        let out = std::process::Command::new(compiler)
            .args([
                "-fsyntax-only",
                "-Wall",
                "-Wextra",
                "-Werror",
                std,
                "-x",
                lang,
                "-I",
            ])
            .arg(&dir)
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("piped stdin")
                    .write_all(b"#include \"protopciem.h\"\nint main(void) { return 0; }\n")?;
                child.wait_with_output()
            })
            .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
        assert!(
            out.status.success(),
            "{compiler} rejects protopciem.h:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
