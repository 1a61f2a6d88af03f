//! The stream consumer: every change any function writes (console actions,
//! Twilio's callbacks, follow-ups, the reconciler) reaches the table's
//! stream once, and from there each listener of that call allowed to see it.
//!
//! Per call in a batch: one Query for its listeners (none: nothing more is
//! read); then the session from the batch's images, or one read when only
//! history entries were written. Each listener is authorised again
//! against that session, as `GET /calls/{callSid}` would be: after a
//! handover the first agent gets nothing more, and a listener whose token
//! expired is dropped. A post answered 410 drops the listener too.

use serde::Serialize;
use time::OffsetDateTime;

use super::PushApp;
use super::messages::PushMessage;
use super::stream::{CallChange, board_changed, changes, directory_changed};
use crate::domain::{Action, Actor};
use crate::ids::CallSid;
use crate::push::connections::{Connections, PostError};
use crate::store::Subscriber;
use crate::usecases::routing;
use crate::usecases::view::DirectoryView;
use aws_lambda_events::event::dynamodb::Event;

/// What one batch did (the function's result, in its invocation log).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishReport {
    pub records: usize,
    /// Calls the batch changed.
    pub calls: usize,
    /// Frames posted.
    pub sent: usize,
    /// Listeners dropped: their connection was gone (410).
    pub gone: usize,
    /// Listeners kept though answered 410: their connection was still
    /// opening.
    pub connecting: usize,
    /// Listeners dropped: no longer allowed to see the call, or signed out.
    pub refused: usize,
    /// Posts or reads that failed; the console's fallback covers them.
    pub failed: usize,
}

/// Publishes one batch of stream records. Never fails the batch: a retried
/// batch would send its frames twice, and a console that missed one reads
/// the call again when it reconnects.
pub async fn publish(app: &PushApp, event: &Event) -> PublishReport {
    let mut report = PublishReport {
        records: event.records.len(),
        ..PublishReport::default()
    };
    let calls = changes(&event.records);
    report.calls = calls.len();
    for (call, change) in calls {
        publish_call(app, &call, change, &mut report).await;
    }
    let (directory, board) = (
        directory_changed(&event.records),
        board_changed(&event.records),
    );
    if directory || board {
        publish_directory(app, directory, board, &mut report).await;
    }
    tracing::info!(?report, "published");
    report
}

async fn publish_call(
    app: &PushApp,
    call: &CallSid,
    change: CallChange,
    report: &mut PublishReport,
) {
    let Some(connections) = app.connections.as_ref() else {
        report.failed += 1;
        return;
    };
    let listeners = match app.subscriptions.subscribers(call).await {
        Ok(listeners) if listeners.is_empty() => return,
        Ok(listeners) => listeners,
        Err(error) => {
            tracing::warn!(%error, call = %call, "listeners unreadable");
            report.failed += 1;
            return;
        }
    };
    // Who may see the call is decided on its newest state.
    let session = match change.sessions.last() {
        Some(session) => session.clone(),
        None => match app.store.get_session(call).await {
            Ok(Some(session)) => session,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, call = %call, "session unreadable");
                report.failed += 1;
                return;
            }
        },
    };
    let events = (!change.events.is_empty())
        .then(|| PushMessage::events(&session, &change.events).to_bytes());
    // Every change once, in order: a ringing phone answered within one
    // batch still shows it rang. The call as each listener sees it: the
    // actions it offers are theirs.
    let frames_for = |listener: &Actor| -> Vec<Vec<u8>> {
        events
            .iter()
            .cloned()
            .chain(
                change
                    .sessions
                    .iter()
                    .map(|version| PushMessage::call(version, listener).to_bytes()),
            )
            .collect()
    };

    let now = OffsetDateTime::now_utc();
    let mut allowed = Vec::new();
    for listener in listeners {
        let refusal = if listener.until <= now {
            Some("signed-out")
        } else {
            listener
                .actor
                .may(Action::Read, &session)
                .err()
                .map(|denied| denied.code())
        };
        let Some(reason) = refusal else {
            allowed.push(listener);
            continue;
        };
        // They could see the call until now: tell them it is over, and no more.
        report.refused += 1;
        let frame = PushMessage::revoked(&session, reason).to_bytes();
        if let Err(error) = connections.post(&listener.connection_id, frame).await {
            tracing::info!(%error, call = %call, "revocation not delivered");
        }
        if let Err(error) = app
            .subscriptions
            .remove(call, &listener.connection_id)
            .await
        {
            tracing::warn!(%error, call = %call, "refused listener not removed");
        }
    }
    // Per listener its frames in order, listeners side by side (a call has
    // a handful). Collected first: the future then names no closure type.
    let posts: Vec<_> = allowed
        .iter()
        .map(|listener| post_frames(connections.as_ref(), listener, frames_for(&listener.actor)))
        .collect();
    let results = futures::future::join_all(posts).await;
    for (listener, result) in results {
        match result {
            Ok(sent) => report.sent += sent,
            // Posted while the connection was still opening: API Gateway
            // answers 410 until `$connect` returns. The console reads the
            // call once open, so it misses nothing; the subscription stays.
            Err(PostError::Gone) if listener.still_connecting(now) => {
                tracing::info!(call = %call, "listener still connecting; kept");
                report.connecting += 1;
            }
            Err(PostError::Gone) => {
                report.gone += 1;
                if let Err(error) = app
                    .subscriptions
                    .remove(call, &listener.connection_id)
                    .await
                {
                    tracing::warn!(%error, call = %call, "gone listener not removed");
                }
            }
            Err(error) => {
                tracing::warn!(%error, call = %call, "post failed");
                report.failed += 1;
            }
        }
    }
}

async fn post_frames<'a>(
    connections: &dyn Connections,
    listener: &'a Subscriber,
    frames: Vec<Vec<u8>>,
) -> (&'a Subscriber, Result<usize, PostError>) {
    let mut sent = 0;
    for frame in frames {
        if let Err(error) = connections.post(&listener.connection_id, frame).await {
            return (listener, Err(error));
        }
        sent += 1;
    }
    (listener, Ok(sent))
}

/// Sends every console following the directory the directory as it is
/// now when someone's presence changed (`directory`), and the supervisors
/// among them a nudge to read the board when a line of it changed (`board`).
async fn publish_directory(
    app: &PushApp,
    directory: bool,
    board: bool,
    report: &mut PublishReport,
) {
    let Some(connections) = app.connections.as_ref() else {
        report.failed += 1;
        return;
    };
    let listeners = match app.subscriptions.directory_subscribers().await {
        Ok(listeners) => listeners,
        Err(error) => {
            tracing::warn!(%error, "directory listeners unreadable");
            report.failed += 1;
            return;
        }
    };
    let now = OffsetDateTime::now_utc();
    let (signed_out, signed_in): (Vec<Subscriber>, Vec<Subscriber>) =
        listeners.into_iter().partition(|l| l.until <= now);
    for listener in signed_out {
        report.refused += 1;
        if let Err(error) = app
            .subscriptions
            .remove_directory(&listener.connection_id)
            .await
        {
            tracing::warn!(%error, "signed-out directory listener not removed");
        }
    }
    // One read of the directory for every listener, not one each.
    let frame = if directory {
        match routing::listed(app.directory.as_ref(), app.store.as_ref(), now).await {
            Ok(listed) => {
                let directory = Box::new(DirectoryView::new(&listed, None, false));
                Some(PushMessage::Directory { directory }.to_bytes())
            }
            Err(error) => {
                tracing::warn!(%error, "directory unreadable");
                report.failed += 1;
                None
            }
        }
    } else {
        None
    };
    let nudge = board.then(|| PushMessage::Board.to_bytes());
    let frames_for = |listener: &Subscriber| -> Vec<Vec<u8>> {
        let nudge = nudge.clone().filter(|_| listener.actor.supervisor);
        frame.iter().cloned().chain(nudge).collect()
    };
    let posts: Vec<_> = signed_in
        .iter()
        .map(|listener| (listener, frames_for(listener)))
        .filter(|(_, frames)| !frames.is_empty())
        .map(|(listener, frames)| post_frames(connections.as_ref(), listener, frames))
        .collect();
    for (listener, result) in futures::future::join_all(posts).await {
        match result {
            Ok(sent) => report.sent += sent,
            Err(PostError::Gone) if listener.still_connecting(now) => report.connecting += 1,
            Err(PostError::Gone) => {
                report.gone += 1;
                if let Err(error) = app
                    .subscriptions
                    .remove_directory(&listener.connection_id)
                    .await
                {
                    tracing::warn!(%error, "gone directory listener not removed");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "directory post failed");
                report.failed += 1;
            }
        }
    }
}
