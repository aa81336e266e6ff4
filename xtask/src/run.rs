//! Running commands: every command is printed before it runs, and a failure
//! names the step it belongs to.

use std::fmt;
use std::process::{Command, ExitStatus};

/// A failed task step.
#[derive(Debug)]
pub struct StepError {
    /// What was being done.
    pub step: String,
    /// Why it failed.
    pub reason: String,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.reason)
    }
}

impl std::error::Error for StepError {}

/// Shorthand for a task result.
pub type Result<T = ()> = std::result::Result<T, StepError>;

/// A [`StepError`] for `step`.
pub fn fail(step: &str, reason: impl Into<String>) -> StepError {
    StepError {
        step: step.to_string(),
        reason: reason.into(),
    }
}

/// Print and run `cmd`; an error unless it exits 0.
pub fn run(step: &str, cmd: &mut Command) -> Result {
    eprintln!("+ {}", show(cmd));
    let status: ExitStatus = cmd
        .status()
        .map_err(|e| fail(step, format!("cannot start {:?}: {e}", cmd.get_program())))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(step, format!("`{}` exited with {status}", show(cmd))))
    }
}

/// Print and run `cmd`, returning its standard output.
pub fn output(step: &str, cmd: &mut Command) -> Result<String> {
    eprintln!("+ {}", show(cmd));
    let out = cmd
        .output()
        .map_err(|e| fail(step, format!("cannot start {:?}: {e}", cmd.get_program())))?;
    if !out.status.success() {
        return Err(fail(
            step,
            format!(
                "`{}` exited with {}:\n{}{}",
                show(cmd),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Print and run `cmd` with its standard error shown as it comes, and
/// return its standard output, which is also printed once it has exited.
pub fn run_keeping_stdout(step: &str, cmd: &mut Command) -> Result<String> {
    eprintln!("+ {}", show(cmd));
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| fail(step, format!("cannot start {:?}: {e}", cmd.get_program())))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(fail(
            step,
            format!("`{}` exited with {}", show(cmd), out.status),
        ))
    }
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn show(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}={} ", k.to_string_lossy(), v.to_string_lossy()));
        }
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
