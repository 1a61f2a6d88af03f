//! The flood bench (BENCHMARKS.md, "Flood"): anonymous large bodies thrown
//! at the Twilio routes while a normal call runs through the local stack;
//! what each refusal costs the product, over `--runs N` runs (default 3).
//! `--connections N` (default 8), `--body-bytes N` (default 5,800,000).

use warm_transfer_dev::bench::flood::{Options, run};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut options = Options::default();
    let mut runs = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> Result<usize, String> {
            args.next()
                .and_then(|n| n.parse().ok())
                .ok_or(format!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--runs" => runs = value()?,
            "--connections" => options.connections = value()?,
            "--body-bytes" => options.body_bytes = value()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    // The product on two threads of its own, named so their CPU time is
    // read apart from the flood's client.
    let product = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("product")
        .enable_all()
        .build()?;
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "| run | refused | refused/s | product CPU per refusal (server + handler) | handler alone: unsigned 403 / signed 413 | refusal p50 / p99 | RSS before / peak / after (MB) | not refused | the call |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut per_refusal = Vec::new();
    for n in 1..=runs {
        let report = client.block_on(run(&options, product.handle().clone()))?;
        per_refusal.push(report.cpu_per_refusal().as_secs_f64() * 1e6);
        println!(
            "| {n} | {} | {:.0} | {:.0} us | {:.1} / {:.1} us | {:.1} / {:.1} ms | {:.0} / {:.0} / {:.0} | {} | {}{} |",
            report.refused,
            report.refusals_per_second(),
            report.cpu_per_refusal().as_secs_f64() * 1e6,
            report.handler_unsigned.as_secs_f64() * 1e6,
            report.handler_oversized.as_secs_f64() * 1e6,
            report.p50.as_secs_f64() * 1e3,
            report.p99.as_secs_f64() * 1e3,
            report.rss_before_mb,
            report.rss_peak_mb,
            report.rss_after_mb,
            report.not_refused,
            report.call_state,
            if report.call_problems.is_empty() {
                ", every webhook answered, customer never alone".to_owned()
            } else {
                format!(", problems: {:?}", report.call_problems)
            },
        );
    }
    let min = per_refusal.iter().copied().fold(f64::INFINITY, f64::min);
    let max = per_refusal.iter().copied().fold(0.0, f64::max);
    println!("\nproduct CPU per refusal over {runs} runs: {min:.0}-{max:.0} us");
    Ok(())
}
