//! DMA checking for the kernel: the module keeps the driver's mappings in
//! its own interval tree and unmap history; pciem-core's
//! [`dmacheck::check`] decides, through two callbacks into that state,
//! whether the model's access is allowed and what kind of violation it is
//! otherwise, so the kernel and the mock backend judge alike.

use core::ffi::c_void;

use pciem_core::dmacheck::{self, Access, Direction, Mapping, Mappings};

/// A mapping as the C side describes it (`struct pciem_rs_dma_map`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RsDmaMap {
    start: u64,
    len: u64,
    dir: u32,
    reserved: u32,
    tag: u64,
}

/// A violation for the C side (`struct pciem_rs_dma_fault`).
#[repr(C)]
pub struct RsDmaFault {
    kind: u32,
    has_culprit: u32,
    first_bad: u64,
    bytes: u64,
    culprit: RsDmaMap,
}

// Pinned against the same numbers in pciem_rs.h.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RsDmaMap>() == 32);
    assert!(offset_of!(RsDmaMap, start) == 0);
    assert!(offset_of!(RsDmaMap, len) == 8);
    assert!(offset_of!(RsDmaMap, dir) == 16);
    assert!(offset_of!(RsDmaMap, reserved) == 20);
    assert!(offset_of!(RsDmaMap, tag) == 24);
    assert!(size_of::<RsDmaFault>() == 56);
    assert!(offset_of!(RsDmaFault, kind) == 0);
    assert!(offset_of!(RsDmaFault, has_culprit) == 4);
    assert!(offset_of!(RsDmaFault, first_bad) == 8);
    assert!(offset_of!(RsDmaFault, bytes) == 16);
    assert!(offset_of!(RsDmaFault, culprit) == 24);
};

/// `visit` callback handed to the C iterator: one live mapping; returns
/// whether to go on.
pub type Visit = unsafe extern "C" fn(vctx: *mut c_void, m: *const RsDmaMap) -> bool;
/// C iterator over the live mappings overlapping `lo..=hi`, in ascending
/// order of start, calling `visit(vctx, m)` until it returns false.
pub type Overlapping =
    unsafe extern "C" fn(ctx: *mut c_void, lo: u64, hi: u64, visit: Visit, vctx: *mut c_void);
/// C lookup of the most recent unmap covering `addr`: fills `out`, returns
/// whether there was one.
pub type UnmappedAt = unsafe extern "C" fn(ctx: *mut c_void, addr: u64, out: *mut RsDmaMap) -> bool;

fn from_c(m: &RsDmaMap) -> Option<Mapping> {
    Some(Mapping {
        start: m.start,
        len: m.len,
        dir: Direction::from_raw(m.dir)?,
        tag: m.tag,
    })
}

fn to_c(m: &Mapping) -> RsDmaMap {
    RsDmaMap {
        start: m.start,
        len: m.len,
        dir: m.dir.raw(),
        reserved: 0,
        tag: m.tag,
    }
}

/// The module's state seen through its two callbacks.
struct CMappings {
    ctx: *mut c_void,
    overlapping: Overlapping,
    unmapped_at: UnmappedAt,
}

/// What the trampoline needs: the closure of [`Mappings::overlapping`].
struct VisitCtx<'a> {
    f: &'a mut dyn FnMut(Mapping) -> bool,
}

unsafe extern "C" fn trampoline(vctx: *mut c_void, m: *const RsDmaMap) -> bool {
    if vctx.is_null() || m.is_null() {
        return false;
    }
    // SAFETY: `vctx` is the `VisitCtx` that `overlapping` below created on
    // its stack and passed to the C iterator, which hands it back unchanged
    // while that call is running; `m` points to a record the iterator owns
    // for the duration of this call (both checked non-null above).
    let (v, m) = unsafe { (&mut *(vctx as *mut VisitCtx<'_>), &*m) };
    match from_c(m) {
        Some(m) => (v.f)(m),
        // A record with a direction the module never stores: skip it.
        None => true,
    }
}

impl Mappings for CMappings {
    fn overlapping(&self, lo: u64, hi: u64, f: &mut dyn FnMut(Mapping) -> bool) {
        let mut v = VisitCtx { f };
        // SAFETY: the callback and `ctx` come from the C caller of
        // `pciem_rs_dma_check`, whose contract (pciem_rs.h) is that they
        // stay valid during that call; `v` outlives this call.
        unsafe {
            (self.overlapping)(
                self.ctx,
                lo,
                hi,
                trampoline,
                &mut v as *mut VisitCtx<'_> as *mut c_void,
            )
        };
    }

    fn unmapped_at(&self, addr: u64) -> Option<Mapping> {
        let mut out = RsDmaMap::default();
        // SAFETY: as above; `out` is a live, writable record.
        if unsafe { (self.unmapped_at)(self.ctx, addr, &mut out) } {
            from_c(&out)
        } else {
            None
        }
    }
}

/// Check the model's `access` (`PCIEM_DMA_ACCESS_*`) of `len` bytes at bus
/// address `addr` against the driver's mappings: 0 when allowed (with
/// `*cover` set to the one mapping that allows it all, or zeroed when it
/// takes several), 1 with `*fault` filled when not, -EINVAL for an unknown
/// access or a NULL pointer.
///
/// # Safety
/// `fault` and `cover` are NULL or writable; the callbacks may be called
/// with `ctx` (and `visit` with its `vctx`) until this function returns.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pciem_rs_dma_check(
    addr: u64,
    len: u64,
    access: u32,
    ctx: *mut c_void,
    overlapping: Option<Overlapping>,
    unmapped_at: Option<UnmappedAt>,
    fault: *mut RsDmaFault,
    cover: *mut RsDmaMap,
) -> i32 {
    let (Some(overlapping), Some(unmapped_at), Some(access)) =
        (overlapping, unmapped_at, Access::from_raw(access))
    else {
        return -super::EINVAL;
    };
    if fault.is_null() || cover.is_null() {
        return -super::EINVAL;
    }
    let maps = CMappings {
        ctx,
        overlapping,
        unmapped_at,
    };
    match dmacheck::check(&maps, addr, len, access) {
        Ok(()) => {
            let one = dmacheck::covering(&maps, addr, len, access);
            // SAFETY: `cover` is non-null (checked) and writable per the
            // contract above.
            unsafe { cover.write(one.as_ref().map(to_c).unwrap_or_default()) };
            0
        }
        Err(f) => {
            let bytes = match f.kind {
                dmacheck::FaultKind::Outside { bytes } => bytes,
                _ => 0,
            };
            let out = RsDmaFault {
                kind: f.kind.raw(),
                has_culprit: u32::from(f.culprit.is_some()),
                first_bad: f.first_bad,
                bytes,
                culprit: f.culprit.as_ref().map(to_c).unwrap_or_default(),
            };
            // SAFETY: `fault` is non-null (checked) and writable per the
            // contract above.
            unsafe { fault.write(out) };
            1
        }
    }
}
