//! The extern "C" face of pciem-core for the kernel module: every function
//! declared in `kernel/rust/pciem_rs.h`, each a thin wrapper that checks
//! its pointers, calls the same pciem-core code userspace uses, and turns a
//! typed error into a negative errno plus a static reason string.
//!
//! Built for `x86_64-unknown-none` (soft-float, no red zone, kernel code
//! model) with `panic = "abort"`; no function here can panic on any input,
//! and the panic handler exists only to satisfy the language: it reports
//! through the module and stops the thread.
#![no_std]

mod access;
mod dmacheck;
mod emulate;
mod faultplan;

use core::ffi::{c_char, c_void};
use core::ptr::NonNull;

use pciem_abi::{
    pciem_bar_config, pciem_cap_config, pciem_config_image, pciem_config_space, pciem_dma_indirect,
    pciem_event, pciem_shared_ring,
};
use pciem_core::config::{root_port, validate_image, BuildError, ConfigBuilder};
use pciem_core::interrupt::{msix_held, msix_pba_update, msix_pba_word, resolve_auto, Enabled};
use pciem_core::prp::{for_each_segment, Prp, PrpError};
use pciem_core::ring::{Producer, SharedRing};
use pciem_core::transfer::check_buffer;
use pciem_core::watch;
use pciem_core::{AtomicOp, ConfigSpace};

const EINVAL: i32 = 22;
const ENOENT: i32 = 2;
const ENOSPC: i32 = 28;
const EEXIST: i32 = 17;
const EFAULT: i32 = 14;
const E2BIG: i32 = 7;
const ELOOP: i32 = 40;

/// The virtual root port's identity: PCIem's test vendor, a device ID of
/// its own.
const PORT_VENDOR_ID: u16 = 0x1f0c;
const PORT_DEVICE_ID: u16 = 0x7e0f;

/// A static, NUL-terminated reason for the kernel log.
macro_rules! cstr {
    ($s:expr) => {
        concat!($s, "\0").as_ptr() as *const c_char
    };
}

/// Hand a static NUL-terminated reason to the caller.
fn say(reason: *mut *const c_char, msg: *const c_char) {
    if !reason.is_null() {
        // SAFETY: the C caller passes either NULL (checked) or a valid
        // pointer to a `const char *` it owns, per pciem_rs.h.
        unsafe { *reason = msg };
    }
}

/// The errno and static reason of a builder error.
fn build_error(e: BuildError) -> (i32, *const c_char) {
    let errno = match e {
        BuildError::TooManyCapabilities(_)
        | BuildError::Overflow(_)
        | BuildError::TooManyTrapRanges(_) => ENOSPC,
        BuildError::TrapRangeOverlap { .. } => EEXIST,
        BuildError::VendorDataTooLong(_) => E2BIG,
        _ => EINVAL,
    };
    (errno, e.reason().as_ptr())
}

fn fail(reason: *mut *const c_char, (errno, msg): (i32, *const c_char)) -> i32 {
    say(reason, msg);
    -errno
}

fn null(reason: *mut *const c_char) -> i32 {
    fail(reason, (EFAULT, cstr!("NULL pointer passed to pciem_rs")))
}

/// A device-initiated transfer's length and buffer (pciem-core's
/// `transfer::check_buffer`, the rule the mock backend applies too).
#[no_mangle]
pub extern "C" fn pciem_rs_dma_check_len(addr: u64, len: u64, reason: *mut *const c_char) -> i32 {
    match check_buffer(addr, len) {
        Ok(()) => 0,
        Err(e) => fail(reason, (EINVAL, e.reason().as_ptr())),
    }
}

/// The interrupt `PCIEM_IRQ_AUTO` stands for (pciem-core's
/// `interrupt::resolve_auto`, the choice the mock backend makes too).
///
/// # Safety
/// Pointers valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_irq_auto(
    vector: u32,
    msix: u32,
    msi: u32,
    intx: u32,
    kind: *mut u32,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(kind) = (unsafe { m(kind) }) else {
        return null(reason);
    };
    let enabled = Enabled {
        msix: msix != 0,
        msi: msi != 0,
        intx: intx != 0,
    };
    match resolve_auto(vector, enabled) {
        Ok(irq) => {
            *kind = irq.to_abi().kind;
            0
        }
        Err(e) => fail(reason, (e.errno(), e.reason().as_ptr())),
    }
}

/// A watched register's width (1, 2, 4, 8) and alignment (pciem-core's
/// `watch::check_shape`, the backends' rule too).
#[no_mangle]
pub extern "C" fn pciem_rs_watch_check_shape(
    offset: u32,
    width: u32,
    reason: *mut *const c_char,
) -> i32 {
    match watch::check_shape(u64::from(offset), u64::from(width)) {
        Ok(()) => 0,
        Err(e) => fail(reason, (EINVAL, e.reason().as_ptr())),
    }
}

/// A watched register inside its BAR of `bar_size` bytes (0: none).
#[no_mangle]
pub extern "C" fn pciem_rs_watch_check_in_bar(
    offset: u32,
    width: u32,
    bar_size: u64,
    reason: *mut *const c_char,
) -> i32 {
    match watch::check_in_bar(u64::from(offset), u64::from(width), bar_size) {
        Ok(()) => 0,
        Err(e) => fail(reason, (EINVAL, e.reason().as_ptr())),
    }
}

/// A new watch on BAR `bar` + `offset` beside the `n_held` watches the
/// device holds (`held_bars[i]`, `held_offsets[i]`): -EEXIST if one names
/// the same register, -ENOSPC if every debug register is taken
/// (pciem-core's `watch::check_addition`, which the backends' list check
/// uses too).
///
/// # Safety
/// `held_bars` and `held_offsets` point to `n_held` u32 each (or are NULL
/// with `n_held` 0), per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_watch_check_addition(
    held_bars: *const u32,
    held_offsets: *const u32,
    n_held: u32,
    bar: u32,
    offset: u32,
    reason: *mut *const c_char,
) -> i32 {
    let n = n_held as usize;
    if n > 0 && (held_bars.is_null() || held_offsets.is_null()) {
        return null(reason);
    }
    if n > pciem_abi::PCIEM_MAX_WATCHPOINTS as usize {
        return fail(reason, (EINVAL, cstr!("more held watches than slots")));
    }
    let (bars, offsets): (&[u32], &[u32]) = if n == 0 {
        (&[], &[])
    } else {
        // SAFETY: both pointers are non-NULL (checked) and, per
        // pciem_rs.h, point to `n_held` initialised u32 each that the
        // caller does not change during the call; `n_held` is at most
        // PCIEM_MAX_WATCHPOINTS (checked).
        unsafe {
            (
                core::slice::from_raw_parts(held_bars, n),
                core::slice::from_raw_parts(held_offsets, n),
            )
        }
    };
    let held = bars
        .iter()
        .zip(offsets)
        .map(|(&b, &o)| (b.min(u8::MAX as u32) as u8, u64::from(o)));
    match watch::check_addition(held, bar.min(u8::MAX as u32) as u8, u64::from(offset)) {
        Ok(()) => 0,
        Err(e) => fail(reason, (e.errno(), e.reason().as_ptr())),
    }
}

/// Whether an MSI-X entry is held in the PBA (pciem-core's
/// `interrupt::msix_held`, the mock backend's rule too).
#[no_mangle]
pub extern "C" fn pciem_rs_msix_held(function_mask: u32, vector_ctrl: u32) -> u32 {
    msix_held(function_mask != 0, vector_ctrl) as u32
}

/// Byte offset in the PBA of the word holding `entry`'s pending bit.
#[no_mangle]
pub extern "C" fn pciem_rs_msix_pba_word(entry: u32) -> u64 {
    msix_pba_word(entry)
}

/// The PBA word with `entry`'s pending bit set or cleared.
#[no_mangle]
pub extern "C" fn pciem_rs_msix_pba_update(word: u64, entry: u32, pending: u32) -> u64 {
    msix_pba_update(word, entry, pending != 0)
}

/// Size of the opaque builder.
#[no_mangle]
pub extern "C" fn pciem_rs_builder_size() -> usize {
    core::mem::size_of::<ConfigBuilder>()
}

/// Initialise a builder in caller-provided memory.
///
/// # Safety
/// `b` points to `pciem_rs_builder_size()` writable bytes aligned to 8.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_builder_init(b: *mut ConfigBuilder) {
    if b.is_null() || b.align_offset(core::mem::align_of::<ConfigBuilder>()) != 0 {
        return;
    }
    // SAFETY: the caller provides writable, aligned memory of the builder's
    // size (checked non-null and aligned above); `write` does not read or
    // drop the old contents.
    unsafe { b.write(ConfigBuilder::new(0, 0)) };
}

/// Borrow a C pointer as a reference, or fail with EFAULT.
///
/// # Safety
/// A non-null `p` must be valid for the returned lifetime.
unsafe fn r<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: forwarded to the caller.
    unsafe { p.as_ref() }
}

/// # Safety
/// A non-null `p` must be valid and unaliased for the returned lifetime.
unsafe fn m<'a, T>(p: *mut T) -> Option<&'a mut T> {
    // SAFETY: forwarded to the caller.
    unsafe { p.as_mut() }
}

/// Set the identity (SET_CONFIG).
///
/// # Safety
/// Pointers valid per pciem_rs.h; `b` initialised by `pciem_rs_builder_init`.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_builder_set_identity(
    b: *mut ConfigBuilder,
    id: *const pciem_config_space,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(b), Some(id)) = (unsafe { m(b) }, unsafe { r(id) }) else {
        return null(reason);
    };
    match b.identity(id) {
        Ok(_) => 0,
        Err(e) => fail(reason, build_error(e)),
    }
}

/// Add a BAR (ADD_BAR).
///
/// # Safety
/// As for `pciem_rs_builder_set_identity`.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_builder_add_bar(
    b: *mut ConfigBuilder,
    bar: *const pciem_bar_config,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(b), Some(bar)) = (unsafe { m(b) }, unsafe { r(bar) }) else {
        return null(reason);
    };
    match b.add_bar_abi(bar) {
        Ok(_) => 0,
        Err(e) => fail(reason, build_error(e)),
    }
}

/// Add a capability (ADD_CAPABILITY).
///
/// # Safety
/// As for `pciem_rs_builder_set_identity`.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_builder_add_cap(
    b: *mut ConfigBuilder,
    cap: *const pciem_cap_config,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(b), Some(cap)) = (unsafe { m(b) }, unsafe { r(cap) }) else {
        return null(reason);
    };
    match b.add_capability_abi(cap) {
        Ok(_) => 0,
        Err(e) => fail(reason, build_error(e)),
    }
}

/// Lay the configuration space out.
///
/// # Safety
/// As for `pciem_rs_builder_set_identity`; `out` is a writable image.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_builder_build(
    b: *const ConfigBuilder,
    out: *mut pciem_config_image,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(b), Some(out)) = (unsafe { r(b) }, unsafe { m(out) }) else {
        return null(reason);
    };
    match b.build_into(ConfigSpace::from_image_mut(out)) {
        Ok(()) => 0,
        Err(e) => fail(reason, build_error(e)),
    }
}

/// Validate an image handed over whole.
///
/// # Safety
/// `img` valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_image_validate(
    img: *const pciem_config_image,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(img) = (unsafe { r(img) }) else {
        return null(reason);
    };
    match validate_image(img) {
        Ok(()) => 0,
        Err(e) => fail(reason, build_error(e)),
    }
}

fn narrow(where_: u32, size: u32) -> Option<(u16, u8)> {
    Some((u16::try_from(where_).ok()?, u8::try_from(size).ok()?))
}

/// Host configuration read.
///
/// # Safety
/// Pointers valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_cfg_read(
    img: *const pciem_config_image,
    where_: u32,
    size: u32,
    val: *mut u32,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(img), Some(val)) = (unsafe { r(img) }, unsafe { m(val) }) else {
        return null(reason);
    };
    let access = cstr!("config access out of range or of a bad size");
    let Some((off, sz)) = narrow(where_, size) else {
        return fail(reason, (EINVAL, access));
    };
    match ConfigSpace::from_image_ref(img).read(off, sz) {
        Ok(v) => {
            *val = v;
            0
        }
        Err(_) => fail(reason, (EINVAL, access)),
    }
}

/// Host configuration write.
///
/// # Safety
/// Pointers valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_cfg_write(
    img: *mut pciem_config_image,
    where_: u32,
    size: u32,
    val: u32,
    effects: *mut u32,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(img), Some(effects)) = (unsafe { m(img) }, unsafe { m(effects) }) else {
        return null(reason);
    };
    let access = cstr!("config access out of range or of a bad size");
    let Some((off, sz)) = narrow(where_, size) else {
        return fail(reason, (EINVAL, access));
    };
    match ConfigSpace::from_image_mut(img).write(off, sz, val) {
        Ok(fx) => {
            *effects = fx.bits();
            0
        }
        Err(_) => fail(reason, (EINVAL, access)),
    }
}

/// BAR size and flags.
///
/// # Safety
/// Pointers valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_bar_info(
    img: *const pciem_config_image,
    index: u32,
    size: *mut u64,
    flags: *mut u32,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(img), Some(size), Some(flags)) =
        (unsafe { r(img) }, unsafe { m(size) }, unsafe { m(flags) })
    else {
        return null(reason);
    };
    let bar = u8::try_from(index)
        .ok()
        .and_then(|i| ConfigSpace::from_image_ref(img).bar(i));
    match bar {
        Some(b) => {
            *size = b.size;
            *flags = b.flags.bits();
            0
        }
        None => fail(reason, (ENOENT, cstr!("no such BAR"))),
    }
}

/// Program a BAR's address (device side).
///
/// # Safety
/// Pointers valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_bar_set_address(
    img: *mut pciem_config_image,
    index: u32,
    addr: u64,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(img) = (unsafe { m(img) }) else {
        return null(reason);
    };
    let Ok(i) = u8::try_from(index) else {
        return fail(reason, (ENOENT, cstr!("no such BAR")));
    };
    match ConfigSpace::from_image_mut(img).set_bar_address(i, addr) {
        Ok(()) => 0,
        Err(e) => fail(reason, build_error(e)),
    }
}

/// `struct pciem_rs_msi`.
#[repr(C)]
pub struct PciemRsMsi {
    cap_offset: u32,
    enabled: u32,
    vectors_enabled: u32,
    per_vector_mask: u32,
    mask: u32,
    pending: u32,
    address: u64,
    data: u32,
    reserved: u32,
}

// Pinned against the same numbers in pciem_rs.h.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<PciemRsMsi>() == 40);
    assert!(offset_of!(PciemRsMsi, cap_offset) == 0);
    assert!(offset_of!(PciemRsMsi, enabled) == 4);
    assert!(offset_of!(PciemRsMsi, vectors_enabled) == 8);
    assert!(offset_of!(PciemRsMsi, per_vector_mask) == 12);
    assert!(offset_of!(PciemRsMsi, mask) == 16);
    assert!(offset_of!(PciemRsMsi, pending) == 20);
    assert!(offset_of!(PciemRsMsi, address) == 24);
    assert!(offset_of!(PciemRsMsi, data) == 32);
    assert!(offset_of!(PciemRsMsi, reserved) == 36);
};

/// MSI state.
///
/// # Safety
/// Pointers valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_msi_state(
    img: *const pciem_config_image,
    out: *mut PciemRsMsi,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(img), Some(out)) = (unsafe { r(img) }, unsafe { m(out) }) else {
        return null(reason);
    };
    let Some(s) = ConfigSpace::from_image_ref(img).msi() else {
        return fail(reason, (ENOENT, cstr!("device has no MSI capability")));
    };
    *out = PciemRsMsi {
        cap_offset: s.offset as u32,
        enabled: s.enabled as u32,
        vectors_enabled: s.vectors_enabled,
        per_vector_mask: s.per_vector_mask as u32,
        mask: s.mask,
        pending: s.pending,
        address: s.address,
        data: s.data as u32,
        reserved: 0,
    };
    0
}

/// Function reset keeping the BAR registers (pciem-core's
/// `ConfigSpace::reset_keeping_bars`, the mock backend's reset too).
///
/// # Safety
/// Pointers valid per pciem_rs.h (either NULL: nothing happens).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_cfg_reset(
    img: *mut pciem_config_image,
    initial: *const pciem_config_image,
) {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h); the
    // two images are distinct allocations.
    if let (Some(img), Some(initial)) = (unsafe { m(img) }, unsafe { r(initial) }) {
        ConfigSpace::from_image_mut(img).reset_keeping_bars(ConfigSpace::from_image_ref(initial));
    }
}

/// Hold MSI `vector` pending if it is masked (pciem-core's rule, the
/// mock backend's too): 1 if held, 0 if it is to be delivered now.
///
/// # Safety
/// `img` valid per pciem_rs.h (NULL: 0).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_msi_hold_if_masked(
    img: *mut pciem_config_image,
    vector: u32,
) -> u32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(img) = (unsafe { m(img) }) else {
        return 0;
    };
    ConfigSpace::from_image_mut(img).msi_hold_if_masked(vector) as u32
}

/// The MSI vectors pending and no longer masked, their Pending bits
/// cleared (a bit each).
///
/// # Safety
/// `img` valid per pciem_rs.h (NULL: 0).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_msi_take_unmasked(img: *mut pciem_config_image) -> u32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(img) = (unsafe { m(img) }) else {
        return 0;
    };
    ConfigSpace::from_image_mut(img).msi_take_unmasked()
}

/// Initialise a ring producer.
///
/// # Safety
/// `p` points to a writable `struct pciem_rs_producer`.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_producer_init(p: *mut Producer) {
    if !p.is_null() {
        // SAFETY: non-null, and the caller's contract makes it writable and
        // aligned; Producer has the layout of struct pciem_rs_producer.
        unsafe { p.write(Producer::new()) };
    }
}

/// Publish one event.
///
/// # Safety
/// `ring` is the shared ring the kernel allocated (valid for its whole
/// size); `p` the device's producer; callers serialise pushes.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_ring_push(
    ring: *mut pciem_shared_ring,
    p: *mut Producer,
    ev: *const pciem_event,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(ring), Some(p), Some(ev)) = (NonNull::new(ring), unsafe { m(p) }, unsafe { r(ev) })
    else {
        return null(reason);
    };
    // SAFETY: the ring memory is valid and aligned for as long as the
    // device exists, which outlives this call (caller's contract).
    let shared = unsafe { SharedRing::from_raw(ring) };
    match p.push(&shared, ev) {
        Ok(_) => 0,
        Err(_) => fail(
            reason,
            (ENOSPC, cstr!("event ring full: event counted in overflow")),
        ),
    }
}

/// After a push: 1 if the consumer needs the eventfd signalled, 0 if it
/// said it is draining (pciem-core's `SharedRing::consumer_needs_signal`).
///
/// # Safety
/// `ring` is NULL (then 1) or the device's live ring.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_ring_needs_signal(ring: *mut pciem_shared_ring) -> u32 {
    let Some(ring) = NonNull::new(ring) else {
        return 1;
    };
    // SAFETY: the ring memory is valid and aligned for as long as the
    // device exists, which outlives this call (caller's contract).
    let shared: SharedRing = unsafe { SharedRing::from_raw(ring) };
    u32::from(shared.consumer_needs_signal())
}

/// The value memory holds after atomic `op` (a `PCIEM_ATOMIC_*`), given the
/// value `old` before it: pciem-core's `AtomicOp::apply`, which the mock
/// backend runs too.
///
/// # Safety
/// Pointers valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_atomic_apply(
    op: u32,
    operand: u64,
    compare: u64,
    old: u64,
    new: *mut u64,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(new) = (unsafe { m(new) }) else {
        return null(reason);
    };
    match AtomicOp::from_abi(op, operand, compare) {
        Some(a) => {
            *new = a.apply(old);
            0
        }
        None => fail(reason, (EINVAL, cstr!("unknown atomic op"))),
    }
}

/// `read_list` callback of `pciem_rs_prp_walk`: fill `len` bytes at `buf`
/// with host memory at bus address `addr`; 0 or a negative errno.
pub type PrpReadList =
    unsafe extern "C" fn(ctx: *mut c_void, addr: u64, buf: *mut u8, len: u32) -> i32;

/// `segment` callback of `pciem_rs_prp_walk`: bytes `pos..pos + len` of the
/// transfer live at bus address `addr`; 0 or a negative errno.
pub type PrpSegment = unsafe extern "C" fn(ctx: *mut c_void, pos: u64, addr: u64, len: u64) -> i32;

/// Why a PRP walk stopped.
enum WalkError {
    /// The description is malformed.
    Prp(PrpError),
    /// A callback failed with this (negative) errno.
    Callback(i32),
}

impl From<PrpError> for WalkError {
    fn from(e: PrpError) -> Self {
        WalkError::Prp(e)
    }
}

/// The errno and static reason of a malformed PRP description.
fn prp_error(e: PrpError) -> (i32, *const c_char) {
    match e {
        PrpError::Loop(_) => (
            ELOOP,
            cstr!("PRP list chains back to a list page already walked"),
        ),
        PrpError::TooManyLists(_) => (
            E2BIG,
            cstr!("PRP list chain longer than any valid transfer needs"),
        ),
        PrpError::Empty => (EINVAL, cstr!("zero-length transfer")),
        PrpError::TooLong(_) => (EINVAL, cstr!("transfer longer than PCIEM_DMA_MAX_LEN")),
        PrpError::BadPageSize(_) => (
            EINVAL,
            cstr!("page size not a power of two from 4096 to 128 MiB"),
        ),
        PrpError::Misaligned { .. } => (EINVAL, cstr!("PRP entry misaligned for its role")),
        _ => (EINVAL, cstr!("malformed PRP description")),
    }
}

/// Walk the PRP description of `req` with pciem-core's walker, calling
/// `read_list` for list entries and `segment` for each data segment in
/// transfer order.
///
/// # Safety
/// Pointers valid per pciem_rs.h; the callbacks are safe to call with
/// `ctx` and with buffers the walker owns.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_prp_walk(
    req: *const pciem_dma_indirect,
    ctx: *mut c_void,
    read_list: Option<PrpReadList>,
    segment: Option<PrpSegment>,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(req), Some(read_list), Some(segment)) = (unsafe { r(req) }, read_list, segment)
    else {
        return null(reason);
    };
    let prp = Prp {
        prp1: req.prp1,
        prp2: req.prp2,
        page_size: req.page_size,
    };
    let walked = for_each_segment(
        prp,
        req.length,
        |addr, bytes: &mut [u8]| {
            let len = u32::try_from(bytes.len()).map_err(|_| WalkError::Callback(-EINVAL))?;
            // SAFETY: `bytes` is a live, writable buffer of `len` bytes owned
            // by the walker; the callback fills at most `len` bytes of it.
            match unsafe { read_list(ctx, addr, bytes.as_mut_ptr(), len) } {
                0 => Ok(()),
                e => Err(WalkError::Callback(e)),
            }
        },
        |pos, addr, len| {
            // SAFETY: plain values; the callback's contract is the caller's.
            match unsafe { segment(ctx, pos, addr, len) } {
                0 => Ok(()),
                e => Err(WalkError::Callback(e)),
            }
        },
    );
    match walked {
        Ok(()) => 0,
        Err(WalkError::Prp(e)) => fail(reason, prp_error(e)),
        Err(WalkError::Callback(e)) => {
            say(reason, cstr!("PRP list or data access failed"));
            if e < 0 {
                e
            } else {
                -EINVAL
            }
        }
    }
}

#[cfg(not(test))]
extern "C" {
    fn pciem_rs_panic(file: *const u8, file_len: u32, line: u32);
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    // SAFETY: pciem_rs_panic is the module's C reporter; it reads `file_len`
    // bytes from `file`, which is a valid &str, and does not return.
    unsafe { pciem_rs_panic(file.as_ptr(), file.len() as u32, line) };
    loop {
        core::hint::spin_loop();
    }
}

/// `struct pciem_rs_msix`.
#[repr(C)]
pub struct PciemRsMsix {
    cap_offset: u32,
    enabled: u32,
    function_mask: u32,
    table_size: u32,
    table_bar: u32,
    table_offset: u32,
    pba_bar: u32,
    pba_offset: u32,
}

// Pinned against the same numbers in pciem_rs.h.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<PciemRsMsix>() == 32);
    assert!(offset_of!(PciemRsMsix, cap_offset) == 0);
    assert!(offset_of!(PciemRsMsix, enabled) == 4);
    assert!(offset_of!(PciemRsMsix, function_mask) == 8);
    assert!(offset_of!(PciemRsMsix, table_size) == 12);
    assert!(offset_of!(PciemRsMsix, table_bar) == 16);
    assert!(offset_of!(PciemRsMsix, table_offset) == 20);
    assert!(offset_of!(PciemRsMsix, pba_bar) == 24);
    assert!(offset_of!(PciemRsMsix, pba_offset) == 28);
};

// PCIEM_RS_EFFECT_* in pciem_rs.h are these bits, value for value; the
// producer's layout is pinned in pciem-core (its fields are private there).
const _: () = {
    use pciem_core::config::WriteEffects as W;
    assert!(W::CHANGED.bits() == 0x01);
    assert!(W::COMMAND.bits() == 0x02);
    assert!(W::BAR.bits() == 0x04);
    assert!(W::MSI.bits() == 0x08);
    assert!(W::MSIX.bits() == 0x10);
    assert!(W::PM_STATE.bits() == 0x20);
    assert!(W::FLR.bits() == 0x40);
    assert!(W::D3HOT_TO_D0_RESET.bits() == 0x80);
    assert!(W::all().bits() == 0xff);
    assert!(core::mem::size_of::<Producer>() == 32);
};

/// MSI-X capability state (the table and PBA live in BAR memory).
///
/// # Safety
/// Pointers valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_msix_state(
    img: *const pciem_config_image,
    out: *mut PciemRsMsix,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(img), Some(out)) = (unsafe { r(img) }, unsafe { m(out) }) else {
        return null(reason);
    };
    let Some(s) = ConfigSpace::from_image_ref(img).msix() else {
        return fail(reason, (ENOENT, cstr!("device has no MSI-X capability")));
    };
    *out = PciemRsMsix {
        cap_offset: s.offset as u32,
        enabled: s.enabled as u32,
        function_mask: s.function_mask as u32,
        table_size: s.table_size,
        table_bar: s.table_bar as u32,
        table_offset: s.table_offset,
        pba_bar: s.pba_bar as u32,
        pba_offset: s.pba_offset,
    };
    0
}

/// Set or clear the status register's Interrupt Status bit (INTx line).
///
/// # Safety
/// `img` valid per pciem_rs.h (a NULL `img` is ignored).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_set_intx_status(img: *mut pciem_config_image, asserted: u32) {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    if let Some(img) = unsafe { m(img) } {
        ConfigSpace::from_image_mut(img).set_intx_status(asserted != 0);
    }
}

/// The root port's configuration space (see pciem_rs.h).
///
/// # Safety
/// Pointers valid per pciem_rs.h.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_root_port_build(
    img: *mut pciem_config_image,
    slot: u16,
    secondary: u8,
    mem_base: u32,
    mem_limit: u32,
    aer: u32,
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let Some(img) = (unsafe { m(img) }) else {
        return null(reason);
    };
    if secondary == 0
        || mem_base & 0xF_FFFF != 0
        || mem_limit & 0xF_FFFF != 0xF_FFFF
        || mem_limit < mem_base
    {
        return fail(
            reason,
            (
                EINVAL,
                cstr!("root port: bus 0 below it, or a window not 1 MiB granular"),
            ),
        );
    }
    let port = root_port::build(&root_port::RootPort {
        vendor_id: PORT_VENDOR_ID,
        device_id: PORT_DEVICE_ID,
        slot,
        secondary,
        mem_base,
        mem_limit,
        aer: aer != 0,
    });
    *img = port.into_image();
    0
}

fn severity(raw: u32) -> Option<root_port::Severity> {
    match raw {
        0 => Some(root_port::Severity::Correctable),
        1 => Some(root_port::Severity::NonFatal),
        2 => Some(root_port::Severity::Fatal),
        _ => None,
    }
}

/// Records an AER error in the reporting device's space (see pciem_rs.h).
///
/// # Safety
/// Pointers valid per pciem_rs.h; `header` points to four u32.
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_aer_record(
    img: *mut pciem_config_image,
    sev: u32,
    status: u32,
    header: *const [u32; 4],
    reason: *mut *const c_char,
) -> i32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    let (Some(img), Some(header)) = (unsafe { m(img) }, unsafe { r(header) }) else {
        return null(reason);
    };
    let Some(sev) = severity(sev) else {
        return fail(reason, (EINVAL, cstr!("severity must be 0, 1 or 2")));
    };
    match root_port::record_error(ConfigSpace::from_image_mut(img), sev, status, *header) {
        Ok(()) => 0,
        Err(root_port::RecordError::NoAer) => fail(
            reason,
            (ENOENT, cstr!("the device has no AER capability")),
        ),
        Err(_) => fail(
            reason,
            (
                EINVAL,
                cstr!("status must be one or more error bits the AER capability implements for that severity"),
            ),
        ),
    }
}

/// Records an error message at the root port; 1 if its interrupt is due.
///
/// # Safety
/// `img` valid per pciem_rs.h (a NULL `img` is ignored).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_aer_report(
    img: *mut pciem_config_image,
    sev: u32,
    source: u16,
) -> u32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    match (unsafe { m(img) }, severity(sev)) {
        (Some(img), Some(sev)) => {
            root_port::report_error(ConfigSpace::from_image_mut(img), sev, source) as u32
        }
        _ => 0,
    }
}

/// The root port's slot presence; 1 if its hot-plug interrupt is due.
///
/// # Safety
/// `img` valid per pciem_rs.h (a NULL `img` is ignored).
#[no_mangle]
pub unsafe extern "C" fn pciem_rs_root_port_presence(
    img: *mut pciem_config_image,
    present: u32,
) -> u32 {
    // SAFETY: pointer validity is the caller's contract (pciem_rs.h).
    match unsafe { m(img) } {
        Some(img) => root_port::set_presence(ConfigSpace::from_image_mut(img), present != 0) as u32,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    //! The shim's DMA entry points on the host: errno mapping and the C
    //! callback plumbing (the walk itself is tested in pciem-core).
    extern crate std;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    use super::*;

    const ENXIO: i32 = 6;

    #[test]
    fn watch_addition_maps_each_refusal_to_its_errno() {
        let mut reason: *const c_char = core::ptr::null();
        let bars = [0u32, 0, 2];
        let offsets = [0u32, 8, 0];
        let check = |n: u32, bar: u32, offset: u32, reason: &mut *const c_char| {
            // SAFETY: the arrays hold 3 entries and n is at most 3.
            unsafe {
                pciem_rs_watch_check_addition(
                    bars.as_ptr(),
                    offsets.as_ptr(),
                    n,
                    bar,
                    offset,
                    reason,
                )
            }
        };
        assert_eq!(check(3, 0, 4, &mut reason), 0);
        assert_eq!(check(3, 0, 8, &mut reason), -EEXIST);
        assert!(!reason.is_null());
        let four = [0u32; 4];
        let offs = [0u32, 4, 8, 12];
        // SAFETY: both arrays hold 4 entries.
        let full = unsafe {
            pciem_rs_watch_check_addition(four.as_ptr(), offs.as_ptr(), 4, 0, 16, &mut reason)
        };
        assert_eq!(full, -ENOSPC);
        // SAFETY: NULL arrays are checked before any read.
        let null = unsafe {
            pciem_rs_watch_check_addition(
                core::ptr::null(),
                core::ptr::null(),
                1,
                0,
                0,
                &mut reason,
            )
        };
        assert_eq!(null, -EFAULT);
        // SAFETY: n_held 0 reads nothing, NULL is fine.
        let empty = unsafe {
            pciem_rs_watch_check_addition(
                core::ptr::null(),
                core::ptr::null(),
                0,
                0,
                0,
                &mut reason,
            )
        };
        assert_eq!(empty, 0);
    }

    #[test]
    fn atomic_apply_computes_and_rejects_unknown_ops() {
        let mut new = 0u64;
        let mut reason: *const c_char = core::ptr::null();
        // SAFETY: valid pointers to locals.
        let ok = unsafe {
            pciem_rs_atomic_apply(
                pciem_abi::PCIEM_ATOMIC_FETCH_SUB,
                7,
                0,
                5,
                &mut new,
                &mut reason,
            )
        };
        assert_eq!((ok, new), (0, u64::MAX - 1));
        // SAFETY: as above.
        let ok = unsafe {
            pciem_rs_atomic_apply(pciem_abi::PCIEM_ATOMIC_CAS, 9, 5, 5, &mut new, &mut reason)
        };
        assert_eq!((ok, new), (0, 9));
        // SAFETY: as above.
        let bad = unsafe { pciem_rs_atomic_apply(0, 1, 0, 5, &mut new, &mut reason) };
        assert_eq!(bad, -EINVAL);
        assert!(!reason.is_null());
    }

    /// Host memory of list pages (page -> little-endian entries) and the
    /// segments seen, behind the C callbacks' `ctx`.
    struct Host {
        lists: BTreeMap<u64, Vec<u64>>,
        segments: Vec<(u64, u64, u64)>,
        fail_at: Option<u64>,
    }

    unsafe extern "C" fn read_list(ctx: *mut c_void, addr: u64, buf: *mut u8, len: u32) -> i32 {
        // SAFETY: the tests pass a live `Host` as ctx, and the walker a
        // buffer of `len` bytes.
        let (host, buf) = unsafe {
            (
                &*(ctx as *const Host),
                core::slice::from_raw_parts_mut(buf, len as usize),
            )
        };
        let Some(entries) = host.lists.get(&(addr & !4095)) else {
            return -ENXIO;
        };
        let first = ((addr & 4095) / 8) as usize;
        for (i, c) in buf.chunks_exact_mut(8).enumerate() {
            c.copy_from_slice(&entries.get(first + i).copied().unwrap_or(0).to_le_bytes());
        }
        0
    }

    unsafe extern "C" fn segment(ctx: *mut c_void, pos: u64, addr: u64, len: u64) -> i32 {
        // SAFETY: the tests pass a live, unaliased `Host` as ctx.
        let host = unsafe { &mut *(ctx as *mut Host) };
        if host.fail_at == Some(addr) {
            return -ENXIO;
        }
        host.segments.push((pos, addr, len));
        0
    }

    fn walk(host: &mut Host, prp1: u64, prp2: u64, length: u64) -> (i32, *const c_char) {
        let req = pciem_dma_indirect {
            prp1,
            prp2,
            length,
            ..Default::default()
        };
        let mut reason: *const c_char = core::ptr::null();
        // SAFETY: `req`, `host` and `reason` are live locals; the callbacks
        // match the contract.
        let ret = unsafe {
            pciem_rs_prp_walk(
                &req,
                host as *mut Host as *mut c_void,
                Some(read_list),
                Some(segment),
                &mut reason,
            )
        };
        (ret, reason)
    }

    fn host(lists: &[(u64, Vec<u64>)]) -> Host {
        Host {
            lists: lists.iter().cloned().collect(),
            segments: Vec::new(),
            fail_at: None,
        }
    }

    #[test]
    fn prp_walk_follows_a_chained_list() {
        let mut first = std::vec![0u64; 511];
        first[0] = 0x5000;
        first[510] = 0x6000;
        first.push(0x20_0000);
        let mut h = host(&[(0x10_0000, first), (0x20_0000, std::vec![0x7000, 0x8000])]);
        // 511 data entries in the first list page, then two in the second.
        let len = 4096 * 514;
        let (ret, _) = walk(&mut h, 0x1000, 0x10_0000, len);
        assert_eq!(ret, 0);
        assert_eq!(h.segments.len(), 514);
        assert_eq!(h.segments[1], (4096, 0x5000, 4096));
        assert_eq!(h.segments[511], (511 * 4096, 0x6000, 4096));
        assert_eq!(h.segments[513], (513 * 4096, 0x8000, 4096));
    }

    #[test]
    fn prp_walk_maps_errors_to_errnos() {
        let mut looping = std::vec![0x5000u64; 511];
        looping.push(0x10_0000);
        let mut h = host(&[(0x10_0000, looping)]);
        let (ret, reason) = walk(&mut h, 0x1000, 0x10_0000, 4096 * 1000);
        assert_eq!(ret, -ELOOP);
        assert!(!reason.is_null());

        // Every list page holds one data entry and chains to the next.
        let chain: Vec<(u64, Vec<u64>)> = (0..20u64)
            .map(|k| {
                let page = 0x100_0000 + k * 4096;
                let mut e = std::vec![0u64; 510];
                e.extend([0x5000, page + 4096 + 4080]);
                (page, e)
            })
            .collect();
        let mut h = host(&chain);
        let (ret, _) = walk(&mut h, 0x1000, 0x100_0000 + 4080, 4096 * 30);
        assert_eq!(ret, -E2BIG);

        let mut h = host(&[]);
        assert_eq!(walk(&mut h, 0x1000, 0x2001, 8192).0, -EINVAL);
        assert_eq!(walk(&mut h, 0x1000, 0, 0).0, -EINVAL);

        // A callback's errno comes back unchanged, with a reason.
        let mut h = host(&[]);
        h.fail_at = Some(0x3000);
        let (ret, reason) = walk(&mut h, 0x1000, 0x3000, 8192);
        assert_eq!(ret, -ENXIO);
        assert!(!reason.is_null());
        let mut h = host(&[]);
        assert_eq!(walk(&mut h, 0x1000, 0x40_0000, 4096 * 3).0, -ENXIO);
    }
}
