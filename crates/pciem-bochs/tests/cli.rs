//! The `pciem-bochs` binary's command line: the mock run writes the
//! picture it drew; bad arguments are refused with a message before any
//! device exists.

use std::process::Command;

use pciem_bochs::{pattern, png_io};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pciem-bochs"))
}

#[test]
fn the_mock_run_writes_colour_bars() {
    let dir = std::env::temp_dir().join(format!("pciem-bochs-cli-{}", std::process::id()));
    let path = dir.join("shot.png");
    let out = bin()
        .args(["--backend", "mock", "--screenshot"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("probe: ID 0xb0c5, 16 MiB video memory"),
        "{text}"
    );
    assert!(text.contains("mode: 1024x768 32 bpp"), "{text}");
    let f = png_io::read(&path).unwrap();
    assert_eq!((f.width, f.height), (1024, 768));
    for x in (0..1024).step_by(64) {
        assert_eq!(f.pixel(x, 300), Some(pattern::bar_at(x, 1024)));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    for (args, want) in [
        (
            &["--backend", "chardev", "--every", "10"][..],
            "--every needs --screenshot PATH",
        ),
        (
            &[
                "--backend",
                "chardev",
                "--every",
                "0",
                "--screenshot",
                "x.png",
            ][..],
            "--every must be at least 1 ms",
        ),
        (
            &["--backend", "mock", "--every", "10"][..],
            "--every applies to --backend chardev",
        ),
        (
            &["--backend", "mock", "--vram-mb", "3"][..],
            "must be a power of two from 4 MiB to 256 MiB",
        ),
        (
            &["--backend", "chardev", "--vram-mb", "512"][..],
            "must be a power of two from 4 MiB to 256 MiB",
        ),
    ] {
        let out = bin().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
