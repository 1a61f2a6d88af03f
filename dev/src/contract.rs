//! Checks requests and responses against Twilio's OpenAPI description of the
//! 2010-04-01 API: path and method exist, every form field and query
//! parameter is defined for the operation, required fields are there, and
//! values have the declared type, format and enum. Used by the contract test
//! and by the development simulator to refuse what Twilio would refuse.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("cannot read the OpenAPI file {path}: {reason}")]
    Unreadable { path: String, reason: String },
}

/// One way a request or response departs from the description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct OpenApi {
    doc: Value,
}

impl OpenApi {
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ContractError> {
        let path = path.as_ref();
        let unreadable = |reason: String| ContractError::Unreadable {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        let doc = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
        Ok(Self { doc })
    }

    /// Follows `$ref`s within the document.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        for _ in 0..16 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return value;
            };
            let Some(pointer) = reference.strip_prefix('#') else {
                return value;
            };
            match self.doc.pointer(pointer) {
                Some(target) => value = target,
                None => return value,
            }
        }
        value
    }

    /// The path template a concrete path matches, preferring literal segments.
    pub fn template_for(&self, path: &str) -> Option<&str> {
        let paths = self.doc.get("paths")?.as_object()?;
        let segments: Vec<&str> = path.split('/').collect();
        paths
            .keys()
            .filter_map(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (part, segment) in parts.iter().zip(&segments) {
                    match part.find('{') {
                        None if part == segment => literal += 1,
                        None => return None,
                        Some(open) => {
                            let close = part.find('}')?;
                            let (prefix, suffix) = (&part[..open], &part[close + 1..]);
                            let fits = segment.len() > prefix.len() + suffix.len()
                                && segment.starts_with(prefix)
                                && segment.ends_with(suffix);
                            if !fits {
                                return None;
                            }
                        }
                    }
                }
                Some((literal, template.as_str()))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, template)| template)
    }

    fn operation(&self, method: &str, path: &str) -> Result<(&str, &Value), Violation> {
        let template = self
            .template_for(path)
            .ok_or_else(|| Violation(format!("no path in the API matches {path}")))?;
        let operation = self
            .doc
            .pointer(&format!(
                "/paths/{}",
                template.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(|p| p.get(method.to_ascii_lowercase()))
            .ok_or_else(|| Violation(format!("{method} is not an operation of {template}")))?;
        Ok((template, operation))
    }

    /// Every way a request departs from the description (empty: conforms).
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        form: &[(String, String)],
    ) -> Vec<Violation> {
        let (template, operation) = match self.operation(method, path) {
            Ok(found) => found,
            Err(violation) => return vec![violation],
        };
        let mut violations = Vec::new();
        let operation_id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or(template);

        // Query parameters.
        let parameters: HashMap<&str, &Value> = operation
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| self.resolve(p))
            .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
            .filter_map(|p| Some((p.get("name")?.as_str()?, p.get("schema")?)))
            .collect();
        for (name, value) in query {
            match parameters.get(name.as_str()) {
                None => violations.push(Violation(format!(
                    "{operation_id}: query parameter {name} is not defined"
                ))),
                Some(schema) => {
                    self.check_value(operation_id, name, value, schema, &mut violations)
                }
            }
        }

        // Form body.
        let schema = operation
            .pointer("/requestBody/content/application~1x-www-form-urlencoded/schema")
            .map(|s| self.resolve(s));
        match schema {
            None if !form.is_empty() => violations.push(Violation(format!(
                "{operation_id}: takes no form body, got {} field(s)",
                form.len()
            ))),
            None => {}
            Some(schema) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                let mut seen: HashMap<&str, usize> = HashMap::new();
                for (name, value) in form {
                    *seen.entry(name.as_str()).or_default() += 1;
                    match properties.and_then(|p| p.get(name.as_str())) {
                        None => violations.push(Violation(format!(
                            "{operation_id}: form field {name} is not defined"
                        ))),
                        Some(property) => {
                            let property = self.resolve(property);
                            let is_array =
                                property.get("type").and_then(Value::as_str) == Some("array");
                            let item = if is_array {
                                property
                                    .get("items")
                                    .map(|i| self.resolve(i))
                                    .unwrap_or(property)
                            } else {
                                property
                            };
                            self.check_value(operation_id, name, value, item, &mut violations);
                            if !is_array && seen[name.as_str()] == 2 {
                                violations.push(Violation(format!(
                                    "{operation_id}: form field {name} repeated but not an array"
                                )));
                            }
                        }
                    }
                }
                for required in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !seen.contains_key(required) {
                        violations.push(Violation(format!(
                            "{operation_id}: required form field {required} is missing"
                        )));
                    }
                }
            }
        }
        violations
    }

    /// A form or query value against its schema: type, format and enum.
    fn check_value(
        &self,
        operation: &str,
        name: &str,
        value: &str,
        schema: &Value,
        violations: &mut Vec<Violation>,
    ) {
        let schema = self.resolve(schema);
        let mut fail = |why: String| {
            violations.push(Violation(format!("{operation}: {name}={value:?} {why}")))
        };
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.iter().any(|a| a.as_str() == Some(value)) {
                fail(format!("is not one of {allowed:?}"));
            }
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("boolean") if value != "true" && value != "false" => {
                fail("is not a boolean".into())
            }
            Some("integer") if value.parse::<i64>().is_err() => fail("is not an integer".into()),
            Some("number") if value.parse::<f64>().is_err() => fail("is not a number".into()),
            _ => {}
        }
        match schema.get("format").and_then(Value::as_str) {
            Some("uri") if url::Url::parse(value).is_err() => fail("is not a URI".into()),
            Some("http-method") if !matches!(value, "GET" | "POST") => {
                fail("is not GET or POST".into())
            }
            _ => {}
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            if !simple_pattern_matches(pattern, value) {
                fail(format!("does not match {pattern}"));
            }
        }
    }

    /// A response body against the operation's schema for that status.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Vec<Violation> {
        let (_, operation) = match self.operation(method, path) {
            Ok(found) => found,
            Err(violation) => return vec![violation],
        };
        let Some(schema) = operation.pointer(&format!(
            "/responses/{status}/content/application~1json/schema"
        )) else {
            return vec![Violation(format!(
                "status {status} is not a documented response"
            ))];
        };
        let mut violations = Vec::new();
        self.check_json("$", body, schema, &mut violations);
        violations
    }

    fn check_json(&self, at: &str, value: &Value, schema: &Value, violations: &mut Vec<Violation>) {
        // `nullable` may sit beside a `$ref` rather than in its target.
        let nullable = |s: &Value| s.get("nullable").and_then(Value::as_bool) == Some(true);
        let declared_nullable = nullable(schema);
        let is_ref = schema.get("$ref").is_some();
        let schema = self.resolve(schema);
        if value.is_null() {
            // Twilio's file never marks its referenced enums nullable, yet its
            // own examples (and the API) send null for them, e.g. a
            // conference's reason_conference_ended while it is in progress.
            let null_enum = is_ref && schema.get("enum").is_some();
            if !declared_nullable && !nullable(schema) && !null_enum {
                violations.push(Violation(format!("{at} is null but not nullable")));
            }
            return;
        }
        let expected = schema.get("type").and_then(Value::as_str);
        let fits = match expected {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            _ => true,
        };
        if !fits {
            violations.push(Violation(format!(
                "{at} is not of type {expected:?}: {value}"
            )));
            return;
        }
        if let (Some(text), Some(allowed)) =
            (value.as_str(), schema.get("enum").and_then(Value::as_array))
        {
            if !allowed.iter().any(|a| a.as_str() == Some(text)) {
                violations.push(Violation(format!(
                    "{at}={text:?} is not one of {allowed:?}"
                )));
            }
        }
        if let (Some(object), Some(properties)) = (
            value.as_object(),
            schema.get("properties").and_then(Value::as_object),
        ) {
            for (key, field) in object {
                match properties.get(key) {
                    Some(property) => {
                        self.check_json(&format!("{at}.{key}"), field, property, violations)
                    }
                    None => violations.push(Violation(format!("{at}.{key} is not in the schema"))),
                }
            }
        }
        if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
            for (i, item) in items.iter().enumerate() {
                self.check_json(&format!("{at}[{i}]"), item, item_schema, violations);
            }
        }
    }
}

/// The patterns Twilio's file uses are anchored prefix + character class +
/// count, e.g. `^CA[0-9a-fA-F]{32}$`. Anything else is accepted unchecked.
fn simple_pattern_matches(pattern: &str, value: &str) -> bool {
    let Some(body) = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')) else {
        return true;
    };
    let Some(open) = body.find('[') else {
        return true;
    };
    let prefix = &body[..open];
    let Some(rest) = body
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix("[0-9a-fA-F]{"))
    else {
        return true;
    };
    let Some(count) = rest.strip_suffix('}').and_then(|c| c.parse::<usize>().ok()) else {
        return true;
    };
    value.len() == prefix.len() + count
        && value.starts_with(prefix)
        && value[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_sid_patterns() {
        assert!(simple_pattern_matches(
            "^CA[0-9a-fA-F]{32}$",
            "CA0123456789abcdef0123456789abcdef"
        ));
        assert!(!simple_pattern_matches("^CA[0-9a-fA-F]{32}$", "CA0123"));
        assert!(!simple_pattern_matches(
            "^CA[0-9a-fA-F]{32}$",
            "CF0123456789abcdef0123456789abcdef"
        ));
        assert!(simple_pattern_matches("^[a-z]+$", "anything"));
    }
}
