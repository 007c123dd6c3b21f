//! The scrubbing rule, case by case: whole secrets, runs of twelve, base64 at every alignment,
//! escapes in any mix, cut texts.

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
