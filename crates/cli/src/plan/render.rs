//! How `plan` shows its result: every step as the OpenStack request it becomes (method, path,
//! the fields that matter), what exists now, refusals, warnings and what the controller would
//! write to the Service. Text for people, JSON for scripts. Must not decide anything: it only
//! formats a [`Report`] assembled from `model`'s answers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use controller::backend::Notice;
use controller::status::{
    effects, ConditionChange, Effects, FinalizerChange, IngressChange, Outcome as Written,
    CONDITION_TYPE,
};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::serde::Serialize;
use model::observed::ObservedLoadBalancer;
use model::plan::{PortRef, Wait};
use model::spec::{ListenerSpec, MemberSpec, MonitorSpec};
use model::{CloudFeatures, Environment, Generation, Invalid, InvalidReason, Observed, Plan, Step};
use serde_json::{json, Value};

/// What the controller would do with the Service.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The file holds no readable Service.
    Unreadable { problem: String },
    /// Not served as written; nothing in OpenStack would change.
    Invalid { problems: Vec<Invalid> },
    /// Not this controller's Service; nothing would happen.
    Ignored { why: String },
    /// The load balancer would be removed.
    Delete { reason: String },
    /// The load balancer would be created or brought up to date.
    Ensure,
}

impl Outcome {
    fn to_json(&self) -> Value {
        match self {
            Outcome::Unreadable { problem } => json!({"kind": "unreadable", "problem": problem}),
            Outcome::Invalid { problems } => json!({"kind": "invalid", "problems": problems}),
            Outcome::Ignored { why } => json!({"kind": "ignored", "why": why}),
            Outcome::Delete { reason } => json!({"kind": "delete", "reason": reason}),
            Outcome::Ensure => json!({"kind": "ensure"}),
        }
    }
}

/// What the controller would write to the Service on this pass: the controller's own
/// [`effects`] for the outcome `plan` foresees, so the preview says what the controller
/// writes by construction. The outcome is that of the controller's first pass for this
/// Service as it is now (a first step announces `EnsuringLoadBalancer`, a first cleanup pass
/// `DeletingLoadBalancer`).
#[derive(Clone, Debug)]
pub struct StatusPreview(pub Effects);

impl StatusPreview {
    fn to_json(&self) -> Value {
        let e = &self.0;
        json!({
            "condition": match &e.condition {
                ConditionChange::Set(c) => json!({
                    "type": CONDITION_TYPE,
                    "status": c.status(),
                    "reason": c.reason.as_str(),
                    "message": c.message,
                }),
                ConditionChange::Keep | ConditionChange::Remove => Value::Null,
            },
            "ingress": match &e.ingress {
                IngressChange::Unchanged => json!({"change": "unchanged"}),
                IngressChange::Cleared => json!({"change": "cleared"}),
                IngressChange::Set(list) => json!({"change": "set", "ingress": list.iter().map(|i| json!({
                    "ip": i.ip,
                    "hostname": i.hostname,
                    "ip_mode": i.ip_mode,
                })).collect::<Vec<_>>()}),
            },
            "annotations": e.annotations,
            "events": e.events.iter().map(|ev| json!({
                "type": ev.type_str(),
                "reason": ev.reason,
                "message": ev.message,
            })).collect::<Vec<_>>(),
            "finalizer": e.finalizer.as_str(),
        })
    }

    /// As the engine handles `Ensured::Invalid` (after adding its finalizer).
    pub fn invalid(service: &Service, problems: &[Invalid]) -> Self {
        let problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        StatusPreview(effects(service, Written::Starting).then(effects(
            service,
            Written::Invalid {
                problems: &problems,
            },
        )))
    }

    /// As the engine handles `Ensured::{Progressed, Busy, Ready}`; `notices` as the
    /// controller derives them from the spec's warnings and the plan.
    pub fn after_ensure(service: &Service, plan: &Plan, notices: &[Notice]) -> Self {
        let published;
        let outcome = if !plan.is_empty() {
            Written::Progressed {
                notices,
                first: true,
                creating: super::creates_lb(plan),
            }
        } else if let Some(Wait::LoadBalancerBusy { status }) = &plan.wait {
            Written::Busy {
                lb_status: status,
                // A load balancer still being created was created by the controller's
                // earlier pass, which remembers it.
                creating: status == "PENDING_CREATE",
            }
        } else {
            published = super::published(plan);
            Written::Ready {
                published: &published,
                notices,
                ended: None,
            }
        };
        StatusPreview(effects(service, Written::Starting).then(effects(service, outcome)))
    }

    /// As the engine's cleanup: `explicit` is a deleted Service, otherwise one that stopped
    /// being a LoadBalancer (its status and address annotation are cleared once done).
    pub fn after_delete(service: &Service, plan: &Plan, explicit: bool) -> Self {
        let start = effects(service, Written::Deleting { first: true });
        if !plan.is_empty() || plan.wait.is_some() {
            return StatusPreview(start);
        }
        StatusPreview(start.then(effects(
            service,
            Written::Deleted {
                service_stays: !explicit,
            },
        )))
    }
}

/// Everything `plan` found out, ready to print.
#[derive(Clone, Debug)]
pub struct Report {
    pub service: String,
    pub lb_name: String,
    pub generation: String,
    pub features: Option<CloudFeatures>,
    pub env: Option<Environment>,
    pub observed: Option<Observed>,
    pub plan: Option<Plan>,
    pub outcome: Outcome,
    pub status: Option<StatusPreview>,
}

impl Report {
    pub fn new(
        service: String,
        generation: &str,
        features: &CloudFeatures,
        env: &Environment,
    ) -> Self {
        Report {
            service,
            lb_name: String::new(),
            generation: generation.to_string(),
            features: Some(features.clone()),
            env: Some(env.clone()),
            observed: None,
            plan: None,
            outcome: Outcome::Ensure,
            status: None,
        }
    }

    pub fn unreadable(path: &Path, problem: &str) -> Self {
        Report {
            service: path.display().to_string(),
            lb_name: String::new(),
            generation: String::new(),
            features: None,
            env: None,
            observed: None,
            plan: None,
            outcome: Outcome::Unreadable {
                problem: problem.to_string(),
            },
            status: None,
        }
    }

    pub fn invalid(key: &str, service: &Service, problems: Vec<Invalid>) -> Self {
        Report {
            status: Some(StatusPreview::invalid(service, &problems)),
            outcome: Outcome::Invalid { problems },
            ..Report::unreadable(Path::new(key), "")
        }
    }
}

/// One OpenStack request.
#[derive(Clone, Debug)]
pub struct ApiCall {
    pub method: &'static str,
    pub path: String,
    /// The request fields that matter, in API spelling.
    pub fields: Vec<(String, String)>,
    /// Objects created inside the same request (fully-populated create).
    pub nested: Vec<String>,
    /// A second request the step makes (tags where Neutron cannot take them on create).
    pub then: Option<String>,
}

fn lb_prefix(features: Option<&CloudFeatures>) -> &'static str {
    match features.map(|f| f.generation) {
        Some(Generation::NeutronV2) => "/v2.0/lbaas",
        Some(Generation::NeutronV1) => "/v2.0/lb",
        _ => "/v2/lbaas",
    }
}

fn port_text(p: &PortRef) -> String {
    match p {
        PortRef::Id(id) => id.clone(),
        PortRef::VipOf(lb) => format!("<VIP port of {lb}>"),
    }
}

fn list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

fn member_text(m: &MemberSpec) -> String {
    let mut s = format!("{} {}:{}", m.name, m.address, m.protocol_port);
    if let Some(p) = m.monitor_port {
        let _ = write!(s, " (monitor_port {p})");
    }
    if let Some(sub) = &m.subnet_id {
        let _ = write!(s, " subnet {sub}");
    }
    s
}

fn monitor_text(m: &MonitorSpec) -> String {
    let mut s = format!(
        "{} {} delay {}s timeout {}s max_retries {} max_retries_down {}",
        m.name, m.kind, m.delay, m.timeout, m.max_retries, m.max_retries_down
    );
    if let (Some(method), Some(path)) = (&m.http_method, &m.url_path) {
        let _ = write!(
            s,
            " {method} {path} expect {}",
            m.expected_codes.as_deref().unwrap_or("200")
        );
    }
    s
}

fn listener_lines(l: &ListenerSpec) -> Vec<String> {
    let mut out = vec![format!(
        "listener {} {}:{} connection_limit {}{}{}",
        l.name,
        l.protocol,
        l.port,
        l.connection_limit,
        if l.allowed_cidrs.is_empty() {
            String::new()
        } else {
            format!(" allowed_cidrs {}", list(&l.allowed_cidrs))
        },
        l.default_tls_container_ref
            .as_ref()
            .map(|r| format!(" default_tls_container_ref {r}"))
            .unwrap_or_default(),
    )];
    if !l.insert_headers.is_empty() {
        out.push(format!(
            "  insert_headers {}",
            compact(&json!(l.insert_headers))
        ));
    }
    let p = &l.pool;
    out.push(format!(
        "  pool {} {} {}{}",
        p.name,
        p.protocol,
        p.lb_algorithm.as_api(),
        p.session_persistence
            .as_ref()
            .map(|s| format!(" session_persistence {}", s.kind))
            .unwrap_or_default()
    ));
    for m in p.members.initial() {
        out.push(format!("    member {}", member_text(m)));
    }
    if let Some(m) = &p.monitor {
        out.push(format!("    healthmonitor {}", monitor_text(m)));
    }
    out
}

/// Changes of an update step as `field: value` pairs, from its JSON form (unchanged fields
/// are absent there).
fn change_fields(changes: &impl Serialize) -> Vec<(String, String)> {
    let value = serde_json::to_value(changes).unwrap_or_default();
    let mut out = Vec::new();
    if let Value::Object(map) = value {
        for (k, v) in map {
            match (k.as_str(), &v) {
                ("timeouts", Value::Object(t)) => {
                    for (tk, tv) in t {
                        out.push((format!("timeout_{tk}"), compact(tv)));
                    }
                }
                _ => out.push((k, compact(&v))),
            }
        }
    }
    out
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn f(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// The request `step` becomes, as the controller's executor sends it.
pub fn api_call(step: &Step, features: Option<&CloudFeatures>) -> ApiCall {
    let lb = lb_prefix(features);
    let call = |method: &'static str, path: String, fields: Vec<(String, String)>| ApiCall {
        method,
        path,
        fields,
        nested: Vec::new(),
        then: None,
    };
    match step {
        Step::CreateLoadBalancer {
            name,
            description,
            tags,
            vip,
            provider,
            flavor_id,
            availability_zone,
            listeners,
        } => {
            let mut fields = vec![f("name", name), f("description", description)];
            for (k, v) in [
                ("vip_port_id", &vip.port_id),
                ("vip_subnet_id", &vip.subnet_id),
                ("vip_network_id", &vip.network_id),
                ("provider", provider),
                ("flavor_id", flavor_id),
                ("availability_zone", availability_zone),
            ] {
                if let Some(v) = v {
                    fields.push(f(k, v));
                }
            }
            if let Some(a) = vip.address {
                fields.push(f("vip_address", a));
            }
            if !vip.additional_subnet_ids.is_empty() {
                fields.push(f("additional_vips", list(&vip.additional_subnet_ids)));
            }
            if !tags.is_empty() {
                fields.push(f("tags", list(tags)));
            }
            let mut c = call("POST", format!("{lb}/loadbalancers"), fields);
            c.nested = listeners.iter().flat_map(listener_lines).collect();
            c
        }
        Step::UpdateLoadBalancer {
            lb: id,
            name,
            description,
            tags,
        } => {
            let mut fields = Vec::new();
            if let Some(n) = name {
                fields.push(f("name", n));
            }
            if let Some(d) = description {
                fields.push(f("description", d));
            }
            if let Some(t) = tags {
                fields.push(f("tags", list(t)));
            }
            call("PUT", format!("{lb}/loadbalancers/{id}"), fields)
        }
        Step::DeleteLoadBalancer { lb: id, cascade } => call(
            "DELETE",
            format!(
                "{lb}/loadbalancers/{id}{}",
                if *cascade { "?cascade=true" } else { "" }
            ),
            Vec::new(),
        ),
        Step::CreateListener {
            lb: lb_ref,
            name,
            protocol,
            port,
            connection_limit,
            allowed_cidrs,
            insert_headers,
            timeouts,
            default_tls_container_ref,
            tags,
        } => {
            let mut fields = vec![
                f("loadbalancer_id", lb_ref),
                f("name", name),
                f("protocol", protocol),
                f("protocol_port", port),
                f("connection_limit", connection_limit),
            ];
            if !allowed_cidrs.is_empty() {
                fields.push(f("allowed_cidrs", list(allowed_cidrs)));
            }
            if !insert_headers.is_empty() {
                fields.push(f("insert_headers", compact(&json!(insert_headers))));
            }
            for (k, v) in [
                ("timeout_client_data", timeouts.client_data),
                ("timeout_member_connect", timeouts.member_connect),
                ("timeout_member_data", timeouts.member_data),
                ("timeout_tcp_inspect", timeouts.tcp_inspect),
            ] {
                if let Some(v) = v {
                    fields.push(f(k, v));
                }
            }
            if let Some(r) = default_tls_container_ref {
                fields.push(f("default_tls_container_ref", r));
            }
            if !tags.is_empty() {
                fields.push(f("tags", list(tags)));
            }
            call("POST", format!("{lb}/listeners"), fields)
        }
        Step::UpdateListener { listener, changes } => call(
            "PUT",
            format!("{lb}/listeners/{listener}"),
            change_fields(changes),
        ),
        Step::DeleteListener { listener } => {
            call("DELETE", format!("{lb}/listeners/{listener}"), Vec::new())
        }
        Step::CreatePool {
            lb: _,
            listener,
            name,
            protocol,
            lb_algorithm,
            session_persistence,
            tags,
        } => {
            let mut fields = vec![
                f("listener_id", listener),
                f("name", name),
                f("protocol", protocol),
                f("lb_algorithm", lb_algorithm.as_api()),
            ];
            if let Some(p) = session_persistence {
                fields.push(f("session_persistence", format!("{{type: {}}}", p.kind)));
            }
            if !tags.is_empty() {
                fields.push(f("tags", list(tags)));
            }
            call("POST", format!("{lb}/pools"), fields)
        }
        Step::UpdatePool { pool, changes } => {
            call("PUT", format!("{lb}/pools/{pool}"), change_fields(changes))
        }
        Step::DeletePool { pool } => call("DELETE", format!("{lb}/pools/{pool}"), Vec::new()),
        Step::BatchUpdateMembers { pool, members } => {
            let mut c = call(
                "PUT",
                format!("{lb}/pools/{pool}/members"),
                vec![f("members", members.len())],
            );
            c.nested = members
                .iter()
                .map(|m| format!("member {}", member_text(m)))
                .collect();
            c
        }
        Step::CreateMember { pool, member } => call(
            "POST",
            format!("{lb}/pools/{pool}/members"),
            vec![f("member", member_text(member))],
        ),
        Step::DeleteMember { pool, member } => call(
            "DELETE",
            format!("{lb}/pools/{pool}/members/{member}"),
            Vec::new(),
        ),
        Step::CreateMonitor { pool, monitor } => call(
            "POST",
            format!("{lb}/healthmonitors"),
            vec![
                f("pool_id", pool),
                f("healthmonitor", monitor_text(monitor)),
            ],
        ),
        Step::UpdateMonitor { monitor, changes } => call(
            "PUT",
            format!("{lb}/healthmonitors/{monitor}"),
            change_fields(changes),
        ),
        Step::DeleteMonitor { monitor } => call(
            "DELETE",
            format!("{lb}/healthmonitors/{monitor}"),
            Vec::new(),
        ),
        Step::CreateFloatingIp {
            network_id,
            subnet_id,
            subnet_name_glob,
            subnet_tags,
            address,
            port,
            description,
        } => {
            let mut fields = vec![f("floating_network_id", network_id)];
            match (subnet_id, subnet_name_glob) {
                (Some(s), _) => fields.push(f("subnet_id", s)),
                (None, Some(g)) => fields.push(f(
                    "subnet_id",
                    format!("<first subnet named like {g:?}{}>", tag_text(subnet_tags)),
                )),
                (None, None) if !subnet_tags.is_empty() => fields.push(f(
                    "subnet_id",
                    format!("<first subnet{}>", tag_text(subnet_tags)),
                )),
                (None, None) => {}
            }
            if let Some(a) = address {
                fields.push(f("floating_ip_address", a));
            }
            if let Some(p) = port {
                fields.push(f("port_id", port_text(p)));
            }
            fields.push(f("description", description));
            call("POST", "/v2.0/floatingips".into(), fields)
        }
        Step::AssociateFloatingIp { fip, port } => call(
            "PUT",
            format!("/v2.0/floatingips/{fip}"),
            vec![f("port_id", port_text(port))],
        ),
        Step::DisassociateFloatingIp { fip } => call(
            "PUT",
            format!("/v2.0/floatingips/{fip}"),
            vec![f("port_id", "null")],
        ),
        Step::DeleteFloatingIp { fip } => {
            call("DELETE", format!("/v2.0/floatingips/{fip}"), Vec::new())
        }
        Step::TagFloatingIp { fip, tag } => call(
            "PUT",
            format!("/v2.0/floatingips/{fip}/tags/{tag}"),
            Vec::new(),
        ),
        Step::CreateSecurityGroup {
            name,
            description,
            tags,
        } => {
            let mut c = call(
                "POST",
                "/v2.0/security-groups".into(),
                vec![f("name", name), f("description", description)],
            );
            if !tags.is_empty() {
                c.then = Some(format!(
                    "PUT /v2.0/security-groups/<new id>/tags {}",
                    list(tags)
                ));
            }
            c
        }
        Step::CreateSecurityGroupRule { group, rule } => call(
            "POST",
            "/v2.0/security-group-rules".into(),
            vec![
                f("security_group_id", group),
                f("direction", "ingress"),
                f("ethertype", &rule.ethertype),
                f("protocol", &rule.protocol),
                f("port_range", format!("{0}-{0}", rule.port)),
                f("remote_ip_prefix", &rule.remote_ip_prefix),
            ],
        ),
        Step::DeleteSecurityGroupRule { rule } => call(
            "DELETE",
            format!("/v2.0/security-group-rules/{rule}"),
            Vec::new(),
        ),
        Step::UpdatePortSecurityGroups {
            port,
            security_groups,
            revision_number,
        } => call(
            "PUT",
            format!("/v2.0/ports/{port}"),
            vec![
                f(
                    "security_groups",
                    list(
                        &security_groups
                            .iter()
                            .map(|g| g.to_string())
                            .collect::<Vec<_>>(),
                    ),
                ),
                f("If-Match", format!("revision_number={revision_number}")),
            ],
        ),
        Step::DeleteSecurityGroup { group } => call(
            "DELETE",
            format!("/v2.0/security-groups/{group}"),
            Vec::new(),
        ),
        // LBaaS v1 (`lb` is `/v2.0/lb` then): one request per step, as the executor sends it.
        Step::CreateV1Pool {
            name,
            description,
            subnet_id,
            protocol,
            lb_method,
        } => call(
            "POST",
            format!("{lb}/pools"),
            vec![
                f("name", name),
                f("description", description),
                f("subnet_id", subnet_id),
                f("protocol", protocol),
                f("lb_method", lb_method),
            ],
        ),
        Step::UpdateV1Pool { pool, lb_method } => call(
            "PUT",
            format!("{lb}/pools/{pool}"),
            vec![f("lb_method", lb_method)],
        ),
        Step::DeleteV1Pool { pool } => call("DELETE", format!("{lb}/pools/{pool}"), Vec::new()),
        Step::CreateV1Member {
            pool,
            address,
            protocol_port,
        } => call(
            "POST",
            format!("{lb}/members"),
            vec![
                f("pool_id", pool),
                f("address", address),
                f("protocol_port", protocol_port),
            ],
        ),
        Step::DeleteV1Member { member } => {
            call("DELETE", format!("{lb}/members/{member}"), Vec::new())
        }
        Step::CreateV1Monitor {
            key: _,
            kind,
            delay,
            timeout,
            max_retries,
        } => call(
            "POST",
            format!("{lb}/health_monitors"),
            vec![
                f("type", kind),
                f("delay", delay),
                f("timeout", timeout),
                f("max_retries", max_retries),
            ],
        ),
        Step::AssociateV1Monitor { pool, monitor } => call(
            "POST",
            format!("{lb}/pools/{pool}/health_monitors"),
            vec![f("id", monitor)],
        ),
        Step::DisassociateV1Monitor { pool, monitor } => call(
            "DELETE",
            format!("{lb}/pools/{pool}/health_monitors/{monitor}"),
            Vec::new(),
        ),
        Step::DeleteV1Monitor { monitor } => call(
            "DELETE",
            format!("{lb}/health_monitors/{monitor}"),
            Vec::new(),
        ),
        Step::CreateV1Vip {
            name,
            description,
            pool,
            subnet_id,
            address,
            protocol,
            protocol_port,
            session_persistence,
            connection_limit,
        } => {
            let mut fields = vec![
                f("name", name),
                f("description", description),
                f("pool_id", pool),
                f("subnet_id", subnet_id),
                f("protocol", protocol),
                f("protocol_port", protocol_port),
                f("connection_limit", connection_limit),
            ];
            if let Some(a) = address {
                fields.push(f("address", a));
            }
            if let Some(p) = session_persistence {
                fields.push(f("session_persistence", p));
            }
            call("POST", format!("{lb}/vips"), fields)
        }
        Step::UpdateV1Vip {
            vip,
            session_persistence,
            connection_limit,
        } => call(
            "PUT",
            format!("{lb}/vips/{vip}"),
            vec![
                f("connection_limit", connection_limit),
                f(
                    "session_persistence",
                    session_persistence.as_deref().unwrap_or("null"),
                ),
            ],
        ),
        Step::DeleteV1Vip { vip } => call("DELETE", format!("{lb}/vips/{vip}"), Vec::new()),
    }
}

fn tag_text(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(" tagged {}", tags.join(","))
    }
}

/// A one-line title: `create load balancer NAME`, `delete pool ID`...
pub fn title(step: &Step) -> String {
    let value = serde_json::to_value(step).unwrap_or_default();
    let op = value["op"].as_str().unwrap_or("step").replace('_', " ");
    let target = match step {
        Step::CreateLoadBalancer { name, .. }
        | Step::CreateListener { name, .. }
        | Step::CreatePool { name, .. }
        | Step::CreateSecurityGroup { name, .. } => name.clone(),
        Step::CreateMonitor { monitor, .. } => monitor.name.clone(),
        Step::CreateMember { member, .. } => member.name.clone(),
        Step::CreateFloatingIp { address, .. } => address
            .map(|a| a.to_string())
            .unwrap_or_else(|| "(new address)".to_string()),
        Step::UpdateLoadBalancer { lb, .. } | Step::DeleteLoadBalancer { lb, .. } => lb.clone(),
        Step::UpdateListener { listener, .. } | Step::DeleteListener { listener } => {
            listener.clone()
        }
        Step::UpdatePool { pool, .. } | Step::DeletePool { pool } => pool.clone(),
        Step::BatchUpdateMembers { pool, .. } => pool.to_string(),
        Step::DeleteMember { member, .. } => member.clone(),
        Step::UpdateMonitor { monitor, .. } | Step::DeleteMonitor { monitor } => monitor.clone(),
        Step::AssociateFloatingIp { fip, .. }
        | Step::DisassociateFloatingIp { fip }
        | Step::DeleteFloatingIp { fip }
        | Step::TagFloatingIp { fip, .. } => fip.clone(),
        Step::UpdatePortSecurityGroups { port, .. } => port.clone(),
        Step::DeleteSecurityGroup { group } => group.clone(),
        Step::DeleteSecurityGroupRule { rule } => rule.clone(),
        Step::CreateV1Pool { name, .. } | Step::CreateV1Vip { name, .. } => name.clone(),
        Step::CreateV1Monitor { key, .. } => key.clone(),
        Step::CreateV1Member {
            address,
            protocol_port,
            ..
        } => format!("{address}:{protocol_port}"),
        Step::UpdateV1Pool { pool, .. } | Step::DeleteV1Pool { pool } => pool.clone(),
        Step::AssociateV1Monitor { monitor, .. } => monitor.to_string(),
        Step::DisassociateV1Monitor { monitor, .. } | Step::DeleteV1Monitor { monitor } => {
            monitor.clone()
        }
        Step::DeleteV1Member { member } => member.clone(),
        Step::UpdateV1Vip { vip, .. } | Step::DeleteV1Vip { vip } => vip.clone(),
        _ => String::new(),
    };
    if target.is_empty() {
        op
    } else {
        format!("{op} {target}")
    }
}

/// The LBaaS v1 objects of a Service: pool, its members and monitors, the VIP.
fn v1_observed_lines(v1: &model::observed::ObservedV1) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = &v1.pool {
        out.push(format!(
            "LBaaS v1 pool {} {:?} {} {} {} subnet {}, description {:?}",
            p.id, p.name, p.status, p.protocol, p.lb_method, p.subnet_id, p.description
        ));
    }
    for m in &v1.members {
        out.push(format!(
            "  member {} {}:{}",
            m.id, m.address, m.protocol_port
        ));
    }
    for m in &v1.monitors {
        out.push(format!(
            "  health monitor {} {} delay {}s timeout {}s max_retries {}",
            m.id, m.kind, m.delay, m.timeout, m.max_retries
        ));
    }
    if let Some(v) = &v1.vip {
        out.push(format!(
            "LBaaS v1 VIP {} {:?} {} {}:{} port {} connection_limit {}{}",
            v.id,
            v.name,
            v.status,
            v.address,
            v.protocol_port,
            v.port_id,
            v.connection_limit,
            v.session_persistence
                .as_ref()
                .map(|p| format!(" session_persistence {p}"))
                .unwrap_or_default()
        ));
    }
    out
}

fn observed_lines(lb: &ObservedLoadBalancer) -> Vec<String> {
    let mut out = vec![format!(
        "load balancer {} {:?} {} (operating {}), VIP {} port {} subnet {}{}",
        lb.id,
        lb.name,
        lb.provisioning_status.as_api(),
        lb.operating_status,
        lb.vip_address.as_deref().unwrap_or("-"),
        lb.vip_port_id.as_deref().unwrap_or("-"),
        lb.vip_subnet_id.as_deref().unwrap_or("-"),
        if lb.tags.is_empty() {
            String::new()
        } else {
            format!(", tags {}", list(&lb.tags))
        }
    )];
    for l in &lb.listeners {
        out.push(format!(
            "  listener {} {:?} {}:{}",
            l.id, l.name, l.protocol, l.protocol_port
        ));
        if let Some(p) = &l.pool {
            out.push(format!(
                "    pool {} {:?} {} {} {} members{}",
                p.id,
                p.name,
                p.protocol,
                p.lb_algorithm.as_api(),
                p.members.len(),
                p.monitor
                    .as_ref()
                    .map(|m| format!(", monitor {}", m.kind))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

fn invalid_lines(problems: &[Invalid]) -> Vec<String> {
    let mut out = Vec::new();
    for p in problems {
        match p.reason {
            InvalidReason::Missing => {
                out.push(format!("✗ {}: missing", p.field));
                out.push(format!("    expected: {}", p.accepted));
            }
            InvalidReason::ForeignCluster => {
                out.push(format!(
                    "✗ {}: load balancer {} belongs to another cluster",
                    p.field, p.value
                ));
                out.push(format!("    it is {}; it is left untouched", p.accepted));
            }
            _ => {
                out.push(format!("✗ {} = {:?} ({:?})", p.field, p.value, p.reason));
                out.push(format!("    accepted: {}", p.accepted));
            }
        }
    }
    out
}

fn status_lines(preview: &StatusPreview) -> Vec<String> {
    let s = &preview.0;
    let mut out = Vec::new();
    match &s.condition {
        ConditionChange::Set(c) => out.push(format!(
            "condition {CONDITION_TYPE}={} reason {}: {}",
            c.status(),
            c.reason.as_str(),
            c.message
        )),
        ConditionChange::Remove => out.push(format!("condition {CONDITION_TYPE} removed")),
        ConditionChange::Keep => {}
    }
    out.push(match &s.ingress {
        IngressChange::Unchanged => {
            "status.loadBalancer.ingress: unchanged on this pass".to_string()
        }
        IngressChange::Cleared => "status.loadBalancer.ingress: cleared".to_string(),
        IngressChange::Set(list) => format!(
            "status.loadBalancer.ingress: [{}]",
            list.iter()
                .map(|i| {
                    let addr = i.ip.clone().or(i.hostname.clone()).unwrap_or_default();
                    match (&i.ip, &i.ip_mode) {
                        (Some(_), Some(m)) => format!("{addr} (ipMode {m})"),
                        _ => addr,
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    });
    for (k, v) in &s.annotations {
        out.push(match v {
            Some(v) => format!("annotation {k}: {v}"),
            None => format!("annotation {k}: removed"),
        });
    }
    match s.finalizer {
        FinalizerChange::Add => out.push(format!(
            "finalizer {} (added if missing)",
            controller::status::FINALIZER
        )),
        FinalizerChange::Remove => out.push(format!(
            "finalizer {} removed",
            controller::status::FINALIZER
        )),
        FinalizerChange::Keep => {}
    }
    for e in &s.events {
        out.push(format!(
            "Event {} {}: {}",
            e.type_str(),
            e.reason,
            e.message
        ));
    }
    out
}

/// The human form.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    match &r.outcome {
        Outcome::Unreadable { problem } => {
            let _ = writeln!(s, "✗ {problem}");
            return s;
        }
        Outcome::Invalid { problems } if r.features.is_none() => {
            let _ = writeln!(
                s,
                "Service {} is invalid; the controller would change nothing in OpenStack for it:",
                r.service
            );
            for l in invalid_lines(problems) {
                let _ = writeln!(s, "  {l}");
            }
            write_status(&mut s, r);
            return s;
        }
        _ => {}
    }
    let _ = write!(s, "Service {}", r.service);
    if !r.lb_name.is_empty() {
        let _ = write!(s, " → load balancer {}", r.lb_name);
    }
    let _ = writeln!(s);
    if let Some(fe) = &r.features {
        let _ = write!(
            s,
            "Cloud: {} (API {}, provider {})",
            r.generation,
            fe.version_text(),
            fe.provider.as_deref().unwrap_or("default")
        );
    }
    if let Some(env) = &r.env {
        let _ = write!(
            s,
            "; cluster {} (tag {})",
            env.cluster_name,
            model::naming::cluster_tag(&env.cluster_uid)
        );
    }
    let _ = writeln!(s);
    if let Some(obs) = &r.observed {
        let _ = writeln!(s, "\nExists now:");
        match &obs.load_balancer {
            Some(lb) => {
                for l in observed_lines(lb) {
                    let _ = writeln!(s, "  {l}");
                }
            }
            None if obs.v1.as_ref().is_some_and(|v| v.pool.is_some()) => {}
            None => {
                let _ = writeln!(s, "  no load balancer for this Service");
            }
        }
        if let Some(v1) = &obs.v1 {
            for l in v1_observed_lines(v1) {
                let _ = writeln!(s, "  {l}");
            }
        }
        for fip in &obs.floating_ips {
            let _ = writeln!(
                s,
                "  floating IP {} ({}) on port {}, description {:?}",
                fip.floating_ip_address,
                fip.id,
                fip.port_id.as_deref().unwrap_or("-"),
                fip.description
            );
        }
        if let Some(sg) = &obs.security_group {
            let _ = writeln!(
                s,
                "  security group {} ({}) with {} rules",
                sg.name,
                sg.id,
                sg.rules.len()
            );
        }
    }
    match &r.outcome {
        Outcome::Ignored { why } => {
            let _ = writeln!(s, "\nIgnored: {why}.\nNo API call would be made.");
            return s;
        }
        Outcome::Invalid { problems } => {
            let _ = writeln!(
                s,
                "\nInvalid: the controller would change nothing in OpenStack for this Service:"
            );
            for l in invalid_lines(problems) {
                let _ = writeln!(s, "  {l}");
            }
        }
        Outcome::Delete { reason } => {
            let _ = writeln!(s, "\nDeletion, {reason}.");
        }
        _ => {}
    }
    if let Some(plan) = r
        .plan
        .as_ref()
        .filter(|_| !matches!(r.outcome, Outcome::Invalid { .. }))
    {
        write_steps(&mut s, r, plan);
    }
    write_status(&mut s, r);
    let _ = writeln!(s, "\nNothing was changed in the cloud.");
    s
}

fn write_steps(s: &mut String, r: &Report, plan: &Plan) {
    if plan.steps.is_empty() {
        match &plan.wait {
            Some(Wait::LoadBalancerBusy { status }) => {
                let _ = writeln!(
                    s,
                    "\nNo step now: the load balancer is {status}; the controller re-checks after a backoff."
                );
            }
            None => {
                let _ = writeln!(s, "\nNo change: the cloud matches the Service.");
            }
        }
    } else {
        let now = plan.runnable().len();
        let total = plan.steps.len();
        let gated = |g: model::Gate| plan.steps.iter().filter(|s| s.gate == g).count();
        let _ = if now == total {
            writeln!(s, "\nSteps ({total}, all issued on the next pass):")
        } else {
            let mut parts = vec![format!("{now} issued on the next pass")];
            let active = gated(model::Gate::WhenActive);
            if active > 0 {
                parts.push(format!(
                    "{active} each time the load balancer is ACTIVE again"
                ));
            }
            let after = gated(model::Gate::AfterPublish);
            if after > 0 {
                parts.push(format!(
                    "{after} right after the status with the IP is written"
                ));
            }
            writeln!(s, "\nSteps ({total}; {}):", parts.join(", "))
        };
        for (i, st) in plan.steps.iter().enumerate() {
            let gate = match st.gate {
                model::Gate::Now => "now",
                model::Gate::WhenActive => "when ACTIVE",
                model::Gate::AfterPublish => "after the IP is published",
            };
            let call = api_call(&st.step, r.features.as_ref());
            let _ = writeln!(s, "  {}. {} [{gate}]", i + 1, title(&st.step));
            let _ = writeln!(s, "     {} {}", call.method, call.path);
            for (k, v) in &call.fields {
                let _ = writeln!(s, "       {k}: {v}");
            }
            for n in &call.nested {
                let _ = writeln!(s, "       {n}");
            }
            if let Some(then) = &call.then {
                let _ = writeln!(s, "     then {then}");
            }
        }
    }
    if !plan.refusals.is_empty() {
        let _ = writeln!(s, "\nRefused (cannot change in place):");
        for rf in &plan.refusals {
            let _ = writeln!(s, "  - {rf}");
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(s, "\nWarnings:");
        for w in &plan.warnings {
            let _ = writeln!(s, "  - {w}");
        }
    }
}

fn write_status(s: &mut String, r: &Report) {
    if let Some(st) = &r.status {
        let _ = writeln!(s, "\nThe controller would write:");
        for l in status_lines(st) {
            let _ = writeln!(s, "  {l}");
        }
    }
}

/// The machine form: the plan's own serialisation plus each step's request.
pub fn json(r: &Report) -> Value {
    let steps: Vec<Value> = r
        .plan
        .iter()
        .filter(|_| !matches!(r.outcome, Outcome::Invalid { .. }))
        .flat_map(|p| p.steps.iter())
        .map(|st| {
            let call = api_call(&st.step, r.features.as_ref());
            json!({
                "title": title(&st.step),
                "gate": st.gate,
                "request": {
                    "method": call.method,
                    "path": call.path,
                    "fields": call.fields.iter().cloned().collect::<BTreeMap<_, _>>(),
                    "nested": call.nested,
                    "then": call.then,
                },
                "step": st.step,
            })
        })
        .collect();
    let plan = r.plan.as_ref();
    json!({
        "service": r.service,
        "load_balancer_name": r.lb_name,
        "outcome": r.outcome.to_json(),
        "cloud": r.features.as_ref().map(|f| json!({
            "generation": r.generation,
            "api_version": f.version_text(),
            "provider": f.provider,
        })),
        "cluster": r.env.as_ref().map(|e| json!({
            "name": e.cluster_name,
            "tag": model::naming::cluster_tag(&e.cluster_uid),
        })),
        "observed": r.observed,
        "steps": steps,
        "refusals": plan.map(|p| p.refusals.clone()).unwrap_or_default(),
        "warnings": plan.map(|p| p.warnings.clone()).unwrap_or_default(),
        "wait": plan.and_then(|p| p.wait.clone()),
        "would_write": r.status.as_ref().map(StatusPreview::to_json),
        "changed_nothing": true,
    })
}
