//! `cargo xtask <task>`: the project's tasks. Run without arguments for the
//! list.

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test               every check the project has (what CI runs): setup, fmt, clippy, doc,
                     cargo test, bench smoke, no_std build, package, msrv build, loom, kshim tests, header --check,
                     checkpatch, dkms build, fuzz --smoke,
                     vm-test; installs what it needs
  setup              install the tools the tests need (apt packages, the rust-version
                     toolchain), if missing
  gen-header         regenerate kernel/include/uapi/pciem.h from pciem-abi
  gen-header --check fail if the committed header differs from a fresh generation
  c-tests            compile the layout test (C, C++, kernel module) and the C examples
                     against the header (also part of `cargo test -p xtask`)
  checkpatch         checkpatch.pl --strict over kernel/**/*.{c,h} (from setup's linux-source)
  dkms-build         `dkms build` of kernel/dkms.conf in a private DKMS tree (no install)
  package            `cargo package` of the four library crates (verified, not uploaded)
  msrv               build the library crates with the declared rust-version
  kbuild             build the shared Rust object (checked) and the kernel modules (W=1, no warnings)
  vm-test            boot the modules in QEMU and run every scenario of crates/pciem-vmtest
  vm-test --only NAME[,NAME...]
                     the same boot, running only the scenario lines whose binary is vmtest-NAME
  bench-vm           boot the same guest and run the VM benchmark (vmtest-bench): events/s into
                     the ring, MSI/irqfd injection rates, DMA bandwidth, each beside a baseline;
                     and, in the nvme boot, fio on the Rust NVMe controller beside QEMU's
  bench-vm --nvme    only the NVMe comparison (one boot)
  bench-vm --from-log FILE
                     the bench-vm table and chart (target/bench-vm) from a kept guest log, no boot
  fuzz --smoke       every cargo-fuzz target of fuzz/ for a short fixed time (nightly)
  fuzz TARGET [--seconds N]
                     one fuzz target (config_space, ring, protopciem_cmdbuf, mmio_decode, nvme_commands)
                     for N seconds
  fuzz TARGET --merge
                     minimise what fuzz runs found into the committed fuzz/corpus/TARGET";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = xtask::root();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["test"] => xtask::test::run_all(&root),
        ["setup"] => xtask::setup::setup(),
        ["gen-header"] => xtask::header::gen_header(&root, false),
        ["gen-header", "--check"] => xtask::header::gen_header(&root, true),
        ["c-tests"] => xtask::ctest::run(&root),
        ["kbuild"] => xtask::kbuild::kbuild(&root),
        ["checkpatch"] => xtask::kernelcheck::checkpatch(&root),
        ["dkms-build"] => xtask::kernelcheck::dkms_build(&root),
        ["package"] => xtask::publish::package(&root),
        ["msrv"] => xtask::publish::msrv_build(&root),
        ["vm-test"] => xtask::vm::vm_test(&root),
        ["vm-test", "--only", names] => xtask::vm::vm_test_only(&root, names),
        ["bench-vm"] => xtask::benchvm::bench_vm(&root),
        ["bench-vm", "--nvme"] => xtask::benchvm::bench_vm_nvme(&root),
        ["bench-vm", "--from-log", log] => {
            xtask::benchvm::bench_vm_from_log(&root, std::path::Path::new(log))
        }
        ["fuzz", rest @ ..] => match xtask::fuzz::parse_args(rest) {
            Ok(request) => xtask::fuzz::fuzz(&root, request),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        [] | ["help"] | ["--help"] | ["-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("unknown task {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
