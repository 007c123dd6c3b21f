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

use base64::Engine;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use std::collections::{BTreeSet, HashSet};
use std::ops::Range;

/// This many characters in a row of a secret's form count as the secret.
pub(crate) const MIN_RUN: usize = 12;

/// What a secret is replaced with.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// How many times escapes are decoded for the search (text escaped twice, e.g. JSON in JSON).
const DECODE_LEVELS: usize = 2;

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
            view.find(&self.windows, &self.short, &mut found);
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

/// One character of a view and the byte range of the text it stands for.
#[derive(Debug, Clone, Copy)]
struct Unit {
    ch: char,
    start: usize,
    end: usize,
}

/// The text as it is, or with its escapes decoded.
struct View {
    units: Vec<Unit>,
    /// Where an escape sequence starts that the end of the text cut short (its characters are
    /// kept as they are).
    cut_escape: Option<usize>,
}

/// The text as it is and decoded up to [`DECODE_LEVELS`] times (while decoding changes it).
fn views(text: &str) -> Vec<View> {
    let plain = View {
        units: text
            .char_indices()
            .map(|(i, ch)| Unit {
                ch,
                start: i,
                end: i + ch.len_utf8(),
            })
            .collect(),
        cut_escape: None,
    };
    let mut views = vec![plain];
    for _ in 0..DECODE_LEVELS {
        let last = &views[views.len() - 1];
        let next = decode(&last.units);
        if next.units.len() == last.units.len() && next.cut_escape.is_none() {
            break;
        }
        views.push(next);
    }
    views
}

impl View {
    /// Adds the byte ranges of the text where a window (or a whole short form) shows.
    fn find(&self, windows: &HashSet<u64>, short: &[String], found: &mut Vec<Range<usize>>) {
        let s: String = self.units.iter().map(|u| u.ch).collect();
        let offsets: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
        let span =
            |from: usize, chars: usize| self.units[from].start..self.units[from + chars - 1].end;
        for i in 0..(self.units.len() + 1).saturating_sub(MIN_RUN) {
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

/// What an escape sequence at the start of `units` (a `\` or `%`) decodes to.
enum Escape {
    /// The character and how many units the sequence takes.
    Char(char, usize),
    /// Not an escape sequence: the unit stands for itself.
    Plain,
    /// The end of the text cut the sequence short.
    Cut,
}

fn hex_digits(units: &[Unit]) -> Option<u32> {
    units
        .iter()
        .try_fold(0u32, |v, u| Some(v * 16 + u.ch.to_digit(16)?))
}

/// `\uXXXX` at the start of `units` (after the backslash and `u` come 4 hex digits).
fn unicode4(units: &[Unit]) -> Result<u32, Escape> {
    let digits = &units[2.min(units.len())..6.min(units.len())];
    match hex_digits(digits) {
        Some(v) if digits.len() == 4 => Ok(v),
        Some(_) => Err(Escape::Cut),
        None => Err(Escape::Plain),
    }
}

fn escape(units: &[Unit]) -> Escape {
    match units[0].ch {
        '%' => {
            let digits = &units[1..3.min(units.len())];
            match hex_digits(digits) {
                Some(v) if digits.len() == 2 && v < 0x80 => Escape::Char(v as u8 as char, 3),
                Some(_) if digits.len() < 2 => Escape::Cut,
                _ => Escape::Plain,
            }
        }
        '\\' => {
            let Some(next) = units.get(1) else {
                return Escape::Cut;
            };
            let simple = match next.ch {
                c @ ('"' | '\\' | '/' | '\'') => Some(c),
                'b' => Some('\u{8}'),
                'f' => Some('\u{c}'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                '0' => Some('\0'),
                _ => None,
            };
            if let Some(c) = simple {
                return Escape::Char(c, 2);
            }
            if next.ch != 'u' {
                return Escape::Plain;
            }
            if units.get(2).is_some_and(|u| u.ch == '{') {
                return braced(units);
            }
            let high = match unicode4(units) {
                Ok(v) => v,
                Err(e) => return e,
            };
            if !(0xD800..0xDC00).contains(&high) {
                return Escape::Char(char::from_u32(high).unwrap_or('\u{FFFD}'), 6);
            }
            // A high surrogate: the low one should follow as `\uXXXX`.
            let rest = &units[6..];
            let lead_ok = rest.first().is_none_or(|u| u.ch == '\\')
                && rest.get(1).is_none_or(|u| u.ch == 'u');
            if rest.len() < 2 && lead_ok {
                return Escape::Cut;
            }
            if !lead_ok {
                return Escape::Char('\u{FFFD}', 6);
            }
            match unicode4(rest) {
                Ok(low) if (0xDC00..0xE000).contains(&low) => {
                    let c = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    Escape::Char(char::from_u32(c).unwrap_or('\u{FFFD}'), 12)
                }
                Err(Escape::Cut) => Escape::Cut,
                _ => Escape::Char('\u{FFFD}', 6),
            }
        }
        _ => Escape::Plain,
    }
}

/// Rust's `\u{X…}` (1 to 6 hex digits) at the start of `units`.
fn braced(units: &[Unit]) -> Escape {
    let mut value = 0u32;
    for (i, u) in units.iter().enumerate().skip(3) {
        match u.ch {
            '}' if i > 3 => {
                return Escape::Char(char::from_u32(value).unwrap_or('\u{FFFD}'), i + 1);
            }
            c if i < 9 && c.is_ascii_hexdigit() => {
                value = value * 16 + c.to_digit(16).unwrap_or(0);
            }
            _ => return Escape::Plain,
        }
    }
    Escape::Cut
}

/// The units with every escape sequence decoded to the character it stands for.
fn decode(units: &[Unit]) -> View {
    let mut out = Vec::with_capacity(units.len());
    let mut cut_escape = None;
    let mut i = 0;
    while i < units.len() {
        let u = units[i];
        let e = if matches!(u.ch, '\\' | '%') {
            escape(&units[i..])
        } else {
            Escape::Plain
        };
        match e {
            Escape::Char(ch, len) => {
                out.push(Unit {
                    ch,
                    start: u.start,
                    end: units[i + len - 1].end,
                });
                i += len;
            }
            Escape::Plain => {
                out.push(u);
                i += 1;
            }
            Escape::Cut => {
                cut_escape = Some(u.start);
                out.extend_from_slice(&units[i..]);
                break;
            }
        }
    }
    View {
        units: out,
        cut_escape,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "coro-vendor-7f3a9c2e-41b8-4d6a-9e0f-5b2c8d1a7e36";
    const PARTNER: &str = "pk_live_???Zq8~~~Xv4R3mT0wKd9Lp7Yb2Nc5";

    fn header() -> String {
        STANDARD.encode(format!("{KEY}:{PARTNER}"))
    }

    fn scrubber() -> Scrubber {
        Scrubber::new([KEY, PARTNER, &header()])
    }

    /// Every 12-character window of each secret and of its standard / URL-safe base64.
    fn pieces() -> Vec<String> {
        let mut out = Vec::new();
        for s in [KEY.to_owned(), PARTNER.to_owned(), header()] {
            for form in [s.clone(), STANDARD.encode(&s), URL_SAFE.encode(&s)] {
                let chars: Vec<char> = form.chars().collect();
                out.extend(chars.windows(MIN_RUN).map(|w| w.iter().collect::<String>()));
            }
        }
        out
    }

    #[track_caller]
    fn assert_clean(shown: &str) {
        if let Some(p) = pieces().iter().find(|p| shown.contains(p.as_str())) {
            panic!("{p:?} shows in {shown:?}");
        }
    }

    #[test]
    fn whole_secrets_and_runs_of_twelve_are_replaced_shorter_runs_kept() {
        let s = scrubber();
        assert_eq!(s.scrub(&format!("a {KEY} b"), false), "a [REDACTED] b");
        // Any 12 in a row, the whole run it belongs to.
        let run = &KEY[5..30];
        assert_eq!(s.scrub(&format!("x{run}y"), false), "x[REDACTED]y");
        assert_eq!(s.scrub(&format!("[{}]", &KEY[..12]), false), "[[REDACTED]]");
        // 11 in a row are not the secret.
        let eleven = &KEY[3..14];
        assert_eq!(
            s.scrub(&format!("x {eleven} y"), false),
            format!("x {eleven} y")
        );
        // Two secrets side by side: one replacement; apart: two.
        assert_eq!(s.scrub(&format!("{KEY}{PARTNER}!"), false), "[REDACTED]!");
        assert_eq!(
            s.scrub(&format!("{KEY}:{PARTNER}!"), false),
            "[REDACTED]:[REDACTED]!"
        );
        assert_eq!(s.scrub("nothing here", false), "nothing here");
        assert_eq!(s.scrub("", true), "");
    }

    #[test]
    fn short_secrets_only_whole_and_overlapping() {
        let s = Scrubber::new(["abcab", ""]);
        assert_eq!(s.scrub("x abcabcab y", false), "x [REDACTED] y");
        assert_eq!(s.scrub("x abca y", false), "x abca y");
        // Its base64 ("YWJjYWI=") is a form too.
        assert_eq!(
            s.scrub("YWJjYWI= and YWJjYWI", false),
            "[REDACTED] and [REDACTED]"
        );
        assert_eq!(Scrubber::new([""]).scrub("text", true), "text");
    }

    #[test]
    fn base64_forms_at_every_alignment() {
        let s = scrubber();
        for text in [
            STANDARD.encode(KEY),
            URL_SAFE.encode(KEY),
            URL_SAFE.encode(header()),
            STANDARD.encode(header()),
            STANDARD.encode(PARTNER),
            URL_SAFE_NO_PAD.encode(PARTNER),
            // The key inside longer base64 text, at each offset.
            STANDARD.encode(format!("Basic user:{KEY}")),
            STANDARD.encode(format!("x:{KEY}")),
            STANDARD.encode(format!("xy:{KEY}...")),
            URL_SAFE.encode(format!("z{PARTNER}")),
        ] {
            let out = s.scrub(&format!("auth {text} end"), false);
            assert_clean(&out);
            assert!(out.starts_with("auth ") && out.ends_with(" end"), "{out}");
            assert!(out.contains(REDACTED), "{out}");
        }
    }

    #[test]
    fn escaped_forms_in_any_mix() {
        let s = scrubber();
        let h = header();
        assert!(h.contains('/') && h.contains('+'));
        for text in [
            h.replace('/', "\\/"),
            h.replace('+', "\\u002B"),
            h.replace('+', "\\u002b").replace('/', "\\/"),
            h.replace('/', "\\u{2f}"),
            h.replace('/', "%2F")
                .replace('+', "%2B")
                .replace('=', "%3D"),
            // Escaped twice (JSON in JSON).
            h.replace('/', "\\\\\\/"),
            h.replace('+', "\\\\u002B"),
            // The partner key's `?` and `~` escaped, as Debug or JSON would leave them.
            PARTNER.replace('?', "\\u003f"),
            format!("{:?}", PARTNER),
            serde_json::to_string(&format!("\"{KEY}\"")).unwrap(),
        ] {
            let out = s.scrub(&format!("é {text} ü"), false);
            assert_clean(&out);
            assert!(out.starts_with("é ") && out.ends_with(" ü"), "{out}");
        }
    }

    #[test]
    fn non_ascii_text_and_secrets_keep_char_boundaries() {
        let secret = "ключ-🦀-secret-ü-0123456789";
        let s = Scrubber::new([secret]);
        assert_eq!(s.scrub(&format!("é{secret}é"), false), "é[REDACTED]é");
        let part: String = secret.chars().skip(2).take(14).collect();
        assert_eq!(s.scrub(&format!("🦀{part}🦀"), false), "🦀[REDACTED]🦀");
        let escaped = secret.replace('🦀', "\\ud83e\\udd80");
        assert_eq!(s.scrub(&format!("x {escaped}"), false), "x [REDACTED]");
        for cut in 0..=secret.chars().count() {
            let text: String = format!("é {secret}").chars().take(2 + cut).collect();
            let out = s.scrub(&text, true);
            assert!(out == "é " || out == "é [REDACTED]", "{cut}: {out}");
        }
    }

    #[test]
    fn a_cut_text_loses_a_trailing_start_of_any_form() {
        let s = scrubber();
        assert_eq!(s.scrub(&format!("boom {}", &KEY[..5]), true), "boom ");
        assert_eq!(
            s.scrub(&format!("boom {}", &KEY[..5]), false),
            format!("boom {}", &KEY[..5])
        );
        let h = header();
        assert_eq!(s.scrub(&format!("x {}", &h[..3]), true), "x ");
        assert_eq!(s.scrub(&format!("x {}", &h[..30]), true), "x ");
        // An escape cut short, and an escaped start.
        assert_eq!(s.scrub("x done!\\u00", true), "x done!");
        assert_eq!(s.scrub("x done!\\", true), "x done!");
        assert_eq!(s.scrub("x done!\\u{2", true), "x done!");
        // (Even one character that starts a form goes: "c" starts the key.)
        assert_eq!(s.scrub("x abc", true), "x ab");
        assert_eq!(s.scrub("x 50%", true), "x 50");
        let escaped = h.replace('/', "\\/");
        let cut_at = escaped.find("\\/").unwrap() + 1;
        assert_eq!(s.scrub(&format!("y {}", &escaped[..cut_at]), true), "y ");
        // A whole secret at the end is replaced, not removed.
        assert_eq!(s.scrub(&format!("z {KEY}"), true), "z [REDACTED]");
    }

    /// Every cut of a text holding the secrets in several forms scrubs clean, before and after
    /// a later cut to a length limit.
    #[test]
    fn every_cut_scrubs_clean() {
        let s = scrubber();
        let h = header();
        let text = format!(
            "é bad header {h}; {} GRADIENT-TOKEN: {} ü {}",
            STANDARD.encode(KEY),
            h.replace('/', "\\/"),
            URL_SAFE.encode(&h)
        );
        let chars: Vec<char> = text.chars().collect();
        for cut in 0..=chars.len() {
            let part: String = chars[..cut].iter().collect();
            let out = s.scrub(&part, true);
            assert_clean(&out);
            for limit in [10, 40, 100] {
                let short: String = out.chars().take(limit).collect();
                assert_clean(&short);
            }
        }
        assert_clean(&s.scrub(&text, false));
    }
}
