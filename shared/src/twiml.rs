//! A typed TwiML builder on quick-xml whose output is byte-identical to
//! Twilio's official helper library (twilio-python's `VoiceResponse`):
//! declaration, attributes sorted by name, booleans as `true`/`false`,
//! `<Empty />` elements and ElementTree's escaping.
//!
//! Characters XML 1.0 cannot carry at all (C0 controls other than tab, line
//! feed and carriage return, U+FFFE, U+FFFF) are dropped from text and
//! attribute values: no input can produce a document Twilio would refuse.
//! A carriage return in text is written `&#13;` (ElementTree writes it raw,
//! and every parser then reads it as a line feed): the only byte where the
//! output knowingly differs from twilio-python, so that text round-trips.

use std::borrow::Cow;
use std::collections::BTreeMap;

use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;

wire_enum!(HttpMethod { Get => "GET", Post => "POST" });
wire_enum!(
    /// `<Dial record>`.
    DialRecord {
        DoNotRecord => "do-not-record",
        RecordFromAnswer => "record-from-answer",
        RecordFromRinging => "record-from-ringing",
        RecordFromAnswerDual => "record-from-answer-dual",
        RecordFromRingingDual => "record-from-ringing-dual",
    }
);
wire_enum!(
    /// `<Conference record>`.
    ConferenceRecord { DoNotRecord => "do-not-record", RecordFromStart => "record-from-start" }
);
wire_enum!(Trim { TrimSilence => "trim-silence", DoNotTrim => "do-not-trim" });
wire_enum!(
    /// `<Conference beep>`: who hears the beep when someone enters or leaves.
    Beep { True => "true", False => "false", OnEnter => "onEnter", OnExit => "onExit" }
);
wire_enum!(
    /// `<Number statusCallbackEvent>` values.
    NumberEvent {
        Initiated => "initiated",
        Ringing => "ringing",
        Answered => "answered",
        Completed => "completed",
    }
);
wire_enum!(
    /// `<Conference statusCallbackEvent>` values.
    ConferenceEventKind {
        Start => "start",
        End => "end",
        Join => "join",
        Leave => "leave",
        Mute => "mute",
        Hold => "hold",
        Modify => "modify",
        Speaker => "speaker",
        Announcement => "announcement",
    }
);
wire_enum!(
    /// `recordingStatusCallbackEvent` values.
    RecordingEvent { InProgress => "in-progress", Completed => "completed", Absent => "absent" }
);
wire_enum!(
    /// `<Conference jitterBufferSize>`.
    JitterBufferSize { Off => "off", Small => "small", Medium => "medium", Large => "large" }
);
wire_enum!(
    /// `<Conference region>`: where the conference is mixed.
    ConferenceRegion {
        Us1 => "us1", Us2 => "us2", Ie1 => "ie1", De1 => "de1", Sg1 => "sg1",
        Br1 => "br1", Au1 => "au1", Jp1 => "jp1",
    }
);
wire_enum!(
    /// `<Dial ringTone>`: the country whose ringback tone the caller hears.
    RingTone {
        At => "at", Au => "au", Bg => "bg", Br => "br", Be => "be", Ch => "ch", Cl => "cl",
        Cn => "cn", Cz => "cz", De => "de", Dk => "dk", Ee => "ee", Es => "es", Fi => "fi",
        Fr => "fr", Gr => "gr", Hu => "hu", Il => "il", In => "in", It => "it", Lt => "lt",
        Jp => "jp", Mx => "mx", My => "my", Nl => "nl", No => "no", Nz => "nz", Ph => "ph",
        Pl => "pl", Pt => "pt", Ru => "ru", Se => "se", Sg => "sg", Th => "th", Uk => "uk",
        Us => "us", UsOld => "us-old", Tw => "tw", Ve => "ve", Za => "za",
    }
);

impl NumberEvent {
    /// Every progress event: what the product asks for on the customer leg.
    pub const EVERY: [NumberEvent; 4] = [
        NumberEvent::Initiated,
        NumberEvent::Ringing,
        NumberEvent::Answered,
        NumberEvent::Completed,
    ];
}

impl ConferenceEventKind {
    /// Who is in the room: what the product needs to follow a transfer.
    pub const LIFECYCLE: [ConferenceEventKind; 4] = [
        ConferenceEventKind::Start,
        ConferenceEventKind::End,
        ConferenceEventKind::Join,
        ConferenceEventKind::Leave,
    ];
}

/// One element: its name, attributes (kept sorted by name, as Twilio's
/// libraries write them), text and children.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Element {
    name: &'static str,
    attributes: BTreeMap<&'static str, String>,
    text: Option<String>,
    children: Vec<Element>,
}

impl Element {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            attributes: BTreeMap::new(),
            text: None,
            children: Vec::new(),
        }
    }

    fn with_text(name: &'static str, text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::new(name)
        }
    }

    fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.attributes.insert(name, value.into());
    }

    fn set_bool(&mut self, name: &'static str, value: bool) {
        self.set(name, if value { "true" } else { "false" });
    }

    fn set_list<T: Copy>(&mut self, name: &'static str, values: &[T], text: fn(T) -> &'static str) {
        let joined: Vec<&str> = values.iter().map(|v| text(*v)).collect();
        self.set(name, joined.join(" "));
    }

    fn write(&self, writer: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        let mut start = BytesStart::new(self.name);
        for (name, value) in &self.attributes {
            let escaped = escape_attribute(value);
            start.push_attribute(Attribute {
                key: QName(name),
                value: Cow::Borrowed(escaped.as_str()),
            });
        }
        let text = self
            .text
            .as_deref()
            .map(xml_chars)
            .filter(|t| !t.is_empty());
        if text.is_none() && self.children.is_empty() {
            return writer.write_event(Event::Empty(start));
        }
        writer.write_event(Event::Start(start))?;
        if let Some(text) = text {
            let escaped = quick_xml::escape::partial_escape(text.as_ref());
            writer.write_event(Event::Text(BytesText::from_escaped(escaped)))?;
        }
        for child in &self.children {
            child.write(writer)?;
        }
        writer.write_event(Event::End(BytesEnd::new(self.name)))
    }
}

/// Drops the characters XML 1.0 forbids, so the document always parses.
fn xml_chars(value: &str) -> Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    };
    if !has_byte(value, |b| b < b' ' || b == 0xEF) || value.chars().all(allowed) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.chars().filter(|c| allowed(*c)).collect())
    }
}

/// Whether any byte of `value` is one `suspect` flags. Every character the
/// document must drop or escape is ASCII or, for U+FFFE and U+FFFF, starts
/// with the byte 0xEF, so most values (URLs, numbers, SIDs) are passed by
/// one scan of their bytes without decoding a character. A plain loop: at
/// opt-level "s" iterator adapters may run the unoptimised copies of their
/// code that the SDK crates built (Cargo.toml, share-generics).
fn has_byte(value: &str, suspect: impl Fn(u8) -> bool) -> bool {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if suspect(bytes[i]) {
            return true;
        }
        i += 1;
    }
    false
}

/// ElementTree's attribute escaping: `& < > "` and the whitespace characters
/// attribute-value normalisation would otherwise turn into spaces.
fn escape_attribute(value: &str) -> String {
    if !has_byte(value, |b| {
        b < b' ' || matches!(b, b'&' | b'<' | b'>' | b'"' | 0xEF)
    }) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    for c in xml_chars(value).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#09;"),
            other => out.push(other),
        }
    }
    out
}

/// A TwiML document: `<Response>` and its verbs, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    root: Element,
}

impl Default for Response {
    fn default() -> Self {
        Self::new()
    }
}

impl Response {
    pub fn new() -> Self {
        Self {
            root: Element::new("Response"),
        }
    }

    fn verb(mut self, element: Element) -> Self {
        self.root.children.push(element);
        self
    }

    pub fn dial(self, dial: Dial) -> Self {
        self.verb(dial.0)
    }

    pub fn say(self, say: Say) -> Self {
        self.verb(say.0)
    }

    pub fn play(self, play: Play) -> Self {
        self.verb(play.0)
    }

    pub fn pause(self, pause: Pause) -> Self {
        self.verb(pause.0)
    }

    pub fn redirect(self, redirect: Redirect) -> Self {
        self.verb(redirect.0)
    }

    pub fn hangup(self) -> Self {
        self.verb(Element::new("Hangup"))
    }

    /// The document as Twilio's libraries render it.
    pub fn to_xml(&self) -> String {
        let mut writer = Writer::new(Vec::with_capacity(512));
        writer.config_mut().add_space_before_slash_in_empty_elements = true;
        // Writing into a Vec cannot fail; the fallback keeps handlers panic-free.
        let written = writer
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .and_then(|()| self.root.write(&mut writer));
        match written {
            Ok(()) => String::from_utf8(writer.into_inner())
                .unwrap_or_else(|_| Response::FALLBACK.to_owned()),
            Err(_) => Response::FALLBACK.to_owned(),
        }
    }

    const FALLBACK: &'static str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response />";
}

/// Generates a builder method for an attribute.
macro_rules! attr {
    ($(#[$m:meta])* $method:ident, $name:literal, String) => {
        $(#[$m])*
        pub fn $method(mut self, value: impl Into<String>) -> Self {
            self.0.set($name, value);
            self
        }
    };
    ($(#[$m:meta])* $method:ident, $name:literal, bool) => {
        $(#[$m])*
        pub fn $method(mut self, value: bool) -> Self {
            self.0.set_bool($name, value);
            self
        }
    };
    ($(#[$m:meta])* $method:ident, $name:literal, u32) => {
        $(#[$m])*
        pub fn $method(mut self, value: u32) -> Self {
            self.0.set($name, value.to_string());
            self
        }
    };
    ($(#[$m:meta])* $method:ident, $name:literal, enum $ty:ty) => {
        $(#[$m])*
        pub fn $method(mut self, value: $ty) -> Self {
            self.0.set($name, value.as_str());
            self
        }
    };
    ($(#[$m:meta])* $method:ident, $name:literal, list $ty:ty) => {
        $(#[$m])*
        pub fn $method(mut self, values: impl AsRef<[$ty]>) -> Self {
            self.0.set_list($name, values.as_ref(), <$ty>::as_str);
            self
        }
    };
}

/// `<Dial>`: connects the current call to a number or a conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial(Element);

impl Default for Dial {
    fn default() -> Self {
        Self::new()
    }
}

impl Dial {
    pub fn new() -> Self {
        Self(Element::new("Dial"))
    }

    pub fn number(mut self, number: Number) -> Self {
        self.0.children.push(number.0);
        self
    }

    pub fn conference(mut self, conference: Conference) -> Self {
        self.0.children.push(conference.0);
        self
    }

    attr!(
        /// Requested when the dialled party hangs up or the bridge ends.
        action, "action", String
    );
    attr!(method, "method", enum HttpMethod);
    attr!(caller_id, "callerId", String);
    attr!(
        /// Seconds to ring before giving up (5 to 600).
        timeout, "timeout", u32
    );
    attr!(time_limit, "timeLimit", u32);
    attr!(record, "record", enum DialRecord);
    attr!(trim, "trim", enum Trim);
    attr!(
        /// Keeps the caller hearing ringback until the callee answers.
        answer_on_bridge, "answerOnBridge", bool
    );
    attr!(hangup_on_star, "hangupOnStar", bool);
    attr!(ring_tone, "ringTone", enum RingTone);
    attr!(recording_status_callback, "recordingStatusCallback", String);
    attr!(recording_status_callback_method, "recordingStatusCallbackMethod", enum HttpMethod);
    attr!(recording_status_callback_event, "recordingStatusCallbackEvent", list RecordingEvent);
    attr!(sequential, "sequential", bool);
    attr!(refer_url, "referUrl", String);
    attr!(refer_method, "referMethod", enum HttpMethod);
}

/// `<Number>`: a phone number to dial inside `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(Element);

impl Number {
    pub fn new(number: impl Into<String>) -> Self {
        Self(Element::with_text("Number", number))
    }

    attr!(status_callback, "statusCallback", String);
    attr!(status_callback_events, "statusCallbackEvent", list NumberEvent);
    attr!(status_callback_method, "statusCallbackMethod", enum HttpMethod);
    attr!(
        /// DTMF digits to play once the call connects (`w` waits half a second).
        send_digits, "sendDigits", String
    );
    attr!(
        /// TwiML run on the called party before the call is bridged (a whisper).
        url, "url", String
    );
    attr!(method, "method", enum HttpMethod);
    attr!(byoc, "byoc", String);
}

/// `<Conference>`: a named room inside `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference(Element);

impl Conference {
    pub fn new(room: impl Into<String>) -> Self {
        Self(Element::with_text("Conference", room))
    }

    attr!(muted, "muted", bool);
    attr!(beep, "beep", enum Beep);
    attr!(start_conference_on_enter, "startConferenceOnEnter", bool);
    attr!(end_conference_on_exit, "endConferenceOnExit", bool);
    attr!(
        /// Played while waiting for the conference to start; an empty URL means silence.
        wait_url, "waitUrl", String
    );
    attr!(wait_method, "waitMethod", enum HttpMethod);
    attr!(max_participants, "maxParticipants", u32);
    attr!(record, "record", enum ConferenceRecord);
    attr!(region, "region", enum ConferenceRegion);
    attr!(
        /// Call SID of the participant this one coaches.
        coach, "coach", String
    );
    attr!(trim, "trim", enum Trim);
    attr!(status_callback, "statusCallback", String);
    attr!(status_callback_events, "statusCallbackEvent", list ConferenceEventKind);
    attr!(status_callback_method, "statusCallbackMethod", enum HttpMethod);
    attr!(recording_status_callback, "recordingStatusCallback", String);
    attr!(recording_status_callback_method, "recordingStatusCallbackMethod", enum HttpMethod);
    attr!(recording_status_callback_event, "recordingStatusCallbackEvent", list RecordingEvent);
    attr!(event_callback_url, "eventCallbackUrl", String);
    attr!(jitter_buffer_size, "jitterBufferSize", enum JitterBufferSize);
    attr!(participant_label, "participantLabel", String);
}

/// `<Say>`: text to speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say(Element);

impl Say {
    pub fn new(text: impl Into<String>) -> Self {
        Self(Element::with_text("Say", text))
    }

    attr!(
        /// e.g. `alice`, `man`, `woman`, `Polly.Joanna`, `Google.en-US-Neural2-A`.
        voice, "voice", String
    );
    attr!(
        /// BCP 47 tag such as `en-US`.
        language, "language", String
    );
    attr!(
        /// Times to repeat; 0 repeats until the call ends.
        loop_count, "loop", u32
    );
}

/// `<Play>`: an audio file, or DTMF digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play(Element);

impl Play {
    pub fn new(url: impl Into<String>) -> Self {
        Self(Element::with_text("Play", url))
    }

    attr!(
        /// Times to play; 0 plays until something else happens (hold music).
        loop_count, "loop", u32
    );
    attr!(digits, "digits", String);
}

/// `<Pause>`: silence for a number of seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause(Element);

impl Default for Pause {
    fn default() -> Self {
        Self::new()
    }
}

impl Pause {
    pub fn new() -> Self {
        Self(Element::new("Pause"))
    }

    attr!(length, "length", u32);
}

/// `<Redirect>`: continue with the TwiML at another URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect(Element);

impl Redirect {
    pub fn new(url: impl Into<String>) -> Self {
        Self(Element::with_text("Redirect", url))
    }

    attr!(method, "method", enum HttpMethod);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerations_render_twilios_strings() {
        assert_eq!(
            Conference::new("r")
                .beep(Beep::OnEnter)
                .status_callback_events(ConferenceEventKind::LIFECYCLE)
                .0
                .attributes["statusCallbackEvent"],
            "start end join leave"
        );
        assert_eq!(RingTone::UsOld.as_str(), "us-old");
        assert_eq!(DialRecord::ALL.len(), 5);
    }

    #[test]
    fn forbidden_control_characters_are_dropped() {
        let xml = Response::new().say(Say::new("a\u{0}b\u{1b}c\td")).to_xml();
        assert!(xml.contains("<Say>abc\td</Say>"), "{xml}");
        let xml = Response::new()
            .redirect(Redirect::new("x").method(HttpMethod::Get))
            .dial(Dial::new().action("a\u{7}\"\n"))
            .to_xml();
        assert!(xml.contains(r#"action="a&quot;&#10;""#), "{xml}");
    }

    #[test]
    fn only_u_fffe_and_u_ffff_of_the_characters_starting_with_byte_ef_are_dropped() {
        // U+FF28 (EF BC A8) is kept; U+FFFE (EF BF BE) and U+FFFF (EF BF BF) go.
        let xml = Response::new()
            .say(Say::new("\u{FF28}\u{FFFE}i\u{FFFF}"))
            .dial(Dial::new().action("\u{FFFF}\u{FF28}\u{FFFE}"))
            .to_xml();
        assert!(xml.contains("<Say>\u{FF28}i</Say>"), "{xml}");
        assert!(xml.contains("action=\"\u{FF28}\""), "{xml}");
        // Plain values come through whole, both ways.
        let plain = "https://example.com/twiml/conference?room=CA1&leg=agent";
        let xml = Response::new().dial(Dial::new().action(plain)).to_xml();
        assert!(
            xml.contains("action=\"https://example.com/twiml/conference?room=CA1&amp;leg=agent\""),
            "{xml}"
        );
    }

    #[test]
    fn attribute_and_text_escaping_match_element_tree() {
        // Expected values printed by Python's xml.etree.ElementTree.tostring.
        let nasty = "x\r\n\t\"<>&'y";
        let xml = Response::new()
            .redirect(Redirect::new("a\"'<>&b").method(HttpMethod::Get))
            .dial(Dial::new().action(nasty))
            .to_xml();
        assert!(
            xml.contains(r#"<Dial action="x&#13;&#10;&#09;&quot;&lt;&gt;&amp;'y" />"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<Redirect method="GET">a"'&lt;&gt;&amp;b</Redirect>"#),
            "{xml}"
        );
        // The one deliberate difference: a carriage return in text survives.
        let xml = Response::new().say(Say::new("a\r\nb")).to_xml();
        assert!(xml.contains("<Say>a&#13;\nb</Say>"), "{xml}");
    }
}
