/// A JSON column as the API shows it: parsed, or as a string when it is not
/// JSON (what the store's rows serialised before they stopped being API types).
pub fn raw_json(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}
