//! The comparator: differences between a reference run (the real cloud, live or recorded) and
//! a candidate run (the sandbox) — status codes, Content-Type, the presence of chosen
//! headers, body shapes (keys, JSON types, enum values), the values seen while polling — minus
//! those a reasoned allow-list accepts. It must not know how runs are produced.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::catalogue::Catalogue;
use crate::replay::{Observation, Run};
use crate::shape::Shape;
use crate::Error;

/// One difference: where, and what each side had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub step: String,
    /// `status`, `content-type`, `header X-Subject-Token`, `polled`, `note`, or a body path
    /// such as `body.loadbalancer.provisioning_status` (`[]` stands for list items).
    pub path: String,
    pub reference: String,
    pub candidate: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path == "expect" {
            return write!(
                f,
                "{}: the catalogue expects {}, the real cloud answered {}",
                self.step, self.reference, self.candidate
            );
        }
        write!(
            f,
            "{}: {}: real {} / sandbox {}",
            self.step, self.path, self.reference, self.candidate
        )
    }
}

/// An accepted difference. `step` and `path` are patterns where `*` matches any text
/// (including `.`), so `*.operating_status` covers every object.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    pub step: String,
    pub path: String,
    /// Why the sandbox cannot or should not match here; required, so the list stays honest.
    pub reason: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowList {
    pub allow: Vec<AllowEntry>,
}

impl AllowList {
    pub fn parse(text: &str, path: &str) -> Result<Self, Error> {
        let list: AllowList = serde_yaml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        if let Some(e) = list.allow.iter().find(|e| e.reason.trim().is_empty()) {
            return Err(Error::Parse {
                path: path.to_string(),
                message: format!("entry {} {} has no reason", e.step, e.path),
            });
        }
        Ok(list)
    }

    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// `all` split in (not allowed, allowed with the entry's reason).
    pub fn split(&self, all: Vec<Difference>) -> (Vec<Difference>, Vec<(Difference, String)>) {
        let mut failing = Vec::new();
        let mut allowed = Vec::new();
        for d in all {
            match self.accepting(&d) {
                Some(e) => allowed.push((d, e.reason.clone())),
                None => failing.push(d),
            }
        }
        (failing, allowed)
    }

    /// The entry accepting `d`, if any.
    pub fn accepting(&self, d: &Difference) -> Option<&AllowEntry> {
        self.allow
            .iter()
            .find(|e| wildcard(&e.step, &d.step) && wildcard(&e.path, &d.path))
    }
}

/// `*` matches any (possibly empty) run of characters; everything else literally.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Steps whose real answer is not the status the catalogue says it exercises.
pub fn check_expectations(catalogue: &Catalogue, reference: &Run) -> Vec<Difference> {
    catalogue
        .steps
        .iter()
        .filter_map(|s| {
            let got = reference.get(&s.name).map(|o| o.status).unwrap_or(0);
            (got != s.expect).then(|| Difference {
                step: s.name.clone(),
                path: "expect".into(),
                reference: s.expect.to_string(),
                candidate: got.to_string(),
            })
        })
        .collect()
}

/// Every difference between `reference` and `candidate` for the catalogue's steps, split in
/// (not allowed, allowed with the entry's reason).
pub fn compare_runs(
    catalogue: &Catalogue,
    reference: &Run,
    candidate: &Run,
    allow: &AllowList,
) -> (Vec<Difference>, Vec<(Difference, String)>) {
    let mut all = Vec::new();
    for step in &catalogue.steps {
        let name = &step.name;
        match (reference.get(name), candidate.get(name)) {
            (Some(r), Some(c)) => compare_observations(r, c, step.compare_lengths, &mut all),
            (None, _) => all.push(Difference {
                step: name.clone(),
                path: "recorded".into(),
                reference: "<not recorded: re-record with OLBC_FIDELITY_RECORD=1>".into(),
                candidate: "-".into(),
            }),
            (Some(_), None) => all.push(Difference {
                step: name.clone(),
                path: "recorded".into(),
                reference: "-".into(),
                candidate: "<not run>".into(),
            }),
        }
    }
    allow.split(all)
}

/// Appends the differences between two observations of the same step.
pub fn compare_observations(
    r: &Observation,
    c: &Observation,
    compare_lengths: bool,
    out: &mut Vec<Difference>,
) {
    let mut push = |path: String, reference: String, candidate: String| {
        out.push(Difference {
            step: r.name.clone(),
            path,
            reference,
            candidate,
        })
    };
    if r.status != c.status {
        push("status".into(), r.status.to_string(), c.status.to_string());
    }
    if r.note != c.note {
        push(
            "note".into(),
            r.note.clone().unwrap_or_else(|| "-".into()),
            c.note.clone().unwrap_or_else(|| "-".into()),
        );
    }
    if r.content_type != c.content_type {
        push(
            "content-type".into(),
            r.content_type.clone().unwrap_or_else(|| "<none>".into()),
            c.content_type.clone().unwrap_or_else(|| "<none>".into()),
        );
    }
    let names: BTreeSet<&String> = r.headers.keys().chain(c.headers.keys()).collect();
    for h in names {
        let (a, b) = (r.headers.get(h), c.headers.get(h));
        if a != b {
            let show = |v: Option<&bool>| match v {
                Some(true) => "present".to_string(),
                Some(false) => "absent".to_string(),
                None => "<not checked>".to_string(),
            };
            push(format!("header {h}"), show(a), show(b));
        }
    }
    if r.polled != c.polled {
        let show = |v: &Option<Vec<String>>| {
            v.as_ref()
                .map(|s| s.join(" → "))
                .unwrap_or_else(|| "<not polled>".into())
        };
        push("polled".into(), show(&r.polled), show(&c.polled));
    }
    let mut body_diffs = Vec::new();
    match (&r.body, &c.body) {
        (Some(a), Some(b)) => diff_shape("body", a, b, compare_lengths, &mut body_diffs),
        (None, None) => {}
        (a, b) => body_diffs.push((
            "body".to_string(),
            a.as_ref()
                .map(Shape::type_name)
                .unwrap_or_else(|| "<empty>".into()),
            b.as_ref()
                .map(Shape::type_name)
                .unwrap_or_else(|| "<empty>".into()),
        )),
    }
    for (p, a, b) in body_diffs {
        push(p, a, b);
    }
}

fn diff_shape(
    path: &str,
    a: &Shape,
    b: &Shape,
    lengths: bool,
    out: &mut Vec<(String, String, String)>,
) {
    match (a, b) {
        (Shape::Object(ka), Shape::Object(kb)) => {
            for (k, va) in ka {
                let p = format!("{path}.{k}");
                match kb.get(k) {
                    Some(vb) => diff_shape(&p, va, vb, lengths, out),
                    None => out.push((p, va.type_name(), "<missing>".into())),
                }
            }
            for (k, vb) in kb {
                if !ka.contains_key(k) {
                    out.push((format!("{path}.{k}"), "<missing>".into(), vb.type_name()));
                }
            }
        }
        (Shape::Array { len: la, items: ia }, Shape::Array { len: lb, items: ib }) => {
            if lengths && la != lb {
                out.push((format!("{path}.length"), la.to_string(), lb.to_string()));
            }
            let p = format!("{path}[]");
            match (ia, ib) {
                (Some(x), Some(y)) => diff_shape(&p, x, y, lengths, out),
                (None, None) => {}
                (x, y) => {
                    let show = |s: &Option<Box<Shape>>| {
                        s.as_ref()
                            .map(|s| s.type_name())
                            .unwrap_or_else(|| "<empty list>".into())
                    };
                    out.push((p, show(x), show(y)));
                }
            }
        }
        (x, y) if x == y => {}
        (x, y) => out.push((path.to_string(), x.type_name(), y.type_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn obs(name: &str, status: u16, body: serde_json::Value) -> Observation {
        Observation {
            name: name.into(),
            status,
            content_type: Some("application/json".into()),
            headers: BTreeMap::new(),
            body: Some(Shape::of(&body)),
            polled: None,
            note: None,
        }
    }

    fn catalogue(names: &[&str]) -> Catalogue {
        let steps: String = names
            .iter()
            .map(|n| {
                format!("- {{name: {n}, service: network, method: GET, path: /, expect: 200}}\n")
            })
            .collect();
        Catalogue::parse(&format!("steps:\n{steps}"), "test").unwrap()
    }

    fn run(steps: Vec<Observation>) -> Run {
        Run {
            target: "t".into(),
            steps,
            cleanup_failures: vec![],
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*", "anything"));
        assert!(wildcard("*.operating_status", "body.lb.operating_status"));
        assert!(wildcard("octavia.*", "octavia.lb_create"));
        assert!(!wildcard("octavia.*", "neutron.port"));
        assert!(wildcard("a*b*c", "a-x-b-y-c"));
        assert!(!wildcard("a*b*c", "a-x-c"));
        assert!(wildcard("exact", "exact"));
        assert!(!wildcard("exact", "exact2"));
    }

    #[test]
    fn status_type_enum_and_key_differences_are_detected() {
        let cat = catalogue(&["s"]);
        let real = run(vec![obs(
            "s",
            409,
            json!({"lb": {"id": "a", "provisioning_status": "ACTIVE", "vip": "x", "n": 1}}),
        )]);
        let sandbox = run(vec![obs(
            "s",
            400,
            json!({"lb": {"id": "b", "provisioning_status": "PENDING_UPDATE", "n": "1", "extra": true}}),
        )]);
        let (failing, allowed) = compare_runs(&cat, &real, &sandbox, &AllowList::default());
        assert!(allowed.is_empty());
        let paths: Vec<&str> = failing.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "status",
                "body.lb.n",
                "body.lb.provisioning_status",
                "body.lb.vip",
                "body.lb.extra"
            ]
        );
        let vip = &failing[3];
        assert_eq!(
            (vip.reference.as_str(), vip.candidate.as_str()),
            ("string", "<missing>")
        );
        assert!(failing[2].to_string().contains("ACTIVE"));
        assert!(failing[2].to_string().contains("PENDING_UPDATE"));
    }

    #[test]
    fn allowed_differences_are_not_reported_but_kept_with_their_reason() {
        let cat = catalogue(&["octavia.lb_show"]);
        let real = run(vec![obs(
            "octavia.lb_show",
            200,
            json!({"lb": {"operating_status": "OFFLINE"}}),
        )]);
        let sandbox = run(vec![obs(
            "octavia.lb_show",
            200,
            json!({"lb": {"operating_status": "ONLINE"}}),
        )]);
        let allow = AllowList::parse(
            "allow:\n- {step: '*', path: '*.operating_status', reason: no health manager on the rig}\n",
            "t",
        )
        .unwrap();
        let (failing, allowed) = compare_runs(&cat, &real, &sandbox, &allow);
        assert!(failing.is_empty(), "{failing:?}");
        assert_eq!(allowed.len(), 1);
        assert_eq!(allowed[0].1, "no health manager on the rig");
        // The same difference on another key is still reported.
        let sandbox = run(vec![obs(
            "octavia.lb_show",
            200,
            json!({"lb": {"operating_status": "OFFLINE", "x": 1}}),
        )]);
        let (failing, _) = compare_runs(&cat, &real, &sandbox, &allow);
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].path, "body.lb.x");
    }

    #[test]
    fn polled_sequences_headers_and_lengths_are_compared() {
        let mut a = obs("p", 202, json!({"items": [1, 2]}));
        let mut b = obs("p", 202, json!({"items": [1]}));
        a.polled = Some(vec!["PENDING_CREATE".into(), "ACTIVE".into()]);
        b.polled = Some(vec!["PENDING_CREATE".into(), "ERROR".into()]);
        a.headers.insert("X-Subject-Token".into(), true);
        b.headers.insert("X-Subject-Token".into(), false);
        let mut out = Vec::new();
        compare_observations(&a, &b, false, &mut out);
        let paths: Vec<&str> = out.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["header X-Subject-Token", "polled"]);
        out.clear();
        compare_observations(&a, &b, true, &mut out);
        assert!(out.iter().any(|d| d.path == "body.items.length"));
    }

    #[test]
    fn empty_versus_filled_lists_and_missing_recordings_are_differences() {
        let cat = catalogue(&["l", "new"]);
        let real = run(vec![obs("l", 200, json!({"ports": []}))]);
        let sandbox = run(vec![
            obs("l", 200, json!({"ports": [{"id": "x"}]})),
            obs("new", 200, json!({})),
        ]);
        let (failing, _) = compare_runs(&cat, &real, &sandbox, &AllowList::default());
        assert_eq!(failing.len(), 2);
        assert_eq!(failing[0].path, "body.ports[]");
        assert_eq!(failing[1].path, "recorded");
    }

    #[test]
    fn allow_entries_need_a_reason() {
        assert!(AllowList::parse("allow:\n- {step: '*', path: '*', reason: ' '}\n", "t").is_err());
    }
}
