//! The counting device driven exactly as a driver would drive it.

use std::time::Duration;

use pciem_backend_mock::{Harness, IrqKind, MockError};
use pciem_counter::*;

const T: Duration = Duration::from_secs(5);

/// The device in trap mode (the default) and in watch mode.
fn devices() -> [Counter; 2] {
    [Counter::new(), Counter::watch_mode()]
}

fn probe<H: FnOnce(Counter) -> Result<Harness<Counter>, MockError>>(
    make: H,
    dev: Counter,
) -> Harness<Counter> {
    let mut h = make(dev).unwrap();
    assert_eq!(h.config_read(0x00, 4).unwrap(), 0x5678_1234);
    // pci_enable_device + pci_set_master + pci_alloc_irq_vectors(MSI).
    h.enable_msi(0xfee0_1000, 0x0041).unwrap();
    h
}

fn count_to_25(h: &mut Harness<Counter>) {
    for _ in 0..25 {
        h.write32(0, REG_CONTROL, 1).unwrap();
    }
    let a = h.wait_irq(T).unwrap();
    let b = h.wait_irq(T).unwrap();
    // With the device on its own thread the last writes may still be in
    // flight: poll like a driver would.
    let deadline = std::time::Instant::now() + T;
    while h.read32(0, REG_COUNTER).unwrap() != 25 {
        assert!(
            std::time::Instant::now() < deadline,
            "counter stuck at {}",
            h.read32(0, REG_COUNTER).unwrap()
        );
        std::thread::yield_now();
    }
    for irq in [a, b] {
        assert_eq!(irq.kind, IrqKind::Msi);
        assert_eq!((irq.vector, irq.address, irq.data), (0, 0xfee0_1000, 0x41));
    }
    assert_eq!(h.irq_count(IrqKind::Msi, 0), 2);
    assert_eq!(h.read32(0, REG_STATUS).unwrap() & STATUS_IRQ_PENDING, 1);
    h.write32(0, REG_STATUS, 0).unwrap();
    assert!(matches!(
        h.wait_irq(Duration::from_millis(50)),
        Err(MockError::Timeout)
    ));
}

#[test]
fn counts_and_interrupts_every_ten_stepping() {
    for dev in devices() {
        let mut h = probe(Harness::new, dev);
        count_to_25(&mut h);
        assert!(h.device_errors().is_empty());
    }
}

#[test]
fn counts_and_interrupts_every_ten_threaded() {
    for dev in devices() {
        let mut h = probe(Harness::threaded, dev);
        count_to_25(&mut h);
        assert_eq!(h.events_lost(), 0);
        let dev = h.into_device().unwrap();
        assert_eq!((dev.count(), dev.irqs()), (25, 2));
    }
}

#[test]
fn writes_without_bit0_do_not_count() {
    for dev in devices() {
        let mut h = probe(Harness::new, dev);
        h.write32(0, REG_CONTROL, 2).unwrap();
        h.write32(0, REG_COUNTER, 77).unwrap();
        h.write32(0, REG_CONTROL, 1).unwrap();
        assert_eq!(h.read32(0, REG_COUNTER).unwrap(), 1);
    }
}

#[test]
fn masked_vector_is_held_pending_then_delivered() {
    for dev in devices() {
        let mut h = probe(Harness::new, dev);
        let msi = 0x40u16;
        h.config_write(msi + 16, 4, 1).unwrap(); // mask vector 0
        for _ in 0..10 {
            h.write32(0, REG_CONTROL, 1).unwrap();
        }
        assert!(matches!(
            h.wait_irq(Duration::from_millis(10)),
            Err(MockError::Timeout)
        ));
        assert_eq!(h.config_read(msi + 20, 4).unwrap(), 1, "pending bit");
        h.config_write(msi + 16, 4, 0).unwrap(); // unmask
        assert_eq!(h.wait_irq(T).unwrap().vector, 0);
        assert_eq!(h.config_read(msi + 20, 4).unwrap(), 0);
    }
}

#[test]
fn no_interrupt_before_the_driver_enables_msi() {
    for dev in devices() {
        let mut h = Harness::new(dev).unwrap();
        for _ in 0..10 {
            h.write32(0, REG_CONTROL, 1).unwrap();
        }
        h.step().unwrap();
        assert_eq!(h.take_irqs(), vec![]);
        assert!(h
            .device_errors()
            .iter()
            .any(|e| matches!(e, pciem_core::HostError::IrqNotEnabled { .. })));
    }
}

#[test]
fn function_level_reset_is_not_offered_but_config_writes_are_seen() {
    for dev in devices() {
        // The counter has no PCIe capability: no FLR, and config writes that
        // change something still reach the device as events.
        let mut h = probe(Harness::new, dev);
        h.step().unwrap();
        let fx = h.config_write(0x3c, 1, 0x0b).unwrap();
        assert!(fx.contains(pciem_core::config::WriteEffects::CHANGED));
        assert_eq!(h.step().unwrap(), 1);
    }
}

#[test]
fn trapped_counter_reads_are_exact_without_polling() {
    let mut h = probe(Harness::threaded, Counter::new());
    // The kernel's 10 ms would do on an idle machine; a loaded test host
    // gets more room.
    h.set_read_timeout(Duration::from_secs(5));
    for i in 1..=1000 {
        h.write32(0, REG_CONTROL, 1).unwrap();
        assert_eq!(h.read32(0, REG_COUNTER).unwrap(), i);
        if i % IRQ_EVERY == 0 {
            h.wait_irq(T).unwrap();
            h.write32(0, REG_STATUS, 0).unwrap();
        }
    }
    // CONTROL is a doorbell and COUNTER the model's: driver stores to
    // either never reach BAR memory.
    h.write32(0, REG_COUNTER, 77).unwrap();
    assert_eq!(h.read32(0, REG_COUNTER).unwrap(), 1000);
    assert_eq!(
        pciem_core::Host::read_u32(h.host(), 0, REG_CONTROL).unwrap(),
        0
    );
    assert_eq!(h.read_timeouts(), 0);
    assert_eq!(h.model_reads(), 1001);
}
