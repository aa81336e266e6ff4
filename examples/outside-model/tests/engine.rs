//! The engine on the mock, driven like a driver would, with the clock of
//! its coalescing timer advanced by the test.

use std::time::Duration;

use outside_model::{
    Desc, Engine, EngineError, BATCH, COALESCE, MAX_DESCS, REG_DONE, REG_GO, REG_RING,
};
use pciem_backend_mock::Harness;

fn setup(n: usize) -> (Harness<Engine>, u64, Vec<(u64, u64)>) {
    let mut h = Harness::new(Engine::new()).unwrap();
    assert_eq!(h.enable_msix(1).unwrap(), 1);
    let ring = h.dma_alloc(n * size_of::<Desc>()).unwrap();
    let mut bufs = Vec::new();
    for i in 0..n {
        let src = h.dma_alloc(256).unwrap();
        let dst = h.dma_alloc(256).unwrap();
        h.dma_write(src, &[i as u8; 256]).unwrap();
        let d = Desc {
            src,
            dst,
            len: 256,
            status: 0,
        };
        h.dma_write_obj(ring + (i * size_of::<Desc>()) as u64, &d)
            .unwrap();
        bufs.push((src, dst));
    }
    h.write64(0, REG_RING, ring).unwrap();
    (h, ring, bufs)
}

#[test]
fn a_short_batch_interrupts_once_after_the_coalescing_delay() {
    let (mut h, ring, bufs) = setup(3);
    h.write64(0, REG_GO, 3).unwrap();
    h.step().unwrap();
    assert_eq!(h.read64(0, REG_DONE).unwrap(), 3);
    assert!(h.poll_irq().is_none(), "coalesced: no interrupt yet");
    h.advance(COALESCE - Duration::from_micros(1)).unwrap();
    assert!(h.poll_irq().is_none(), "still inside the delay");
    assert_eq!(h.advance(Duration::from_micros(1)).unwrap(), 1);
    assert!(h.poll_irq().is_some(), "the timer raised it");
    assert!(h.poll_irq().is_none(), "once");
    for (i, (_, dst)) in bufs.iter().enumerate() {
        let mut b = [0u8; 256];
        h.dma_read(*dst, &mut b).unwrap();
        assert_eq!(b, [i as u8; 256]);
        let d: Desc = h
            .dma_read_obj(ring + (i * size_of::<Desc>()) as u64)
            .unwrap();
        assert_eq!(d.status, 1);
    }
}

#[test]
fn a_full_batch_interrupts_at_once_and_cancels_the_timer() {
    let (mut h, _, _) = setup(BATCH as usize);
    h.write64(0, REG_GO, u64::from(BATCH)).unwrap();
    h.step().unwrap();
    assert!(h.poll_irq().is_some(), "a full batch interrupts at once");
    assert_eq!(
        h.advance(COALESCE * 10).unwrap(),
        0,
        "the timer was cancelled"
    );
    assert!(h.poll_irq().is_none());
}

#[test]
fn a_bad_source_fails_its_descriptor_only() {
    let (mut h, ring, _) = setup(2);
    // Point descriptor 0 at memory the driver never mapped.
    let mut d: Desc = h.dma_read_obj(ring).unwrap();
    d.src = 0xdead_0000;
    h.dma_write_obj(ring, &d).unwrap();
    h.write64(0, REG_GO, 2).unwrap();
    h.step().unwrap();
    let d0: Desc = h.dma_read_obj(ring).unwrap();
    let d1: Desc = h.dma_read_obj(ring + size_of::<Desc>() as u64).unwrap();
    assert_eq!((d0.status, d1.status), (2, 1));
    assert_eq!(h.dma_faults().len(), 1, "the mock's DMA check saw it");
}

#[test]
fn the_engines_own_errors_reach_the_test_typed() {
    let (mut h, ring, _) = setup(1);
    h.write64(0, REG_GO, 1000).unwrap();
    h.step().unwrap();
    assert_eq!(
        h.device_errors(),
        [EngineError::TooMany {
            asked: 1000,
            max: MAX_DESCS
        }]
    );
    assert_eq!(h.read64(0, REG_DONE).unwrap(), 0, "nothing ran");
    let d: Desc = h.dma_read_obj(ring).unwrap();
    assert_eq!(d.status, 0);

    // A doorbell before the ring address is another case of the same type.
    let mut h = pciem_backend_mock::Harness::new(Engine::new()).unwrap();
    h.write64(0, REG_GO, 1).unwrap();
    h.step().unwrap();
    assert_eq!(h.take_device_errors(), [EngineError::NoRing]);
    assert!(h.device_errors().is_empty(), "taken");

    // A host failure arrives as the engine's Host case: the descriptor
    // ring is memory the driver never mapped.
    let mut h = pciem_backend_mock::Harness::new(Engine::new()).unwrap();
    h.enable_bus_master().unwrap();
    h.write64(0, REG_RING, 0xdead_0000).unwrap();
    h.write64(0, REG_GO, 1).unwrap();
    h.step().unwrap();
    let errs = h.device_errors();
    assert!(
        matches!(errs.as_slice(), [EngineError::Host(_)]),
        "{errs:?}"
    );
}
