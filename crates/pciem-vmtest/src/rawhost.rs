//! A minimal device process: any [`pciem_core::Device`] model served over
//! the raw `/dev/pciem` ioctls of this crate.
//!
//! This is the VM scenarios' stand-in for the chardev backend
//! (`pciem-backend-chardev`): it describes the device with the model's own
//! configuration image, watches the model's registers, registers it, maps
//! its BARs and hands every ring event to the model, whose BAR accesses,
//! interrupts and DMA go to the real module. Peer-to-peer and DMA atomics
//! are not offered (they fail with [`HostError::Unsupported`]).

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use pciem_abi::{pciem_dma_op, PCIEM_IOCTL_DMA_READ, PCIEM_IOCTL_DMA_WRITE};
use pciem_core::{AtomicOp, Device, Host, HostError, Irq};

use crate::{Dev, Instance, MappedBar, Ring};

/// What a model sees of the real module.
pub struct RawHost {
    dev: Dev,
    bars: Vec<(u8, MappedBar)>,
}

fn os_err(op: &'static str, e: io::Error) -> HostError {
    HostError::Os {
        op,
        errno: e.raw_os_error().unwrap_or(0),
    }
}

impl RawHost {
    fn bar(&self, bar: u8) -> Result<&MappedBar, HostError> {
        self.bars
            .iter()
            .find(|(i, _)| *i == bar)
            .map(|(_, m)| m)
            .ok_or(HostError::NoSuchBar { bar })
    }

    fn dma(&self, req: u32, bus_addr: u64, user: u64, len: usize) -> Result<(), HostError> {
        if len == 0 {
            return Err(HostError::Empty);
        }
        let op = pciem_dma_op {
            bus_addr,
            user_addr: user,
            length: len as u64,
            flags: 0,
            reserved: 0,
        };
        // SAFETY: `op` is a live pciem_dma_op, the argument type of both DMA
        // ioctls; `user_addr` points at a live buffer of `len` bytes that
        // the caller holds borrowed (mutably for DMA_READ) for the call.
        let ret = unsafe {
            libc::ioctl(
                self.dev.raw(),
                req as libc::c_ulong,
                &op as *const pciem_dma_op,
            )
        };
        if ret < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                return Err(HostError::Unmapped {
                    addr: bus_addr,
                    len: len as u64,
                });
            }
            return Err(os_err("DMA ioctl", e));
        }
        Ok(())
    }
}

impl Host for RawHost {
    fn bar_read(&self, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        let m = self.bar(bar)?;
        if m.read_bytes(offset as usize, buf) {
            Ok(())
        } else {
            Err(HostError::BarOutOfRange {
                bar,
                offset,
                len: buf.len() as u64,
                size: m.len() as u64,
            })
        }
    }

    fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) -> Result<(), HostError> {
        let m = self.bar(bar)?;
        if m.write_bytes(offset as usize, data) {
            Ok(())
        } else {
            Err(HostError::BarOutOfRange {
                bar,
                offset,
                len: data.len() as u64,
                size: m.len() as u64,
            })
        }
    }

    fn raise_irq(&self, irq: Irq) -> Result<(), HostError> {
        let arg = irq.to_abi();
        // SAFETY: `arg` is a live pciem_irq_inject, the argument type of
        // INJECT_IRQ, which the kernel only reads.
        let ret = unsafe {
            libc::ioctl(
                self.dev.raw(),
                pciem_abi::PCIEM_IOCTL_INJECT_IRQ as libc::c_ulong,
                &arg as *const pciem_abi::pciem_irq_inject,
            )
        };
        if ret < 0 {
            return Err(os_err("INJECT_IRQ", io::Error::last_os_error()));
        }
        Ok(())
    }

    fn dma_read(&self, bus_addr: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.dma(
            PCIEM_IOCTL_DMA_READ,
            bus_addr,
            buf.as_mut_ptr() as u64,
            buf.len(),
        )
    }

    fn dma_write(&self, bus_addr: u64, data: &[u8]) -> Result<(), HostError> {
        self.dma(
            PCIEM_IOCTL_DMA_WRITE,
            bus_addr,
            data.as_ptr() as u64,
            data.len(),
        )
    }

    fn dma_atomic(&self, _bus_addr: u64, _op: AtomicOp) -> Result<u64, HostError> {
        Err(HostError::Unsupported(
            "DMA atomics in the VM stand-in host",
        ))
    }

    fn p2p_read(&self, _addr: u64, _buf: &mut [u8]) -> Result<(), HostError> {
        Err(HostError::Unsupported("P2P in the VM stand-in host"))
    }

    fn p2p_write(&self, _addr: u64, _data: &[u8]) -> Result<(), HostError> {
        Err(HostError::Unsupported("P2P in the VM stand-in host"))
    }
}

/// A model on the bus: the host it talks to, its event ring and the
/// instance file that keeps it there.
pub struct Served<D: Device> {
    model: D,
    host: RawHost,
    ring: Ring,
    efd: std::os::fd::OwnedFd,
    _inst: Instance,
}

/// Describe `model` with its configuration image, watch its registers,
/// register it (the driver probes during this call) and map its BARs.
pub fn serve<D: Device>(mut model: D) -> io::Result<Served<D>> {
    let space = model
        .config_space()
        .map_err(|e| io::Error::other(format!("config space: {e}")))?;
    let dev = Dev::open()?;
    let ring = dev.map_ring()?;
    let efd = dev.attach_eventfd()?;
    dev.set_image(space.image())?;
    for w in model.watches() {
        dev.watch(u32::from(w.bar), w.offset, u32::from(w.width))?;
    }
    let inst = dev.register()?;
    let mut bars = Vec::new();
    for b in space.bars() {
        bars.push((b.index, inst.map_bar(u32::from(b.index), b.size as usize)?));
    }
    let host = RawHost { dev, bars };
    model
        .start(&host)
        .map_err(|e| io::Error::other(format!("model start: {e}")))?;
    Ok(Served {
        model,
        host,
        ring,
        efd,
        _inst: inst,
    })
}

impl<D: Device> Served<D> {
    /// Handle every queued event; returns how many there were. A model
    /// error is reported on stderr and does not stop the loop (the model
    /// has already turned it into device state, e.g. an error bit).
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(ev) = self.ring.pop() {
            n += 1;
            if let Err(e) = self.model.handle_event(&self.host, &ev) {
                eprintln!("INFO: device model: {e}");
            }
        }
        n
    }

    /// Wait up to `timeout` for the ring's eventfd, then drain the ring.
    pub fn step(&mut self, timeout: Duration) -> usize {
        let mut pfd = libc::pollfd {
            fd: self.efd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one live pollfd, count 1.
        unsafe { libc::poll(&mut pfd, 1, ms) };
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from the non-blocking
        // eventfd (EAGAIN when it was not signalled is fine).
        unsafe { libc::read(self.efd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        self.drain()
    }

    /// The model.
    pub fn model(&self) -> &D {
        &self.model
    }
}
