//! The latencies of one kind of query or console page: the percentiles of what concurrent
//! clients measured. The query and console benchmarks produce them and the summary prints
//! them, so they live apart from both.

use std::time::Duration;

/// One kind of query (or console page) and its latencies.
pub struct Latencies {
    pub name: &'static str,
    pub calls: usize,
    pub errors: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    /// The percentiles of what concurrent clients measured, each its times and its errors.
    pub async fn gather(name: &'static str, clients: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>) -> Latencies {
        let (mut times, mut errors) = (Vec::new(), 0);
        for client in clients {
            if let Ok((client_times, client_errors)) = client.await {
                times.extend(client_times);
                errors += client_errors;
            }
        }
        Latencies::of(name, times, errors)
    }

    /// The percentiles of the times of the calls that succeeded.
    pub fn of(name: &'static str, mut times: Vec<Duration>, errors: usize) -> Latencies {
        times.sort_unstable();
        let at = |q: f64| times.get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1))).copied().unwrap_or_default();
        let (p50, p95, p99) = (at(0.50), at(0.95), at(0.99));
        Latencies { name, calls: times.len(), errors, p50, p95, p99, max: times.last().copied().unwrap_or_default() }
    }
}
