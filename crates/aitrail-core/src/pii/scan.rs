//! One-pass detection of PII in free text: emails, phone numbers, payment card numbers
//! (Luhn-checked), US SSNs, IBANs (ISO 13616 mod-97 checked) and IP addresses.
//!
//! The scanner walks the bytes once. Most bytes are letters inside words and are skipped a
//! word at a time; a detector runs only where a token starts (a digit, `+`, `(`, an
//! uppercase letter or a hex letter after a boundary) and at each `@`. Look-alikes are kept
//! out by boundaries (a number glued to letters, dots, dashes or slashes is part of an
//! identifier: versions, order numbers, UUIDs, paths) and by checksums.

use std::ops::Range;

/// The kinds of PII found in free text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Email,
    Phone,
    Card,
    Ssn,
    Iban,
    Ip,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Email,
        Kind::Phone,
        Kind::Card,
        Kind::Ssn,
        Kind::Iban,
        Kind::Ip,
    ];

    /// The tag in tokens: `⟦EMAIL:…⟧`.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::Card => "CARD",
            Kind::Ssn => "SSN",
            Kind::Iban => "IBAN",
            Kind::Ip => "IP",
        }
    }

    /// The name in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Card => "card",
            Kind::Ssn => "ssn",
            Kind::Iban => "iban",
            Kind::Ip => "ip",
        }
    }
}

/// One finding: its kind and its byte range in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    pub range: Range<usize>,
}

const ALNUM: u8 = 1;
const DIGIT: u8 = 2;
const UPPER: u8 = 4;
const HEX: u8 = 8;
/// Bytes that glue a number to an identifier when they come right before it.
const GLUE: u8 = 16;
const LOCAL: u8 = 32;

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut v = 0;
        if c.is_ascii_alphanumeric() {
            v |= ALNUM | GLUE | LOCAL;
        }
        if c.is_ascii_digit() {
            v |= DIGIT | HEX;
        }
        if c.is_ascii_uppercase() {
            v |= UPPER;
        }
        if matches!(c, b'a'..=b'f' | b'A'..=b'F') {
            v |= HEX;
        }
        if matches!(c, b'.' | b'-' | b'_' | b'/' | b'\\') {
            v |= GLUE;
        }
        if matches!(c, b'.' | b'-' | b'_' | b'+' | b'%') {
            v |= LOCAL;
        }
        if c >= 0x80 {
            // Inside a multi-byte UTF-8 character: part of a word.
            v |= ALNUM | GLUE;
        }
        t[b] = v;
        b += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

#[inline]
fn is(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

/// Every PII finding in `text`, in order, not overlapping.
pub fn scan(text: &str) -> Vec<Found> {
    let s = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Where the last finding ended: an email's local part never reaches back past it.
    let mut floor = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'@' {
            if let Some(r) = email(s, i, floor) {
                floor = r.end;
                i = r.end;
                out.push(Found {
                    kind: Kind::Email,
                    range: r,
                });
            } else {
                i += 1;
            }
            continue;
        }
        let glued = i > 0 && is(s[i - 1], GLUE);
        if !glued && (is(b, ALNUM) || b == b'+' || b == b'(' || b == b':') {
            if let Some((kind, end)) = token(s, i) {
                // A token followed by `@` is the local part of an email, not a finding.
                if s.get(end) != Some(&b'@') {
                    out.push(Found {
                        kind,
                        range: i..end,
                    });
                    floor = end;
                    i = end;
                    continue;
                }
            }
        }
        // Skip the rest of this word (letters, digits and the glue inside identifiers).
        if is(b, GLUE) {
            i += 1;
            while i < s.len() && is(s[i], GLUE) {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The detectors for a token starting at `i` (after a boundary), most specific first.
fn token(s: &[u8], i: usize) -> Option<(Kind, usize)> {
    let b = s[i];
    if is(b, DIGIT) {
        if let Some(e) = ssn(s, i) {
            return Some((Kind::Ssn, e));
        }
        if let Some(e) = card(s, i) {
            return Some((Kind::Card, e));
        }
        if let Some(e) = ipv4(s, i) {
            return Some((Kind::Ip, e));
        }
        if let Some(e) = phone(s, i) {
            return Some((Kind::Phone, e));
        }
    } else if b == b'+' || b == b'(' {
        return phone(s, i).map(|e| (Kind::Phone, e));
    } else if is(b, UPPER) {
        if let Some(e) = iban(s, i) {
            return Some((Kind::Iban, e));
        }
    }
    if is(b, HEX) || b == b':' {
        return ipv6(s, i).map(|e| (Kind::Ip, e));
    }
    None
}

/// Whether a token may end at `e`: not followed by a letter or digit, nor by `.`, `-`, `_`
/// or `/` that continue an identifier.
fn ends(s: &[u8], e: usize) -> bool {
    match s.get(e) {
        None => true,
        Some(&c) if is(c, ALNUM) => false,
        Some(b'.' | b'-' | b'_' | b'/' | b'@') => !s.get(e + 1).is_some_and(|&n| is(n, ALNUM)),
        Some(_) => true,
    }
}

fn digits_at(s: &[u8], i: usize, max: usize) -> usize {
    s[i..]
        .iter()
        .take(max + 1)
        .take_while(|&&c| c.is_ascii_digit())
        .count()
}

/// US SSN `AAA-GG-SSSS` (dashes required): area not 000, 666 or 9xx; group and serial not 0.
fn ssn(s: &[u8], i: usize) -> Option<usize> {
    let t = s.get(i..i + 11)?;
    let shape = t.iter().enumerate().all(|(k, &c)| {
        if k == 3 || k == 6 {
            c == b'-'
        } else {
            c.is_ascii_digit()
        }
    });
    if !shape || !ends(s, i + 11) {
        return None;
    }
    let area = &t[..3];
    if area == b"000"
        || area == b"666"
        || area[0] == b'9'
        || &t[4..6] == b"00"
        || &t[7..] == b"0000"
    {
        return None;
    }
    Some(i + 11)
}

/// Luhn check over ASCII digits (ISO/IEC 7812-1 annex B).
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Digit groups separated by one `sep`-class byte: (digits, end of each group).
fn groups(s: &[u8], i: usize, seps: &[u8], max_digits: usize) -> (Vec<u8>, Vec<usize>) {
    let mut digits = Vec::with_capacity(20);
    let mut ends = Vec::new();
    let mut j = i;
    let mut sep: Option<u8> = None;
    loop {
        let n = digits_at(s, j, max_digits);
        if n == 0 {
            break;
        }
        digits.extend_from_slice(&s[j..j + n]);
        j += n;
        ends.push(j);
        if digits.len() > max_digits {
            break;
        }
        match s.get(j) {
            Some(&c) if seps.contains(&c) && sep.is_none_or(|p| p == c) => {
                if !s.get(j + 1).is_some_and(u8::is_ascii_digit) {
                    break;
                }
                sep = Some(c);
                j += 1;
            }
            _ => break,
        }
    }
    (digits, ends)
}

/// A payment card number: 13 to 19 digits, compact or in the printed groupings (4-4-4-4,
/// 4-4-4-4-3, 4-6-5, 4-6-4) separated by one space or dash, starting with 2-6 (the issuer
/// ranges in use) and passing the Luhn check.
fn card(s: &[u8], i: usize) -> Option<usize> {
    const LAYOUTS: &[&[usize]] = &[&[4, 4, 4, 4], &[4, 4, 4, 4, 3], &[4, 6, 5], &[4, 6, 4]];
    if !(b'2'..=b'6').contains(&s[i]) {
        return None;
    }
    let (digits, group_ends) = groups(s, i, b" -", 19);
    let mut sizes = Vec::with_capacity(group_ends.len());
    let mut from = i;
    for &e in &group_ends {
        sizes.push(e - from);
        from = e + 1;
    }
    // Longest first: a card may be followed by more digits (a year, an amount).
    for k in (1..=sizes.len()).rev() {
        let count: usize = sizes[..k].iter().sum();
        let layout_ok = if k == 1 {
            (13..=19).contains(&count)
        } else {
            LAYOUTS.contains(&&sizes[..k])
        };
        if layout_ok && luhn(&digits[..count]) && ends(s, group_ends[k - 1]) {
            return Some(group_ends[k - 1]);
        }
    }
    None
}

/// IPv4 dotted quad, each part 0-255 without leading zeros.
fn ipv4(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for part in 0..4 {
        let n = digits_at(s, j, 3);
        if n == 0 || n > 3 || (n > 1 && s[j] == b'0') {
            return None;
        }
        let v: u32 = s[j..j + n]
            .iter()
            .fold(0, |a, &c| a * 10 + u32::from(c - b'0'));
        if v > 255 {
            return None;
        }
        j += n;
        if part < 3 {
            if s.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    ends(s, j).then_some(j)
}

/// IPv6: eight groups of 1-4 hex digits, or fewer with one `::` (RFC 4291 §2.2, without an
/// embedded IPv4 tail).
fn ipv6(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    let (mut groups, mut hex_digits) = (0, 0);
    let mut compressed = false;
    if s[j..].starts_with(b"::") {
        compressed = true;
        j += 2;
    }
    loop {
        let n = s[j..].iter().take(5).take_while(|&&c| is(c, HEX)).count();
        if n == 0 {
            break;
        }
        if n > 4 {
            return None;
        }
        j += n;
        groups += 1;
        hex_digits += n;
        if s[j..].starts_with(b"::") {
            if compressed {
                return None;
            }
            compressed = true;
            j += 2;
        } else if s.get(j) == Some(&b':') && s.get(j + 1).is_some_and(|&c| is(c, HEX)) {
            j += 1;
        } else {
            break;
        }
    }
    let ok = if compressed {
        (1..=7).contains(&groups) && (groups >= 2 && hex_digits >= 4 || s[i] == b':')
    } else {
        groups == 8
    };
    (ok && s.get(j) != Some(&b':') && ends(s, j)).then_some(j)
}

/// A phone number: `+` and 8-15 digits (E.164) in groups, or a national number of 10-11
/// digits in at least three groups separated by one space, dash or dot, the last of at least
/// four digits, optionally with the area code in parentheses: `(555) 123-4567`.
fn phone(s: &[u8], i: usize) -> Option<usize> {
    let plus = s[i] == b'+';
    let mut j = if plus { i + 1 } else { i };
    let (mut digits, mut group_count, mut last, mut end) = (0, 0, 0, j);
    loop {
        let paren = s.get(j) == Some(&b'(');
        let n = if paren {
            let n = digits_at(s, j + 1, 5);
            if n == 0 || n > 5 || s.get(j + 1 + n) != Some(&b')') {
                break;
            }
            j += n + 2;
            n
        } else {
            let n = digits_at(s, j, 15);
            if n == 0 {
                break;
            }
            j += n;
            n
        };
        digits += n;
        group_count += 1;
        last = n;
        end = j;
        let next_starts = |k: usize| s.get(k).is_some_and(|&c| c.is_ascii_digit() || c == b'(');
        match s.get(j) {
            Some(b' ' | b'-' | b'.') if next_starts(j + 1) => j += 1,
            Some(c) if paren && c.is_ascii_digit() => {}
            _ => break,
        }
    }
    let ok = if plus {
        (8..=15).contains(&digits) && (group_count == 1 || last >= 2)
    } else {
        (10..=11).contains(&digits) && group_count >= 3 && last >= 4
    };
    (ok && ends(s, end)).then_some(end)
}

/// An IBAN: country letters, two check digits and an 11-30 character BBAN, compact or in
/// groups of four separated by single spaces; valid when its ISO 13616 mod-97 remainder is 1.
fn iban(s: &[u8], i: usize) -> Option<usize> {
    let head = s.get(i..i + 4)?;
    if !(is(head[0], UPPER)
        && is(head[1], UPPER)
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
    {
        return None;
    }
    let run = |k: usize, max: usize| {
        s[k.min(s.len())..]
            .iter()
            .take(max)
            .take_while(|&&c| c.is_ascii_digit() || is(c, UPPER))
            .count()
    };
    let n = run(i, 35);
    if (15..=34).contains(&n) && ends(s, i + n) && mod97(&s[i..i + n]) == 1 {
        return Some(i + n);
    }
    if n != 4 {
        return None;
    }
    let mut chars = head.to_vec();
    let mut cuts = Vec::new();
    let mut j = i + 4;
    while s.get(j) == Some(&b' ') && chars.len() < 34 {
        let n = run(j + 1, 5);
        if n == 0 || n > 4 {
            break;
        }
        chars.extend_from_slice(&s[j + 1..j + 1 + n]);
        j += 1 + n;
        cuts.push((chars.len(), j));
        if n < 4 {
            break;
        }
    }
    cuts.into_iter()
        .rev()
        .find(|&(len, e)| (15..=34).contains(&len) && ends(s, e) && mod97(&chars[..len]) == 1)
        .map(|(_, e)| e)
}

/// ISO 13616 / ISO 7064 mod 97-10 over an IBAN: the first four characters moved to the end,
/// letters as 10-35.
pub fn mod97(iban: &[u8]) -> u32 {
    let mut r = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        r = if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    r
}

/// An email at the `@` at `at`: a local part of `[A-Za-z0-9._%+-]` (not before `floor`) and
/// a domain of at least two labels ending in a top-level domain of two or more letters.
fn email(s: &[u8], at: usize, floor: usize) -> Option<Range<usize>> {
    let mut start = at;
    while start > floor && at - start < 64 && is(s[start - 1], LOCAL) {
        start -= 1;
    }
    while start < at && !is(s[start], ALNUM) {
        start += 1;
    }
    if start == at {
        return None;
    }
    let mut j = at + 1;
    let mut labels = 0;
    let mut last_label;
    loop {
        let begin = j;
        while j < s.len() && (is(s[j], ALNUM) && s[j] < 0x80 || s[j] == b'-') {
            j += 1;
        }
        if j == begin || s[begin] == b'-' {
            return None;
        }
        labels += 1;
        last_label = (begin, j);
        if s.get(j) == Some(&b'.') && s.get(j + 1).is_some_and(|&c| is(c, ALNUM) && c < 0x80) {
            j += 1;
        } else {
            break;
        }
    }
    let tld = &s[last_label.0..last_label.1];
    (labels >= 2 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)).then_some(start..j)
}
