//! Splitting one inference over threads without allocating per run.
//!
//! The model calls [`Parallel::for_each`] with a job `f(part, parts)`; [`Sequential`] runs it
//! inline (no_std, one thread), [`ThreadPool`] (std) on threads created once, with the session.
//! Jobs write disjoint parts of shared buffers through [`SharedMut`].

/// Runs `job(part, parts)` for every `part < parts` and returns when all are done.
pub trait Parallel: Sync {
    /// Number of parts a job is split into (the thread count).
    fn parts(&self) -> usize;
    fn for_each(&self, job: &(dyn Fn(usize, usize) + Sync));
}

/// One thread: the job runs inline.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sequential;

impl Parallel for Sequential {
    fn parts(&self) -> usize {
        1
    }
    fn for_each(&self, job: &(dyn Fn(usize, usize) + Sync)) {
        job(0, 1)
    }
}

/// The part of `0..len` that part `part` of `parts` handles: each boundary is the multiple of
/// `align` nearest to its even share (so that e.g. row blocks of a kernel tile stay whole, and
/// no part is more than `align` from the even share: 18 rows in blocks of 4 split 8 + 10, not
/// 12 + 6). Ranges are contiguous, in order, and cover `0..len` once.
pub fn split_range(len: usize, part: usize, parts: usize, align: usize) -> core::ops::Range<usize> {
    let (align, parts) = (align.max(1), parts.max(1));
    let boundary = |k: usize| -> usize {
        if k >= parts {
            return len;
        }
        // len * k / parts without overflow (k < parts).
        let share = len / parts * k + len % parts * k / parts;
        ((share + align / 2) / align * align).min(len)
    };
    boundary(part)..boundary(part + 1)
}

/// A mutable slice that parallel parts write in disjoint ranges.
#[derive(Debug, Clone, Copy)]
pub struct SharedMut<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: `SharedMut` only hands out sub-slices through `range`, whose contract requires the
// ranges used concurrently to be disjoint; `T: Send` makes moving access across threads sound.
unsafe impl<T: Send> Sync for SharedMut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SharedMut<T> {}

impl<T> SharedMut<T> {
    pub fn new(slice: &mut [T]) -> Self {
        SharedMut {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
        }
    }

    /// The elements `range` of the slice.
    ///
    /// # Safety
    /// Ranges used at the same time (by different parts of one job) must not overlap, and the
    /// slice this was made from must outlive the use (it is borrowed for the job's duration).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, range: core::ops::Range<usize>) -> &mut [T] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "range out of bounds"
        );
        // SAFETY: in bounds (asserted); exclusive per the caller's contract.
        unsafe {
            core::slice::from_raw_parts_mut(self.ptr.add(range.start), range.end - range.start)
        }
    }
}

impl SharedMut<f32> {
    /// Columns `cols` of the `[rows, ldc]` row-major matrix this slice starts with, as the output
    /// view of a GEMM (a part's share of a column split).
    ///
    /// # Safety
    /// Views and ranges used at the same time must not share an element (here: parts take
    /// disjoint column ranges of the same rows), and the slice must outlive the use.
    pub unsafe fn columns(
        &self,
        rows: usize,
        ldc: usize,
        cols: core::ops::Range<usize>,
    ) -> crate::kernels::MatMut<'_> {
        assert!(
            cols.start <= cols.end && cols.end <= ldc,
            "columns out of bounds"
        );
        assert!(
            rows.checked_mul(ldc).is_some_and(|len| len <= self.len),
            "rows out of bounds"
        );
        // SAFETY: every element `i * ldc + j` (`i < rows`, `cols.start <= j < cols.end`) is
        // inside the slice (asserted) and exclusive to this view per the caller's contract.
        unsafe {
            crate::kernels::MatMut::from_raw_parts(self.ptr.add(cols.start), rows, cols.len(), ldc)
        }
    }
}

#[cfg(feature = "std")]
pub use pool::ThreadPool;

#[cfg(feature = "std")]
mod pool {
    use super::Parallel;
    use std::cell::UnsafeCell;
    use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread::JoinHandle;

    /// The job being run, with its lifetime erased (see `ThreadPool::for_each`).
    type Job = *const (dyn Fn(usize, usize) + Sync + 'static);

    /// How long a waiting thread spins before it sleeps: a layer's steps are tens of
    /// microseconds apart, far less than a futex wake-up costs.
    const SPIN_ROUNDS: u32 = 4_000;

    struct Shared {
        /// Written by `for_each` before it publishes a new generation; read by workers after they
        /// observe it (release/acquire on `generation`).
        job: UnsafeCell<Option<Job>>,
        generation: AtomicU64,
        /// Workers that have not finished the current job.
        running: AtomicUsize,
        shutdown: AtomicBool,
        /// Threads asleep on `start` or `done` (or about to be). A thread that publishes a job
        /// or finishes the last part takes the lock and notifies only when this is non-zero: on
        /// the fast path, with every thread spinning, a step costs no system call.
        sleepers: AtomicUsize,
        /// Sleeping threads wait on these (with `lock`), after spinning.
        lock: Mutex<()>,
        start: Condvar,
        done: Condvar,
    }

    // SAFETY: `job` is written only by the thread in `for_each` while no worker reads it (all
    // workers finished the previous generation), and read by workers only after the release
    // store of a new generation; the pointee is `Sync`.
    unsafe impl Sync for Shared {}
    // SAFETY: as above; the raw pointer is never dereferenced outside a job's lifetime.
    unsafe impl Send for Shared {}

    /// `threads - 1` worker threads plus the calling thread, created once. A job is published
    /// with atomics; threads spin briefly, then sleep on condition variables (futexes on Linux).
    /// Running a job allocates nothing. One job at a time (the owning session runs them).
    pub struct ThreadPool {
        shared: Arc<Shared>,
        workers: Vec<JoinHandle<()>>,
        threads: usize,
    }

    impl std::fmt::Debug for ThreadPool {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ThreadPool")
                .field("threads", &self.threads)
                .finish()
        }
    }

    impl ThreadPool {
        pub fn new(threads: usize) -> std::io::Result<Self> {
            let threads = threads.max(1);
            let shared = Arc::new(Shared {
                job: UnsafeCell::new(None),
                generation: AtomicU64::new(0),
                running: AtomicUsize::new(0),
                shutdown: AtomicBool::new(false),
                sleepers: AtomicUsize::new(0),
                lock: Mutex::new(()),
                start: Condvar::new(),
                done: Condvar::new(),
            });
            let mut workers = Vec::with_capacity(threads - 1);
            for part in 1..threads {
                let shared = Arc::clone(&shared);
                let handle = std::thread::Builder::new()
                    .name(format!("bertq-worker-{part}"))
                    .spawn(move || worker(&shared, part, threads))?;
                workers.push(handle);
            }
            Ok(ThreadPool {
                shared,
                workers,
                threads,
            })
        }
    }

    /// Spins, then yields, then sleeps, until `ready()`. Yielding matters on a busy machine: a
    /// spinning thread must not hold the core the thread it waits for needs.
    fn wait_until(shared: &Shared, cv: &Condvar, ready: impl Fn() -> bool) {
        for round in 0..SPIN_ROUNDS {
            if ready() {
                return;
            }
            if round < 2_000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        let mut guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
        shared.sleepers.fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `wake`: either `ready()` below sees the other thread's store,
        // or that thread sees `sleepers` non-zero and notifies (after this thread waits, as it
        // must take the lock first).
        fence(Ordering::SeqCst);
        while !ready() {
            guard = cv.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        shared.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    /// After a store that may make a sleeper's `ready()` true: notifies `cv` if any thread
    /// sleeps (see `wait_until`).
    fn wake(shared: &Shared, cv: &Condvar) {
        fence(Ordering::SeqCst);
        if shared.sleepers.load(Ordering::Relaxed) > 0 {
            let _guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            cv.notify_all();
        }
    }

    fn worker(shared: &Shared, part: usize, parts: usize) {
        let mut seen = 0u64;
        loop {
            wait_until(shared, &shared.start, || {
                shared.generation.load(Ordering::Acquire) != seen
                    || shared.shutdown.load(Ordering::Acquire)
            });
            if shared.shutdown.load(Ordering::Acquire) {
                return;
            }
            seen = shared.generation.load(Ordering::Acquire);
            // SAFETY: the acquire load above synchronises with `for_each`'s release store, after
            // which `job` is not written until this worker decrements `running`.
            if let Some(job) = unsafe { *shared.job.get() } {
                // SAFETY: `for_each` keeps the closure alive until `running` reaches zero.
                unsafe { (*job)(part, parts) };
            }
            if shared.running.fetch_sub(1, Ordering::AcqRel) == 1 {
                // The last worker: wake `for_each` if it went to sleep.
                wake(shared, &shared.done);
            }
        }
    }

    impl Parallel for ThreadPool {
        fn parts(&self) -> usize {
            self.threads
        }

        fn for_each(&self, job: &(dyn Fn(usize, usize) + Sync)) {
            if self.threads == 1 {
                return job(0, 1);
            }
            let shared = &*self.shared;
            // SAFETY: only the lifetime is erased; this function does not return before every
            // worker has finished the job (`running` back to zero), so the closure outlives all
            // uses of the pointer.
            let erased: Job = unsafe {
                std::mem::transmute::<*const (dyn Fn(usize, usize) + Sync + '_), Job>(job)
            };
            // SAFETY: all workers finished the previous job (`running` was zero when the last
            // call returned), so none reads `job` now.
            unsafe { *shared.job.get() = Some(erased) };
            shared.running.store(self.threads - 1, Ordering::Relaxed);
            shared.generation.fetch_add(1, Ordering::Release);
            wake(shared, &shared.start);
            job(0, self.threads);
            wait_until(shared, &shared.done, || {
                shared.running.load(Ordering::Acquire) == 0
            });
        }
    }

    impl Drop for ThreadPool {
        fn drop(&mut self) {
            self.shared.shutdown.store(true, Ordering::Release);
            {
                let _guard = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
                self.shared.start.notify_all();
            }
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_part_runs_once_per_job() {
            let pool = ThreadPool::new(3).unwrap();
            let hits: [AtomicUsize; 3] = Default::default();
            for _ in 0..1000 {
                pool.for_each(&|part, parts| {
                    assert_eq!(parts, 3);
                    hits[part].fetch_add(1, Ordering::Relaxed);
                });
            }
            for h in &hits {
                assert_eq!(h.load(Ordering::Relaxed), 1000);
            }
        }

        #[test]
        fn sleeping_workers_wake_up() {
            let pool = ThreadPool::new(2).unwrap();
            let hits = AtomicUsize::new(0);
            for _ in 0..3 {
                std::thread::sleep(std::time::Duration::from_millis(30));
                pool.for_each(&|_, _| {
                    hits.fetch_add(1, Ordering::Relaxed);
                });
            }
            assert_eq!(hits.load(Ordering::Relaxed), 6);
        }

        #[test]
        fn a_caller_asleep_on_a_slow_part_wakes_up() {
            let pool = ThreadPool::new(3).unwrap();
            let hits = AtomicUsize::new(0);
            for round in 0..200 {
                pool.for_each(&|part, _| {
                    // Every few rounds a worker is slow enough that the caller (and the other
                    // worker) go to sleep; the rest run back to back on the spinning path.
                    if part == 1 + round % 2 && round % 20 == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    hits.fetch_add(1, Ordering::Relaxed);
                });
            }
            assert_eq!(hits.load(Ordering::Relaxed), 600);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_range_covers_everything_once() {
        for len in [0, 1, 7, 8, 9, 128, 131] {
            for parts in 1..5 {
                for align in [1, 4, 8] {
                    let mut next = 0;
                    for p in 0..parts {
                        let r = split_range(len, p, parts, align);
                        assert_eq!(r.start, next);
                        assert!(r.start == r.end || r.start.is_multiple_of(align));
                        next = r.end;
                    }
                    assert_eq!(next, len, "len {len} parts {parts} align {align}");
                }
            }
        }
    }

    #[test]
    fn split_range_stays_within_a_block_of_the_even_share() {
        for len in 0..80 {
            for parts in 1..5 {
                for align in [1, 4, 16] {
                    for p in 0..parts {
                        let r = split_range(len, p, parts, align);
                        let even = len as f64 / parts as f64;
                        assert!(
                            (r.len() as f64 - even).abs() <= align as f64,
                            "len {len} parts {parts} align {align}: part {p} {r:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(split_range(18, 0, 2, 4), 0..8);
        assert_eq!(split_range(18, 1, 2, 4), 8..18);
        assert_eq!(split_range(384, 1, 2, 16), 192..384);
    }
}
