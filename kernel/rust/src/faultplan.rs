//! Fault plans for the kernel: the module keeps one pciem-core
//! [`FaultPlan`] per function (in memory it allocates, under its own raw
//! spinlock) and asks it to check SET_FAULT and to decide, for every
//! trapped load and every DMA read of the model, whether a rule hits, so
//! the kernel and the mock backend share one implementation of both.

use core::ffi::c_char;

use pciem_abi::{pciem_fault_rule, PCIEM_MAX_BARS};
use pciem_core::faultplan::{poisoned_completion_header, BarState, FaultPlan, AER_POISONED_TLP};

use super::{fail, m, null, r};

/// Size of the opaque `struct pciem_rs_faults` the C side allocates.
#[no_mangle]
pub extern "C" fn pciem_rs_faults_size() -> usize {
    core::mem::size_of::<FaultPlan>()
}

/// Initialise a plan with no rules.
///
/// # Safety
/// `p` points to `pciem_rs_faults_size()` writable bytes aligned to 8.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_faults_init(p: *mut FaultPlan) {
    if p.is_null() || p.align_offset(core::mem::align_of::<FaultPlan>()) != 0 {
        return;
    }
    // SAFETY: writable, aligned memory of the plan's size (checked non-null
    // and aligned above); `write` neither reads nor drops the old bytes.
    unsafe { p.write(FaultPlan::new()) };
}

/// SET_FAULT: arm `req` or clear the plan, given each BAR's size (0: no
/// BAR) and which BARs are trapped (bit n: BAR n). 0, or -EINVAL /
/// -ENOSPC with a reason.
///
/// # Safety
/// `p` is an initialised plan, `req` valid, `sizes` points to
/// `PCIEM_MAX_BARS` values, `reason` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_faults_apply(
    p: *mut FaultPlan,
    req: *const pciem_fault_rule,
    sizes: *const u64,
    trapped: u32,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(p), Some(req)) = (unsafe { m(p) }, unsafe { r(req) }) else {
        return null(reason);
    };
    if sizes.is_null() {
        return null(reason);
    }
    // SAFETY: the caller passes PCIEM_MAX_BARS readable values.
    let sizes = unsafe { core::slice::from_raw_parts(sizes, PCIEM_MAX_BARS as usize) };
    let bar = |slot: u8| match sizes.get(slot as usize).copied() {
        None | Some(0) => BarState::Absent,
        Some(size) if trapped & (1 << slot) != 0 => BarState::Trapped(size),
        Some(size) => BarState::Direct(size),
    };
    match p.apply(req, bar) {
        Ok(()) => 0,
        Err(e) => fail(reason, (e.errno(), e.reason().as_ptr())),
    }
}

/// A driver load of `width` bytes at `offset` of BAR `bar`: 1 if a rule
/// makes it time out (charged one hit), else 0.
///
/// # Safety
/// `p` is an initialised plan or NULL (then 0).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_faults_hit_read(
    p: *mut FaultPlan,
    bar: u32,
    offset: u64,
    width: u32,
) -> u32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(p) = (unsafe { m(p) }) else {
        return 0;
    };
    let Ok(bar) = u8::try_from(bar) else {
        return 0;
    };
    p.hit_read(bar, offset, width.into()).is_some() as u32
}

/// `pciem_rs_faults_hit_dma_read`: a rule hit the read.
pub const PCIEM_RS_FAULT_HIT: u32 = 1 << 0;
/// `pciem_rs_faults_hit_dma_read`: and it is to be reported through AER.
pub const PCIEM_RS_FAULT_AER: u32 = 1 << 1;

/// A DMA read by the model of `len` bytes at bus address `addr`:
/// [`PCIEM_RS_FAULT_HIT`] if a rule poisons it (charged one hit), with
/// [`PCIEM_RS_FAULT_AER`] if that rule reports through AER; else 0.
///
/// # Safety
/// `p` is an initialised plan or NULL (then 0).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_faults_hit_dma_read(p: *mut FaultPlan, addr: u64, len: u64) -> u32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(p) = (unsafe { m(p) }) else {
        return 0;
    };
    match p.hit_dma_read(addr, len) {
        Some(rule) if rule.aer => PCIEM_RS_FAULT_HIT | PCIEM_RS_FAULT_AER,
        Some(_) => PCIEM_RS_FAULT_HIT,
        None => 0,
    }
}

const _: () = assert!(PCIEM_RS_FAULT_HIT == 0x1 && PCIEM_RS_FAULT_AER == 0x2);

/// 1 if the plan has no rule armed (the module's fast path), else 0.
///
/// # Safety
/// `p` is an initialised plan or NULL (then 1).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_faults_empty(p: *const FaultPlan) -> u32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(p) = (unsafe { r(p) }) else {
        return 1;
    };
    p.is_empty() as u32
}

/// The AER report of a poisoned read (pciem-core's rule, the mock's too):
/// `*status` the Uncorrectable Error Status bit, `header` the Header Log of
/// the completion `requester` received for its read of `len` bytes at
/// `addr`. Nothing is written through a NULL pointer.
///
/// # Safety
/// `status` NULL or writable; `header` NULL or 4 writable values.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_faults_poison_report(
    requester: u16,
    addr: u64,
    len: u64,
    status: *mut u32,
    header: *mut u32,
) {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    if let Some(status) = unsafe { m(status) } {
        *status = AER_POISONED_TLP;
    }
    if !header.is_null() {
        // SAFETY: a non-NULL `header` points to 4 writable u32 values.
        let out = unsafe { core::slice::from_raw_parts_mut(header, 4) };
        out.copy_from_slice(&poisoned_completion_header(requester, addr, len));
    }
}
