//! Server metrics: counters, errors by code and a latency histogram, all atomics in fixed
//! arrays (updated from any thread, read without locking, never allocating).

use bertq_protocol::{histogram_bucket_upper_us, ErrorCode, HISTOGRAM_BUCKETS};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Error counters: one per known code, one for codes this version does not know.
const ERROR_SLOTS: usize = ErrorCode::ALL.len() + 1;

#[derive(Debug)]
pub struct Metrics {
    requests: AtomicU64,
    inferences: AtomicU64,
    errors: [AtomicU64; ERROR_SLOTS],
    buckets: [AtomicU64; HISTOGRAM_BUCKETS],
    max_queue_depth: AtomicU32,
    connections: AtomicU64,
    connections_rejected: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of a latency (see [`histogram_bucket_upper_us`]).
pub fn bucket_of(us: u64) -> usize {
    // Binary search over the monotone bucket bounds: the first bucket whose bound is >= us.
    let (mut lo, mut hi) = (0usize, HISTOGRAM_BUCKETS - 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if histogram_bucket_upper_us(mid) >= us {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

impl Metrics {
    pub const fn new() -> Self {
        Metrics {
            requests: AtomicU64::new(0),
            inferences: AtomicU64::new(0),
            errors: [const { AtomicU64::new(0) }; ERROR_SLOTS],
            buckets: [const { AtomicU64::new(0) }; HISTOGRAM_BUCKETS],
            max_queue_depth: AtomicU32::new(0),
            connections: AtomicU64::new(0),
            connections_rejected: AtomicU64::new(0),
        }
    }

    /// One request answered: successfully (`error: None`) or with an error code.
    pub fn record_request(&self, error: Option<ErrorCode>) {
        self.requests.fetch_add(1, Relaxed);
        if let Some(code) = error {
            self.errors[code.index()].fetch_add(1, Relaxed);
        }
    }

    /// One inference answered successfully, `us` microseconds after its request was complete.
    pub fn record_inference(&self, us: u64) {
        self.inferences.fetch_add(1, Relaxed);
        self.buckets[bucket_of(us)].fetch_add(1, Relaxed);
    }

    pub fn note_queue_depth(&self, depth: u32) {
        self.max_queue_depth.fetch_max(depth, Relaxed);
    }
    pub fn note_connection(&self) {
        self.connections.fetch_add(1, Relaxed);
    }
    pub fn note_rejected_connection(&self) {
        self.connections_rejected.fetch_add(1, Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }
    pub fn inferences(&self) -> u64 {
        self.inferences.load(Relaxed)
    }
    pub fn errors(&self, code: ErrorCode) -> u64 {
        self.errors[code.index()].load(Relaxed)
    }
    pub fn max_queue_depth(&self) -> u32 {
        self.max_queue_depth.load(Relaxed)
    }
    pub fn connections(&self) -> u64 {
        self.connections.load(Relaxed)
    }
    pub fn connections_rejected(&self) -> u64 {
        self.connections_rejected.load(Relaxed)
    }
    pub fn bucket(&self, i: usize) -> u64 {
        self.buckets.get(i).map_or(0, |b| b.load(Relaxed))
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1) of the recorded latencies;
    /// 0 when nothing was recorded.
    pub fn latency_quantile_us(&self, q: f64) -> u64 {
        let mut counts = [0u64; HISTOGRAM_BUCKETS];
        for (c, b) in counts.iter_mut().zip(&self.buckets) {
            *c = b.load(Relaxed);
        }
        quantile_of(&counts, q)
    }
}

/// The upper bound of the bucket that holds quantile `q` of a histogram (0 if empty).
pub fn quantile_of(counts: &[u64], q: f64) -> u64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    // The rank of the quantile, 1-based: the smallest value with at least q * total at or below.
    let rank = (libm::ceil(q.clamp(0.0, 1.0) * total as f64) as u64).max(1);
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return histogram_bucket_upper_us(i);
        }
    }
    histogram_bucket_upper_us(counts.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(16), 0);
        assert_eq!(bucket_of(17), 1);
        assert_eq!(bucket_of(32), 4);
        assert_eq!(bucket_of(33), 5);
        assert_eq!(bucket_of(u64::MAX), HISTOGRAM_BUCKETS - 1);
        for us in [1u64, 100, 12_345, 9_999_999] {
            let b = bucket_of(us);
            assert!(histogram_bucket_upper_us(b) >= us);
            assert!(b == 0 || histogram_bucket_upper_us(b - 1) < us);
        }
    }

    #[test]
    fn quantiles_follow_the_recorded_latencies() {
        let m = Metrics::new();
        assert_eq!(m.latency_quantile_us(0.5), 0);
        // 90 fast (1 ms) and 10 slow (100 ms) inferences.
        for _ in 0..90 {
            m.record_inference(1_000);
        }
        for _ in 0..10 {
            m.record_inference(100_000);
        }
        let (p50, p90, p99) = (
            m.latency_quantile_us(0.5),
            m.latency_quantile_us(0.9),
            m.latency_quantile_us(0.99),
        );
        assert!((1_000..1_200).contains(&p50), "{p50}");
        assert!((1_000..1_200).contains(&p90), "{p90}");
        assert!((100_000..120_000).contains(&p99), "{p99}");
        m.record_request(Some(ErrorCode::Busy));
        m.record_request(None);
        assert_eq!((m.requests(), m.errors(ErrorCode::Busy)), (2, 1));
        assert_eq!(m.inferences(), 100);
    }
}
