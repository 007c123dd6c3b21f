//! The `"message"` of a JSON error body that may be cut anywhere (the client reads at most
//! [`MAX_ERROR_BODY_BYTES`](crate::MAX_ERROR_BODY_BYTES) of it), which no JSON parser reads: a
//! small scanner of that one string, its escapes decoded.

/// The `"message"` string of a JSON object that may be cut anywhere, as far as it goes (all of
/// it: it is scrubbed before it is cut), with JSON escapes decoded; an escape cut short at the
/// end is dropped.
pub(super) fn partial_message(body: &str) -> Option<String> {
    if !body.trim_start().starts_with('{') {
        return None;
    }
    let at = body.find("\"message\"")?;
    let rest = body[at + "\"message\"".len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let mut chars = rest.strip_prefix('"')?.chars();
    let mut out = String::new();
    loop {
        match chars.next() {
            None | Some('"') => break,
            Some('\\') => match chars.next() {
                None => break,
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r' | 'b' | 'f') => out.push(' '),
                Some('u') => {
                    let Some(v) = hex4(chars.as_str()) else { break };
                    chars = chars.as_str()[4..].chars();
                    if !(0xD800..0xDC00).contains(&v) {
                        out.push(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER));
                        continue;
                    }
                    // A high surrogate: its low half should follow as `\uXXXX`.
                    let rest = chars.as_str();
                    let low = rest
                        .strip_prefix("\\u")
                        .and_then(hex4)
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    match low {
                        Some(low) => {
                            let c = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
                            out.push(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                            chars = rest[6..].chars();
                        }
                        None if rest.len() < 6
                            && rest.chars().enumerate().all(|(i, c)| match i {
                                0 => c == '\\',
                                1 => c == 'u',
                                _ => c.is_ascii_hexdigit(),
                            }) =>
                        {
                            break; // the pair was cut
                        }
                        None => out.push(char::REPLACEMENT_CHARACTER),
                    }
                }
                Some(other) => out.push(other),
            },
            Some(c) => out.push(c),
        }
    }
    Some(out)
}

/// The value of 4 hex digits at the start of `s`.
fn hex4(s: &str) -> Option<u32> {
    let digits = s.get(..4)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}
