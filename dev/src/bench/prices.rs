//! List prices and the arithmetic from counted use to dollars, for the
//! cost benchmark (`cost`). Every price is here, with where it was read and
//! when; change one here and the table follows. US East (N. Virginia),
//! on-demand, no free tier, no volume tiers beyond the first.

use std::time::Duration;

/// When the prices below were read.
pub const READ_ON: &str = "2026-12-04";

/// A list price: dollars per `per` of `unit` (singular when `per` is 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub usd: f64,
    pub per: f64,
    pub unit: &'static str,
    /// Where the figure was read.
    pub source: &'static str,
}

impl Price {
    pub fn of(&self, quantity: f64) -> f64 {
        quantity * self.usd / self.per
    }
}

/// AWS's pricing pages render their figures from script tokens, so the
/// sources below are the third-party pages that carry them as text; each
/// names AWS's page as its own source.
pub const LAMBDA_ARM64_GB_SECOND: Price = Price {
    usd: 0.0000133334,
    per: 1.0,
    unit: "GB-s (arm64)",
    source: "https://app.unpkg.com/artillery@2.0.28/files/lib/platform/aws-lambda/prices.js (from https://aws.amazon.com/lambda/pricing/)",
};
pub const LAMBDA_REQUEST: Price = Price {
    usd: 0.20,
    per: 1e6,
    unit: "requests",
    source: "https://aws.amazon.com/lambda/pricing/ (the Managed Instances request charge, the same figure, as transcribed at https://raw.githubusercontent.com/api-evangelist/aws-lambda/refs/heads/main/plans/aws-lambda-plans-pricing.yml)",
};
/// On-demand, after the reduction of November 2024 (half the price before).
pub const DYNAMODB_READ_UNIT: Price = Price {
    usd: 0.125,
    per: 1e6,
    unit: "read request units",
    source: "https://airbyte.com/data-engineering-resources/dynamodb-pricing (US East, after the November 2024 reduction)",
};
pub const DYNAMODB_WRITE_UNIT: Price = Price {
    usd: 0.625,
    per: 1e6,
    unit: "write request units",
    source: "https://airbyte.com/data-engineering-resources/dynamodb-pricing (US East, after the November 2024 reduction)",
};
/// Per request of up to 512 KB, the first 300 million a month.
pub const HTTP_API_REQUEST: Price = Price {
    usd: 1.00,
    per: 1e6,
    unit: "HTTP API requests",
    source: "https://amnic.com/blogs/aws-api-gateway-pricing (citing https://aws.amazon.com/api-gateway/pricing/)",
};
/// Per message of up to 32 KB, the first billion a month.
pub const WEBSOCKET_MESSAGE: Price = Price {
    usd: 1.00,
    per: 1e6,
    unit: "WebSocket messages",
    source: "https://amnic.com/blogs/aws-api-gateway-pricing (citing https://aws.amazon.com/api-gateway/pricing/)",
};
pub const WEBSOCKET_CONNECTION_MINUTE: Price = Price {
    usd: 0.25,
    per: 1e6,
    unit: "connection minutes",
    source: "https://amnic.com/blogs/aws-api-gateway-pricing (citing https://aws.amazon.com/api-gateway/pricing/)",
};
pub const SECRET_MONTH: Price = Price {
    usd: 0.40,
    per: 1.0,
    unit: "secret-month",
    source: "https://hivebook.wiki/wiki/aws-secrets-manager-rotated-secrets-dynamic-db-credentials-kms",
};
pub const SECRET_CALL: Price = Price {
    usd: 0.05,
    per: 10_000.0,
    unit: "API calls",
    source: "https://hivebook.wiki/wiki/aws-secrets-manager-rotated-secrets-dynamic-db-credentials-kms",
};

/// Twilio, US numbers, pay-as-you-go, before volume discounts. Twilio bills
/// each leg and each conference participant by the minute, rounded up.
pub const TWILIO_OUTBOUND_MINUTE: Price = Price {
    usd: 0.0140,
    per: 1.0,
    unit: "outbound minute (US)",
    source: "https://www.twilio.com/en-us/voice/pricing/us (not retrievable as text here; Twilio's support article https://support.twilio.com/hc/en-us/articles/223183328 works an example at $0.013)",
};
pub const TWILIO_CONFERENCE_MINUTE: Price = Price {
    usd: 0.0018,
    per: 1.0,
    unit: "conference participant-minute",
    source: "https://www.twilio.com/en-us/voice/pricing/us (not retrievable as text here; https://www.twilio.com/docs/voice/twiml/conference says a per-participant-minute price is added to the voice minutes)",
};

/// The seed's host: one small always-on instance (Linux, on-demand) and
/// its root volume.
pub const EC2_T4G_SMALL_HOUR: Price = Price {
    usd: 0.0168,
    per: 1.0,
    unit: "t4g.small hour",
    source: "https://aws.amazon.com/ec2/pricing/on-demand/ (rendered by script; not confirmed as text here)",
};
pub const EBS_GP3_GB_MONTH: Price = Price {
    usd: 0.08,
    per: 1.0,
    unit: "gp3 GB-month",
    source: "https://aws.amazon.com/ebs/pricing/ (rendered by script; not confirmed as text here)",
};
pub const HOURS_PER_MONTH: f64 = 730.0;
pub const SEED_ROOT_VOLUME_GB: f64 = 8.0;

/// Assumed time a request takes in the region, added to each invocation's
/// measured duration (locally, dynalite and the simulator answer on
/// loopback in well under a millisecond to a few milliseconds).
/// DynamoDB: AWS expects single-digit milliseconds on average for GetItem
/// and PutItem (https://repost.aws/knowledge-center/dynamodb-high-latency);
/// 5 ms is an assumption within that.
pub const DYNAMODB_LATENCY_MS: u64 = 5;
/// Twilio's REST API from us-east-1: an assumption, not measured.
pub const TWILIO_LATENCY_MS: u64 = 150;
/// PostToConnection from the publisher to API Gateway's management
/// endpoint in the same region: an assumption, not measured.
pub const POST_LATENCY_MS: u64 = 10;

/// Every function's MemorySize (`template.yaml`, Globals; no function sets
/// its own: `cost` checks).
pub const MEMORY_MB: u64 = 128;

/// Billed milliseconds of one invocation: its measured duration plus the
/// assumed in-region time of each request it made one after the other,
/// rounded up to the next millisecond.
pub fn billed_ms(measured: Duration, dynamodb: u64, twilio: u64, posts: u64) -> u64 {
    let added =
        dynamodb * DYNAMODB_LATENCY_MS + twilio * TWILIO_LATENCY_MS + posts * POST_LATENCY_MS;
    (measured.as_secs_f64() * 1000.0).ceil() as u64 + added
}

/// GB-seconds of `ms` billed at `memory_mb`.
pub fn gb_seconds(ms: u64, memory_mb: u64) -> f64 {
    ms as f64 / 1000.0 * memory_mb as f64 / 1024.0
}

/// What one transferred call uses of what AWS bills.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub lambda_requests: f64,
    pub gb_seconds: f64,
    pub read_units: f64,
    pub write_units: f64,
    pub http_requests: f64,
    pub ws_messages: f64,
    pub ws_minutes: f64,
}

/// Its dollars, line by line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bill {
    pub lambda_requests: f64,
    pub lambda_compute: f64,
    pub reads: f64,
    pub writes: f64,
    pub http_requests: f64,
    pub ws_messages: f64,
    pub ws_minutes: f64,
}

impl Bill {
    pub fn total(&self) -> f64 {
        self.lambda_requests
            + self.lambda_compute
            + self.reads
            + self.writes
            + self.http_requests
            + self.ws_messages
            + self.ws_minutes
    }
}

impl Usage {
    pub fn bill(&self) -> Bill {
        Bill {
            lambda_requests: LAMBDA_REQUEST.of(self.lambda_requests),
            lambda_compute: LAMBDA_ARM64_GB_SECOND.of(self.gb_seconds),
            reads: DYNAMODB_READ_UNIT.of(self.read_units),
            writes: DYNAMODB_WRITE_UNIT.of(self.write_units),
            http_requests: HTTP_API_REQUEST.of(self.http_requests),
            ws_messages: WEBSOCKET_MESSAGE.of(self.ws_messages),
            ws_minutes: WEBSOCKET_CONNECTION_MINUTE.of(self.ws_minutes),
        }
    }

    pub fn times(&self, n: f64) -> Usage {
        Usage {
            lambda_requests: self.lambda_requests * n,
            gb_seconds: self.gb_seconds * n,
            read_units: self.read_units * n,
            write_units: self.write_units * n,
            http_requests: self.http_requests * n,
            ws_messages: self.ws_messages * n,
            ws_minutes: self.ws_minutes * n,
        }
    }
}

/// Twilio's billed minutes of one call, by leg, as the benchmark's call
/// runs: agent one and the customer talk, agent one makes the warm
/// transfer, agent two answers, agent one leaves, agent two and the
/// customer talk, the customer hangs up. Each rounded up to the minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallMinutes {
    /// Outbound legs: agent one, the customer (dialed from agent one's
    /// leg), agent two.
    pub legs: [f64; 3],
    /// Conference participants from the transfer on: the customer, agent
    /// one until leaving, agent two.
    pub conference: [f64; 3],
}

/// The 4-minute call the cost table prices: about 3 minutes of talk, the
/// transfer, about 1 minute with agent two.
pub const FOUR_MINUTE_CALL: CallMinutes = CallMinutes {
    legs: [3.0, 4.0, 1.0],
    conference: [1.0, 1.0, 1.0],
};

impl CallMinutes {
    pub fn outbound(&self) -> f64 {
        self.legs.iter().sum()
    }

    pub fn participant_minutes(&self) -> f64 {
        self.conference.iter().sum()
    }

    /// Twilio's charges for the call: voice minutes and conference.
    pub fn dollars(&self) -> (f64, f64) {
        (
            TWILIO_OUTBOUND_MINUTE.of(self.outbound()),
            TWILIO_CONFERENCE_MINUTE.of(self.participant_minutes()),
        )
    }
}

/// The seed's always-on instance and its volume, per month.
pub fn seed_month() -> f64 {
    EC2_T4G_SMALL_HOUR.of(HOURS_PER_MONTH) + EBS_GP3_GB_MONTH.of(SEED_ROOT_VOLUME_GB)
}

/// What the stack costs a month whatever the calls: the secret; each
/// function that reads it, one instance kept warm all month re-reading it
/// every five minutes (an upper bound for a quiet centre); the reconciler,
/// run every minute, its four index queries (eventually consistent, the
/// minimum 0.5 read unit each) and an assumed 20 ms billed per run.
pub fn fixed_month(secret_readers: u64) -> f64 {
    let minutes = HOURS_PER_MONTH * 60.0;
    let secret_reads = secret_readers as f64 * HOURS_PER_MONTH * 12.0;
    SECRET_MONTH.of(1.0)
        + SECRET_CALL.of(secret_reads)
        + LAMBDA_REQUEST.of(minutes)
        + DYNAMODB_READ_UNIT.of(minutes * 4.0 * 0.5)
        + LAMBDA_ARM64_GB_SECOND.of(minutes * gb_seconds(20, MEMORY_MB))
}

/// A monthly cost spread over `calls` transferred calls a month, per 1,000.
pub fn per_thousand(monthly: f64, calls: f64) -> f64 {
    monthly / calls * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn billed_time_adds_the_assumed_latencies_and_rounds_up() {
        // 2.3 ms measured -> 3; two DynamoDB requests 10; one Twilio 150;
        // one post 10.
        let ms = billed_ms(Duration::from_micros(2_300), 2, 1, 1);
        assert_eq!(ms, 3 + 2 * 5 + 150 + 10);
        assert_eq!(billed_ms(Duration::from_millis(4), 0, 0, 0), 4);
        assert!(close(gb_seconds(1000, 128), 0.125));
    }

    #[test]
    fn known_use_gives_known_dollars() {
        // A million of each, and 8 GB-s per the 128 MB at 64 s.
        let usage = Usage {
            lambda_requests: 1e6,
            gb_seconds: gb_seconds(64_000, 128),
            read_units: 1e6,
            write_units: 1e6,
            http_requests: 1e6,
            ws_messages: 1e6,
            ws_minutes: 1e6,
        };
        let bill = usage.bill();
        assert!(close(bill.lambda_requests, 0.20));
        assert!(close(bill.lambda_compute, 8.0 * 0.0000133334));
        assert!(close(bill.reads, 0.125));
        assert!(close(bill.writes, 0.625));
        assert!(close(bill.http_requests, 1.0));
        assert!(close(bill.ws_messages, 1.0));
        assert!(close(bill.ws_minutes, 0.25));
        assert!(close(
            bill.total(),
            0.20 + 8.0 * 0.0000133334 + 0.125 + 0.625 + 1.0 + 1.0 + 0.25
        ));
        assert!(close(usage.times(2.0).bill().total(), 2.0 * bill.total()));
    }

    #[test]
    fn twilio_and_the_seed() {
        let (voice, conference) = FOUR_MINUTE_CALL.dollars();
        assert!(close(voice, 8.0 * 0.014));
        assert!(close(conference, 3.0 * 0.0018));
        // 730 h x $0.0168 + 8 GB x $0.08 = $12.904 a month.
        assert!(close(seed_month(), 12.904));
        assert!(close(per_thousand(seed_month(), 10_000.0), 1.2904));
        // $0.40 + 8,760 reads x $0.05/10k + 43,800 x ($0.20/M + 2 RRU x
        // $0.125/M + 0.0025 GB-s x $0.0000133334).
        let expected = 0.40
            + 8_760.0 * 0.05 / 10_000.0
            + 43_800.0 * (0.20e-6 + 2.0 * 0.125e-6 + 0.0025 * 0.0000133334);
        assert!(close(fixed_month(1), expected));
    }
}
