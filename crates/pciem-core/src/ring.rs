//! The event ring. PLACEHOLDER: being written.
