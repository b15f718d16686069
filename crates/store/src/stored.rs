//! The one place where build and deploy states, kinds and failure kinds
//! meet their stored text. The words themselves are declared once, with the
//! enums in `prism_domain`; here they are read back from rows (an unknown
//! word is a corrupt row, not a panic) and written into SQL `IN` lists.

use prism_domain::words::UnknownWord;

use crate::StoreError;

/// Reads a stored word as `T`, or says which column held what.
pub(crate) fn read<T>(column: &str, word: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = UnknownWord>,
{
    word.parse()
        .map_err(|e: UnknownWord| StoreError::Corrupt(format!("{column}: {e}")))
}

/// `'a', 'b'` for an SQL `IN (...)` list. The words come from the domain's
/// enums (fixed snake_case identifiers), never from input.
pub(crate) fn in_list<T: Copy>(values: &[T], word: impl Fn(T) -> &'static str) -> String {
    values
        .iter()
        .map(|v| format!("'{}'", word(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_domain::{BuildState, DeployState};

    #[test]
    fn unknown_words_are_corrupt_rows_naming_the_column() {
        let e = read::<BuildState>("builds.state", "exploded").unwrap_err();
        assert!(e.to_string().contains("builds.state"), "{e}");
        assert_eq!(
            read::<DeployState>("deploys.state", "watching").unwrap(),
            DeployState::Watching
        );
    }

    #[test]
    fn in_lists_quote_every_word() {
        assert_eq!(
            in_list(&BuildState::ACTIVE, BuildState::as_str),
            "'queued', 'checkout', 'building', 'pushing'"
        );
    }
}
