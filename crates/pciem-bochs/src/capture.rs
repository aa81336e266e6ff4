//! Screenshots on the real `/dev/pciem`: a second mapping of video memory
//! for the capture thread, so capturing never stops the event loop (a
//! model-answered register read must be answered within the read timeout
//! while a picture is being encoded).

use std::path::Path;

use pciem_backend_chardev::bar::BarMemory;
use pciem_backend_chardev::mapping::Mapping;
use pciem_backend_chardev::Session;
use pciem_core::HostError;

use crate::device::Display;
use crate::png_io::{self, PngError};
use crate::regs::VRAM_BAR;
use crate::scanout::Frame;

/// Video memory as the capture thread sees it: its own shared mapping of
/// BAR0 of the device's instance file.
///
/// The mapping holds the instance file open: drop it before the
/// [`Session`], or the device is not removed until it goes.
#[derive(Debug)]
pub struct VramView {
    bar: BarMemory,
}

impl VramView {
    /// Maps `len` bytes of BAR0 of `session`'s device.
    pub fn map(session: &Session, len: u64) -> std::io::Result<Self> {
        let fd = session.host().instance_fd().try_clone_to_owned()?;
        let page = pciem_backend_chardev::mapping::page_size();
        let map = Mapping::shared(&fd, u64::from(VRAM_BAR) * page, len as usize)
            .map_err(std::io::Error::from)?;
        Ok(Self {
            bar: BarMemory::new(VRAM_BAR, map),
        })
    }

    /// Copies video memory at `offset` into `buf`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        self.bar.read(offset, buf)
    }
}

/// Renders what is on screen now.
pub fn capture(display: &Display, vram: &VramView) -> Result<Frame, HostError> {
    display
        .scanout()
        .render(display.vram_size(), |off, buf| vram.read(off, buf))
}

/// Renders what is on screen and writes it to `path` (whole, by rename).
pub fn screenshot(display: &Display, vram: &VramView, path: &Path) -> Result<Frame, ShotError> {
    let frame = capture(display, vram)?;
    png_io::write(path, &frame)?;
    Ok(frame)
}

/// Why a screenshot failed.
#[derive(Debug, thiserror::Error)]
pub enum ShotError {
    /// Reading video memory failed.
    #[error("reading video memory: {0}")]
    Vram(#[from] HostError),
    /// Writing the PNG failed.
    #[error(transparent)]
    Png(#[from] PngError),
}
