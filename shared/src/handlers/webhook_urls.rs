//! The URLs the product hands to Twilio: TwiML webhooks and status callbacks,
//! always built from the public base URL (configured, or the one the request
//! came in on), never from user input.

use url::Url;

use crate::domain::RoomParticipant;
use crate::ids::{CallSid, PhoneNumber, RoomName};

/// Who a conference TwiML document is for; decides whether leaving ends the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomRole {
    /// Leaving ends the conference: nobody stays behind talking to no one.
    Customer,
    /// May drop off after the introduction; the room goes on.
    FirstAgent,
}

impl RoomRole {
    /// Also the participant label the conference callbacks report.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomRole::Customer => RoomParticipant::CUSTOMER_LABEL,
            RoomRole::FirstAgent => RoomParticipant::FIRST_AGENT_LABEL,
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [RoomRole::Customer, RoomRole::FirstAgent]
            .into_iter()
            .find(|role| role.as_str() == value)
    }
}

wire_enum!(
    /// Why someone hears the hold audio.
    HoldPurpose {
        /// On hold while the agents consult: music, or silence.
        Hold => "hold",
        /// Waiting for an agent after a blind transfer: music, or a message
        /// now and then, never silence.
        Wait => "wait",
    }
);

wire_enum!(
    /// Which callbacks an `/events/{leg}` URL receives: the path segment the
    /// URLs here write and the status callback reads back.
    CallbackKind {
        AgentLeg => "agent-leg",
        CustomerLeg => "customer-leg",
        Participant => "participant",
        Conference => "conference",
        Recording => "recording",
        /// A call to one of the centre's numbers: the number's own status
        /// callback (`CallSid` = the session).
        Caller => "caller",
        SupervisorLeg => "supervisor-leg",
        PartyLeg => "party-leg",
    }
);

/// Twilio's connection overrides for status callbacks: up to three retries,
/// on a failed connection, a read timeout or a 5xx answer.
pub const CALLBACK_RETRIES: &str = "rc=3&rp=ct,rt,5xx";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrls {
    /// Public base, without a trailing slash, e.g. `https://calls.example.com/api`.
    base: String,
}

impl WebhookUrls {
    pub fn new(base: &Url) -> Self {
        Self::from_base(base.as_str())
    }

    /// From a base URL already known to be absolute (e.g. cut from a URL Twilio signed).
    pub fn from_base(base: &str) -> Self {
        let mut base = base.to_owned();
        // The query and fragment of a base URL mean nothing here.
        if let Some(cut) = base.find(['?', '#']) {
            base.truncate(cut);
        }
        while base.ends_with('/') {
            base.pop();
        }
        Self { base }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Query parameters are passed sorted by name: REST API (v1) events lose
    /// the raw query string, and `public_url` rebuilds it in that order.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        debug_assert!(query.windows(2).all(|w| w[0].0 < w[1].0));
        let mut url = format!("{}{}", self.base, path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        url
    }

    /// Leg 1's TwiML: everything it needs travels in the query string, so the
    /// handler is stateless and answers without a database round trip.
    pub fn dial_customer(&self, customer: &PhoneNumber, caller_id: &PhoneNumber) -> String {
        self.url(
            "/twiml/dial-customer",
            &[("callerId", caller_id.as_str()), ("to", customer.as_str())],
        )
    }

    pub fn agent_dial_ended(&self) -> String {
        self.url("/twiml/agent-dial-ended", &[])
    }

    pub fn conference(&self, room: &RoomName, role: RoomRole) -> String {
        self.url(
            "/twiml/conference",
            &[("role", role.as_str()), ("room", room.as_str())],
        )
    }

    /// The room for a customer who waits there for an agent (a blind
    /// transfer): the room starts only when the agent joins, and until then
    /// the customer hears the waiting audio instead of silence.
    pub fn waiting_room(&self, room: &RoomName) -> String {
        self.url(
            "/twiml/conference",
            &[
                ("role", RoomRole::Customer.as_str()),
                ("room", room.as_str()),
                ("wait", "true"),
            ],
        )
    }

    /// What a held or waiting customer hears (`HoldUrl`, `waitUrl`): TwiML
    /// that loops, since a plain audio file would play only once.
    pub fn hold_audio(&self, purpose: HoldPurpose) -> String {
        self.url("/twiml/hold", &[("for", purpose.as_str())])
    }

    /// TwiML for a call that has nowhere else to go: after a failing
    /// webhook (Twilio's `FallbackUrl`) or a room left without an agent.
    pub fn fallback(&self, role: RoomRole) -> String {
        self.url("/twiml/fallback", &[("role", role.as_str())])
    }

    /// What a caller waiting for an agent hears (their `waitUrl`): the
    /// place in the queue between pauses, asked again in a loop, each time
    /// offering the call to an available member if none is ringing.
    pub fn queue(&self, session: &CallSid) -> String {
        self.url("/twiml/queue", &[("session", session.as_str())])
    }

    /// Where a caller goes when nobody answered within their maximum wait,
    /// or the last agent left them.
    pub fn inbound_fallback(&self) -> String {
        self.url(
            "/twiml/fallback",
            &[("for", "inbound"), ("role", RoomRole::Customer.as_str())],
        )
    }

    /// The status callback to set on the centre's numbers, so a caller's
    /// hang-up is heard at once (the room's own callbacks say it too).
    pub fn caller_events(&self) -> String {
        self.events(CallbackKind::Caller, &[])
    }

    /// A status callback URL. Twilio retries a callback only on a failed
    /// connection unless the URL's fragment says otherwise; this one asks
    /// for retries on a 5xx and a read timeout too, which is how a callback
    /// that could not be stored gets another chance. The fragment is not
    /// part of the signed URL.
    fn events(&self, kind: CallbackKind, query: &[(&str, &str)]) -> String {
        let path = format!("/events/{}", kind.as_str());
        format!("{}#{CALLBACK_RETRIES}", self.url(&path, query))
    }

    pub fn agent_leg_events(&self) -> String {
        self.events(CallbackKind::AgentLeg, &[])
    }

    /// The customer's `<Number>` callbacks carry `ParentCallSid` (= the session).
    pub fn customer_leg_events(&self) -> String {
        self.events(CallbackKind::CustomerLeg, &[])
    }

    /// Participant callbacks do not say which session or attempt they belong
    /// to, so the URL does.
    pub fn participant_events(&self, session: &CallSid, attempt: u32) -> String {
        self.events(
            CallbackKind::Participant,
            &[
                ("attempt", &attempt.to_string()),
                ("session", session.as_str()),
            ],
        )
    }

    /// A supervisor's phone: like a participant's, the URL says which
    /// session and which of its supervisions (`visit`) it belongs to.
    pub fn supervisor_events(&self, session: &CallSid, visit: u32) -> String {
        self.events(
            CallbackKind::SupervisorLeg,
            &[("session", session.as_str()), ("visit", &visit.to_string())],
        )
    }

    /// An outside party's phone: which session and which of its parties.
    pub fn party_events(&self, session: &CallSid, visit: u32) -> String {
        self.events(
            CallbackKind::PartyLeg,
            &[("session", session.as_str()), ("visit", &visit.to_string())],
        )
    }

    /// Conference callbacks carry `FriendlyName` (= the room, which names the session).
    pub fn conference_events(&self) -> String {
        self.events(CallbackKind::Conference, &[])
    }

    /// Recording callbacks: a conference's carry only its `CF…` SID, so
    /// the URL says which session the recording belongs to.
    pub fn recording_events(&self, session: &CallSid) -> String {
        self.events(CallbackKind::Recording, &[("session", session.as_str())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(base: &str) -> WebhookUrls {
        WebhookUrls::new(&Url::parse(base).unwrap())
    }

    #[test]
    fn query_values_are_encoded() {
        let c = urls("https://calls.example.com");
        let customer = PhoneNumber::parse("+14155550100").unwrap();
        let caller = PhoneNumber::parse("+15005550006").unwrap();
        assert_eq!(
            c.dial_customer(&customer, &caller),
            "https://calls.example.com/twiml/dial-customer?callerId=%2B15005550006&to=%2B14155550100"
        );
        let sid = CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            c.conference(&sid.room(), RoomRole::Customer),
            "https://calls.example.com/twiml/conference?role=customer&room=wt-CA0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            c.participant_events(&sid, 3),
            "https://calls.example.com/events/participant?attempt=3&session=CA0123456789abcdef0123456789abcdef#rc=3&rp=ct,rt,5xx"
        );
    }

    #[test]
    fn role_names_round_trip() {
        for role in [RoomRole::Customer, RoomRole::FirstAgent] {
            assert_eq!(RoomRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(RoomRole::parse("supervisor"), None);
    }
}
