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
