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

/// The include guard. Written by us rather than by cbindgen, whose guard
/// would close before the trailer (the ioctl numbers and assertions).
const GUARD: &str = "PCIEM_UAPI_PCIEM_H";

const BANNER: &str = "\
/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * pciem.h - the PCIem kernel <-> userspace ABI.
 *
 * GENERATED from crates/pciem-abi by `cargo xtask gen-header`; do not edit.
 * A test fails when this file differs from a fresh generation.
 */";

/// The kernel's fixed-width types (`__u32`, from `<linux/types.h>`, which
/// userspace has too), as uapi headers use; `static_assert` from the
/// kernel's `<linux/build_bug.h>`, C11's `<assert.h>`, or C++ itself.
const INCLUDES: &str = "\
#include <linux/types.h>
#include <linux/ioctl.h>

#if defined(__KERNEL__)
#include <linux/build_bug.h>
#elif !defined(__cplusplus)
#include <assert.h>
#endif

#define PCIEM_ASSERT_SIZE(s, n) \\
\tstatic_assert(sizeof(struct s) == (n), \"sizeof(struct \" #s \")\")
#define PCIEM_ASSERT_OFFSET(s, f, off) \\
\tstatic_assert(__builtin_offsetof(struct s, f) == (off), \"offsetof(\" #s \", \" #f \")\")";

/// Generate the header text.
pub fn generate(root: &Path) -> Result<String> {
    let step = "gen-header";
    let mut config = cbindgen::Config {
        language: cbindgen::Language::C,
        header: Some(format!("{BANNER}\n\n#ifndef {GUARD}\n#define {GUARD}")),
        include_guard: None,
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
        "TrapFlags",
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
    let text =
        String::from_utf8(out).map_err(|e| fail(step, format!("cbindgen wrote non-UTF-8: {e}")))?;
    Ok(kernel_style(&tidy_docs(&text)))
}

/// The C fixed-width type names cbindgen writes and the kernel's own.
const KERNEL_TYPES: [(&str, &str); 8] = [
    ("uint8_t", "__u8"),
    ("uint16_t", "__u16"),
    ("uint32_t", "__u32"),
    ("uint64_t", "__u64"),
    ("int8_t", "__s8"),
    ("int16_t", "__s16"),
    ("int32_t", "__s32"),
    ("int64_t", "__s64"),
];

/// Kernel coding style for cbindgen's output: `__u32`-style types outside
/// comments, and tabs, not its two-space steps, for indentation (what
/// checkpatch.pl asks of a uapi header).
pub fn kernel_style(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_start_matches(' ');
        let spaces = line.len() - body.len();
        out.extend(std::iter::repeat_n('\t', spaces / 2));
        out.extend(std::iter::repeat_n(' ', spaces % 2));
        let trimmed = body.trim_start();
        if trimmed.starts_with('*') || trimmed.starts_with("/*") {
            out.push_str(body);
            continue;
        }
        out.push_str(&replace_words(body, &KERNEL_TYPES));
    }
    out
}

/// `text` with every whole-word occurrence of each `from` replaced by `to`.
fn replace_words(text: &str, pairs: &[(&str, &str)]) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        let at_boundary = !out.chars().next_back().is_some_and(is_word);
        if at_boundary {
            for (from, to) in pairs {
                if let Some(after) = rest.strip_prefix(from) {
                    if !after.chars().next().is_some_and(is_word) {
                        out.push_str(to);
                        rest = after;
                        continue 'outer;
                    }
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Rustdoc links mean nothing in C: in comment lines, "\[`a::b`\]" becomes
/// "`a.b`" (a field is named `struct.field` in C prose).
pub fn tidy_docs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if !line.trim_start().starts_with('*') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("[`") {
            let Some(len) = rest[start + 2..].find("`]") else {
                break;
            };
            let target = &rest[start + 2..start + 2 + len];
            out.push_str(&rest[..start]);
            out.push('`');
            out.push_str(&target.replace("::", "."));
            out.push('`');
            rest = &rest[start + 2 + len + 2..];
        }
        out.push_str(rest);
    }
    out
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
        let _ = writeln!(t, "PCIEM_ASSERT_SIZE({0}, {1});", l.name, l.size);
        for f in l.fields {
            let _ = writeln!(
                t,
                "PCIEM_ASSERT_OFFSET({0}, {1}, {2});",
                l.name,
                f.c_name(),
                f.offset
            );
        }
    }
    let _ = write!(t, "\n#endif /* {GUARD} */");
    t
}

/// The header's path under `root`.
pub fn path(root: &Path) -> PathBuf {
    root.join(HEADER)
}

/// How the committed header differs from a fresh generation, as a unified
/// diff, or `None` when it is up to date.
pub fn staleness(committed: &str, fresh: &str) -> Option<String> {
    crate::diff::unified(
        committed,
        fresh,
        &format!("{HEADER} (committed)"),
        &format!("{HEADER} (fresh generation)"),
        80,
    )
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
        if let Some(diff) = staleness(&committed, &fresh) {
            eprint!("{diff}");
            return Err(fail(
                "gen-header --check",
                format!("{HEADER} is stale (diff above); run `cargo xtask gen-header`"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_links_become_plain_c_names() {
        let text = "/**\n * See [`pciem_bar_config::flags`] and [`PCIEM_RING_SIZE`].\n */\n\
                    #define X [`not a comment`]\n";
        assert_eq!(
            tidy_docs(text),
            "/**\n * See `pciem_bar_config.flags` and `PCIEM_RING_SIZE`.\n */\n\
             #define X [`not a comment`]\n"
        );
    }

    #[test]
    fn kernel_style_uses_kernel_types_and_tabs_outside_comments() {
        let text = "struct a {\n  /**\n   * A uint32_t, said in prose.\n   */\n  uint32_t x;\n  \
                    int64_t y[2];\n  my_uint8_t z;\n};\n";
        assert_eq!(
            kernel_style(text),
            "struct a {\n\t/**\n\t * A uint32_t, said in prose.\n\t */\n\t__u32 x;\n\t\
             __s64 y[2];\n\tmy_uint8_t z;\n};\n"
        );
    }

    #[test]
    fn an_unclosed_link_is_left_alone() {
        let text = "   * odd [`text\n";
        assert_eq!(tidy_docs(text), text);
    }

    #[test]
    fn staleness_is_a_diff_naming_the_header() {
        assert_eq!(staleness("a\n", "a\n"), None);
        let d = staleness("#define A 1\n", "#define A 2\n").unwrap();
        assert!(d.contains(&format!("--- {HEADER} (committed)")), "{d}");
        assert!(d.contains("-#define A 1\n+#define A 2\n"), "{d}");
    }
}
