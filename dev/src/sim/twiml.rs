//! Reads the TwiML a webhook answered into the verbs the simulator runs.
//! Anything it does not understand makes the document invalid, as Twilio
//! would refuse it (the caller hears an application error).

use std::collections::HashMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    Say(String),
    Play { url: String, loops: u32 },
    Pause(u32),
    Hangup,
    Redirect { url: String, method: String },
    Dial(Box<Dial>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dial {
    pub action: Option<String>,
    pub method: String,
    pub caller_id: Option<String>,
    pub timeout_secs: u32,
    pub target: DialTarget,
    /// `record` (on `<Number>` dials).
    pub record: Option<RecordingRequest>,
}

/// A recording asked for by `<Dial record>` or `<Conference record>`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRequest {
    /// `record-from-ringing*`: from the dial, not the answer.
    pub from_ringing: bool,
    /// `*-dual`: one channel per leg.
    pub dual: bool,
    pub callback: Option<String>,
    pub callback_method: String,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DialTarget {
    Number {
        number: String,
        status_callback: Option<String>,
        events: Vec<String>,
    },
    Conference(RoomOptions),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoomOptions {
    pub name: String,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    pub label: Option<String>,
    pub status_callback: Option<String>,
    pub events: Vec<String>,
    pub callback_method: String,
    /// `None` when the attribute is absent (Twilio's default music).
    pub wait_url: Option<String>,
    pub wait_method: Option<String>,
    pub muted: bool,
    pub record: Option<RecordingRequest>,
}

fn attributes(element: &BytesStart) -> Result<HashMap<String, String>, String> {
    element
        .attributes()
        .map(|a| {
            let a = a.map_err(|e| e.to_string())?;
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| e.to_string())?;
            Ok((a.key.into_inner().to_owned(), value.into_owned()))
        })
        .collect()
}

/// One element with its attributes, text and children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: HashMap<String, String>,
    text: String,
    children: Vec<Node>,
}

fn parse_tree(xml: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        match reader.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(e) => stack.push(Node {
                name: e.name().into_inner().to_owned(),
                attrs: attributes(&e)?,
                ..Node::default()
            }),
            Event::Empty(e) => {
                let node = Node {
                    name: e.name().into_inner().to_owned(),
                    attrs: attributes(&e)?,
                    ..Node::default()
                };
                stack.last_mut().ok_or("unbalanced")?.children.push(node);
            }
            Event::Text(t) => stack
                .last_mut()
                .ok_or("unbalanced")?
                .text
                .push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .ok_or("unknown entity")?
                        .to_owned(),
                };
                stack
                    .last_mut()
                    .ok_or("unbalanced")?
                    .text
                    .push_str(&resolved);
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced")?;
                stack.last_mut().ok_or("unbalanced")?.children.push(node);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = stack.pop().ok_or("empty document")?;
    if !stack.is_empty() {
        return Err("unclosed element".into());
    }
    match root.children.len() {
        1 => Ok(root.children.remove(0)),
        _ => Err("expected one <Response>".into()),
    }
}

fn flag(attrs: &HashMap<String, String>, name: &str, default: bool) -> bool {
    attrs.get(name).map_or(default, |v| v == "true")
}

fn events(attrs: &HashMap<String, String>) -> Vec<String> {
    attrs
        .get("statusCallbackEvent")
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn method(attrs: &HashMap<String, String>, name: &str) -> String {
    attrs
        .get(name)
        .map_or_else(|| "POST".to_owned(), |m| m.to_ascii_uppercase())
}

/// The recording a `<Dial>` or `<Conference>` asks for, if any; an unknown
/// `record` value makes the document invalid.
fn recording(
    attrs: &HashMap<String, String>,
    allowed: &[&str],
) -> Result<Option<RecordingRequest>, String> {
    let Some(record) = attrs.get("record") else {
        return Ok(None);
    };
    // Twilio: <Dial record> takes do-not-record, record-from-answer,
    // record-from-ringing and their -dual forms, true and false as
    // aliases (twilio-rules 7.5, [dial#record]); <Conference record>
    // takes record-from-start or do-not-record (twilio-rules 7.1, [conf#record]).
    if !allowed.contains(&record.as_str()) {
        return Err(format!("record=\"{record}\" is not a valid value here"));
    }
    if matches!(record.as_str(), "do-not-record" | "false") {
        return Ok(None);
    }
    // Twilio: recordingStatusCallbackEvent takes in-progress, completed and
    // absent, default completed; the method defaults to POST (twilio-rules 7.2).
    let events: Vec<String> = match attrs.get("recordingStatusCallbackEvent") {
        None => vec!["completed".to_owned()],
        Some(list) => list.split_whitespace().map(str::to_owned).collect(),
    };
    if let Some(bad) = events
        .iter()
        .find(|e| !["in-progress", "completed", "absent"].contains(&e.as_str()))
    {
        return Err(format!("recordingStatusCallbackEvent {bad:?} is not valid"));
    }
    Ok(Some(RecordingRequest {
        from_ringing: record.starts_with("record-from-ringing"),
        dual: record.ends_with("-dual"),
        callback: attrs.get("recordingStatusCallback").cloned(),
        callback_method: method(attrs, "recordingStatusCallbackMethod"),
        events,
    }))
}

/// Twilio: wait and hold TwiML may only use `<Play>`, `<Say>`, `<Pause>`
/// and `<Redirect>` (twilio-rules 1.5, 8.1, [conf#waiturl]).
pub fn check_wait_document(verbs: &[Verb]) -> Result<(), String> {
    match verbs
        .iter()
        .find(|v| matches!(v, Verb::Hangup | Verb::Dial(_)))
    {
        Some(verb) => Err(format!("{verb:?} is not allowed in wait TwiML")),
        None => Ok(()),
    }
}

pub fn parse(xml: &str) -> Result<Vec<Verb>, String> {
    let root = parse_tree(xml)?;
    if root.name != "Response" {
        return Err(format!("root is <{}>, not <Response>", root.name));
    }
    root.children.iter().map(verb).collect()
}

fn verb(node: &Node) -> Result<Verb, String> {
    let text = node.text.trim().to_owned();
    Ok(match node.name.as_str() {
        "Say" => Verb::Say(text),
        "Play" => Verb::Play {
            url: text,
            loops: node
                .attrs
                .get("loop")
                .and_then(|l| l.parse().ok())
                .unwrap_or(1),
        },
        "Pause" => Verb::Pause(
            node.attrs
                .get("length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(1),
        ),
        "Hangup" => Verb::Hangup,
        "Redirect" => Verb::Redirect {
            url: text,
            method: method(&node.attrs, "method"),
        },
        "Dial" => {
            let [child] = node.children.as_slice() else {
                return Err("<Dial> needs exactly one noun here".into());
            };
            let target = match child.name.as_str() {
                "Number" => DialTarget::Number {
                    number: child.text.trim().to_owned(),
                    status_callback: child.attrs.get("statusCallback").cloned(),
                    events: events(&child.attrs),
                },
                "Conference" => DialTarget::Conference(RoomOptions {
                    name: child.text.trim().to_owned(),
                    start_on_enter: flag(&child.attrs, "startConferenceOnEnter", true),
                    end_on_exit: flag(&child.attrs, "endConferenceOnExit", false),
                    label: child.attrs.get("participantLabel").cloned(),
                    status_callback: child.attrs.get("statusCallback").cloned(),
                    events: events(&child.attrs),
                    // Twilio: statusCallbackMethod defaults to POST
                    // (twilio-rules 1.12, [conf#status-callback-event]).
                    callback_method: method(&child.attrs, "statusCallbackMethod"),
                    wait_url: child.attrs.get("waitUrl").cloned(),
                    wait_method: child.attrs.get("waitMethod").cloned(),
                    muted: flag(&child.attrs, "muted", false),
                    record: recording(&child.attrs, &["record-from-start", "do-not-record"])?,
                }),
                other => return Err(format!("<Dial><{other}> is not simulated")),
            };
            Verb::Dial(Box::new(Dial {
                action: node.attrs.get("action").cloned(),
                method: method(&node.attrs, "method"),
                caller_id: node.attrs.get("callerId").cloned(),
                timeout_secs: node
                    .attrs
                    .get("timeout")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(30),
                record: match target {
                    DialTarget::Number { .. } => recording(
                        &node.attrs,
                        &[
                            "do-not-record",
                            "record-from-answer",
                            "record-from-ringing",
                            "record-from-answer-dual",
                            "record-from-ringing-dual",
                            "true",
                            "false",
                        ],
                    )?,
                    DialTarget::Conference(_) => None,
                },
                target,
            }))
        }
        other => return Err(format!("<{other}> is not a TwiML verb")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_products_documents() {
        let verbs = parse(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial action="https://x/a?b=1&amp;c=2" callerId="+1500"><Number statusCallback="https://x/s" statusCallbackEvent="initiated ringing">+1415</Number></Dial><Hangup /></Response>"#).unwrap();
        assert_eq!(verbs.len(), 2);
        let Verb::Dial(dial) = &verbs[0] else {
            panic!()
        };
        assert_eq!(dial.action.as_deref(), Some("https://x/a?b=1&c=2"));
        assert!(
            matches!(&dial.target, DialTarget::Number { number, events, .. } if number == "+1415" && events.len() == 2)
        );
        assert!(parse("<Response><Dance/></Response>").is_err());
        let Verb::Dial(dial) = &parse(r#"<Response><Dial record="record-from-answer-dual" recordingStatusCallback="https://x/r"><Number>+1415</Number></Dial></Response>"#).unwrap()[0] else {
            panic!()
        };
        let record = dial.record.as_ref().unwrap();
        assert!(record.dual && !record.from_ringing);
        assert_eq!(record.events, ["completed"]);
        assert_eq!(record.callback_method, "POST");
        assert!(parse(r#"<Response><Dial record="record-from-start"><Number>+1415</Number></Dial></Response>"#).is_err());
        assert!(parse(r#"<Response><Dial><Conference record="record-from-answer">r</Conference></Dial></Response>"#).is_err());
        assert!(parse("oops").is_err());
        assert_eq!(
            parse(r#"<?xml version="1.0" encoding="UTF-8"?><Response />"#).unwrap(),
            vec![]
        );
    }
}
