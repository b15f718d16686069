//! Masking of registered secrets in build logs.

use std::sync::{Arc, RwLock};

use crate::logsink::{LogSink, Stream};

/// Secrets shorter than this are not registered: masking `a` or `true` would destroy the
/// log without protecting anything.
pub const MIN_SECRET_LEN: usize = 4;
pub const MASK: &str = "***";

/// Replaces every registered secret value in a line with `***`.
///
/// Masking is line based: a multi-line secret is registered line by line (each line of
/// at least [`MIN_SECRET_LEN`] characters), so each of its lines is masked where it shows
/// up. Overlapping and adjacent occurrences of different secrets are merged into one mask.
#[derive(Debug, Default)]
pub struct SecretMasker {
    secrets: RwLock<Vec<String>>,
}

impl SecretMasker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a secret value. Returns how many values were added (a multi-line secret
    /// adds one per line; short values add none).
    pub fn register(&self, secret: &str) -> usize {
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        let mut added = 0;
        for part in secret.split(['\n', '\r']) {
            if part.chars().count() >= MIN_SECRET_LEN && !secrets.iter().any(|s| s == part) {
                secrets.push(part.to_owned());
                added += 1;
            }
        }
        // Longest first is not needed for correctness (ranges are merged) but keeps the
        // common case of one secret containing another cheap to reason about.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        added
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.read().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Mask one line.
    pub fn mask(&self, line: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for s in secrets.iter() {
            // Every occurrence, including overlapping ones of the same secret.
            let mut from = 0;
            while let Some(i) = line[from..].find(s.as_str()) {
                let start = from + i;
                ranges.push((start, start + s.len()));
                // Advance by one character (not byte) to stay on a char boundary.
                from = start + line[start..].chars().next().map_or(1, char::len_utf8);
                if from >= line.len() {
                    break;
                }
            }
        }
        if ranges.is_empty() {
            return line.to_owned();
        }
        ranges.sort_unstable();
        let mut out = String::with_capacity(line.len());
        let mut pos = 0;
        let mut iter = ranges.into_iter().peekable();
        while let Some((start, mut end)) = iter.next() {
            while let Some(&(s2, e2)) = iter.peek() {
                if s2 <= end {
                    end = end.max(e2);
                    iter.next();
                } else {
                    break;
                }
            }
            out.push_str(&line[pos..start]);
            out.push_str(MASK);
            pos = end;
        }
        out.push_str(&line[pos..]);
        out
    }
}

/// A [`LogSink`] that masks secrets before passing lines on.
pub struct MaskingSink<S: LogSink + ?Sized> {
    masker: Arc<SecretMasker>,
    inner: Arc<S>,
}

impl<S: LogSink + ?Sized> MaskingSink<S> {
    pub fn new(masker: Arc<SecretMasker>, inner: Arc<S>) -> Self {
        Self { masker, inner }
    }
}

impl<S: LogSink + ?Sized> LogSink for MaskingSink<S> {
    fn line(&self, stream: Stream, line: &str) {
        self.inner.line(stream, &self.masker.mask(line));
    }

    /// Links are masked like lines: a secret in a URL (a token in a query string) must not
    /// leak through the link any more than through the log.
    fn link(&self, label: &str, url: &str) {
        self.inner.link(label, &self.masker.mask(url));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_occurrences() {
        let m = SecretMasker::new();
        assert_eq!(m.register("hunter2"), 1);
        assert_eq!(m.mask("pw=hunter2 again hunter2!"), "pw=*** again ***!");
        assert_eq!(m.mask("nothing here"), "nothing here");
    }

    #[test]
    fn short_secrets_ignored() {
        let m = SecretMasker::new();
        assert_eq!(m.register("abc"), 0);
        assert!(m.is_empty());
        assert_eq!(m.mask("abc"), "abc");
    }

    #[test]
    fn overlapping_and_nested_merge() {
        let m = SecretMasker::new();
        m.register("abcdef");
        m.register("defghi");
        m.register("bcd0");
        assert_eq!(m.mask("xabcdefghiy"), "x***y");
        let m = SecretMasker::new();
        m.register("aaaa");
        assert_eq!(m.mask("aaaaa b"), "*** b");
    }

    #[test]
    fn multiline_secret_registered_per_line() {
        let m = SecretMasker::new();
        assert_eq!(m.register("-----BEGIN KEY-----\nAAAABBBB\nxy\n-----END KEY-----"), 3);
        assert_eq!(m.mask("AAAABBBB"), "***");
        assert_eq!(m.mask("xy"), "xy");
    }

    #[test]
    fn unicode_boundaries() {
        let m = SecretMasker::new();
        m.register("ééé€");
        assert_eq!(m.mask("äééé€ü ééé€"), "ä***ü ***");
    }
}
