//! The publishable library crates: `cargo package` of each (verified,
//! never uploaded) and their build with the declared minimum Rust version.

use std::path::Path;
use std::process::Command;

use crate::run::{fail, run, Result};

/// The crates meant for crates.io; every other workspace member has
/// `publish = false`.
pub const LIBRARY_CRATES: &[&str] = &[
    "pciem-abi",
    "pciem-core",
    "pciem-backend-mock",
    "pciem-backend-chardev",
];

/// A `cargo` through the rustup proxy, so that `+TOOLCHAIN` works, with
/// the toolchain choice of the enclosing `cargo xtask` removed.
fn rustup_cargo(root: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(root)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC");
    c
}

/// `-p NAME` for each library crate.
fn package_args() -> Vec<&'static str> {
    LIBRARY_CRATES.iter().flat_map(|c| ["-p", *c]).collect()
}

/// `cargo package` of the library crates, together, so that each is
/// verified against the others' packaged sources (cargo's temporary local
/// registry): the tarball builds as crates.io would build it. Nothing is
/// uploaded. `--allow-dirty`: the check is about what the manifests say,
/// and a developer's uncommitted work must not make it fail.
pub fn package(root: &Path) -> Result {
    let target = root.join("target/package-check");
    // Every crate keeps version 0.1.0 while its code changes: a tarball or
    // unpacked copy from an earlier run would be taken for the new one
    // (cargo's temporary registry is keyed by name and version), so each
    // run starts without them.
    let _ = std::fs::remove_dir_all(target.join("package"));
    forget_unpacked_copies();
    // Cargo also takes a registry crate's compiled artifacts as up to date
    // whatever its sources say (registry sources never change, it assumes).
    run(
        "package: clean",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .arg("clean")
            .args(package_args())
            .env("CARGO_TARGET_DIR", &target),
    )?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .arg("package")
        .args(package_args())
        .args(["--allow-dirty", "--locked"])
        .env("CARGO_TARGET_DIR", &target);
    run("package", &mut cmd)
}

/// Deletes the copies of the library crates that cargo unpacked from
/// earlier runs' temporary registries into `$CARGO_HOME/registry/src/-*`
/// (the directories of local registries; crates.io's are named after its
/// host). Cargo reuses an unpacked `NAME-VERSION` as it is, so after a
/// change to pciem-abi the packaged pciem-core would otherwise be checked
/// against the old pciem-abi.
fn forget_unpacked_copies() {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry/src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for krate in crates.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if LIBRARY_CRATES
                .iter()
                .any(|c| name.strip_prefix(c).is_some_and(|v| v.starts_with('-')))
            {
                let _ = std::fs::remove_dir_all(krate.path());
            }
        }
    }
}

/// The `rust-version` of `[workspace.package]` in the root manifest.
pub fn declared_msrv(root: &Path) -> Result<String> {
    let step = "msrv";
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| fail(step, format!("Cargo.toml: {e}")))?;
    msrv_of(&manifest).ok_or_else(|| fail(step, "no rust-version in [workspace.package]"))
}

/// The `rust-version` value in the `[workspace.package]` table of a
/// manifest's text.
fn msrv_of(manifest: &str) -> Option<String> {
    let mut in_table = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[workspace.package]";
        } else if in_table {
            if let Some(rest) = line.strip_prefix("rust-version") {
                let value = rest.trim_start().strip_prefix('=')?.trim();
                return Some(value.trim_matches('"').to_string());
            }
        }
    }
    None
}

/// Whether rustup has a toolchain for `version` (listed as
/// `VERSION-x86_64-unknown-linux-gnu`, possibly with a suffix).
pub fn have_toolchain(version: &str) -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with(&format!("{version}-")) || l == version)
        })
        .unwrap_or(false)
}

/// Install the declared MSRV's toolchain (minimal profile) if missing.
pub fn install_msrv_toolchain(root: &Path) -> Result {
    let version = declared_msrv(root)?;
    if have_toolchain(&version) {
        return Ok(());
    }
    eprintln!("setup: installing Rust {version} (the declared rust-version)");
    run(
        "setup: msrv toolchain",
        Command::new("rustup").args(["toolchain", "install", &version, "--profile", "minimal"]),
    )
}

/// Build the library crates with the declared minimum Rust version and the
/// locked dependencies, in a target directory of their own. The default
/// features are built (std), and pciem-abi/pciem-core without them too.
pub fn msrv_build(root: &Path) -> Result {
    let version = declared_msrv(root)?;
    if !have_toolchain(&version) {
        return Err(fail(
            "msrv",
            format!("no Rust {version} toolchain: run `cargo xtask setup`"),
        ));
    }
    let toolchain = format!("+{version}");
    let target = root.join("target/msrv");
    run(
        "msrv",
        rustup_cargo(root)
            .args([toolchain.as_str(), "build", "--locked"])
            .args(package_args())
            .env("CARGO_TARGET_DIR", &target),
    )?;
    run(
        "msrv no_std",
        rustup_cargo(root)
            .args([
                toolchain.as_str(),
                "build",
                "--locked",
                "--no-default-features",
            ])
            .args(["-p", "pciem-abi", "-p", "pciem-core"])
            .env("CARGO_TARGET_DIR", &target),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_msrv_is_read_from_the_workspace_package_table_only() {
        let manifest = "[package]\nrust-version = \"1.10\"\n\n\
                        [workspace.package]\nedition = \"2021\"\nrust-version = \"1.88\"\n";
        assert_eq!(msrv_of(manifest).as_deref(), Some("1.88"));
        assert_eq!(msrv_of("[package]\nrust-version = \"1.10\"\n"), None);
    }

    #[test]
    fn the_workspace_declares_an_msrv() {
        let v = declared_msrv(&crate::root()).unwrap();
        assert!(v.starts_with("1."), "{v}");
    }

    /// Every workspace member that is not a library crate says
    /// `publish = false`, and every library crate has the metadata
    /// crates.io shows (licence, README, keywords, categories, docs).
    #[test]
    fn only_the_library_crates_are_publishable_and_they_are_described() {
        let root = crate::root();
        let members = [
            "crates/pciem-abi",
            "crates/pciem-core",
            "crates/pciem-backend-mock",
            "crates/pciem-backend-chardev",
        ];
        for dir in std::fs::read_dir(root.join("crates"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .chain(
                [
                    "benches",
                    "xtask",
                    "fuzz",
                    "kernel/rust",
                    "examples/outside-model",
                ]
                .map(|d| root.join(d)),
            )
        {
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            let rel = dir
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if members.contains(&rel.as_str()) {
                assert!(!manifest.contains("publish = false"), "{rel}");
                for key in ["readme", "documentation", "keywords", "categories"] {
                    assert!(
                        manifest.lines().any(|l| l.starts_with(key)),
                        "{rel} has no {key}"
                    );
                }
                for file in ["README.md", "LICENSE-MIT", "LICENSE-GPL-2.0"] {
                    assert!(dir.join(file).is_file(), "{rel} has no {file}");
                }
            } else {
                assert!(
                    manifest.contains("\npublish = false\n"),
                    "{rel} is publishable"
                );
            }
        }
        let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(!workspace.contains("example.invalid"));
    }
}
