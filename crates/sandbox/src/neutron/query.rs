//! List semantics shared by every collection: query parsing, attribute and tag filters,
//! admin-only attributes, `fields=` and sort order.

use std::cmp::Ordering;

use serde_json::Value;

use super::attrs;
use super::kind::Kind;
use super::view::str_field;
use crate::errors::ApiError;
use crate::state::AuthContext;

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query string as ordered (key, value) pairs; keys may repeat.
pub(super) fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(super) fn values_of<'a>(q: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    q.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether a JSON attribute equals a query value, with Neutron's conversions
/// (booleans in any case, numbers, None for null).
fn value_matches(v: &Value, q: &str) -> bool {
    match v {
        Value::String(s) => s == q,
        Value::Bool(b) => attrs::to_bool(&Value::String(q.to_string())) == Some(*b),
        Value::Number(n) => n.to_string() == q,
        Value::Null => q.is_empty() || q == "None",
        _ => false,
    }
}

pub(super) fn tags_of(v: &Value) -> Vec<&str> {
    v.get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

const CONTROL_PARAMS: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "page_reverse",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "fixed_ips",
    "ip_address_substr",
];

/// Applies list filters; unknown filter names are a 400, as with Neutron's filter validation.
pub(super) fn filter(
    kind: Kind,
    items: Vec<Value>,
    q: &[(String, String)],
) -> Result<Vec<Value>, ApiError> {
    let known: std::collections::BTreeSet<&str> = kind
        .attrs()
        .iter()
        .map(|a| a.name)
        .chain([
            "id",
            "project_id",
            "tenant_id",
            "description",
            "status",
            "created_at",
            "updated_at",
            "revision_number",
        ])
        .collect();
    let mut filters: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut invalid: Vec<String> = Vec::new();
    for (k, _) in q {
        if CONTROL_PARAMS.contains(&k.as_str()) || filters.iter().any(|(f, _)| f == k) {
            continue;
        }
        let shown = items.first().is_some_and(|i| i.get(k.as_str()).is_some());
        if !known.contains(k.as_str()) && !shown {
            if !invalid.contains(&format!("'{k}'")) {
                invalid.push(format!("'{k}'"));
            }
            continue;
        }
        filters.push((k.as_str(), values_of(q, k)));
    }
    if !invalid.is_empty() {
        return Err(ApiError::neutron_bad_request(format!(
            "[{}] is invalid attribute for filtering",
            invalid.join(", ")
        )));
    }
    let split = |key: &str| -> Vec<String> {
        values_of(q, key)
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    };
    let tags_all = split("tags");
    let tags_any = split("tags-any");
    let not_tags = split("not-tags");
    let not_tags_any = split("not-tags-any");
    // fixed_ips=ip_address=X / fixed_ips=subnet_id=Y (ports only).
    let fixed: Vec<(String, String)> = values_of(q, "fixed_ips")
        .iter()
        .filter_map(|v| {
            v.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    Ok(items
        .into_iter()
        .filter(|item| {
            filters.iter().all(|(k, vals)| {
                let v = item.get(*k).unwrap_or(&Value::Null);
                vals.iter().any(|q| value_matches(v, q))
            })
        })
        .filter(|item| {
            let tags = tags_of(item);
            tags_all.iter().all(|t| tags.contains(&t.as_str()))
                && (tags_any.is_empty() || tags_any.iter().any(|t| tags.contains(&t.as_str())))
                && (not_tags.is_empty() || !not_tags.iter().all(|t| tags.contains(&t.as_str())))
                && !not_tags_any.iter().any(|t| tags.contains(&t.as_str()))
        })
        .filter(|item| {
            if fixed.is_empty() {
                return true;
            }
            let ips = item
                .get("fixed_ips")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // As Neutron's SQL: values of one key are alternatives (IN), different keys must
            // all hold for the same allocation (checked against the real Neutron 29).
            let matches = |ip: &Value, key: &str, want: &str| match key {
                "ip_address_substr" => str_field(ip, "ip_address").contains(want),
                k => str_field(ip, k) == want,
            };
            ips.iter().any(|ip| {
                let mut keys: Vec<&str> = fixed.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort_unstable();
                keys.dedup();
                keys.iter().all(|key| {
                    fixed
                        .iter()
                        .filter(|(k, _)| k == key)
                        .any(|(k, want)| matches(ip, k, want))
                })
            })
        })
        .collect())
}

/// Attributes Neutron's default policy shows to admins only.
fn admin_only_attributes(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Network => &[
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        ],
        Kind::Port => &[
            "binding:host_id",
            "binding:profile",
            "binding:vif_type",
            "binding:vif_details",
        ],
        Kind::Router => &["distributed", "ha"],
        _ => &[],
    }
}

/// What `ctx` may see of a resource: admins see everything, others not the admin-only keys.
pub(super) fn policy_view(kind: Kind, mut v: Value, ctx: &AuthContext) -> Value {
    if !ctx.is_admin() {
        if let Some(m) = v.as_object_mut() {
            for k in admin_only_attributes(kind) {
                m.remove(*k);
            }
        }
    }
    v
}

/// Keeps only the requested `fields` (all when none are requested).
pub(super) fn select_fields(v: Value, fields: &[&str]) -> Value {
    if fields.is_empty() {
        return v;
    }
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| fields.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

pub(super) fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn query_parsing_decodes_and_keeps_repeats() {
        let q = parse_query(Some(
            "fields=id&fields=name&name=a%20b&tags=x,y&router%3Aexternal=True",
        ));
        assert_eq!(values_of(&q, "fields"), vec!["id", "name"]);
        assert_eq!(values_of(&q, "name"), vec!["a b"]);
        assert_eq!(values_of(&q, "router:external"), vec!["True"]);
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }

    #[test]
    fn filters_tags_and_unknown_keys() {
        let items = vec![
            json!({"id": "1", "name": "a", "tags": ["x", "y"], "shared": true}),
            json!({"id": "2", "name": "b", "tags": ["y"], "shared": false}),
        ];
        let run = |q: &str| {
            filter(Kind::Network, items.clone(), &parse_query(Some(q))).map(|v| {
                v.iter()
                    .map(|i| str_field(i, "id").to_string())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(run("tags=x,y").unwrap(), vec!["1"]);
        assert_eq!(run("tags-any=x&tags-any=y").unwrap(), vec!["1", "2"]);
        assert_eq!(run("not-tags=x").unwrap(), vec!["2"]);
        assert_eq!(run("not-tags-any=y").unwrap(), Vec::<String>::new());
        assert_eq!(run("shared=TRUE").unwrap(), vec!["1"]);
        assert_eq!(run("name=a&name=b").unwrap(), vec!["1", "2"]);
        assert!(run("colour=red").is_err());
    }
}
