//! Trap mode when things go wrong: a stopped model, a killed model, the
//! driver unbound, rebound, unloaded and loaded again under a live model.
//!
//! The device model runs in a child process (this binary re-executed as
//! `vmtest-trap-faults model`), so that it can be stopped and killed. It
//! owns the `/dev/pciem` files of 1f0c:7e56 (`pciem_trapdrv.ko`), BAR0
//! 16 KiB in trap mode, and:
//!
//! | range | trap flags | model |
//! |---|---|---|
//! | 0x000..0x100 | READ_MODEL | ID bytes (`id_value`), as vmtest-trap |
//! | 0x100..0x104 | READ_MODEL | SEQ: the n-th read request the model takes reads n |
//! | 0x110..0x114 | READ_MODEL | DEAD: never answered |
//! | elsewhere | — | plain memory, stores are events |
//!
//! It reports every event on its stdout (`EV type bar offset size data
//! flags id`) and takes commands on its stdin (`timeout US`, `start`,
//! `pin CPU`). Once the driver is bound the child is pinned to CPU 1; the
//! driver's side (this process's main thread, and so the driver's
//! accesses, the binds and insmod) is on CPU 0: a model-answered read
//! spins with interrupts off on the faulting CPU. The child is not pinned
//! before: START's probe runs on a kernel worker on either CPU.
//!
//! Checked, each step able to fail:
//! 1. SIGSTOP: a SEQ read completes all-ones after the default 10 ms read
//!    timeout; after SIGCONT the model's stale answer to it is ignored and
//!    the next read returns the next count. With a 20 ms timeout, three
//!    reads time out (each after at least 20 ms), a store still completes
//!    at once (the driver thread is not stuck), `read_timeouts` moves by
//!    exactly the reads timed out, each timeout is an ERROR event, and the
//!    kernel log names the register once for the device; after SIGCONT
//!    reads are answered right again.
//! 2. SET_FAULT READ_TIMEOUT rules (the model's `fault` command): with
//!    a rule of count 2 on SEQ, two reads complete all-ones at once
//!    (well under the read timeout) without reaching the model, which gets
//!    two ERROR events of kind INJECTED_TIMEOUT instead; `read_timeouts`
//!    +2, `model_reads` unchanged; the third read is the model's next
//!    count. A rule without a count on plain memory reads all-ones until
//!    cleared, stores still land; a rule outside the BAR is refused.
//! 3. unbind/bind of `pciem_trapdrv` [`REBINDS`] times (more than the 64
//!    trapped mappings pciem.ko can hold at once, so an iounmap that did
//!    not release its entry shows): each rebound mapping is trapped again
//!    (the probe read answered by the model), the counters move by exactly
//!    one fault/load/model read per probe, nothing untrapped; afterwards
//!    stores are events and model reads answered.
//! 4. `rmmod pciem_trapdrv` with the trapped mapping live, `insmod` again:
//!    rebound, trapped, answered.
//! 5. kill -9 of the model during a waited read of DEAD with a 1 s read
//!    timeout: the read completes all-ones well before the timeout (under
//!    [`KILL_LIMIT`] after the kill), the device is hot-removed, and the
//!    kernel log stays clean.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pciem_abi::{
    pciem_fault_rule, PCIEM_ERROR_INJECTED_TIMEOUT, PCIEM_ERROR_READ_TIMEOUT, PCIEM_EVENT_ERROR,
    PCIEM_EVENT_FLAG_POSTED, PCIEM_EVENT_MMIO_READ, PCIEM_EVENT_MMIO_WRITE, PCIEM_TRAP_READ_MODEL,
};
use pciem_vmtest::klog;
use pciem_vmtest::model_process::CommandInput;
use pciem_vmtest::sysfs::{self, run};
use pciem_vmtest::trapdrv::{pin_to_cpu, TrapDrv, TrapStats};
use pciem_vmtest::{Dev, Report, TEST_DEVICE_TRAP, TEST_VENDOR, TRAPDRV};

const SEQ: u64 = 0x100;
const DEAD: u64 = 0x110;
const PLAIN: u64 = 0x400;
const STOPPED_TIMEOUT_US: u32 = 20_000;
const DEFAULT_TIMEOUT_US: u64 = pciem_abi::PCIEM_READ_TIMEOUT_DEFAULT_US as u64;
const KILL_TIMEOUT_US: u32 = 1_000_000;
/// Read timeout whenever the model is expected to answer: generous, since
/// a TCG vCPU on a busy host can stall for tens of milliseconds.
const LIVE_TIMEOUT_US: u32 = 500_000;
/// How long after the kill the waiting read may take at most.
const KILL_LIMIT: Duration = Duration::from_millis(200);
const REBINDS: usize = 70;
const KO: &str = "/pciem_trapdrv.ko";
const LAST_RESULT: &str = "/sys/module/pciem_trapdrv/parameters/last_result";

fn id_byte(o: u64) -> u8 {
    (o.wrapping_mul(7).wrapping_add(0x5a)) as u8
}

fn id_value(off: u64, width: u32) -> u64 {
    (0..u64::from(width)).fold(0, |v, i| v | u64::from(id_byte(off + i)) << (8 * i))
}

// ---- the model (child process) -------------------------------------------

fn model_main() -> ! {
    let code = match model() {
        Ok(()) => 0,
        Err(e) => {
            println!("ERR {e}");
            1
        }
    };
    std::process::exit(code)
}

fn model() -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // Not pinned yet: START's probe runs on a kernel worker on either CPU,
    // and a model pinned to that CPU could not answer (vmtest-trap-stall).
    // The scenario pins it to CPU 1 (`pin 1`) once the driver is bound.
    // It inherited the scenario's CPU 0 only: any CPU until then.
    unpin()?;
    let dev = Dev::open()?;
    let efd = dev.attach_eventfd()?;
    dev.describe_trap_device()?;
    dev.add_trap_range(0, PCIEM_TRAP_READ_MODEL, 0, 0x100)?;
    dev.add_trap_range(0, PCIEM_TRAP_READ_MODEL, SEQ, 4)?;
    dev.add_trap_range(0, PCIEM_TRAP_READ_MODEL, DEAD, 4)?;
    // Generous until the SIGSTOP checks set the default explicitly: the
    // probe's read must not time out on a loaded host (it would also use
    // up the device's one log line).
    dev.set_read_timeout(1_000_000)?;
    let inst = dev.register()?;
    let ring = dev.map_ring()?;
    let resp = inst.map_responses()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "OK registered")?;
    out.flush()?;
    let mut seq_reads = 0u64;
    let mut input = CommandInput::default();
    loop {
        while let Some(ev) = ring.pop() {
            if ev.r#type == PCIEM_EVENT_MMIO_READ && ev.flags & PCIEM_EVENT_FLAG_POSTED == 0 {
                if ev.offset + u64::from(ev.size) <= 0x100 {
                    resp.answer(ev.id, id_value(ev.offset, ev.size));
                } else if ev.offset == SEQ {
                    seq_reads += 1;
                    resp.answer(ev.id, seq_reads);
                }
                // DEAD: never answered.
            }
            writeln!(
                out,
                "EV {} {} {} {} {} {} {}",
                ev.r#type, ev.bar, ev.offset, ev.size, ev.data, ev.flags, ev.id
            )?;
        }
        out.flush()?;
        let Some(cmds) = input.wait(efd.as_raw_fd())? else {
            return Ok(()); // the scenario is done with the model
        };
        for cmd in cmds {
            let reply = command(&dev, &cmd);
            writeln!(out, "{reply}")?;
            out.flush()?;
        }
    }
}

/// Allows the calling thread every CPU.
fn unpin() -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only touch the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn command(dev: &Dev, cmd: &str) -> String {
    let mut it = cmd.split_whitespace();
    let res = match (it.next(), it.next()) {
        (Some("timeout"), Some(us)) => match us.parse() {
            Ok(us) => dev.set_read_timeout(us),
            Err(_) => Err(std::io::Error::other("bad number")),
        },
        (Some("start"), None) => dev.start(),
        // `fault KIND BAR ADDR LEN COUNT`: SET_FAULT.
        (Some("fault"), Some(kind)) => {
            let v: Option<Vec<u64>> = std::iter::once(kind)
                .chain(it.by_ref())
                .map(|x| x.parse().ok())
                .collect();
            match v.as_deref() {
                Some(&[kind, bar, addr, len, count]) => dev.set_fault(&pciem_fault_rule {
                    kind: kind as u32,
                    bar: bar as u32,
                    addr,
                    len,
                    count: count as u32,
                    flags: 0,
                }),
                _ => Err(std::io::Error::other("fault KIND BAR ADDR LEN COUNT")),
            }
        }
        (Some("pin"), Some(cpu)) => match cpu.parse() {
            Ok(cpu) => pin_to_cpu(cpu),
            Err(_) => Err(std::io::Error::other("bad number")),
        },
        _ => Err(std::io::Error::other("unknown command")),
    };
    match res {
        Ok(()) => format!("OK {cmd}"),
        Err(e) => format!("ERR {cmd}: {e}"),
    }
}

// ---- the scenario's side -------------------------------------------------

/// One event as the model reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ev {
    ty: u32,
    bar: u32,
    off: u64,
    size: u32,
    data: u64,
    flags: u32,
    id: u64,
}

fn parse_ev(l: &str) -> Option<Ev> {
    let v: Vec<u64> = l
        .strip_prefix("EV ")?
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    (v.len() == 7).then(|| Ev {
        ty: v[0] as u32,
        bar: v[1] as u32,
        off: v[2],
        size: v[3] as u32,
        data: v[4],
        flags: v[5] as u32,
        id: v[6],
    })
}

/// What the reader thread calls on each event (the kill trigger).
type Hook = Arc<Mutex<Option<Box<dyn FnMut(&Ev) + Send>>>>;

/// The model process and what it reported.
struct Model {
    child: Child,
    stdin: ChildStdin,
    events: Arc<Mutex<Vec<Ev>>>,
    replies: mpsc::Receiver<String>,
    /// Called by the reader thread on each event (the kill trigger).
    on_event: Hook,
}

impl Model {
    fn spawn() -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("model")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let events = Arc::new(Mutex::new(Vec::new()));
        let on_event: Hook = Arc::new(Mutex::new(None));
        let (tx, replies) = mpsc::channel();
        let (ev2, on2) = (events.clone(), on_event.clone());
        std::thread::spawn(move || {
            let _ = pin_to_cpu(1);
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if let Some(e) = parse_ev(&l) {
                    ev2.lock().unwrap().push(e);
                    if let Some(f) = on2.lock().unwrap().as_mut() {
                        f(&e);
                    }
                } else if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            events,
            replies,
            on_event,
        })
    }

    /// The next non-event line, up to 5 s.
    fn reply(&self) -> Option<String> {
        self.replies.recv_timeout(Duration::from_secs(5)).ok()
    }

    fn command(&mut self, cmd: &str) -> Result<(), String> {
        writeln!(self.stdin, "{cmd}").map_err(|e| e.to_string())?;
        match self.reply() {
            Some(l) if l == format!("OK {cmd}") => Ok(()),
            Some(l) => Err(l),
            None => Err("no reply".into()),
        }
    }

    fn signal(&self, sig: i32) -> bool {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) == 0 }
    }

    fn events_len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    fn events_since(&self, from: usize) -> Vec<Ev> {
        self.events.lock().unwrap()[from..].to_vec()
    }

    /// Waits up to 2 s for an event after `from` that `want` accepts.
    fn wait_event(&self, from: usize, want: impl Fn(&Ev) -> bool) -> bool {
        sysfs::wait_until(Duration::from_secs(2), || {
            self.events.lock().unwrap()[from..].iter().any(&want)
        })
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_store(e: &Ev, off: u64, data: u64) -> bool {
    e.ty == PCIEM_EVENT_MMIO_WRITE && e.bar == 0 && e.off == off && e.size == 4 && e.data == data
}

/// The kernel log's lines from after `since` (a timestamp from
/// [`klog::now`]) that contain every pattern. By timestamp, not by count: in
/// a full run the log buffer wraps and drops old lines.
fn log_lines(since: f64, pat: &[&str]) -> Vec<String> {
    let (_, log) = run("dmesg", &[]);
    log.lines()
        .filter(|l| klog::time(l).is_some_and(|t| t > since))
        .filter(|l| pat.iter().all(|p| l.contains(p)))
        .map(String::from)
        .collect()
}

/// The timestamp of a `[ seconds.micros]` kernel log line.
fn stats(path: &Path) -> TrapStats {
    TrapStats::read(path).unwrap_or_default()
}

/// Waits for `pciem_trapdrv` to be bound to `path` with its attributes up.
fn wait_bound(path: &Path) -> bool {
    sysfs::wait_until(Duration::from_secs(10), || {
        sysfs::driver_of(path).as_deref() == Some(TRAPDRV) && path.join("cmd").exists()
    })
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("model") {
        model_main();
    }
    let mut r = Report::new("trap-faults");
    r.check(
        sysfs::modules_loaded() && Path::new("/sys/bus/pci/drivers").join(TRAPDRV).exists(),
        "pciem.ko and pciem_trapdrv.ko are loaded",
    );
    if let Err(e) = pin_to_cpu(0) {
        r.check(false, format!("pin the driver's side to CPU 0: {e}"));
    }
    run_all(&mut r);
    r.check_klog_clean();
    r.finish()
}

fn run_all(r: &mut Report) {
    let Some(mut m) = r.step("spawn the model process", Model::spawn()) else {
        return;
    };
    match m.reply() {
        Some(l) if l == "OK registered" => r.check(true, "the model registered 1f0c:7e56"),
        other => {
            r.check(false, format!("the model registered 1f0c:7e56 ({other:?})"));
            return;
        }
    };
    let Some(path) = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_TRAP, Duration::from_secs(5))
    else {
        r.check(false, "1f0c:7e56 is in sysfs after REGISTER");
        return;
    };
    let pci = sysfs::pci_name(&path);
    r.step("START", m.command("start"));
    if !r.check(wait_bound(&path), format!("{TRAPDRV} bound to {pci}")) {
        return;
    }
    r.step("pin the model to CPU 1", m.command("pin 1"));
    let drv = TrapDrv::new(&path);
    r.check(
        drv.probe_value() == Some(id_value(0, 4)),
        format!("probe() read the model's ID ({:x?})", drv.probe_value()),
    );
    stopped(r, &mut m, &drv, &pci);
    injected(r, &mut m, &drv);
    rebind(r, &m, &path, &pci);
    reload(r, &m, &path);
    killed(r, m, &path);
}

/// A read of SEQ: (result, how long it took).
fn timed_read(drv: &TrapDrv, off: u64) -> (Option<u64>, Duration) {
    let t = Instant::now();
    let v = watched(|| drv.cmd(&format!("rl {off:#x}")).ok());
    (v, t.elapsed())
}

/// Runs `f`; if it has not returned after 5 s (a CPU stuck in the kernel),
/// a thread on CPU 1 asks for every CPU's backtrace (sysrq `l`, by NMI) so
/// that the log shows where.
fn watched<T>(f: impl FnOnce() -> T) -> T {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    std::thread::spawn(move || {
        let _ = pin_to_cpu(1);
        let t = Instant::now();
        while !d2.load(std::sync::atomic::Ordering::Acquire) {
            if t.elapsed() > Duration::from_secs(5) {
                println!("INFO: a driver command is stuck after 5 s: sysrq l (backtraces)");
                let _ = std::fs::write("/proc/sysrq-trigger", "l");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let v = f();
    done.store(true, std::sync::atomic::Ordering::Release);
    v
}

fn stopped(r: &mut Report, m: &mut Model, drv: &TrapDrv, pci: &str) {
    println!("--- a SIGSTOPped model");
    let path = drv.path().to_path_buf();
    let mut seq = 0u64;
    let (v, _) = timed_read(drv, SEQ);
    seq += 1;
    r.check(
        v == Some(seq),
        format!("SEQ read {seq} answered by the running model ({v:x?})"),
    );
    // Lines about this device from now on (an earlier scenario's device
    // may have had the same name).
    let base = klog::now();
    let logged = || log_lines(base, &[pci, "did not answer"]);

    // The default read timeout's value, once.
    r.step(
        format!("SET_READ_TIMEOUT {DEFAULT_TIMEOUT_US} us (the default)"),
        m.command(&format!("timeout {DEFAULT_TIMEOUT_US}")),
    );
    let s0 = stats(&path);
    let ev0 = m.events_len();
    r.check(m.signal(libc::SIGSTOP), "SIGSTOP the model");
    std::thread::sleep(Duration::from_millis(50));
    let (v, took) = timed_read(drv, SEQ);
    seq += 1; // the model will count this request when it resumes
    r.check(
        v == Some(0xffff_ffff)
            && took >= Duration::from_micros(DEFAULT_TIMEOUT_US)
            && took < Duration::from_millis(500),
        format!(
            "default timeout: the read completes all-ones after >= {DEFAULT_TIMEOUT_US} us \
             ({v:x?} after {took:?})"
        ),
    );
    let d = stats(&path).since(&s0);
    r.check(
        d.read_timeouts == 1 && d.model_reads == 1,
        format!("read_timeouts +1, model_reads +1 ({d:?})"),
    );
    r.check(m.signal(libc::SIGCONT), "SIGCONT the model");
    // The model now takes the stale request (and answers it: ignored).
    r.check(
        m.wait_event(ev0, |e| {
            e.ty == PCIEM_EVENT_ERROR && e.flags == PCIEM_ERROR_READ_TIMEOUT && e.off == SEQ
        }),
        "the resumed model got the request and an ERROR (READ_TIMEOUT) event",
    );
    let (v, _) = timed_read(drv, SEQ);
    seq += 1;
    r.check(
        v == Some(seq),
        format!("after SIGCONT the stale answer is ignored: the next read is {seq} ({v:x?})"),
    );
    let lines = logged();
    r.check(
        lines.len() == 1
            && lines[0].contains(&format!("BAR0+{SEQ:#x}"))
            && lines[0].contains(&format!("within {DEFAULT_TIMEOUT_US} us"))
            && lines[0].contains("trapdrv_rd_rl"),
        format!("the timeout is logged naming BAR0+{SEQ:#x}, the reader and 10000 us: {lines:?}"),
    );

    // A 20 ms timeout, several reads.
    r.step(
        format!("SET_READ_TIMEOUT {STOPPED_TIMEOUT_US} us"),
        m.command(&format!("timeout {STOPPED_TIMEOUT_US}")),
    );
    let s0 = stats(&path);
    let ev0 = m.events_len();
    r.check(m.signal(libc::SIGSTOP), "SIGSTOP the model again");
    std::thread::sleep(Duration::from_millis(50));
    let reads = 3;
    for i in 1..=reads {
        let (v, took) = timed_read(drv, SEQ);
        seq += 1;
        r.check(
            v == Some(0xffff_ffff)
                && took >= Duration::from_micros(u64::from(STOPPED_TIMEOUT_US))
                && took < Duration::from_millis(500),
            format!("read {i}: all-ones after >= {STOPPED_TIMEOUT_US} us ({v:x?} after {took:?})"),
        );
    }
    let t = Instant::now();
    let w = drv.cmd(&format!("wl {PLAIN:#x} 0x5107"));
    let took = t.elapsed();
    r.check(
        w.is_ok() && took < Duration::from_millis(200),
        format!("a store completes at once while the model is stopped ({w:?}, {took:?})"),
    );
    let d = stats(&path).since(&s0);
    r.check(
        d.read_timeouts == reads && d.model_reads == reads && d.stores == 1,
        format!("read_timeouts +{reads} exactly, model_reads +{reads}, stores +1 ({d:?})"),
    );
    r.check(
        logged().len() == 1,
        format!(
            "still one log line for the device ({} lines)",
            logged().len()
        ),
    );
    r.check(m.signal(libc::SIGCONT), "SIGCONT the model again");
    r.check(
        m.wait_event(ev0, |e| is_store(e, PLAIN, 0x5107)),
        "the resumed model gets the store made while it was stopped",
    );
    let (v, _) = timed_read(drv, SEQ);
    seq += 1;
    r.check(
        v == Some(seq),
        format!("the model answers again, stale answers ignored: read {seq} ({v:x?})"),
    );
    let (v, _) = timed_read(drv, 0x4);
    r.check(
        v == Some(id_value(4, 4)),
        format!("and the ID register reads right ({v:x?})"),
    );
    let evs = m.events_since(ev0);
    let requests = evs
        .iter()
        .filter(|e| e.ty == PCIEM_EVENT_MMIO_READ && e.off == SEQ)
        .count();
    let errors: Vec<&Ev> = evs
        .iter()
        .filter(|e| e.ty == PCIEM_EVENT_ERROR && e.flags == PCIEM_ERROR_READ_TIMEOUT)
        .collect();
    r.check(
        requests == reads as usize + 1
            && errors.len() == reads as usize
            && errors.iter().all(|e| e.off == SEQ && e.size == 4),
        format!(
            "the model saw {} SEQ requests ({requests}) and {reads} READ_TIMEOUT errors ({})",
            reads + 1,
            errors.len()
        ),
    );
    let d = stats(&path).since(&s0);
    r.check(
        d.read_timeouts == reads,
        format!("read_timeouts did not move after SIGCONT ({d:?})"),
    );
    r.step(
        format!("SET_READ_TIMEOUT back to {LIVE_TIMEOUT_US} us"),
        m.command(&format!("timeout {LIVE_TIMEOUT_US}")),
    );
}

/// Completion timeouts on demand (SET_FAULT READ_TIMEOUT).
fn injected(r: &mut Report, m: &mut Model, drv: &TrapDrv) {
    println!("--- completion timeouts on demand (SET_FAULT)");
    let path = drv.path().to_path_buf();
    let seq_request = |e: &Ev| {
        e.ty == PCIEM_EVENT_MMIO_READ && e.off == SEQ && e.flags & PCIEM_EVENT_FLAG_POSTED == 0
    };
    let pre = m.events_len();
    let (first, _) = timed_read(drv, SEQ);
    let Some(first) = first.filter(|&v| v != 0xffff_ffff) else {
        r.check(false, format!("SEQ answered by the model ({first:x?})"));
        return;
    };
    // The model reports a request after answering it: wait for that line,
    // so that it is not counted among the requests below.
    m.wait_event(pre, seq_request);
    let s0 = stats(&path);
    let ev0 = m.events_len();
    r.step(
        "SET_FAULT READ_TIMEOUT on SEQ, count 2",
        m.command(&format!("fault 1 0 {SEQ} 4 2")),
    );
    for i in 1..=2 {
        let (v, took) = timed_read(drv, SEQ);
        r.check(
            v == Some(0xffff_ffff) && took < Duration::from_micros(LIVE_TIMEOUT_US.into()),
            format!(
                "injected timeout {i}: SEQ reads all-ones at once, not after the \
                 {LIVE_TIMEOUT_US} us read timeout ({v:x?} after {took:?})"
            ),
        );
    }
    let (v, _) = timed_read(drv, SEQ);
    r.check(
        v == Some(first + 1),
        format!(
            "count 2 used up: the third read is the model's next count {} ({v:x?}): \
             the timed-out reads never reached it",
            first + 1
        ),
    );
    let d = stats(&path).since(&s0);
    r.check(
        d.read_timeouts == 2 && d.model_reads == 1 && d.loads == 3,
        format!("read_timeouts +2, model_reads +1, loads +3 ({d:?})"),
    );
    let injected = |e: &Ev| e.ty == PCIEM_EVENT_ERROR && e.flags == PCIEM_ERROR_INJECTED_TIMEOUT;
    m.wait_event(ev0, seq_request);
    let evs = m.events_since(ev0);
    let errors: Vec<&Ev> = evs.iter().filter(|e| injected(e)).collect();
    let requests = evs
        .iter()
        .filter(|e| e.ty == PCIEM_EVENT_MMIO_READ && e.off == SEQ)
        .count();
    r.check(
        errors.len() == 2
            && errors
                .iter()
                .all(|e| e.bar == 0 && e.off == SEQ && e.size == 4 && e.id == 0)
            && requests == 1,
        format!(
            "the model got 2 ERROR events of kind INJECTED_TIMEOUT naming SEQ ({}) and one \
             read request ({requests})",
            errors.len()
        ),
    );

    // Plain memory, until cleared: loads time out, stores still land.
    r.step(
        "SET_FAULT READ_TIMEOUT on PLAIN, no count",
        m.command(&format!("fault 1 0 {PLAIN} 4 0")),
    );
    let w = drv.cmd(&format!("wl {PLAIN:#x} 0x600d"));
    let (v1, _) = timed_read(drv, PLAIN);
    let (v2, _) = timed_read(drv, PLAIN);
    r.check(
        w.is_ok() && v1 == Some(0xffff_ffff) && v2 == Some(0xffff_ffff),
        format!("PLAIN reads all-ones while the rule is armed ({v1:x?}, {v2:x?})"),
    );
    r.step("SET_FAULT CLEAR", m.command("fault 0 0 0 0 0"));
    let (v, _) = timed_read(drv, PLAIN);
    r.check(
        v == Some(0x600d),
        format!("after CLEAR PLAIN reads the stored 0x600d ({v:x?})"),
    );
    let bad = m.command("fault 1 0 16384 4 0");
    r.check(
        bad.as_ref().is_err_and(|e| e.contains("os error 22")),
        format!("a rule outside the 16 KiB BAR is refused with EINVAL ({bad:?})"),
    );
}

fn bind_path(what: &str) -> PathBuf {
    Path::new("/sys/bus/pci/drivers").join(TRAPDRV).join(what)
}

/// After a (re)bind: stores trap, model reads answered.
fn still_trapped(r: &mut Report, m: &Model, path: &Path, what: &str, val: u64) {
    let drv = TrapDrv::new(path);
    r.check(
        drv.probe_value() == Some(id_value(0, 4)),
        format!(
            "{what}: probe() read the model's ID ({:x?})",
            drv.probe_value()
        ),
    );
    let ev0 = m.events_len();
    let s0 = stats(path);
    let w = drv.cmd(&format!("wl {PLAIN:#x} {val:#x}"));
    r.check(
        w.is_ok() && m.wait_event(ev0, |e| is_store(e, PLAIN, val)),
        format!("{what}: a store is an MMIO_WRITE event ({w:?})"),
    );
    let (v, took) = timed_read(&drv, 0x8);
    r.check(
        v == Some(id_value(8, 4)),
        format!("{what}: a model register is answered ({v:x?} after {took:?})"),
    );
    let d = stats(path).since(&s0);
    r.check(
        d.faults == 2 && d.stores == 1 && d.loads == 1 && d.model_reads == 1,
        format!("{what}: one fault per access ({d:?})"),
    );
}

fn rebind(r: &mut Report, m: &Model, path: &Path, pci: &str) {
    println!("--- unbind/bind {REBINDS} times with the model running");
    let s0 = stats(path);
    let base = klog::now();
    let mut done = 0;
    let mut err = None;
    for i in 0..REBINDS {
        if let Err(e) = std::fs::write(bind_path("unbind"), pci) {
            err = Some(format!("unbind {i}: {e}"));
            break;
        }
        if sysfs::driver_of(path).is_some() {
            err = Some(format!("unbind {i}: still bound"));
            break;
        }
        if let Err(e) = std::fs::write(bind_path("bind"), pci) {
            err = Some(format!("bind {i}: {e}"));
            break;
        }
        if !wait_bound(path) {
            err = Some(format!("bind {i}: not bound"));
            break;
        }
        if TrapDrv::new(path).probe_value() != Some(id_value(0, 4)) {
            err = Some(format!(
                "bind {i}: probe read {:x?}",
                TrapDrv::new(path).probe_value()
            ));
            break;
        }
        done += 1;
    }
    r.check(
        err.is_none(),
        format!("{done} unbind/bind cycles, each probe read answered by the model ({err:?})"),
    );
    let d = stats(path).since(&s0);
    let n = done as u64;
    r.check(
        d.faults == n && d.loads == n && d.model_reads == n && d.stores == 0,
        format!("pciem_trap moved by one fault, load and model read per probe, {n} in all ({d:?})"),
    );
    r.check(
        d.untrapped == 0 && d.read_timeouts == 0 && d.undecodable == 0,
        format!(
            "every new mapping was trapped (more than the 64 mapping slots: iounmap freed each) ({d:?})"
        ),
    );
    let removed = log_lines(base, &[pci, "removed"]).len();
    r.check(
        removed == done,
        format!("remove() ran {removed} times (iounmap each time)"),
    );
    still_trapped(r, m, path, "after rebinding", 0xb1d);
}

fn reload(r: &mut Report, m: &Model, path: &Path) {
    println!("--- rmmod {TRAPDRV} with the mapping live, insmod again");
    let s0 = stats(path);
    let (ok, out) = run("rmmod", &[TRAPDRV]);
    r.check(ok, format!("rmmod {TRAPDRV} {out}"));
    r.check(
        sysfs::driver_of(path).is_none()
            && !Path::new("/sys/bus/pci/drivers").join(TRAPDRV).exists(),
        "the driver is gone, the device unbound",
    );
    let d = stats(path).since(&s0);
    r.check(d.faults == 0, format!("unloading made no access ({d:?})"));
    let (ok, out) = run("insmod", &[KO]);
    r.check(ok, format!("insmod {KO} {out}"));
    r.check(
        wait_bound(path),
        format!("{TRAPDRV} bound again after insmod"),
    );
    let d = stats(path).since(&s0);
    r.check(
        d.faults == 1 && d.model_reads == 1 && d.untrapped == 0,
        format!("the new probe's read trapped ({d:?})"),
    );
    still_trapped(r, m, path, "after reloading", 0x10ad);
}

fn killed(r: &mut Report, mut m: Model, path: &Path) {
    println!("--- kill -9 of the model during a waited read (read timeout {KILL_TIMEOUT_US} us)");
    r.step(
        format!("SET_READ_TIMEOUT {KILL_TIMEOUT_US} us"),
        m.command(&format!("timeout {KILL_TIMEOUT_US}")),
    );
    let drv = TrapDrv::new(path);
    let pid = m.child.id() as i32;
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    {
        let killed_at = killed_at.clone();
        // Runs on the reader thread (CPU 1) when the request arrives.
        *m.on_event.lock().unwrap() = Some(Box::new(move |e: &Ev| {
            if e.ty == PCIEM_EVENT_MMIO_READ && e.off == DEAD {
                std::thread::sleep(Duration::from_millis(50));
                // SAFETY: kill(2) of our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                *killed_at.lock().unwrap() = Some(Instant::now());
            }
        }));
    }
    let t = Instant::now();
    let w = drv.cmd_only(&format!("rl {DEAD:#x}"));
    let done = Instant::now();
    let took = done - t;
    let result = sysfs::read_hex(Path::new(LAST_RESULT));
    let kill = *killed_at.lock().unwrap();
    r.check(kill.is_some(), "the model was killed during the read");
    let after_kill = kill.map(|k| done.saturating_duration_since(k));
    println!(
        "MEASURE: trap-faults kill -9 during a waited read: returned {after_kill:?} after the kill ({took:?} in all, timeout 1 s)"
    );
    r.check(
        w.is_ok() && result == Some(0xffff_ffff),
        format!("the read completed all-ones ({w:?}, last_result {result:x?})"),
    );
    r.check(
        after_kill.is_some_and(|d| d < KILL_LIMIT) && took < Duration::from_millis(500),
        format!(
            "well before the 1 s timeout: {after_kill:?} after the kill (< {KILL_LIMIT:?}), {took:?} in all"
        ),
    );
    let status = m.child.wait();
    r.check(
        status.as_ref().is_ok_and(|s| {
            use std::os::unix::process::ExitStatusExt;
            s.signal() == Some(libc::SIGKILL)
        }),
        format!("the model died of SIGKILL ({status:?})"),
    );
    r.check(
        sysfs::wait_until(Duration::from_secs(5), || {
            sysfs::find_devices(TEST_VENDOR, TEST_DEVICE_TRAP).is_empty()
        }),
        "the device is hot-removed",
    );
    r.check(
        Path::new("/sys/bus/pci/drivers").join(TRAPDRV).exists(),
        format!("{TRAPDRV} is still loaded"),
    );
    drop(m);
}
