//! `cargo xtask gen-header`: the C header `kernel/include/uapi/pciem.h`,
//! generated from `pciem-abi` with cbindgen plus what cbindgen cannot
//! evaluate (ioctl numbers, layout assertions), taken from the ABI crate's
//! own tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pciem_abi::layout::PCIEM_LAYOUTS;
use pciem_abi::PCIEM_IOCTLS;

use crate::run::{fail, Result};

/// Path of the generated header, relative to the workspace root.
pub const HEADER: &str = "kernel/include/uapi/pciem.h";

const BANNER: &str = "\
/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * pciem.h - the PCIem kernel <-> userspace ABI.
 *
 * GENERATED from crates/pciem-abi by `cargo xtask gen-header`; do not edit.
 * A test fails when this file differs from a fresh generation.
 */";

const INCLUDES: &str = "\
#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif
#include <linux/ioctl.h>

#if defined(__cplusplus)
#define PCIEM_STATIC_ASSERT(expr, msg) static_assert(expr, msg)
#else
#define PCIEM_STATIC_ASSERT(expr, msg) _Static_assert(expr, msg)
#endif";

/// Generate the header text.
pub fn generate(root: &Path) -> Result<String> {
    let step = "gen-header";
    let mut config = cbindgen::Config {
        language: cbindgen::Language::C,
        header: Some(BANNER.to_string()),
        include_guard: Some("PCIEM_UAPI_PCIEM_H".to_string()),
        no_includes: true,
        after_includes: Some(INCLUDES.to_string()),
        trailer: Some(trailer()),
        style: cbindgen::Style::Tag,
        documentation: true,
        documentation_style: cbindgen::DocumentationStyle::Doxy,
        usize_is_size_t: true,
        cpp_compat: true,
        ..Default::default()
    };
    config.export.exclude = [
        "IoctlDef",
        "IoctlDir",
        "StructLayout",
        "FieldLayout",
        "EventKind",
        "PCIEM_IOCTLS",
        "PCIEM_LAYOUTS",
        "BarFlags",
        "WatchFlags",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // cbindgen emits only types reachable from exported functions unless
    // told otherwise; the ABI has no functions, so name every struct.
    config.export.include = PCIEM_LAYOUTS.iter().map(|l| l.name.to_string()).collect();
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("crates/pciem-abi/src/lib.rs"))
        .generate()
        .map_err(|e| fail(step, format!("cbindgen: {e}")))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).map_err(|e| fail(step, format!("cbindgen wrote non-UTF-8: {e}")))
}

/// The ioctl numbers and the layout assertions.
fn trailer() -> String {
    let mut t = String::from("/* ioctl numbers (pciem_abi::PCIEM_IOCTLS). */\n");
    for def in PCIEM_IOCTLS {
        let _ = match def.arg {
            Some(arg) => writeln!(
                t,
                "#define {} {}(PCIEM_IOCTL_MAGIC, 0x{:02X}, struct {})",
                def.name,
                def.dir.c_macro(),
                def.nr,
                arg
            ),
            None => writeln!(
                t,
                "#define {} _IO(PCIEM_IOCTL_MAGIC, 0x{:02X})",
                def.name, def.nr
            ),
        };
    }
    t.push_str("\n/* Layout pinned by pciem_abi::layout (sizes and field offsets). */\n");
    for l in PCIEM_LAYOUTS {
        let _ = writeln!(
            t,
            "PCIEM_STATIC_ASSERT(sizeof(struct {0}) == {1}, \"sizeof(struct {0})\");",
            l.name, l.size
        );
        for f in l.fields {
            let _ = writeln!(
                t,
                "PCIEM_STATIC_ASSERT(__builtin_offsetof(struct {0}, {1}) == {2}, \"offsetof({0}, {1})\");",
                l.name,
                f.c_name(),
                f.offset
            );
        }
    }
    t
}

/// The header's path under `root`.
pub fn path(root: &Path) -> PathBuf {
    root.join(HEADER)
}

/// Write the header, or with `check` compare it with the committed one.
pub fn gen_header(root: &Path, check: bool) -> Result {
    let fresh = generate(root)?;
    let file = path(root);
    if check {
        let committed = std::fs::read_to_string(&file).map_err(|e| {
            fail(
                "gen-header --check",
                format!("cannot read {}: {e}", file.display()),
            )
        })?;
        if committed != fresh {
            let line = committed
                .lines()
                .zip(fresh.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
            return Err(fail(
                "gen-header --check",
                format!(
                    "{} is stale (first difference at line {}); run `cargo xtask gen-header`",
                    HEADER,
                    line + 1
                ),
            ));
        }
        eprintln!("{HEADER} is up to date");
        return Ok(());
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail("gen-header", e.to_string()))?;
    }
    std::fs::write(&file, fresh)
        .map_err(|e| fail("gen-header", format!("{}: {e}", file.display())))?;
    eprintln!("wrote {HEADER}");
    Ok(())
}
