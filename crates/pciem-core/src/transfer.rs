//! The length rules of one device-initiated transfer, shared by the kernel
//! module (through the shim) and the mock backend so the two cannot drift:
//! a transfer moves 1..=[`PCIEM_DMA_MAX_LEN`] bytes, and the buffer it
//! moves them from or to does not wrap around the address space.

use core::ffi::CStr;

use pciem_abi::PCIEM_DMA_MAX_LEN;

/// Why a transfer's length or buffer is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Zero bytes.
    Empty,
    /// More than [`PCIEM_DMA_MAX_LEN`] bytes (the length given).
    TooLong(u64),
    /// `addr + len` passes the end of the address space.
    Wraps,
}

impl TransferError {
    /// The description the kernel log uses (NUL-terminated for the shim).
    pub const fn reason(self) -> &'static CStr {
        match self {
            Self::Empty => c"zero-length transfer",
            Self::TooLong(_) => c"transfer longer than PCIEM_DMA_MAX_LEN (16 MiB)",
            Self::Wraps => c"user buffer wraps around",
        }
    }
}

/// A transfer of `len` bytes: 1..=[`PCIEM_DMA_MAX_LEN`].
pub const fn check_len(len: u64) -> Result<(), TransferError> {
    if len == 0 {
        return Err(TransferError::Empty);
    }
    if len > PCIEM_DMA_MAX_LEN {
        return Err(TransferError::TooLong(len));
    }
    Ok(())
}

/// A transfer of `len` bytes through the buffer at `addr`: the length rules
/// of [`check_len`], then the buffer must not wrap around (its last byte,
/// `addr + len - 1`, is addressable; a buffer ending exactly at the top of
/// the address space is refused too, as the module always has).
pub const fn check_buffer(addr: u64, len: u64) -> Result<(), TransferError> {
    if let Err(e) = check_len(len) {
        return Err(e);
    }
    if addr.checked_add(len).is_none() {
        return Err(TransferError::Wraps);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_from_one_to_the_limit_pass() {
        assert_eq!(check_len(1), Ok(()));
        assert_eq!(check_len(PCIEM_DMA_MAX_LEN), Ok(()));
        assert_eq!(check_buffer(0x1000, PCIEM_DMA_MAX_LEN), Ok(()));
    }

    #[test]
    fn zero_and_over_the_limit_are_refused() {
        assert_eq!(check_len(0), Err(TransferError::Empty));
        assert_eq!(
            check_len(PCIEM_DMA_MAX_LEN + 1),
            Err(TransferError::TooLong(PCIEM_DMA_MAX_LEN + 1))
        );
        assert_eq!(check_len(u64::MAX), Err(TransferError::TooLong(u64::MAX)));
        // The length is judged before the address.
        assert_eq!(check_buffer(u64::MAX, 0), Err(TransferError::Empty));
    }

    #[test]
    fn a_buffer_that_wraps_is_refused() {
        assert_eq!(check_buffer(u64::MAX - 15, 64), Err(TransferError::Wraps));
        assert_eq!(check_buffer(u64::MAX, 1), Err(TransferError::Wraps));
        // Ending at 2^64 wraps `addr + len` to 0: refused, as in the C it replaces.
        assert_eq!(check_buffer(u64::MAX - 63, 64), Err(TransferError::Wraps));
        assert_eq!(check_buffer(u64::MAX - 64, 64), Ok(()));
    }

    #[test]
    fn every_error_has_a_reason() {
        for e in [
            TransferError::Empty,
            TransferError::TooLong(1),
            TransferError::Wraps,
        ] {
            assert!(!e.reason().is_empty());
            assert!(e.reason().to_str().is_ok());
        }
    }
}
