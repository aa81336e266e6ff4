//! `protopciem dump-config` is decoded by the real `lspci -F FILE -vvv` as
//! intended: IDs, class, both BARs' types and the MSI capability.

use std::path::{Path, PathBuf};
use std::process::Command;

/// lspci from PATH (or the usual places); this test installs nothing.
fn lspci() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("lspci"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("lspci (pciutils) is not installed: run `cargo xtask setup` to install it")
        })
}

fn dump_to(path: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_protopciem"))
        .arg("dump-config")
        .output()
        .expect("run protopciem dump-config");
    assert!(
        out.status.success(),
        "dump-config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(path, &out.stdout).expect("write the dump");
}

#[test]
fn lspci_decodes_the_dumped_config_space() {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("protopciem-config.dump");
    dump_to(&file);
    let out = Command::new(lspci())
        .arg("-F")
        .arg(&file)
        .args(["-vvv", "-nn"])
        .output()
        .expect("run lspci");
    assert!(out.status.success(), "lspci failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));

    assert!(
        lines[0].starts_with("00:00.0")
            && lines[0].contains("[0b00]")
            && lines[0].contains("[1f0c:0001]"),
        "identity/class line: {text}"
    );
    assert!(
        has("Region 0: Memory at") && has("(64-bit, non-prefetchable)"),
        "BAR0: {text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Region 2: Memory at") && l.contains("(64-bit, prefetchable)")),
        "BAR2: {text}"
    );
    assert!(
        !has("Region 1:") && !has("Region 3:"),
        "upper halves decoded as BARs: {text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Capabilities: [40] MSI:")
                && l.contains("Count=1/1")
                && l.contains("Maskable+")
                && l.contains("64bit+")),
        "MSI capability: {text}"
    );
}
