//! `template::Template::parse` and `Template::expand` on arbitrary text and values.
//!
//! Input framing: the first line (up to `\n`) is the template text; each further line is
//! the value of the next placeholder in `Placeholder::ALL` order (missing lines = no
//! value; an empty line = empty value, which counts as missing).
//!
//! Checks:
//! 1. Parsing and expansion never panic.
//! 2. A parsed template round-trips: `as_str()`/`Display` give the input back, and
//!    `placeholders()` are exactly the known `{name}`s found in the text.
//! 3. A parsed template never expands to text holding an unexpanded placeholder: with
//!    values free of braces, the output holds no `{` or `}` at all.
//! 4. Expansion fails iff a used placeholder has no (or an empty) value, and then names
//!    the first such placeholder in template order.
//! 5. With every value present, expansion succeeds and its output length is bounded by
//!    the literals plus the values.
#![no_main]

use contentstack_edge_purge::template::{Placeholder, Template};
use libfuzzer_sys::fuzz_target;

/// Known `{name}` occurrences in `text`, left to right (reference scan).
fn known_in_text(text: &str) -> Vec<Placeholder> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                if let Some(p) = Placeholder::from_name(&after[..close]) {
                    out.push(p);
                }
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let source = lines.next().unwrap_or_default();
    let values: Vec<&str> = lines.take(Placeholder::ALL.len()).collect();
    let value_of = |p: Placeholder| -> Option<&str> {
        let i = Placeholder::ALL.iter().position(|q| *q == p)?;
        values.get(i).copied()
    };

    let Ok(t) = Template::parse(source) else {
        // Also exercise the error's Display (it quotes the template).
        if let Err(e) = Template::parse(source) {
            let _ = e.to_string();
        }
        return;
    };

    // 2: round trip.
    assert_eq!(t.as_str(), source);
    assert_eq!(t.to_string(), source);
    let mut seen = Vec::new();
    for p in known_in_text(source) {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    assert_eq!(t.placeholders(), seen, "placeholders() of {source:?}");
    for p in Placeholder::ALL {
        assert_eq!(t.uses(p), seen.contains(&p));
    }
    // Parsed text has braces only around known placeholders.
    let literal_braces = t.literals().any(|l| l.contains(['{', '}']));
    assert!(!literal_braces, "a literal holds a brace in {source:?}");

    // 4: expansion with the fuzzed values.
    let first_missing = seen
        .iter()
        .copied()
        .find(|&p| value_of(p).is_none_or(str::is_empty));
    match t.expand(value_of) {
        Ok(out) => {
            assert_eq!(first_missing, None, "expanded despite a missing value");
            // 3: no unexpanded placeholder.
            let values_brace_free = values.iter().all(|v| !v.contains(['{', '}']));
            if values_brace_free {
                assert!(
                    !out.contains(['{', '}']),
                    "expansion of {source:?} left a brace: {out:?}"
                );
            }
        }
        Err(p) => assert_eq!(Some(p), first_missing, "wrong missing placeholder"),
    }

    // 5: every value present (brace-free, derived from the placeholder name).
    let full = |p: Placeholder| -> Option<&'static str> {
        Some(match p {
            Placeholder::BaseUrl => "https://example.com/",
            Placeholder::Url => "/blog/a",
            other => other.name(),
        })
    };
    let out = t.expand(full).expect("every value present");
    assert!(
        !out.contains(['{', '}']),
        "unexpanded placeholder in {out:?}"
    );
    for p in Placeholder::ALL {
        assert!(!out.contains(&p.to_string()));
    }
    let literal_len: usize = t.literals().map(str::len).sum();
    let max_value = 20;
    assert!(out.len() <= literal_len + max_value * source.matches('{').count());
});
