//! Errors of the chardev backend. Each names the step that failed and the
//! errno, and where the errno has a usual cause, says what to do about it.

use std::path::PathBuf;

use nix::errno::Errno;
use pciem_core::{BuildError, HostError};

/// What went wrong while setting up or running a device on `/dev/pciem`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChardevError {
    /// Opening the control file failed.
    #[error("opening {}: {} (errno {}){}", path.display(), errno.desc(), *errno as i32, open_hint(*errno))]
    Open {
        /// The path opened (normally `/dev/pciem`).
        path: PathBuf,
        /// Why.
        errno: Errno,
    },
    /// A system call of a setup or run step failed.
    #[error("{step}: {} (errno {}){}", errno.desc(), *errno as i32, step_hint(step, *errno))]
    Sys {
        /// What was being done, e.g. `"REGISTER"`.
        step: &'static str,
        /// Why.
        errno: Errno,
    },
    /// The loaded module speaks another ABI than this program.
    #[error("ABI mismatch: the module reports {what} = {kernel}, this program expects {ours}; rebuild one of them")]
    AbiMismatch {
        /// Which field differs.
        what: &'static str,
        /// The module's value.
        kernel: u32,
        /// This program's value.
        ours: u32,
    },
    /// The device model's configuration space could not be built.
    #[error("device configuration space: {0}")]
    Config(#[from] BuildError),
    /// A watch the model asked for is malformed.
    #[error("watch on BAR {bar} offset {offset:#x} width {width}: {reason}")]
    BadWatch {
        /// BAR slot.
        bar: u8,
        /// Offset in the BAR.
        offset: u64,
        /// Width in bytes.
        width: u8,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The module reports a BAR size the mapping cannot use.
    #[error("BAR {bar}: the module reports {size} bytes, which cannot be mapped")]
    BadBar {
        /// BAR slot.
        bar: u8,
        /// Size reported by `GET_BAR_INFO`.
        size: u64,
    },
    /// The model's `start` failed: its error (the model's
    /// [`pciem_core::Device::Error`]) as `Display` text, since this type is
    /// not generic over the model. The handlers' errors during the run
    /// keep their type ([`crate::RunReport::errors`]).
    #[error("device start: {0}")]
    Start(String),
    /// The model's trap declarations are inconsistent with its
    /// configuration space (checked before any device exists).
    #[error("trap declarations: {0}")]
    Access(BuildError),
    /// The functions of a multi-function device break one of the rules
    /// the kernel enforces ([`pciem_core::function`]); checked before any
    /// device exists.
    #[error("functions: {0}")]
    Function(#[from] pciem_core::function::FunctionError),
    /// A multi-function session was run without a model for one of the
    /// functions it opened.
    #[error("function {0} was opened but has no model in the run")]
    NoModel(u8),
    /// io-uring was asked for explicitly and cannot be used.
    #[error("io-uring unavailable: {} (errno {}); use the poll(2) loop", .0.desc(), *.0 as i32)]
    IoUringUnavailable(Errno),
}

impl ChardevError {
    /// The errno behind the error, if it came from a system call.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ChardevError::Open { errno, .. } | ChardevError::Sys { errno, .. } => Some(*errno),
            ChardevError::IoUringUnavailable(e) => Some(*e),
            _ => None,
        }
    }

    pub(crate) fn sys(step: &'static str) -> impl FnOnce(Errno) -> ChardevError {
        move |errno| ChardevError::Sys { step, errno }
    }
}

/// Advice for a failed open of the control file.
fn open_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EACCES | Errno::EPERM => ": creating PCI devices needs CAP_SYS_ADMIN, run as root",
        Errno::ENOENT | Errno::ENODEV | Errno::ENXIO => {
            ": load pciem.ko first. Build it with `cargo xtask kbuild` (kernel/pciem/pciem.ko, \
             against the running kernel's headers), then `insmod kernel/pciem/pciem.ko \
             phys_region=ADDR:SIZE`, where ADDR:SIZE is RAM reserved at boot for the BAR pool \
             with memmap=SIZE$ADDR on the kernel command line (for example memmap=2M$0x3f000000 \
             and phys_region=0x3f000000:2M; the pool must hold every BAR, each aligned to its size)"
        }
        _ => "",
    }
}

/// Advice for a failed step, where the errno has a usual cause.
fn step_hint(step: &str, errno: Errno) -> &'static str {
    match errno {
        Errno::EACCES | Errno::EPERM => ": run as root",
        Errno::ENOTTY if step == "GET_VERSION" => {
            ": this file is not a PCIem control file (open /dev/pciem of pciem.ko)"
        }
        Errno::ENOTTY | Errno::EOPNOTSUPP => {
            ": the loaded pciem.ko does not implement this; load a newer module"
        }
        Errno::ENOSPC | Errno::ENOMEM if step == "REGISTER" => {
            ": the BAR pool is exhausted; load pciem.ko with a larger phys_region=ADDR:SIZE (carved out with memmap=SIZE$ADDR at boot)"
        }
        Errno::EBUSY if step == "SET_WATCHPOINT" => {
            ": the register is already watched or no debug register is free"
        }
        Errno::EINVAL if step == "SET_BAR_MODE" => {
            ": the module refused the BAR mode (no such BAR in the configuration image, or an unknown mode)"
        }
        Errno::EINVAL if step == "ADD_TRAP_RANGE" => {
            ": the module refused the trap range (outside its BAR, overlapping another, on a BAR not in trap mode, or READ_MODEL with READ_NOTIFY)"
        }
        Errno::E2BIG | Errno::ENOSPC if step == "ADD_TRAP_RANGE" => {
            ": more trap ranges than the module accepts (PCIEM_MAX_TRAP_RANGES)"
        }
        Errno::EINVAL if step == "SET_READ_TIMEOUT" => {
            ": the read timeout must be 1..=1000000 microseconds"
        }
        Errno::EBUSY if step == "SET_BAR_MODE" || step == "ADD_TRAP_RANGE" || step == "SET_READ_TIMEOUT" => {
            ": trap declarations must come before REGISTER"
        }
        Errno::EALREADY if step == "START" => ": START was already called for this device",
        _ => "",
    }
}

/// The [`HostError`] a model sees for a failed host ioctl.
pub(crate) fn host_error(op: &'static str, errno: Errno) -> HostError {
    match errno {
        Errno::ENOTTY | Errno::EOPNOTSUPP | Errno::ENOSYS => HostError::Unsupported(op),
        // DMA, atomics, PRP and P2P before the driver set Bus Master Enable.
        Errno::EPERM if op.starts_with("DMA") || op.starts_with("P2P") => {
            HostError::BusMasterDisabled
        }
        Errno::ENODEV => HostError::Disconnected,
        _ => HostError::Os {
            op,
            errno: errno as i32,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_says_load_the_module() {
        let e = ChardevError::Open {
            path: "/dev/pciem".into(),
            errno: Errno::ENOENT,
        };
        let s = e.to_string();
        assert!(s.starts_with("opening /dev/pciem: "), "{s}");
        assert!(s.contains("load pciem.ko"), "{s}");
        assert!(s.contains("cargo xtask kbuild"), "{s}");
        assert!(s.contains("memmap=2M$0x3f000000"), "{s}");
        assert!(s.contains("errno 2"), "{s}");
    }

    #[test]
    fn permission_errors_say_run_as_root() {
        for errno in [Errno::EACCES, Errno::EPERM] {
            let s = ChardevError::Open {
                path: "/dev/pciem".into(),
                errno,
            }
            .to_string();
            assert!(s.contains("run as root"), "{s}");
        }
        let s = ChardevError::Sys {
            step: "REGISTER",
            errno: Errno::EPERM,
        }
        .to_string();
        assert!(s.contains("run as root"), "{s}");
    }

    #[test]
    fn exhausted_pool_names_the_module_parameter() {
        let s = ChardevError::Sys {
            step: "REGISTER",
            errno: Errno::ENOSPC,
        }
        .to_string();
        assert!(s.starts_with("REGISTER: "), "{s}");
        assert!(s.contains("phys_region="), "{s}");
        // The same errno elsewhere has no pool advice.
        let s = ChardevError::Sys {
            step: "mmap BAR 0",
            errno: Errno::ENOSPC,
        }
        .to_string();
        assert!(!s.contains("phys_region"), "{s}");
    }

    #[test]
    fn old_module_is_named() {
        let s = ChardevError::Sys {
            step: "SET_IRQFD",
            errno: Errno::ENOTTY,
        }
        .to_string();
        assert!(s.contains("does not implement"), "{s}");
    }

    #[test]
    fn host_errors_map_unsupported_and_gone() {
        assert_eq!(
            host_error("DMA_READ", Errno::ENOTTY),
            HostError::Unsupported("DMA_READ")
        );
        assert_eq!(
            host_error("INJECT_IRQ", Errno::EOPNOTSUPP),
            HostError::Unsupported("INJECT_IRQ")
        );
        assert_eq!(host_error("x", Errno::ENODEV), HostError::Disconnected);
        assert_eq!(
            host_error("DMA_WRITE", Errno::EFAULT),
            HostError::Os {
                op: "DMA_WRITE",
                errno: libc::EFAULT
            }
        );
    }

    #[test]
    fn trap_steps_explain_their_errors() {
        let s = |step, errno| ChardevError::Sys { step, errno }.to_string();
        assert!(s("SET_BAR_MODE", Errno::EINVAL).contains("refused the BAR mode"));
        assert!(s("ADD_TRAP_RANGE", Errno::EINVAL).contains("outside its BAR"));
        assert!(s("ADD_TRAP_RANGE", Errno::E2BIG).contains("PCIEM_MAX_TRAP_RANGES"));
        assert!(s("SET_READ_TIMEOUT", Errno::EINVAL).contains("1..=1000000"));
        assert!(s("START", Errno::EALREADY).contains("already"));
        assert!(s("START", Errno::ENOTTY).contains("does not implement"));
        assert!(s("ADD_TRAP_RANGE", Errno::EBUSY).contains("before REGISTER"));
    }

    #[test]
    fn eperm_on_dma_is_bus_master_disabled() {
        for op in ["DMA_READ", "DMA_ATOMIC", "DMA_INDIRECT", "P2P_WRITE"] {
            assert_eq!(host_error(op, Errno::EPERM), HostError::BusMasterDisabled);
        }
        assert!(matches!(
            host_error("INJECT_IRQ", Errno::EPERM),
            HostError::Os { .. }
        ));
    }

    #[test]
    fn errno_is_exposed() {
        let e = ChardevError::Sys {
            step: "REGISTER",
            errno: Errno::EBUSY,
        };
        assert_eq!(e.errno(), Some(Errno::EBUSY));
        assert_eq!(
            ChardevError::AbiMismatch {
                what: "abi_version",
                kernel: 2,
                ours: 1
            }
            .errno(),
            None
        );
    }
}
