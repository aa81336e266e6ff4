//! Putting a device built by pciem-core on the bus with the test driver
//! bound: the first steps of most scenarios.

use std::path::PathBuf;
use std::time::Duration;

use pciem_core::config::BuildError;
use pciem_core::ConfigSpace;

use crate::{sysfs, Dev, Instance, Report, TESTDRV, TEST_VENDOR};

/// Hands `space` (1f0c:`device`) to a new `/dev/pciem` file with
/// SET_CONFIG_IMAGE, registers it, and waits for it to appear in sysfs;
/// checks that `pciem_testdrv` bound. `None` (after reporting why) when a
/// step failed.
pub fn bring_up(
    r: &mut Report,
    space: Result<ConfigSpace, BuildError>,
    device: u16,
) -> Option<(Dev, Instance, PathBuf)> {
    let space = r.step(format!("pciem-core builds 1f0c:{device:04x}"), space)?;
    let dev = r.step("open /dev/pciem", Dev::open())?;
    r.step("SET_CONFIG_IMAGE", dev.set_image(space.image()))?;
    let inst = r.step("REGISTER", dev.register())?;
    let path = sysfs::wait_device(TEST_VENDOR, device, Duration::from_secs(5));
    let bound = path
        .as_deref()
        .is_some_and(|p| sysfs::driver_of(p).as_deref() == Some(TESTDRV));
    r.check(
        bound,
        format!(
            "{TESTDRV} bound to {}",
            path.as_deref()
                .map(sysfs::pci_name)
                .unwrap_or_else(|| format!("1f0c:{device:04x} (not in sysfs)"))
        ),
    );
    Some((dev, inst, path?))
}
