//! Latency histograms and the result of one benchmark row.

use hdrhistogram::Histogram;
use serde::Deserialize;
use serde::Serialize;

/// Highest latency the histograms track (60 s, in microseconds); slower requests are clamped.
const MAX_LATENCY_US: u64 = 60_000_000;

/// A latency histogram in microseconds with 3 significant digits.
#[derive(Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Self {
        // 1 µs .. 60 s at 3 significant digits is a valid configuration: this cannot fail.
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .unwrap_or_else(|_| Histogram::new(3).expect("3 significant digits are valid"));
        Latencies { histogram }
    }

    /// Records one latency (clamped to the tracked range).
    pub fn record_us(&mut self, micros: u64) {
        self.histogram
            .saturating_record(micros.clamp(1, MAX_LATENCY_US));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail; ignore the impossible error.
        let _ = self.histogram.add(&other.histogram);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at `quantile` (0..=1) in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The largest latency in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.histogram.max() as f64 / 1000.0
    }
}

/// The measured outcome of one workload against one backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowResult {
    /// `strongroom-http`, `strongroom-grpc` or `etcd`.
    pub backend: String,
    /// The workload's id (`put-256`, ...).
    pub workload: String,
    /// Requests in flight (workers).
    pub workers: usize,
    /// Connections the workers share.
    pub conns: usize,
    /// Measured seconds (warm-up excluded).
    pub duration_s: f64,
    /// Successful requests completed in the measured window.
    pub ops: u64,
    /// Failed requests in the measured window.
    pub errors: u64,
    /// Successful requests per second.
    pub ops_per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Slowest request, ms.
    pub max_ms: f64,
    /// CPU time the server processes spent per successful request, µs (all members together).
    pub server_cpu_us_per_op: f64,
    /// CPU time this driver spent per successful request, µs.
    pub client_cpu_us_per_op: f64,
    /// The first error message seen, if any.
    pub first_error: Option<String>,
}

impl RowResult {
    /// Latency percentiles (p50, p90, p99, p99.9, max) as `(label, ms)` pairs for plotting.
    pub fn percentiles(&self) -> [(&'static str, f64); 5] {
        [
            ("p50", self.p50_ms),
            ("p90", self.p90_ms),
            ("p99", self.p99_ms),
            ("p99.9", self.p999_ms),
            ("max", self.max_ms),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_merge() {
        let mut a = Latencies::new();
        for us in 1..=1000 {
            a.record_us(us);
        }
        let mut b = Latencies::new();
        b.record_us(0); // clamped to 1 µs
        b.record_us(u64::MAX); // clamped to 60 s
        a.merge(&b);
        assert_eq!(a.count(), 1002);
        let p50 = a.quantile_ms(0.5);
        assert!((0.49..=0.51).contains(&p50), "p50 {p50}");
        assert!(a.max_ms() >= 59_000.0);
        assert!(a.quantile_ms(0.99) <= 1.0);
    }
}
