//! Trapped BARs on the mock host: the same semantics in stepping and
//! threaded mode, as the kernel module's trap mode.

use std::collections::VecDeque;
use std::time::Duration;

use pciem_backend_mock::{Harness, MockError};
use pciem_core::config::Bar;
use pciem_core::{
    AccessMap, BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, MmioRead,
    MmioWrite, ReadPolicy, TrapError, TrapPolicy, Watch, WritePolicy,
};

/// Writing sets these bits in STATUS (a doorbell: not stored).
const RAISE: u64 = 0x00;
/// Write-1-to-clear status, owned by the model.
const STATUS: u64 = 0x04;
/// Read-to-clear: RAISE writes since the last read.
const RC: u64 = 0x08;
/// A FIFO: writes push, reads pop ([`EMPTY`] when empty).
const FIFO: u64 = 0x0C;
/// A doorbell whose backing keeps [`DOORBELL_INIT`]; the model copies each
/// value rung into [`LAST_RUNG`].
const DOORBELL: u64 = 0x10;
/// Plain register the model writes.
const LAST_RUNG: u64 = 0x14;
/// Reads are served from the backing and reported.
const NOTIFY: u64 = 0x20;
/// Reads take the model 50 ms.
const SLOW: u64 = 0x30;
/// A write makes the model DMA "ping" to the address written.
const DMA: u64 = 0x40;

const EMPTY: u32 = 0xE0E0_E0E0;
const DOORBELL_INIT: u32 = 0xABCD;

#[derive(Debug, Default)]
struct Regs {
    status: u32,
    raises: u32,
    fifo: VecDeque<u32>,
    notified: Vec<(MmioRead, u64)>,
    errors: Vec<TrapError>,
}

fn builder() -> ConfigBuilder {
    let notify = TrapPolicy::new(ReadPolicy::Notify, WritePolicy::Store);
    ConfigBuilder::new(0x1234, 0x07a9)
        .bar(0, Bar::memory32(4096))
        .trap_bar(0)
        .trap_range(0, RAISE, 4, TrapPolicy::DOORBELL)
        .trap_range(0, STATUS, 4, TrapPolicy::MODEL)
        .trap_range(0, RC, 4, TrapPolicy::MODEL)
        .trap_range(0, FIFO, 4, TrapPolicy::MODEL)
        .trap_range(0, DOORBELL, 4, TrapPolicy::DOORBELL)
        .trap_range(0, NOTIFY, 4, notify)
        .trap_range(0, SLOW, 4, TrapPolicy::MODEL)
}

impl Device for Regs {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        builder().build()
    }

    fn access_map(&self) -> Result<AccessMap, BuildError> {
        builder().access_map()
    }

    fn watches(&self) -> &[Watch] {
        &[]
    }

    fn start(&mut self, host: &dyn Host) -> Result<(), HostError> {
        host.write_u32(0, DOORBELL, DOORBELL_INIT)
    }

    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        let v = w.value as u32;
        match w.offset {
            RAISE => {
                self.status |= v;
                self.raises += 1;
            }
            STATUS => self.status &= !v,
            FIFO => self.fifo.push_back(v),
            DOORBELL => host.write_u32(0, LAST_RUNG, v)?,
            DMA => host.dma_write(w.value, b"ping")?,
            _ => {}
        }
        Ok(())
    }

    fn mmio_read(&mut self, _: &dyn Host, r: MmioRead) -> Result<u64, HostError> {
        Ok(u64::from(match r.offset {
            STATUS => self.status,
            RC => std::mem::take(&mut self.raises),
            FIFO => self.fifo.pop_front().unwrap_or(EMPTY),
            SLOW => {
                std::thread::sleep(Duration::from_millis(50));
                0x1234
            }
            _ => 0,
        }))
    }

    fn mmio_read_notify(&mut self, _: &dyn Host, r: MmioRead, v: u64) -> Result<(), HostError> {
        self.notified.push((r, v));
        Ok(())
    }

    fn device_error(&mut self, _: &dyn Host, err: TrapError) -> Result<(), HostError> {
        self.errors.push(err);
        Ok(())
    }
}

type Make<D> = fn(D) -> Result<Harness<D>, MockError>;

fn modes<D: Device + Send + 'static>() -> [(&'static str, Make<D>); 2] {
    [("stepping", Harness::new), ("threaded", Harness::threaded)]
}

/// Room for a loaded test machine; the timeout test uses the default.
const ROOMY: Duration = Duration::from_secs(5);

#[test]
fn w1c_read_to_clear_and_fifo_are_exact_in_both_modes() {
    for (name, make) in modes::<Regs>() {
        let mut h = make(Regs::default()).unwrap();
        assert_eq!(h.read_timeout(), Duration::from_millis(10));
        h.set_read_timeout(ROOMY);
        const N: u32 = 2000;
        for i in 0..N {
            let bits = i.wrapping_mul(2_654_435_761) | 1;
            h.write32(0, RAISE, bits).unwrap();
            assert_eq!(h.read32(0, STATUS).unwrap(), bits, "{name} {i}");
            h.write32(0, STATUS, 0xFFFF).unwrap();
            assert_eq!(h.read32(0, STATUS).unwrap(), bits & !0xFFFF, "{name} {i}");
            h.write32(0, STATUS, u32::MAX).unwrap();
            assert_eq!(h.read32(0, STATUS).unwrap(), 0, "{name} {i}");
            assert_eq!(h.read32(0, RC).unwrap(), 1, "{name} {i}");
            assert_eq!(h.read32(0, RC).unwrap(), 0, "{name} {i}");
            h.write32(0, FIFO, i).unwrap();
            h.write32(0, FIFO, !i).unwrap();
            assert_eq!(h.read32(0, FIFO).unwrap(), i, "{name} {i}");
            assert_eq!(h.read32(0, FIFO).unwrap(), !i, "{name} {i}");
            assert_eq!(h.read32(0, FIFO).unwrap(), EMPTY, "{name} {i}");
        }
        // DeliverOnly: the driver's stores never reached BAR memory.
        for off in [RAISE, STATUS, RC, FIFO] {
            assert_eq!(h.host().read_u32(0, off).unwrap(), 0, "{name} {off:#x}");
        }
        assert_eq!(h.read_timeouts(), 0, "{name}");
        assert_eq!(h.model_reads(), 8 * u64::from(N), "{name}");
        assert_eq!(h.events_lost(), 0, "{name}");
        assert!(h.device_errors().is_empty(), "{name}");
        let dev = h.into_device().unwrap();
        assert!(dev.errors.is_empty() && dev.fifo.is_empty(), "{name}");
    }
}

#[test]
fn doorbell_writes_are_delivered_not_stored() {
    for (name, make) in modes::<Regs>() {
        let mut h = make(Regs::default()).unwrap();
        h.set_read_timeout(ROOMY);
        h.write32(0, DOORBELL, 0x55).unwrap();
        // A model-answered read comes after every earlier event.
        h.read32(0, STATUS).unwrap();
        assert_eq!(h.read32(0, DOORBELL).unwrap(), DOORBELL_INIT, "{name}");
        assert_eq!(h.read32(0, LAST_RUNG).unwrap(), 0x55, "{name}");
        // Plain parts of a trapped BAR are stored and delivered.
        h.write32(0, 0x100, 0x77).unwrap();
        assert_eq!(h.read32(0, 0x100).unwrap(), 0x77, "{name}");
        // An 8-byte store touching the doorbell is delivered only.
        h.mmio_write(0, DOORBELL, 8, 0x1111_2222_3333_4444).unwrap();
        h.read32(0, STATUS).unwrap();
        assert_eq!(h.read32(0, DOORBELL).unwrap(), DOORBELL_INIT, "{name}");
        assert_eq!(h.read32(0, LAST_RUNG).unwrap(), 0x3333_4444, "{name}");
    }
}

#[test]
fn notify_reads_are_served_from_the_backing_and_reported() {
    for (name, make) in modes::<Regs>() {
        let mut h = make(Regs::default()).unwrap();
        h.set_read_timeout(ROOMY);
        h.host().write_u32(0, NOTIFY, 0x7777).unwrap();
        assert_eq!(h.read32(0, NOTIFY).unwrap(), 0x7777, "{name}");
        assert_eq!(h.mmio_read(0, NOTIFY + 2, 2).unwrap(), 0, "{name}");
        let dev = h.into_device().unwrap();
        let r = |offset, width| MmioRead {
            bar: 0,
            offset,
            width,
        };
        assert_eq!(
            dev.notified,
            [(r(NOTIFY, 4), 0x7777), (r(NOTIFY + 2, 2), 0)],
            "{name}"
        );
    }
}

#[test]
fn bulk_accesses_are_split_and_served_per_access() {
    for (name, make) in modes::<Regs>() {
        let mut h = make(Regs::default()).unwrap();
        h.set_read_timeout(ROOMY);
        h.bar_write(0, FIFO, &7u32.to_le_bytes()).unwrap();
        h.bar_write(0, FIFO, &9u32.to_le_bytes()).unwrap();
        let mut b = [0u8; 12];
        // 0x0C: FIFO pop (4 bytes), 0x10: doorbell backing (8 bytes,
        // covering LAST_RUNG too, which is still 0).
        h.bar_read(0, FIFO, &mut b).unwrap();
        assert_eq!(&b[..4], &7u32.to_le_bytes(), "{name}");
        assert_eq!(&b[4..8], &DOORBELL_INIT.to_le_bytes(), "{name}");
        assert_eq!(h.read32(0, FIFO).unwrap(), 9, "{name}");
        assert_eq!(h.model_reads(), 2, "{name}");
        // Out of range: refused before anything happens.
        assert!(h.bar_write(0, 4092, &[0; 8]).is_err());
        assert!(h.bar_read(0, 4092, &mut [0; 8]).is_err());
        assert!(h.mmio_read(0, 4096, 4).is_err());
    }
}

#[test]
fn a_read_the_model_answers_too_late_reads_all_ones_and_is_counted() {
    for (name, make) in modes::<Regs>() {
        let mut h = make(Regs::default()).unwrap();
        // The default, as the kernel's: 10 ms, and the model takes 50.
        assert_eq!(h.read32(0, SLOW).unwrap(), u32::MAX, "{name}");
        assert_eq!(h.mmio_read(0, SLOW, 2).unwrap(), 0xFFFF, "{name}");
        assert_eq!(h.read_timeouts(), 2, "{name}");
        h.set_read_timeout(ROOMY);
        // The late answers are not taken for later reads.
        h.write32(0, RAISE, 0x10).unwrap();
        assert_eq!(h.read32(0, STATUS).unwrap(), 0x10, "{name}");
        assert_eq!(h.read_timeouts(), 2, "{name}");
        let dev = h.into_device().unwrap();
        let errs: Vec<_> = dev
            .errors
            .iter()
            .map(|e| match e {
                TrapError::ReadTimeout { read, .. } => (read.offset, read.width),
                other => panic!("{name}: unexpected {other:?}"),
            })
            .collect();
        assert_eq!(errs, [(SLOW, 4), (SLOW, 2)], "{name}");
    }
}

#[test]
fn dma_needs_bus_master_enable() {
    for (name, make) in modes::<Regs>() {
        let mut h = make(Regs::default()).unwrap();
        h.set_read_timeout(ROOMY);
        let buf = h.dma_alloc(4).unwrap();
        h.mmio_write(0, DMA, 8, buf).unwrap();
        h.read32(0, STATUS).unwrap();
        assert!(
            h.device_errors().contains(&HostError::BusMasterDisabled),
            "{name}: {:?}",
            h.device_errors()
        );
        let host = h.host().clone();
        assert_eq!(
            host.dma_read(buf, &mut [0; 4]),
            Err(HostError::BusMasterDisabled)
        );
        assert_eq!(
            host.dma_atomic(buf & !7, pciem_core::AtomicOp::FetchAdd(1)),
            Err(HostError::BusMasterDisabled)
        );
        assert_eq!(
            host.p2p_read(0, &mut [0; 4]),
            Err(HostError::BusMasterDisabled)
        );
        h.enable_bus_master().unwrap();
        let before = h.device_errors().len();
        h.mmio_write(0, DMA, 8, buf).unwrap();
        h.read32(0, STATUS).unwrap();
        let mut out = [0u8; 4];
        h.dma_read(buf, &mut out).unwrap();
        assert_eq!(&out, b"ping", "{name}");
        assert_eq!(h.device_errors().len(), before, "{name}");
    }
}

/// A model whose BAR is trapped but that keeps the trait's defaults: reads
/// of its model ranges answer BAR memory, and watches on the trapped BAR do
/// not double the events.
struct Defaults(Vec<MmioWrite>);

impl Device for Defaults {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        Self::builder().build()
    }
    fn access_map(&self) -> Result<AccessMap, BuildError> {
        Self::builder().access_map()
    }
    fn watches(&self) -> &[Watch] {
        &[Watch {
            bar: 0,
            offset: 0,
            width: 4,
        }]
    }
    fn mmio_write(&mut self, _: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        self.0.push(w);
        Ok(())
    }
}

impl Defaults {
    fn builder() -> ConfigBuilder {
        ConfigBuilder::new(0x1234, 0x07aa)
            .bar(0, Bar::memory64(4096))
            .trap_bar(0)
            .trap_range(
                0,
                0,
                8,
                TrapPolicy::new(ReadPolicy::Model, WritePolicy::Store),
            )
    }
}

#[test]
fn trait_defaults_on_a_trapped_bar() {
    for (name, make) in modes::<Defaults>() {
        let mut h = make(Defaults(Vec::new())).unwrap();
        h.set_read_timeout(ROOMY);
        h.write32(0, 0, 0xAB).unwrap();
        assert_eq!(h.read32(0, 0).unwrap(), 0xAB, "{name}");
        assert_eq!(h.mmio_read(0, 0, 8).unwrap(), 0xAB, "{name}");
        let dev = h.into_device().unwrap();
        assert_eq!(
            dev.0,
            [MmioWrite {
                bar: 0,
                offset: 0,
                width: 4,
                value: 0xAB
            }],
            "{name}"
        );
    }
}

#[test]
fn bad_trap_declarations_are_refused_at_plug_in() {
    struct Bad;
    impl Device for Bad {
        type Error = HostError;
        fn config_space(&self) -> Result<ConfigSpace, BuildError> {
            ConfigBuilder::new(1, 1).bar(0, Bar::memory32(4096)).build()
        }
        fn access_map(&self) -> Result<AccessMap, BuildError> {
            let mut m = AccessMap::new();
            m.set_mode(2, pciem_core::BarMode::Trap)?;
            Ok(m)
        }
        fn watches(&self) -> &[Watch] {
            &[]
        }
        fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
            Ok(())
        }
    }
    assert!(matches!(
        Harness::new(Bad).err(),
        Some(MockError::Config(BuildError::TrapBarMissing(2)))
    ));
}
