//! Lambda invocations and DynamoDB reads per transferred call, with the
//! console polling (before push) and following by push (after), measured
//! on the local stack. `--talk-secs N` (default 30): how long agent one
//! talks with the customer before the transfer.

use std::time::Duration;

use warm_transfer_dev::bench::push_costs::{measure, table, writers};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut talk = 30;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--talk-secs" => {
                talk = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--talk-secs needs a number")?;
            }
            other => return Err(format!("unknown option {other} (try --talk-secs N)").into()),
        }
    }
    let talk = Duration::from_secs(talk);
    let before = measure(false, talk).await?;
    let after = measure(true, talk).await?;
    print!("{}", table(&before, &after));
    print!("\nWrites by function, push:\n{}", writers(&after));
    Ok(())
}
