//! The mock's DMA check, the same rules as the kernel module's: a buggy
//! test driver (one bug per test, as `pciem_dmabug.ko` in the VM) and a
//! model that does the DMA the driver asked for, in enforce, report and
//! off mode. Each violation is reported once, of the right kind, to the
//! model (`Device::dma_fault`) and in `Harness::dma_faults`; in enforce
//! mode nothing moves.

use std::sync::{Arc, Mutex};

use pciem_backend_mock::Harness;
use pciem_core::config::Bar;
use pciem_core::dmacheck::{Access, CheckMode, Direction, FaultKind, FaultReport};
use pciem_core::prp::Prp;
use pciem_core::{
    BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, MmioWrite, Watch,
};

/// A DMA job: the driver writes the bus address to 0x0, the length to 0x8
/// and then the direction to 0x10 (1 = device writes, 0 = device reads);
/// the model does it and keeps the result.
struct Dma {
    addr: u64,
    len: u64,
    watches: Vec<Watch>,
    results: Arc<Mutex<Vec<Result<(), HostError>>>>,
    faults: Arc<Mutex<Vec<FaultReport>>>,
}

type Results = Arc<Mutex<Vec<Result<(), HostError>>>>;
type Faults = Arc<Mutex<Vec<FaultReport>>>;

fn model() -> (Dma, Results, Faults) {
    let results = Arc::new(Mutex::new(Vec::new()));
    let faults = Arc::new(Mutex::new(Vec::new()));
    let w = |offset| Watch {
        bar: 0,
        offset,
        width: 8,
    };
    (
        Dma {
            addr: 0,
            len: 0,
            watches: vec![w(0), w(8), w(0x10)],
            results: results.clone(),
            faults: faults.clone(),
        },
        results,
        faults,
    )
}

impl Device for Dma {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(0x1f0c, 0x7e57)
            .bar(0, Bar::memory32(4096))
            .build()
    }
    fn watches(&self) -> &[Watch] {
        &self.watches
    }
    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        match w.offset {
            0 => self.addr = w.value,
            8 => self.len = w.value,
            _ => {
                let mut buf = vec![0xa5u8; self.len as usize];
                let r = if w.value == 1 {
                    host.dma_write(self.addr, &buf)
                } else {
                    host.dma_read(self.addr, &mut buf)
                };
                self.results.lock().unwrap().push(r);
            }
        }
        Ok(())
    }
    fn dma_fault(&mut self, _: &dyn Host, report: FaultReport) -> Result<(), HostError> {
        self.faults.lock().unwrap().push(report);
        Ok(())
    }
}

fn harness(mode: CheckMode) -> (Harness<Dma>, Results, Faults) {
    let (m, results, faults) = model();
    let mut h = Harness::new(m).unwrap();
    h.enable_bus_master().unwrap();
    h.set_dma_check(mode);
    (h, results, faults)
}

/// The driver asks for a DMA; returns the model's result.
fn job(
    h: &mut Harness<Dma>,
    r: &Results,
    addr: u64,
    len: u64,
    write: bool,
) -> Result<(), HostError> {
    h.mmio_write(0, 0, 8, addr).unwrap();
    h.mmio_write(0, 8, 8, len).unwrap();
    h.mmio_write(0, 0x10, 8, u64::from(write)).unwrap();
    h.step().unwrap();
    r.lock().unwrap().pop().expect("the model ran the job")
}

fn buffer(h: &mut Harness<Dma>, addr: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    h.dma_read(addr, &mut b).unwrap();
    b
}

#[test]
fn each_bug_is_reported_once_with_its_kind_and_nothing_moves_in_enforce() {
    for mode in [CheckMode::Enforce, CheckMode::Report] {
        let enforce = mode == CheckMode::Enforce;
        // Use after unmap: mapped for the device to write, unmapped, used.
        let (mut h, r, f) = harness(mode);
        let a = h.dma_map(4096, Direction::FromDevice).unwrap();
        assert!(h.dma_free(a));
        let res = job(&mut h, &r, a, 4096, true);
        assert_eq!(res.is_err(), enforce, "{mode:?}: {res:?}");
        let got = f.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "{mode:?}: {got:?}");
        assert_eq!(got[0].kind, FaultKind::AfterUnmap);
        assert!(got[0].since_unmap_ns.is_some());
        assert_eq!(got[0].refused, enforce);
        assert_eq!(h.dma_faults().len(), 1);

        // Overrun by one byte, then by one page.
        let (mut h, r, f) = harness(mode);
        let a = h.dma_map(4096, Direction::FromDevice).unwrap();
        let res = job(&mut h, &r, a, 4097, true);
        // Report mode lets it go ahead where memory exists: the guard gap
        // after a mock buffer has none (the kernel's would be RAM).
        let refused = matches!(res, Err(HostError::DmaRefused { .. }));
        assert_eq!(refused, enforce, "{mode:?}: {res:?}");
        if enforce {
            assert_eq!(
                res,
                Err(HostError::DmaRefused {
                    addr: a,
                    len: 4097,
                    kind: Some(FaultKind::Outside { bytes: 1 })
                })
            );
            assert_eq!(buffer(&mut h, a, 4096), vec![0; 4096], "nothing moved");
        }
        let b = h.dma_map(4096, Direction::ToDevice).unwrap();
        let _ = job(&mut h, &r, b, 8192, false);
        let got = f.lock().unwrap().clone();
        assert_eq!(
            got.iter().map(|g| (g.kind, g.access)).collect::<Vec<_>>(),
            [
                (FaultKind::Outside { bytes: 1 }, Access::Write),
                (FaultKind::Outside { bytes: 4096 }, Access::Read)
            ]
        );

        // Wrong direction: mapped for the device to read, written.
        let (mut h, r, f) = harness(mode);
        let a = h.dma_map(4096, Direction::ToDevice).unwrap();
        let res = job(&mut h, &r, a, 64, true);
        let got = f.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, FaultKind::WrongDirection);
        let expect = if enforce {
            vec![0u8; 64]
        } else {
            vec![0xa5; 64]
        };
        assert_eq!(buffer(&mut h, a, 64), expect, "{mode:?}: {res:?}");

        // A DMA inside its mapping is not reported.
        let (mut h, r, f) = harness(mode);
        let a = h.dma_map(4096, Direction::FromDevice).unwrap();
        assert_eq!(job(&mut h, &r, a, 4096, true), Ok(()));
        assert!(f.lock().unwrap().is_empty());
        assert!(h.dma_faults().is_empty());
        // Leak: still live at "remove".
        assert_eq!(h.dma_live(), [(a, 4096)]);
    }
}

#[test]
fn off_checks_nothing_but_memory() {
    let (mut h, r, f) = harness(CheckMode::Off);
    let a = h.dma_map(4096, Direction::ToDevice).unwrap();
    assert_eq!(
        job(&mut h, &r, a, 64, true),
        Ok(()),
        "wrong direction unchecked"
    );
    assert_eq!(
        job(&mut h, &r, a, 4097, true),
        Err(HostError::Unmapped { addr: a, len: 4097 })
    );
    assert!(f.lock().unwrap().is_empty());
    assert!(h.dma_faults().is_empty());
}

#[test]
fn a_prp_transfer_is_checked_whole_before_anything_moves() {
    let (mut h, _, f) = harness(CheckMode::Enforce);
    let host = h.host().clone();
    let p0 = h.dma_map(4096, Direction::FromDevice).unwrap();
    let p1 = h.dma_map(4096, Direction::FromDevice).unwrap();
    let list = h.dma_map(4096, Direction::ToDevice).unwrap();
    // The second data page is a stale address.
    let stale = h.dma_map(4096, Direction::FromDevice).unwrap();
    assert!(h.dma_free(stale));
    let entries: Vec<u8> = [p1, stale].iter().flat_map(|p| p.to_le_bytes()).collect();
    h.dma_write(list, &entries).unwrap();
    let prp = Prp {
        prp1: p0,
        prp2: list,
        page_size: 0,
    };
    let res = host.dma_write_prp(prp, &vec![7u8; 3 * 4096]);
    assert!(
        matches!(
            res,
            Err(HostError::DmaRefused {
                kind: Some(FaultKind::AfterUnmap),
                ..
            })
        ),
        "{res:?}"
    );
    assert_eq!(buffer(&mut h, p0, 4096), vec![0; 4096], "nothing moved");
    assert_eq!(buffer(&mut h, p1, 4096), vec![0; 4096], "nothing moved");
    h.step().unwrap();
    assert_eq!(f.lock().unwrap().len(), 1, "reported once");
    // With the list fixed, the same transfer goes through.
    let good = h.dma_map(4096, Direction::FromDevice).unwrap();
    let entries: Vec<u8> = [p1, good].iter().flat_map(|p| p.to_le_bytes()).collect();
    h.dma_write(list, &entries).unwrap();
    assert_eq!(host.dma_write_prp(prp, &vec![7u8; 3 * 4096]), Ok(()));
    assert_eq!(buffer(&mut h, good, 4096), vec![7; 4096]);
}
