//! A verified token's claims as their real JSON values, and the exact ways
//! an agent's claims are read. API Gateway hands a function every claim as
//! a string, an array flattened to `[a b]`: a group named
//! `Night supervisors` and the groups `Night` and `supervisors` then read
//! the same, so nothing here ever splits a flattened array. Arrays are
//! read from the token itself (see `request`); a flattened string counts
//! as one value, matched whole.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::ids::PhoneNumber;

/// One token's claims by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// Claims as the token carries them (after its signature was checked).
    pub fn from_json(claims: Map<String, Value>) -> Self {
        Self(claims)
    }

    /// Claims as API Gateway flattened them, each a single string value:
    /// what a function has when the token itself is not on the request.
    pub fn from_flattened(claims: &HashMap<String, String>) -> Self {
        Self(
            claims
                .iter()
                .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// A claim holding one non-empty string.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// A yes/no claim such as `email_verified`: JSON `true`, or the string
    /// `"true"` (Cognito and API Gateway render it as text; some providers
    /// issue it so).
    pub fn flag(&self, name: &str) -> bool {
        match self.0.get(name) {
            Some(Value::Bool(yes)) => *yes,
            Some(Value::String(text)) => text.trim().eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    /// Whether a multi-valued claim holds `wanted` exactly: an element of a
    /// JSON array, or the whole of a single string. Never a part of one.
    pub fn holds(&self, name: &str, wanted: &str) -> bool {
        match self.0.get(name) {
            Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some(wanted)),
            Some(Value::String(one)) => one == wanted,
            _ => false,
        }
    }

    /// The values of a multi-valued claim: each string of a JSON array, or
    /// a single string whole (never split: see the module's note).
    pub fn strings(&self, name: &str) -> Vec<&str> {
        match self.0.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(one)) => vec![one.as_str()],
            _ => Vec::new(),
        }
    }

    /// The phone numbers a claim lists: each element of a JSON array that
    /// is one E.164 number, or, in a single string (Cognito's custom
    /// attributes are strings), E.164 numbers separated by commas or
    /// spaces. Neither can be part of a number; anything else (brackets,
    /// quotes, a flattened array) makes that item no number at all.
    pub fn numbers(&self, name: &str) -> Vec<PhoneNumber> {
        let items: Vec<&str> = match self.0.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(list)) => number_list(list).collect(),
            _ => Vec::new(),
        };
        items
            .into_iter()
            // A malformed number in the directory gives no access, and no error.
            .filter_map(|item| PhoneNumber::parse(item).ok())
            .collect()
    }

    /// The expiry (`exp`), as a JSON number or API Gateway's text.
    pub fn expires(&self) -> Option<i64> {
        match self.0.get("exp")? {
            Value::Number(n) => n.as_i64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }
}

/// The items of a list of phone numbers written as text (a Cognito custom
/// attribute, `AGENT_NUMBERS`): separated by commas or white space.
pub(super) fn number_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// Claims from a JSON object, as a verified token carries them.
    pub(in crate::auth) fn json(value: Value) -> Claims {
        match value {
            Value::Object(map) => Claims::from_json(map),
            _ => unreachable!("test claims are objects"),
        }
    }

    #[test]
    fn group_names_match_whole_never_split() {
        for name in [
            "Night supervisors",
            "x,supervisors",
            "[supervisors]",
            "\"supervisors\"",
            "supervisors ",
            "Supervisors",
        ] {
            let claims = json(json!({ "groups": [name] }));
            assert!(!claims.holds("groups", "supervisors"), "array [{name:?}]");
            let single = json(json!({ "groups": name }));
            assert!(!single.holds("groups", "supervisors"), "string {name:?}");
        }
        assert!(
            json(json!({ "groups": ["agents", "supervisors"] })).holds("groups", "supervisors")
        );
        assert!(json(json!({ "groups": "supervisors" })).holds("groups", "supervisors"));
        // API Gateway's flattening of ["supervisors"] is ambiguous with a
        // group named "[supervisors]": it is one value, and not this one.
        let flattened = Claims::from_flattened(&HashMap::from([(
            "groups".to_owned(),
            "[agents supervisors]".to_owned(),
        )]));
        assert!(!flattened.holds("groups", "supervisors"));
        assert!(!json(json!({ "groups": [["supervisors"]] })).holds("groups", "supervisors"));
        assert!(!json(json!({})).holds("groups", "supervisors"));
    }

    #[test]
    fn numbers_are_read_exactly() {
        let listed = json(json!({ "n": ["+15550100001", "+15550100002"] }));
        assert_eq!(listed.numbers("n").len(), 2);
        let cognito = json(json!({ "n": "+15550100001,+15550100002 +15550100003" }));
        assert_eq!(cognito.numbers("n").len(), 3);
        for bad in [
            json!({ "n": ["+15550100001 +15550100002"] }),
            json!({ "n": ["[+15550100001]"] }),
            json!({ "n": ["\"+15550100001\""] }),
            json!({ "n": "[+15550100001]" }),
            json!({ "n": "\"+15550100001\"" }),
            json!({ "n": 15550100001u64 }),
        ] {
            assert!(json(bad.clone()).numbers("n").is_empty(), "{bad}");
        }
        // The flattened form of an array reads as no number at all.
        let flattened = Claims::from_flattened(&HashMap::from([(
            "n".to_owned(),
            "[+15550100001 +15550100002]".to_owned(),
        )]));
        assert!(flattened.numbers("n").is_empty());
    }

    #[test]
    fn flags_and_expiry() {
        assert!(json(json!({ "v": true })).flag("v"));
        assert!(json(json!({ "v": "true" })).flag("v"));
        for no in [
            json!({ "v": false }),
            json!({ "v": "false" }),
            json!({ "v": 1 }),
            json!({}),
        ] {
            assert!(!json(no.clone()).flag("v"), "{no}");
        }
        assert_eq!(json(json!({ "exp": 17 })).expires(), Some(17));
        assert_eq!(json(json!({ "exp": "17" })).expires(), Some(17));
        assert_eq!(json(json!({ "exp": "soon" })).expires(), None);
    }
}
