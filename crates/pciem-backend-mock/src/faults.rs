//! Fault injection in the mock: the host's fault plan (pciem-core's
//! [`FaultPlan`], the kernel module's code through its shim), so a test or
//! the model can make chosen driver loads time out and chosen DMA reads of
//! the model come back poisoned, with the kernel's semantics: a load from a
//! trapped BAR range under a READ_TIMEOUT rule reads all-ones, is counted
//! as a read timeout and reaches the model only as a
//! [`pciem_core::TrapError::InjectedTimeout`] event; a DMA read (plain, the
//! read of an atomic, PRP list pages and read segments) touching a
//! DMA_POISON range fails with [`HostError::Poisoned`] after the DMA check
//! passed, nothing of it copied.

use std::collections::VecDeque;

use pciem_core::config::root_port::{record_error, Severity};
use pciem_core::faultplan::{
    poisoned_completion_header, BarState, FaultPlan, FaultRule, AER_POISONED_TLP,
};
use pciem_core::{AerError, ConfigSpace, Device, HostError};

use crate::harness::Harness;
use crate::host::{MockHost, State};

/// What the plan needs to know of a BAR slot: its size and whether the
/// model put it in trap mode (bit `n` of `trapped`).
fn bar_state(st: &State, slot: u8) -> BarState {
    match st.config.bar(slot) {
        None => BarState::Absent,
        Some(b) if st.trapped & (1 << slot) != 0 => BarState::Trapped(b.size),
        Some(b) => BarState::Direct(b.size),
    }
}

/// A DMA read of `len` bytes at `addr`: [`HostError::Poisoned`] if a rule
/// of `st.faults` hits it (charging that rule). A rule with
/// [`FaultRule::aer`] also reports it as the kernel does: a non-fatal
/// Poisoned TLP Received with the completion's header recorded in the
/// device's AER capability (by the module's code) and handed to the test
/// through `Harness::aer_reports` (requester ID 0: the mock has no bus
/// numbers). Without an AER capability nothing is recorded, as the kernel
/// only logs then.
pub(crate) fn poison_check(
    faults: &mut FaultPlan,
    config: &mut ConfigSpace,
    aer: &mut VecDeque<AerError>,
    addr: u64,
    len: usize,
) -> Result<(), HostError> {
    let Some(rule) = faults.hit_dma_read(addr, len as u64) else {
        return Ok(());
    };
    if rule.aer {
        let error = AerError {
            severity: Severity::NonFatal,
            status: AER_POISONED_TLP,
            header_log: poisoned_completion_header(0, addr, len as u64),
        };
        if record_error(config, error.severity, error.status, error.header_log).is_ok() {
            aer.push_back(error);
        }
    }
    Err(HostError::Poisoned { addr })
}

impl MockHost {
    /// [`pciem_core::Host::set_fault`]: arm `rule` (refused as the kernel
    /// refuses it, [`HostError::Fault`]); after a surprise removal
    /// [`HostError::Disconnected`].
    pub(crate) fn arm_fault(&self, rule: FaultRule) -> Result<(), HostError> {
        self.with(|st| {
            if st.removed {
                return Err(HostError::Disconnected);
            }
            let abi = rule.to_abi();
            let states: [BarState; 6] = core::array::from_fn(|i| bar_state(st, i as u8));
            st.faults
                .apply(&abi, |slot| {
                    states
                        .get(slot as usize)
                        .copied()
                        .unwrap_or(BarState::Absent)
                })
                .map_err(HostError::Fault)
        })
    }

    /// [`pciem_core::Host::clear_faults`].
    pub(crate) fn disarm_faults(&self) -> Result<(), HostError> {
        self.with(|st| {
            if st.removed {
                return Err(HostError::Disconnected);
            }
            st.faults.clear();
            Ok(())
        })
    }

    /// The armed rules with the hits each has left (0: unlimited).
    pub fn fault_rules(&self) -> Vec<(FaultRule, u32)> {
        self.with(|st| st.faults.rules().collect())
    }

    /// Driver loads made to time out by a READ_TIMEOUT rule so far.
    pub fn injected_timeouts(&self) -> u64 {
        self.with(|st| st.injected_timeouts)
    }

    /// A driver load from trapped BAR `bar`: whether a rule makes it time
    /// out (charged and counted).
    pub(crate) fn load_times_out(&self, bar: u8, offset: u64, width: u8) -> bool {
        self.with(|st| {
            let hit = st.faults.hit_read(bar, offset, width.into()).is_some();
            st.injected_timeouts += u64::from(hit);
            hit
        })
    }
}

impl MockHost {
    /// [`pciem_core::Host::reinsert`]: as the kernel does, the device comes
    /// back at its power-on state (configuration space as built, BAR
    /// memory zeroed, no interrupt pending) and the model gets a reset
    /// ([`pciem_core::ResetKind::Reinserted`]) when the harness next runs
    /// it. [`HostError::NotRemoved`] unless surprise-removed.
    pub(crate) fn reinsert_device(&self) -> Result<(), HostError> {
        self.with(|st| {
            if !st.removed {
                return Err(HostError::NotRemoved);
            }
            st.config = st.initial.clone();
            for bar in st.bars.iter_mut() {
                bar.fill(0);
            }
            st.irqs.clear();
            st.intx = false;
            st.removed = false;
            st.pending_events.push(pciem_abi::pciem_event {
                r#type: pciem_abi::PCIEM_EVENT_RESET,
                data: pciem_abi::PCIEM_RESET_REINSERT,
                ..Default::default()
            });
            Ok(())
        })
    }
}

impl<D: Device> Harness<D> {
    /// Arm a fault rule from the test's side, as the model would with
    /// [`pciem_core::Host::set_fault`].
    pub fn set_fault(&self, rule: FaultRule) -> Result<(), HostError> {
        self.host().arm_fault(rule)
    }

    /// Disarm every fault rule.
    pub fn clear_faults(&self) -> Result<(), HostError> {
        self.host().disarm_faults()
    }
}
