//! The committed C header never drifts from pciem-abi.

#[test]
fn committed_header_matches_a_fresh_generation() {
    let root = xtask::root();
    let fresh = xtask::header::generate(&root).expect("generation");
    let committed = std::fs::read_to_string(xtask::header::path(&root)).expect("committed header");
    if let Some(diff) = xtask::header::staleness(&committed, &fresh) {
        panic!("kernel/include/uapi/pciem.h is stale: run `cargo xtask gen-header`\n{diff}");
    }
}

#[test]
fn generation_is_deterministic() {
    let root = xtask::root();
    let first = xtask::header::generate(&root).unwrap();
    let second = xtask::header::generate(&root).unwrap();
    assert_eq!(first, second);
}

#[test]
fn header_has_banner_guard_and_includes() {
    let text = xtask::header::generate(&xtask::root()).unwrap();
    assert!(text
        .starts_with("/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */\n"));
    assert!(text.contains("do not edit") && text.contains("cargo xtask gen-header"));
    assert!(text.contains("#ifndef PCIEM_UAPI_PCIEM_H\n#define PCIEM_UAPI_PCIEM_H\n"));
    assert!(text.trim_end().ends_with("#endif /* PCIEM_UAPI_PCIEM_H */"));
    for inc in ["<linux/types.h>", "<assert.h>", "<linux/ioctl.h>"] {
        assert!(text.contains(&format!("#include {inc}")), "{inc}");
    }
}

#[test]
fn header_carries_every_struct_field_ioctl_and_assertion() {
    let text = xtask::header::generate(&xtask::root()).unwrap();
    for l in pciem_abi::layout::PCIEM_LAYOUTS {
        assert!(
            text.contains(&format!("struct {} {{", l.name)),
            "{}",
            l.name
        );
        assert!(
            text.contains(&format!("PCIEM_ASSERT_SIZE({}, {});", l.name, l.size)),
            "size assertion of {}",
            l.name
        );
        for f in l.fields {
            assert!(
                text.contains(&format!(
                    "PCIEM_ASSERT_OFFSET({}, {}, {});",
                    l.name,
                    f.c_name(),
                    f.offset
                )),
                "offset assertion of {}.{}",
                l.name,
                f.name
            );
        }
    }
    for def in pciem_abi::PCIEM_IOCTLS {
        let line = match def.arg {
            Some(arg) => format!(
                "#define {} {}(PCIEM_IOCTL_MAGIC, 0x{:02X}, struct {arg})\n",
                def.name,
                def.dir.c_macro(),
                def.nr
            ),
            None => format!(
                "#define {} _IO(PCIEM_IOCTL_MAGIC, 0x{:02X})\n",
                def.name, def.nr
            ),
        };
        assert!(text.contains(&line), "{line}");
    }
    assert!(text.contains("\t__u32 type;\n"), "r#type becomes `type`");
    assert!(!text.contains("r#"), "no raw identifier reaches C");
    assert!(!text.contains("[`"), "no rustdoc link reaches C");
}

#[test]
fn header_carries_the_constants_c_programs_use() {
    let text = xtask::header::generate(&xtask::root()).unwrap();
    let expect = [
        ("PCIEM_RING_SIZE", pciem_abi::PCIEM_RING_SIZE as u64),
        (
            "PCIEM_EVENT_MMIO_WRITE",
            pciem_abi::PCIEM_EVENT_MMIO_WRITE.into(),
        ),
        (
            "PCIEM_EVENT_MMIO_READ",
            pciem_abi::PCIEM_EVENT_MMIO_READ.into(),
        ),
        ("PCIEM_EVENT_RESET", pciem_abi::PCIEM_EVENT_RESET.into()),
        ("PCIEM_CAP_MSI", pciem_abi::PCIEM_CAP_MSI.into()),
        ("PCIEM_CAP_AER", pciem_abi::PCIEM_CAP_AER.into()),
        (
            "PCIEM_WP_FLAG_BAR_KPROBES",
            pciem_abi::PCIEM_WP_FLAG_BAR_KPROBES.into(),
        ),
        ("PCIEM_IRQ_MSIX", pciem_abi::PCIEM_IRQ_MSIX.into()),
        ("PCIEM_ATOMIC_CAS", pciem_abi::PCIEM_ATOMIC_CAS.into()),
        ("PCIEM_IOCTL_MAGIC", pciem_abi::PCIEM_IOCTL_MAGIC.into()),
    ];
    for (name, value) in expect {
        assert!(
            text.contains(&format!("#define {name} {value}\n")),
            "{name} = {value}"
        );
    }
}

#[test]
fn doc_comments_are_carried_over() {
    let text = xtask::header::generate(&xtask::root()).unwrap();
    assert!(text.contains("Number of slots in the event ring (a power of two)."));
    assert!(text.contains("Producer index: next slot to fill, in"));
    assert!(text.contains("Ring publication stamp"));
}

/// cbindgen is told which structs to emit (those in `PCIEM_LAYOUTS`): a
/// new ABI struct missing from that table would silently be missing from
/// the header and from the layout checks.
#[test]
fn every_abi_struct_is_in_the_layout_table() {
    let src = xtask::root().join("crates/pciem-abi/src");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub struct pciem_") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push(format!("pciem_{name}"));
            }
        }
    }
    assert!(found.len() >= 20, "only {found:?}");
    for name in &found {
        assert!(
            pciem_abi::layout::PCIEM_LAYOUTS
                .iter()
                .any(|l| l.name == name),
            "{name} is not in PCIEM_LAYOUTS"
        );
    }
}

/// cbindgen cannot evaluate the ioctl constants (const fn calls) and must
/// skip them, leaving exactly the trailer's definition.
#[test]
fn every_ioctl_is_defined_exactly_once() {
    let text = xtask::header::generate(&xtask::root()).unwrap();
    for def in pciem_abi::PCIEM_IOCTLS {
        let n = text.matches(&format!("#define {} ", def.name)).count();
        assert_eq!(n, 1, "{}", def.name);
    }
}
