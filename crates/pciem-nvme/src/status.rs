//! Completion status codes (NVMe 1.4, section 4.6.1) and how a completion
//! queue entry carries them.

/// A status: Status Code Type and Status Code. Errors the controller
/// reports set Do Not Retry: every error here is one a retry cannot fix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Status {
    /// Status Code Type (0 generic, 1 command specific, 2 media).
    pub sct: u8,
    /// Status Code.
    pub sc: u8,
}

impl Status {
    const fn generic(sc: u8) -> Self {
        Status { sct: 0, sc }
    }
    const fn specific(sc: u8) -> Self {
        Status { sct: 1, sc }
    }
    const fn media(sc: u8) -> Self {
        Status { sct: 2, sc }
    }

    /// Successful Completion.
    pub const SUCCESS: Status = Status::generic(0x00);
    /// Invalid Command Opcode.
    pub const INVALID_OPCODE: Status = Status::generic(0x01);
    /// Invalid Field in Command.
    pub const INVALID_FIELD: Status = Status::generic(0x02);
    /// Data Transfer Error (a DMA failed).
    pub const DATA_TRANSFER_ERROR: Status = Status::generic(0x04);
    /// Internal Error.
    pub const INTERNAL_ERROR: Status = Status::generic(0x06);
    /// Command Abort Requested.
    pub const ABORT_REQUESTED: Status = Status::generic(0x07);
    /// Invalid Namespace or Format.
    pub const INVALID_NAMESPACE: Status = Status::generic(0x0B);
    /// Command Sequence Error.
    pub const COMMAND_SEQUENCE_ERROR: Status = Status::generic(0x0C);
    /// PRP Offset Invalid.
    pub const PRP_OFFSET_INVALID: Status = Status::generic(0x13);
    /// LBA Out of Range.
    pub const LBA_OUT_OF_RANGE: Status = Status::generic(0x80);

    /// Completion Queue Invalid (Create I/O SQ names a CQ that does not
    /// exist).
    pub const CQ_INVALID: Status = Status::specific(0x00);
    /// Invalid Queue Identifier.
    pub const INVALID_QUEUE_ID: Status = Status::specific(0x01);
    /// Invalid Queue Size.
    pub const INVALID_QUEUE_SIZE: Status = Status::specific(0x02);
    /// Asynchronous Event Request Limit Exceeded.
    pub const AER_LIMIT_EXCEEDED: Status = Status::specific(0x05);
    /// Invalid Interrupt Vector.
    pub const INVALID_INTERRUPT_VECTOR: Status = Status::specific(0x08);
    /// Invalid Log Page.
    pub const INVALID_LOG_PAGE: Status = Status::specific(0x09);
    /// Invalid Queue Deletion (a CQ with SQs still attached).
    pub const INVALID_QUEUE_DELETION: Status = Status::specific(0x0C);
    /// Feature Identifier Not Saveable.
    pub const FEATURE_NOT_SAVEABLE: Status = Status::specific(0x0D);

    /// Write Fault (the backing store refused a write).
    pub const WRITE_FAULT: Status = Status::media(0x80);
    /// Unrecovered Read Error (the backing store refused a read).
    pub const UNRECOVERED_READ_ERROR: Status = Status::media(0x81);

    /// Whether this is success.
    pub const fn is_success(self) -> bool {
        self.sct == 0 && self.sc == 0
    }

    /// The 15-bit Status Field (SC, SCT, DNR set for errors).
    pub const fn field(self) -> u16 {
        if self.is_success() {
            return 0;
        }
        self.sc as u16 | ((self.sct as u16 & 0x7) << 8) | 1 << 14
    }

    /// The status a 15-bit Status Field carries.
    pub const fn from_field(field: u16) -> Self {
        Status {
            sct: ((field >> 8) & 0x7) as u8,
            sc: field as u8,
        }
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SCT {} SC {:#04x}", self.sct, self.sc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_encoding() {
        assert_eq!(Status::SUCCESS.field(), 0);
        let f = Status::INVALID_QUEUE_ID.field();
        assert_eq!(f, 0x4101);
        assert_eq!(Status::from_field(f), Status::INVALID_QUEUE_ID);
        assert_eq!(Status::from_field(Status::WRITE_FAULT.field()).sct, 2);
    }
}
