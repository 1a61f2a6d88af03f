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
    /// No answer at all: every connection counted as an error.
    pub fn failed(connections: usize) -> Self {
        Self {
            requests: 0,
            errors: connections,
            elapsed: Duration::ZERO,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
        }
    }

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

/// The same, with a lean HTTP/1.1 client (like wrk): each connection writes
/// the one request, already serialised, and reads the answer by its
/// `Content-Length`, so the generator spends little CPU per request and
/// limits the fastest server less. Reconnects when the server closes.
pub async fn run_lean(request: Request, connections: usize, duration: Duration) -> Stats {
    let Some((raw, host)) = serialise(&request) else {
        return Stats::failed(connections);
    };
    // One thread with one event loop, as wrk runs on each of its threads: a
    // multi-threaded runtime squeezed onto the load tool's one core spends its
    // time handing the connections' tasks between workers. The thread takes
    // the caller's core affinity.
    let (done, stats) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let stats = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(lean_run(raw, host, connections, duration)));
        let _ = done.send(stats);
    });
    match stats.await {
        Ok(Ok(stats)) => stats,
        _ => Stats::failed(connections),
    }
}

async fn lean_run(raw: Vec<u8>, host: String, connections: usize, duration: Duration) -> Stats {
    let raw = Arc::new(raw);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (raw, host) = (raw.clone(), host.clone());
            tokio::spawn(async move { lean_connection(&raw, &host, deadline).await })
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

/// The request's bytes and the `host:port` to connect to.
fn serialise(request: &Request) -> Option<(Vec<u8>, String)> {
    let url = url::Url::parse(&request.url).ok()?;
    let host = format!("{}:{}", url.host_str()?, url.port_or_known_default()?);
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&request.form)
        .finish();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body.as_bytes());
    Some((raw, host))
}

/// One keep-alive connection sending until the deadline.
async fn lean_connection(raw: &[u8], host: &str, deadline: Instant) -> (Vec<Duration>, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut buffer = vec![0u8; 16 * 1024];
    let mut stream: Option<tokio::net::TcpStream> = None;
    while Instant::now() < deadline {
        let mut connection = match stream.take() {
            Some(open) => open,
            None => match tokio::net::TcpStream::connect(host).await {
                Ok(fresh) => {
                    let _ = fresh.set_nodelay(true);
                    fresh
                }
                Err(_) => {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        if connection.write_all(raw).await.is_err() {
            errors += 1;
            continue;
        }
        // Read the head, then the body by its length, its last chunk, or
        // (no length, connection closing) to the end.
        let mut filled = 0;
        let answer = loop {
            if filled == buffer.len() {
                buffer.resize(buffer.len() * 2, 0);
            }
            let read = connection.read(&mut buffer[filled..]).await;
            let ended = matches!(read, Ok(0) | Err(_));
            if let Ok(n) = read {
                filled += n;
            }
            match parse_head(&buffer[..filled]) {
                Some(head) if head.complete(&buffer[..filled], ended) => break Some(head),
                _ if ended => break None,
                _ => {}
            }
        };
        match answer {
            Some(head) if (200..300).contains(&head.status) => {
                latencies.push(sent.elapsed());
                if !head.close {
                    stream = Some(connection);
                }
            }
            _ => errors += 1,
        }
    }
    (latencies, errors)
}

struct Head {
    status: u16,
    /// Where the body starts.
    body: usize,
    length: Option<usize>,
    chunked: bool,
    close: bool,
}

impl Head {
    /// Whether `bytes` hold the whole answer (`ended`: the server closed).
    fn complete(&self, bytes: &[u8], ended: bool) -> bool {
        match self.length {
            Some(length) => bytes.len() >= self.body + length,
            None if self.chunked => bytes[self.body..].ends_with(b"0\r\n\r\n"),
            None => ended,
        }
    }
}

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    Some(Head {
        status,
        body: end,
        length,
        chunked,
        // Without a length or chunks only the close ends the body.
        close: close || (length.is_none() && !chunked),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_answer_by_its_length_and_sees_a_close() {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        let head = parse_head(answer).unwrap();
        assert_eq!((head.status, head.close), (200, true));
        assert!(head.complete(answer, false));
        assert!(!head.complete(&answer[..answer.len() - 1], false));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let head = parse_head(chunked).unwrap();
        assert!(head.complete(chunked, false) && !head.close);
        let until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello";
        let head = parse_head(until_close).unwrap();
        assert!(!head.complete(until_close, false) && head.complete(until_close, true));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n").is_none());
        let (raw, host) = serialise(&Request {
            url: "http://127.0.0.1:8000/twiml/x?a=1".into(),
            headers: vec![("X-Twilio-Signature".into(), "s".into())],
            form: vec![("CallSid".into(), "CA1".into())],
        })
        .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        assert_eq!(host, "127.0.0.1:8000");
        assert!(raw.starts_with("POST /twiml/x?a=1 HTTP/1.1\r\n"), "{raw}");
        assert!(raw.ends_with("\r\n\r\nCallSid=CA1"), "{raw}");
    }
}

/// wrk (Debian's `wrk` package), when installed: the client the issue's
/// side-by-side figures came from. One thread, `connections` keep-alive
/// connections, the same signed POST (a Lua script sets method, headers and
/// body); it runs on the caller's cores. `None` when wrk is not installed.
pub async fn run_wrk(request: &Request, connections: usize, duration: Duration) -> Option<Stats> {
    let script = wrk_script(request);
    let path = std::env::temp_dir().join(format!("warm-transfer-wrk-{}.lua", std::process::id()));
    std::fs::write(&path, script).ok()?;
    let output = tokio::process::Command::new("wrk")
        .args(["-t1", &format!("-c{connections}")])
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(&path)
        .arg(&request.url)
        .output()
        .await;
    let _ = std::fs::remove_file(&path);
    let output = output.ok().filter(|o| o.status.success())?;
    parse_wrk(&String::from_utf8_lossy(&output.stdout))
}

/// Whether wrk is on the PATH.
pub fn wrk_installed() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
}

fn wrk_script(request: &Request) -> String {
    let lua = |s: &str| format!("{s:?}"); // A Rust-escaped string is a valid Lua string here.
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&request.form)
        .finish();
    let mut script = format!(
        "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n",
        lua(&body)
    );
    for (name, value) in &request.headers {
        script.push_str(&format!("wrk.headers[{}] = {}\n", lua(name), lua(value)));
    }
    script
}

/// Reads wrk's summary: the answered requests, the errors (non-2xx answers
/// and socket errors), the elapsed time and the 50th/99th percentiles of
/// its `--latency` distribution.
fn parse_wrk(out: &str) -> Option<Stats> {
    let duration = |text: &str| -> Option<Duration> {
        let split = text.find(|c: char| c.is_ascii_alphabetic())?;
        let (number, unit) = text.split_at(split);
        let number: f64 = number.trim().parse().ok()?;
        let secs = match unit.trim() {
            "us" => number / 1e6,
            "ms" => number / 1e3,
            "s" => number,
            "m" => number * 60.0,
            _ => return None,
        };
        Some(Duration::from_secs_f64(secs))
    };
    let mut total = None;
    let mut elapsed = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0usize;
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", time, ..] => {
                total = n.parse::<usize>().ok();
                elapsed = duration(time.trim_end_matches(','));
            }
            ["50%", value] => p50 = duration(value),
            ["99%", value] => p99 = duration(value),
            ["Non-2xx", "or", _, _, n] => {
                errors += n.parse::<usize>().unwrap_or(0);
            }
            ["Socket", "errors:", ..] => {
                errors += line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<usize>().ok())
                    .sum::<usize>();
            }
            _ => {}
        }
    }
    let total = total?;
    Some(Stats {
        requests: total.saturating_sub(errors),
        errors,
        elapsed: elapsed?,
        p50: p50?,
        p99: p99?,
    })
}

#[cfg(test)]
mod wrk_tests {
    use super::*;

    #[test]
    fn reads_wrks_summary() {
        let out = "Running 5s test @ http://127.0.0.1:1/twiml/dial-customer
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   610.20us  300.11us   9.26ms   90.12%
    Req/Sec    17.68k     1.02k   19.20k    80.00%
  Latency Distribution
     50%  497.00us
     75%  620.00us
     90%  800.00us
     99%    2.60ms
  87902 requests in 5.00s, 80.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  17580.40
Transfer/sec:     16.02MB
";
        let stats = parse_wrk(out).expect("a summary");
        assert_eq!(stats.errors, 10);
        assert_eq!(stats.requests, 87_892);
        assert_eq!(stats.elapsed, Duration::from_secs(5));
        assert_eq!(stats.p50, Duration::from_micros(497));
        assert_eq!(stats.p99, Duration::from_micros(2_600));
    }

    #[test]
    fn a_script_carries_the_signed_request() {
        let script = wrk_script(&Request {
            url: "http://127.0.0.1:1/x".into(),
            headers: vec![("X-Twilio-Signature".into(), "a+b/c=".into())],
            form: vec![
                ("CallSid".into(), "CA1".into()),
                ("To".into(), "+1 555".into()),
            ],
        });
        assert!(
            script.contains("wrk.body = \"CallSid=CA1&To=%2B1+555\""),
            "{script}"
        );
        assert!(
            script.contains("wrk.headers[\"X-Twilio-Signature\"] = \"a+b/c=\""),
            "{script}"
        );
    }
}
