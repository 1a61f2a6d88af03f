//! Reading an incoming request: body, form fields, query and path
//! parameters, and the id that ties its log lines together.

use std::collections::HashMap;

use lambda_http::{Body, Request, RequestExt};

/// The request body as bytes (API Gateway may hand it over base64-decoded
/// already; lambda_http takes care of that).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// The largest form body a Twilio webhook of this product may carry. The
/// largest request Twilio sends here is a call status callback or the
/// `<Dial action>` request: about 45 documented fields (the call's, the
/// caller's and callee's geography, `DialCall*`, `StirVerstat`,
/// `CallToken`), under 4 KB with a long `CallToken` and `StirPassportToken`.
/// The cap leaves eight times that, and parsing 32 KiB costs microseconds.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 32 * 1024;

/// The most form fields a Twilio webhook may carry: about 45 are sent at
/// most (see above), twice that and some for fields Twilio adds later.
pub const MAX_WEBHOOK_FIELDS: usize = 100;

/// Why a webhook's body was refused before it was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormRefusal {
    #[error("body larger than {MAX_WEBHOOK_BODY_BYTES} bytes")]
    TooLarge,
    #[error("more than {MAX_WEBHOOK_FIELDS} form fields")]
    TooManyFields,
}

impl FormRefusal {
    pub fn status(self) -> http::StatusCode {
        match self {
            FormRefusal::TooLarge => http::StatusCode::PAYLOAD_TOO_LARGE,
            FormRefusal::TooManyFields => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// The form fields of a Twilio webhook, in the order sent (repeated keys
/// kept), if the body is within the caps: checked on the raw bytes (one
/// count of `&`) before anything is decoded or allocated.
pub fn form_params(req: &Request) -> Result<Vec<(String, String)>, FormRefusal> {
    let body = body_bytes(req);
    if body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(FormRefusal::TooLarge);
    }
    // Each field but the last ends in `&`; empty pairs are skipped by the
    // parser but counted here, which only makes the cap stricter.
    if body.iter().filter(|&&b| b == b'&').count() >= MAX_WEBHOOK_FIELDS {
        return Err(FormRefusal::TooManyFields);
    }
    Ok(form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

/// First value of each form field, for reading the fields by name.
pub fn form_map(params: &[(String, String)]) -> HashMap<&str, &str> {
    let mut map = HashMap::new();
    for (key, value) in params {
        map.entry(key.as_str()).or_insert(value.as_str());
    }
    map
}

/// A query-string parameter. lambda_http fills these from the API Gateway
/// event; the development server fills them from the URI.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name).map(str::to_owned))
        .or_else(|| {
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
}

pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
}

/// The request id that ties log lines together: Lambda's own when there is
/// one, API Gateway's otherwise, a fresh one for local runs.
pub fn request_id(req: &Request) -> String {
    if let Some(context) = req.lambda_context_ref() {
        return context.request_id.clone();
    }
    if let Some(value) = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        return value.to_owned();
    }
    format!("local-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_keep_order_and_repeats() {
        let req: Request = http::Request::builder()
            .method("POST")
            .uri("/events/conference")
            .body(Body::from("A=1&B=two+words&A=3&C=%2B1415"))
            .unwrap();
        let params = form_params(&req).unwrap();
        assert_eq!(
            params,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("A".into(), "3".into()),
                ("C".into(), "+1415".into()),
            ]
        );
        assert_eq!(form_map(&params)["A"], "1");
    }

    fn post(body: Vec<u8>) -> Request {
        http::Request::builder()
            .method("POST")
            .uri("/events/call-status")
            .body(Body::from(body))
            .unwrap()
    }

    #[test]
    fn forms_over_the_caps_are_refused_unparsed() {
        let fields = |n: usize| vec!["a=1"; n].join("&").into_bytes();
        assert_eq!(
            form_params(&post(fields(MAX_WEBHOOK_FIELDS)))
                .unwrap()
                .len(),
            100
        );
        assert_eq!(
            form_params(&post(fields(MAX_WEBHOOK_FIELDS + 1))),
            Err(FormRefusal::TooManyFields)
        );
        // The measured attack: 2.9 million empty fields in 5.8 MB.
        assert_eq!(
            form_params(&post(b"a&".repeat(2_900_000))),
            Err(FormRefusal::TooLarge)
        );
        let long_value = format!("CallToken={}", "x".repeat(MAX_WEBHOOK_BODY_BYTES - 10));
        assert!(form_params(&post(long_value.into_bytes())).is_ok());
        assert_eq!(
            form_params(&post(vec![b'x'; MAX_WEBHOOK_BODY_BYTES + 1])),
            Err(FormRefusal::TooLarge)
        );
    }
}
