//! The views of a text the scrubber searches: the text as it is, and with its escapes decoded
//! (JSON's `\X` and `\uXXXX`, Rust's `\u{X}`, URL `%XX` for ASCII), once and then again for text
//! that was escaped twice. Each character of a view knows the bytes of the text it stands for.

/// How many times escapes are decoded for the search (text escaped twice, e.g. JSON in JSON).
const DECODE_LEVELS: usize = 2;

/// One character of a view and the byte range of the text it stands for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unit {
    pub(super) ch: char,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// The text as it is, or with its escapes decoded.
pub(super) struct View {
    pub(super) units: Vec<Unit>,
    /// Where an escape sequence starts that the end of the text cut short (its characters are
    /// kept as they are).
    pub(super) cut_escape: Option<usize>,
}

/// The text as it is and decoded up to [`DECODE_LEVELS`] times (while decoding changes it).
pub(super) fn views(text: &str) -> Vec<View> {
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
