//! Small text helpers shared by the parsers. Pure.

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary: for quoting
/// outside input in an error message without ever splitting a character.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::prefix;

    #[test]
    fn a_prefix_never_splits_a_character() {
        assert_eq!(prefix("abc", 5), "abc");
        assert_eq!(prefix("abcdef", 3), "abc");
        // "é" is two bytes: a cut in its middle steps back before it.
        assert_eq!(prefix("aé", 2), "a");
        assert_eq!(prefix("aé", 3), "aé");
        assert_eq!(prefix("", 0), "");
        assert_eq!(prefix("€", 1), "");
    }
}
