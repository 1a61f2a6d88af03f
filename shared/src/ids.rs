//! Validated identifiers: phone numbers, call SIDs and conference room names.
//!
//! Every value that reaches Twilio or DynamoDB passes through one of these
//! types, so malformed input is rejected at the edge with the field named.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be an E.164 phone number such as +14155550100")]
    PhoneNumber,
    #[error("must be a call SID: CA followed by 32 hexadecimal digits")]
    CallSid,
    #[error("must be a room name: wt- followed by a call SID")]
    RoomName,
}

/// An E.164 phone number (`+` then 2 to 15 digits, no leading zero).
///
/// Phone numbers identify people, so `Debug` and [`PhoneNumber::masked`]
/// show only the last four digits; [`PhoneNumber::as_str`] is for Twilio.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let digits = value.strip_prefix('+').ok_or(IdError::PhoneNumber)?;
        let valid = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError::PhoneNumber)
        }
    }

    /// The full number, for Twilio and storage only: never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as logs may show it: `+*******0100`.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Masks all but the last four characters of a phone-number-like string.
pub fn mask_phone(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let keep = chars.len().min(4);
    let hidden = chars.len() - keep;
    let mut out = String::with_capacity(chars.len());
    for (i, c) in chars.iter().enumerate() {
        if i >= hidden || (i == 0 && *c == '+') {
            out.push(*c);
        } else {
            out.push('*');
        }
    }
    out
}

/// Fewest digits in a run that [`mask_numbers_in`] treats as a phone
/// number: the shortest national numbers Twilio dials have seven. Shorter
/// runs (error codes such as 21211, durations, counts) stay readable.
const FEWEST_PHONE_DIGITS: usize = 7;

/// Masks every phone number inside free text, such as the messages of
/// Twilio's errors (`The number +15558675310 is unverified`): each run of
/// seven or more digits, written with or without `+`, spaces, dashes, dots
/// or parentheses, keeps only its last four digits. A run touching a letter
/// is part of an identifier (a SID's hexadecimal) and is left alone.
pub fn mask_numbers_in(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let separator = |b: u8| matches!(b, b' ' | b'-' | b'.' | b'(' | b')');
    let mut masked: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        // The run: digits joined by separators.
        let start = i;
        let mut end = i;
        let mut digits = Vec::new();
        let mut j = i;
        while j < bytes.len() {
            if bytes[j].is_ascii_digit() {
                digits.push(j);
                end = j + 1;
                j += 1;
            } else if separator(bytes[j]) {
                // A short run of separators (`) `) joins digits on both sides.
                let next = (j..bytes.len().min(j + 3)).find(|&k| !separator(bytes[k]));
                match next {
                    Some(k) if bytes[k].is_ascii_digit() => j = k,
                    _ => break,
                }
            } else {
                break;
            }
        }
        let touches_letter = bytes.get(end).is_some_and(u8::is_ascii_alphabetic);
        if digits.len() >= FEWEST_PHONE_DIGITS && !touches_letter {
            let out = masked.get_or_insert_with(|| bytes.to_vec());
            for &at in &digits[..digits.len() - 4] {
                out[at] = b'*';
            }
        }
        i = end.max(start + 1);
    }
    match masked {
        // Only ASCII digits were replaced by an ASCII byte: still UTF-8.
        Some(out) => String::from_utf8(out)
            .map(std::borrow::Cow::Owned)
            .unwrap_or_else(|_| std::borrow::Cow::Borrowed(text)),
        None => std::borrow::Cow::Borrowed(text),
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    /// Displays masked so that a number formatted into a log line stays private.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A Twilio call SID: `CA` followed by 32 lowercase or uppercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallSid(String);

impl CallSid {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let hex = value.strip_prefix("CA").ok_or(IdError::CallSid)?;
        if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError::CallSid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The conference room of the session this call SID identifies.
    pub fn room(&self) -> RoomName {
        RoomName(format!("{}{}", RoomName::PREFIX, self.0))
    }
}

impl fmt::Debug for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A conference room name. Always derived from the session's call SID
/// (`wt-CA…`), never from user text, so it cannot collide or inject.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RoomName(String);

impl RoomName {
    pub const PREFIX: &'static str = "wt-";

    pub fn parse(value: &str) -> Result<Self, IdError> {
        let sid = value.strip_prefix(Self::PREFIX).ok_or(IdError::RoomName)?;
        CallSid::parse(sid).map_err(|_| IdError::RoomName)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The session (first agent's call SID) this room belongs to.
    pub fn session(&self) -> CallSid {
        CallSid(self.0[Self::PREFIX.len()..].to_owned())
    }
}

impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! serde_via_parse {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                <$ty>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                <$ty>::parse(s)
            }
        }
    };
}

serde_via_parse!(PhoneNumber);
serde_via_parse!(CallSid);
serde_via_parse!(RoomName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_must_be_e164() {
        assert!(PhoneNumber::parse("+14155550100").is_ok());
        assert!(PhoneNumber::parse("+442071838750").is_ok());
        for bad in [
            "14155550100",
            "+",
            "+1",
            "+0123456",
            "+1415555010a",
            "+1234567890123456",
            "",
            "+1 415 555",
        ] {
            assert_eq!(PhoneNumber::parse(bad), Err(IdError::PhoneNumber), "{bad}");
        }
    }

    #[test]
    fn numbers_inside_free_text_are_masked() {
        for (text, expected) in [
            (
                "The number +15558675310 is unverified. Trial accounts cannot call it.",
                "The number +*******5310 is unverified. Trial accounts cannot call it.",
            ),
            (
                "The 'To' number 15558675310 is not a valid phone number.",
                "The 'To' number *******5310 is not a valid phone number.",
            ),
            (
                "Call to (555) 867-5310 or +44 20 7946 0958 failed",
                "Call to (***) ***-5310 or +** ** **** 0958 failed",
            ),
            ("Error 21211 after 30 s", "Error 21211 after 30 s"),
            (
                "Call CA1234567890abcdef1234567890abcdef not found",
                "Call CA1234567890abcdef1234567890abcdef not found",
            ),
        ] {
            assert_eq!(mask_numbers_in(text), expected, "{text}");
        }
    }

    #[test]
    fn phone_numbers_are_masked_in_debug_and_display() {
        let n = PhoneNumber::parse("+14155550100").unwrap();
        assert_eq!(n.masked(), "+*******0100");
        assert_eq!(format!("{n}"), "+*******0100");
        assert!(!format!("{n:?}").contains("415555"));
        assert_eq!(n.as_str(), "+14155550100");
        assert_eq!(mask_phone("12"), "12");
    }

    #[test]
    fn call_sids_are_ca_and_32_hex_digits() {
        let sid = "CA0123456789abcdef0123456789abcdef";
        assert_eq!(CallSid::parse(sid).unwrap().as_str(), sid);
        for bad in [
            "",
            "CA",
            "CF0123456789abcdef0123456789abcdef",
            "CA0123456789abcdef0123456789abcdeg",
            "CA0123456789abcdef0123456789abcde",
        ] {
            assert_eq!(CallSid::parse(bad), Err(IdError::CallSid), "{bad}");
        }
    }

    #[test]
    fn rooms_derive_from_and_back_to_the_session() {
        let sid = CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap();
        let room = sid.room();
        assert_eq!(room.as_str(), "wt-CA0123456789abcdef0123456789abcdef");
        assert_eq!(RoomName::parse(room.as_str()).unwrap().session(), sid);
        assert_eq!(RoomName::parse("wt-sales"), Err(IdError::RoomName));
        assert_eq!(
            RoomName::parse("CA0123456789abcdef0123456789abcdef"),
            Err(IdError::RoomName)
        );
    }
}
