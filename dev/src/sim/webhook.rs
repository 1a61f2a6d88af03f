//! Webhook delivery as Twilio does it: signed requests with Twilio's
//! headers, connection overrides from the URL fragment, the documented
//! retry policy, and status callbacks sent through a per-call queue that
//! tests can make lose, delay or repeat callbacks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use warm_transfer_core::signature::sign_form;

use super::Sim;

/// Which kind of callback a [`CallbackInfo`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackKind {
    /// A call's status callback (`StatusCallback` / `<Number statusCallback>`).
    Call,
    /// A conference event (`statusCallback` of `<Conference>` or
    /// `ConferenceStatusCallback` of a REST participant).
    Conference,
    /// A recording's `recordingStatusCallback`.
    Recording,
}

/// A status or conference callback about to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackInfo {
    pub kind: CallbackKind,
    /// `CallStatus` (`initiated`, `ringing`, `in-progress`, `completed`,
    /// `busy`...), `StatusCallbackEvent` (`participant-join`...) or
    /// `RecordingStatus`.
    pub event: String,
    /// `To` of the leg concerned (none on `conference-start`/`-end`).
    pub number: Option<String>,
    /// The participant's label, if any.
    pub label: Option<String>,
}

/// What a callback rule does to one callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackFault {
    /// Never sent.
    Lose,
    /// Sent after this real-time delay; later callbacks overtake it.
    Delay(Duration),
    /// Sent twice, with the same idempotency token.
    Duplicate,
}

pub(crate) type CallbackRule = Arc<dyn Fn(&CallbackInfo) -> Option<CallbackFault> + Send + Sync>;

/// One webhook request.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    /// As given to Twilio, connection-override fragment included.
    pub url: String,
    pub method: String,
    pub params: Vec<(String, String)>,
    /// What the timeline calls it.
    pub what: String,
    /// `I-Twilio-Idempotency-Token`, the same on every attempt of one event.
    pub token: String,
}

/// One webhook attempt as Twilio saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    /// The path without its query: `/twiml/dial-customer`, `/events/participant`...
    pub path: String,
    /// The HTTP status, or none when no answer came (connection, timeout).
    pub status: Option<u16>,
    /// From sending the request to reading the whole answer.
    pub latency: Duration,
}

/// Why a webhook failed, with the Twilio error code the debugger logs.
#[derive(Debug, Clone)]
pub(crate) struct HookError {
    pub code: u32,
    pub text: String,
}

/// Connection overrides (rule 6.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overrides {
    pub connect: Duration,
    pub read: Duration,
    pub total: Duration,
    pub retries: u32,
    pub policy: Vec<String>,
}

impl Default for Overrides {
    fn default() -> Self {
        // Twilio: ct 5000 ms, rt 15000 ms, tt 15000 ms, rc=1, rp=ct
        // (twilio-rules 6.6, 6.7, [overrides]).
        Self {
            connect: Duration::from_millis(5000),
            read: Duration::from_millis(15000),
            total: Duration::from_millis(15000),
            retries: 1,
            policy: vec!["ct".into()],
        }
    }
}

/// The URL without its fragment, and the overrides the fragment sets.
/// Twilio: overrides go in the URL fragment, which is never sent nor signed
/// (twilio-rules 6.3, 6.8, [overrides] [security]).
pub(crate) fn split_overrides(url: &str) -> (String, Overrides) {
    let Some((base, fragment)) = url.split_once('#') else {
        return (url.to_owned(), Overrides::default());
    };
    let mut overrides = Overrides::default();
    let ms = |v: &str, min: u64, max: u64| -> Option<Duration> {
        v.parse::<u64>()
            .ok()
            .map(|n| Duration::from_millis(n.clamp(min, max)))
    };
    for (key, value) in form_urlencoded::parse(fragment.as_bytes()) {
        match key.as_ref() {
            // Twilio: ct 100..10000, rt and tt 100..15000 (twilio-rules 6.6, [overrides]).
            "ct" => overrides.connect = ms(&value, 100, 10000).unwrap_or(overrides.connect),
            "rt" => overrides.read = ms(&value, 100, 15000).unwrap_or(overrides.read),
            "tt" => overrides.total = ms(&value, 100, 15000).unwrap_or(overrides.total),
            // Twilio: rc at most 5 (twilio-rules 6.7, [overrides]).
            "rc" => {
                overrides.retries = value.parse::<u32>().map_or(overrides.retries, |n| n.min(5))
            }
            // Twilio: rp is a comma list of ct, rt, 4xx, 5xx, all (twilio-rules 6.7, [overrides]).
            "rp" => {
                overrides.policy = value
                    .split(',')
                    .map(|p| p.trim().to_ascii_lowercase())
                    .filter(|p| !p.is_empty())
                    .collect()
            }
            _ => {}
        }
    }
    (base.to_owned(), overrides)
}

/// How one attempt went.
enum Attempt {
    Answered(u16, String),
    Connect(String),
    Timeout(String),
    Other(String),
}

impl Sim {
    pub(crate) fn new_token(&self) -> String {
        format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            self.counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )
    }

    fn client_for(&self, connect: Duration) -> reqwest::Client {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(connect)
            .or_insert_with(|| {
                reqwest::Client::builder()
                    .connect_timeout(connect)
                    .build()
                    .unwrap_or_default()
            })
            .clone()
    }

    async fn attempt(&self, hook: &Hook, url: &str, overrides: &Overrides) -> Attempt {
        let get = hook.method.eq_ignore_ascii_case("GET");
        // A GET carries the parameters in the query string and the signature
        // covers that URL alone; a POST signs the URL then the sorted form
        // fields (twilio-rules 6.2, [security]).
        let url = if get && !hook.params.is_empty() {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&hook.params)
                .finish();
            let joiner = if url.contains('?') { '&' } else { '?' };
            format!("{url}{joiner}{query}")
        } else {
            url.to_owned()
        };
        let signature = if get {
            sign_form(&self.config.auth_token, &url, &[])
        } else {
            sign_form(&self.config.auth_token, &url, &hook.params)
        };
        // Twilio: requests tied to a call have a 15 s ceiling over rt and tt
        // (twilio-rules 6.6, [overrides] [e11205]).
        let timeout = overrides
            .read
            .min(overrides.total)
            .min(Duration::from_secs(15));
        let client = self.client_for(overrides.connect);
        let request = if get {
            client.get(&url)
        } else {
            client.post(&url).form(&hook.params)
        };
        // Twilio: every webhook carries X-Twilio-Signature and X-Home-Region
        // (twilio-rules 6.1, [faq]) and I-Twilio-Idempotency-Token, the same
        // on every retry of one event (twilio-rules 6.9, U8, [overrides] [tac]).
        let result = request
            .timeout(timeout)
            .header("X-Twilio-Signature", signature)
            .header("I-Twilio-Idempotency-Token", &hook.token)
            .header("X-Home-Region", "us1")
            .header("User-Agent", "TwilioProxy/1.1")
            .send()
            .await;
        match result {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(body) => Attempt::Answered(status, body),
                    Err(e) if e.is_timeout() => Attempt::Timeout(e.to_string()),
                    Err(e) => Attempt::Other(e.to_string()),
                }
            }
            Err(e) if e.is_connect() => Attempt::Connect(e.to_string()),
            Err(e) if e.is_timeout() => Attempt::Timeout(e.to_string()),
            Err(e) => Attempt::Other(e.to_string()),
        }
    }

    /// Sends one webhook with Twilio's retry policy; the body of a 2xx.
    pub(crate) async fn deliver(&self, hook: &Hook) -> Result<String, HookError> {
        let (url, overrides) = split_overrides(&hook.url);
        let path = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let path = path.find('/').map_or(path, |i| &path[i..]).to_owned();
        let retries_on = |class: &str| overrides.policy.iter().any(|p| p == class || p == "all");
        let mut attempt_no = 0;
        loop {
            attempt_no += 1;
            let started = Instant::now();
            let outcome = self.attempt(hook, &url, &overrides).await;
            let latency = started.elapsed();
            let ms = latency.as_secs_f64() * 1000.0;
            if let Ok(mut answers) = self.answers.lock() {
                answers.push(WebhookAnswer {
                    path: path.split('?').next().unwrap_or_default().to_owned(),
                    status: match &outcome {
                        Attempt::Answered(status, _) => Some(*status),
                        _ => None,
                    },
                    latency,
                });
            }
            let (error, retry) = match outcome {
                Attempt::Answered(status, body) if (200..300).contains(&status) => {
                    self.log(format!(
                        "  -> webhook {}: {} {path} ok ({ms:.1} ms)",
                        hook.what, hook.method
                    ));
                    return Ok(body);
                }
                // Twilio: a 429 is just an error, never retried (twilio-rules 6.10, [e11217]).
                Attempt::Answered(429, _) => (
                    HookError {
                        code: 11217,
                        text: "HTTP 429".into(),
                    },
                    false,
                ),
                // Twilio: 4xx and 5xx are retried only when rp names them
                // (twilio-rules 6.7, [overrides]).
                Attempt::Answered(status, _) => (
                    HookError {
                        code: 11200,
                        text: format!("HTTP {status}"),
                    },
                    (status >= 500 && retries_on("5xx"))
                        || ((400..500).contains(&status) && retries_on("4xx")),
                ),
                // Twilio: by default one retry, only when the connection
                // fails (twilio-rules 6.7, [overrides]).
                Attempt::Connect(text) => (HookError { code: 11205, text }, retries_on("ct")),
                Attempt::Timeout(text) => (HookError { code: 11205, text }, retries_on("rt")),
                // A partial response is never retried (twilio-rules 6.7).
                Attempt::Other(text) => (HookError { code: 11200, text }, false),
            };
            self.log(format!(
                "  -> webhook {}: {} {path} FAILED {} (attempt {attempt_no})",
                hook.what, hook.method, error.text
            ));
            if !retry || attempt_no > overrides.retries {
                return Err(error);
            }
        }
    }

    /// Queues a status or conference callback behind the earlier ones of
    /// the same call or room, after the scripted callback rules.
    pub(crate) fn send_callback(self: &Arc<Self>, queue: &str, hook: Hook, info: CallbackInfo) {
        let fault = self
            .callback_rules
            .lock()
            .map(|rules| rules.iter().find_map(|rule| rule(&info)))
            .unwrap_or_default();
        match fault {
            Some(CallbackFault::Lose) => {
                self.log(format!("  -> webhook {}: LOST (scripted)", hook.what));
            }
            Some(CallbackFault::Delay(delay)) => {
                self.log(format!(
                    "  -> webhook {}: delayed {delay:?} (scripted)",
                    hook.what
                ));
                let sim = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    sim.send_status_hook(&hook).await;
                });
            }
            Some(CallbackFault::Duplicate) => {
                self.log(format!("  -> webhook {}: duplicated (scripted)", hook.what));
                self.enqueue(queue, hook.clone());
                self.enqueue(queue, hook);
            }
            None => self.enqueue(queue, hook),
        }
    }

    async fn send_status_hook(&self, hook: &Hook) {
        // Twilio: a status callback answered 4xx/5xx only logs warning 15003
        // (twilio-rules 6.5, [e15003]).
        if let Err(error) = self.deliver(hook).await {
            self.log(format!(
                "  .. warning 15003 on {}: {}",
                hook.what, error.text
            ));
        }
    }

    /// Twilio: callbacks of one call go out in order, through a queue, as
    /// separate requests; the call does not wait for them (twilio-rules 5.2,
    /// 6.12, [call] [e15002]).
    fn enqueue(self: &Arc<Self>, queue: &str, hook: Hook) {
        let start = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            let (pending, busy) = queues
                .entry(queue.to_owned())
                .or_insert_with(|| (VecDeque::new(), false));
            pending.push_back(hook);
            !std::mem::replace(busy, true)
        };
        if start {
            let sim = self.clone();
            let queue = queue.to_owned();
            tokio::spawn(async move {
                loop {
                    let next = {
                        let mut queues = sim.queues.lock().unwrap_or_else(|e| e.into_inner());
                        match queues.get_mut(&queue) {
                            Some((pending, busy)) => {
                                let next = pending.pop_front();
                                if next.is_none() {
                                    *busy = false;
                                }
                                next
                            }
                            None => None,
                        }
                    };
                    let Some(hook) = next else {
                        return;
                    };
                    sim.send_status_hook(&hook).await;
                }
            });
        }
    }

    /// Whether every queued callback has been sent.
    pub(crate) fn callbacks_idle(&self) -> bool {
        self.queues
            .lock()
            .map(|q| q.values().all(|(p, busy)| p.is_empty() && !busy))
            .unwrap_or(true)
    }
}

pub(crate) type Queues = HashMap<String, (VecDeque<Hook>, bool)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_connection_overrides_from_the_fragment() {
        let (url, o) = split_overrides("https://h/p?q=1#ct=1000&rc=7&rp=ct,5xx&rt=99");
        assert_eq!(url, "https://h/p?q=1");
        assert_eq!(o.connect, Duration::from_millis(1000));
        assert_eq!(o.retries, 5);
        assert_eq!(o.read, Duration::from_millis(100));
        assert_eq!(o.policy, ["ct", "5xx"]);
        assert_eq!(split_overrides("https://h/p").1, Overrides::default());
    }
}
