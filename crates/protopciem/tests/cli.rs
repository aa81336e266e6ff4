//! The binary: the workload writes a 640×480 PNG and reports no errors;
//! the chardev backend without a usable /dev/pciem fails clearly.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_protopciem"))
}

#[test]
fn workload_writes_a_640x480_png_with_zero_errors() {
    let png_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-scene.png");
    let _ = std::fs::remove_file(&png_path);
    let out = bin().arg("--out").arg(&png_path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("interrupts: 20  errors: 0"), "{stdout}");
    assert!(stdout.contains(&png_path.display().to_string()), "{stdout}");

    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (640, 480));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    // The top-left corner is the white border of the test scene.
    assert_eq!(&buf[..3], &[255, 255, 255]);
}

#[test]
fn watch_mode_workload_stepping() {
    let png_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-watch.png");
    let out = bin()
        .args(["--mode", "watch", "--stepping", "--out"])
        .arg(&png_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("interrupts: 20  errors: 0"), "{stdout}");
}

#[test]
fn chardev_backend_without_the_module_fails_clearly() {
    let out = bin()
        .args(["--backend", "chardev", "--device", "/nonexistent/pciem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("opening /nonexistent/pciem"), "{err}");
    assert!(err.contains("load pciem.ko"), "{err}");
}

#[test]
fn chardev_backend_refuses_a_file_that_is_not_pciem() {
    let out = bin()
        .args(["--backend", "chardev", "--device", "/dev/null", "--poll"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GET_VERSION"), "{err}");
    assert!(err.contains("not a PCIem control file"), "{err}");
}

#[test]
fn chardev_only_flags_are_refused_with_the_mock_backend() {
    for args in [
        &["--device", "/dev/pciem"][..],
        &["--poll"][..],
        &["--backend", "mock", "--poll"][..],
    ] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("applies only to --backend chardev"), "{err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing ran");
    }
    let out = bin()
        .args(["--backend", "chardev", "--stepping"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--stepping applies only to --backend mock"),
        "{err}"
    );
}

#[test]
fn a_missing_out_directory_is_an_error_not_created() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-no-such-dir");
    let _ = std::fs::remove_dir_all(&dir);
    let out = bin()
        .arg("--stepping")
        .arg("--out")
        .arg(dir.join("sub/frame.png"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!dir.exists(), "the directory was created");
}

#[test]
fn the_missing_module_error_says_how_to_build_it_and_the_pool_it_needs() {
    let out = bin()
        .args(["--backend", "chardev", "--device", "/nonexistent/pciem"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cargo xtask kbuild"), "{err}");
    assert!(err.contains("ProtoPCIem needs 2 MiB of pool"), "{err}");
    assert!(err.contains("memmap=2M$0x3f000000"), "{err}");
    assert!(err.contains("phys_region=0x3f000000:2M"), "{err}");
}
