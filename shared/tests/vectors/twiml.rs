//! The TwiML builder against twilio-python's own output, byte for byte, and
//! a property test that no text or attribute value can inject markup.

use proptest::prelude::*;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::Deserialize;
use warm_transfer_core::twiml::*;

const BASE: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";
const ROOM: &str = "wt-CA0123456789abcdef0123456789abcdef";

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    xml: String,
}

fn room(label: &str, end_on_exit: bool) -> Response {
    Response::new().dial(
        Dial::new().conference(
            Conference::new(ROOM)
                .beep(Beep::False)
                .end_conference_on_exit(end_on_exit)
                .participant_label(label)
                .start_conference_on_enter(true)
                .status_callback(format!("{BASE}/events/conference"))
                .status_callback_events(ConferenceEventKind::LIFECYCLE)
                .status_callback_method(HttpMethod::Post)
                .wait_method(HttpMethod::Post)
                .wait_url(format!("{BASE}/twiml/hold-music")),
        ),
    )
}

/// The typed equivalent of each golden case. An unknown name fails, so a new
/// golden case cannot be skipped silently.
fn build(name: &str) -> Response {
    let text = "Sales & \"Support\" <team> 'A'";
    match name {
        "dial_customer" => Response::new().dial(
            Dial::new()
                .action(format!("{BASE}/twiml/agent-dial-ended"))
                .answer_on_bridge(true)
                .caller_id("+15005550006")
                .method(HttpMethod::Post)
                .number(
                    Number::new("+14155550100")
                        .status_callback(format!("{BASE}/events/customer-leg"))
                        .status_callback_events(NumberEvent::EVERY)
                        .status_callback_method(HttpMethod::Post),
                ),
        ),
        "conference_customer" => room("customer", true),
        "conference_first_agent" => room("first-agent", false),
        "hangup" => Response::new().hangup(),
        "say_then_hangup" => Response::new()
            .say(
                Say::new("We could not complete the transfer. Goodbye.")
                    .language("en-US")
                    .voice("Polly.Joanna"),
            )
            .hangup(),
        "escaping" => Response::new()
            .dial(Dial::new().conference(Conference::new(text).end_conference_on_exit(true)))
            .say(Say::new(format!("{text} & more"))),
        "hold_music" => {
            Response::new().play(Play::new("https://api.twilio.com/cowbell.mp3").loop_count(0))
        }
        "redirect" => Response::new().redirect(
            Redirect::new(format!("{BASE}/twiml/conference?room={ROOM}&role=customer"))
                .method(HttpMethod::Post),
        ),
        "empty" => Response::new(),
        "dial_options" => Response::new().dial(
            Dial::new()
                .caller_id("+15005550006")
                .hangup_on_star(false)
                .record(DialRecord::RecordFromAnswerDual)
                .time_limit(14400)
                .timeout(20)
                .number(Number::new("+14155550199").send_digits("wwww1928")),
        ),
        "unicode" => {
            Response::new().say(Say::new("Un momento, por favor. Café ☕").language("es-ES"))
        }
        "pause_say" => Response::new()
            .pause(Pause::new().length(2))
            .say(Say::new("Connecting you now").loop_count(2)),
        other => panic!("golden case {other:?} has no builder here: add one"),
    }
}

#[test]
fn every_golden_case_is_reproduced_byte_for_byte() {
    let golden: Golden =
        serde_json::from_str(&std::fs::read_to_string(super::golden("twiml.json")).unwrap())
            .unwrap();
    assert_eq!(golden.cases.len(), 12);
    for case in &golden.cases {
        assert_eq!(build(&case.name).to_xml(), case.xml, "case {}", case.name);
    }
}

/// What a parser sees: (element, attributes, text) in document order.
type Parsed = Vec<(String, Vec<(String, String)>, String)>;

fn parse(xml: &str) -> Parsed {
    let mut reader = Reader::from_str(xml);
    let mut out: Parsed = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        match reader.read_event().expect("output must be well-formed XML") {
            Event::Start(e) => {
                out.push(element(&e));
                stack.push(out.len() - 1);
            }
            Event::Empty(e) => out.push(element(&e)),
            Event::Text(t) => {
                let index = *stack.last().unwrap();
                out[index].2.push_str(&t.xml10_content());
            }
            Event::GeneralRef(r) => {
                let index = *stack.last().unwrap();
                let resolved = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .unwrap()
                        .to_owned(),
                };
                out[index].2.push_str(&resolved);
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn element(e: &quick_xml::events::BytesStart) -> (String, Vec<(String, String)>, String) {
    let attrs = e
        .attributes()
        .map(|a| {
            let a = a.unwrap();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .unwrap();
            (a.key.into_inner().to_owned(), value.into_owned())
        })
        .collect();
    (e.name().into_inner().to_owned(), attrs, String::new())
}

/// The documented behaviour: characters XML 1.0 cannot carry are dropped.
fn representable(s: &str) -> String {
    s.chars()
        .filter(|c| {
            matches!(c, '\t' | '\n' | '\r') || (*c >= ' ' && *c != '\u{FFFE}' && *c != '\u{FFFF}')
        })
        .collect()
}

fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[&<>\"' \t\r\n\u{0}-\u{1f}a-zé☕\u{FFFE}\u{FFFF}]{0,24}",
        Just("]]><Hangup/><!--".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn no_input_can_inject_markup(say in nasty(), room_name in nasty(), action in nasty(), label in nasty()) {
        let xml = Response::new()
            .dial(Dial::new().action(action.clone()).conference(Conference::new(room_name.clone()).participant_label(label.clone())))
            .say(Say::new(say.clone()))
            .hangup()
            .to_xml();
        let parsed = parse(&xml);
        let names: Vec<&str> = parsed.iter().map(|(n, _, _)| n.as_str()).collect();
        prop_assert_eq!(names, vec!["Response", "Dial", "Conference", "Say", "Hangup"]);
        prop_assert_eq!(&parsed[1].1, &vec![("action".to_owned(), representable(&action))]);
        prop_assert_eq!(&parsed[2].1, &vec![("participantLabel".to_owned(), representable(&label))]);
        prop_assert_eq!(&parsed[2].2, &representable(&room_name));
        prop_assert_eq!(&parsed[3].2, &representable(&say));
    }
}
