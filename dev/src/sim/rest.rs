//! The slice of Twilio's REST API the product calls, with requests checked
//! against Twilio's OpenAPI file and answers shaped like Twilio's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use warm_transfer_core::domain::LegStatus;

use super::twiml::RoomOptions;
use super::world::{EndReason, Interrupt, Leg};
use super::{Operation, Sim};

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

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc2822)
        .unwrap_or_default()
}

impl Sim {
    fn call_json(&self, leg: &Leg) -> Value {
        // The call resource has no "initiated" status; Twilio shows it as queued.
        let status = match leg.status {
            LegStatus::Initiated => "queued",
            other => other.as_str(),
        };
        json!({
            "sid": leg.sid,
            "parent_call_sid": leg.parent,
            "account_sid": self.config.account_sid,
            "to": leg.to,
            "from": leg.from,
            "status": status,
            "direction": leg.direction,
            "api_version": "2010-04-01",
            "date_created": now(),
            "date_updated": now(),
            "uri": format!("/2010-04-01/Accounts/{}/Calls/{}.json", self.config.account_sid, leg.sid),
        })
    }

    fn participant_json(
        &self,
        leg: &Leg,
        conference_sid: &str,
        options: Option<&RoomOptions>,
    ) -> Value {
        json!({
            "account_sid": self.config.account_sid,
            "call_sid": leg.sid,
            "conference_sid": conference_sid,
            "label": leg.label,
            "status": if leg.status == LegStatus::InProgress { "connected" } else { "queued" },
            "muted": false,
            "hold": false,
            "coaching": false,
            "call_sid_to_coach": null,
            "end_conference_on_exit": options.is_some_and(|o| o.end_on_exit),
            "start_conference_on_enter": options.is_none_or(|o| o.start_on_enter),
            "date_created": now(),
            "date_updated": now(),
            "queue_time": "0",
            "uri": format!("/2010-04-01/Accounts/{}/Conferences/{conference_sid}/Participants/{}.json", self.config.account_sid, leg.sid),
        })
    }

    fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let expected = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.config.account_sid, self.config.auth_token
        ));
        headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Basic {expected}"))
    }

    fn take_fault(&self, operation: Operation) -> Option<Answer> {
        self.with_world(|w| {
            let queue = w.faults.get_mut(&operation)?;
            if queue.is_empty() {
                return None;
            }
            let (status, code, message) = queue.remove(0);
            Some(error(status, code, &message))
        })
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
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let query: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let path = parts.uri.path().to_owned();
        self.log(format!("REST {} {}", parts.method, short_path(&path)));
        if !self.authorized(&parts.headers) {
            return Ok(error(401, 20003, "Authentication Error - invalid username"));
        }
        let violations = self
            .openapi
            .check_request(parts.method.as_str(), &path, &query, &form);
        if !violations.is_empty() {
            let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
            self.log(format!("  !! contract violation: {}", text.join("; ")));
            self.with_world(|w| w.violations.extend(text.clone()));
            return Ok(error(400, 21200, &text.join("; ")));
        }
        let fields: HashMap<&str, &str> =
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // The list operations' filters.
        let filter: HashMap<&str, &str> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let prefix = format!("/2010-04-01/Accounts/{}/", self.config.account_sid);
        let Some(rest) = path.strip_prefix(&prefix) else {
            return Ok(error(404, 20404, "The requested resource was not found"));
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let events = |name: &str| -> Vec<String> {
            form.iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let answer = match (&parts.method, segments.as_slice()) {
            (&Method::POST, ["Calls.json"]) => {
                self.take_fault(Operation::CreateCall).unwrap_or_else(|| {
                    let timeout = fields
                        .get("Timeout")
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(60u64);
                    let sid = self.create_leg(
                        fields.get("To").copied().unwrap_or_default(),
                        fields.get("From").copied().unwrap_or_default(),
                        None,
                        "outbound-api",
                        fields.get("StatusCallback").map(|s| s.to_string()),
                        events("StatusCallbackEvent"),
                        None,
                    );
                    let url = fields.get("Url").copied().unwrap_or_default().to_owned();
                    tokio::spawn(self.clone().run_outbound(
                        sid.clone(),
                        url,
                        self.scaled(Duration::from_secs(timeout)),
                    ));
                    let leg = self.with_world(|w| w.leg(&sid).cloned());
                    leg.map_or_else(
                        || error(500, 20500, "lost"),
                        |leg| answer(StatusCode::CREATED, self.call_json(&leg)),
                    )
                })
            }
            (&Method::GET, ["Calls.json"]) => {
                let calls: Vec<Value> = self.with_world(|w| {
                    w.legs
                        .iter()
                        .filter(|l| {
                            filter
                                .get("ParentCallSid")
                                .is_none_or(|p| l.parent.as_deref() == Some(*p))
                        })
                        .filter(|l| filter.get("To").is_none_or(|t| l.to == *t))
                        .filter(|l| filter.get("Status").is_none_or(|s| l.status.as_str() == *s))
                        .map(|l| self.call_json(l))
                        .collect()
                });
                answer(
                    StatusCode::OK,
                    json!({ "calls": calls, "next_page_uri": null, "page": 0, "page_size": 50, "start": 0, "end": 0 }),
                )
            }
            (method, [calls, file]) if *calls == "Calls" => {
                let sid = file.trim_end_matches(".json").to_owned();
                let Some(leg) = self.with_world(|w| w.leg(&sid).cloned()) else {
                    return Ok(error(404, 20404, "The requested resource was not found"));
                };
                if *method == Method::GET {
                    answer(StatusCode::OK, self.call_json(&leg))
                } else if let Some(fault) = self.take_fault(Operation::UpdateCall) {
                    fault
                } else {
                    self.update_call(&leg, &fields)
                }
            }
            (&Method::POST, ["Conferences", name, "Participants.json"]) => self
                .take_fault(Operation::CreateParticipant)
                .unwrap_or_else(|| {
                    self.create_participant(name, &fields, events("StatusCallbackEvent"))
                }),
            (method, ["Conferences", conference, "Participants", participant]) => {
                let id = participant.trim_end_matches(".json");
                let found = self.with_world(|w| {
                    let room = w
                        .rooms
                        .iter()
                        .find(|r| r.sid == *conference || r.name == *conference)?;
                    let member = room
                        .members
                        .iter()
                        .find(|m| m.sid == id || m.label.as_deref() == Some(id))?;
                    Some((room.sid.clone(), member.sid.clone()))
                });
                let Some((room_sid, call_sid)) = found else {
                    return Ok(error(404, 20404, "The requested resource was not found"));
                };
                let leg = self.with_world(|w| w.leg(&call_sid).cloned());
                match (method, leg) {
                    (&Method::DELETE, Some(_)) => {
                        self.interrupt(&call_sid, Interrupt::HangUp(EndReason::Api));
                        let mut empty = http::Response::new(Full::new(Bytes::new()));
                        *empty.status_mut() = StatusCode::NO_CONTENT;
                        empty
                    }
                    (_, Some(leg)) => {
                        self.log(format!("  participant {} updated", leg.to));
                        answer(StatusCode::OK, self.participant_json(&leg, &room_sid, None))
                    }
                    (_, None) => error(404, 20404, "The requested resource was not found"),
                }
            }
            (&Method::GET, ["Conferences.json"]) => {
                let conferences: Vec<Value> = self.with_world(|w| {
                    w.rooms
                        .iter()
                        .filter(|r| filter.get("FriendlyName").is_none_or(|n| r.name == *n))
                        .map(|r| {
                            let status = if r.ended { "completed" } else if r.started { "in-progress" } else { "init" };
                            json!({ "sid": r.sid, "friendly_name": r.name, "status": status, "account_sid": self.config.account_sid })
                        })
                        .filter(|c| filter.get("Status").is_none_or(|s| c["status"] == *s))
                        .collect()
                });
                answer(
                    StatusCode::OK,
                    json!({ "conferences": conferences, "next_page_uri": null, "page": 0, "page_size": 50, "start": 0, "end": 0 }),
                )
            }
            _ => error(404, 20404, "The requested resource was not found"),
        };
        Ok(answer)
    }

    fn update_call(&self, leg: &Leg, fields: &HashMap<&str, &str>) -> Answer {
        if let Some(url) = fields.get("Url") {
            if leg.status != LegStatus::InProgress {
                return error(400, 21220, "Call is not in-progress. Cannot redirect.");
            }
            self.log(format!("  {} redirected", leg.to));
            self.interrupt(&leg.sid, Interrupt::Redirect((*url).to_owned()));
        }
        match fields.get("Status").copied() {
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

    fn create_participant(
        self: &Arc<Self>,
        conference: &str,
        fields: &HashMap<&str, &str>,
        events: Vec<String>,
    ) -> Answer {
        let flag = |name: &str, default: bool| fields.get(name).map_or(default, |v| *v == "true");
        let room_sid = if conference.starts_with("CF") {
            conference.to_owned()
        } else {
            self.room_for(conference)
        };
        let Some(name) = self.with_world(|w| {
            w.rooms
                .iter()
                .find(|r| r.sid == room_sid)
                .map(|r| r.name.clone())
        }) else {
            return error(404, 20404, "The requested resource was not found");
        };
        let label = fields.get("Label").map(|l| l.to_string());
        let options = RoomOptions {
            name: name.clone(),
            start_on_enter: flag("StartConferenceOnEnter", true),
            end_on_exit: flag("EndConferenceOnExit", false),
            label: label.clone(),
            status_callback: None,
            events: Vec::new(),
            wait_url: fields.get("WaitUrl").map(|w| w.to_string()),
        };
        let sid = self.create_leg(
            fields.get("To").copied().unwrap_or_default(),
            fields.get("From").copied().unwrap_or_default(),
            None,
            "outbound-api",
            fields.get("StatusCallback").map(|s| s.to_string()),
            events,
            label,
        );
        if flag("EarlyMedia", true) {
            self.with_world(|w| {
                if let Some(leg) = w.leg_mut(&sid) {
                    leg.ringing_into = Some(name.clone());
                }
            });
        }
        let timeout = fields
            .get("Timeout")
            .and_then(|t| t.parse().ok())
            .unwrap_or(60u64);
        tokio::spawn(self.clone().run_participant(
            sid.clone(),
            options.clone(),
            self.scaled(Duration::from_secs(timeout)),
        ));
        let leg = self.with_world(|w| w.leg(&sid).cloned());
        leg.map_or_else(
            || error(500, 20500, "lost"),
            |leg| {
                answer(
                    StatusCode::CREATED,
                    self.participant_json(&leg, &room_sid, Some(&options)),
                )
            },
        )
    }
}

fn short_path(path: &str) -> &str {
    path.find("/Calls")
        .or_else(|| path.find("/Conferences"))
        .map_or(path, |i| &path[i..])
}
