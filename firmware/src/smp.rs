//! Inference on every core: the secondary cores are started (PSCI `CPU_ON`, or the Raspberry
//! Pi's spin table), turn their MMU on with the boot core's tables, and wait for jobs; the
//! session splits each step of a run over them through the runtime's [`Parallel`] trait, as the
//! `std` thread pool does on Linux. A job is published with a generation counter and `sev`;
//! cores wait with `wfe`, and the boot core spins until every part is done.
//!
//! Work is split by rows and attention heads, never inside a sum, so results are bit-identical
//! to one core (the firmware tests compare them).

use bertq_runtime::parallel::Parallel;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Cores used at most (the arena holds one attention buffer per core; the stacks are reserved
/// by the linker script).
pub const MAX_CORES: usize = crate::config::MAX_CORES;

/// The job being run, its lifetime erased (see [`Workers::for_each`]).
type Job = *const (dyn Fn(usize, usize) + Sync + 'static);

pub struct Workers {
    /// Cores taking part: 1 + the secondaries that came online in time. Fixed before the first
    /// job.
    cores: AtomicUsize,
    /// Secondaries that reached their loop (each takes the next index).
    online: AtomicUsize,
    /// Written by the boot core before it publishes a new generation, read by the others after
    /// they see it.
    job: UnsafeCell<Option<Job>>,
    generation: AtomicU64,
    /// Secondaries that finished the current generation.
    done: AtomicUsize,
}

// SAFETY: `job` is written only by the boot core in `for_each`, while every secondary has
// finished the previous generation (it waited for them) and before the release store of the new
// generation; secondaries read it only after the acquire load that sees that generation.
unsafe impl Sync for Workers {}

pub static WORKERS: Workers = Workers {
    cores: AtomicUsize::new(1),
    online: AtomicUsize::new(0),
    job: UnsafeCell::new(None),
    generation: AtomicU64::new(0),
    done: AtomicUsize::new(0),
};

fn sev() {
    // SAFETY: signals an event to every core; no memory effects beyond ordering.
    unsafe { core::arch::asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

fn wfe() {
    // SAFETY: waits for an event (or returns at once if one is pending).
    unsafe { core::arch::asm!("wfe", options(nomem, nostack, preserves_flags)) };
}

impl Parallel for Workers {
    fn parts(&self) -> usize {
        self.cores.load(Ordering::Relaxed)
    }

    fn for_each(&self, job: &(dyn Fn(usize, usize) + Sync)) {
        let parts = self.parts();
        if parts <= 1 {
            return job(0, 1);
        }
        // SAFETY: the erased lifetime is never outlived: secondaries call the job only for this
        // generation, and this function returns only after all of them reported it done.
        let erased: Job =
            unsafe { core::mem::transmute(job as *const (dyn Fn(usize, usize) + Sync)) };
        // SAFETY: see `unsafe impl Sync`: no secondary reads `job` now.
        unsafe { *self.job.get() = Some(erased) };
        self.done.store(0, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
        sev();
        job(0, parts);
        while self.done.load(Ordering::Acquire) < parts - 1 {
            core::hint::spin_loop();
        }
    }
}

impl Workers {
    /// From now on, every job runs on the boot core alone.
    pub fn use_one_core(&self) {
        self.cores.store(1, Ordering::Relaxed);
    }
}

/// A secondary core's life once its MMU is on: take an index, then run every job's part.
pub fn secondary_loop() -> ! {
    let index = WORKERS.online.fetch_add(1, Ordering::AcqRel) + 1;
    let mut seen = WORKERS.generation.load(Ordering::Acquire);
    loop {
        let generation = loop {
            let g = WORKERS.generation.load(Ordering::Acquire);
            if g != seen {
                break g;
            }
            wfe();
        };
        seen = generation;
        let parts = WORKERS.cores.load(Ordering::Relaxed);
        // A core that came online after the count was fixed stays out.
        if index >= parts {
            continue;
        }
        // SAFETY: published before `generation` (release/acquire), alive until we report done.
        if let Some(job) = unsafe { *WORKERS.job.get() } {
            // SAFETY: as above.
            unsafe { (*job)(index, parts) };
        }
        WORKERS.done.fetch_add(1, Ordering::Release);
    }
}

/// How secondary cores are started on this board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// PSCI `CPU_ON` through `hvc` (QEMU `virt` entered at EL1) or `smc` (entered at EL2 with
    /// firmware at EL3: QEMU `virt` with `virtualization=on`, the Raspberry Pi 5).
    Psci {
        smc: bool,
    },
    /// The Raspberry Pi 3/4 spin table: each waiting core polls `0xd8 + 8 * n`.
    SpinTable,
    None,
}

extern "C" {
    static _secondary_entry: u8;
}

fn psci_cpu_on(smc: bool, target: u64, entry: u64) -> i64 {
    const CPU_ON_64: u64 = 0xC400_0003;
    let mut x0 = CPU_ON_64;
    // SAFETY: a PSCI call: the firmware (or QEMU) starts core `target` at `entry`; it touches
    // no memory of ours. Registers x0-x3 are arguments, x0 the result; the SMC calling
    // convention lets the callee clobber x0-x17, which are declared clobbered.
    unsafe {
        if smc {
            core::arch::asm!("smc #0", inout("x0") x0, in("x1") target, in("x2") entry, in("x3") 0u64,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _, options(nostack));
        } else {
            core::arch::asm!("hvc #0", inout("x0") x0, in("x1") target, in("x2") entry, in("x3") 0u64,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _, options(nostack));
        }
    }
    x0 as i64
}

/// Starts up to `MAX_CORES - 1` secondary cores, waits (at most `timeout_us`) for them to reach
/// their loop, and fixes the core count. Returns it.
pub fn start(method: Method, clock: &crate::timer::Clock, timeout_us: u64) -> usize {
    // The address of the secondary entry point (a symbol of boot.rs).
    let entry = core::ptr::addr_of!(_secondary_entry) as u64;
    let mut started = 0;
    for core in 1..MAX_CORES as u64 {
        let ok = match method {
            Method::Psci { smc } => psci_cpu_on(smc, core, entry) == 0,
            Method::SpinTable => {
                let slot = (0xd8 + 8 * core) as *mut u64;
                // SAFETY: the spin-table slot of core `core` in the first page of RAM (mapped
                // normal memory), which the waiting core polls with its caches off: the line is
                // cleaned to memory before the event that wakes it.
                unsafe {
                    slot.write_volatile(entry);
                    core::arch::asm!("dc civac, {}", in(reg) slot, options(nostack, preserves_flags));
                }
                true
            }
            Method::None => false,
        };
        if !ok {
            break;
        }
        started += 1;
    }
    sev();
    let since = clock.now_us();
    while WORKERS.online.load(Ordering::Acquire) < started && clock.now_us() - since < timeout_us {
        core::hint::spin_loop();
    }
    let cores = 1 + WORKERS.online.load(Ordering::Acquire).min(MAX_CORES - 1);
    WORKERS.cores.store(cores, Ordering::Relaxed);
    cores
}
