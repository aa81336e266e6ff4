//! The demo's host. Until `pciem-backend-mock` lands this is the crate's
//! single-threaded sim host.

use protopciem::demo::BusError;
use protopciem::sim::SimBus;
use protopciem::Stats;

/// The bus the workload runs on.
pub struct MockBus {
    inner: SimBus,
}

impl MockBus {
    /// A started device.
    pub fn new() -> Result<Self, BusError> {
        Ok(Self {
            inner: SimBus::new()?,
        })
    }

    /// The device's own counters, where the harness exposes them.
    pub fn device_stats(&self) -> Option<Stats> {
        Some(self.inner.stats())
    }
}

impl std::ops::Deref for MockBus {
    type Target = SimBus;
    fn deref(&self) -> &SimBus {
        &self.inner
    }
}

impl std::ops::DerefMut for MockBus {
    fn deref_mut(&mut self) -> &mut SimBus {
        &mut self.inner
    }
}
