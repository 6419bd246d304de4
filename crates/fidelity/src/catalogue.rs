//! The catalogue: every API interaction the product makes, plus the error cases it must
//! handle, as data (crates/fidelity/catalogue.yaml). A step is one request; it may capture
//! values (ids, tokens, revision numbers) for later steps as `${name}`, poll a resource with a
//! bounded wait, and register the clean-up that deletes what it created. It must not know
//! how requests are sent or compared.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::Error;

/// Which endpoint of the catalog a step talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Service {
    #[serde(rename = "identity")]
    Identity,
    #[serde(rename = "network")]
    Network,
    #[serde(rename = "load-balancer")]
    LoadBalancer,
}

/// The whole catalogue, in order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub steps: Vec<Step>,
}

/// One request and what to do with its answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique; diffs and the recording are keyed by it.
    pub name: String,
    pub service: Service,
    pub method: String,
    /// Path from the service root, with `${var}` substitution (query strings allowed).
    pub path: String,
    /// X-Auth-Token to send: absent = the run's admin token, `none` = no token, anything else
    /// (after substitution) is sent as is.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body; a string that is exactly `${var}` becomes the captured JSON value.
    #[serde(default)]
    pub body: Option<Value>,
    /// A body sent verbatim (for malformed JSON cases).
    #[serde(default)]
    pub raw_body: Option<String>,
    /// Status the real cloud answers; a run whose real answer differs is reported, so the
    /// catalogue cannot silently stop exercising the case it names.
    pub expect: u16,
    /// `var: /json/pointer` or `var: header:Name`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Response headers whose presence is compared (Content-Type is always compared).
    #[serde(default)]
    pub compare_headers: Vec<String>,
    /// Compare list lengths too (only for lists filtered down to objects this run made).
    #[serde(default)]
    pub compare_lengths: bool,
    #[serde(default)]
    pub poll: Option<Poll>,
    #[serde(default)]
    pub cleanup: Option<Cleanup>,
}

/// Re-read a resource until a value (or a status code) is reached, recording every distinct
/// value seen in order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    pub path: String,
    /// JSON pointer of the value to watch, e.g. `/loadbalancer/provisioning_status`.
    pub pointer: String,
    /// Stop when the value is one of these, or when the status code is (`"404"`).
    pub until: Vec<String>,
    #[serde(default = "default_poll_timeout")]
    pub timeout_s: u64,
}

fn default_poll_timeout() -> u64 {
    120
}

/// The request that removes what a step created; run in reverse order at the end of every
/// replay, whatever happened before. 404 counts as done; 409 (still PENDING) is retried.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cleanup {
    #[serde(default)]
    pub service: Option<Service>,
    #[serde(default = "default_delete")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub body: Option<Value>,
}

fn default_delete() -> String {
    "DELETE".into()
}

impl Catalogue {
    /// Parses and checks a catalogue (unique step names, captures well-formed).
    pub fn parse(text: &str, path: &str) -> Result<Self, Error> {
        let cat: Catalogue = serde_yaml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let mut seen = std::collections::BTreeSet::new();
        for s in &cat.steps {
            if !seen.insert(s.name.as_str()) {
                return Err(Error::Catalogue(format!("duplicate step name {}", s.name)));
            }
            for (var, from) in &s.capture {
                if !(from.starts_with('/') || from.starts_with("header:")) {
                    return Err(Error::Catalogue(format!(
                        "step {}: capture {var} from {from:?}: expected /pointer or header:Name",
                        s.name
                    )));
                }
            }
        }
        Ok(cat)
    }

    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }
}

/// `${name}` substitution in a string; the first unknown variable is the error.
pub fn substitute(text: &str, vars: &BTreeMap<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated ${{ in {text:?}"));
        };
        let name = &after[..end];
        match vars.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => return Err(name.to_string()),
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Substitution through a JSON body: a string that is exactly `${name}` takes the variable's
/// JSON value (so numbers and lists stay typed).
pub fn substitute_value(value: &Value, vars: &BTreeMap<String, Value>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                if !name.contains("${") && !name.contains('}') {
                    return vars
                        .get(name)
                        .filter(|v| !v.is_null())
                        .cloned()
                        .ok_or_else(|| name.to_string());
                }
            }
            Value::String(substitute(s, vars)?)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute_value(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((substitute(k, vars)?, substitute_value(v, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn substitution_keeps_types_and_names_missing_vars() {
        let vars: BTreeMap<String, Value> = [
            ("id".to_string(), json!("abc")),
            ("rev".to_string(), json!(3)),
        ]
        .into();
        assert_eq!(
            substitute("/x/${id}?r=${rev}", &vars).unwrap(),
            "/x/abc?r=3"
        );
        assert_eq!(substitute("${nope}", &vars).unwrap_err(), "nope");
        assert_eq!(
            substitute_value(&json!({"a": "${rev}", "b": ["p-${id}"]}), &vars).unwrap(),
            json!({"a": 3, "b": ["p-abc"]})
        );
    }

    #[test]
    fn duplicate_step_names_are_rejected() {
        let text = "steps:\n- {name: a, service: network, method: GET, path: /, expect: 200}\n- {name: a, service: network, method: GET, path: /, expect: 200}\n";
        assert!(Catalogue::parse(text, "t").is_err());
    }
}
