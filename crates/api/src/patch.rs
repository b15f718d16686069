//! Serde helpers for PATCH bodies, where an absent field and an explicit
//! `null` mean different things.

/// A missing field is `None`, an explicit `null` is `Some(None)`. Use with
/// `#[serde(default, skip_serializing_if = "Option::is_none")]` so that a
/// client leaving the field alone does not send `null`.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
