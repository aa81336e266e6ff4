//! Runs a driver's sequence against the counting device on the mock
//! backend and prints what happened.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pciem_backend_mock::{Harness, IrqKind, MockError};
use pciem_counter::{Counter, REG_CONTROL, REG_COUNTER, REG_STATUS, STATUS_IRQ_PENDING};

const WRITES: u32 = 1000;

fn run() -> Result<(), MockError> {
    let started = Instant::now();
    let mut h = Harness::threaded(Counter::new())?;
    h.enable_msi(0xfee0_0000, 0x4000)?;
    let mut irqs = 0;
    for i in 1..=WRITES {
        h.write32(0, REG_CONTROL, 1)?;
        if i % 10 == 0 {
            let irq = h.wait_irq(Duration::from_secs(5))?;
            assert_eq!(irq.kind, IrqKind::Msi);
            irqs += 1;
            // The handler: check and acknowledge STATUS.
            if h.read32(0, REG_STATUS)? & STATUS_IRQ_PENDING != 0 {
                h.write32(0, REG_STATUS, 0)?;
            }
        }
    }
    let count = h.read32(0, REG_COUNTER)?;
    let errors = h.device_errors();
    let lost = h.events_lost();
    let device = h.into_device()?;
    let elapsed = started.elapsed();
    println!("counter device on the mock backend (device thread, MSI vector 0)");
    println!("  CONTROL writes      {WRITES}");
    println!("  COUNTER reads       {count}");
    println!(
        "  interrupts          {irqs} received, {} raised",
        device.irqs()
    );
    println!("  events lost         {lost}");
    println!("  device errors       {}", errors.len());
    println!(
        "  time                {:.1} ms ({:.2} µs per write)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / WRITES as f64
    );
    if count != WRITES || irqs != u64::from(WRITES / 10) || !errors.is_empty() || lost != 0 {
        eprintln!("counter device misbehaved");
        std::process::exit(1);
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
