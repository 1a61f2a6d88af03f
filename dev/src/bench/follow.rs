//! An agent's console following one call, for the benchmarks: what the
//! console (`shared/console/index.html`) does, kept in a watch channel the
//! benchmark waits on.
//!
//! By push: subscribe over the WebSocket, read the call once to catch up,
//! then show each `call` frame; read again after `quiet` with nothing heard
//! (a frame the publisher could not post is not resent); a `revoked` frame
//! ends the following. While push is down: read every `retry` and try push
//! again. By polling (the console before push): read every `every`.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

/// The newest view of the call, kept by a task that stops with it.
pub struct Follower {
    pub view: watch::Receiver<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        // Closing the socket runs `$disconnect`, as a closed console does.
        self.task.abort();
    }
}

/// How a follower reads the call (`GET /calls/{callSid}`): its JSON, or
/// anything without a `version` (an error) when the read failed.
pub trait Read: Fn() -> Self::Answer + Send + Sync + 'static {
    type Answer: Future<Output = Value> + Send;
}

impl<F, A> Read for F
where
    F: Fn() -> A + Send + Sync + 'static,
    A: Future<Output = Value> + Send,
{
    type Answer = A;
}

impl Follower {
    /// Follows by push through the WebSocket at `ws_url` (query included),
    /// offering `token` as the console does (a subprotocol).
    pub fn by_push(
        ws_url: String,
        token: String,
        quiet: Duration,
        retry: Duration,
        read: impl Read,
    ) -> Self {
        Self::spawn(move |shown| async move {
            loop {
                let request = crate::push::subscribe_request(&ws_url, &token);
                let connected = match request {
                    Ok(request) => connect_async(request).await.ok(),
                    Err(_) => None,
                };
                if let Some((socket, _)) = connected {
                    show(&shown, read().await);
                    let (_write, mut frames) = socket.split();
                    loop {
                        let message = match tokio::time::timeout(quiet, frames.next()).await {
                            Err(_) => {
                                show(&shown, read().await);
                                continue;
                            }
                            Ok(Some(Ok(message))) => message,
                            Ok(_) => break,
                        };
                        let Message::Text(text) = message else {
                            continue;
                        };
                        let frame: Value = serde_json::from_str(&text).unwrap_or_default();
                        match frame["type"].as_str() {
                            Some("call") => show(&shown, frame["call"].clone()),
                            Some("revoked") => return,
                            _ => {}
                        }
                    }
                }
                tokio::time::sleep(retry).await;
                show(&shown, read().await);
            }
        })
    }

    /// Follows by reading the call every `every`.
    pub fn by_polling(every: Duration, read: impl Read) -> Self {
        Self::spawn(move |shown| async move {
            loop {
                show(&shown, read().await);
                tokio::time::sleep(every).await;
            }
        })
    }

    fn spawn<F>(following: impl FnOnce(watch::Sender<Value>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (shown, view) = watch::channel(Value::Null);
        let task = tokio::spawn(following(shown));
        Self { view, task }
    }

    /// Waits until the view satisfies `check`, for at most `limit`; the
    /// view that did, or the last one seen.
    pub async fn until(
        &mut self,
        limit: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value, Value> {
        let met = match tokio::time::timeout(limit, self.view.wait_for(|v| check(v))).await {
            Ok(Ok(view)) => Some(view.clone()),
            _ => None,
        };
        met.ok_or_else(|| self.view.borrow().clone())
    }
}

/// A read and a pushed frame race: only a newer version of the call is
/// shown, as in the console's `update()`.
fn show(shown: &watch::Sender<Value>, next: Value) {
    let Some(version) = next["version"].as_u64() else {
        return;
    };
    shown.send_if_modified(|current| {
        let newer = current["version"]
            .as_u64()
            .is_none_or(|seen| version >= seen);
        if newer {
            *current = next;
        }
        newer
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_older_version_or_an_error_is_not_shown() {
        let (shown, view) = watch::channel(Value::Null);
        show(&shown, json!({ "version": 3, "state": "connected" }));
        show(&shown, json!({ "version": 2, "state": "ringing" }));
        show(&shown, json!({ "error": "unavailable" }));
        assert_eq!(view.borrow()["state"], "connected");
        show(&shown, json!({ "version": 4, "state": "ended" }));
        assert_eq!(view.borrow()["state"], "ended");
    }

    #[tokio::test]
    async fn polling_shows_each_newer_read() {
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = reads.clone();
        let mut follower = Follower::by_polling(Duration::from_millis(1), move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move { json!({ "version": n }) }
        });
        let view = follower
            .until(Duration::from_secs(5), |v| v["version"] == 3)
            .await;
        assert_eq!(view.map(|v| v["version"].clone()), Ok(json!(3)));
    }
}
