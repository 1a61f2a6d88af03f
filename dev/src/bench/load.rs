//! A small load generator: N connections, each sending requests back to
//! back for a fixed time; the same tool measures every server compared.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request to send: method, URL, headers and form body.
#[derive(Clone)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Stats {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Stats {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `request` from `connections` clients for `duration`.
pub async fn run(request: Request, connections: usize, duration: Duration) -> Stats {
    let request = Arc::new(request);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move {
                // One client per task: its own keep-alive connection.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap_or_default();
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let mut builder = client.post(&request.url).form(&request.form);
                    for (name, value) in &request.headers {
                        builder = builder.header(name, value);
                    }
                    match builder.send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            latencies.push(sent.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((mut l, e)) = task.await {
            latencies.append(&mut l);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Stats {
        requests: latencies.len(),
        errors,
        elapsed,
        p50: super::percentile(&latencies, 50.0),
        p99: super::percentile(&latencies, 99.0),
    }
}
