//! Trap mode end to end, against `pciem_trapdrv.ko` (1f0c:7e56).
//!
//! BAR0 (16 KiB) is in trap mode. The scenario's device model is a thread
//! that pops the event ring and answers model-answered reads. BAR0 layout:
//!
//! | range | trap flags | meaning |
//! |---|---|---|
//! | 0x000..0x100 | READ_MODEL | ID bytes: byte `o` reads `id_byte(o)`; answered through the response page |
//! | 0x100..0x200 | READ_MODEL | the same bytes, answered with `COMPLETE_READ` |
//! | 0x200..0x204 | READ_MODEL, WRITE_NO_STORE | EVENTS: doorbell rings since the last read; a read returns the addressed bytes and clears it; writes are ignored |
//! | 0x204..0x208 | (same range) | STATUS: read returns it; a write clears the bits written as 1 (W1C) |
//! | 0x208..0x20c | WRITE_NO_STORE | DOORBELL: a write v does STATUS \|= v, EVENTS += 1; loads come from the backing |
//! | 0x210..0x214 | READ_MODEL | DEAD: never answered (completion timeout) |
//! | 0x300..0x308 | READ_NOTIFY | loads from the backing, reported as posted reads |
//! | elsewhere | — | plain: stores go to the backing and are reported, loads come from the backing |
//!
//! Checked: the device is not bound before START and binds after it, its
//! probe-time read answered by the model; every accessor and width on plain
//! memory, on model registers and on the notify register (result, events
//! with exact offset/size/value, backing); the read-to-clear and W1C
//! registers; memcpy_toio / memcpy_fromio / memset_io of lengths
//! 1, 3, 7, 64, 4095 at offsets 0, 1, 2, 3, 5 (events cover exactly the
//! range and rebuild the bytes, the backing holds them); a readl/writel
//! loop; the completion timeout set by SET_READ_TIMEOUT (all-ones,
//! counted, an ERROR event, logged once); the `pciem_trap` counters against
//! the event stream (no event lost, the ring never overflowing: a full ring
//! makes the faulting CPU wait for the model); and an instruction the
//! emulator refuses (`lock xadd`): an ERROR event with its bytes, counted,
//! logged once, no oops.

use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pciem_abi::{
    pciem_event, PCIEM_ERROR_READ_TIMEOUT, PCIEM_ERROR_UNDECODABLE, PCIEM_EVENT_ERROR,
    PCIEM_EVENT_FLAG_POSTED, PCIEM_EVENT_MMIO_READ, PCIEM_EVENT_MMIO_WRITE, PCIEM_TRAP_READ_MODEL,
    PCIEM_TRAP_READ_NOTIFY, PCIEM_TRAP_WRITE_NO_STORE,
};
use pciem_vmtest::sysfs::{self, run};
use pciem_vmtest::trapdrv::{fnv1a, pattern_bytes, show, wait_eventfd, TrapDrv, TrapStats};
use pciem_vmtest::{Dev, Instance, MappedBar, Report, TEST_DEVICE_TRAP, TEST_VENDOR, TRAPDRV};

const EVENTS: u64 = 0x200;
const STATUS: u64 = 0x204;
const DOORBELL: u64 = 0x208;
const DEAD: u64 = 0x210;
const NOTIFY: u64 = 0x300;
const PLAIN: u64 = 0x400;
const LOOP: u64 = 0x800;
const BAD: u64 = 0x600;
const STRINGS: u64 = 0x1000;
/// The settle marker: a plain register the scenario writes after each step.
const MARK: u64 = 0x3ff8;
/// Read timeout while the model is expected to answer.
const TIMEOUT_US: u32 = 500_000;
/// Read timeout for the DEAD register checks.
const SHORT_TIMEOUT_US: u32 = 50_000;

fn id_byte(o: u64) -> u8 {
    (o.wrapping_mul(7).wrapping_add(0x5a)) as u8
}

/// The model's answer for `width` bytes of the ID area at `off`.
fn id_value(off: u64, width: u32) -> u64 {
    (0..u64::from(width)).fold(0, |v, i| v | u64::from(id_byte(off + i)) << (8 * i))
}

fn mask(width: u32) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    }
}

#[derive(Default)]
struct Regs {
    events: u32,
    status: u32,
}

/// What the model thread and the checks share.
#[derive(Default)]
struct Shared {
    log: Mutex<Vec<pciem_event>>,
    regs: Mutex<Regs>,
    stop: AtomicBool,
    overflow: AtomicU64,
    problems: Mutex<Vec<String>>,
}

/// The model: pops events, keeps the registers, answers waited reads.
fn model(dev: &Dev, inst: &Instance, efd: RawFd, sh: &Shared) {
    let (ring, resp) = match (dev.map_ring(), inst.map_responses()) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            sh.problems.lock().unwrap().push(format!(
                "model: mapping failed: ring {:?} responses {:?}",
                a.err(),
                b.err()
            ));
            return;
        }
    };
    let mut last = Instant::now();
    while !sh.stop.load(Ordering::Acquire) {
        let mut any = false;
        while let Some(ev) = ring.pop() {
            any = true;
            handle(dev, &resp, sh, &ev);
            sh.log.lock().unwrap().push(ev);
        }
        sh.overflow.store(ring.overflow(), Ordering::Release);
        if any {
            last = Instant::now();
        } else if last.elapsed() < Duration::from_millis(30) {
            std::thread::yield_now();
        } else {
            wait_eventfd(efd, 2);
        }
    }
}

fn handle(dev: &Dev, resp: &pciem_vmtest::Responses, sh: &Shared, ev: &pciem_event) {
    let (off, w) = (ev.offset, ev.size);
    match ev.r#type {
        PCIEM_EVENT_MMIO_READ if ev.flags & PCIEM_EVENT_FLAG_POSTED == 0 => {
            let in_reg = |base: u64| off >= base && off + u64::from(w) <= base + 4;
            let shift = |base: u64| 8 * (off - base);
            let value = if off + u64::from(w) <= 0x200 {
                id_value(off, w)
            } else if in_reg(EVENTS) {
                let mut r = sh.regs.lock().unwrap();
                let v = u64::from(r.events) >> shift(EVENTS);
                r.events = 0;
                v
            } else if in_reg(STATUS) {
                u64::from(sh.regs.lock().unwrap().status) >> shift(STATUS)
            } else if in_reg(DEAD) {
                return;
            } else {
                sh.problems
                    .lock()
                    .unwrap()
                    .push(format!("model: unexpected waited read {}", show(ev)));
                return;
            } & mask(w);
            if (0x100..0x200).contains(&off) {
                if let Err(e) = dev.complete_read(ev.id, value) {
                    sh.problems
                        .lock()
                        .unwrap()
                        .push(format!("COMPLETE_READ {:#x}: {e}", ev.id));
                }
            } else {
                resp.answer(ev.id, value);
            }
        }
        PCIEM_EVENT_MMIO_WRITE => {
            let bits = |base: u64| ((ev.data & mask(w)) << (8 * (off - base))) as u32;
            let inside = |base: u64| off >= base && off + u64::from(w) <= base + 4;
            let mut r = sh.regs.lock().unwrap();
            if inside(DOORBELL) {
                r.status |= bits(DOORBELL);
                r.events += 1;
            } else if inside(STATUS) {
                r.status &= !bits(STATUS);
            }
        }
        _ => {}
    }
}

/// The scenario's side: the driver, the BAR and the model's log.
struct Ctx<'a> {
    drv: TrapDrv,
    bar: &'a MappedBar,
    sh: &'a Shared,
    /// Log entries already handed out.
    taken: usize,
    token: u64,
    /// Sequence number of the last event handed out.
    last_seq: Option<u64>,
    /// Events lost in the last settled window, and in all.
    lost: u64,
    lost_total: u64,
}

impl Ctx<'_> {
    /// Writes the marker and returns the events logged before it since the
    /// last call (markers excluded); `None` if no marker arrived. A marker
    /// can be lost when the ring is full, so it is written again every
    /// 300 ms. Sets `lost` to the events missing from the window (gaps in
    /// the sequence numbers).
    fn settle(&mut self) -> Option<Vec<pciem_event>> {
        let start = Instant::now();
        let first = self.token + 1;
        while start.elapsed() < Duration::from_secs(10) {
            self.token += 1;
            let token = 0x4d00_0000 | self.token;
            self.drv
                .cmd_only(&format!("wl {MARK:#x} {token:#x}"))
                .ok()?;
            let sent = Instant::now();
            while sent.elapsed() < Duration::from_millis(300) {
                {
                    let log = self.sh.log.lock().unwrap();
                    if let Some(pos) = log[self.taken..].iter().position(|e| {
                        e.r#type == PCIEM_EVENT_MMIO_WRITE
                            && e.offset == MARK
                            && (0x4d00_0000 | first..=0x4d00_0000 | self.token).contains(&e.data)
                    }) {
                        let window = log[self.taken..=self.taken + pos].to_vec();
                        drop(log);
                        self.account(&window);
                        let out: Vec<_> = window
                            .iter()
                            .filter(|e| e.offset != MARK)
                            .copied()
                            .collect();
                        self.taken += pos + 1;
                        return Some(out);
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        None
    }

    /// Notes the events of `window` (the next ones of the log) as handed
    /// out: `lost` becomes the gaps in their sequence numbers.
    fn account(&mut self, window: &[pciem_event]) {
        let mut gap = 0;
        for e in window {
            if let Some(p) = self.last_seq {
                gap += e.seq.saturating_sub(p + 1);
            }
            self.last_seq = Some(e.seq);
        }
        self.lost = gap;
        self.lost_total += gap;
    }

    /// Events until `want` accepts one (included), up to `timeout`.
    fn until(
        &mut self,
        timeout: Duration,
        want: impl Fn(&pciem_event) -> bool,
    ) -> Option<Vec<pciem_event>> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            {
                let log = self.sh.log.lock().unwrap();
                if let Some(pos) = log[self.taken..].iter().position(&want) {
                    let out = log[self.taken..=self.taken + pos].to_vec();
                    self.taken += pos + 1;
                    self.account(&out);
                    return Some(out);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    /// Runs `line`, settles, returns (result, events); any lost event fails.
    fn run(&mut self, r: &mut Report, line: &str) -> Option<(u64, Vec<pciem_event>)> {
        let res = r.step(format!("cmd `{line}`"), self.drv.cmd(line))?;
        let evs = self.settle();
        if evs.is_none() {
            r.check(false, format!("the settle marker after `{line}` arrived"));
        }
        // A full ring makes the faulting CPU wait for the model (bounded by
        // the read timeout), so with a live model nothing is ever lost, not
        // even from one `rep movsl` of more stores than the ring holds.
        if self.lost > 0 {
            r.check(
                false,
                format!("no events lost around `{line}` ({} lost)", self.lost),
            );
        }
        Some((res, evs?))
    }
}

fn shows(evs: &[pciem_event]) -> String {
    let v: Vec<String> = evs.iter().map(show).collect();
    if v.len() > 8 {
        format!("[{} ... {} events]", v[..8].join(", "), v.len())
    } else {
        format!("[{}]", v.join(", "))
    }
}

fn is_write(e: &pciem_event, off: u64, size: u32, data: u64) -> bool {
    e.r#type == PCIEM_EVENT_MMIO_WRITE
        && e.bar == 0
        && e.offset == off
        && e.size == size
        && e.data == data
        && e.flags & PCIEM_EVENT_FLAG_POSTED != 0
}

fn is_waited_read(e: &pciem_event, off: u64, size: u32) -> bool {
    e.r#type == PCIEM_EVENT_MMIO_READ
        && e.bar == 0
        && e.offset == off
        && e.size == size
        && e.flags & PCIEM_EVENT_FLAG_POSTED == 0
        && e.id >> 6 != 0
}

/// (accessor, width, split): split 0 = one access, 1 = low half first,
/// 2 = high half first. On x86-64 `ioread64_lo_hi` and friends (lib/iomap.c)
/// are one `readq`/`writeq` for MMIO; only the `io-64-nonatomic` helpers
/// (`lo_hi_readq`, ...) split.
const READS: &[(&str, u32, u8)] = &[
    ("rb", 1, 0),
    ("rw", 2, 0),
    ("rl", 4, 0),
    ("rq", 8, 0),
    ("rb_relaxed", 1, 0),
    ("rw_relaxed", 2, 0),
    ("rl_relaxed", 4, 0),
    ("rq_relaxed", 8, 0),
    ("ioread8", 1, 0),
    ("ioread16", 2, 0),
    ("ioread32", 4, 0),
    ("ioread64_lo_hi", 8, 0),
    ("ioread64_hi_lo", 8, 0),
    ("lo_hi_readq", 8, 1),
    ("hi_lo_readq", 8, 2),
];

const WRITES: &[(&str, u32, u8)] = &[
    ("wb", 1, 0),
    ("ww", 2, 0),
    ("wl", 4, 0),
    ("wq", 8, 0),
    ("wb_relaxed", 1, 0),
    ("ww_relaxed", 2, 0),
    ("wl_relaxed", 4, 0),
    ("wq_relaxed", 8, 0),
    ("iowrite8", 1, 0),
    ("iowrite16", 2, 0),
    ("iowrite32", 4, 0),
    ("iowrite64_lo_hi", 8, 0),
    ("iowrite64_hi_lo", 8, 0),
    ("lo_hi_writeq", 8, 1),
    ("hi_lo_writeq", 8, 2),
];

/// The accesses a split 64-bit access makes: (offset, width) in order.
fn parts(off: u64, width: u32, split: u8) -> Vec<(u64, u32)> {
    match split {
        1 => vec![(off, 4), (off + 4, 4)],
        2 => vec![(off + 4, 4), (off, 4)],
        _ => vec![(off, width)],
    }
}

fn accessors(r: &mut Report, c: &mut Ctx) {
    println!("--- every accessor and width");
    for (k, &(name, width, split)) in WRITES.iter().enumerate() {
        // Aligned, then misaligned by one byte (the emulator sees the
        // address the CPU computed, whatever its alignment).
        for mis in [0u64, 1] {
            let off = PLAIN + 0x20 * k as u64 + mis;
            let val = 0x8877_6655_4433_2211u64.wrapping_mul(k as u64 + 3 + mis) & mask(width);
            c.bar.write_le(off as usize, 8, 0);
            let Some((_, evs)) = c.run(r, &format!("{name} {off:#x} {val:#x}")) else {
                continue;
            };
            let want: Vec<(u64, u32, u64)> = parts(off, width, split)
                .into_iter()
                .map(|(o, w)| (o, w, (val >> (8 * (o - off))) & mask(w)))
                .collect();
            r.check(
                evs.len() == want.len()
                    && evs
                        .iter()
                        .zip(&want)
                        .all(|(e, &(o, w, d))| is_write(e, o, w, d)),
                format!("{name} at {off:#x}: events {} are {want:x?}", shows(&evs)),
            );
            r.check(
                c.bar.read_le(off as usize, width as usize) == val,
                format!("{name} at {off:#x}: the backing holds {val:#x}"),
            );
        }
    }
    for (k, &(name, width, split)) in READS.iter().enumerate() {
        // Plain memory: the backing's value, no event.
        let off = PLAIN + 0x20 * k as u64 + 1;
        let val = 0x0102_0304_0506_0708u64.wrapping_mul(k as u64 + 0x11) & mask(width);
        c.bar.write_le(off as usize, width as usize, val);
        if let Some((res, evs)) = c.run(r, &format!("{name} {off:#x}")) {
            r.check(
                res == val && evs.is_empty(),
                format!(
                    "{name} of plain {off:#x} returns the backing {val:#x} (got {res:#x}), no events ({})",
                    shows(&evs)
                ),
            );
        }
        // Model-answered: page-answered (below 0x100) and COMPLETE_READ-
        // answered (0x100..0x200), odd offsets.
        for base in [0x10u64, 0x140] {
            let off = base + 0x10 * k as u64 % 0xa0 + 3;
            if let Some((res, evs)) = c.run(r, &format!("{name} {off:#x}")) {
                let want = parts(off, width, split);
                r.check(
                    res == id_value(off, width)
                        && evs.len() == want.len()
                        && evs
                            .iter()
                            .zip(&want)
                            .all(|(e, &(o, w))| is_waited_read(e, o, w)),
                    format!(
                        "{name} of model register {off:#x} returns {:#x} (got {res:#x}), requests {} are {want:x?}",
                        id_value(off, width),
                        shows(&evs)
                    ),
                );
            }
        }
        // Read-notify: the backing's value, reported as posted reads.
        let val = 0xa1b2_c3d4_e5f6_0718u64.rotate_left(k as u32 * 8) & mask(width);
        c.bar.write_le(NOTIFY as usize, 8, 0);
        c.bar.write_le(NOTIFY as usize, width as usize, val);
        if let Some((res, evs)) = c.run(r, &format!("{name} {NOTIFY:#x}")) {
            let want = parts(NOTIFY, width, split);
            r.check(
                res == val
                    && evs.len() == want.len()
                    && evs.iter().zip(&want).all(|(e, &(o, w))| {
                        e.r#type == PCIEM_EVENT_MMIO_READ
                            && e.flags & PCIEM_EVENT_FLAG_POSTED != 0
                            && e.offset == o
                            && e.size == w
                            && e.data == (val >> (8 * (o - NOTIFY))) & mask(w)
                    }),
                format!(
                    "{name} of the notify register returns {val:#x} (got {res:#x}), posted reads {} are {want:x?} with the values",
                    shows(&evs)
                ),
            );
        }
    }
}

fn registers(r: &mut Report, c: &mut Ctx) {
    println!("--- read-to-clear and W1C registers (model state, never stored)");
    let sentinel = [0xa5u8; 12];
    c.bar.write_bytes(EVENTS as usize, &sentinel);
    let steps: &[(&str, Option<u64>)] = &[
        ("rl 0x200", Some(0)),
        ("wl 0x208 0xf0f0", None),
        ("wl 0x208 0x100", None),
        ("wl 0x200 0x1234", None), // ignored by the model
        ("rl 0x200", Some(2)),
        ("rl 0x200", Some(0)),
        ("rl 0x204", Some(0xf1f0)),
        ("wl 0x204 0xf000", None),
        ("rw 0x204", Some(0x1f0)),
        ("wb 0x205 0x1", None),
        ("rl 0x204", Some(0xf0)),
        ("rb 0x204", Some(0xf0)),
        ("wl 0x208 0x80000000", None),
        ("rw 0x206", Some(0x8000)),
        ("rb 0x200", Some(1)),
        ("rl 0x200", Some(0)),
        ("wl 0x204 0xffffffff", None),
        ("rl 0x204", Some(0)),
        // DOORBELL has no read flag: its loads come from the backing.
        ("rl 0x208", Some(0xa5a5_a5a5)),
    ];
    for &(line, want) in steps {
        let Some((res, evs)) = c.run(r, line) else {
            continue;
        };
        match want {
            Some(v) => r.check(
                res == v,
                format!(
                    "`{line}` returns {v:#x} (got {res:#x}; events {})",
                    shows(&evs)
                ),
            ),
            None => r.check(
                evs.len() == 1 && evs[0].r#type == PCIEM_EVENT_MMIO_WRITE,
                format!("`{line}` is one MMIO_WRITE event ({})", shows(&evs)),
            ),
        };
    }
    let mut now = [0u8; 12];
    c.bar.read_bytes(EVENTS as usize, &mut now);
    r.check(
        now == sentinel,
        format!("WRITE_NO_STORE: the backing of 0x200..0x20c is untouched ({now:02x?})"),
    );
}

fn loop_check(r: &mut Report, c: &mut Ctx) {
    println!("--- readl/writel loop");
    c.bar.write_le(LOOP as usize, 4, 1000);
    if let Some((res, evs)) = c.run(r, &format!("loop 100 {LOOP:#x}")) {
        r.check(res == 1100, format!("loop 100 ends at 1100 (got {res})"));
        r.check(
            evs.len() == 100
                && evs
                    .iter()
                    .enumerate()
                    .all(|(i, e)| is_write(e, LOOP, 4, 1001 + i as u64)),
            format!("100 stores 1001..=1100 in order ({})", shows(&evs)),
        );
        r.check(
            c.bar.read_le(LOOP as usize, 4) == 1100,
            "the backing holds 1100",
        );
    }
}

/// Applies the events to a copy of `before` (the window at `STRINGS`);
/// checks every event lies in `[off, off + len)` and returns the bytes and
/// which bytes were written.
fn replay(evs: &[pciem_event], before: &[u8]) -> Result<(Vec<u8>, Vec<bool>), String> {
    let mut img = before.to_vec();
    let mut hit = vec![false; before.len()];
    for e in evs {
        if e.r#type != PCIEM_EVENT_MMIO_WRITE || e.bar != 0 {
            return Err(format!("not a BAR0 store: {}", show(e)));
        }
        let Some(rel) = e.offset.checked_sub(STRINGS) else {
            return Err(format!("store below the window: {}", show(e)));
        };
        for i in 0..e.size as usize {
            let at = rel as usize + i;
            if at >= img.len() {
                return Err(format!("store past the window: {}", show(e)));
            }
            img[at] = (e.data >> (8 * i)) as u8;
            hit[at] = true;
        }
    }
    Ok((img, hit))
}

fn strings(r: &mut Report, c: &mut Ctx) {
    println!("--- memcpy_toio, memcpy_fromio, memset_io");
    const WINDOW: usize = 0x1100;
    for off in [0u64, 1, 2, 3, 5] {
        for len in [1usize, 3, 7, 64, 4095] {
            let at = STRINGS + off;
            let seed = off * 10_000 + len as u64;
            let before = vec![0xeeu8; WINDOW];
            c.bar.write_bytes(STRINGS as usize, &before);
            let mut want = before.clone();
            let rel = off as usize;
            want[rel..rel + len].copy_from_slice(&pattern_bytes(seed, len));
            let line = format!("toio {at:#x} {len} {seed}");
            if let Some((_, evs)) = c.run(r, &line) {
                let mut now = vec![0u8; WINDOW];
                c.bar.read_bytes(STRINGS as usize, &mut now);
                let lost = c.lost;
                if lost > 0 {
                    println!(
                        "INFO: toio {len} at +{off}: {lost} of its stores' events lost to a full ring ({} arrived)",
                        evs.len()
                    );
                    // The model publishes the count after its drain.
                    std::thread::sleep(Duration::from_millis(50));
                    let ov = c.sh.overflow.load(Ordering::Acquire);
                    r.check(
                        ov >= c.lost_total,
                        format!(
                            "the loss is counted: ring overflow {ov} >= {} lost in all",
                            c.lost_total
                        ),
                    );
                } else {
                    match replay(&evs, &before) {
                        Ok((img, hit)) => {
                            let covered = hit
                                .iter()
                                .enumerate()
                                .all(|(i, &h)| h == (rel..rel + len).contains(&i));
                            r.check(
                            img == want && covered,
                            format!(
                                "toio {len} at +{off}: {} stores cover exactly the range and carry the pattern",
                                evs.len()
                            ),
                        );
                        }
                        Err(e) => {
                            r.check(false, format!("toio {len} at +{off}: {e}"));
                        }
                    }
                }
                r.check(
                    now == want,
                    format!("toio {len} at +{off}: the backing holds the pattern, nothing around it changed"),
                );
            }
            // fromio of different bytes, put there by the device.
            let other = pattern_bytes(seed ^ 0xffff, len);
            c.bar.write_bytes(at as usize, &other);
            if let Some((res, evs)) = c.run(r, &format!("fromio {at:#x} {len}")) {
                r.check(
                    res == fnv1a(&other) && evs.is_empty(),
                    format!(
                        "fromio {len} at +{off}: hash {res:#x} is that of the backing ({:#x}), no events ({})",
                        fnv1a(&other),
                        shows(&evs)
                    ),
                );
            }
            let v = 0x30u8.wrapping_add(off as u8).wrapping_add(len as u8);
            c.bar.write_bytes(STRINGS as usize, &before);
            let mut want = before.clone();
            want[rel..rel + len].fill(v);
            if let Some((_, evs)) = c.run(r, &format!("setio {at:#x} {len} {v}")) {
                let mut now = vec![0u8; WINDOW];
                c.bar.read_bytes(STRINGS as usize, &mut now);
                let ok = match replay(&evs, &before) {
                    Ok((img, hit)) => {
                        img == want
                            && hit
                                .iter()
                                .enumerate()
                                .all(|(i, &h)| h == (rel..rel + len).contains(&i))
                    }
                    Err(_) => false,
                };
                r.check(
                    ok && now == want,
                    format!(
                        "setio {len} at +{off} with {v:#x}: {} stores cover exactly the range, the backing matches",
                        evs.len()
                    ),
                );
            }
        }
    }
    // A string read of model registers: one waited read per element.
    let want = fnv1a(&(3..3 + 64).map(id_byte).collect::<Vec<_>>());
    if let Some((res, evs)) = c.run(r, "fromio 0x3 64") {
        let covered: u64 = evs.iter().map(|e| u64::from(e.size)).sum();
        r.check(
            res == want
                && covered == 64
                && evs
                    .iter()
                    .all(|e| e.r#type == PCIEM_EVENT_MMIO_READ && e.flags & PCIEM_EVENT_FLAG_POSTED == 0),
            format!(
                "fromio of 64 model-answered bytes hashes to {want:#x} (got {res:#x}) through {} waited reads",
                evs.len()
            ),
        );
    }
}

fn log_count(what: &str) -> usize {
    let (_, log) = run("dmesg", &[]);
    log.lines().filter(|l| l.contains(what)).count()
}

fn timeouts(r: &mut Report, c: &mut Ctx, dev: &Dev, pci: &str) {
    println!("--- completion timeout (the DEAD register), SET_READ_TIMEOUT");
    r.step(
        format!("SET_READ_TIMEOUT {SHORT_TIMEOUT_US} us"),
        dev.set_read_timeout(SHORT_TIMEOUT_US),
    );
    let line = format!("within {SHORT_TIMEOUT_US} us");
    let logged_before = log_count(&line);
    let s0 = TrapStats::read(c.drv.path()).unwrap_or_default();
    for round in 1..=2 {
        let start = Instant::now();
        let res = c.drv.cmd(&format!("rl {DEAD:#x}"));
        let took = start.elapsed();
        r.check(
            matches!(res, Ok(0xffff_ffff)),
            format!("round {round}: an unanswered read completes all-ones ({res:?})"),
        );
        r.check(
            took >= Duration::from_micros(u64::from(SHORT_TIMEOUT_US))
                && took < Duration::from_secs(2),
            format!("round {round}: after the timeout set, not before ({took:?})"),
        );
        match c.settle() {
            Some(evs) => r.check(
                evs.len() == 2
                    && is_waited_read(&evs[0], DEAD, 4)
                    && evs[1].r#type == PCIEM_EVENT_ERROR
                    && evs[1].flags == PCIEM_ERROR_READ_TIMEOUT
                    && evs[1].offset == DEAD
                    && evs[1].size == 4
                    && evs[1].id == evs[0].id,
                format!(
                    "round {round}: the request, then an ERROR (READ_TIMEOUT) event with its id ({})",
                    shows(&evs)
                ),
            ),
            None => r.check(false, "the settle marker arrived"),
        };
    }
    let d = TrapStats::read(c.drv.path()).unwrap_or_default().since(&s0);
    r.check(
        d.read_timeouts == 2 && d.model_reads == 2,
        format!("read_timeouts +2, model_reads +2 ({d:?})"),
    );
    let logged = log_count(&line);
    r.check(
        logged == logged_before + 1,
        format!(
            "the timeout is logged once per device, naming {SHORT_TIMEOUT_US} us ({logged} lines)"
        ),
    );
    let (_, log) = run("dmesg", &[]);
    r.check(
        log.lines()
            .any(|l| l.contains(pci) && l.contains("did not answer a 4-byte read")),
        format!("the line names {pci} and the read"),
    );
    r.check(
        dev.complete_read(0x12345 << 6, 1).is_err(),
        "COMPLETE_READ of an id nobody waits for is refused",
    );
    r.step(
        format!("SET_READ_TIMEOUT back to {TIMEOUT_US} us"),
        dev.set_read_timeout(TIMEOUT_US),
    );
}

/// The counters against the whole event stream so far.
fn counters(r: &mut Report, c: &mut Ctx) {
    println!("--- pciem_trap counters against the event stream");
    let _ = c.settle();
    let s = TrapStats::read(c.drv.path());
    let Some(s) = s else {
        r.check(false, "pciem_trap is readable and complete");
        return;
    };
    let log = c.sh.log.lock().unwrap().clone();
    let writes = log
        .iter()
        .filter(|e| e.r#type == PCIEM_EVENT_MMIO_WRITE)
        .count() as u64;
    let waited = log
        .iter()
        .filter(|e| e.r#type == PCIEM_EVENT_MMIO_READ && e.flags & PCIEM_EVENT_FLAG_POSTED == 0)
        .count() as u64;
    r.check(
        s.stores == writes + c.lost_total,
        format!(
            "stores {} = MMIO_WRITE events {writes} + {} lost",
            s.stores, c.lost_total
        ),
    );
    r.check(
        s.model_reads == waited,
        format!(
            "model_reads {} = waited MMIO_READ events {waited}",
            s.model_reads
        ),
    );
    r.check(
        s.loads >= s.model_reads && s.faults <= s.loads + s.stores && s.faults > 0,
        format!("loads >= model_reads, faults <= loads + stores: {s:?}"),
    );
    r.check(
        s.read_timeouts == 2 && s.undecodable == 0 && s.untrapped == 0,
        format!("read_timeouts 2, undecodable 0, untrapped 0: {s:?}"),
    );
    let gaps: u64 = log
        .windows(2)
        .map(|w| w[1].seq.saturating_sub(w[0].seq + 1))
        .sum();
    let overflow = c.sh.overflow.load(Ordering::Acquire);
    r.check(
        gaps == 0 && overflow == 0 && c.lost_total == 0,
        format!(
            "sequence gaps {gaps} = ring overflow {overflow} = events lost {} (0 expected)",
            c.lost_total
        ),
    );
    if c.lost_total > 0 {
        println!("INFO: {} events lost in all", c.lost_total);
    }
}

fn undecodable(r: &mut Report, c: &mut Ctx, pci: &str) {
    println!("--- an instruction the emulator refuses: lock xaddl %eax,(%rdx)");
    let what = "made an access pciem cannot emulate";
    let logged_before = log_count(what);
    c.bar.write_le(BAD as usize, 4, 5);
    let s0 = TrapStats::read(c.drv.path()).unwrap_or_default();
    let res = r.step(
        format!("cmd `bad {BAD:#x}` returns"),
        c.drv.cmd(&format!("bad {BAD:#x}")),
    );
    let evs = c.until(Duration::from_secs(5), |e| e.r#type == PCIEM_EVENT_ERROR);
    match evs.as_deref().and_then(|v| v.last()) {
        Some(e) => r.check(
            e.flags == PCIEM_ERROR_UNDECODABLE
                && e.bar == 0
                && e.offset == BAD
                && e.size >= 4
                && e.data & 0xffff_ffff == 0x02c1_0ff0,
            format!(
                "an ERROR (UNDECODABLE) event at {BAD:#x} carries the bytes f0 0f c1 02: {}",
                show(e)
            ),
        ),
        None => r.check(false, "an ERROR event arrived"),
    };
    let d = TrapStats::read(c.drv.path()).unwrap_or_default().since(&s0);
    r.check(d.undecodable == 1, format!("undecodable +1 ({d:?})"));
    // Either the length was known (master abort: eax kept its 1, the
    // store dropped) or not (the mapping is untrapped and the instruction
    // ran against the backing: eax = the old 5, the backing 6).
    let now = c.bar.read_le(BAD as usize, 4);
    if d.untrapped == 1 {
        println!("INFO: the instruction's length was not known: the mapping was untrapped");
        r.check(
            res == Some(5) && now == 6,
            format!("the xadd ran against the backing (eax {res:?}, backing {now})"),
        );
    } else {
        println!("INFO: completed as a master abort");
        r.check(
            d.untrapped == 0 && res == Some(1) && now == 5,
            format!("master abort: eax kept 1 ({res:?}), the backing kept 5 ({now})"),
        );
    }
    let logged = log_count(what);
    r.check(
        logged == logged_before + 1,
        format!("one log line ({} new)", logged - logged_before),
    );
    let (_, log) = run("dmesg", &[]);
    r.check(
        log.lines()
            .any(|l| l.contains(what) && l.contains(pci) && l.contains("f0 0f c1 02")),
        "the line names the device and the instruction bytes",
    );
    if d.untrapped == 0 {
        let res = c.drv.cmd(&format!("bad {BAD:#x}"));
        let _ = c.until(Duration::from_secs(5), |e| e.r#type == PCIEM_EVENT_ERROR);
        let d = TrapStats::read(c.drv.path()).unwrap_or_default().since(&s0);
        r.check(
            res.is_ok() && d.undecodable == 2 && log_count(what) == logged,
            format!("a second one is counted ({d:?}) but not logged again"),
        );
        // Execution went on and the mapping is still trapped.
        if let Some((_, evs)) = c.run(r, &format!("wl {PLAIN:#x} 0x77")) {
            r.check(
                evs.len() == 1 && is_write(&evs[0], PLAIN, 4, 0x77),
                "stores still trap afterwards",
            );
        }
    }
}

fn main() {
    let mut r = Report::new("trap");
    r.check(
        sysfs::modules_loaded() && Path::new("/sys/bus/pci/drivers").join(TRAPDRV).exists(),
        "pciem.ko and pciem_trapdrv.ko are loaded",
    );
    run_all(&mut r);
    r.check_klog_clean();
    r.finish();
}

fn run_all(r: &mut Report) {
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    let Some(efd) = r.step("SET_EVENTFD", dev.attach_eventfd()) else {
        return;
    };
    if r.step(
        "describe 1f0c:7e56, BAR0 16 KiB in trap mode",
        dev.describe_trap_device(),
    )
    .is_none()
    {
        return;
    }
    let ranges: &[(u32, u64, u64)] = &[
        (PCIEM_TRAP_READ_MODEL, 0x000, 0x200),
        (PCIEM_TRAP_READ_MODEL | PCIEM_TRAP_WRITE_NO_STORE, EVENTS, 8),
        (PCIEM_TRAP_WRITE_NO_STORE, DOORBELL, 4),
        (PCIEM_TRAP_READ_MODEL, DEAD, 4),
        (PCIEM_TRAP_READ_NOTIFY, NOTIFY, 8),
    ];
    for &(flags, off, len) in ranges {
        r.step(
            format!("ADD_TRAP_RANGE {off:#x}+{len:#x} flags {flags:#x}"),
            dev.add_trap_range(0, flags, off, len),
        );
    }
    r.check(
        dev.add_trap_range(0, 0, 0x1ff, 2).is_err(),
        "an overlapping range is refused",
    );
    r.check(
        dev.add_trap_range(0, PCIEM_TRAP_READ_MODEL | PCIEM_TRAP_READ_NOTIFY, 0x3000, 4)
            .is_err(),
        "READ_MODEL with READ_NOTIFY is refused",
    );
    r.step(
        format!("SET_READ_TIMEOUT {TIMEOUT_US} us"),
        dev.set_read_timeout(TIMEOUT_US),
    );
    let Some(inst) = r.step("REGISTER", dev.register()) else {
        return;
    };
    let Some(path) = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_TRAP, Duration::from_secs(5))
    else {
        r.check(false, "1f0c:7e56 is in sysfs after REGISTER");
        return;
    };
    let pci = sysfs::pci_name(&path);
    std::thread::sleep(Duration::from_millis(300));
    r.check(
        sysfs::driver_of(&path).is_none(),
        format!("{pci}: no driver bound before START"),
    );
    let Some(bar) = r.step("mmap BAR0", inst.map_bar(0, 16 << 10)) else {
        return;
    };
    let sh = Shared::default();
    std::thread::scope(|s| {
        let model_thread = s.spawn(|| model(&dev, &inst, efd.as_raw_fd(), &sh));
        body(r, &dev, &path, &pci, &bar, &sh);
        sh.stop.store(true, Ordering::Release);
        if model_thread.join().is_err() {
            r.check(false, "the model thread ended cleanly");
        }
    });
    let problems = sh.problems.lock().unwrap().clone();
    r.check(
        problems.is_empty(),
        format!("the model saw nothing unexpected: {problems:?}"),
    );
    drop(bar);
    drop(inst);
    drop(dev);
    r.check(
        sysfs::wait_until(Duration::from_secs(5), || {
            sysfs::find_devices(TEST_VENDOR, TEST_DEVICE_TRAP).is_empty()
        }),
        "closing the device removes it",
    );
}

fn body(r: &mut Report, dev: &Dev, path: &Path, pci: &str, bar: &MappedBar, sh: &Shared) {
    r.step("START", dev.start());
    // The driver link appears before probe() runs; `cmd` once it returned.
    let bound = sysfs::wait_until(Duration::from_secs(10), || {
        sysfs::driver_of(path).as_deref() == Some(TRAPDRV) && path.join("cmd").exists()
    });
    r.check(bound, format!("{TRAPDRV} bound to {pci} after START"));
    r.check(dev.start().is_err(), "a second START is refused");
    if !bound {
        return;
    }
    let mut c = Ctx {
        drv: TrapDrv::new(path),
        bar,
        sh,
        taken: 0,
        token: 0,
        last_seq: None,
        lost: 0,
        lost_total: 0,
    };
    let pv = c.drv.probe_value();
    r.check(
        pv == Some(id_value(0, 4)),
        format!(
            "probe() read {:#x} at BAR0+0x0, answered by the model (got {pv:x?})",
            id_value(0, 4)
        ),
    );
    match c.until(Duration::from_secs(2), |e| {
        e.r#type == PCIEM_EVENT_MMIO_READ
    }) {
        Some(evs) => r.check(
            is_waited_read(evs.last().unwrap(), 0, 4),
            format!(
                "the probe's read was a waited 4-byte request at 0x0 ({})",
                shows(&evs)
            ),
        ),
        None => r.check(false, "the probe's read reached the model"),
    };
    // Nothing else has run yet: a first look at the counters.
    let s0 = TrapStats::read(path);
    r.check(
        s0.is_some_and(|s| s.model_reads == 1 && s.loads == 1 && s.faults == 1 && s.stores == 0),
        format!("pciem_trap after probe: one fault, one load, one model read ({s0:?})"),
    );
    for (line, key) in [
        (format!("wl {PLAIN:#x} 0x11223344"), "store"),
        (format!("rl {PLAIN:#x}"), "load"),
    ] {
        let before = TrapStats::read(path).unwrap_or_default();
        let _ = c.drv.cmd(&line);
        let d = TrapStats::read(path).unwrap_or_default().since(&before);
        r.check(
            d.faults == 1 && (d.stores, d.loads) == if key == "store" { (1, 0) } else { (0, 1) },
            format!("one {key}: faults +1, {key}s +1 ({d:?})"),
        );
    }
    let _ = c.settle();

    accessors(r, &mut c);
    registers(r, &mut c);
    loop_check(r, &mut c);
    strings(r, &mut c);
    timeouts(r, &mut c, dev, pci);
    counters(r, &mut c);
    undecodable(r, &mut c, pci);
}
