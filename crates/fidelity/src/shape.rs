//! The shape of a JSON answer: which keys are present, the JSON type of each value, and the
//! literal value of enum-like keys (statuses, protocols, algorithms, error types). Ids, names,
//! addresses and timestamps differ between any two clouds, so only their type is kept. It
//! must not know about HTTP or which service answered.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Keys whose string values are a closed set defined by the APIs; a different value is a
/// behavioural difference, not noise.
pub const ENUM_KEYS: &[&str] = &[
    "provisioning_status",
    "operating_status",
    "protocol",
    "lb_algorithm",
    "status",
    "device_owner",
    "type",
    "direction",
    "ethertype",
    "faultcode",
    "title",
    "http_method",
    "session_persistence",
    "interface",
    "ip_version",
    "code",
    "binding:vnic_type",
    "topology",
];

/// A JSON value reduced to what is compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Null,
    Bool,
    Number,
    String,
    /// The values seen for an enum key (one for a single object; several once list items merge).
    Enum(BTreeSet<String>),
    Object(BTreeMap<String, Shape>),
    /// `items` is the merge of every element's shape; `None` for an empty list.
    Array {
        len: usize,
        items: Option<Box<Shape>>,
    },
    /// List elements disagreed on the type of one key (e.g. `null` in one, a string in another).
    OneOf(BTreeSet<String>),
}

impl Shape {
    /// The shape of `value`; `key` is the object key it sits under (decides enum treatment).
    pub fn of(value: &Value) -> Shape {
        shape_under(None, value)
    }

    /// Short type name used in diffs.
    pub fn type_name(&self) -> String {
        match self {
            Shape::Null => "null".into(),
            Shape::Bool => "bool".into(),
            Shape::Number => "number".into(),
            Shape::String => "string".into(),
            Shape::Enum(values) => format!(
                "enum {}",
                values.iter().cloned().collect::<Vec<_>>().join("|")
            ),
            Shape::Object(_) => "object".into(),
            Shape::Array { .. } => "array".into(),
            Shape::OneOf(types) => types.iter().cloned().collect::<Vec<_>>().join("|"),
        }
    }

    /// The JSON type, ignoring enum values (an enum is a string).
    pub fn base_type(&self) -> &'static str {
        match self {
            Shape::Null => "null",
            Shape::Bool => "bool",
            Shape::Number => "number",
            Shape::String | Shape::Enum(_) => "string",
            Shape::Object(_) => "object",
            Shape::Array { .. } => "array",
            Shape::OneOf(_) => "mixed",
        }
    }

    /// One shape standing for two list elements.
    pub fn merge(self, other: Shape) -> Shape {
        match (self, other) {
            (Shape::Object(mut a), Shape::Object(b)) => {
                for (k, v) in b {
                    let merged = match a.remove(&k) {
                        Some(old) => old.merge(v),
                        None => v,
                    };
                    a.insert(k, merged);
                }
                Shape::Object(a)
            }
            (Shape::Enum(mut a), Shape::Enum(b)) => {
                a.extend(b);
                Shape::Enum(a)
            }
            (Shape::Array { len: la, items: ia }, Shape::Array { len: lb, items: ib }) => {
                Shape::Array {
                    len: la.max(lb),
                    items: match (ia, ib) {
                        (Some(a), Some(b)) => Some(Box::new(a.merge(*b))),
                        (a, b) => a.or(b),
                    },
                }
            }
            (a, b) if a == b => a,
            (a, b) => {
                let mut types = BTreeSet::new();
                for s in [a, b] {
                    match s {
                        Shape::OneOf(t) => types.extend(t),
                        other => {
                            types.insert(other.base_type().to_string());
                        }
                    }
                }
                Shape::OneOf(types)
            }
        }
    }
}

fn shape_under(key: Option<&str>, value: &Value) -> Shape {
    match value {
        Value::Null => Shape::Null,
        Value::Bool(_) => Shape::Bool,
        Value::Number(n) => {
            // ip_version and error codes are numbers with a closed set of values.
            if key.is_some_and(|k| ENUM_KEYS.contains(&k)) {
                Shape::Enum(BTreeSet::from([n.to_string()]))
            } else {
                Shape::Number
            }
        }
        Value::String(s) => {
            if key.is_some_and(|k| ENUM_KEYS.contains(&k)) {
                Shape::Enum(BTreeSet::from([s.clone()]))
            } else {
                Shape::String
            }
        }
        Value::Array(items) => Shape::Array {
            len: items.len(),
            items: items
                .iter()
                .map(|v| shape_under(key, v))
                .reduce(Shape::merge)
                .map(Box::new),
        },
        Value::Object(map) => Shape::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape_under(Some(k), v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_types_and_statuses_are_values() {
        let s = Shape::of(
            &json!({"loadbalancer": {"id": "x", "provisioning_status": "ACTIVE",
            "admin_state_up": true, "tags": [], "description": null}}),
        );
        let Shape::Object(top) = s else {
            panic!("object expected")
        };
        let Some(Shape::Object(lb)) = top.get("loadbalancer") else {
            panic!("inner object expected")
        };
        assert_eq!(lb["id"], Shape::String);
        assert_eq!(
            lb["provisioning_status"],
            Shape::Enum(BTreeSet::from(["ACTIVE".to_string()]))
        );
        assert_eq!(lb["admin_state_up"], Shape::Bool);
        assert_eq!(lb["description"], Shape::Null);
        assert_eq!(
            lb["tags"],
            Shape::Array {
                len: 0,
                items: None
            }
        );
    }

    #[test]
    fn list_items_merge_keys_and_types() {
        let s = Shape::of(&json!([{"a": 1, "d": "x"}, {"b": true, "d": null}]));
        let Shape::Array { len, items } = s else {
            panic!("array expected")
        };
        assert_eq!(len, 2);
        let Some(item) = items else {
            panic!("items expected")
        };
        let Shape::Object(keys) = *item else {
            panic!("object expected")
        };
        assert_eq!(keys.len(), 3);
        assert_eq!(
            keys["d"],
            Shape::OneOf(BTreeSet::from(["null".to_string(), "string".to_string()]))
        );
    }
}
