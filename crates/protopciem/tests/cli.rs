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
