//! Takes secrets out of text that Gradient (or anything between us and Gradient) sends back,
//! before any of it goes into an error or a log line.
//!
//! **The rule.** A call's secrets are the vendor key(s) it was sent with, the client's current
//! vendor key, the partner token, and the `GRADIENT-TOKEN` value built from each of those keys.
//! Each secret is searched for in these *forms*: as it is; its standard and URL-safe base64, with
//! and without padding, and also as it looks at the two other byte offsets inside longer base64
//! text (e.g. `Basic base64("user:<key>")`); and each of those JSON-escaped (`"` `\` and control
//! characters, with and without `/` as `\/`). The text is searched as it is and also with its
//! escapes decoded (JSON's `\X` and `\uXXXX`, Rust's `\u{X}`, URL `%XX` for ASCII), once and then
//! again for text that was escaped twice. This catches any mix of escapes, e.g. `+` written
//! `\u002B` next to `/` written as is.
//! * Any [`MIN_RUN`] (12) or more characters in a row of a form count as the secret: the whole
//!   longest range they cover is replaced by [`REDACTED`]. Overlapping or touching ranges become
//!   one.
//! * A form shorter than [`MIN_RUN`] is replaced only where it appears whole.
//! * When the text was **cut** (a body read only up to a limit), it may end in the start of a
//!   secret. The longest trailing proper start of any form is removed (in the text or its decoded
//!   view), and so is an escape sequence cut off at the end.
//!
//! Callers cut a message to its length limit only after scrubbing. A cut scrubbed text shows
//! nothing that the whole scrubbed text did not.

#[cfg(test)]
mod tests;
mod views;

use base64::Engine;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use views::{View, views};

/// This many characters in a row of a secret's form count as the secret.
pub(crate) const MIN_RUN: usize = 12;

/// What a secret is replaced with.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// The forms of a call's secrets (see the module doc); scrubs text of them.
pub(crate) struct Scrubber {
    /// Every form, once, none empty.
    forms: Vec<Vec<char>>,
    /// Fingerprints of every [`MIN_RUN`]-character window of the longer forms. A collision can
    /// only redact more than needed.
    windows: HashSet<u64>,
    /// The forms shorter than [`MIN_RUN`].
    short: Vec<String>,
}

/// A window's fingerprint (64-bit FNV-1a of its bytes).
fn fingerprint(window: &str) -> u64 {
    window.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Scrubber {
    pub(crate) fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let mut forms = BTreeSet::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if !secret.is_empty() {
                add_forms(secret, &mut forms);
            }
        }
        let mut windows = HashSet::new();
        let mut short = Vec::new();
        for form in forms.iter().filter(|f| !f.is_empty()) {
            let offsets: Vec<usize> = form
                .char_indices()
                .map(|(i, _)| i)
                .chain([form.len()])
                .collect();
            if offsets.len() <= MIN_RUN {
                short.push(form.clone());
            }
            for w in offsets.windows(MIN_RUN + 1) {
                windows.insert(fingerprint(&form[w[0]..w[MIN_RUN]]));
            }
        }
        Self {
            forms: forms
                .into_iter()
                .filter(|f| !f.is_empty())
                .map(|f| f.chars().collect())
                .collect(),
            windows,
            short,
        }
    }

    /// `text` with every secret (see the module doc) replaced by [`REDACTED`]. `cut`: the text
    /// was cut at its end (a trailing start of a secret is removed too).
    pub(crate) fn scrub(&self, text: &str, cut: bool) -> String {
        if self.forms.is_empty() {
            return text.to_owned();
        }
        let text = if cut {
            &text[..self.kept_of_cut(text)]
        } else {
            text
        };
        let mut found = Vec::new();
        for view in views(text) {
            find(&view, &self.windows, &self.short, &mut found);
        }
        redact(text, found)
    }

    /// How much of a cut `text` to keep: up to the longest trailing proper start of a form (or an
    /// escape cut short) in the text or in a decoded view of it.
    fn kept_of_cut(&self, text: &str) -> usize {
        let mut end = text.len();
        for view in views(text) {
            let units = match view.cut_escape {
                Some(at) => {
                    end = end.min(at);
                    let n = view.units.partition_point(|u| u.start < at);
                    &view.units[..n]
                }
                None => &view.units[..],
            };
            for form in &self.forms {
                // Proper starts only: a whole form is replaced, not removed.
                let longest = (1..form.len().min(units.len() + 1)).rev().find(|&len| {
                    units[units.len() - len..]
                        .iter()
                        .zip(&form[..len])
                        .all(|(u, c)| u.ch == *c)
                });
                if let Some(len) = longest {
                    end = end.min(units[units.len() - len].start);
                }
            }
        }
        end
    }
}

/// Adds the forms of one secret (see the module doc).
fn add_forms(secret: &str, forms: &mut BTreeSet<String>) {
    let bytes = secret.as_bytes();
    let mut encoded = vec![secret.to_owned()];
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        encoded.push(engine.encode(bytes));
    }
    // Only long enough to tell: a few characters of base64 would match innocent text.
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for shift in 1..=2 {
            encoded.extend(shifted(engine, bytes, shift).filter(|f| f.len() >= MIN_RUN));
        }
    }
    for form in encoded {
        let quoted = serde_json::to_string(&form).unwrap_or_default();
        let json = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or(&form);
        forms.insert(json.replace('/', "\\/"));
        forms.insert(json.to_owned());
        forms.insert(form);
    }
}

/// The base64 characters that `bytes` alone decide when they start `shift` bytes after a 3-byte
/// group boundary inside longer base64 text (the characters that mix in other bytes are left out).
fn shifted(engine: &GeneralPurpose, bytes: &[u8], shift: usize) -> Option<String> {
    let mut padded = vec![0u8; shift];
    padded.extend_from_slice(bytes);
    let all = engine.encode(&padded);
    // Character i holds bits 6i..6i+6; the secret holds bits 8·shift..8·(shift+len).
    let first = (8 * shift).div_ceil(6);
    let last = (8 * (shift + bytes.len())) / 6;
    (first < last).then(|| all[first..last].to_owned())
}

/// Adds the byte ranges of the text where a window (or a whole short form) shows in `view`.
fn find(view: &View, windows: &HashSet<u64>, short: &[String], found: &mut Vec<Range<usize>>) {
    let s: String = view.units.iter().map(|u| u.ch).collect();
    let offsets: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    let span = |from: usize, chars: usize| view.units[from].start..view.units[from + chars - 1].end;
    for i in 0..(view.units.len() + 1).saturating_sub(MIN_RUN) {
        if windows.contains(&fingerprint(&s[offsets[i]..offsets[i + MIN_RUN]])) {
            found.push(span(i, MIN_RUN));
        }
    }
    for form in short {
        let chars = form.chars().count();
        let mut from = 0;
        while let Some(at) = s[from..].find(form.as_str()) {
            let byte = from + at;
            let unit = offsets.partition_point(|&o| o < byte);
            found.push(span(unit, chars));
            // Overlapping matches too: go on from the next character.
            from = byte + s[byte..].chars().next().map_or(1, char::len_utf8);
        }
    }
}

/// Replaces every range (merged where they overlap or touch) by [`REDACTED`].
fn redact(text: &str, mut found: Vec<Range<usize>>) -> String {
    if found.is_empty() {
        return text.to_owned();
    }
    found.sort_by_key(|r| (r.start, r.end));
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut current: Option<Range<usize>> = None;
    for r in found {
        match &mut current {
            Some(c) if r.start <= c.end => c.end = c.end.max(r.end),
            _ => {
                if let Some(c) = current.take() {
                    out.push_str(&text[done..c.start]);
                    out.push_str(REDACTED);
                    done = c.end;
                }
                current = Some(r);
            }
        }
    }
    if let Some(c) = current {
        out.push_str(&text[done..c.start]);
        out.push_str(REDACTED);
        done = c.end;
    }
    out.push_str(&text[done..]);
    out
}
