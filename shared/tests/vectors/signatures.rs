//! Webhook signatures against twilio-python's vectors, and the ways a forged
//! or altered request must be refused.

use serde::Deserialize;
use std::collections::BTreeMap;
use warm_transfer_core::signature::{SignatureError, sign_form, validate_form, validate_json};

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    auth_token: String,
    url: String,
    params: BTreeMap<String, String>,
    body: Option<String>,
    signature: String,
}

impl Vector {
    fn params(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn validate(
        &self,
        token: &str,
        url: &str,
        params: &[(String, String)],
        header: Option<&str>,
    ) -> Result<(), SignatureError> {
        match &self.body {
            Some(body) => validate_json(token, url, body.as_bytes(), header),
            None => validate_form(token, url, params, header),
        }
    }
}

fn vectors() -> Vec<Vector> {
    let file: File =
        serde_json::from_str(&std::fs::read_to_string(super::golden("signatures.json")).unwrap())
            .unwrap();
    assert!(file.vectors.len() >= 6);
    file.vectors
}

#[test]
fn every_golden_vector_validates() {
    for v in vectors() {
        let result = v.validate(&v.auth_token, &v.url, &v.params(), Some(&v.signature));
        assert_eq!(result, Ok(()), "{}", v.name);
    }
}

#[test]
fn signing_reproduces_the_vectors_computed_over_the_given_url() {
    for v in vectors()
        .iter()
        .filter(|v| v.body.is_none() && v.name != "signed_with_port_validated_without")
    {
        assert_eq!(
            sign_form(&v.auth_token, &v.url, &v.params()),
            v.signature,
            "{}",
            v.name
        );
    }
}

#[test]
fn altered_requests_are_refused() {
    for v in vectors() {
        let params = v.params();
        let header = Some(v.signature.as_str());
        // A different token.
        assert_eq!(
            v.validate("54321", &v.url, &params, header),
            Err(SignatureError::Mismatch),
            "{} token",
            v.name
        );
        // A different URL: path and query.
        let other_url = v
            .url
            .replacen("abc123", "abc124", 1)
            .replacen("mycompany", "mycompanx", 1);
        assert_ne!(other_url, v.url);
        assert!(
            v.validate(&v.auth_token, &other_url, &params, header)
                .is_err(),
            "{} url",
            v.name
        );
        let extra_query = if v.url.contains('?') {
            format!("{}&x=1", v.url)
        } else {
            format!("{}?x=1", v.url)
        };
        assert!(
            v.validate(&v.auth_token, &extra_query, &params, header)
                .is_err(),
            "{} query",
            v.name
        );
        // No header at all, or an empty one.
        assert_eq!(
            v.validate(&v.auth_token, &v.url, &params, None),
            Err(SignatureError::Missing),
            "{} header",
            v.name
        );
        assert_eq!(
            v.validate(&v.auth_token, &v.url, &params, Some(" ")),
            Err(SignatureError::Missing),
            "{} empty header",
            v.name
        );
        // A changed, added or renamed parameter.
        if v.body.is_none() && !params.is_empty() {
            let mut changed = params.clone();
            changed[0].1.push('1');
            assert_eq!(
                v.validate(&v.auth_token, &v.url, &changed, header),
                Err(SignatureError::Mismatch),
                "{} value",
                v.name
            );
            let mut renamed = params.clone();
            renamed[0].0.push('x');
            assert_eq!(
                v.validate(&v.auth_token, &v.url, &renamed, header),
                Err(SignatureError::Mismatch),
                "{} name",
                v.name
            );
            let mut added = params.clone();
            added.push(("Extra".into(), "1".into()));
            assert_eq!(
                v.validate(&v.auth_token, &v.url, &added, header),
                Err(SignatureError::Mismatch),
                "{} added",
                v.name
            );
        }
        // A changed body keeps a valid URL signature but fails the body hash.
        if let Some(body) = &v.body {
            let tampered = body.replace("Support", "Sabotage");
            assert_eq!(
                validate_json(&v.auth_token, &v.url, tampered.as_bytes(), header),
                Err(SignatureError::BodyHashMismatch),
                "{} body",
                v.name
            );
        }
    }
}

#[test]
fn default_port_is_accepted_either_way() {
    let token = "12345";
    let params = vec![("CallSid".to_owned(), "CA1".to_owned())];
    let with_port = sign_form(
        token,
        "https://abc123.example.com:443/events/x?a=1",
        &params,
    );
    let without_port = sign_form(token, "https://abc123.example.com/events/x?a=1", &params);
    assert_eq!(
        validate_form(
            token,
            "https://abc123.example.com/events/x?a=1",
            &params,
            Some(&with_port)
        ),
        Ok(())
    );
    assert_eq!(
        validate_form(
            token,
            "https://abc123.example.com:443/events/x?a=1",
            &params,
            Some(&without_port)
        ),
        Ok(())
    );
    // Another port is another URL.
    let other_port = sign_form(
        token,
        "https://abc123.example.com:8443/events/x?a=1",
        &params,
    );
    assert!(
        validate_form(
            token,
            "https://abc123.example.com/events/x?a=1",
            &params,
            Some(&other_port)
        )
        .is_err()
    );
}

#[test]
fn repeated_parameters_are_all_signed() {
    let token = "12345";
    let url = "https://abc123.example.com/events/conference";
    let params = vec![
        ("StatusCallbackEvent".to_owned(), "join".to_owned()),
        ("StatusCallbackEvent".to_owned(), "leave".to_owned()),
    ];
    let signature = sign_form(token, url, &params);
    assert_eq!(validate_form(token, url, &params, Some(&signature)), Ok(()));
    // Order of repeats does not matter; dropping one does.
    let reversed: Vec<_> = params.iter().rev().cloned().collect();
    assert_eq!(
        validate_form(token, url, &reversed, Some(&signature)),
        Ok(())
    );
    assert!(validate_form(token, url, &params[..1], Some(&signature)).is_err());
}
