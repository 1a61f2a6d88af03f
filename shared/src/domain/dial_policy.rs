//! Which numbers the product may dial and show as caller ID: the guard
//! against toll fraud (a stolen sign-in used to call premium-rate or far
//! away numbers at the account's expense). Numbers are matched by E.164
//! prefix; a blocked prefix wins over an allowed one. Unless configured,
//! the product dials and shows only numbers of its default caller ID's
//! country, and never the NANP's premium-rate codes.

use crate::ids::PhoneNumber;

/// An E.164 prefix: `+` and up to 15 digits (`+` alone matches every number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPrefix(String);

impl NumberPrefix {
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('+')?;
        let valid = digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| Self(text.to_owned()))
    }

    /// A comma- or space-separated list; `None` if any entry is not a prefix.
    pub fn parse_list(text: &str) -> Option<Vec<Self>> {
        text.split([',', ' '])
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Self::parse)
            .collect()
    }

    fn matches(&self, number: &PhoneNumber) -> bool {
        number.as_str().starts_with(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Premium-rate codes of the North American Numbering Plan (+1 900, +1 976),
/// blocked unless the configuration says otherwise.
pub const DEFAULT_BLOCKED: [&str; 2] = ["+1900", "+1976"];

/// Why a number may not be dialed or shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialRefused {
    #[error("calls to {0} are not allowed here (toll-fraud guard: ALLOWED_DESTINATIONS)")]
    Destination(String),
    #[error("calls to {0} are blocked (toll-fraud guard: BLOCKED_DESTINATIONS)")]
    Blocked(String),
    #[error("{0} may not be shown as caller ID (ALLOWED_CALLER_IDS)")]
    CallerId(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPolicy {
    pub destinations: Vec<NumberPrefix>,
    pub blocked: Vec<NumberPrefix>,
    pub caller_ids: Vec<NumberPrefix>,
}

impl DialPolicy {
    /// The default: the country of `caller_id`, for destinations and caller
    /// IDs, with the premium-rate codes blocked.
    pub fn country_of(caller_id: &PhoneNumber) -> Self {
        let country = NumberPrefix(format!("+{}", country_code(caller_id)));
        Self {
            destinations: vec![country.clone()],
            blocked: DEFAULT_BLOCKED
                .iter()
                .filter_map(|p| NumberPrefix::parse(p))
                .collect(),
            caller_ids: vec![country],
        }
    }

    /// A customer's or a transfer target's number.
    pub fn may_dial(&self, number: &PhoneNumber) -> Result<(), DialRefused> {
        if self.blocked.iter().any(|p| p.matches(number)) {
            return Err(DialRefused::Blocked(number.masked()));
        }
        if !self.destinations.iter().any(|p| p.matches(number)) {
            return Err(DialRefused::Destination(number.masked()));
        }
        Ok(())
    }

    /// A caller ID a request asks for.
    pub fn may_show(&self, caller_id: &PhoneNumber) -> Result<(), DialRefused> {
        if self.caller_ids.iter().any(|p| p.matches(caller_id)) {
            Ok(())
        } else {
            Err(DialRefused::CallerId(caller_id.masked()))
        }
    }
}

/// The ITU-T E.164 country calling code of a number. Codes are prefix-free:
/// `1` (NANP) and `7` are one digit; the two-digit codes are listed; every
/// other code has three digits.
pub fn country_code(number: &PhoneNumber) -> &str {
    const TWO_DIGITS: [&str; 44] = [
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    let digits = &number.as_str()[1..];
    let len = if digits.starts_with(['1', '7']) {
        1
    } else if TWO_DIGITS.iter().any(|code| digits.starts_with(code)) {
        2
    } else {
        3
    };
    &digits[..len.min(digits.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> PhoneNumber {
        PhoneNumber::parse(text).unwrap()
    }

    #[test]
    fn country_codes_of_one_two_and_three_digits() {
        assert_eq!(country_code(&n("+15005550006")), "1");
        assert_eq!(country_code(&n("+74951234567")), "7");
        assert_eq!(country_code(&n("+442079460958")), "44");
        assert_eq!(country_code(&n("+4915112345678")), "49");
        assert_eq!(country_code(&n("+35312345678")), "353");
        assert_eq!(country_code(&n("+8821234567")), "882");
    }

    #[test]
    fn by_default_only_the_caller_ids_country_and_no_premium_rate() {
        let policy = DialPolicy::country_of(&n("+15005550006"));
        assert_eq!(policy.may_dial(&n("+14155550100")), Ok(()));
        assert!(matches!(
            policy.may_dial(&n("+19005550100")),
            Err(DialRefused::Blocked(_))
        ));
        assert!(matches!(
            policy.may_dial(&n("+442079460958")),
            Err(DialRefused::Destination(_))
        ));
        assert!(matches!(
            policy.may_dial(&n("+8821234567")),
            Err(DialRefused::Destination(_))
        ));
        assert_eq!(policy.may_show(&n("+14155550100")), Ok(()));
        assert!(policy.may_show(&n("+442079460958")).is_err());
        // What a refusal says never holds the number.
        let refused = policy.may_dial(&n("+442079460958")).unwrap_err();
        assert!(!refused.to_string().contains("2079460958"), "{refused}");
    }

    #[test]
    fn configured_lists_and_a_block_that_wins() {
        let policy = DialPolicy {
            destinations: NumberPrefix::parse_list("+1, +44").unwrap(),
            blocked: NumberPrefix::parse_list("+4470").unwrap(),
            caller_ids: NumberPrefix::parse_list("+15005550006").unwrap(),
        };
        assert_eq!(policy.may_dial(&n("+442079460958")), Ok(()));
        assert!(policy.may_dial(&n("+447011112222")).is_err());
        assert_eq!(policy.may_show(&n("+15005550006")), Ok(()));
        assert!(policy.may_show(&n("+15005550007")).is_err());
        assert_eq!(NumberPrefix::parse_list("+1,x"), None);
        assert_eq!(
            NumberPrefix::parse_list("+").unwrap().len(),
            1,
            "every number"
        );
    }
}
