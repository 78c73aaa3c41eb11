//! A field's value as the API sees it: one of three scalar shapes, mapped to Automerge scalars.

use serde::{Deserialize, Serialize};

/// A scalar field value. Dates, codes, enum values and record references are text with a
/// format the schema checks; sets (members, attendees) are not values but their own operations.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Text(String),
}

/// A value as JSON carries it: JSON does not tell `3` from `3.0`, so a whole number is an
/// integer however it is written.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonValue {
    Bool(bool),
    Int(i64),
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Every f64 in this range that has no fraction is exactly an i64.
        const I64_RANGE: std::ops::Range<f64> =
            -9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0;
        match JsonValue::deserialize(deserializer)? {
            JsonValue::Bool(b) => Ok(Value::Bool(b)),
            JsonValue::Int(i) => Ok(Value::Int(i)),
            JsonValue::Number(n) if n.fract() == 0.0 && I64_RANGE.contains(&n) => {
                Ok(Value::Int(n as i64))
            }
            JsonValue::Number(_) => Err(serde::de::Error::custom(
                "a value is text, a whole number (64-bit) or a boolean",
            )),
            JsonValue::Text(s) => Ok(Value::Text(s)),
        }
    }
}

impl Value {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Text(_) => "text",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Value;

    fn read(json: &str) -> Result<Value, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_number_is_an_integer_however_json_writes_it() {
        assert_eq!(read("3"), Ok(Value::Int(3)));
        assert_eq!(read("-110931979.0"), Ok(Value::Int(-110_931_979)));
        assert_eq!(read("1e3"), Ok(Value::Int(1000)));
        assert_eq!(read("true"), Ok(Value::Bool(true)));
        assert_eq!(read("\"3\""), Ok(Value::Text("3".into())));
        assert!(read("2.5").is_err());
        assert!(read("18446744073709551615").is_err(), "past i64");
        assert!(read("9.3e18").is_err(), "past i64");
        assert!(read("null").is_err());
    }
}
