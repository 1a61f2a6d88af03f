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

/// The form fields of a Twilio webhook, in the order sent (repeated keys kept).
pub fn form_params(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(body_bytes(req))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
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
        let params = form_params(&req);
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
}
