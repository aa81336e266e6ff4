//! `config_space`: arbitrary builder input through the kernel's ABI path
//! (`identity`, `add_bar_abi`, `add_capability_abi`), then an arbitrary
//! sequence of host reads and writes, with the invariants checked after
//! every step.
//!
//! The checker here is independent of `crates/pciem-core/tests/config_props.rs`
//! on purpose: that property test hard-codes one device (its BAR sizes and
//! capability counts), while this one derives every expectation from the
//! fuzzed description, and it re-derives what it checks (capability chain,
//! capability extents, BAR sizing answers) from the raw image with code of
//! its own instead of trusting the library's iterators, so a bug shared by
//! the library and a checker built on it cannot hide.
//!
//! Input format (see [`crate::wire`]):
//!
//! ```text
//! mode u8               even: builder mode; odd: image-patch mode
//! builder mode:
//!   identity            vendor u16, device u16, subsys vendor u16, subsys u16,
//!                       revision u8, class [u8; 3], header type u8, pin u8,
//!                       reserved u16            (pciem_config_space)
//!   items u8            how many items follow (mod 24)
//!   item: kind u8       even: BAR, odd: capability
//!     BAR:              index u8, flags u8, size u8 (< 64: 1 << size,
//!                       else a u64 follows)
//!     capability:       type u8 (mod 11), size u8 (0: the type's payload
//!                       size), offset u16 (0: auto), reserved u8,
//!                       data length u8, data
//! image-patch mode:     patches u8, then per patch: array u8 (config,
//!                       wmask, w1cmask), offset u16, byte u8 applied to
//!                       a rich built device
//! then, until the end:  op kind u8, offset u16, width u8, value u32
//! ```

use pciem_abi::{pciem_bar_config, pciem_cap_config, pciem_config_space, PCIEM_CAP_DATA_MAX};
use pciem_core::config::{
    validate_image, AerCap, Bar, ConfigBuilder, MsiCap, MsixCap, PcieCap, PmCap, WriteEffects,
};
use pciem_core::ConfigSpace;
use zerocopy::FromZeros;

use crate::wire::{Reader, Writer};

const SPACE: usize = 4096;

/// Payload size of each `PCIEM_CAP_*` type (index = type; 0 and 10 are
/// unknown types and get a size anyway, to exercise the type check).
fn payload_size(cap_type: u32) -> u32 {
    use core::mem::size_of;
    use pciem_abi::*;
    (match cap_type {
        PCIEM_CAP_MSI => size_of::<pciem_cap_msi_userspace>(),
        PCIEM_CAP_MSIX => size_of::<pciem_cap_msix_userspace>(),
        PCIEM_CAP_PM => size_of::<pciem_cap_pm_userspace>(),
        PCIEM_CAP_PCIE => size_of::<pciem_cap_pcie_userspace>(),
        PCIEM_CAP_VENDOR => size_of::<pciem_cap_vendor_userspace>(),
        PCIEM_CAP_PASID => size_of::<pciem_cap_pasid_userspace>(),
        PCIEM_CAP_DSN => size_of::<pciem_cap_dsn_userspace>(),
        PCIEM_CAP_VSEC => size_of::<pciem_cap_vsec_userspace>(),
        PCIEM_CAP_AER => size_of::<pciem_cap_aer_userspace>(),
        _ => 8,
    }) as u32
}

/// Run one input; panics (with a reason) on any broken invariant.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    if r.u8() & 1 == 0 {
        builder_mode(&mut r);
    } else {
        patch_mode(&mut r);
    }
}

fn read_identity(r: &mut Reader<'_>) -> pciem_config_space {
    pciem_config_space {
        vendor_id: r.u16(),
        device_id: r.u16(),
        subsys_vendor_id: r.u16(),
        subsys_device_id: r.u16(),
        revision: r.u8(),
        class_code: [r.u8(), r.u8(), r.u8()],
        header_type: r.u8(),
        interrupt_pin: r.u8(),
        reserved: r.u16(),
    }
}

fn read_bar(r: &mut Reader<'_>) -> pciem_bar_config {
    let bar_index = r.u8() as u32;
    let flags = r.u8() as u32;
    let sel = r.u8();
    let size = if sel < 64 { 1u64 << sel } else { r.u64() };
    pciem_bar_config {
        bar_index,
        flags,
        size,
    }
}

fn read_cap(r: &mut Reader<'_>) -> pciem_cap_config {
    let cap_type = (r.u8() % 11) as u32;
    let size = r.u8();
    let offset = r.u16() as u32;
    let reserved = r.u8() as u32;
    let len = r.u8() as usize;
    let mut c = pciem_cap_config::new_zeroed();
    c.cap_type = cap_type;
    c.cap_size = if size == 0 {
        payload_size(cap_type)
    } else {
        size as u32
    };
    c.offset = offset;
    c.reserved = reserved;
    let bytes = r.bytes(len.min(PCIEM_CAP_DATA_MAX));
    c.cap_data[..bytes.len()].copy_from_slice(bytes);
    c
}

/// Build what a builder-mode input describes: the builder, how many of its
/// items it accepted, and whether the identity was accepted.
fn describe(r: &mut Reader<'_>) -> (ConfigBuilder, usize, pciem_config_space, bool) {
    let id = read_identity(r);
    let mut b = ConfigBuilder::new(0, 0);
    let id_ok = b.identity(&id).is_ok();
    let items = r.u8() % 24;
    let mut accepted = 0;
    for _ in 0..items {
        let ok = if r.u8() & 1 == 0 {
            b.add_bar_abi(&read_bar(r)).is_ok()
        } else {
            b.add_capability_abi(&read_cap(r)).is_ok()
        };
        accepted += ok as usize;
    }
    (b, accepted, id, id_ok)
}

/// For a builder-mode input: how many items the builder accepted and
/// whether the whole description built (for checking seeds).
pub fn seed_outcome(data: &[u8]) -> Option<(usize, bool)> {
    let mut r = Reader::new(data);
    if r.u8() & 1 != 0 {
        return None;
    }
    let (b, accepted, _, _) = describe(&mut r);
    Some((accepted, b.build().is_ok()))
}

fn builder_mode(r: &mut Reader<'_>) {
    let (b, _, id, id_ok) = describe(r);
    let Ok(mut space) = b.build() else {
        run_ops(r, &mut ConfigSpace::zeroed(), None);
        return;
    };
    // Whatever the builder accepts, the kernel's image check accepts.
    assert_eq!(validate_image(space.image()), Ok(()), "built image invalid");
    if id_ok {
        assert_eq!(space.vendor_id(), id.vendor_id);
        assert_eq!(space.device_id(), id.device_id);
        assert_eq!(space.read(0x2C, 2).unwrap() as u16, id.subsys_vendor_id);
        assert_eq!(space.read(0x2E, 2).unwrap() as u16, id.subsys_device_id);
        assert_eq!(space.read(0x08, 1).unwrap() as u8, id.revision);
        assert_eq!(space.interrupt_pin(), id.interrupt_pin);
    }
    let declared: [Option<Bar>; 6] = core::array::from_fn(|i| b.bar_at(i as u8));
    let expect = Expect::new(&space, declared);
    expect.check(&space);
    run_ops(r, &mut space, Some(&expect));
}

/// A device with every capability type, to patch.
pub fn rich_device() -> ConfigSpace {
    ConfigBuilder::new(0x1f0c, 0x77)
        .interrupt_pin(1)
        .bar(0, Bar::memory64(64 << 10))
        .bar(2, Bar::memory32(4096))
        .bar(3, Bar::memory64(1 << 20).prefetchable())
        .msi(MsiCap::new(4).maskable(true))
        .msix(MsixCap {
            table_size: 8,
            table_bar: 2,
            table_offset: 0,
            pba_bar: 2,
            pba_offset: 0x100,
        })
        .pm(PmCap {
            pme_support: 0x8,
            d1: true,
            ..PmCap::default()
        })
        .pcie(PcieCap::endpoint(3, 4))
        .vendor(&[1, 2, 3, 4, 5])
        .dsn(7)
        .aer(AerCap::default())
        .vsec(0x42, 1, &[9; 12])
        .build()
        .expect("the rich device builds")
}

fn patch_mode(r: &mut Reader<'_>) {
    let mut img = rich_device().into_image();
    let patches = r.u8();
    for _ in 0..patches {
        let which = r.u8() % 3;
        let off = r.u16() as usize % SPACE;
        let v = r.u8();
        match which {
            0 => img.config[off] = v,
            1 => img.wmask[off] = v,
            _ => img.w1cmask[off] = v,
        }
    }
    let mut space = ConfigSpace::from_image(img);
    check_validate_is_sound(&space);
    run_ops(r, &mut space, None);
}

/// What the built space must keep showing, whatever the host writes.
struct Expect {
    initial: ConfigSpace,
    declared: [Option<Bar>; 6],
    std_chain: Vec<(u16, u16)>,
    ext_chain: Vec<(u16, u16)>,
    pm: Option<usize>,
}

impl Expect {
    fn new(space: &ConfigSpace, declared: [Option<Bar>; 6]) -> Self {
        let std_chain = walk_std(space).expect("built standard chain is well formed");
        let ext_chain = walk_ext(space).expect("built extended chain is well formed");
        let pm = std_chain.iter().find(|c| c.0 == 0x01).map(|c| c.1 as usize);
        let e = Expect {
            initial: space.clone(),
            declared,
            std_chain,
            ext_chain,
            pm,
        };
        e.check_layout(space);
        e
    }

    /// Capabilities sit inside their space without overlapping, and every
    /// byte that belongs to no register (reserved) reads zero and is not
    /// writable.
    fn check_layout(&self, space: &ConfigSpace) {
        let img = space.image();
        let mut owned = [false; SPACE];
        // The type-0 header's implemented registers.
        for range in [
            0x00..0x0D,
            0x0E..0x0F,
            0x10..0x28,
            0x2C..0x30,
            0x34..0x35,
            0x3C..0x3E,
        ] {
            for i in range {
                owned[i] = true;
            }
        }
        for (chain, end) in [(&self.std_chain, 0x100), (&self.ext_chain, SPACE)] {
            for &(id, off) in chain.iter() {
                let off = off as usize;
                let len = cap_len(space, chain == &self.ext_chain, id, off);
                assert!(
                    off + len <= end,
                    "capability {id:#x} at {off:#x} ({len} bytes) leaves its space"
                );
                for (i, o) in owned.iter_mut().enumerate().take(off + len).skip(off) {
                    assert!(!*o, "capability {id:#x} at {off:#x} overlaps at {i:#x}");
                    *o = true;
                }
            }
        }
        for (i, &o) in owned.iter().enumerate() {
            if !o {
                assert_eq!(
                    (img.config[i], img.wmask[i], img.w1cmask[i]),
                    (0, 0, 0),
                    "reserved byte {i:#x} is not zero and read-only"
                );
            }
        }
    }

    fn check(&self, space: &ConfigSpace) {
        let img = space.image();
        let init = self.initial.image();
        assert_eq!(img.wmask, init.wmask, "write mask changed");
        assert_eq!(img.w1cmask, init.w1cmask, "W1C mask changed");
        // Read-only bits keep their built value: checked write by write in
        // `check_write` (only the bytes written change, and in them only
        // writable and W1C bits), which by induction covers the whole run.
        assert_eq!(validate_image(img), Ok(()), "image no longer valid");
        // The chains cannot change (their pointers are read-only), and the
        // library's iterators agree with the independent walk.
        assert_eq!(walk_std(space).as_ref(), Ok(&self.std_chain));
        assert_eq!(walk_ext(space).as_ref(), Ok(&self.ext_chain));
        assert!(space.capabilities().eq(self.std_chain.iter().copied()));
        assert!(space.ext_capabilities().eq(self.ext_chain.iter().copied()));
        self.check_bars(space);
        if let Some(msi) = space.msi() {
            assert!(msi.vectors_capable.is_power_of_two() && msi.vectors_capable <= 32);
            assert!(msi.vectors_enabled <= msi.vectors_capable);
        }
        if let Some(state) = space.power_state() {
            let pmc = space.read(self.pm.unwrap() as u16 + 2, 2).unwrap();
            let ok = match state {
                1 => pmc & (1 << 9) != 0,
                2 => pmc & (1 << 10) != 0,
                _ => true,
            };
            assert!(ok, "power state D{state} is not supported but was entered");
        }
    }

    /// Every declared BAR answers the sizing write with its size and type,
    /// whatever address is programmed; every unused slot reads 0 and ignores
    /// writes.
    fn check_bars(&self, space: &ConfigSpace) {
        let mut slot = 0usize;
        while slot < 6 {
            let off = 0x10 + 4 * slot as u16;
            let Some(bar) = self.declared[slot] else {
                assert_eq!(
                    space.read(off, 4).unwrap(),
                    0,
                    "unused BAR {slot} reads non-zero"
                );
                assert!(space.bar(slot as u8).is_none(), "unused BAR {slot} decoded");
                slot += 1;
                continue;
            };
            let info = space
                .bar(slot as u8)
                .unwrap_or_else(|| panic!("BAR {slot} lost"));
            assert_eq!(info.size, bar.size, "BAR {slot} size");
            assert_eq!(info.is_64bit(), bar.is_64bit, "BAR {slot} type");
            assert_eq!(
                sizing_answer(space, slot),
                Some(bar.size),
                "BAR {slot} sizing"
            );
            let lo = space.read(off, 4).unwrap();
            assert_eq!(lo & 0xF, bar.flags(), "BAR {slot} type bits");
            slot += if bar.is_64bit { 2 } else { 1 };
        }
    }
}

/// What an OS learns from sizing BAR `slot` (write all ones, read back) on
/// a copy of `space`: the size, or `None` for an unimplemented BAR.
fn sizing_answer(space: &ConfigSpace, slot: usize) -> Option<u64> {
    let mut probe = space.clone();
    let off = 0x10 + 4 * slot as u16;
    probe.write(off, 4, u32::MAX).ok()?;
    let lo = probe.read(off, 4).ok()?;
    if lo & 1 != 0 {
        return None;
    }
    let (mask, implemented) = if lo & 0x6 == 0x4 && slot < 5 {
        probe.write(off + 4, 4, u32::MAX).ok()?;
        let hi = probe.read(off + 4, 4).ok()?;
        let mask = (hi as u64) << 32 | (lo & !0xF) as u64;
        (mask, mask != 0)
    } else {
        (0xFFFF_FFFF_0000_0000 | (lo & !0xF) as u64, lo & !0xF != 0)
    };
    let size = (!mask).wrapping_add(1);
    (implemented && size != 0).then_some(size)
}

/// Length of the capability `id` at `off`, from the specification (not the
/// builder's tables).
fn cap_len(space: &ConfigSpace, extended: bool, id: u16, off: usize) -> usize {
    let rd = |o: usize, n: u8| space.read(o as u16, n).unwrap() as usize;
    match (extended, id) {
        (false, 0x01) => 8,
        (false, 0x05) => {
            let ctrl = rd(off + 2, 2);
            10 + if ctrl & (1 << 7) != 0 { 4 } else { 0 }
                + if ctrl & (1 << 8) != 0 { 10 } else { 0 }
        }
        (false, 0x09) => {
            let len = rd(off + 2, 1);
            assert!(len >= 3, "vendor capability length {len} below its header");
            len
        }
        (false, 0x10) => 0x3C,
        (false, 0x11) => 12,
        (true, 0x01) => 0x2C,
        (true, 0x03) => 12,
        (true, 0x0B) => {
            let len = rd(off + 4, 4) >> 20;
            assert!(len >= 8, "VSEC length {len} below its header");
            len
        }
        (true, 0x1B) => 8,
        (_, id) => panic!("the builder laid out an unknown capability {id:#x} at {off:#x}"),
    }
}

/// The standard capability chain, walked from the raw bytes: `Err` on a
/// pointer outside 0x40..0x100 or a revisited capability (a cycle).
pub fn walk_std(space: &ConfigSpace) -> Result<Vec<(u16, u16)>, String> {
    let img = &space.image().config;
    let mut out = Vec::new();
    if img[0x06] & 0x10 == 0 {
        return Ok(out);
    }
    let mut seen = [false; 256];
    let mut ptr = (img[0x34] & 0xFC) as usize;
    while ptr != 0 {
        if ptr < 0x40 {
            return Err(format!(
                "standard capability pointer {ptr:#x} in the header"
            ));
        }
        if std::mem::replace(&mut seen[ptr], true) {
            return Err(format!("standard chain revisits {ptr:#x}"));
        }
        out.push((img[ptr] as u16, ptr as u16));
        ptr = (img[ptr + 1] & 0xFC) as usize;
    }
    Ok(out)
}

/// The extended capability chain from 0x100, walked from the raw bytes.
pub fn walk_ext(space: &ConfigSpace) -> Result<Vec<(u16, u16)>, String> {
    let img = &space.image().config;
    let hdr = |o: usize| u32::from_le_bytes([img[o], img[o + 1], img[o + 2], img[o + 3]]);
    let mut out = Vec::new();
    let mut seen = vec![false; SPACE];
    let mut ptr = 0x100usize;
    loop {
        let h = hdr(ptr);
        if h == 0 || h == u32::MAX {
            if ptr == 0x100 {
                return Ok(out);
            }
            return Err(format!("extended capability at {ptr:#x} is empty"));
        }
        if std::mem::replace(&mut seen[ptr], true) {
            return Err(format!("extended chain revisits {ptr:#x}"));
        }
        out.push((h as u16, ptr as u16));
        let next = (h >> 20) as usize & 0xFFC;
        if next == 0 {
            return Ok(out);
        }
        if next < 0x100 {
            return Err(format!("extended pointer {next:#x} below 0x100"));
        }
        ptr = next;
    }
}

/// If the kernel's image check accepts `space`, its chains are acyclic and
/// inside their spaces (by the independent walk), the library walks them
/// the same way, and every BAR has a power-of-two size it answers sizing
/// with.
fn check_validate_is_sound(space: &ConfigSpace) {
    // The iterators end on anything (they are bounded), valid or not.
    assert!(space.capabilities().count() <= 48);
    assert!(space.ext_capabilities().count() <= 960);
    let _ = (space.msi(), space.msix(), space.power_state());
    if validate_image(space.image()).is_err() {
        return;
    }
    let std_chain = walk_std(space).expect("validated standard chain");
    let ext_chain = walk_ext(space).expect("validated extended chain");
    assert!(space.capabilities().eq(std_chain.iter().copied()));
    assert!(space.ext_capabilities().eq(ext_chain.iter().copied()));
    for bar in space.bars() {
        assert!(bar.size.is_power_of_two() && bar.size >= 16, "{bar:?}");
        assert_eq!(
            sizing_answer(space, bar.index as usize),
            Some(bar.size),
            "{bar:?}"
        );
    }
}

/// Host accesses with the per-access invariants, and the space-wide ones
/// (`expect`) after each.
fn run_ops(r: &mut Reader<'_>, space: &mut ConfigSpace, expect: Option<&Expect>) {
    const WIDTHS: [u8; 3] = [1, 2, 4];
    let mut ops = 0;
    while !r.is_empty() && ops < 64 {
        ops += 1;
        let kind = r.u8() % 8;
        let offset = r.u16();
        let width = r.u8();
        let value = r.u32();
        let (offset, width) = match kind {
            5 | 6 => (offset, width),
            7 => (0x10 + 4 * (offset % 6), 4),
            _ => (offset % SPACE as u16, WIDTHS[width as usize % 3]),
        };
        let value = if kind == 7 { u32::MAX } else { value };
        if kind == 4 || kind == 6 {
            check_read(space, offset, width);
        } else {
            check_write(space, offset, width, value);
        }
        match expect {
            Some(e) => e.check(space),
            None => check_validate_is_sound(space),
        }
    }
}

fn check_read(space: &ConfigSpace, offset: u16, width: u8) {
    let got = space.read(offset, width);
    let end = offset as usize + width as usize;
    if !matches!(width, 1 | 2 | 4) || end > SPACE {
        assert!(got.is_err(), "bad read {offset:#x}/{width} accepted");
        return;
    }
    let mut want = 0u32;
    for (i, b) in space.image().config[offset as usize..end]
        .iter()
        .enumerate()
    {
        want |= (*b as u32) << (8 * i);
    }
    assert_eq!(got, Ok(want), "read {offset:#x}/{width}");
}

/// One write: an error changes nothing; otherwise only the bytes written
/// change, writable bits take the written value (except an unsupported
/// power state, which is refused), W1C bits only clear where 1 is written,
/// read-only bits stay, and the effects say whether anything changed.
fn check_write(space: &mut ConfigSpace, offset: u16, width: u8, value: u32) {
    let before = space.clone();
    // Where the library finds PM (in a patched image, whatever the chain
    // says; in a built one, the walk in `Expect` agrees).
    let pm = before.find_capability(0x01).map(usize::from);
    let r = space.write(offset, width, value);
    let start = offset as usize;
    let end = start + width as usize;
    if !matches!(width, 1 | 2 | 4) || end > SPACE {
        assert!(r.is_err(), "bad write {offset:#x}/{width} accepted");
        assert_eq!(&before, space, "a refused write changed the space");
        return;
    }
    let fx = r.expect("in-range write");
    let (old, new) = (before.image(), space.image());
    let bytes = value.to_le_bytes();
    assert!(
        old.config[..start] == new.config[..start] && old.config[end..] == new.config[end..],
        "write {offset:#x}/{width} changed bytes outside it"
    );
    for i in start..end {
        let (w, c, b) = (new.wmask[i], new.w1cmask[i], bytes[i - start]);
        let (o, n) = (old.config[i], new.config[i]);
        assert_eq!(
            n & !(w | c),
            o & !(w | c),
            "read-only bits changed at {i:#x}"
        );
        // W1C: a written 1 clears, a written 0 keeps.
        let w1c = c & !w;
        assert_eq!(n & w1c, o & w1c & !b, "W1C bits at {i:#x}");
        let rw = w & !c;
        let mut want = b & rw;
        if pm.is_some_and(|p| i == p + 4) {
            // PMCSR PowerState may refuse an unsupported state.
            let state_ok = n & 3 == b & 3 || n & 3 == o & 3;
            assert!(
                state_ok,
                "power state at {i:#x}: old {o:#x} wrote {b:#x} got {n:#x}"
            );
            want = (want & !3) | (n & 3 & rw);
        }
        assert_eq!(
            n & rw,
            want,
            "writable bits at {i:#x} did not take the value"
        );
    }
    let changed = old.config != new.config;
    assert_eq!(
        fx.contains(WriteEffects::CHANGED),
        changed,
        "CHANGED effect {fx:?} but changed = {changed}"
    );
}

/// Corpus seeds: real builder inputs with accesses that reach each
/// register's special case.
pub fn seeds() -> crate::Seeds {
    use pciem_abi::*;
    let identity = |w: &mut Writer, pin: u8| {
        w.u16(0x1f0c)
            .u16(0x0001)
            .u16(0x1f0c)
            .u16(0x0001)
            .u8(1)
            .bytes(&[0x00, 0x80, 0x05])
            .u8(0)
            .u8(pin)
            .u16(0);
    };
    let bar = |w: &mut Writer, index: u8, flags: u8, log2: u8| {
        w.u8(0).u8(index).u8(flags).u8(log2);
    };
    let cap = |w: &mut Writer, t: u32, payload: &[u8], offset: u16| {
        w.u8(1)
            .u8(t as u8)
            .u8(0)
            .u16(offset)
            .u8(0)
            .u8(payload.len() as u8)
            .bytes(payload);
    };
    let op = |w: &mut Writer, kind: u8, off: u16, size_sel: u8, value: u32| {
        w.u8(kind).u16(off).u8(size_sel).u32(value);
    };
    use zerocopy::IntoBytes;
    let msi = pciem_cap_msi_userspace {
        num_vectors_log2: 2,
        has_64bit: 1,
        has_masking: 1,
        reserved: 0,
    };
    let msix = pciem_cap_msix_userspace {
        table_size: 7,
        table_bar: 2,
        pba_bar: 2,
        table_offset: 0,
        pba_offset: 0x800,
    };
    let pm = pciem_cap_pm_userspace {
        no_soft_reset: 0,
        pme_support: 0x8,
        d1_support: 1,
        d2_support: 0,
    };
    let pcie = pciem_cap_pcie_userspace {
        device_type: 0,
        max_link_speed: 3,
        max_link_width: 4,
        flr: 1,
        max_payload: 1,
        reserved: [0; 3],
    };
    let mut vendor = pciem_cap_vendor_userspace::new_zeroed();
    vendor.data_len = 6;
    vendor.data[..6].copy_from_slice(b"PCIem!");
    let pasid = pciem_cap_pasid_userspace {
        max_pasid_width: 20,
        exec: 1,
        privileged: 0,
        reserved: 0,
    };
    let dsn = pciem_cap_dsn_userspace {
        serial: 0x0123_4567_89ab_cdef,
    };
    let mut vsec = pciem_cap_vsec_userspace::new_zeroed();
    vsec.vsec_id = 0x42;
    vsec.vsec_rev = 1;
    vsec.data_len = 8;
    let aer = pciem_cap_aer_userspace {
        uncor_mask: 0,
        uncor_severity: 0x0006_2030,
        cor_mask: 0x2000,
        reserved: 0,
    };

    let mut out = Vec::new();

    // ProtoPCIem's own space: BAR0 64 KiB 64-bit, BAR2 1 MiB 64-bit
    // prefetchable, MSI; then an OS probe (sizing, command, MSI enable).
    let mut w = Writer::new();
    w.u8(0);
    identity(&mut w, 1);
    w.u8(3);
    bar(&mut w, 0, 0x4, 16);
    bar(&mut w, 2, 0xC, 20);
    cap(&mut w, PCIEM_CAP_MSI, msi.as_bytes(), 0);
    op(&mut w, 7, 0, 0, 0);
    op(&mut w, 7, 1, 0, 0);
    op(&mut w, 2, 0x10, 2, 0xfe00_0000);
    op(&mut w, 2, 0x04, 1, 0x0006);
    op(&mut w, 2, 0x44, 2, 0xfee0_0000);
    op(&mut w, 2, 0x42, 1, 0x0021);
    op(&mut w, 4, 0x40, 2, 0);
    out.push(("protopciem", w.finish()));

    // Every capability type, explicit offsets for some, and writes to the
    // W1C status bits, PMCSR (D1, unsupported D2, D3hot, back to D0),
    // DevCtl with FLR, the MSI-X control and AER status.
    let mut w = Writer::new();
    w.u8(0);
    identity(&mut w, 1);
    w.u8(13);
    bar(&mut w, 0, 0x4, 16);
    bar(&mut w, 2, 0x0, 12);
    bar(&mut w, 3, 0xC, 20);
    cap(&mut w, PCIEM_CAP_PM, pm.as_bytes(), 0x40);
    cap(&mut w, PCIEM_CAP_MSI, msi.as_bytes(), 0);
    cap(&mut w, PCIEM_CAP_MSIX, msix.as_bytes(), 0);
    cap(&mut w, PCIEM_CAP_PCIE, pcie.as_bytes(), 0);
    cap(&mut w, PCIEM_CAP_VENDOR, vendor.as_bytes(), 0);
    cap(&mut w, PCIEM_CAP_AER, aer.as_bytes(), 0x100);
    cap(&mut w, PCIEM_CAP_DSN, dsn.as_bytes(), 0);
    cap(&mut w, PCIEM_CAP_PASID, pasid.as_bytes(), 0);
    cap(&mut w, PCIEM_CAP_VSEC, vsec.as_bytes(), 0);
    cap(&mut w, 10, &[0; 8], 0);
    for (kind, off, sel, v) in [
        (2u8, 0x06u16, 1u8, 0xFFFFu32),
        (2, 0x44, 1, 0x0001),
        (2, 0x44, 1, 0x0002),
        (2, 0x44, 1, 0x0003),
        (2, 0x44, 1, 0x8000),
        (2, 0x44, 1, 0x0000),
        (2, 0x04, 2, 0xFFFF_FFFF),
        (4, 0x06, 1, 0),
        (5, 0xFFF, 2, 1),
        (5, 0x10, 3, 1),
        (6, 0x1000, 1, 0),
    ] {
        op(&mut w, kind, off, sel, v);
    }
    out.push(("all-capabilities", w.finish()));

    // Bad descriptions: a 64-bit BAR in slot 5, I/O BAR, overlapping and
    // misplaced capabilities, a wrong payload size.
    let mut w = Writer::new();
    w.u8(0);
    identity(&mut w, 5);
    w.u8(5);
    bar(&mut w, 5, 0x4, 12);
    bar(&mut w, 1, 0x1, 8);
    cap(&mut w, PCIEM_CAP_MSI, msi.as_bytes(), 0x41);
    cap(&mut w, PCIEM_CAP_PM, pm.as_bytes(), 0x100);
    w.u8(1).u8(PCIEM_CAP_DSN as u8).u8(9).u16(0).u8(0).u8(0);
    op(&mut w, 0, 0x10, 2, 0xFFFF_FFFF);
    out.push(("rejected", w.finish()));

    // Image patches: a standard chain that loops, an extended pointer
    // into the header, a BAR mask that is not a size.
    let mut w = Writer::new();
    w.u8(1).u8(4);
    w.u8(0).u16(0x41).u8(0x40);
    w.u8(0).u16(0x102).u8(0x01);
    w.u8(1).u16(0x10).u8(0xF0);
    w.u8(1).u16(0x18).u8(0x30);
    op(&mut w, 2, 0x40, 2, 0xFFFF_FFFF);
    op(&mut w, 4, 0x100, 2, 0);
    out.push(("patched-image", w.finish()));

    // The rich device untouched, then sizing every slot.
    let mut w = Writer::new();
    w.u8(1).u8(0);
    for slot in 0..6 {
        op(&mut w, 7, slot, 0, 0);
    }
    out.push(("rich-sizing", w.finish()));
    out
}
