//! Time from the generic timer's virtual counter (`CNTVCT_EL0` at `CNTFRQ_EL0` Hz).

fn counter() -> u64 {
    let t: u64;
    // SAFETY: reads the virtual counter (EL1 may always read it); `isb` keeps the read from
    // being taken early.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack)) };
    t
}

fn frequency() -> u64 {
    let f: u64;
    // SAFETY: reads the counter frequency register; no side effects.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
    f
}

/// Microseconds since `start` (a [`Clock::new`] reading).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: u64,
    hz: u64,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: counter(),
            // A firmware that forgot to program CNTFRQ would read 0: avoid dividing by it.
            hz: frequency().max(1),
        }
    }

    pub fn now_us(&self) -> u64 {
        let ticks = counter().wrapping_sub(self.start);
        (u128::from(ticks) * 1_000_000 / u128::from(self.hz)) as u64
    }
}
