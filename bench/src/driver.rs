//! The closed-loop driver: N workers, each with one request in flight, run for a warm-up and then a
//! fixed measured window; latencies of requests started inside the window go into HDR histograms.
//! A progress line on stderr shows the current rate once a second.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use crate::client::Connector;
use crate::stats::Latencies;
use crate::workload::Mix;
use crate::workload::Rng;

/// How long to run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Not measured: lets connections, caches and batching settle.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// What one run measured.
pub struct Measured {
    /// Latencies of successful requests in the window.
    pub latencies: Latencies,
    /// Failed requests in the window.
    pub errors: u64,
    /// The first error message seen.
    pub first_error: Option<String>,
    /// The window's actual length.
    pub elapsed: Duration,
}

struct WorkerResult {
    latencies: Latencies,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `workers` closed-loop workers of `mix` over `connector`, labelled `label` in the progress line.
pub async fn run(
    label: &str,
    connector: Arc<Connector>,
    mix: Mix,
    workers: usize,
    timing: Timing,
) -> anyhow::Result<Measured> {
    let mut clients = Vec::with_capacity(workers);
    for worker in 0..workers {
        clients.push(connector.client(worker).await?);
    }
    let start = Instant::now();
    let measure_from = start + timing.warmup;
    let end = measure_from + timing.duration;
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(workers);
    for (worker, mut client) in clients.into_iter().enumerate() {
        let done = done.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(worker as u64 + 1);
            let mut result = WorkerResult {
                latencies: Latencies::new(),
                errors: 0,
                first_error: None,
            };
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let outcome = client.call(mix.next_op(&mut rng)).await;
                let measured = began >= measure_from;
                match outcome {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        if measured {
                            result
                                .latencies
                                .record_us(began.elapsed().as_micros() as u64);
                        }
                    }
                    Err(err) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if measured {
                            result.errors += 1;
                            result.first_error.get_or_insert_with(|| format!("{err:#}"));
                        }
                        // Do not spin on a dead endpoint.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            result
        }));
    }
    let progress = tokio::spawn(progress_line(
        label.to_string(),
        done,
        failed,
        start,
        measure_from,
        end,
    ));
    let mut total = WorkerResult {
        latencies: Latencies::new(),
        errors: 0,
        first_error: None,
    };
    for task in tasks {
        let result = task.await?;
        total.latencies.merge(&result.latencies);
        total.errors += result.errors;
        if total.first_error.is_none() {
            total.first_error = result.first_error;
        }
    }
    progress.abort();
    eprintln!();
    Ok(Measured {
        latencies: total.latencies,
        errors: total.errors,
        first_error: total.first_error,
        elapsed: Instant::now()
            .saturating_duration_since(measure_from)
            .min(timing.duration),
    })
}

async fn progress_line(
    label: String,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) {
    use std::io::IsTerminal as _;
    // On a terminal: one line rewritten every second; in a log: a line every 5 seconds.
    let (every, end_of_line) = if std::io::stderr().is_terminal() {
        (Duration::from_secs(1), "")
    } else {
        (Duration::from_secs(5), "\n")
    };
    let mut last = 0;
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let total = done.load(Ordering::Relaxed);
        let phase = if now < measure_from {
            "warm-up"
        } else {
            "measure"
        };
        eprint!(
            "\r  {label:<28} {phase} {:>5.1}/{:.0}s  {:>8.0} ops/s  errors {:<6}{end_of_line}",
            now.duration_since(start).as_secs_f64(),
            end.duration_since(start).as_secs_f64(),
            (total - last) as f64 / every.as_secs_f64(),
            failed.load(Ordering::Relaxed),
        );
        let _ = std::io::stderr().flush();
        last = total;
    }
}
