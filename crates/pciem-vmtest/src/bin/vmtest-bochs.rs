//! The Bochs/QEMU std VGA model (`pciem-bochs`) driven by the guest
//! kernel's own `bochs` DRM driver.
//!
//! `vmtest-bochs [MODEL]` (default `/bin/pciem-bochs`), in the display
//! boot (a 32 MiB BAR pool, QEMU's own VGA removed), with the kernel
//! package's DRM modules in `/drm` and `modetest` in the PATH:
//! - starts the model, loads drm, drm_kms_helper, ttm, drm_ttm_helper,
//!   drm_vram_helper and bochs; `bochs-drm` binds, `/dev/dri/card0` and
//!   `/dev/fb0` appear, the connector's modes are the EDID's, and the
//!   model reports the 1024x768 mode fbdev sets;
//! - a known pattern written to `/dev/fb0` (console in graphics mode)
//!   comes back in the model's screenshot, every colour byte of every
//!   pixel identical;
//! - text written to `/dev/tty1` appears where fbcon puts it: every
//!   glyph cell of a visible character has foreground pixels, every
//!   blank cell is background (the console picture is printed for the
//!   harness: `bochs-console.png`);
//! - `modetest` sets 800x600 and 640x480 and draws its SMPTE bars; the
//!   model reports each mode and the screenshot's bars are checked at
//!   sampled pixels (`bochs-modetest-WxH.png`);
//! - unbinding the driver, binding it again, killing the model with the
//!   driver bound, and unloading the modules are clean.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command};
use std::time::{Duration, Instant};

use pciem_bochs::{pattern, png_io};
use pciem_vmtest::display::{
    emit_png, kd_mode, spawn_shown, tty_size, wait_exit, Model, KD_GRAPHICS, KD_TEXT,
};
use pciem_vmtest::protocard::signal;
use pciem_vmtest::sysfs::{self, wait_until};
use pciem_vmtest::Report;

const SHOT: &str = "/tmp/bochs.png";
/// The model also rewrites the screenshot this often (`--every`).
const EVERY_MS: &str = "1000";
const MODULES: &[&str] = &[
    "drm",
    "drm_kms_helper",
    "ttm",
    "drm_ttm_helper",
    "drm_vram_helper",
    "bochs",
];
const DRIVER: &str = "bochs-drm";
const CARD: &str = "/dev/dri/card0";
const FB: &str = "/dev/fb0";
const CONNECTOR_MODES: &str = "/sys/class/drm/card0-Virtual-1/modes";

fn load_modules(r: &mut Report) -> bool {
    for m in MODULES {
        let path = format!("/drm/{m}.ko");
        let (ok, out) = sysfs::run("insmod", &[&path]);
        if !r.check(ok, format!("insmod {path} {}", out.trim())) {
            return false;
        }
    }
    true
}

/// The pattern written to /dev/fb0 comes back colour byte for colour byte.
fn fb_pattern(r: &mut Report, m: &mut Model) {
    let read = |f: &str| sysfs::read_trim(&Path::new("/sys/class/graphics/fb0").join(f));
    let (vs, stride, bpp) = (read("virtual_size"), read("stride"), read("bits_per_pixel"));
    let geometry_ok = vs.as_deref().ok() == Some("1024,768")
        && stride.as_deref().ok() == Some("4096")
        && bpp.as_deref().ok() == Some("32");
    r.check(
        geometry_ok,
        format!("fb0 is 1024x768, 32 bpp, stride 4096: {vs:?} {stride:?} {bpp:?}"),
    );
    if !geometry_ok {
        return;
    }
    if let Err(e) = kd_mode(KD_GRAPHICS) {
        r.check(false, format!("console to graphics mode: {e}"));
        return;
    }
    let (w, h) = (1024u32, 768u32);
    let data = pattern::gradient(w, h);
    let wrote = std::fs::write(FB, &data);
    r.check(
        wrote.is_ok(),
        format!("wrote a {} byte pattern to {FB}: {wrote:?}", data.len()),
    );
    // fbdev's shadow buffer reaches video memory in a deferred worker:
    // give it a few tries.
    let mut last = String::new();
    let mut ok = false;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        match m.screenshot() {
            Ok(f) if (f.width, f.height) != (w, h) => {
                last = format!("screenshot is {}x{}", f.width, f.height);
            }
            Ok(f) => {
                let mut bad = 0usize;
                let mut first = None;
                for y in 0..h {
                    for x in 0..w {
                        let i = ((y * w + x) * 4) as usize;
                        let want = [data[i + 2], data[i + 1], data[i]];
                        if f.pixel(x, y) != Some(want) {
                            bad += 1;
                            first.get_or_insert((x, y, f.pixel(x, y), want));
                        }
                    }
                }
                ok = bad == 0;
                last = format!("{bad} pixels differ, first {first:?}");
                if ok {
                    break;
                }
            }
            Err(e) => last = e,
        }
    }
    r.check(
        ok,
        format!(
            "the model's screenshot shows the /dev/fb0 pattern byte for byte \
             (R, G, B of all {} pixels; the X byte is not displayed): {last}",
            w * h
        ),
    );
    let back = kd_mode(KD_TEXT);
    r.check(back.is_ok(), format!("console back to text mode: {back:?}"));
}

/// Text on tty1 appears in fbcon's glyph cells.
fn console_text(r: &mut Report, m: &mut Model) {
    let _ = std::fs::write("/sys/class/graphics/fbcon/cursor_blink", "0");
    let (rows, cols) = match tty_size() {
        Ok(s) => s,
        Err(e) => {
            r.check(false, format!("tty1 size: {e}"));
            return;
        }
    };
    let (cw, ch) = (1024 / cols, 768 / rows);
    r.check(
        cw * cols == 1024 && ch * rows == 768 && cw >= 6 && ch >= 8,
        format!("tty1 is {cols}x{rows} cells of {cw}x{ch} pixels on 1024x768"),
    );
    let probe = "PCIem: Linux bochs-drm on a Rust model";
    let (_, release) = sysfs::run("cat", &["/proc/sys/kernel/osrelease"]);
    let (_, modes) = sysfs::run("cat", &[CONNECTOR_MODES]);
    let modes: Vec<&str> = modes.split_whitespace().collect();
    let mut text = String::from("\x1b[2J\x1b[H\x1b[?25l");
    text.push_str(probe);
    text.push_str("\r\n\r\n");
    text.push_str(&format!(
        "\x1b[1;32mkernel\x1b[0m   Linux {}, driver bochs-drm (drivers/gpu/drm/tiny/bochs.c)\r\n",
        release.trim()
    ));
    text.push_str(
        "\x1b[1;32mdevice\x1b[0m   PCI 1234:1111 std VGA: a Rust process (crates/pciem-bochs)\r\n",
    );
    text.push_str("         BAR0 16 MiB video memory, BAR2 registers trapped by pciem.ko\r\n");
    text.push_str(&format!(
        "\x1b[1;32mmodes\x1b[0m    from the model's EDID: {}\r\n",
        modes.join(" ")
    ));
    text.push_str("\x1b[1;32mpicture\x1b[0m  this console, captured by the model as PNG\r\n\r\n");
    for bg in 41..=47 {
        text.push_str(&format!("\x1b[{bg}m        \x1b[0m"));
    }
    text.push_str("\r\n");
    let wrote = std::fs::write("/dev/tty1", text.as_bytes());
    r.check(wrote.is_ok(), format!("wrote text to /dev/tty1: {wrote:?}"));
    let mut last = String::new();
    let mut ok = false;
    let mut frame = None;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(400));
        let f = match m.screenshot() {
            Ok(f) => f,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let bg = f.pixel(1023, 767).unwrap_or([0, 0, 0]);
        let cell_lit = |col: u32, row: u32| {
            (row * ch..(row + 1) * ch)
                .any(|y| (col * cw..(col + 1) * cw).any(|x| f.pixel(x, y) != Some(bg)))
        };
        let mut wrong = Vec::new();
        for (i, c) in probe.chars().enumerate() {
            let lit = cell_lit(i as u32, 0);
            if lit == (c == ' ') {
                wrong.push((i, c, lit));
            }
        }
        // Past the text on the first line (the hidden cursor's cell
        // included): background.
        for col in probe.len() as u32..cols {
            if cell_lit(col, 0) {
                wrong.push((col as usize, ' ', true));
            }
        }
        ok = wrong.is_empty();
        last = format!("background {bg:?}, wrong cells (column, char, lit): {wrong:?}");
        frame = Some(f);
        if ok {
            break;
        }
    }
    r.check(
        ok,
        format!(
            "`{probe}` on tty1 is drawn in fbcon's cells: each of its {} glyph cells has \
             foreground pixels exactly where a character is: {last}",
            probe.len()
        ),
    );
    if let Some(f) = frame {
        emit_png("bochs-console.png", &f);
    }
}

/// modetest sets `mode` and draws its SMPTE bars, checked at sampled
/// pixels. Returns the model's line mark from just before modetest exits.
fn modetest_mode(r: &mut Report, m: &mut Model, connector: &str, mode: (u32, u32)) -> usize {
    let (w, h) = mode;
    let from = m.mark();
    let arg = format!("{connector}:{w}x{h}");
    let mut child = match spawn_shown(
        Command::new("modetest").args(["-M", DRIVER, "-s", &arg]),
        "modetest",
        usize::MAX,
    ) {
        Ok(c) => c,
        Err(e) => {
            r.check(false, format!("spawn modetest -s {arg}: {e}"));
            return m.mark();
        }
    };
    let stdin: Option<ChildStdin> = child.stdin.take();
    let reported = m.wait_mode(from, &format!("{w}x{h} 32 bpp"));
    r.check(
        reported,
        format!("modetest -s {arg}: the model reports {w}x{h} 32 bpp"),
    );
    // SMPTE: seven bars in the top two thirds, a second row of seven
    // between 6/9 and 7/9 of the height.
    const TOP: [[u8; 3]; 7] = [
        [192, 192, 192],
        [192, 192, 0],
        [0, 192, 192],
        [0, 192, 0],
        [192, 0, 192],
        [192, 0, 0],
        [0, 0, 192],
    ];
    const MIDDLE: [[u8; 3]; 7] = [
        [0, 0, 192],
        [19, 19, 19],
        [192, 0, 192],
        [19, 19, 19],
        [0, 192, 192],
        [19, 19, 19],
        [192, 192, 192],
    ];
    let mut last = String::new();
    let mut ok = false;
    let mut frame = None;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        let f = match m.screenshot() {
            Ok(f) => f,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let mut wrong = Vec::new();
        if (f.width, f.height) != (w, h) {
            wrong.push(format!("size {}x{}", f.width, f.height));
        } else {
            for (row, y, colours) in [("top", h / 3, &TOP), ("middle", h * 13 / 18, &MIDDLE)] {
                for (i, want) in colours.iter().enumerate() {
                    let x = (2 * i as u32 + 1) * w / 14;
                    for dy in [0, 5] {
                        let got = f.pixel(x, y + dy);
                        if got != Some(*want) {
                            wrong.push(format!(
                                "{row} bar {i} at ({x},{}) {got:?} != {want:?}",
                                y + dy
                            ));
                        }
                    }
                }
            }
        }
        ok = wrong.is_empty();
        last = format!("{wrong:?}");
        frame = Some(f);
        if ok {
            break;
        }
    }
    r.check(
        ok,
        format!(
            "{w}x{h}: modetest's colour bars are in the screenshot at 28 sampled pixels {last}"
        ),
    );
    if let Some(f) = frame {
        emit_png(&format!("bochs-modetest-{w}x{h}.png"), &f);
    }
    // modetest waits for a key before it restores and exits.
    let before_exit = m.mark();
    drop(stdin.map(|mut s| s.write_all(b"\n")));
    let exited = wait_exit(&mut child, Duration::from_secs(15));
    r.check(
        exited == Some(true),
        format!("modetest -s {arg} exits successfully on a key press: {exited:?}"),
    );
    before_exit
}

/// `modetest -v` page-flips between its pattern and a plain buffer: the
/// model sees the scanout start move (Y_OFFSET/X_OFFSET) again and again.
fn modetest_flips(r: &mut Report, m: &mut Model, connector: &str) {
    let from = m.mark();
    let arg = format!("{connector}:640x480");
    // Only a few of its per-second lines are worth showing.
    let mut child = match spawn_shown(
        Command::new("modetest").args(["-M", DRIVER, "-v", "-s", &arg]),
        "modetest -v",
        8,
    ) {
        Ok(c) => c,
        Err(e) => {
            r.check(false, format!("spawn modetest -v -s {arg}: {e}"));
            return;
        }
    };
    let stdin: Option<ChildStdin> = child.stdin.take();
    let reported = m.wait_mode(from, "640x480 32 bpp");
    std::thread::sleep(Duration::from_millis(1500));
    let first = m.screenshot_flips();
    std::thread::sleep(Duration::from_millis(1500));
    let second = m.screenshot_flips();
    let summary = match (&first, &second) {
        (Ok((a, fa)), Ok((b, fb))) => {
            let sizes = [(a.width, a.height), (b.width, b.height)];
            let ok = reported && sizes == [(640, 480), (640, 480)] && fb >= &(fa + 4);
            (
                ok,
                format!("sizes {sizes:?}, page flips counted by the model {fa} then {fb}"),
            )
        }
        (a, b) => (
            false,
            format!("{:?} {:?}", a.as_ref().err(), b.as_ref().err()),
        ),
    };
    r.check(
        summary.0,
        format!(
            "modetest -v -s {arg}: the model sees the driver flip pages (at least 4 flips in 1.5 s): {}",
            summary.1
        ),
    );
    drop(stdin.map(|mut s| s.write_all(b"\n")));
    let exited = wait_exit(&mut child, Duration::from_secs(15));
    r.check(
        exited == Some(true),
        format!("modetest -v -s {arg} exits successfully on a key press: {exited:?}"),
    );
}

/// The id of the first connector `modetest -c` lists.
fn connector_id() -> Option<String> {
    let (ok, out) = sysfs::run("modetest", &["-M", DRIVER, "-c"]);
    if !ok {
        println!("INFO: modetest -c: {out}");
        return None;
    }
    let mut in_table = false;
    for l in out.lines() {
        if l.starts_with("Connectors:") {
            in_table = true;
            continue;
        }
        if in_table {
            let first = l.split_whitespace().next().unwrap_or("");
            if !first.is_empty() && first.chars().all(|c| c.is_ascii_digit()) {
                return Some(first.to_string());
            }
        }
    }
    None
}

fn bound(dev: &Path) -> bool {
    sysfs::driver_of(dev).as_deref() == Some(DRIVER)
}

fn main() {
    let bin = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/bin/pciem-bochs".into());
    let mut r = Report::new("bochs");
    let Some(mut m) = Model::start(&mut r, &bin, SHOT, EVERY_MS) else {
        r.finish();
    };
    let dev: Option<PathBuf> = sysfs::wait_device(0x1234, 0x1111, Duration::from_secs(10));
    r.check(
        dev.is_some(),
        format!("one PCI device 1234:1111 appeared: {dev:?}"),
    );
    let Some(dev) = dev else {
        let _ = m.child.kill();
        r.finish();
    };
    let class = sysfs::read_hex(&dev.join("class"));
    r.check(
        class == Some(0x030000),
        format!("class is VGA 0x030000: {class:?}"),
    );
    let mark = m.mark();
    if !load_modules(&mut r) {
        let _ = m.child.kill();
        r.finish();
    }
    let up = wait_until(Duration::from_secs(20), || {
        bound(&dev) && Path::new(CARD).exists() && Path::new(FB).exists()
    });
    r.check(
        up,
        format!(
            "{DRIVER} bound ({:?}), {CARD} and {FB} appeared",
            sysfs::driver_of(&dev)
        ),
    );
    let (_, modes) = sysfs::run("cat", &[CONNECTOR_MODES]);
    let modes: Vec<&str> = modes.split_whitespace().collect();
    r.check(
        modes.first() == Some(&"1024x768")
            && ["1280x1024", "1600x1200", "800x600", "640x480"]
                .iter()
                .all(|x| modes.contains(x)),
        format!("the connector offers the EDID's modes, 1024x768 preferred: {modes:?}"),
    );
    let edid = std::fs::read("/sys/class/drm/card0-Virtual-1/edid");
    r.check(
        edid.as_deref().ok() == Some(&pciem_bochs::edid::block()[..]),
        format!(
            "the driver read the model's EDID exactly (connector's edid file: {:?} bytes)",
            edid.as_ref().map(Vec::len)
        ),
    );
    r.check(
        m.wait_mode(mark, "1024x768 32 bpp, pitch 4096 bytes, little-endian"),
        "the model reports the 1024x768 mode the driver set for fbdev",
    );
    if up {
        fb_pattern(&mut r, &mut m);
        console_text(&mut r, &mut m);
        match connector_id() {
            Some(c) => {
                let mut before_exit = 0;
                for mode in [(800, 600), (640, 480)] {
                    before_exit = modetest_mode(&mut r, &mut m, &c, mode);
                }
                r.check(
                    m.wait_mode(before_exit, "1024x768 32 bpp"),
                    "fbdev's 1024x768 mode is back once modetest exits",
                );
                modetest_flips(&mut r, &mut m, &c);
            }
            None => {
                r.check(false, "modetest -c lists a connector");
            }
        }
    }

    // `--every` kept writing the latest frame meanwhile.
    let periodic_lines = |m: &Model| {
        m.seen
            .iter()
            .filter(|l| l.starts_with("screenshot ") && l.contains("(--every,"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while periodic_lines(&m) < 2 && Instant::now() < deadline {
        m.pump(Duration::from_millis(100));
    }
    let periodic = periodic_lines(&m);
    let decodes = png_io::read(Path::new(SHOT)).map(|f| (f.width, f.height));
    r.check(
        periodic >= 2 && decodes.is_ok(),
        format!(
            "--every {EVERY_MS} wrote the screenshot {periodic} times besides the SIGUSR1 ones \
             ({} of those); the file decodes: {decodes:?}",
            m.shots
        ),
    );

    // Unbind and bind again.
    let name = sysfs::pci_name(&dev);
    let from = m.mark();
    let unbind = std::fs::write(format!("/sys/bus/pci/drivers/{DRIVER}/unbind"), &name);
    let gone = wait_until(Duration::from_secs(10), || {
        !bound(&dev) && !Path::new(CARD).exists() && !Path::new(FB).exists()
    });
    r.check(
        unbind.is_ok() && gone,
        format!("unbind {name}: {unbind:?}; {CARD} and {FB} gone: {gone}"),
    );
    r.check(
        m.wait_mode(from, "blanked"),
        "the model reports the picture blanked by the driver's shutdown",
    );
    r.check_klog_clean();
    let from = m.mark();
    let bind = std::fs::write(format!("/sys/bus/pci/drivers/{DRIVER}/bind"), &name);
    let back = wait_until(Duration::from_secs(20), || {
        bound(&dev) && Path::new(CARD).exists() && Path::new(FB).exists()
    });
    r.check(
        bind.is_ok() && back,
        format!("bind {name} again: {bind:?}; {CARD} and {FB} back: {back}"),
    );
    r.check(
        m.wait_mode(from, "1024x768 32 bpp"),
        "after the bind the model reports 1024x768 again",
    );

    // Kill the model with the driver bound: the device leaves, the
    // driver's remove runs, the model exits cleanly.
    let from = m.mark();
    r.check(signal(&m.child, libc::SIGTERM), "SIGTERM to the model");
    let exited = wait_exit(&mut m.child, Duration::from_secs(30));
    r.check(
        exited == Some(true),
        format!("the model exits with status 0: {exited:?}"),
    );
    let removed = m
        .wait_line(from, Duration::from_secs(5), |l| {
            l.contains("device removed")
        })
        .unwrap_or_default();
    r.check(
        removed.contains(" 0 lost, 0 handler errors"),
        format!("the model's summary: no events lost, no handler errors: {removed:?}"),
    );
    let left = wait_until(Duration::from_secs(10), || {
        !dev.exists() && !Path::new(CARD).exists() && !Path::new(FB).exists()
    });
    r.check(left, format!("{name}, {CARD} and {FB} are gone"));
    for mdl in MODULES.iter().rev() {
        let (ok, out) = sysfs::run("rmmod", &[mdl]);
        r.check(ok, format!("rmmod {mdl} {}", out.trim()));
    }
    r.check_klog_clean();
    r.finish();
}
