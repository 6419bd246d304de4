//! Scalar value syntaxes shared by cloud.conf and annotations: gcfg booleans, Go-style
//! durations (plus bare seconds), unsigned integers, comma lists and label selectors. Each
//! parser returns `None`/`Err(accepted forms)` and leaves naming the key to the caller; it must
//! not know which key it is parsing.

use std::time::Duration;

/// The boolean spellings gcfg accepts, case-insensitively.
pub const BOOL_ACCEPTED: &str = "true/false, yes/no, on/off, 1/0";

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

pub const DURATION_ACCEPTED: &str =
    "a Go duration such as 500ms, 30s, 1m, 1m30s, 1.5h (units ns, us, ms, s, m, h) or bare seconds such as 30";

/// Go's `time.ParseDuration` syntax, minus negative values, plus bare integers meaning seconds
/// (what the in-tree provider's files use).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('+') {
        return parse_duration(rest);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().ok().map(Duration::from_secs);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * nanos_per_unit;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total.round() as u64))
}

/// Decimal or `0x` hexadecimal, as gcfg reads integers.
pub fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `a, b ,c` → `["a", "b", "c"]`, empty items dropped.
pub fn comma_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

pub const SELECTOR_ACCEPTED: &str =
    "comma-separated label requirements key=value or key (key must exist), e.g. role=worker,ingress";

/// `k=v,k2` → `[("k", Some("v")), ("k2", None)]`; label keys and values must be valid
/// Kubernetes label syntax, otherwise an error describing the bad part.
pub fn parse_node_selector(s: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (part, None),
        };
        if !is_label_key(key) {
            return Err(format!("{key:?} is not a valid label key"));
        }
        if let Some(v) = value {
            if !is_label_value(v) {
                return Err(format!("{v:?} is not a valid label value"));
            }
        }
        out.push((key.to_string(), value.map(str::to_string)));
    }
    Ok(out)
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

fn is_label_key(s: &str) -> bool {
    match s.rsplit_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    let b = l.as_bytes();
                    !l.is_empty()
                        && l.len() <= 63
                        && b[0].is_ascii_alphanumeric()
                        && b[b.len() - 1].is_ascii_alphanumeric()
                        && b.iter()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                })
                && is_label_name(name)
        }
        None => is_label_name(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("2us"), Some(Duration::from_micros(2)));
        for bad in ["", "-1s", "1d", "s", "1m30", "1.2.3s", "abc", "1 m"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn gcfg_booleans() {
        for t in ["true", "TRUE", "yes", "Yes", "on", "1", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "no", "OFF", "0", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("y"), None);
        assert_eq!(parse_bool("2"), None);
    }

    #[test]
    fn integers_and_lists() {
        assert_eq!(parse_u32("3"), Some(3));
        assert_eq!(parse_u32("0x10"), Some(16));
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(comma_list(" a, b,,c "), vec!["a", "b", "c"]);
    }

    #[test]
    fn node_selectors() {
        assert_eq!(
            parse_node_selector("role=worker, example.com/gpu").unwrap(),
            vec![
                ("role".into(), Some("worker".into())),
                ("example.com/gpu".into(), None)
            ]
        );
        assert_eq!(
            parse_node_selector("a=").unwrap(),
            vec![("a".into(), Some(String::new()))]
        );
        assert!(parse_node_selector("bad key=x").is_err());
        assert!(parse_node_selector("k=v v").is_err());
        assert!(parse_node_selector("-k").is_err());
        assert!(parse_node_selector("Upper.Case/x").is_err());
    }
}
