//! The slice of Twilio's REST API the product calls, with requests checked
//! against Twilio's OpenAPI file, answers shaped like Twilio's, and the
//! faults tests inject.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use warm_transfer_core::domain::LegStatus;

use super::engine::{NewLeg, timestamp};
use super::rooms::{Leave, label_malformed, wait_audio};
use super::twiml::RecordingRequest;
use super::world::{EndReason, Interrupt, Leg, Member, Room, RoomCallback, Target};
use super::{Fault, Operation, Sim};

type Answer = http::Response<Full<Bytes>>;

fn answer(status: StatusCode, body: Value) -> Answer {
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Twilio's JSON error body (`code`, `message`, `more_info`, `status`).
fn error(status: u16, code: u32, message: &str) -> Answer {
    answer(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

fn not_found() -> Answer {
    error(404, 20404, "The requested resource was not found")
}

fn no_content() -> Answer {
    let mut empty = http::Response::new(Full::new(Bytes::new()));
    *empty.status_mut() = StatusCode::NO_CONTENT;
    empty
}

/// The operation a request is, from its method and path segments.
fn operation(method: &Method, segments: &[&str]) -> Option<Operation> {
    Some(match (method, segments) {
        (&Method::POST, ["Calls.json"]) => Operation::CreateCall,
        (&Method::GET, ["Calls.json"]) => Operation::ListCalls,
        (&Method::GET, ["Calls", _]) => Operation::FetchCall,
        (&Method::POST, ["Calls", _]) => Operation::UpdateCall,
        (&Method::POST, ["Conferences", _, "Participants.json"]) => Operation::CreateParticipant,
        (&Method::GET, ["Conferences", _, "Participants.json"]) => Operation::ListParticipants,
        (&Method::GET, ["Conferences", _, "Participants", _]) => Operation::FetchParticipant,
        (&Method::POST, ["Conferences", _, "Participants", _]) => Operation::UpdateParticipant,
        (&Method::DELETE, ["Conferences", _, "Participants", _]) => Operation::DeleteParticipant,
        (&Method::GET, ["Conferences.json"]) => Operation::ListConferences,
        (&Method::GET, ["Conferences", _]) => Operation::FetchConference,
        (&Method::POST, ["Conferences", _]) => Operation::UpdateConference,
        (&Method::GET, ["IncomingPhoneNumbers.json"]) => Operation::ListIncomingPhoneNumbers,
        (&Method::GET, ["OutgoingCallerIds.json"]) => Operation::ListOutgoingCallerIds,
        _ => return None,
    })
}

/// One request's form and query, by name.
struct Request {
    form: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl Request {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str, default: bool) -> bool {
        self.field(name).map_or(default, |v| v == "true")
    }

    fn filter(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a multi-valued field, repeated keys or space-separated
    /// (U13: both forms are accepted).
    fn list(&self, name: &str) -> Vec<String> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned))
            .collect()
    }

    fn method(&self, name: &str, default: &str) -> String {
        self.field(name).unwrap_or(default).to_ascii_uppercase()
    }
}

fn segment(value: &str) -> String {
    percent_decode(value.trim_end_matches(".json"))
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(b)) = (bytes[i], hex) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Sim {
    fn call_json(&self, leg: &Leg) -> Value {
        // The call resource has no "initiated" status; Twilio shows it as queued.
        let status = match leg.status {
            LegStatus::Initiated => "queued",
            other => other.as_str(),
        };
        let (to, from) = leg.twilio_to_from();
        json!({
            "sid": leg.sid,
            "parent_call_sid": leg.parent,
            "account_sid": self.config.account_sid,
            "to": to,
            "from": from,
            "status": status,
            "direction": leg.direction,
            "api_version": "2010-04-01",
            "date_created": timestamp(),
            "date_updated": timestamp(),
            "uri": format!("/2010-04-01/Accounts/{}/Calls/{}.json", self.config.account_sid, leg.sid),
        })
    }

    fn participant_json(&self, leg: Option<&Leg>, member: &Member, conference_sid: &str) -> Value {
        // Twilio: participant status is queued, connecting, ringing,
        // connected, complete or failed (twilio-rules 3.6, [oai]).
        let status = match (member.joined, leg.map(|l| l.status)) {
            (true, _) => "connected",
            (false, Some(LegStatus::Ringing)) => "ringing",
            (false, Some(LegStatus::Initiated)) => "connecting",
            (false, _) => "queued",
        };
        json!({
            "account_sid": self.config.account_sid,
            "call_sid": member.sid,
            "conference_sid": conference_sid,
            "label": member.label,
            "status": status,
            "muted": member.muted,
            "hold": member.hold,
            "coaching": member.coaching,
            "call_sid_to_coach": member.coached.as_ref().filter(|_| member.coaching),
            "end_conference_on_exit": member.end_on_exit,
            "start_conference_on_enter": member.start_on_enter,
            "date_created": timestamp(),
            "date_updated": timestamp(),
            "queue_time": "0",
            "uri": format!("/2010-04-01/Accounts/{}/Conferences/{conference_sid}/Participants/{}.json", self.config.account_sid, member.sid),
        })
    }

    fn conference_json(&self, room: &Room) -> Value {
        // Twilio: conference status is init, in-progress or completed (twilio-rules 3.11, [oai]).
        let status = if room.ended {
            "completed"
        } else if room.started {
            "in-progress"
        } else {
            "init"
        };
        json!({
            "sid": room.sid,
            "friendly_name": room.name,
            "status": status,
            "account_sid": self.config.account_sid,
            "api_version": "2010-04-01",
            "date_created": timestamp(),
            "date_updated": timestamp(),
            "uri": format!("/2010-04-01/Accounts/{}/Conferences/{}.json", self.config.account_sid, room.sid),
        })
    }

    /// Basic auth with the account SID and token, or with the API key.
    fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let basic = |user: &str, password: &str| {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {encoded}")
        };
        let given = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = basic(&self.config.account_sid, &self.config.auth_token);
        let key = self
            .config
            .api_key
            .as_ref()
            .map(|(sid, secret)| basic(sid, secret));
        given.is_some_and(|v| v == token || key.as_deref() == Some(v))
    }

    /// The account resource (`GET /2010-04-01/Accounts/{Sid}.json`).
    fn account_json(&self) -> Value {
        let sid = &self.config.account_sid;
        json!({
            "sid": sid,
            "owner_account_sid": sid,
            "friendly_name": "Simulated account",
            "status": "active",
            "type": self.config.account_type,
            "date_created": timestamp(),
            "date_updated": timestamp(),
            "uri": format!("/2010-04-01/Accounts/{sid}.json"),
        })
    }

    /// A list of numbers filtered by `PhoneNumber`, as IncomingPhoneNumbers
    /// and OutgoingCallerIds answer it (`key` names the list).
    fn numbers_json(&self, key: &str, kind: &str, numbers: &[String], request: &Request) -> Answer {
        let sid = &self.config.account_sid;
        let listed: Vec<Value> = numbers
            .iter()
            .filter(|n| {
                request
                    .filter("PhoneNumber")
                    .is_none_or(|p| p == n.as_str())
            })
            .enumerate()
            .map(|(i, number)| {
                json!({
                    "sid": format!("{kind}{:032x}", i + 1),
                    "account_sid": sid,
                    "phone_number": number,
                    "friendly_name": number,
                })
            })
            .collect();
        answer(
            StatusCode::OK,
            json!({ key: listed, "next_page_uri": null, "page": 0, "page_size": 50, "start": 0, "end": 0 }),
        )
    }

    pub(crate) async fn serve_rest(
        self: Arc<Self>,
        req: http::Request<Incoming>,
    ) -> Result<Answer, Infallible> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let request = Request {
            form: form_urlencoded::parse(&body).into_owned().collect(),
            query: form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        };
        let path = parts.uri.path().to_owned();
        self.log(format!("REST {} {}", parts.method, short_path(&path)));
        if !self.authorized(&parts.headers) {
            return Ok(error(401, 20003, "Authentication Error - invalid username"));
        }
        let prefix = format!("/2010-04-01/Accounts/{}/", self.config.account_sid);
        let segments: Vec<&str> = path
            .strip_prefix(&prefix)
            .map(|rest| rest.split('/').collect())
            .unwrap_or_default();
        let account = format!("/2010-04-01/Accounts/{}.json", self.config.account_sid);
        let operation = if parts.method == Method::GET && path == account {
            Some(Operation::FetchAccount)
        } else {
            operation(&parts.method, &segments)
        };
        if let Some(operation) = operation {
            self.with_world(|w| *w.requests.entry(operation).or_default() += 1);
        }
        let violations =
            self.openapi
                .check_request(parts.method.as_str(), &path, &request.query, &request.form);
        if !violations.is_empty() {
            let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
            self.log(format!("  !! contract violation: {}", text.join("; ")));
            self.with_world(|w| w.violations.extend(text.clone()));
            return Ok(error(400, 21200, &text.join("; ")));
        }
        let Some(operation) = operation else {
            return Ok(not_found());
        };
        let fault = self.with_world(|w| w.faults.get_mut(&operation).and_then(|q| q.pop_front()));
        let answer = match fault {
            Some(Fault::Refuse {
                status,
                code,
                message,
            }) => {
                self.log(format!("  !! refused {status} {code} (injected)"));
                error(status, code, &message)
            }
            Some(Fault::AppliedThenError { status }) => {
                let _ = self.handle(operation, &segments, &request);
                self.log(format!("  !! applied, then answered {status} (injected)"));
                error(
                    status,
                    20000 + u32::from(status),
                    "An internal server error has occurred",
                )
            }
            Some(Fault::AppliedThenTimeout(delay)) => {
                let answer = self.handle(operation, &segments, &request);
                self.log(format!(
                    "  !! applied, answer withheld {delay:?} (injected)"
                ));
                tokio::time::sleep(delay).await;
                answer
            }
            None => self.handle(operation, &segments, &request),
        };
        Ok(answer)
    }

    fn handle(
        self: &Arc<Self>,
        operation: Operation,
        segments: &[&str],
        request: &Request,
    ) -> Answer {
        let id = |i: usize| segments.get(i).map(|s| segment(s)).unwrap_or_default();
        match operation {
            Operation::CreateCall => self.create_call(request),
            Operation::ListCalls => {
                let calls: Vec<Value> = self.with_world(|w| {
                    w.legs
                        .iter()
                        .filter(|l| {
                            request
                                .filter("ParentCallSid")
                                .is_none_or(|p| l.parent.as_deref() == Some(p))
                        })
                        .filter(|l| request.filter("To").is_none_or(|t| l.to == t))
                        .filter(|l| request.filter("From").is_none_or(|f| l.from == f))
                        .filter(|l| {
                            request
                                .filter("Status")
                                .is_none_or(|s| l.status.as_str() == s)
                        })
                        .map(|l| self.call_json(l))
                        .collect()
                });
                answer(
                    StatusCode::OK,
                    json!({ "calls": calls, "next_page_uri": null, "page": 0, "page_size": 50, "start": 0, "end": 0 }),
                )
            }
            Operation::FetchCall => match self.with_world(|w| w.leg(&id(1)).cloned()) {
                Some(leg) => answer(StatusCode::OK, self.call_json(&leg)),
                None => not_found(),
            },
            Operation::UpdateCall => match self.with_world(|w| w.leg(&id(1)).cloned()) {
                Some(leg) => self.update_call(&leg, request),
                None => not_found(),
            },
            Operation::CreateParticipant => self.create_participant(&id(1), request),
            Operation::ListParticipants => {
                // Twilio: the Participant resource lists live participants
                // only (twilio-rules 3.6, [part]).
                let listed = self.with_world(|w| {
                    let room = w.room_by_sid(&id(1)).filter(|r| !r.ended)?;
                    Some(
                        room.members
                            .iter()
                            .filter(|m| {
                                request
                                    .filter("Hold")
                                    .is_none_or(|h| m.hold.to_string() == h)
                            })
                            .filter(|m| {
                                request
                                    .filter("Muted")
                                    .is_none_or(|h| m.muted.to_string() == h)
                            })
                            .map(|m| self.participant_json(w.leg(&m.sid), m, &room.sid))
                            .collect::<Vec<_>>(),
                    )
                });
                answer(
                    StatusCode::OK,
                    json!({ "participants": listed.unwrap_or_default(), "next_page_uri": null, "page": 0, "page_size": 50, "start": 0, "end": 0 }),
                )
            }
            Operation::FetchParticipant => {
                let found = self.with_world(|w| {
                    let room = w.room_by_sid(&id(1)).filter(|r| !r.ended)?;
                    let member = find_member(room, &id(3))?;
                    Some(self.participant_json(w.leg(&member.sid), member, &room.sid))
                });
                found.map_or_else(not_found, |p| answer(StatusCode::OK, p))
            }
            Operation::UpdateParticipant => self.update_participant(&id(1), &id(3), request),
            Operation::DeleteParticipant => self.delete_participant(&id(1), &id(3)),
            Operation::ListConferences => {
                let conferences: Vec<Value> = self.with_world(|w| {
                    w.rooms
                        .iter()
                        .map(|r| self.conference_json(r))
                        .filter(|c| {
                            request
                                .filter("FriendlyName")
                                .is_none_or(|n| c["friendly_name"] == n)
                        })
                        .filter(|c| request.filter("Status").is_none_or(|s| c["status"] == s))
                        .collect()
                });
                answer(
                    StatusCode::OK,
                    json!({ "conferences": conferences, "next_page_uri": null, "page": 0, "page_size": 50, "start": 0, "end": 0 }),
                )
            }
            Operation::FetchConference => self
                .with_world(|w| w.room_by_sid(&id(1)).map(|r| self.conference_json(r)))
                .map_or_else(not_found, |c| answer(StatusCode::OK, c)),
            Operation::UpdateConference => self.update_conference(&id(1), request),
            Operation::FetchAccount => answer(StatusCode::OK, self.account_json()),
            Operation::ListIncomingPhoneNumbers => self.numbers_json(
                "incoming_phone_numbers",
                "PN",
                &self.config.owned_numbers,
                request,
            ),
            Operation::ListOutgoingCallerIds => self.numbers_json(
                "outgoing_caller_ids",
                "PN",
                &self.config.verified_caller_ids,
                request,
            ),
        }
    }

    fn create_call(self: &Arc<Self>, request: &Request) -> Answer {
        let timeout = request
            .field("Timeout")
            .and_then(|t| t.parse().ok())
            .unwrap_or(60u64);
        // Twilio: Url, else Twiml (ignored when both are sent); Method
        // defaults to POST; FallbackUrl optional (twilio-rules 4.1, [call]).
        let target = match (request.field("Url"), request.field("Twiml")) {
            (Some(url), _) => Target::Url {
                url: url.to_owned(),
                method: request.method("Method", "POST"),
            },
            (None, Some(twiml)) => Target::Twiml(twiml.to_owned()),
            (None, None) => return error(400, 21205, "Url parameter is required."),
        };
        let sid = self.create_leg(NewLeg {
            to: request.field("To").unwrap_or_default(),
            from: request.field("From").unwrap_or_default(),
            parent: None,
            direction: "outbound-api",
            status_callback: request.field("StatusCallback").map(str::to_owned),
            callback_method: request.field("StatusCallbackMethod").map(str::to_owned),
            callback_events: request.list("StatusCallbackEvent"),
            label: None,
            fallback: request
                .field("FallbackUrl")
                .map(|f| (f.to_owned(), request.method("FallbackMethod", "POST"))),
        });
        tokio::spawn(self.clone().run_outbound(
            sid.clone(),
            target,
            self.scaled(Duration::from_secs(timeout)),
        ));
        let leg = self.with_world(|w| w.leg(&sid).cloned());
        leg.map_or_else(
            || error(500, 20500, "lost"),
            |leg| answer(StatusCode::CREATED, self.call_json(&leg)),
        )
    }

    fn update_call(&self, leg: &Leg, request: &Request) -> Answer {
        let target = match (request.field("Url"), request.field("Twiml")) {
            (Some(url), _) => Some(Target::Url {
                url: url.to_owned(),
                method: request.method("Method", "POST"),
            }),
            (None, Some(twiml)) => Some(Target::Twiml(twiml.to_owned())),
            (None, None) => None,
        };
        if let Some(target) = target {
            // Twilio: a redirect of a call not in progress fails with 21220
            // (twilio-rules 4.5, U6 for the HTTP status, [e21220]).
            if leg.status != LegStatus::InProgress {
                return error(400, 21220, "Call is not in-progress. Cannot redirect.");
            }
            self.log(format!("  {} redirected", leg.to));
            // Twilio: a new StatusCallback counts only with a Url; FallbackUrl
            // replaces the call's (twilio-rules 4.3, [call#update]).
            self.with_world(|w| {
                *w.redirects.entry(leg.to.clone()).or_default() += 1;
                if let Some(l) = w.leg_mut(&leg.sid) {
                    if let Some(callback) = request.field("StatusCallback") {
                        l.status_callback = Some(callback.to_owned());
                    }
                    if let Some(fallback) = request.field("FallbackUrl") {
                        l.fallback = Some((
                            fallback.to_owned(),
                            request.method("FallbackMethod", "POST"),
                        ));
                    }
                }
            });
            self.interrupt(&leg.sid, Interrupt::Redirect(target));
        }
        // Twilio: Status=completed hangs up even an in-progress call;
        // canceled only affects queued or ringing calls (twilio-rules 4.4,
        // [call#update] [tf-readme]).
        match request.field("Status") {
            Some("completed") => {
                self.interrupt(&leg.sid, Interrupt::HangUp(EndReason::Api));
            }
            Some("canceled")
                if matches!(
                    leg.status,
                    LegStatus::Queued | LegStatus::Initiated | LegStatus::Ringing
                ) =>
            {
                self.interrupt(&leg.sid, Interrupt::HangUp(EndReason::Api));
            }
            _ => {}
        }
        answer(StatusCode::OK, self.call_json(leg))
    }

    fn create_participant(self: &Arc<Self>, conference: &str, request: &Request) -> Answer {
        let label = request.field("Label").map(str::to_owned);
        // Twilio: a malformed label is rejected with 16024 (twilio-rules 3.5, [e16024]).
        if label.as_deref().is_some_and(label_malformed) {
            return error(400, 16024, "Participant label is invalid");
        }
        // Twilio: the path takes a CF SID or the friendly name; a name with
        // no active conference creates one, a SID not active fails
        // (twilio-rules 3.1, U4 for the error, [part#create]).
        let room_sid = if conference.starts_with("CF") && conference.len() == 34 {
            match self.with_world(|w| {
                w.room_by_sid(conference)
                    .filter(|r| !r.ended)
                    .map(|r| r.sid.clone())
            }) {
                Some(sid) => sid,
                None => return not_found(),
            }
        } else {
            self.room_for(conference)
        };
        // Twilio: a label already used in the conference is rejected with
        // 16026 (twilio-rules 3.5, [e16026]).
        let taken = self.with_world(|w| {
            w.room_by_sid(&room_sid).is_some_and(|r| {
                label
                    .as_ref()
                    .is_some_and(|l| r.members.iter().any(|m| m.label.as_ref() == Some(l)))
            })
        });
        if taken {
            return error(400, 16026, "Participant label is already in use");
        }
        // Twilio: `From` must be a number of the account or a verified
        // caller ID (error 21210), unless `CallToken` is a live inbound
        // call's, whose caller may then be shown (changelog 2023-10-25,
        // "CallToken support for Conference/Participants API"). Here: a
        // caller's number is refused unless their call's token comes with it.
        let from = request.field("From").unwrap_or_default();
        let (caller_of_a_call, token_matches) = self.with_world(|w| {
            let callers: Vec<&Leg> = w
                .legs
                .iter()
                .filter(|l| l.direction == "inbound" && l.to == from)
                .collect();
            let matches = request.field("CallToken").is_some_and(|token| {
                callers
                    .iter()
                    .any(|l| l.is_live() && l.call_token.as_deref() == Some(token))
            });
            (!callers.is_empty(), matches)
        });
        if caller_of_a_call && !token_matches {
            return error(
                400,
                21210,
                "The source phone number provided, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio.",
            );
        }
        let coached = match self.coach_request(&room_sid, request, None) {
            Ok(coached) => coached,
            Err((code, message)) => return error(400, code, message),
        };
        // Twilio: ConferenceRecord (true, false, record-from-start,
        // do-not-record; default false) and ConferenceRecordingStatusCallback
        // with events in-progress completed failed absent (twilio-rules 3.3,
        // 7.4, [part] [oai]); taken from the first participant like the
        // callback (U10).
        let recording = match request.field("ConferenceRecord") {
            None | Some("false" | "do-not-record") => None,
            Some("true" | "record-from-start") => {
                let events = request.list("ConferenceRecordingStatusCallbackEvent");
                if let Some(bad) = events.iter().find(|e| {
                    !["in-progress", "completed", "failed", "absent"].contains(&e.as_str())
                }) {
                    return error(
                        400,
                        21200,
                        &format!("Invalid ConferenceRecordingStatusCallbackEvent {bad}"),
                    );
                }
                Some(RecordingRequest {
                    from_ringing: false,
                    dual: false,
                    callback: request
                        .field("ConferenceRecordingStatusCallback")
                        .map(str::to_owned),
                    callback_method: request
                        .method("ConferenceRecordingStatusCallbackMethod", "POST"),
                    events: if events.is_empty() {
                        vec!["completed".into()]
                    } else {
                        events
                    },
                })
            }
            Some(other) => {
                return error(400, 21200, &format!("Invalid ConferenceRecord {other}"));
            }
        };
        let sid = self.create_leg(NewLeg {
            to: request.field("To").unwrap_or_default(),
            from: request.field("From").unwrap_or_default(),
            parent: None,
            direction: "outbound-api",
            status_callback: request.field("StatusCallback").map(str::to_owned),
            callback_method: request.field("StatusCallbackMethod").map(str::to_owned),
            callback_events: request.list("StatusCallbackEvent"),
            label: label.clone(),
            fallback: None,
        });
        // Twilio: ConferenceStatusCallback of the first participant only;
        // ConferenceStatusCallbackEvent defaults to `start end` on REST
        // (twilio-rules 1.14, [part] [oai]). Registered now: the room exists
        // from this request on (twilio-rules 3.1; U10).
        let callback = request.field("ConferenceStatusCallback").map(|url| {
            let events = request.list("ConferenceStatusCallbackEvent");
            RoomCallback {
                url: url.to_owned(),
                method: request.method("ConferenceStatusCallbackMethod", "POST"),
                events: if events.is_empty() {
                    vec!["start".into(), "end".into()]
                } else {
                    events
                },
            }
        });
        // Twilio: EarlyMedia defaults to true, StartConferenceOnEnter to
        // true, EndConferenceOnExit and Muted to false (twilio-rules 3.3, [part#create]).
        let member = Member {
            sid: sid.clone(),
            label,
            start_on_enter: request.flag("StartConferenceOnEnter", true),
            end_on_exit: request.flag("EndConferenceOnExit", false),
            muted: request.flag("Muted", false),
            hold: false,
            coaching: coached.is_some(),
            coached,
            wait: wait_audio(request.field("WaitUrl"), request.field("WaitMethod")),
            via_rest: true,
            joined: false,
        };
        let early_media = request.flag("EarlyMedia", true);
        let (first, name) = self.with_world(|w| {
            let first = Self::configure_room(w, &room_sid, callback.clone(), recording);
            let room = w.room_by_sid_mut(&room_sid);
            let name = room.map(|r| {
                r.members.push(member.clone());
                r.name.clone()
            });
            if let (Some(name), Some(leg)) = (&name, w.leg_mut(&sid)) {
                if early_media {
                    leg.ringing_into = Some(name.clone());
                }
            }
            (first, name)
        });
        if !first && callback.is_some() {
            self.log("  ConferenceStatusCallback ignored: the first participant's wins");
        }
        if name.is_none() {
            return not_found();
        }
        // Twilio: Timeout defaults to 60 (twilio-rules 3.3, [part#create]).
        let timeout = request
            .field("Timeout")
            .and_then(|t| t.parse().ok())
            .unwrap_or(60u64);
        tokio::spawn(self.clone().run_participant(
            sid.clone(),
            room_sid.clone(),
            self.scaled(Duration::from_secs(timeout)),
        ));
        let leg = self.with_world(|w| w.leg(&sid).cloned());
        // Twilio: the create response says `queued` (twilio-rules 3.4, [part#create]).
        let mut body = self.participant_json(leg.as_ref(), &member, &room_sid);
        body["status"] = json!("queued");
        answer(StatusCode::CREATED, body)
    }

    fn update_participant(
        self: &Arc<Self>,
        conference: &str,
        id: &str,
        request: &Request,
    ) -> Answer {
        let found = self.with_world(|w| {
            let room = w.room_by_sid(conference).filter(|r| !r.ended)?;
            Some((room.sid.clone(), find_member(room, id)?.clone()))
        });
        let Some((room_sid, before)) = found else {
            return not_found();
        };
        // Twilio: updating a participant still connecting fails (twilio-rules
        // 3.9, U5 for the status, code and text, [fpt-monitor] [dialpad-26]).
        if !before.joined {
            return error(400, 21220, "Participant is not connected");
        }
        let hold = request.field("Hold").map(|v| v == "true");
        let muted = request.field("Muted").map(|v| v == "true");
        let end_on_exit = request.field("EndConferenceOnExit").map(|v| v == "true");
        let coaching_given =
            request.field("Coaching").is_some() || request.field("CallSidToCoach").is_some();
        let coached = if coaching_given {
            match self.coach_request(&room_sid, request, Some(&before)) {
                Ok(coached) => Some(coached),
                Err((code, message)) => return error(400, code, message),
            }
        } else {
            None
        };
        let after = self.with_world(|w| {
            let room = w.room_by_sid_mut(&room_sid)?;
            let member = room.members.iter_mut().find(|m| m.sid == before.sid)?;
            if let Some(end) = end_on_exit {
                // Twilio: EndConferenceOnExit changed while on hold has no
                // effect (twilio-rules 3.8, U5, [fpt-monitor] [fpt-conf]).
                if !member.hold {
                    member.end_on_exit = end;
                }
            }
            if let Some(muted) = muted {
                member.muted = muted;
            }
            if let Some(hold) = hold {
                member.hold = hold;
            }
            if let Some(coached) = &coached {
                member.coaching = coached.is_some();
                member.coached = coached.clone();
            }
            if let Some(url) = request.field("WaitUrl") {
                member.wait = wait_audio(Some(url), request.field("WaitMethod"));
            }
            Some(member.clone())
        });
        let Some(after) = after else {
            return not_found();
        };
        let number = self.number_of(&after.sid);
        self.log(format!("  participant {number} updated"));
        let coaching_changed = after.coaching != before.coaching || after.coached != before.coached;
        if after.end_on_exit != before.end_on_exit
            || request.field("WaitUrl").is_some()
            || coaching_changed
        {
            // Twilio: EndConferenceOnExit, Coaching or WaitUrl changes fire
            // `modify` (twilio-rules 2.7, [conf#status-callback-event]).
            self.room_event(&room_sid, "participant-modify", Some(&after), Vec::new());
        } else if end_on_exit.is_some() && before.hold {
            self.log(format!(
                "  {number}: EndConferenceOnExit ignored while on hold"
            ));
        }
        if after.muted != before.muted {
            let event = if after.muted {
                "participant-mute"
            } else {
                "participant-unmute"
            };
            self.room_event(&room_sid, event, Some(&after), Vec::new());
        }
        if after.hold != before.hold {
            let event = if after.hold {
                "participant-hold"
            } else {
                "participant-unhold"
            };
            self.room_event(&room_sid, event, Some(&after), Vec::new());
            if after.hold {
                self.play_hold_audio(&after.sid, &number, request);
            }
        }
        let leg = self.with_world(|w| w.leg(&after.sid).cloned());
        answer(
            StatusCode::OK,
            self.participant_json(leg.as_ref(), &after, &room_sid),
        )
    }

    /// Who a participant create or update makes the participant coach:
    /// `None` for nobody, or the refusal's error code and message (answered
    /// 400). `current` is the participant before an update.
    /// Twilio: `Coaching` defaults to false unless `CallSidToCoach` is
    /// given, and `Coaching=true` needs a `CallSidToCoach` ([oai], [part]).
    /// The coached participant must be in the conference (16028, [e16028])
    /// and not on hold (16027, [e16027]); both errors are documented for
    /// adding a coach, the HTTP status is not (assumed 400), and the same is
    /// assumed of an update that coaches someone (stricter, unverified).
    fn coach_request(
        &self,
        room_sid: &str,
        request: &Request,
        current: Option<&Member>,
    ) -> Result<Option<String>, (u32, &'static str)> {
        let named = request
            .field("CallSidToCoach")
            .map(str::to_owned)
            .or_else(|| current.and_then(|m| m.coached.clone()));
        let coaching = request.flag(
            "Coaching",
            request.field("CallSidToCoach").is_some() || current.is_some_and(|m| m.coaching),
        );
        if !coaching {
            return Ok(None);
        }
        let Some(coached) = named else {
            return Err((21200, "Coaching is true but CallSidToCoach is missing"));
        };
        let found = self.with_world(|w| {
            w.room_by_sid(room_sid)
                .and_then(|r| r.joined().find(|m| m.sid == coached).map(|m| m.hold))
        });
        match found {
            None => Err((
                16028,
                "Participant to be whispered is not present in the conference",
            )),
            Some(true) => Err((16027, "Participant to be whispered is on hold")),
            Some(false) => Ok(Some(coached)),
        }
    }

    /// Twilio: without HoldUrl the default hold music plays; HoldMethod
    /// defaults to GET (twilio-rules 3.7, 8.1, 8.2, U9, [part#update] [blog-hold]).
    fn play_hold_audio(self: &Arc<Self>, sid: &str, number: &str, request: &Request) {
        match request.field("HoldUrl").filter(|u| !u.is_empty()) {
            None => {
                self.log(format!(
                    "  {number} hears Twilio's default hold music (no HoldUrl)"
                ));
                self.with_world(|w| {
                    w.default_music
                        .entry(number.to_owned())
                        .or_default()
                        .push(std::time::Instant::now())
                });
            }
            Some(url) => {
                let (sim, sid, url, number) = (
                    self.clone(),
                    sid.to_owned(),
                    url.to_owned(),
                    number.to_owned(),
                );
                let method = request.method("HoldMethod", "GET");
                tokio::spawn(async move {
                    if let Err(e) = sim
                        .call_webhook(&sid, &url, &method, Vec::new(), "HoldUrl")
                        .await
                    {
                        sim.application_error(
                            &number,
                            format!("HoldUrl {url}: {} (error {})", e.text, e.code),
                        );
                    }
                });
            }
        }
    }

    /// Twilio: delete removes the participant, 204 (twilio-rules 3.10,
    /// [part#delete]); U3: a REST participant's call is hung up, a TwiML
    /// participant's call carries on after its `<Dial>`.
    fn delete_participant(self: &Arc<Self>, conference: &str, id: &str) -> Answer {
        let found = self.with_world(|w| {
            let room = w.room_by_sid(conference).filter(|r| !r.ended)?;
            Some((room.sid.clone(), find_member(room, id)?.clone()))
        });
        let Some((room_sid, member)) = found else {
            return not_found();
        };
        let status = if member.via_rest {
            "completed"
        } else {
            "in-progress"
        };
        self.remove_member(
            &room_sid,
            &member.sid,
            Leave {
                status,
                reason: "participant_updated_via_api",
                kicked: true,
            },
        );
        if member.via_rest {
            self.interrupt(&member.sid, Interrupt::HangUp(EndReason::Api));
        }
        no_content()
    }

    /// Twilio: Status=completed ends the conference (reason
    /// conference-ended-via-api) (twilio-rules 3.11, [confres] [oai]).
    fn update_conference(self: &Arc<Self>, conference: &str, request: &Request) -> Answer {
        let Some(room) = self.with_world(|w| w.room_by_sid(conference).cloned()) else {
            return not_found();
        };
        if request.field("Status") == Some("completed") && !room.ended {
            self.log(format!("  room {} ended via the API", room.name));
            self.end_room(&room.sid, "conference-ended-via-api", None);
        }
        if let Some(url) = request.field("AnnounceUrl") {
            self.log(format!("  room {} announces {url}", room.name));
        }
        let room = self
            .with_world(|w| w.room_by_sid(conference).cloned())
            .unwrap_or(room);
        answer(StatusCode::OK, self.conference_json(&room))
    }
}

/// Twilio: a participant is named by its Call SID or its label (twilio-rules 3.2, [part]).
fn find_member<'a>(room: &'a Room, id: &str) -> Option<&'a Member> {
    room.members
        .iter()
        .find(|m| m.sid == id || m.label.as_deref() == Some(id))
}

fn short_path(path: &str) -> &str {
    path.find("/Calls")
        .or_else(|| path.find("/Conferences"))
        .map_or(path, |i| &path[i..])
}
