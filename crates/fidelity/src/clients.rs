//! Fidelity by real clients: the exchanges a client nobody here wrote (the openstack CLI,
//! OCCM) had with a cloud, as recorded by `tests/real-clients/proxy.py`, reduced to the same
//! `Observation`s the catalogue produces, and compared with the same comparator.
//!
//! A client's requests are not chosen by us, so they are keyed by what the client did: the
//! scenario step, the method, the service and the path template (ids and run-prefixed names
//! replaced) with its query parameter names. A key seen several times in one step (a client
//! polling, OCCM retrying) keeps its last answer: that is the state the client acted on, and
//! how many polls it took depends on timing, not on fidelity.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::compare::{compare_observations, AllowList, Difference};
use crate::replay::{Observation, Run};
use crate::shape::Shape;
use crate::Error;

/// One request and its answer, as the recording proxy wrote it (one JSON line each).
#[derive(Clone, Debug, Deserialize)]
pub struct Exchange {
    pub step: String,
    /// The catalog type of the service that answered (`identity`, `network`, `load-balancer`).
    pub service: String,
    pub method: String,
    /// Path with ids as `{id}` and run-prefixed names as `{name}`.
    pub path: String,
    /// Sorted query parameter names (values differ between clouds).
    #[serde(default)]
    pub query: Vec<String>,
    pub status: u16,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub body: Option<Value>,
}

impl Exchange {
    /// What identifies "the same request" in two runs of one scenario.
    pub fn key(&self) -> String {
        let q = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query.join("&"))
        };
        format!(
            "{} {} {}:{}{q}",
            self.step, self.method, self.service, self.path
        )
    }
}

/// Parses a proxy recording (JSON lines).
pub fn parse_exchanges(text: &str, path: &str) -> Result<Vec<Exchange>, Error> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Parse {
                path: format!("{path}:{}", i + 1),
                message: e.to_string(),
            })
        })
        .collect()
}

/// The observations of one recording, in the order each key first appeared, each with the
/// last answer seen for it.
pub fn observe(target: &str, exchanges: &[Exchange]) -> Run {
    let mut order: Vec<String> = Vec::new();
    let mut last: BTreeMap<String, &Exchange> = BTreeMap::new();
    for x in exchanges {
        let k = x.key();
        if last.insert(k.clone(), x).is_none() {
            order.push(k);
        }
    }
    let steps = order
        .into_iter()
        .filter_map(|k| {
            let x = last.get(&k)?;
            Some(Observation {
                name: k.clone(),
                status: x.status,
                content_type: x.content_type.clone(),
                headers: BTreeMap::new(),
                body: x.body.as_ref().map(Shape::of),
                polled: None,
                note: None,
            })
        })
        .collect();
    Run {
        target: target.to_string(),
        steps,
        cleanup_failures: Vec::new(),
    }
}

/// A recording file: raw proxy lines (`.jsonl`) or an already reduced `Run` (`.json`).
pub fn load(path: &Path, target: &str) -> Result<Run, Error> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    if path.extension().is_some_and(|e| e == "jsonl") {
        Ok(observe(target, &parse_exchanges(&text, &shown)?))
    } else {
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: shown,
            message: e.to_string(),
        })
    }
}

/// Every difference between two runs of the same client scenario, split in (not allowed,
/// allowed with the entry's reason). A request only one side sent is a difference too: the
/// client took another path because an earlier answer differed.
pub fn compare_recordings(
    reference: &Run,
    candidate: &Run,
    allow: &AllowList,
) -> (Vec<Difference>, Vec<(Difference, String)>) {
    let mut all = Vec::new();
    for r in &reference.steps {
        match candidate.get(&r.name) {
            Some(c) => compare_observations(r, c, false, &mut all),
            None => all.push(Difference {
                step: r.name.clone(),
                path: "request".into(),
                reference: "sent".into(),
                candidate: "never sent".into(),
            }),
        }
    }
    for c in &candidate.steps {
        if reference.get(&c.name).is_none() {
            all.push(Difference {
                step: c.name.clone(),
                path: "request".into(),
                reference: "never sent".into(),
                candidate: "sent".into(),
            });
        }
    }
    allow.split(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: &str, path: &str, status: u16, body: &str) -> String {
        format!(
            r#"{{"step":"{step}","service":"load-balancer","method":"GET","path":"{path}","query":["name"],"status":{status},"content_type":"application/json","body":{body}}}"#
        )
    }

    #[test]
    fn polls_keep_the_last_answer_and_one_sided_requests_are_differences() {
        let real = [
            line(
                "wait",
                "/v2/lbaas/loadbalancers/{id}",
                200,
                r#"{"lb":{"provisioning_status":"PENDING_CREATE"}}"#,
            ),
            line(
                "wait",
                "/v2/lbaas/loadbalancers/{id}",
                200,
                r#"{"lb":{"provisioning_status":"ACTIVE","x":1}}"#,
            ),
            line("show", "/v2/lbaas/listeners", 200, r#"{"listeners":[]}"#),
        ]
        .join("\n");
        let sandbox = [
            line(
                "wait",
                "/v2/lbaas/loadbalancers/{id}",
                200,
                r#"{"lb":{"provisioning_status":"ACTIVE","x":"1"}}"#,
            ),
            line("show", "/v2/lbaas/pools", 404, "null"),
        ]
        .join("\n");
        let r = observe("rig", &parse_exchanges(&real, "r").unwrap());
        let c = observe("sandbox", &parse_exchanges(&sandbox, "c").unwrap());
        assert_eq!(r.steps.len(), 2);
        assert_eq!(
            r.steps[0].name,
            "wait GET load-balancer:/v2/lbaas/loadbalancers/{id}?name"
        );
        let (failing, allowed) = compare_recordings(&r, &c, &AllowList::default());
        assert!(allowed.is_empty());
        let got: Vec<(&str, &str, &str)> = failing
            .iter()
            .map(|d| (d.path.as_str(), d.reference.as_str(), d.candidate.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("body.lb.x", "number", "string"),
                ("request", "sent", "never sent"),
                ("request", "never sent", "sent"),
            ]
        );
    }

    #[test]
    fn bad_lines_name_the_line() {
        let e = parse_exchanges("\n{\"step\": 1}\n", "rec.jsonl").unwrap_err();
        assert!(e.to_string().contains("rec.jsonl:2"), "{e}");
    }
}
