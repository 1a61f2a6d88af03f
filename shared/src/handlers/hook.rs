//! A Twilio request whose signature verified, and what a webhook answers.

use std::collections::HashMap;

use lambda_http::Request;

use super::request;
use super::webhook_urls::WebhookUrls;
use crate::twiml::Response as TwiML;

/// A Twilio request whose signature verified: its form fields, in the
/// order sent, and the URLs to hand back to Twilio.
pub(crate) struct Webhook<'r> {
    pub(crate) request: &'r Request,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) urls: WebhookUrls,
}

impl Webhook<'_> {
    /// First value of each form field, by name.
    pub(super) fn form(&self) -> HashMap<&str, &str> {
        request::form_map(&self.params)
    }

    pub(super) fn query(&self, name: &str) -> Option<String> {
        request::query_param(self.request, name)
    }
}

/// What a webhook answers Twilio.
pub(crate) enum Reply {
    /// The next verbs for the call (empty for a status callback).
    Twiml(String),
    /// Not done: a 5xx, which the callback URL's connection overrides ask
    /// Twilio to retry, not a 200 that loses the callback for good.
    RetryLater,
}

impl From<String> for Reply {
    fn from(xml: String) -> Self {
        Reply::Twiml(xml)
    }
}

/// A status callback that could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRecorded;

impl From<Result<String, NotRecorded>> for Reply {
    fn from(answer: Result<String, NotRecorded>) -> Self {
        answer.map_or(Reply::RetryLater, Reply::Twiml)
    }
}

pub fn empty() -> String {
    TwiML::new().to_xml()
}
