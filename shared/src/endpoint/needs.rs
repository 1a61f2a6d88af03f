//! What each function does outside itself, read from its code: which
//! actions it performs on the calls table, whether it calls Twilio's REST
//! API, whether it posts to the consoles' WebSocket connections.
//!
//! This table is the one place a function's permissions are decided. The
//! SAM template's IAM policy of each function must grant exactly this, no
//! more and no less (`dev/tests/integration/deployment.rs`), and the
//! scenarios check the code against it: every DynamoDB request a function
//! makes on the local stack must be one its row names
//! (`warm_transfer_dev::counting`). A handler that starts calling something
//! new fails there first, not on a live call with `AccessDenied`.

use super::{Caller, Endpoint};

/// An action on the calls table, as IAM names it (`dynamodb:<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableAction {
    GetItem,
    PutItem,
    UpdateItem,
    DeleteItem,
    Query,
}

impl TableAction {
    /// The operation's name, as the SDK and IAM spell it.
    pub fn name(self) -> &'static str {
        match self {
            TableAction::GetItem => "GetItem",
            TableAction::PutItem => "PutItem",
            TableAction::UpdateItem => "UpdateItem",
            TableAction::DeleteItem => "DeleteItem",
            TableAction::Query => "Query",
        }
    }

    /// The IAM action (`dynamodb:GetItem`).
    pub fn iam(self) -> String {
        format!("dynamodb:{}", self.name())
    }
}

/// One function's row: what its code calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Actions on the table's items (never its indexes).
    pub table: &'static [TableAction],
    /// `Query` on the sparse `open-sessions` index (the reconciler).
    pub open_sessions_index: bool,
    /// Calls Twilio's REST API (creates, redirects, hangs up, reads calls).
    pub twilio_rest: bool,
    /// Posts to the WebSocket API's connections (the stream publisher).
    pub post_to_connections: bool,
}

use TableAction::{DeleteItem, GetItem, PutItem, Query, UpdateItem};

// What the store's calls send to DynamoDB (`store/dynamo.rs`,
// `store/subscriptions.rs`), which the rows below are made of:
// - `create_session`: a conditional `PutItem`, and a `GetItem` when the
//   condition fails, to tell the SDK's retry meeting our own first write
//   (its answer was lost) from a call that exists;
// - `get_session`: `GetItem`;
// - `update`, `observe`, `request_transfer`: `GetItem`, then a conditional
//   `PutItem` (again after a lost race);
// - `claim_leg_end` (one handler ends a leg nobody needs): a conditional
//   `PutItem`, and `release_leg_end` a `PutItem`;
// - `append_event` (history): `PutItem`; `list_events`: `Query` on the key;
// - `due_sessions`: `Query` on the index; `claim_check`: `UpdateItem`;
// - `take_allowance` (an agent's calls and transfers a minute, the
//   toll-fraud guard): a conditional `UpdateItem`;
// - directory: `agents` a `Query` of its partition, `agent` a `GetItem`,
//   `check_in` and `write_if_unchanged` a conditional `PutItem`;
// - subscriptions: `subscribe` two `PutItem`s, `subscribers` a `Query`,
//   `disconnected` and `remove` `DeleteItem`s.

/// A front-end command or a status callback: reads the session, writes it
/// on condition, and adds to its history.
const READ_AND_WRITE: &[TableAction] = &[GetItem, PutItem];

/// A front-end command that dials: also takes from the agent's allowance.
const DIALS: &[TableAction] = &[GetItem, PutItem, UpdateItem];

/// A transfer, which may also read the directory to reserve its member.
const DIALS_MEMBERS: &[TableAction] = &[GetItem, PutItem, UpdateItem, Query];

impl Endpoint {
    /// This function's row of the permissions table.
    pub const fn needs(self) -> Needs {
        let none = Needs {
            table: &[],
            open_sessions_index: false,
            twilio_rest: false,
            post_to_connections: false,
        };
        match self {
            // take_allowance, create_session (PutItem, GetItem on its
            // retry), history; Twilio rings the agent, and hangs up if the
            // session cannot be stored.
            Endpoint::StartCall => Needs {
                table: DIALS,
                twilio_rest: true,
                ..none
            },
            // get_session and list_events; nothing at Twilio.
            Endpoint::GetCall => Needs {
                table: &[GetItem, Query],
                ..none
            },
            // take_allowance, update, history, follow-ups; for a colleague
            // or a team, the directory (a Query) and a reservation (a
            // conditional PutItem). Twilio redirects the customer and
            // rings the second agent.
            Endpoint::StartTransfer => Needs {
                table: DIALS_MEMBERS,
                twilio_rest: true,
                ..none
            },
            // take_allowance (a join dials), update, history, follow-ups;
            // Twilio moves the customer into the room, rings the
            // supervisor (or the outside party), updates the supervisor's
            // participant, hangs them up.
            Endpoint::SuperviseCall | Endpoint::OutsideParty => Needs {
                table: DIALS,
                twilio_rest: true,
                ..none
            },
            // update and history; nothing at Twilio.
            Endpoint::AskForHelp => Needs {
                table: READ_AND_WRITE,
                ..none
            },
            // due_sessions: a Query of the open-sessions index, which holds
            // the calls in progress; nothing at Twilio.
            Endpoint::GetBoard => Needs {
                open_sessions_index: true,
                ..none
            },
            // update, history, follow-ups; Twilio hangs up, holds, moves.
            Endpoint::CancelTransfer | Endpoint::LeaveCall | Endpoint::HoldCustomer => Needs {
                table: READ_AND_WRITE,
                twilio_rest: true,
                ..none
            },
            // TwiML from the request alone.
            Endpoint::DialCustomer
            | Endpoint::ConferenceTwiml
            | Endpoint::FallbackTwiml
            | Endpoint::HoldTwiml => none,
            // get_session and history: TwiML from the stored transfer.
            Endpoint::AgentDialEnded => Needs {
                table: READ_AND_WRITE,
                ..none
            },
            // observe, history, and the follow-ups a change makes
            // necessary; a team's next member read from the directory
            // (a Query) and reserved.
            Endpoint::StatusCallback => Needs {
                table: &[GetItem, PutItem, Query],
                twilio_rest: true,
                ..none
            },
            // create_session (PutItem, GetItem on its retry) and history.
            Endpoint::InboundCall => Needs {
                table: READ_AND_WRITE,
                ..none
            },
            // get_session, the caller's queue entry (PutItem) and those
            // ahead (Query); an offer reads the directory (Query),
            // reserves (PutItem) and rings; the end of the wait ends the room.
            Endpoint::QueueTwiml => Needs {
                table: &[GetItem, PutItem, Query],
                twilio_rest: true,
                ..none
            },
            // The directory (a Query) and the calls its entries point at.
            Endpoint::GetDirectory => Needs {
                table: &[GetItem, Query],
                ..none
            },
            // The agent's entry (read, conditional put) and the call it
            // points at; a ring of an agent stepping away is called off.
            Endpoint::SetPresence => Needs {
                table: READ_AND_WRITE,
                twilio_rest: true,
                ..none
            },
            // The page, with nothing of the table or Twilio in it.
            Endpoint::Console => none,
            // due_sessions (index), claim_check, observe, update, history.
            Endpoint::Reconciler => Needs {
                table: &[GetItem, PutItem, UpdateItem],
                open_sessions_index: true,
                twilio_rest: true,
                ..none
            },
            // get_session to admit the caller, subscribers (a Query of the
            // call's partition) to cap theirs, subscribe.
            Endpoint::WsConnect => Needs {
                table: &[GetItem, PutItem, Query],
                ..none
            },
            // disconnected.
            Endpoint::WsDisconnect => Needs {
                table: &[DeleteItem],
                ..none
            },
            // subscribers, get_session when only history was written,
            // remove for a connection that is gone.
            Endpoint::StreamPublisher => Needs {
                table: &[GetItem, Query, DeleteItem],
                post_to_connections: true,
                ..none
            },
        }
    }

    /// Whether the function reads the stack's secret: to verify Twilio's
    /// webhook signatures, or to authenticate to its REST API. The others
    /// get neither the secret's ARN nor the right to read it, and do not
    /// load it at start-up.
    pub fn reads_secret(self) -> bool {
        self.caller() == Caller::Twilio || self.needs().twilio_rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_twilios_callers_and_callers_of_twilio_read_the_secret() {
        let readers: Vec<&str> = Endpoint::ALL
            .into_iter()
            .filter(|e| e.reads_secret())
            .map(Endpoint::function_name)
            .collect();
        let without: Vec<&str> = Endpoint::ALL
            .into_iter()
            .filter(|e| !e.reads_secret())
            .map(Endpoint::function_name)
            .collect();
        assert_eq!(
            without,
            [
                "get-call",
                "ask-for-help",
                "get-board",
                "get-directory",
                "console",
                "ws-connect",
                "ws-disconnect",
                "stream-publisher"
            ]
        );
        assert!(readers.contains(&"start-call") && readers.contains(&"hold-twiml"));
    }

    #[test]
    fn start_call_may_read_back_its_own_first_write() {
        // The SDK's retry of create_session meets the item its lost first
        // attempt wrote: the store reads it to tell ours from another call.
        assert!(Endpoint::StartCall.needs().table.contains(&GetItem));
    }
}
