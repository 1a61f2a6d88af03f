//! Where a full phone number may be: in the attributes that hold a number
//! and nothing else (the product dials and matches them; they expire with
//! the item), never inside free text (history details, reasons) and never
//! in a log line. Tests ask these after a scenario.

use aws_sdk_dynamodb::types::AttributeValue;
use warm_transfer_core::ids::PhoneNumber;

use crate::dynalite::Dynalite;
use crate::log_capture;

/// The product's log lines that carry any of `digits` (a number's digits
/// after the country code, say): each one a leak.
pub fn numbers_in_logs(digits: &[&str]) -> Vec<String> {
    log_capture::lines()
        .into_iter()
        .filter(|line| digits.iter().any(|d| line.contains(d)))
        .collect()
}

/// Free-text attributes of the table's items that carry any of `digits`,
/// as `pk/sk attribute: value`.
pub async fn numbers_in_store(dynalite: &Dynalite, table: &str, digits: &[&str]) -> Vec<String> {
    let client = dynalite.client();
    let mut leaks = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("dynalite answers a scan");
        for item in page.items() {
            let key = |name: &str| match item.get(name) {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => String::new(),
            };
            let at = format!("{}/{}", key("pk"), key("sk"));
            for (name, value) in item {
                free_text(value, &mut |text| {
                    if digits.iter().any(|d| text.contains(d)) {
                        leaks.push(format!("{at} {name}: {text}"));
                    }
                });
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return leaks;
        }
    }
}

/// Calls `check` with every string inside `value` that is not a phone
/// number by itself.
fn free_text(value: &AttributeValue, check: &mut dyn FnMut(&str)) {
    match value {
        AttributeValue::S(text) if PhoneNumber::parse(text).is_err() => check(text),
        AttributeValue::Ss(texts) => texts
            .iter()
            .filter(|t| PhoneNumber::parse(t).is_err())
            .for_each(|t| check(t)),
        AttributeValue::L(values) => values.iter().for_each(|v| free_text(v, check)),
        AttributeValue::M(map) => map.values().for_each(|v| free_text(v, check)),
        _ => {}
    }
}
