//! List semantics shared by every collection: attribute-equality filters, the tags filters,
//! `fields=`, sorting and Octavia's marker pagination with `<plural>_links`. It must not know
//! which objects it lists.

use serde_json::{json, Map, Value};

use super::error::LbError;

/// Parameters that are not attribute filters.
const RESERVED: &[&str] = &[
    "limit",
    "marker",
    "page_reverse",
    "sort",
    "sort_key",
    "sort_dir",
    "fields",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
];

/// A parsed list query.
#[derive(Debug, Default)]
pub struct ListQuery {
    filters: Vec<(String, String)>,
    tags: Vec<String>,
    tags_any: Vec<String>,
    not_tags: Vec<String>,
    not_tags_any: Vec<String>,
    fields: Vec<String>,
    limit: Option<usize>,
    marker: Option<String>,
    page_reverse: bool,
    sort: Vec<(String, bool)>,
    raw: Vec<(String, String)>,
}

fn split_list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on" | "t" | "y"
    )
}

impl ListQuery {
    pub fn parse(params: &[(String, String)]) -> Result<Self, LbError> {
        let mut q = ListQuery {
            raw: params.to_vec(),
            ..Default::default()
        };
        for (k, v) in params {
            match k.as_str() {
                "tags" => q.tags.extend(split_list(v)),
                "tags-any" => q.tags_any.extend(split_list(v)),
                "not-tags" => q.not_tags.extend(split_list(v)),
                "not-tags-any" => q.not_tags_any.extend(split_list(v)),
                "fields" => q.fields.extend(split_list(v)),
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| {
                        LbError::bad_request(format!(
                            "Supplied pagination limit '{v}' is not valid."
                        ))
                    })?;
                    // Octavia treats a non-positive limit as "no limit".
                    q.limit = usize::try_from(n).ok().filter(|n| *n > 0);
                }
                "marker" => q.marker = Some(v.clone()),
                "page_reverse" => q.page_reverse = truthy(v),
                "sort" => {
                    for part in split_list(v) {
                        let (key, dir) = part.split_once(':').unwrap_or((part.as_str(), "asc"));
                        q.sort.push((key.to_string(), parse_dir(dir)?));
                    }
                }
                "sort_key" => {
                    for key in split_list(v) {
                        q.sort.push((key, true));
                    }
                }
                "sort_dir" => {
                    let asc = parse_dir(v)?;
                    for s in &mut q.sort {
                        s.1 = asc;
                    }
                }
                _ => {}
            }
        }
        for (k, v) in params {
            if !RESERVED.contains(&k.as_str()) {
                q.filters.push((k.clone(), v.clone()));
            }
        }
        Ok(q)
    }

    /// The filter on one attribute, if given (e.g. `project_id`).
    pub fn filter(&self, key: &str) -> Option<&str> {
        self.filters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn matches(&self, obj: &Map<String, Value>) -> bool {
        for (k, want) in &self.filters {
            // Unknown attributes are ignored, as Octavia's API layer drops them.
            let Some(have) = obj.get(k) else { continue };
            if !value_equals(have, want) {
                return false;
            }
        }
        let tags: Vec<&str> = obj
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let has = |t: &String| tags.contains(&t.as_str());
        (self.tags.is_empty() || self.tags.iter().all(has))
            && (self.tags_any.is_empty() || self.tags_any.iter().any(has))
            && (self.not_tags.is_empty() || !self.not_tags.iter().all(has))
            && (self.not_tags_any.is_empty() || !self.not_tags_any.iter().any(has))
    }

    /// Filters, sorts, paginates and trims rendered objects. `base_url` is the collection URL
    /// used for the links. Returns the page and its links.
    pub fn apply(
        &self,
        items: Vec<Value>,
        base_url: &str,
    ) -> Result<(Vec<Value>, Vec<Value>), LbError> {
        let mut items: Vec<Value> = items
            .into_iter()
            .filter(|v| v.as_object().is_some_and(|o| self.matches(o)))
            .collect();
        if !self.sort.is_empty() {
            items.sort_by(|a, b| {
                for (key, asc) in &self.sort {
                    let ord = compare(a.get(key), b.get(key));
                    let ord = if *asc { ord } else { ord.reverse() };
                    if ord != std::cmp::Ordering::Equal {
                        return ord;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
        let mut links = Vec::new();
        if let Some(limit) = self.limit {
            let pos = match &self.marker {
                Some(m) => Some(
                    items
                        .iter()
                        .position(|v| v.get("id").and_then(Value::as_str) == Some(m.as_str()))
                        .ok_or_else(|| {
                            LbError::bad_request(format!(
                                "Supplied pagination marker '{m}' is not valid."
                            ))
                        })?,
                ),
                None => None,
            };
            let page: Vec<Value> = if self.page_reverse {
                let end = pos.unwrap_or(items.len());
                items[end.saturating_sub(limit)..end].to_vec()
            } else {
                let start = pos.map_or(0, |p| p + 1).min(items.len());
                let end = (start + limit).min(items.len());
                items[start..end].to_vec()
            };
            // As Octavia: a full page always offers "next" (it does not look ahead), and
            // any page reached through a marker offers "previous".
            let more_after = page.len() >= limit;
            let more_before = self.marker.is_some();
            // Octavia's links carry only limit, the sort and the marker: every filter of the
            // request is dropped (octavia/api/common/pagination.py), so a client that follows
            // them verbatim lists unfiltered pages. Mimicked so our client is tested for it.
            let keep: Vec<(String, String)> = self
                .raw
                .iter()
                .filter(|(k, _)| matches!(k.as_str(), "sort" | "sort_key" | "sort_dir"))
                .cloned()
                .collect();
            let href = |marker: &str, reverse: bool| {
                let mut q = vec![format!("limit={limit}")];
                for (k, v) in &keep {
                    q.push(format!("{}={}", encode(k), encode(v)));
                }
                q.push(format!("marker={}", encode(marker)));
                if reverse {
                    q.push("page_reverse=True".to_string());
                }
                format!("{base_url}?{}", q.join("&"))
            };
            let first = page
                .first()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str);
            let last = page
                .last()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str);
            if let (true, Some(last)) = (more_after, last) {
                links.push(json!({"href": href(last, false), "rel": "next"}));
            }
            if let (true, Some(first)) = (more_before, first) {
                links.push(json!({"href": href(first, true), "rel": "previous"}));
            }
            items = page;
        }
        if !self.fields.is_empty() {
            items = items
                .into_iter()
                .map(|v| match v {
                    Value::Object(o) => Value::Object(
                        o.into_iter()
                            .filter(|(k, _)| self.fields.iter().any(|f| f == k))
                            .collect(),
                    ),
                    other => other,
                })
                .collect();
        }
        Ok((items, links))
    }

    /// Trims one rendered object to `fields=` (GET of a single object honours it too).
    pub fn trim(&self, v: Value) -> Value {
        if self.fields.is_empty() {
            return v;
        }
        match v {
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .filter(|(k, _)| self.fields.iter().any(|f| f == k))
                    .collect(),
            ),
            other => other,
        }
    }
}

fn parse_dir(dir: &str) -> Result<bool, LbError> {
    match dir.to_ascii_lowercase().as_str() {
        "asc" => Ok(true),
        "desc" => Ok(false),
        _ => Err(LbError::bad_request(format!(
            "Supplied sort direction '{dir}' is not valid."
        ))),
    }
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Some(x), Some(y)) => text(x).cmp(&text(y)),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Query values compare with the attribute's string form; booleans case-insensitively.
fn value_equals(have: &Value, want: &str) -> bool {
    match have {
        Value::Bool(b) => {
            let w = want.to_ascii_lowercase();
            (w == "true" || w == "1") == *b && matches!(w.as_str(), "true" | "false" | "1" | "0")
        }
        Value::Null => want.is_empty() || want.eq_ignore_ascii_case("none") || want == "null",
        Value::Array(items) => items.iter().any(|i| value_equals(i, want)),
        other => text(other) == want,
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> ListQuery {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        ListQuery::parse(&v).unwrap()
    }

    fn items() -> Vec<Value> {
        (0..5)
            .map(|i| json!({"id": format!("id{i}"), "name": format!("n{i}"), "admin_state_up": i % 2 == 0,
                            "tags": if i < 2 { json!(["a", "b"]) } else { json!(["b"]) }}))
            .collect()
    }

    #[test]
    fn filters_and_tags() {
        let (page, _) = q(&[("name", "n1")]).apply(items(), "u").unwrap();
        assert_eq!(page.len(), 1);
        let (page, _) = q(&[("admin_state_up", "True")])
            .apply(items(), "u")
            .unwrap();
        assert_eq!(page.len(), 3);
        let (page, _) = q(&[("tags", "a,b")]).apply(items(), "u").unwrap();
        assert_eq!(page.len(), 2);
        let (page, _) = q(&[("not-tags-any", "a")]).apply(items(), "u").unwrap();
        assert_eq!(page.len(), 3);
        let (page, _) = q(&[("tags-any", "a,zz")]).apply(items(), "u").unwrap();
        assert_eq!(page.len(), 2);
        let (page, _) = q(&[("not-tags", "a,b")]).apply(items(), "u").unwrap();
        assert_eq!(page.len(), 3);
    }

    #[test]
    fn pagination_links() {
        let (page, links) = q(&[("limit", "2")]).apply(items(), "http://x/lbs").unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(links.len(), 1);
        assert_eq!(links[0]["href"], "http://x/lbs?limit=2&marker=id1");
        let (page, links) = q(&[("limit", "2"), ("marker", "id1")])
            .apply(items(), "http://x/lbs")
            .unwrap();
        assert_eq!(page[0]["id"], "id2");
        assert_eq!(links.len(), 2);
        let (page, links) = q(&[("limit", "2"), ("marker", "id3")])
            .apply(items(), "u")
            .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(links.len(), 1, "a short page has no next link");
        assert_eq!(links[0]["rel"], "previous");
        let (page, _) = q(&[("limit", "2"), ("marker", "id3"), ("page_reverse", "True")])
            .apply(items(), "u")
            .unwrap();
        assert_eq!(page[0]["id"], "id1");
        assert!(q(&[("limit", "2"), ("marker", "nope")])
            .apply(items(), "u")
            .is_err());
        let (page, _) = q(&[("fields", "id")]).apply(items(), "u").unwrap();
        assert_eq!(page[0].as_object().unwrap().len(), 1);
    }
}
