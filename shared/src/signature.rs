//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted POST
//! parameters)), or for JSON bodies HMAC over the URL alone, whose
//! `bodySHA256` query parameter must match the body. Mirrors twilio-python's
//! `RequestValidator`, including its acceptance of a signature computed with
//! or without the scheme's default port.
//!
//! HMAC-SHA1 and SHA-256 are *ring*'s (already in every function for TLS):
//! its assembly uses the CPU's SHA instructions where there are some,
//! and the signature is most of a TwiML webhook's own CPU.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Twilio-Signature header is missing")]
    Missing,
    #[error("X-Twilio-Signature does not match the request")]
    Mismatch,
    #[error("bodySHA256 is missing from a signed JSON request's URL")]
    MissingBodyHash,
    #[error("the body does not match its bodySHA256")]
    BodyHashMismatch,
}

/// The signature Twilio sends for a form POST (or a GET with `params` empty).
pub fn sign_form(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    SortedForm::new(params).sign(auth_token, url)
}

/// A form's fields in the order Twilio's libraries sign them: by name, and
/// each name's distinct values. Sorted once per request, then signed for
/// every candidate URL and token: an unsigned flood costs one sort at most.
pub struct SortedForm<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> SortedForm<'a> {
    pub fn new(params: &'a [(String, String)]) -> Self {
        let mut fields: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        fields.sort_unstable();
        fields.dedup();
        Self { fields }
    }

    pub fn sign(&self, auth_token: &str, url: &str) -> String {
        BASE64.encode(self.mac(auth_token, url).as_ref())
    }

    fn mac(&self, auth_token: &str, url: &str) -> hmac::Tag {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
        let mut mac = hmac::Context::with_key(&key);
        mac.update(url.as_bytes());
        for (name, value) in &self.fields {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        mac.sign()
    }
}

/// Checks the signature of a form-encoded webhook.
pub fn validate_form(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    validate_form_any(&[auth_token], url, params, header).map(|_| ())
}

/// Checks a form webhook against each token in turn (primary first, then
/// during a rotation the secondary); returns the index of the one it matched.
/// The header is looked at before anything else, and the form is sorted
/// once whatever the number of URL variants and tokens.
pub fn validate_form_any(
    auth_tokens: &[&str],
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<usize, SignatureError> {
    // An empty header is as good as none: it tells the caller what is wrong.
    let presented = present(header).ok_or(SignatureError::Missing)?;
    // Compared as bytes: decoded once, instead of encoding each candidate.
    // A header that is no base64 matches nothing.
    let presented = BASE64
        .decode(presented)
        .map_err(|_| SignatureError::Mismatch)?;
    let form = SortedForm::new(params);
    let signs = |token: &str, candidate: &str| {
        bool::from(form.mac(token, candidate).as_ref().ct_eq(&presented))
    };
    // The URL as given is what Twilio signs: its other forms are written
    // out only when that fails.
    auth_tokens
        .iter()
        .position(|token| {
            signs(token, url) || url_variants(url)[1..].iter().any(|c| signs(token, c))
        })
        .ok_or(SignatureError::Mismatch)
}

/// The signature header's value, if one was sent at all.
pub fn present(header: Option<&str>) -> Option<&str> {
    header.map(str::trim).filter(|h| !h.is_empty())
}

/// Checks a JSON webhook: the signature covers the URL (with its
/// `bodySHA256`), and that hash must be the body's.
pub fn validate_json(
    auth_token: &str,
    url: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    validate_form(auth_token, url, &[], header)?;
    let expected = query_value(url, "bodySHA256").ok_or(SignatureError::MissingBodyHash)?;
    let actual = hex(digest::digest(&digest::SHA256, body).as_ref());
    if same(&actual, &expected.to_ascii_lowercase()) {
        Ok(())
    } else {
        Err(SignatureError::BodyHashMismatch)
    }
}

/// Constant time: the answer's timing says nothing about how close a guess was.
fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The URL as given, with the scheme's default port added, and with any
/// port removed: the forms Twilio's libraries accept. Done on the text, not
/// through a URL parser, because the signature covers the exact bytes.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    // An IPv6 literal's colons are not a port separator.
    let port_start = host_port
        .rfind(':')
        .filter(|i| !host_port[*i..].contains(']'));
    let host = port_start.map_or(host_port, |i| &host_port[..i]);
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => Some("443"),
        "http" => Some("80"),
        _ => None,
    };
    if port_start.is_some() {
        variants.push(format!("{scheme}://{userinfo}{host}{tail}"));
    } else if let Some(port) = default_port {
        variants.push(format!("{scheme}://{userinfo}{host}:{port}{tail}"));
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rotation: Twilio signs with the token it has as primary, which is
    /// this side's primary or, until the secret catches up, its secondary.
    #[test]
    fn primary_secondary_and_wrong_tokens() {
        let url = "https://a.example/twiml/dial-customer?session=CA1";
        let params = vec![("CallSid".to_owned(), "CA1".to_owned())];
        let tokens = ["primary-token", "secondary-token"];
        let signed = |token| sign_form(token, url, &params);
        let check = |header: Option<&str>| validate_form_any(&tokens, url, &params, header);
        assert_eq!(check(Some(&signed("primary-token"))), Ok(0));
        assert_eq!(check(Some(&signed("secondary-token"))), Ok(1));
        assert_eq!(
            check(Some(&signed("wrong-token"))),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(check(None), Err(SignatureError::Missing));
        assert_eq!(
            validate_form_any(&tokens[..1], url, &params, Some(&signed("secondary-token"))),
            Err(SignatureError::Mismatch),
            "no secondary configured: only the primary passes"
        );
    }

    #[test]
    fn port_variants() {
        assert_eq!(
            url_variants("https://a.example/x?y=1"),
            vec!["https://a.example/x?y=1", "https://a.example:443/x?y=1"]
        );
        assert_eq!(
            url_variants("http://127.0.0.1:3000/x"),
            vec!["http://127.0.0.1:3000/x", "http://127.0.0.1/x"]
        );
        assert_eq!(
            url_variants("https://[::1]/x"),
            vec!["https://[::1]/x", "https://[::1]:443/x"]
        );
    }
}
