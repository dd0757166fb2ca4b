//! The Azure Functions custom-handler protocol: what the host POSTs to `/{Function}` and
//! what it expects back.
//!
//! The host has quirks a handler must survive (reference: azure-functions-host,
//! `ScriptInvocationContextExtensions.cs` and `HttpScriptInvocationResultExtensions.cs`):
//! string inputs and scalar metadata arrive JSON-encoded a second time (`"\"hello\""`),
//! keys ending in `Trigger` are dropped from `Metadata`, and string outputs that happen to
//! be valid base64 are decoded before they are written. Everything here reads defensively
//! and writes only JSON object text, which is never valid base64.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One invocation as the host sends it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Invocation {
    /// One entry per input binding, keyed by binding name.
    #[serde(rename = "Data", default)]
    pub data: Map<String, Value>,
    /// Trigger metadata (`DequeueCount`, `Id`, `name`, `Uri`, `Properties`, `sys`, ...).
    #[serde(rename = "Metadata", default)]
    pub metadata: Map<String, Value>,
}

/// Why an invocation could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A binding the function needs is not in `Data`.
    #[error("the invocation has no input binding `{0}`")]
    MissingBinding(String),
    /// A binding's value has the wrong form.
    #[error("input binding `{binding}` {problem}")]
    BadBinding {
        /// Binding name.
        binding: String,
        /// What is wrong.
        problem: String,
    },
}

/// Undoes the host's second JSON encoding of a scalar: `"\"abc\""` → `"abc"`, `"1"` → `1`.
///
/// Objects and arrays inside strings are left alone, because a queue message whose text is
/// a JSON document must stay text.
pub fn unwrap_scalar(value: &Value) -> Value {
    if let Value::String(text) = value
        && let Ok(inner) = serde_json::from_str::<Value>(text)
        && !(inner.is_object() || inner.is_array())
    {
        return inner;
    }
    value.clone()
}

impl Invocation {
    /// A binding's value as text, with one layer of extra JSON string encoding removed.
    ///
    /// # Errors
    /// [`ProtocolError`] when the binding is absent or not a string.
    pub fn text(&self, binding: &str) -> Result<String, ProtocolError> {
        let value = self
            .data
            .get(binding)
            .ok_or_else(|| ProtocolError::MissingBinding(binding.to_owned()))?;
        match value {
            Value::String(text) => Ok(match serde_json::from_str::<Value>(text) {
                Ok(Value::String(inner)) => inner,
                _ => text.clone(),
            }),
            // A queue message that is a JSON document may arrive already parsed.
            Value::Object(_) | Value::Array(_) => Ok(value.to_string()),
            other => Err(ProtocolError::BadBinding {
                binding: binding.to_owned(),
                problem: format!("is {other}, not text"),
            }),
        }
    }

    /// A `dataType: binary` binding's bytes (the host sends them as base64).
    ///
    /// # Errors
    /// [`ProtocolError`] when the binding is absent or not base64.
    pub fn bytes(&self, binding: &str) -> Result<Vec<u8>, ProtocolError> {
        let text = self.text(binding)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|error| ProtocolError::BadBinding {
                binding: binding.to_owned(),
                problem: format!("is not base64 ({error}); is `dataType` set to `binary`?"),
            })
    }

    /// A metadata value with the extra encoding removed, as text.
    pub fn metadata_text(&self, key: &str) -> Option<String> {
        match unwrap_scalar(self.metadata_value(key)?) {
            Value::String(text) => Some(text),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// A metadata value looked up without regard to case (the host is case-insensitive).
    pub fn metadata_value(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key).or_else(|| {
            self.metadata
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(_, value)| value)
        })
    }

    /// How many times the queue message has been delivered (1 on the first try).
    pub fn dequeue_count(&self) -> Option<u32> {
        match unwrap_scalar(self.metadata_value("DequeueCount")?) {
            Value::Number(number) => number.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// The blob's ETag from `Metadata.Properties` (object, or JSON text in older hosts).
    pub fn blob_etag(&self) -> Option<String> {
        let properties = self.metadata_value("Properties")?;
        let properties = match properties {
            Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
            other => other.clone(),
        };
        let object = properties.as_object()?;
        let etag = object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("ETag"))
            .map(|(_, value)| value)?;
        match unwrap_scalar(etag) {
            Value::String(text) if !text.is_empty() => Some(text),
            _ => None,
        }
    }
}

/// The handler's answer: output bindings, log lines, return value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvocationResult {
    /// Output binding name → value; a JSON array to a queue output is one message per element.
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    /// Lines the host logs at Information level against the invocation.
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    /// The `$return` binding's value.
    #[serde(rename = "ReturnValue")]
    pub return_value: Option<Value>,
}

impl InvocationResult {
    /// Adds queue messages to an output binding; each must serialise to a JSON object.
    pub fn push_messages<T: Serialize>(&mut self, binding: &str, messages: &[T]) {
        // A key for a binding the function does not declare is an error in the host's eyes,
        // and functions declare only what they can write: add keys only when there is data.
        if messages.is_empty() {
            return;
        }
        let entry = self
            .outputs
            .entry(binding.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.extend(
                messages
                    .iter()
                    .filter_map(|message| serde_json::to_string(message).ok())
                    .map(Value::String),
            );
        }
    }

    /// Adds a log line.
    pub fn log(&mut self, line: impl Into<String>) {
        self.logs.push(line.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invocation(value: Value) -> Invocation {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn unwraps_double_encoded_strings_and_numbers_once() {
        assert_eq!(unwrap_scalar(&json!("\"hello\"")), json!("hello"));
        assert_eq!(unwrap_scalar(&json!("1")), json!(1));
        assert_eq!(unwrap_scalar(&json!("hello")), json!("hello"));
        assert_eq!(unwrap_scalar(&json!("{\"a\":1}")), json!("{\"a\":1}"));
    }

    #[test]
    fn queue_text_survives_both_encodings() {
        let message = r#"{"v":1,"kind":"reconcile"}"#;
        let plain = invocation(json!({"Data": {"msg": message}, "Metadata": {"DequeueCount": 2}}));
        let twice = invocation(
            json!({"Data": {"msg": serde_json::to_string(message).unwrap()},
                                      "Metadata": {"DequeueCount": "\"3\""}}),
        );
        let parsed =
            invocation(json!({"Data": {"msg": {"v": 1, "kind": "reconcile"}}, "Metadata": {}}));
        assert_eq!(plain.text("msg").unwrap(), message);
        assert_eq!(twice.text("msg").unwrap(), message);
        // An already-parsed document comes back as equivalent JSON text.
        let reparsed: Value = serde_json::from_str(&parsed.text("msg").unwrap()).unwrap();
        assert_eq!(reparsed, json!({"v": 1, "kind": "reconcile"}));
        assert_eq!(plain.dequeue_count(), Some(2));
        assert_eq!(twice.dequeue_count(), Some(3));
        assert_eq!(parsed.dequeue_count(), None);
        assert_eq!(
            plain.text("other").unwrap_err(),
            ProtocolError::MissingBinding("other".into())
        );
    }

    #[test]
    fn blob_metadata_in_every_published_form() {
        let object = invocation(json!({"Data": {"roster": "QQ=="}, "Metadata": {
            "name": "\"Key Users.csv\"", "Properties": {"ETag": "\"0x8D\"", "ContentLength": 1}}}));
        let text = invocation(json!({"Data": {"roster": "\"QQ==\""}, "Metadata": {
            "Name": "Key Users.csv", "Properties": "{\"etag\":\"0x8D\"}"}}));
        for invocation in [object, text] {
            assert_eq!(
                invocation.metadata_text("name").as_deref(),
                Some("Key Users.csv")
            );
            assert_eq!(invocation.blob_etag().as_deref(), Some("0x8D"));
            assert_eq!(invocation.bytes("roster").unwrap(), b"A");
        }
    }

    #[test]
    fn outputs_are_json_object_text_never_base64() {
        #[derive(Serialize)]
        struct Message {
            roster: &'static str,
        }
        let mut result = InvocationResult::default();
        result.push_messages(
            "reconcile",
            &[Message { roster: "abcd" }, Message { roster: "efgh" }],
        );
        let messages = result.outputs["reconcile"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        for message in messages {
            let text = message.as_str().unwrap();
            assert!(text.starts_with('{'));
            assert!(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .is_err()
            );
        }
        let body = serde_json::to_value(&result).unwrap();
        assert!(body.get("Outputs").is_some() && body.get("Logs").is_some());
        result.push_messages::<Message>("remove", &[]);
        assert!(
            !result.outputs.contains_key("remove"),
            "no key without messages"
        );
    }
}
