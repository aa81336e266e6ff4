//! Trap-mode declarations for the kernel: the module keeps one
//! pciem-core [`AccessMap`] per device (in memory it allocates) and asks it
//! to validate SET_BAR_MODE / ADD_TRAP_RANGE / REGISTER and to classify
//! every trapped access, so the kernel and the mock backend share one
//! implementation of both.

use core::ffi::c_char;

use pciem_abi::{pciem_bar_mode, pciem_trap_range, PCIEM_MAX_BARS};
use pciem_core::access::AccessMap;

use super::{build_error, fail, m, null, r};

/// Size of the opaque `struct pciem_rs_access` the C side allocates.
#[no_mangle]
pub extern "C" fn pciem_rs_access_size() -> usize {
    core::mem::size_of::<AccessMap>()
}

/// Initialise an access map (every BAR in watch mode, no ranges).
///
/// # Safety
/// `a` points to `pciem_rs_access_size()` writable bytes aligned to 8.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_access_init(a: *mut AccessMap) {
    if a.is_null() || a.align_offset(core::mem::align_of::<AccessMap>()) != 0 {
        return;
    }
    // SAFETY: writable, aligned memory of the map's size (checked non-null
    // and aligned above); `write` neither reads nor drops the old bytes.
    unsafe { a.write(AccessMap::new()) };
}

/// SET_BAR_MODE: 0 or a negative errno with a reason.
///
/// # Safety
/// `a` is an initialised map, `bm` valid, `reason` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_access_set_mode(
    a: *mut AccessMap,
    bm: *const pciem_bar_mode,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(a), Some(bm)) = (unsafe { m(a) }, unsafe { r(bm) }) else {
        return null(reason);
    };
    match a.set_mode_abi(bm) {
        Ok(()) => 0,
        Err(e) => fail(reason, build_error(e)),
    }
}

/// ADD_TRAP_RANGE: 0 or a negative errno with a reason.
///
/// # Safety
/// As [`pciem_rs_access_set_mode`].
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_access_add_range(
    a: *mut AccessMap,
    tr: *const pciem_trap_range,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(a), Some(tr)) = (unsafe { m(a) }, unsafe { r(tr) }) else {
        return null(reason);
    };
    match a.add_range_abi(tr) {
        Ok(()) => 0,
        Err(e) => fail(reason, build_error(e)),
    }
}

/// REGISTER: every trapped BAR exists and every range lies inside its BAR,
/// given the BAR sizes (0: no BAR in that slot).
///
/// # Safety
/// `a` is an initialised map, `sizes` points to `PCIEM_MAX_BARS` values.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_access_check(
    a: *const AccessMap,
    sizes: *const u64,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(a) = (unsafe { r(a) }) else {
        return null(reason);
    };
    if sizes.is_null() {
        return null(reason);
    }
    // SAFETY: the caller passes PCIEM_MAX_BARS readable values.
    let sizes = unsafe { core::slice::from_raw_parts(sizes, PCIEM_MAX_BARS as usize) };
    let size = |bar: u8| sizes.get(bar as usize).copied().filter(|&s| s != 0);
    match a.check_with(size) {
        Ok(()) => 0,
        Err(e) => fail(reason, build_error(e)),
    }
}

/// The `PCIEM_TRAP_*` flags that govern an access of `width` bytes at
/// `offset` of BAR `bar` (the union of every range it touches).
///
/// # Safety
/// `a` is an initialised map or NULL (then 0).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_access_classify(
    a: *const AccessMap,
    bar: u32,
    offset: u64,
    width: u32,
) -> u32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(a) = (unsafe { r(a) }) else {
        return 0;
    };
    let (Ok(bar), Ok(width)) = (u8::try_from(bar), u8::try_from(width)) else {
        return 0;
    };
    a.classify(bar, offset, width).to_flags()
}
