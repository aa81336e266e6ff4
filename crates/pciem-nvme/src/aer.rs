//! Asynchronous events (NVMe 1.4, section 5.2): requests the host leaves
//! outstanding, events waiting for one, and the per-type mask that holds
//! further events of a type until the host reads its log page.

use std::collections::VecDeque;

use crate::identify::AERL;
use crate::logs::{LID_ERROR, LID_SMART};
use crate::status::Status;

/// Event type: error status.
pub const TYPE_ERROR: u8 = 0;
/// Event type: SMART / health status.
pub const TYPE_SMART: u8 = 1;
/// Error event information: write to an invalid doorbell register.
pub const INFO_INVALID_DOORBELL: u8 = 0x00;
/// Error event information: invalid doorbell write value.
pub const INFO_INVALID_DOORBELL_VALUE: u8 = 0x01;

/// Outstanding requests and pending events.
#[derive(Clone, Debug, Default)]
pub(crate) struct AsyncEvents {
    requests: VecDeque<u16>,
    pending: VecDeque<u32>,
    masked: u8,
}

/// DW0 of an Asynchronous Event Request completion.
pub const fn event_dw0(ty: u8, info: u8, lid: u8) -> u32 {
    ty as u32 | (info as u32) << 8 | (lid as u32) << 16
}

impl AsyncEvents {
    /// An error event (`info`: [`INFO_INVALID_DOORBELL`] or
    /// [`INFO_INVALID_DOORBELL_VALUE`]).
    pub(crate) fn post_error(&mut self, info: u8) {
        self.post(TYPE_ERROR, info, LID_ERROR);
    }

    fn post(&mut self, ty: u8, info: u8, lid: u8) {
        // Masked until its log is read; one pending event per type.
        if self.masked & (1 << ty) != 0 || self.pending.iter().any(|&e| e as u8 == ty) {
            return;
        }
        self.pending.push_back(event_dw0(ty, info, lid));
    }

    /// A new Asynchronous Event Request with identifier `cid`.
    pub(crate) fn request(&mut self, cid: u16) -> Result<(), Status> {
        if self.requests.len() > usize::from(AERL) {
            return Err(Status::AER_LIMIT_EXCEEDED);
        }
        self.requests.push_back(cid);
        Ok(())
    }

    /// A request to complete and its DW0, when both a request and an event
    /// wait; the event's type is masked from then on.
    pub(crate) fn take(&mut self) -> Option<(u16, u32)> {
        if self.requests.is_empty() {
            return None;
        }
        let ev = self.pending.pop_front()?;
        let cid = self.requests.pop_front()?;
        self.masked |= 1 << (ev as u8 & 7);
        Some((cid, ev))
    }

    /// Withdraw the request `cid` (Abort); whether it was outstanding.
    pub(crate) fn abort(&mut self, cid: u16) -> bool {
        match self.requests.iter().position(|&c| c == cid) {
            Some(i) => {
                self.requests.remove(i);
                true
            }
            None => false,
        }
    }

    /// The host read log `lid` without Retain Asynchronous Event: events
    /// of the type it reports are unmasked.
    pub(crate) fn log_read(&mut self, lid: u8) {
        match lid {
            LID_ERROR => self.masked &= !(1 << TYPE_ERROR),
            LID_SMART => self.masked &= !(1 << TYPE_SMART),
            _ => {}
        }
    }

    /// Requests outstanding.
    pub(crate) fn outstanding(&self) -> usize {
        self.requests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_wait_for_requests_and_mask_until_the_log_is_read() {
        let mut a = AsyncEvents::default();
        a.post_error(INFO_INVALID_DOORBELL);
        assert_eq!(a.take(), None);
        a.request(7).unwrap();
        assert_eq!(a.take(), Some((7, event_dw0(0, 0, 1))));
        a.request(8).unwrap();
        a.post_error(INFO_INVALID_DOORBELL_VALUE);
        assert_eq!(a.take(), None, "masked until the error log is read");
        a.log_read(LID_ERROR);
        a.post_error(INFO_INVALID_DOORBELL_VALUE);
        assert_eq!(a.take(), Some((8, event_dw0(0, 1, 1))));
        for c in 0..=AERL {
            a.request(u16::from(c)).unwrap();
        }
        assert_eq!(a.request(99), Err(Status::AER_LIMIT_EXCEEDED));
        assert!(a.abort(2));
        assert!(!a.abort(2));
        assert_eq!(a.outstanding(), usize::from(AERL));
    }
}
