//! Name normalisation and the item rules (version 1).
//!
//! Every name goes through [`NameBuf::set`], at build time and at query time,
//! so both sides agree byte for byte. The canonical text is the presentation
//! form with escapes decoded and re-encoded one way: ASCII letters
//! lower-cased, printable ASCII kept, `.` and `\` inside a label escaped with
//! a backslash, every other byte as `\DDD`; no trailing dot, the root as "".
//!
//! Item rules, version 1 ([`ITEM_RULES`]): for a name with labels
//! `l1 . l2 ... ln` (`ln` the TLD) the filter holds
//! - the full name;
//! - each label `l1 .. l(n-1)` on its own (not the TLD), except for reverse
//!   names (ending in `in-addr.arpa` or `ip6.arpa`), whose labels are only
//!   address digits and would fill the filter with noise;
//! - the last two labels `l(n-1).ln`;
//!
//! and each of those again as `ENTITY@item`. Items equal to one already
//! produced (the last two labels of a two-label name) are not repeated.

use std::ops::Range;

use super::question::push_label_byte;

/// The version of the item rules written into every filter file.
pub const ITEM_RULES: u16 = 1;

/// A canonical name plus the byte ranges of its labels, reused across calls.
#[derive(Debug, Default, Clone)]
pub(crate) struct NameBuf {
    pub text: String,
    labels: Vec<Range<usize>>,
}

impl NameBuf {
    /// Replace the content with the canonical form of presentation text
    /// `input` (case-insensitive, trailing dot optional, escapes allowed).
    /// A backslash that starts no valid escape stands for itself.
    pub fn set(&mut self, input: &str) {
        self.text.clear();
        self.labels.clear();
        let b = input.as_bytes();
        let mut i = 0;
        let mut start = 0;
        while let Some(&c) = b.get(i) {
            if c == b'.' {
                self.labels.push(start..self.text.len());
                self.text.push('.');
                start = self.text.len();
                i += 1;
                continue;
            }
            let (byte, used) = if c == b'\\' {
                decode_escape(b.get(i + 1..).unwrap_or_default())
            } else {
                (c, 1)
            };
            push_label_byte(&mut self.text, byte);
            i += used;
        }
        if start < self.text.len() {
            self.labels.push(start..self.text.len());
        } else if !self.text.is_empty() {
            // Trailing dot: drop it (and "." becomes the root, "").
            self.text.pop();
        }
    }

    fn label(&self, i: usize) -> &str {
        self.labels
            .get(i)
            .and_then(|r| self.text.get(r.clone()))
            .unwrap_or("")
    }

    /// Whether the name is under `in-addr.arpa` or `ip6.arpa`.
    fn is_reverse(&self) -> bool {
        let n = self.labels.len();
        n >= 2 && self.label(n - 1) == "arpa" && matches!(self.label(n - 2), "in-addr" | "ip6")
    }

    /// Call `f` once per item of rules version 1 (without entity prefix).
    pub fn for_each_item(&self, mut f: impl FnMut(&str)) {
        f(&self.text);
        let n = self.labels.len();
        if n >= 2 && !self.is_reverse() {
            for i in 0..n - 1 {
                let l = self.label(i);
                if !l.is_empty() {
                    f(l);
                }
            }
        }
        if n >= 3 {
            if let Some(r) = self.labels.get(n - 2) {
                if let Some(tail) = self.text.get(r.start..) {
                    f(tail);
                }
            }
        }
    }
}

/// Decode the escape after a backslash; `rest` starts just after it.
/// Returns the byte and how many input bytes (including the backslash) it
/// used.
fn decode_escape(rest: &[u8]) -> (u8, usize) {
    match rest {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            let v = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            match u8::try_from(v) {
                Ok(byte) => (byte, 4),
                Err(_) => (b'\\', 1),
            }
        }
        [x, ..] => (*x, 2),
        [] => (b'\\', 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut n = NameBuf::default();
        n.set(s);
        n.text
    }

    fn items(s: &str) -> Vec<String> {
        let mut n = NameBuf::default();
        n.set(s);
        let mut v = Vec::new();
        n.for_each_item(|i| v.push(i.to_string()));
        v
    }

    #[test]
    fn normalises() {
        assert_eq!(norm("WWW.Example.COM."), "www.example.com");
        assert_eq!(norm("."), "");
        assert_eq!(norm(""), "");
        assert_eq!(norm("\\065b\\.c.d"), "ab\\.c.d");
        assert_eq!(norm("a\\255\\\\"), "a\\255\\\\");
        assert_eq!(norm("x\\."), "x\\.");
        assert_eq!(norm("a b"), "a\\032b");
        // Canonical text is a fixed point.
        for s in ["a\\255\\\\", "ab\\.c.d", "a\\032b", "q\\000.com"] {
            assert_eq!(norm(&norm(s)), norm(s));
        }
    }

    #[test]
    fn item_rules_v1() {
        assert_eq!(
            items("A.www.Example.com."),
            ["a.www.example.com", "a", "www", "example", "example.com"]
        );
        assert_eq!(items("example.com"), ["example.com", "example"]);
        assert_eq!(items("com"), ["com"]);
        assert_eq!(items("."), [""]);
        assert_eq!(
            items("4.3.2.1.in-addr.arpa"),
            ["4.3.2.1.in-addr.arpa", "in-addr.arpa"]
        );
        assert_eq!(items("a\\.b.c"), ["a\\.b.c", "a\\.b"]);
    }
}
