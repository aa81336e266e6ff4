//! Scenario programs for the PCIem kernel module, run inside the test VM.
//!
//! Each binary in `src/bin` is one scenario: it talks to the real
//! `/dev/pciem` with raw ioctls on the `pciem-abi` types, drives the test
//! driver (`pciem_testdrv.ko`) through its sysfs attributes, prints one
//! `PASS:`/`FAIL:` line per check and a final `SCENARIO <name>: PASS|FAIL`
//! line, and exits non-zero on any failure.
//!
//! The modules are expected to be loaded already (`pciem.ko` with a
//! `phys_region=` pool and a `p2p_regions=` whitelist, then
//! `pciem_testdrv.ko`, `pciem_dmadrv.ko` and `pciem_trapdrv.ko`); a scenario that finds them
//! missing fails, it does not skip.
//!
//! # Running them (what the VM harness does)
//!
//! Guest kernel command line `memmap=2M$0x3f000000 memmap=1M$0x3ee00000`
//! (any pool carve of at least 512 KiB works), then `insmod pciem.ko
//! phys_region=0x3f000000:2M
//! p2p_regions=0x3ee00000:1M,0x3f000000:2M`, `insmod
//! pciem_testdrv.ko`, `insmod pciem_dmadrv.ko`, `insmod pciem_trapdrv.ko`. `lspci` and `setpci` (pciutils) must be in the guest's
//! PATH for `vmtest-enumerate` and the interrupt/config scenarios. Build statically:
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p
//! pciem-vmtest --target x86_64-unknown-linux-gnu`.
//!
//! | binary | scenario | arguments |
//! |---|---|---|
//! | `vmtest-enumerate` | (a) sysfs, lspci, BAR mmap bounds, open permissions | — |
//! | `vmtest-irq` | (b) watched register → MMIO_WRITE event → MSI; ring overflow; rebind | — |
//! | `vmtest-two-devices` | (c) two devices, removed independently | — |
//! | `vmtest-multifunction` | functions 0, 1, 3, 5 of one slot: enumerated, bound, unbound and rebound one at a time, events, MSIs and INTx per function | — |
//! | `vmtest-counter` | (e) the C counter device driven by the test driver | path of `counter_device` (default `/bin/counter_device`) |
//! | `vmtest-badinput` | the bad-input table: one row per (ioctl or mmap, invalid argument, expected errno), each on a fresh device | — |
//! | `vmtest-random` | seeded random ioctl/mmap/close/fork sequence; afterwards everything released and a device still works | `SECONDS [SEED [trace]]` |
//! | `vmtest-dma` | DMA read/write, atomics, PRP lists and P2P against `pciem_dmadrv.ko`'s buffers | the two `p2p_regions=` entries pciem.ko was loaded with: a carve-out `ADDR:SIZE`, then the BAR pool |
//! | `vmtest-msi` | multi-message MSI per-vector counts, per-vector mask → Pending → unmask | — |
//! | `vmtest-msix` | MSI-X per-entry counts, entry mask → PBA → unmask, Function Mask (setpci) | — |
//! | `vmtest-intx` | INTx level semantics: assert/deassert, Interrupt Status, Interrupt Disable | — |
//! | `vmtest-irqfd` | SET_IRQFD for MSI, MSI-X and INTx (LEVEL/DEASSERT), REMOVE, eventfd close, bad fds | — |
//! | `vmtest-config-events` | CONFIG_WRITE and RESET events from setpci and from driver actions (FLR, D3hot→D0) | — |
//! | `vmtest-chardev` | a Rust model on `pciem-backend-chardev` (io-uring and poll loops), ring overflow reported, SIGTERM → device removed | — |
//! | `vmtest-protopciem` | ProtoPCIem end to end: the device process + `protopciem.ko` through `/dev/protopciem` (compute, round-trip times, PROCESS_BUFFER, frames and command buffers compared with the mock backend byte for byte, bad input, stats, stop/kill mid-command, unload) | `PATH/protopciem.ko DEVICE-CMD [ARGS...]` (e.g. `/bin/protopciem --backend chardev`) |
//! | `vmtest-watch-late` | a driver store between its ioremap and the arming of the watch is an event or a kernel-log line, never silently lost; with BAR0 trapped (START after REGISTER) it is exactly one MMIO_WRITE event and no warning | — |
//! | `vmtest-trap` | trap mode against `pciem_trapdrv.ko` (1f0c:7e56): not bound before START, the probe-time read answered by the model, every read/write accessor and width (events with exact offset/size/value, backing, model answers via the response page and COMPLETE_READ, READ_NOTIFY), read-to-clear and W1C registers, memcpy_toio/fromio and memset_io of odd lengths and alignments, completion timeout (SET_READ_TIMEOUT), `pciem_trap` counters, an undecodable `lock xadd` | — |
//! | `vmtest-trap-smp` | trap mode on two CPUs: pinned writers, per-CPU sequence stores and read-backs; none lost, per-CPU order kept, ring overflow 0, counters exact | `[ACCESSES]` (default 1000000) |
//! | `vmtest-trap-msix` | MSI-X table and PBA in a trapped BAR0 (1f0c:7e53, `pciem_testdrv.ko`): the core's table stores are events, mask → inject (held, PBA) → unmask delivers once, the unmask-to-handler delay (`unmask_delay_ns`) well under the 5 ms poll | — |
//! | `vmtest-trap-faults` | trap mode under faults, the model a child process: SIGSTOP (all-ones after the default 10 ms and a set 20 ms read timeout, `read_timeouts` exact, logged once, stale answers ignored after SIGCONT), unbind/bind ×70 and rmmod/insmod of `pciem_trapdrv` (mappings trapped again, counters exact), kill -9 during a waited read (all-ones at once, device removed) | — (re-executes itself as `vmtest-trap-faults model`) |
//! | `vmtest-kill` | (d) kill -9 of the device process, then `rmmod` of both modules | — (unloads the modules: run it last) |
//! | `vmtest-stress` | create/register/close ×N, kill -9 of a busy bound device ×K, module reload ×R; iomem, domains, counters and memory back to the start | `PCIEM_KO TESTDRV_KO ADDR:SIZE [N K R]` (loads the modules itself, unloads them at the end) |
//! | `vmtest-params` | `phys_region=` validation at load | `PATH/pciem.ko ADDR:SIZE` (needs pciem unloaded; leaves it loaded) |
//! | `vmtest-p2p-params` | `p2p_regions=` validation at load | `PATH/pciem.ko POOL ADDR:SIZE` (unloads pciem first; leaves it loaded) |
//! | `vmtest-bochs` | Linux's `bochs` DRM driver on the `pciem-bochs` model, in the display boot (32 MiB pool, `-vga none`, DRM modules in `/drm`, `modetest`): fbdev pattern, console text, modetest modes, unbind/bind/kill (docs/bochs.md) | path of `pciem-bochs` (default `/bin/pciem-bochs`) |
//! | `vmtest-nvme` | Linux's own nvme driver (the kernel package's `nvme`/`nvme-core`) against an NVMe controller: `qemu SERIAL BYTES` for QEMU's built-in one (the control), `pciem MODEL-BIN` for the Rust `pciem-nvme`: identity in sysfs and `nvme id-ctrl`, mkfs.ext4, 64 MiB of files of known content verified after drop_caches, fstrim (holes punched in the backing file), model stopped and restarted on the same file and every checksum compared again, fio `--verify=crc32c` at QD1/QD16, a clean log | `qemu SERIAL BYTES` or `pciem MODEL-BIN` (`nvme` boot) |
//! | `vmtest-nvme-faults` | the Rust NVMe controller's process killed (-9) under a mounted ext4 with fio in flight (errors, umount, rmmod/insmod nvme) and stopped (SIGSTOP: the driver's timeout, failed reset, dead controller) | `MODEL-BIN QEMU-SERIAL` (`nvme` boot) |
//! | `vmtest-nvme-bench` | not a scenario: `cargo xtask bench-vm`'s NVMe part, fio on the Rust controller beside QEMU's and one I/O traced | `MODEL-BIN QEMU-SERIAL` (`nvme` boot) |
//! | `vmtest-bench` | not a scenario: the VM benchmark `cargo xtask bench-vm` runs it alone (events/s, interrupt rates, DMA bandwidth, ProtoPCIem round trips, each beside a baseline) | `[PATH/protopciem.ko DEVICE-CMD [ARGS...]]` |
//!
//! Every binary prints `SCENARIO <name>: BEGIN`, one `PASS: …`/`FAIL: …`
//! line per check, and `SCENARIO <name>: PASS|FAIL (n passed, m failed)`;
//! the exit status is 0 exactly when the verdict is PASS.
//! `INFO: …` lines are commentary; `MEASURE: …` lines are figures
//! (e.g. round-trip times) that `cargo xtask vm-test` repeats under its
//! verdict table.

pub mod bringup;
pub mod device;
pub mod display;
pub mod dmadrv;
pub mod klog;
pub mod model_process;
pub mod nvme;
pub mod protocard;
pub mod report;
pub mod ring;
pub mod sysfs;
pub mod trapdrv;

pub use device::{Dev, Instance, MappedBar, Responses};
pub use report::Report;
pub use ring::Ring;

/// Vendor ID of the test devices (the ProtoPCIem vendor).
pub const TEST_VENDOR: u16 = 0x1f0c;
/// Device ID the test driver maps with `pci_iomap`.
pub const TEST_DEVICE_IOMAP: u16 = 0x7e50;
/// Device ID the test driver maps with plain `ioremap`.
pub const TEST_DEVICE_IOREMAP: u16 = 0x7e51;
/// Device ID the DMA test driver (`pciem_dmadrv.ko`) binds to.
pub const TEST_DEVICE_DMA: u16 = 0x7e52;
/// Name of the DMA test driver in `/sys/bus/pci/drivers`.
pub const DMADRV: &str = "pciem_dmadrv";
/// Device ID no driver binds to.
pub const TEST_DEVICE_UNBOUND: u16 = 0x7e5f;
/// Name of the test driver in `/sys/bus/pci/drivers`.
pub const TESTDRV: &str = "pciem_testdrv";
/// Device ID the trap-mode test driver (`pciem_trapdrv.ko`) binds to.
pub const TEST_DEVICE_TRAP: u16 = 0x7e56;
/// Device ID `pciem_dmabug.ko` binds: a driver with deliberate DMA bugs.
pub const TEST_DEVICE_DMABUG: u16 = 0x7e57;
/// Name of the trap-mode test driver in `/sys/bus/pci/drivers`.
pub const TRAPDRV: &str = "pciem_trapdrv";
