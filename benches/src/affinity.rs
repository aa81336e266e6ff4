//! Pinning threads to CPUs, so that a ping-pong always crosses between the
//! same two cores.

use crate::BenchError;

/// The CPUs this process may run on, lowest first.
pub fn allowed_cpus() -> Result<Vec<usize>, BenchError> {
    // SAFETY: an all-zero `cpu_set_t` is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` is a live `cpu_set_t` of the size passed; pid 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_getaffinity(0, core::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return Err(BenchError::Affinity {
            cpu: 0,
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: `CPU_ISSET` only reads the set, for indices below its size.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Two distinct CPUs for the two sides of a ping-pong: the first two this
/// process may use.
pub fn two_cpus() -> Result<(usize, usize), BenchError> {
    let cpus = allowed_cpus()?;
    match cpus.as_slice() {
        [a, b, ..] => Ok((*a, *b)),
        other => Err(BenchError::NotEnoughCpus(other.len())),
    }
}

/// Pin the calling thread to `cpu`.
pub fn pin_current(cpu: usize) -> Result<(), BenchError> {
    // SAFETY: an all-zero `cpu_set_t` is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(BenchError::Affinity {
            cpu,
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    // SAFETY: `cpu` is below the set's size (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live `cpu_set_t` of the size passed; pid 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, core::mem::size_of_val(&set), &set) };
    if rc != 0 {
        return Err(BenchError::Affinity {
            cpu,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_to_an_allowed_cpu_works_and_a_bogus_one_fails() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        let t = std::thread::spawn(move || {
            pin_current(cpus[0]).unwrap();
            assert_eq!(allowed_cpus().unwrap(), vec![cpus[0]]);
            assert!(pin_current(usize::MAX).is_err());
        });
        t.join().unwrap();
    }
}
