//! What a transferred call costs at list prices, per 1,000 calls: the push
//! benchmark's call run `--runs N` times (default 3) on the local stack,
//! each counted from its start to the customer's hang-up (see
//! `bench::cost`). `--talk-secs N` (default 175): agent one and the
//! customer talk before the transfer; `--after-secs N` (default 55): agent
//! two and the customer after the handover. Progress on stderr, the
//! Markdown tables on stdout.

use std::time::Duration;

use warm_transfer_dev::bench::cost::{Options, measure, table};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--runs" => options.runs = number("--runs")?.max(1) as usize,
            "--talk-secs" => options.talk = Duration::from_secs(number("--talk-secs")?),
            "--after-secs" => options.after = Duration::from_secs(number("--after-secs")?),
            other => {
                return Err(format!(
                    "unknown option {other} (try --runs N, --talk-secs N, --after-secs N)"
                )
                .into());
            }
        }
    }
    let runs = measure(options).await?;
    print!("{}", table(&runs, &options));
    Ok(())
}
