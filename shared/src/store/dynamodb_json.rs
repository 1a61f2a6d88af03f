//! DynamoDB's JSON form of an item (`{"pk": {"S": "CALL#..."}}`), as a
//! DynamoDB Stream record carries its keys and images. The publisher reads
//! stream images with it into the SDK's types (so the store's own item
//! readers apply); the local stream writes records with it.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::item::Item;

/// An item from its DynamoDB JSON; None when the JSON is not an item.
pub fn item_from_json(value: &Value) -> Option<Item> {
    value
        .as_object()?
        .iter()
        .map(|(name, attribute)| Some((name.clone(), attribute_from_json(attribute)?)))
        .collect()
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn attribute_from_json(value: &Value) -> Option<AttributeValue> {
    let (kind, inner) = value.as_object()?.iter().next()?;
    Some(match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_owned()),
        "N" => AttributeValue::N(inner.as_str()?.to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(inner.as_bool()?),
        "B" => AttributeValue::B(Blob::new(STANDARD.decode(inner.as_str()?).ok()?)),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "L" => AttributeValue::L(
            inner
                .as_array()?
                .iter()
                .map(attribute_from_json)
                .collect::<Option<_>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner)?),
        _ => return None,
    })
}

/// An item as DynamoDB JSON.
pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, attribute)| (name.clone(), attribute_to_json(attribute)))
            .collect::<Map<_, _>>(),
    )
}

fn attribute_to_json(attribute: &AttributeValue) -> Value {
    match attribute {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(b) => json!({ "NULL": b }),
        AttributeValue::B(blob) => json!({ "B": STANDARD.encode(blob.as_ref()) }),
        AttributeValue::Ss(values) => json!({ "SS": values }),
        AttributeValue::Ns(values) => json!({ "NS": values }),
        AttributeValue::L(values) => {
            json!({ "L": values.iter().map(attribute_to_json).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({ "M": item_to_json(map) }),
        // The store writes none of the others (binary sets).
        _ => json!({ "NULL": true }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_dynamodb_json() {
        let item: Item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("CALL#CA1".into())),
            ("version".to_owned(), AttributeValue::N("7".into())),
            ("held".to_owned(), AttributeValue::Bool(true)),
            (
                "nested".to_owned(),
                AttributeValue::M(HashMap::from([(
                    "list".to_owned(),
                    AttributeValue::L(vec![AttributeValue::Ss(vec!["a".into()])]),
                )])),
            ),
        ]);
        let text = item_to_json(&item);
        assert_eq!(text["version"], json!({"N": "7"}));
        assert_eq!(item_from_json(&text), Some(item));
        assert_eq!(item_from_json(&json!({"x": {"Q": 1}})), None);
        assert_eq!(item_from_json(&json!([1])), None);
    }
}
