//! The committed corpus holds every seed the seed generators produce, and
//! every seed passes its target (so a seed that finds a bug is a failing
//! test, not just a fuzzer crash).
//!
//! Regenerate the seed files with
//! `PCIEM_WRITE_SEEDS=1 cargo test --manifest-path fuzz/Cargo.toml --test seeds`.

use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

#[test]
fn seeds_are_committed_and_pass() {
    let write = std::env::var_os("PCIEM_WRITE_SEEDS").is_some();
    for (target, seeds) in pciem_fuzz::all_seeds() {
        let dir = corpus(target);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for (name, bytes) in seeds {
            let path = dir.join(format!("seed-{name}"));
            if write {
                std::fs::write(&path, &bytes).unwrap();
            }
            let on_disk = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (regenerate the seeds)", path.display()));
            assert_eq!(on_disk, bytes, "{} is stale", path.display());
            match target {
                "config_space" => pciem_fuzz::config::run(&bytes),
                "ring" => pciem_fuzz::ring::run(&bytes),
                "mmio_decode" => pciem_fuzz::mmio::run(&bytes),
                _ => pciem_fuzz::proto::run(&bytes),
            }
        }
    }
}

/// Every file of the committed corpus (seeds and what fuzzing found) still
/// passes its target: the regression suite of past runs.
#[test]
fn whole_corpus_passes() {
    for (target, _) in pciem_fuzz::all_seeds() {
        let Ok(entries) = std::fs::read_dir(corpus(target)) else {
            continue;
        };
        for entry in entries {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            match target {
                "config_space" => pciem_fuzz::config::run(&bytes),
                "ring" => pciem_fuzz::ring::run(&bytes),
                "mmio_decode" => pciem_fuzz::mmio::run(&bytes),
                _ => pciem_fuzz::proto::run(&bytes),
            }
        }
    }
}

/// The seeds mean what their names say: the real descriptions build with
/// every item accepted, the bad one has its items refused.
#[test]
fn config_seeds_describe_what_they_claim() {
    let seeds = pciem_fuzz::config::seeds();
    let get = |n: &str| &seeds.iter().find(|s| s.0 == n).unwrap().1;
    assert_eq!(
        pciem_fuzz::config::seed_outcome(get("protopciem")),
        Some((3, true))
    );
    // 12 items accepted; the unknown capability type 10 is refused.
    assert_eq!(
        pciem_fuzz::config::seed_outcome(get("all-capabilities")),
        Some((12, true))
    );
    // Only the two misplaced capabilities pass the item checks, and the
    // layout then refuses them.
    assert_eq!(
        pciem_fuzz::config::seed_outcome(get("rejected")),
        Some((2, false))
    );
}

/// The ProtoPCIem seeds run commands, successful and failing ones.
#[test]
fn protopciem_seeds_run_commands() {
    for (name, bytes) in pciem_fuzz::proto::seeds() {
        let stats = pciem_fuzz::proto::run_with_stats(&bytes);
        eprintln!("{name}: {stats:?}");
        // The final usability check alone runs two commands.
        assert!(stats.commands > 2, "{name}: {stats:?}");
        if name != "demo-scene" && name != "every-record" {
            assert!(stats.errors > 0, "{name}: {stats:?}");
        }
    }
}
