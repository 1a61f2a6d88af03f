//! What a call costs: the push benchmark's warm-transferred call
//! (`push_costs`), run several times on the local stack, each counted from
//! its start to its end (the customer's hang-up), and priced at list
//! prices (`prices`) per 1,000 calls: Lambda requests and GB-seconds
//! (each invocation's measured duration plus an assumed in-region time per
//! request it made), DynamoDB read and write units (as billed, from the
//! items' sizes), API Gateway requests, WebSocket messages and connection
//! minutes; beside Twilio's per-minute charges for the same calls and the
//! seed's always-on instance.

use std::collections::BTreeMap;
use std::time::Duration;

use super::prices::{self, Usage};
use super::push_costs::{Costs, measure_call};
use crate::capacity::Billed;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How the calls run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub runs: usize,
    /// Agent one and the customer talk this long before the transfer.
    pub talk: Duration,
    /// Agent two and the customer talk this long after the handover.
    pub after: Duration,
}

impl Default for Options {
    /// About the 4-minute call the Twilio figures price: 3 minutes of talk,
    /// the transfer (a few seconds), about 1 minute with agent two.
    fn default() -> Self {
        Self {
            runs: 3,
            talk: Duration::from_secs(175),
            after: Duration::from_secs(55),
        }
    }
}

/// One measured call, start to end.
#[derive(Debug, Clone)]
pub struct Run {
    pub call_secs: f64,
    pub followed_secs: f64,
    pub by_function: BTreeMap<&'static str, u64>,
    /// The handlers' wall time, summed, in ms.
    pub measured_ms: f64,
    /// Billed ms: each invocation rounded up to the ms, plus the assumed
    /// latencies.
    pub billed_ms: u64,
    pub dynamodb_reads: u64,
    pub dynamodb_writes: u64,
    /// DynamoDB requests made outside any handler (none expected).
    pub dynamodb_outside: u64,
    pub billed: Billed,
    pub rest: u64,
    pub frames: u64,
    pub connects: u64,
    pub disconnects: u64,
    pub usage: Usage,
}

/// The number of the template's functions' MemorySize settings and their
/// value: one (Globals) of [`prices::MEMORY_MB`], or the table is wrong.
fn check_memory() -> Result<(), Error> {
    let path = crate::paths::workspace().join("template.yaml");
    let template = std::fs::read_to_string(&path)?;
    let sizes: Vec<&str> = template
        .lines()
        .filter_map(|line| line.trim().strip_prefix("MemorySize:"))
        .map(str::trim)
        .collect();
    let expected = prices::MEMORY_MB.to_string();
    if sizes != [expected.as_str()] {
        return Err(format!(
            "template.yaml sets MemorySize {sizes:?}; the cost table assumes one {expected} MB for every function: update prices::MEMORY_MB and price each function at its own"
        )
        .into());
    }
    Ok(())
}

/// What one call used, from its counts.
pub fn run_of(costs: &Costs) -> Run {
    let end = &costs.end;
    let mut by_function = BTreeMap::new();
    let mut measured_ms = 0.0;
    let mut billed_ms = 0;
    let mut inside = 0;
    for invocation in &end.handled {
        *by_function.entry(invocation.function).or_default() += 1;
        measured_ms += invocation.duration.as_secs_f64() * 1000.0;
        billed_ms += prices::billed_ms(invocation.duration, invocation.dynamodb, 0, 0);
        inside += invocation.dynamodb;
    }
    // Twilio's requests and the publisher's posts are not told apart by
    // invocation; their latencies are whole milliseconds, so adding them
    // to the total bills the same as adding each to its own invocation.
    let rest: u64 = costs.rest.values().sum();
    billed_ms += prices::billed_ms(Duration::ZERO, 0, rest, end.frames);
    let op = |name: &str| end.dynamodb.get(name).copied().unwrap_or(0);
    let dynamodb_reads = op("GetItem") + op("Query") + op("Scan");
    let dynamodb_writes = op("PutItem") + op("UpdateItem") + op("DeleteItem");
    let all: u64 = end.dynamodb.values().sum();
    // Each connection is billed whole minutes (rounded up).
    let ws_minutes = end.connects as f64 * (costs.followed_secs / 60.0).ceil();
    let usage = Usage {
        lambda_requests: end.handled.len() as f64,
        gb_seconds: prices::gb_seconds(billed_ms, prices::MEMORY_MB),
        read_units: end.billed.read_units,
        write_units: end.billed.total_write_units(),
        http_requests: end.http_requests as f64,
        // `$connect` and `$disconnect` counted as messages: an upper bound.
        ws_messages: (end.frames + end.connects + end.disconnects) as f64,
        ws_minutes: if costs.push { ws_minutes } else { 0.0 },
    };
    Run {
        call_secs: costs.call_secs,
        followed_secs: costs.followed_secs,
        by_function,
        measured_ms,
        billed_ms,
        dynamodb_reads,
        dynamodb_writes,
        dynamodb_outside: all.saturating_sub(inside),
        billed: end.billed.clone(),
        rest,
        frames: end.frames,
        connects: end.connects,
        disconnects: end.disconnects,
        usage,
    }
}

/// Runs the call `options.runs` times, by push, one local stack each.
pub async fn measure(options: Options) -> Result<Vec<Run>, Error> {
    check_memory()?;
    let mut runs = Vec::new();
    for n in 1..=options.runs {
        let costs = measure_call(true, options.talk, options.after).await?;
        let run = run_of(&costs);
        eprintln!(
            "run {n}/{}: {:.0} s, {} invocations, {} billed ms, {:.1} RRU, {:.1} WRU; refused writes {:?}",
            options.runs,
            run.call_secs,
            run.usage.lambda_requests,
            run.billed_ms,
            run.usage.read_units,
            run.usage.write_units,
            run.billed.refused,
        );
        runs.push(run);
    }
    Ok(runs)
}

/// Median, min and max.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    (
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    )
}

/// `median (min–max)`, or the one value when the runs agree.
fn show(values: &[f64], format: fn(f64) -> String) -> String {
    let (median, min, max) = spread(values);
    if format(min) == format(max) {
        format(median)
    } else {
        format!("{} ({}–{})", format(median), format(min), format(max))
    }
}

/// A count or quantity: whole numbers with thousands separated, small ones
/// to two decimals.
pub fn quantity(x: f64) -> String {
    if x.abs() >= 100.0 || x.fract() == 0.0 {
        let whole = format!("{:.0}", x.abs());
        let mut out = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if x < 0.0 { format!("-{out}") } else { out }
    } else {
        format!("{x:.2}")
    }
}

/// Dollars: cents from $1 up, four significant digits below.
pub fn dollars(x: f64) -> String {
    if x >= 1.0 {
        format!("${}", quantity_cents(x))
    } else if x == 0.0 {
        "$0".to_owned()
    } else {
        let digits = (3 - x.log10().floor() as i32).max(0) as usize;
        format!("${x:.digits$}")
    }
}

fn quantity_cents(x: f64) -> String {
    let whole = quantity(x.trunc());
    format!(
        "{whole}.{:02}",
        ((x.fract() * 100.0).round() as u64).min(99)
    )
}

fn price(p: &prices::Price) -> String {
    // At least cents: $0.20, $1.00, $0.0000133334.
    let mut usd = p.usd.to_string();
    match usd.split_once('.') {
        None => usd += ".00",
        Some((_, decimals)) if decimals.len() < 2 => usd += "0",
        Some(_) => {}
    }
    if p.per == 1.0 {
        format!("${usd} per {}", p.unit)
    } else if p.per == 1e6 {
        format!("${usd} per million {}", p.unit)
    } else {
        format!("${usd} per {} {}", quantity(p.per), p.unit)
    }
}

/// The cost table per 1,000 calls and the per-call counts behind it.
pub fn table(runs: &[Run], options: &Options) -> String {
    let thousand =
        |f: fn(&Usage) -> f64| -> Vec<f64> { runs.iter().map(|r| f(&r.usage) * 1000.0).collect() };
    let bill = |f: fn(&prices::Bill) -> f64| -> Vec<f64> {
        runs.iter()
            .map(|r| f(&r.usage.times(1000.0).bill()))
            .collect()
    };
    let mut out = String::from(
        "| per 1,000 transferred calls | quantity | list price | dollars |\n|---|---|---|---|\n",
    );
    let mut line = |name: &str, q: Vec<f64>, p: &prices::Price, d: Vec<f64>| {
        out += &format!(
            "| {name} | {} | {} | {} |\n",
            show(&q, quantity),
            price(p),
            show(&d, dollars)
        );
    };
    line(
        "Lambda requests",
        thousand(|u| u.lambda_requests),
        &prices::LAMBDA_REQUEST,
        bill(|b| b.lambda_requests),
    );
    line(
        "Lambda compute, GB-s (128 MB, arm64)",
        thousand(|u| u.gb_seconds),
        &prices::LAMBDA_ARM64_GB_SECOND,
        bill(|b| b.lambda_compute),
    );
    line(
        "DynamoDB reads, RRU",
        thousand(|u| u.read_units),
        &prices::DYNAMODB_READ_UNIT,
        bill(|b| b.reads),
    );
    line(
        "DynamoDB writes, WRU",
        thousand(|u| u.write_units),
        &prices::DYNAMODB_WRITE_UNIT,
        bill(|b| b.writes),
    );
    line(
        "API Gateway HTTP API requests",
        thousand(|u| u.http_requests),
        &prices::HTTP_API_REQUEST,
        bill(|b| b.http_requests),
    );
    line(
        "WebSocket messages",
        thousand(|u| u.ws_messages),
        &prices::WEBSOCKET_MESSAGE,
        bill(|b| b.ws_messages),
    );
    line(
        "WebSocket connection minutes",
        thousand(|u| u.ws_minutes),
        &prices::WEBSOCKET_CONNECTION_MINUTE,
        bill(|b| b.ws_minutes),
    );
    let aws = bill(prices::Bill::total);
    out += &format!(
        "| **AWS, per 1,000 calls** | | | **{}** |\n",
        show(&aws, dollars)
    );
    let call = prices::FOUR_MINUTE_CALL;
    let (voice, conference) = call.dollars();
    out += &format!(
        "| Twilio voice, outbound (legs of {} + {} + {} min) | {} min | {} | {} |\n",
        call.legs[0],
        call.legs[1],
        call.legs[2],
        quantity(call.outbound() * 1000.0),
        price(&prices::TWILIO_OUTBOUND_MINUTE),
        dollars(voice * 1000.0)
    );
    out += &format!(
        "| Twilio conference, from the transfer on (3 participants) | {} participant-min | {} | {} |\n",
        quantity(call.participant_minutes() * 1000.0),
        price(&prices::TWILIO_CONFERENCE_MINUTE),
        dollars(conference * 1000.0)
    );
    out += &format!(
        "| **Twilio, per 1,000 calls** | | | **{}** |\n",
        dollars((voice + conference) * 1000.0)
    );
    let readers = warm_transfer_core::endpoint::Endpoint::ALL
        .into_iter()
        .filter(|e| e.reads_secret())
        .count() as u64;
    let fixed = prices::fixed_month(readers);
    let seed = prices::seed_month();
    for calls in [10_000.0, 100_000.0] {
        let ours: Vec<f64> = aws
            .iter()
            .map(|a| a + prices::per_thousand(fixed, calls))
            .collect();
        out += &format!(
            "| **ours at {} calls a month** (AWS above + {} a month fixed) | | | **{}** |\n",
            quantity(calls),
            dollars(fixed),
            show(&ours, dollars)
        );
        out += &format!(
            "| **the seed at {} calls a month** (t4g.small + 8 GB gp3, always on) | 730 h | {} a month | **{}** |\n",
            quantity(calls),
            dollars(seed),
            dollars(prices::per_thousand(seed, calls))
        );
    }

    // The counts behind it, per call.
    out += &format!(
        "\n| per transferred call: {} runs, median (min–max); {} s of talk, {} s after the handover | |\n|---|---|\n",
        runs.len(),
        options.talk.as_secs(),
        options.after.as_secs()
    );
    let mut row = |name: &str, f: &dyn Fn(&Run) -> f64| {
        let values: Vec<f64> = runs.iter().map(f).collect();
        out += &format!("| {name} | {} |\n", show(&values, quantity));
    };
    row("call, start to handover (s)", &|r| r.call_secs.round());
    row("Lambda invocations", &|r| r.usage.lambda_requests);
    let mut functions: Vec<&str> = runs
        .iter()
        .flat_map(|r| r.by_function.keys().copied())
        .collect();
    functions.sort_unstable();
    functions.dedup();
    for function in functions {
        row(&format!("- {function}"), &|r| {
            r.by_function.get(function).copied().unwrap_or(0) as f64
        });
    }
    row("handlers' measured time, summed (ms)", &|r| {
        r.measured_ms.round()
    });
    row(
        &format!(
            "billed ms (each rounded up; + {} ms a DynamoDB request, {} ms a Twilio request, {} ms a frame posted)",
            prices::DYNAMODB_LATENCY_MS,
            prices::TWILIO_LATENCY_MS,
            prices::POST_LATENCY_MS
        ),
        &|r| r.billed_ms as f64,
    );
    row("DynamoDB reads (GetItem, Query)", &|r| {
        r.dynamodb_reads as f64
    });
    row("DynamoDB writes (PutItem, UpdateItem, DeleteItem)", &|r| {
        r.dynamodb_writes as f64
    });
    row("DynamoDB requests outside any handler", &|r| {
        r.dynamodb_outside as f64
    });
    row("read units (RRU)", &|r| r.billed.read_units);
    row("write units on the table (WRU)", &|r| r.billed.write_units);
    row("write units on the open-sessions index", &|r| {
        r.billed.index_write_units
    });
    row("conditional writes refused", &|r| {
        r.billed.failed_writes as f64
    });
    row("- their write units", &|r| r.billed.failed_write_units);
    row("other DynamoDB errors (not billed)", &|r| {
        r.billed.errors as f64
    });
    row("largest item written (bytes)", &|r| {
        r.billed.largest_item as f64
    });
    row("most read units of one read", &|r| r.billed.largest_read);
    row("Twilio REST requests", &|r| r.rest as f64);
    row("HTTP API requests (front end, Twilio's webhooks)", &|r| {
        r.usage.http_requests
    });
    row("WebSocket: $connect, $disconnect", &|r| {
        (r.connects + r.disconnects) as f64
    });
    row("WebSocket: frames pushed", &|r| r.frames as f64);
    row("console following by WebSocket (s)", &|r| {
        r.followed_secs.round()
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_written() {
        assert_eq!(quantity(31_000.0), "31,000");
        assert_eq!(quantity(1_234_567.4), "1,234,567");
        assert_eq!(quantity(0.126), "0.13");
        assert_eq!(quantity(7.0), "7");
        assert_eq!(dollars(12.904), "$12.90");
        assert_eq!(dollars(0.012_341), "$0.01234");
        assert_eq!(dollars(1_290.4), "$1,290.40");
        assert_eq!(show(&[3.0, 1.0, 2.0], quantity), "2 (1–3)");
        assert_eq!(show(&[2.0, 2.0], quantity), "2");
        assert_eq!(price(&prices::LAMBDA_REQUEST), "$0.20 per million requests");
        assert_eq!(
            price(&prices::HTTP_API_REQUEST),
            "$1.00 per million HTTP API requests"
        );
        assert_eq!(
            price(&prices::LAMBDA_ARM64_GB_SECOND),
            "$0.0000133334 per GB-s (arm64)"
        );
    }
}
