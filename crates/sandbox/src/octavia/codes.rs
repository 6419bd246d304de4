//! Octavia's `expected_codes` syntax ("200", "200,202", "200-204"): parsed once for
//! validation and again by the health monitors. It must not know HTTP clients.

/// Inclusive status ranges, or None when the text is not valid `expected_codes`.
pub fn parse(text: &str) -> Option<Vec<(u16, u16)>> {
    let text = text.trim();
    let three = |s: &str| -> Option<u16> {
        let s = s.trim();
        (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if let Some((a, b)) = text.split_once('-') {
        let (a, b) = (three(a)?, three(b)?);
        return (a <= b).then(|| vec![(a, b)]);
    }
    text.split(',').map(|c| three(c).map(|n| (n, n))).collect()
}

/// Whether `status` is one of the expected codes.
pub fn matches(ranges: &[(u16, u16)], status: u16) -> bool {
    ranges.iter().any(|(a, b)| (*a..=*b).contains(&status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("200"), Some(vec![(200, 200)]));
        assert_eq!(parse("200, 202"), Some(vec![(200, 200), (202, 202)]));
        assert_eq!(parse("200-204"), Some(vec![(200, 204)]));
        assert_eq!(parse("2xx"), None);
        assert_eq!(parse("204-200"), None);
        assert!(matches(&[(200, 204)], 203));
        assert!(!matches(&[(200, 200)], 500));
    }
}
