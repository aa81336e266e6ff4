//! A scenario's model as a child process: the scenario binary runs itself
//! with `model ARGS...`, talks to it through its stdin and reads the lines
//! it prints (the protocol of `vmtest-aer` and `vmtest-surprise-removal`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The model process: its stdin and the lines it prints.
pub struct ModelProcess {
    /// The child (killed by the scenario when it gives up on it).
    pub kid: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl ModelProcess {
    /// Runs this executable as `model ARGS...` with piped stdin and stdout.
    pub fn spawn_self(args: &[&str]) -> std::io::Result<Self> {
        let mut kid = Command::new(std::env::current_exe()?)
            .arg("model")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(out)) = (kid.stdin.take(), kid.stdout.take()) else {
            let _ = kid.kill();
            return Err(std::io::Error::other("the model's stdio is not piped"));
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Self { kid, stdin, lines })
    }

    /// The next line starting with `prefix` within 10 s; the lines before
    /// it are shown as `INFO: model: ...`.
    pub fn expect(&self, prefix: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Some(l),
                Ok(l) => println!("INFO: model: {l}"),
                Err(_) => return None,
            }
        }
        None
    }

    /// Sends one command line and waits for the answer starting `prefix`.
    pub fn ask(&mut self, cmd: &str, prefix: &str) -> Option<String> {
        writeln!(self.stdin, "{cmd}").ok()?;
        self.stdin.flush().ok()?;
        self.expect(prefix)
    }

    /// Closes its stdin (the model's cue to exit) and waits up to 10 s for
    /// a successful exit; kills it otherwise.
    pub fn finish(mut self) -> bool {
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.kid.try_wait() {
                Ok(Some(st)) => return st.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.kid.kill();
                    let _ = self.kid.wait();
                    return false;
                }
            }
        }
    }
}

/// The model's side of the protocol: waits a few milliseconds for the
/// ring's eventfd (consuming its count) or for command lines on stdin.
#[derive(Debug, Default)]
pub struct CommandInput {
    line: Vec<u8>,
}

impl CommandInput {
    /// Waits up to 5 ms for events or input; returns the complete command
    /// lines that arrived (trimmed, possibly none), or `None` once stdin
    /// is closed: the scenario is done with the model.
    pub fn wait(&mut self, eventfd: std::os::fd::RawFd) -> std::io::Result<Option<Vec<String>>> {
        let mut fds = [
            libc::pollfd {
                fd: eventfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two live pollfds, their count passed with them.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, 5) };
        if fds[0].revents & libc::POLLIN != 0 {
            let mut v = 0u64;
            // SAFETY: 8 bytes into a live u64 from a non-blocking eventfd.
            unsafe { libc::read(eventfd, (&mut v as *mut u64).cast(), 8) };
        }
        let mut cmds = Vec::new();
        if fds[1].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
            let mut b = [0u8; 256];
            // SAFETY: reads at most 256 bytes into a live buffer.
            let n = unsafe { libc::read(0, b.as_mut_ptr().cast(), b.len()) };
            if n <= 0 {
                return Ok(None);
            }
            self.line.extend_from_slice(&b[..n as usize]);
            while let Some(pos) = self.line.iter().position(|&c| c == b'\n') {
                let cmd: Vec<u8> = self.line.drain(..=pos).collect();
                cmds.push(String::from_utf8_lossy(&cmd).trim().to_string());
            }
        }
        Ok(Some(cmds))
    }
}
