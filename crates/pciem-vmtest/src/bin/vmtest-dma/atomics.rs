//! The seven atomics, malformed atomics, and a race with the CPU.

use std::path::Path;

use pciem_abi::{
    PCIEM_ATOMIC_CAS, PCIEM_ATOMIC_FETCH_ADD, PCIEM_ATOMIC_FETCH_AND, PCIEM_ATOMIC_FETCH_OR,
    PCIEM_ATOMIC_FETCH_SUB, PCIEM_ATOMIC_FETCH_XOR, PCIEM_ATOMIC_SWAP,
};
use pciem_vmtest::dmadrv::{errno, Buf};
use pciem_vmtest::{Dev, Report};

use crate::UNMAPPED;

/// Each atomic once, from a known value, against hand-computed results.
pub fn atomics(r: &mut Report, dev: &Dev, b: &Buf) {
    let off = 0x1000;
    let cases: [(&str, u64, u32, u64, u64, u64); 8] = [
        // (name, before, op, operand, compare, after)
        (
            "fetch-add wraps",
            u64::MAX - 0xf,
            PCIEM_ATOMIC_FETCH_ADD,
            0x20,
            0,
            0x10,
        ),
        (
            "fetch-sub wraps",
            5,
            PCIEM_ATOMIC_FETCH_SUB,
            7,
            0,
            u64::MAX - 1,
        ),
        (
            "swap",
            0x1111,
            PCIEM_ATOMIC_SWAP,
            0xdead_beef_0000_0001,
            0,
            0xdead_beef_0000_0001,
        ),
        ("cas match", 42, PCIEM_ATOMIC_CAS, 99, 42, 99),
        ("cas mismatch", 42, PCIEM_ATOMIC_CAS, 99, 41, 42),
        (
            "and",
            0xff00_ff00_ff00_ff00,
            PCIEM_ATOMIC_FETCH_AND,
            0x0ff0_0ff0_0ff0_0ff0,
            0,
            0x0f00_0f00_0f00_0f00,
        ),
        (
            "or",
            0x8000_0000_0000_00f0,
            PCIEM_ATOMIC_FETCH_OR,
            0x0f,
            0,
            0x8000_0000_0000_00ff,
        ),
        (
            "xor",
            0xaaaa_aaaa_aaaa_aaaa,
            PCIEM_ATOMIC_FETCH_XOR,
            0xffff_0000_ffff_0000,
            0,
            0x5555_aaaa_5555_aaaa,
        ),
    ];
    for (name, before, op, operand, compare, after) in cases {
        if b.cpu_write(off, &before.to_le_bytes()).is_err() {
            r.check(false, format!("{} atomic {name}: set the word", b.name));
            continue;
        }
        let res = dev.dma_atomic(b.addr + off, op, operand, compare);
        let mem = b.cpu_u64(off).ok();
        r.check(
            matches!(res, Ok(v) if v == before) && mem == Some(after),
            format!(
                "{} atomic {name}: old {before:#x} returned, memory {after:#x} ({res:?}, memory {mem:x?})",
                b.name
            ),
        );
    }
    // Malformed atomics change nothing.
    let _ = b.cpu_write(off, &7u64.to_le_bytes());
    let res = dev.dma_atomic(b.addr + off + 4, PCIEM_ATOMIC_FETCH_ADD, 1, 0);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("unaligned atomic -> EINVAL ({res:?})"),
    );
    for op in [0, 8, 99] {
        let res = dev.dma_atomic(b.addr + off, op, 1, 0);
        r.check(
            errno(&res) == Some(libc::EINVAL),
            format!("unknown atomic op {op} -> EINVAL ({res:?})"),
        );
    }
    r.check(
        b.cpu_u64(off).ok() == Some(7),
        "memory unchanged by the rejected atomics",
    );
    let res = dev.dma_atomic(UNMAPPED, PCIEM_ATOMIC_SWAP, 1, 0);
    r.check(
        errno(&res) == Some(libc::EFAULT),
        format!("atomic at an unmapped bus address -> EFAULT, refused by the DMA check ({res:?})"),
    );
}

/// The device's fetch-add racing the driver's CPU increments of one word:
/// no update may be lost on either side.
pub fn atomic_race(r: &mut Report, dev: &Dev, b: &Buf, pdev: &Path) {
    const OFF: u64 = 0x2000;
    const CPU_INCS: u64 = 1_000_000;
    const DEV_ADDS: u64 = 3000;
    if b.cpu_write(OFF, &0u64.to_le_bytes()).is_err() {
        r.check(false, "atomic race: clear the word");
        return;
    }
    let hammer = pdev.join("hammer");
    let cpu = std::thread::spawn(move || {
        let res = std::fs::write(&hammer, format!("{OFF} {CPU_INCS}"));
        (res, std::time::Instant::now())
    });
    let mut dev_ok = true;
    for _ in 0..DEV_ADDS {
        dev_ok &= dev
            .dma_atomic(b.addr + OFF, PCIEM_ATOMIC_FETCH_ADD, 1, 0)
            .is_ok();
    }
    let dev_done = std::time::Instant::now();
    let (cpu_res, cpu_done) = cpu.join().expect("hammer thread");
    let total = b.cpu_u64(OFF).ok();
    println!(
        "INFO: atomic race: the CPU loop ended {} the device's",
        if cpu_done > dev_done {
            "after"
        } else {
            "before"
        }
    );
    r.check(
        dev_ok && cpu_res.is_ok() && total == Some(CPU_INCS + DEV_ADDS),
        format!(
            "atomic race: {CPU_INCS} CPU increments + {DEV_ADDS} device fetch-adds = {} (got {total:?}, {cpu_res:?})",
            CPU_INCS + DEV_ADDS
        ),
    );
}
