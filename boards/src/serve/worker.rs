//! The worker pool: a fixed set of sessions (one per worker thread, memory allocated at start),
//! a bounded queue, and one job slot per link with preallocated text and reply buffers.
//!
//! A link hands its request to its slot (copying the text), pushes the slot's index on the
//! queue (or answers `busy` at once when the queue is full), and waits on the slot's condition
//! variable; a worker pops the index, runs the session and writes the finished reply (frame or
//! JSON line) into the slot. Mutexes and condition variables are futex-based: nothing on this
//! path allocates.

use bertq_protocol::{AnswerOptions, EntityOptions, ErrorCode, InferOptions};
use bertq_runtime::session::Storage;
use bertq_runtime::Session;
use bertq_server::backend::execute;
use bertq_server::link::{Backend, InferJob, JobExtra};
use bertq_server::metrics::Metrics;
use bertq_server::reply::{Failure, Out, ReplyTo};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks, ignoring poisoning (nothing on these paths panics; a poisoned lock still holds
/// consistent data because every critical section only assigns plain values).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
enum Outcome {
    Idle,
    Queued,
    Done(Result<(), Failure>),
}

/// [`JobExtra`] without the borrowed question (which the slot stores after the text).
#[derive(Debug, Clone, Copy)]
enum SlotExtra {
    None,
    Stride(u16),
    Answer {
        question_len: usize,
        options: AnswerOptions,
    },
}

#[derive(Debug)]
struct JobState {
    text: Box<[u8]>,
    text_len: usize,
    to: ReplyTo,
    options: InferOptions,
    extra: SlotExtra,
    entities: EntityOptions,
    reply: Box<[u8]>,
    reply_len: usize,
    outcome: Outcome,
}

#[derive(Debug)]
struct Job {
    state: Mutex<JobState>,
    done: Condvar,
}

/// A fixed-capacity ring of slot indices.
#[derive(Debug)]
struct Ring {
    buf: Box<[usize]>,
    head: usize,
    len: usize,
}

impl Ring {
    fn push(&mut self, x: usize) -> bool {
        if self.len == self.buf.len() {
            return false;
        }
        let i = (self.head + self.len) % self.buf.len();
        self.buf[i] = x;
        self.len += 1;
        true
    }
    fn pop(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let x = self.buf[self.head];
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        Some(x)
    }
}

/// The queue and the job slots, shared by links and workers.
#[derive(Debug)]
pub struct Pool {
    queue: Mutex<Ring>,
    ready: Condvar,
    jobs: Box<[Job]>,
    /// Set once every link has finished: workers drain the queue and exit.
    stop: AtomicBool,
    /// Requests queued or being processed.
    in_flight: AtomicU32,
}

impl Pool {
    /// `slots` job slots (one per link), a queue of `capacity`, texts up to `max_text` bytes and
    /// replies up to `max_reply` bytes. The only allocations the pool makes.
    pub fn new(slots: usize, capacity: usize, max_text: usize, max_reply: usize) -> Pool {
        let jobs = (0..slots)
            .map(|_| Job {
                state: Mutex::new(JobState {
                    text: vec![0u8; max_text].into_boxed_slice(),
                    text_len: 0,
                    to: ReplyTo::Binary(0),
                    options: InferOptions::default(),
                    extra: SlotExtra::None,
                    entities: EntityOptions::default(),
                    reply: vec![0u8; max_reply].into_boxed_slice(),
                    reply_len: 0,
                    outcome: Outcome::Idle,
                }),
                done: Condvar::new(),
            })
            .collect();
        Pool {
            queue: Mutex::new(Ring {
                buf: vec![0usize; capacity.max(1)].into_boxed_slice(),
                head: 0,
                len: 0,
            }),
            ready: Condvar::new(),
            jobs,
            stop: AtomicBool::new(false),
            in_flight: AtomicU32::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        lock(&self.queue).buf.len()
    }
    pub fn queue_depth(&self) -> u32 {
        lock(&self.queue).len as u32
    }
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(SeqCst)
    }

    /// Tells the workers to exit once the queue is empty.
    pub fn stop_workers(&self) {
        self.stop.store(true, SeqCst);
        let _q = lock(&self.queue);
        self.ready.notify_all();
    }

    /// A worker: runs queued jobs on `session` until [`Pool::stop_workers`].
    pub fn work<S: Storage>(&self, session: &mut Session<'_, '_, S>) {
        loop {
            let slot = {
                let mut q = lock(&self.queue);
                loop {
                    if let Some(s) = q.pop() {
                        break s;
                    }
                    if self.stop.load(SeqCst) {
                        return;
                    }
                    q = self
                        .ready
                        .wait(q)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            };
            let Some(job) = self.jobs.get(slot) else {
                continue;
            };
            let mut guard = lock(&job.state);
            let st = &mut *guard;
            let result = run_job(session, st);
            st.outcome = Outcome::Done(result);
            self.in_flight.fetch_sub(1, SeqCst);
            drop(guard);
            job.done.notify_all();
        }
    }
}

fn run_job<S: Storage>(session: &mut Session<'_, '_, S>, st: &mut JobState) -> Result<(), Failure> {
    let utf8 = |b| {
        std::str::from_utf8(b)
            .map_err(|_| Failure::plain(ErrorCode::Internal, "the queued text is not UTF-8"))
    };
    // The slot holds the text, then the question (if any).
    let (text, question) = st.text.split_at(st.text_len);
    let job = InferJob {
        to: st.to,
        text: utf8(text)?,
        options: st.options,
        extra: match st.extra {
            SlotExtra::None => JobExtra::None,
            SlotExtra::Stride(s) => JobExtra::Stride(s),
            SlotExtra::Answer {
                question_len,
                options,
            } => JobExtra::Answer {
                question: utf8(question.get(..question_len).unwrap_or(&[]))?,
                options,
            },
        },
        entities: st.entities,
    };
    let mut out = Out::new(&mut st.reply);
    execute(session, &job, &mut out)?;
    st.reply_len = out.bytes().len();
    Ok(())
}

/// A link's way into the pool: its own job slot.
#[derive(Debug)]
pub struct PoolBackend<'p> {
    pub pool: &'p Pool,
    pub slot: usize,
    pub metrics: &'p Metrics,
}

impl Backend for PoolBackend<'_> {
    fn infer(&mut self, job: &InferJob<'_>, out: &mut Out<'_>) -> Result<(), Failure> {
        let pool = self.pool;
        let slot = pool
            .jobs
            .get(self.slot)
            .ok_or_else(|| Failure::plain(ErrorCode::Internal, "no job slot for this link"))?;
        {
            let mut st = lock(&slot.state);
            let bytes = job.text.as_bytes();
            let question = match job.extra {
                JobExtra::Answer { question, .. } => question.as_bytes(),
                _ => &[],
            };
            let too_long = || {
                Failure::plain(
                    ErrorCode::TextTooLong,
                    "the text is longer than the server's text buffer",
                )
            };
            let end = bytes.len() + question.len();
            let dst = st.text.get_mut(..end).ok_or_else(too_long)?;
            dst[..bytes.len()].copy_from_slice(bytes);
            dst[bytes.len()..].copy_from_slice(question);
            st.text_len = bytes.len();
            st.extra = match job.extra {
                JobExtra::None => SlotExtra::None,
                JobExtra::Stride(s) => SlotExtra::Stride(s),
                JobExtra::Answer { question, options } => SlotExtra::Answer {
                    question_len: question.len(),
                    options,
                },
            };
            st.to = job.to;
            st.options = job.options;
            st.entities = job.entities;
            st.outcome = Outcome::Queued;
        }
        let depth = {
            let mut q = lock(&pool.queue);
            if !q.push(self.slot) {
                lock(&slot.state).outcome = Outcome::Idle;
                return Err(Failure::new(
                    ErrorCode::Busy,
                    format_args!(
                        "the request queue is full ({} waiting): retry later",
                        q.buf.len()
                    ),
                ));
            }
            pool.in_flight.fetch_add(1, SeqCst);
            q.len as u32
        };
        self.metrics.note_queue_depth(depth);
        pool.ready.notify_one();
        let mut st = lock(&slot.state);
        // Workers never stop before every link has returned, so this wait always ends.
        while matches!(st.outcome, Outcome::Queued) {
            st = slot
                .done
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        match std::mem::replace(&mut st.outcome, Outcome::Idle) {
            Outcome::Done(Ok(())) => {
                out.clear();
                out.extend(&st.reply[..st.reply_len])
            }
            Outcome::Done(Err(f)) => Err(f),
            Outcome::Idle | Outcome::Queued => Err(Failure::plain(
                ErrorCode::Internal,
                "the job slot was reset while waiting",
            )),
        }
    }
    fn queue_depth(&self) -> u32 {
        self.pool.queue_depth()
    }
    fn in_flight(&self) -> u32 {
        self.pool.in_flight()
    }
}
