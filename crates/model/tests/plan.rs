//! Targeted tests of `plan`, `plan_delete` and `apply` beyond the snapshot catalogue: API
//! economy, the Octavia lock, ownership and the safety of deletion.

mod common;

use common::*;
use model::annotations as a;
use model::naming;
use model::observed::{ObservedFloatingIp, ProvisioningStatus};
use model::plan::PortRef;
use model::{apply, desired, plan, plan_delete, CloudFeatures, Gate, Observed, Ref, Step};

fn ops(p: &model::Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| {
            serde_json::to_value(&s.step).expect("json")["op"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn node_churn_is_one_batch_put_per_pool() {
    let svc = service("metadata: {name: m, namespace: n}\nspec:\n  ports: [{port: 80, nodePort: 30080}, {port: 443, nodePort: 30443}]\n");
    let spec = desired(&svc, &nodes(3), &config(), &features(), &env()).expect("ok");
    let observed = created(&spec);
    let spec5 = desired(&svc, &nodes(5), &config(), &features(), &env()).expect("ok");
    let p = plan(&spec5, &observed);
    assert_eq!(
        ops(&p),
        vec!["batch_update_members", "batch_update_members"]
    );
    assert_eq!(
        p.steps.iter().map(|s| s.gate).collect::<Vec<_>>(),
        vec![Gate::Now, Gate::WhenActive]
    );
    assert_eq!(p.runnable().len(), 1, "the second PUT waits for the lock");
    let Step::BatchUpdateMembers { members, .. } = &p.steps[0].step else {
        panic!("batch")
    };
    assert_eq!(members.len(), 5);
}

#[test]
fn node_address_change_is_picked_up() {
    let svc = svc_with(&[]);
    let spec = want(&svc).expect("ok");
    let observed = created(&spec);
    let mut ns = nodes(3);
    ns[0] = node(&NodeDef {
        name: "node-1".into(),
        addresses: vec!["10.0.0.99".into()],
        ..NodeDef::default()
    });
    let p = plan(
        &desired(&svc, &ns, &config(), &features(), &env()).expect("ok"),
        &observed,
    );
    assert_eq!(ops(&p), vec!["batch_update_members"]);
}

#[test]
fn without_batch_update_members_change_one_by_one() {
    let f = CloudFeatures::neutron_v2(None);
    let svc = svc_with(&[]);
    let spec = desired(&svc, &nodes(3), &config(), &f, &env()).expect("ok");
    let observed = created(&spec);
    let mut ns = nodes(3);
    ns.remove(0);
    ns.push(nodes(4).remove(3));
    let p = plan(
        &desired(&svc, &ns, &config(), &f, &env()).expect("ok"),
        &observed,
    );
    assert_eq!(ops(&p), vec!["delete_member", "create_member"]);
}

#[test]
fn meltdown_keeps_members_and_a_new_pool_gets_the_fallback() {
    let svc = svc_with(&[]);
    let spec = want(&svc).expect("ok");
    let observed = created(&spec);
    let mut down = nodes(3);
    for n in &mut down {
        n.status
            .as_mut()
            .expect("status")
            .conditions
            .as_mut()
            .expect("conds")[0]
            .status = "False".into();
    }
    let melt = desired(&svc, &down, &config(), &features(), &env()).expect("ok");
    assert!(melt
        .warnings
        .iter()
        .any(|w| w.reason == model::WarningReason::MeltdownProtection));
    assert!(plan(&melt, &observed).steps.is_empty());
    // A brand-new LB during a meltdown still gets members (the NotReady nodes).
    let p = plan(&melt, &Observed::default());
    let Step::CreateLoadBalancer { listeners, .. } = &p.steps[0].step else {
        panic!("create")
    };
    assert_eq!(listeners[0].pool.members.initial().len(), 3);
    // Nodes excluded on purpose are not a meltdown: the pool is emptied.
    let mut excluded = nodes(3);
    for n in &mut excluded {
        n.metadata.labels = Some(
            [(
                "node.kubernetes.io/exclude-from-external-load-balancers".to_string(),
                "true".to_string(),
            )]
            .into(),
        );
    }
    let empty = desired(&svc, &excluded, &config(), &features(), &env()).expect("ok");
    assert!(matches!(&ops(&plan(&empty, &observed))[..], [op] if op == "batch_update_members"));
}

#[test]
fn pending_lb_waits_but_neutron_steps_proceed() {
    let spec = want(&svc_with(&[])).expect("ok");
    let mut observed = created(&spec);
    observed
        .floating_ips
        .iter_mut()
        .for_each(|f| f.port_id = None);
    observed
        .load_balancer
        .as_mut()
        .expect("lb")
        .provisioning_status = ProvisioningStatus::PendingUpdate;
    let spec4 = desired(&svc_with(&[]), &nodes(4), &config(), &features(), &env()).expect("ok");
    let p = plan(&spec4, &observed);
    assert!(p.wait.is_some());
    assert_eq!(
        ops(&p),
        vec!["associate_floating_ip", "batch_update_members"]
    );
    assert_eq!(
        p.runnable().len(),
        1,
        "the FIP needs no Octavia lock; the PUT waits"
    );
}

#[test]
fn occm_fip_without_tag_is_adopted_not_duplicated() {
    let spec = want(&svc_with(&[])).expect("ok");
    let mut observed = created(&spec);
    observed
        .floating_ips
        .iter_mut()
        .for_each(|f| f.tags.clear());
    // Adopted: not replaced, only given our cluster tag.
    assert_eq!(ops(&plan(&spec, &observed)), vec!["tag_floating_ip"]);
    // And when it became detached, it is re-attached rather than replaced.
    observed
        .floating_ips
        .iter_mut()
        .for_each(|f| f.port_id = None);
    assert_eq!(ops(&plan(&spec, &observed)), vec!["associate_floating_ip"]);
}

/// What the cloud holds after the controller died between the FIP POST (committed, attached
/// to the VIP port) and its tag PUT: our description, no tag.
fn untagged_fip(spec: &model::LoadBalancerSpec) -> Observed {
    let mut observed = created(spec);
    observed
        .floating_ips
        .iter_mut()
        .for_each(|f| f.tags.clear());
    observed
}

/// The tag steps of a plan, as (fip, tag).
fn tag_steps(p: &model::Plan) -> Vec<(String, String)> {
    p.steps
        .iter()
        .filter_map(|s| match &s.step {
            Step::TagFloatingIp { fip, tag } => Some((fip.clone(), tag.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn attached_fip_of_ours_without_the_cluster_tag_gets_it_and_nothing_else() {
    let spec = want(&svc_with(&[])).expect("ok");
    let observed = untagged_fip(&spec);
    let fip = observed.floating_ips[0].id.clone();
    let p = plan(&spec, &observed);
    assert_eq!(ops(&p), vec!["tag_floating_ip"]);
    assert_eq!(tag_steps(&p), vec![(fip.clone(), spec.cluster_tag.clone())]);
    assert_eq!(
        p.steps[0].gate,
        Gate::AfterPublish,
        "bookkeeping: after the IP is published"
    );
    assert!(!p.steps[0].step.takes_lb_lock());
    assert!(p.publishable());
    assert!(p.status.is_some(), "the address is already known");
    // Applied: converged, the tag is on the FIP, and applying it again changes nothing.
    let after = apply(&p, &observed);
    assert!(
        plan(&spec, &after).is_empty(),
        "{:?}",
        ops(&plan(&spec, &after))
    );
    assert_eq!(after.floating_ips[0].tags, vec![spec.cluster_tag.clone()]);
    assert_eq!(apply(&p, &after), after, "idempotent");
    // A tag another tool added stays untouched.
    let mut tagged = observed.clone();
    tagged.floating_ips[0].tags = vec!["owner=ops".into()];
    let p = plan(&spec, &tagged);
    assert_eq!(tag_steps(&p), vec![(fip, spec.cluster_tag.clone())]);
    assert_eq!(
        apply(&p, &tagged).floating_ips[0].tags,
        vec!["owner=ops".to_string(), spec.cluster_tag.clone()]
    );
    // keep-floatingip does not change whose FIP it is: it is still tagged.
    let kept = want(&svc_with(&[(a::KEEP_FLOATINGIP, "true")])).expect("ok");
    assert_eq!(
        ops(&plan(&kept, &untagged_fip(&kept))),
        vec!["tag_floating_ip"]
    );
}

#[test]
fn the_tag_waits_until_the_status_can_be_published() {
    let spec = want(&svc_with(&[])).expect("ok");
    let mut observed = untagged_fip(&spec);
    if let Some(lb) = observed.load_balancer.as_mut() {
        lb.provisioning_status = ProvisioningStatus::PendingUpdate;
    }
    let p = plan(&spec, &observed);
    assert_eq!(ops(&p), vec!["tag_floating_ip"]);
    assert!(p.runnable().is_empty() && !p.publishable(), "{p:?}");
    // Behind every other step too: a create plan ends with no tag (the FIP has no id yet),
    // and the next one, once everything exists, is the tag alone.
    let empty = Observed::default();
    let create = plan(&spec, &empty);
    assert!(tag_steps(&create).is_empty(), "{:?}", ops(&create));
    let built = apply(&create, &empty);
    let next = plan(&spec, &built);
    assert_eq!(ops(&next), vec!["tag_floating_ip"]);
    assert!(next.publishable() && next.status.is_some(), "{next:?}");
}

#[test]
fn user_and_foreign_fips_are_never_tagged() {
    let spec = want(&svc_with(&[])).expect("ok");
    // The user's FIP named by spec.loadBalancerIP: their description, no tag, attached.
    let mut svc = svc_with(&[]);
    svc.spec.as_mut().expect("spec").load_balancer_ip = Some("203.0.113.10".into());
    let by_address = want(&svc).expect("ok");
    let mut observed = untagged_fip(&by_address);
    observed.floating_ips[0].description = "reserved for the shop".into();
    observed.floating_ips[0].floating_ip_address = "203.0.113.10".into();
    let p = plan(&by_address, &observed);
    assert!(p.steps.is_empty(), "{:?}", ops(&p));
    // Our description but another cluster's tag: not ours either.
    let mut foreign = untagged_fip(&spec);
    foreign.floating_ips[0].tags = vec![naming::cluster_tag("another-cluster")];
    assert!(tag_steps(&plan(&spec, &foreign)).is_empty());
}

#[test]
fn a_fip_being_released_or_left_detached_is_not_tagged() {
    // Turned internal: the untagged FIP of ours goes, it is not tagged first.
    let internal = want(&svc_with(&[(a::INTERNAL, "true")])).expect("ok");
    let external = want(&svc_with(&[])).expect("ok");
    let observed = untagged_fip(&external);
    let p = plan(&internal, &observed);
    assert_eq!(ops(&p), vec!["delete_floating_ip"]);
    // Detached: re-attached (the association names it); tagged on the next pass.
    let mut detached = observed.clone();
    detached.floating_ips[0].port_id = None;
    let p = plan(&external, &detached);
    assert_eq!(ops(&p), vec!["associate_floating_ip"]);
    let next = plan(&external, &apply(&p, &detached));
    assert_eq!(ops(&next), vec!["tag_floating_ip"]);
}

#[test]
fn v1_attached_fip_of_ours_without_the_cluster_tag_gets_it() {
    let v1 = CloudFeatures::neutron_v1();
    let mut c = config();
    c.load_balancer.placement.subnet_id = Some(NODE_SUBNET.into());
    let spec = desired(&svc_with(&[]), &nodes(2), &c, &v1, &env()).expect("ok");
    let observed = untagged_fip(&spec);
    let vip_port = observed
        .v1
        .as_ref()
        .and_then(|v| v.vip.as_ref())
        .map(|v| v.port_id.clone());
    assert_eq!(observed.floating_ips[0].port_id, vip_port);
    let p = plan(&spec, &observed);
    assert_eq!(ops(&p), vec!["tag_floating_ip"]);
    assert_eq!(
        tag_steps(&p),
        vec![(
            observed.floating_ips[0].id.clone(),
            spec.cluster_tag.clone()
        )]
    );
    assert!(plan(&spec, &apply(&p, &observed)).is_empty());
}

#[test]
fn requested_fip_attached_elsewhere_is_invalid() {
    let mut svc = svc_with(&[]);
    svc.spec.as_mut().expect("spec").load_balancer_ip = Some("198.51.100.7".into());
    let spec = want(&svc).expect("ok");
    let observed = Observed {
        floating_ips: vec![ObservedFloatingIp {
            id: "f1".into(),
            floating_ip_address: "198.51.100.7".into(),
            port_id: Some("someone-elses-port".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let p = plan(&spec, &observed);
    assert!(p.steps.is_empty());
    assert_eq!(p.invalid[0].field, "spec.loadBalancerIP");
}

#[test]
fn missing_lb_named_by_load_balancer_id_is_recreated_with_a_warning() {
    let spec = want(&svc_with(&[(
        a::LOAD_BALANCER_ID,
        "6f0c5a8e-3d4b-4b8e-9a55-1b2c3d4e5f60",
    )]))
    .expect("ok");
    let p = plan(&spec, &Observed::default());
    assert_eq!(ops(&p), vec!["create_load_balancer", "create_floating_ip"]);
    assert!(p
        .warnings
        .iter()
        .any(|w| w.reason == model::WarningReason::LoadBalancerMissing));
}

#[test]
fn lb_in_another_project_is_not_adopted() {
    let spec = want(&svc_with(&[])).expect("ok");
    let mut observed = created(&spec);
    observed.load_balancer.as_mut().expect("lb").project_id = Some("another".into());
    let p = plan(&spec, &observed);
    assert!(p.steps.is_empty() && !p.invalid.is_empty());
    assert!(plan_delete(&spec.delete_intent(), &observed)
        .steps
        .iter()
        .all(|s| !s.step.takes_lb_lock()));
}

#[test]
fn refusal_text_names_the_opt_in() {
    let before = want(&svc_with(&[(a::AVAILABILITY_ZONE, "az-1")])).expect("ok");
    let observed = created(&before);
    let after = want(&svc_with(&[(a::AVAILABILITY_ZONE, "az-2")])).expect("ok");
    let p = plan(&after, &observed);
    assert!(p.steps.is_empty());
    let text = p.refusals[0].to_string();
    assert!(
        text.contains("availability zone")
            && text.contains("az-2")
            && text.contains("recreate-on-immutable-change"),
        "{text}"
    );
}

#[test]
fn vip_subnet_change_is_refused_then_recreated_on_opt_in() {
    let before = want(&svc_with(&[])).expect("ok");
    let observed = created(&before);
    let other = "1a1a1a1a-0000-4000-8000-000000001a1a";
    let p = plan(
        &want(&svc_with(&[(a::SUBNET_ID, other)])).expect("ok"),
        &observed,
    );
    assert_eq!(p.refusals[0].field, "VIP subnet");
    let p = plan(
        &want(&svc_with(&[
            (a::SUBNET_ID, other),
            (a::RECREATE_ON_IMMUTABLE_CHANGE, "true"),
        ]))
        .expect("ok"),
        &observed,
    );
    assert_eq!(
        ops(&p),
        vec![
            "delete_load_balancer",
            "create_load_balancer",
            "associate_floating_ip"
        ]
    );
    assert_eq!(
        p.steps[1].gate,
        Gate::WhenActive,
        "the create waits until the old LB is gone"
    );
    assert_eq!(
        p.steps[2].step,
        Step::AssociateFloatingIp {
            fip: observed.floating_ips[0].id.clone(),
            port: PortRef::VipOf(Ref::Named(before.name.clone())),
        }
    );
}

#[test]
fn shared_lb_never_gets_our_cluster_tag_or_loses_foreign_ones() {
    let owner = want(&svc_with(&[])).expect("ok");
    let mut observed = created(&owner);
    let lb = observed.load_balancer.as_mut().expect("lb");
    lb.id = "6f0c5a8e-3d4b-4b8e-9a55-1b2c3d4e5f60".into();
    lb.name = "users-own-lb".into();
    lb.tags = vec!["team=web".into()];
    lb.listeners.clear();
    let guest = service(
        "metadata: {name: g, namespace: n, annotations: {loadbalancer.openstack.org/load-balancer-id: 6f0c5a8e-3d4b-4b8e-9a55-1b2c3d4e5f60}}\nspec:\n  ports: [{port: 9100, nodePort: 31100}]\n",
    );
    let spec = want(&guest).expect("ok");
    // Made outside Kubernetes and not opened to namespace n: not joined, nothing touched.
    let refused = plan(&spec, &observed);
    assert!(refused.steps.is_empty(), "{:?}", ops(&refused));
    let why = refused.invalid[0].to_string();
    assert!(
        why.contains(a::SHARED_WITH) && why.contains("kube-shared-with=n"),
        "{why}"
    );
    // The operator's consent: the tag on their load balancer.
    let lb = observed.load_balancer.as_mut().expect("lb");
    lb.tags.push("kube-shared-with=n".into());
    let p = plan(&spec, &observed);
    let Step::UpdateLoadBalancer {
        tags: Some(tags), ..
    } = &p.steps[0].step
    else {
        panic!("tags")
    };
    assert_eq!(
        tags,
        &vec![
            "team=web".to_string(),
            "kube-shared-with=n".to_string(),
            "kube_service_kubernetes_n_g".to_string()
        ]
    );
    assert!(p.steps.iter().all(|s| !s.step.is_fip_write()));
    // Deleting the guest removes only its listener and tag; the user's LB stays.
    let after = apply(&p, &observed);
    let d = plan_delete(&spec.delete_intent(), &after);
    assert_eq!(
        ops(&d),
        vec!["delete_pool", "delete_listener", "update_load_balancer"]
    );
    assert!(apply(&d, &after).load_balancer.is_some());
}

#[test]
fn deleting_the_owner_of_a_shared_lb_keeps_its_address_for_the_others() {
    let owner = want(&svc_with(&[(a::SHARED_WITH, "shop")])).expect("ok");
    let mut observed = created(&owner);
    // The simulated cloud's ids are not UUIDs; the annotation must be one.
    let uuid = "0b7e3a52-8f7c-4d8e-a1b2-3c4d5e6f7a80";
    observed.load_balancer.as_mut().expect("lb").id = uuid.into();
    let lb = observed.load_balancer.as_ref().expect("lb");
    let guest = service(&format!(
        "metadata: {{name: g, namespace: shop, annotations: {{loadbalancer.openstack.org/load-balancer-id: {}}}}}\nspec:\n  ports: [{{port: 9100, nodePort: 31100}}]\n",
        lb.id
    ));
    let guest = want(&guest).expect("ok");
    let shared = apply(&plan(&guest, &observed), &observed);
    assert_eq!(
        shared.load_balancer.as_ref().expect("lb").listeners.len(),
        2
    );
    // The owner goes first: only its listener, pool and name tag go; its FIP stays on the VIP.
    let d = plan_delete(&owner.delete_intent(), &shared);
    assert_eq!(
        ops(&d),
        vec!["delete_pool", "delete_listener", "update_load_balancer"],
        "{:?}",
        d.steps
    );
    let after = apply(&d, &shared);
    assert_eq!(after.floating_ips.len(), 1);
    assert_eq!(
        after.floating_ips[0].port_id,
        after.load_balancer.as_ref().expect("lb").vip_port_id
    );
    // Observed while locked (PENDING_UPDATE, tree unread): who else uses it is unknown, so
    // the address waits for ACTIVE.
    let mut locked = shared.clone();
    let lb = locked.load_balancer.as_mut().expect("lb");
    lb.provisioning_status = ProvisioningStatus::PendingUpdate;
    lb.listeners.clear();
    assert!(!ops(&plan_delete(&owner.delete_intent(), &locked))
        .contains(&"delete_floating_ip".to_string()));
    // Alone on its LB, the owner's FIP is released as before.
    assert_eq!(
        ops(&plan_delete(&owner.delete_intent(), &observed)),
        vec!["delete_floating_ip", "delete_load_balancer"]
    );
}

#[test]
fn deletion_never_blocks_on_gone_or_error() {
    let spec = want(&svc_with(&[])).expect("ok");
    let intent = spec.delete_intent();
    let mut observed = created(&spec);
    observed
        .load_balancer
        .as_mut()
        .expect("lb")
        .provisioning_status = ProvisioningStatus::Error;
    let p = plan_delete(&intent, &observed);
    assert_eq!(ops(&p), vec!["delete_floating_ip", "delete_load_balancer"]);
    assert!(p.steps.iter().all(|s| s.gate == Gate::Now));
    observed
        .load_balancer
        .as_mut()
        .expect("lb")
        .provisioning_status = ProvisioningStatus::PendingDelete;
    assert_eq!(
        ops(&plan_delete(&intent, &observed)),
        vec!["delete_floating_ip"]
    );
    observed.load_balancer = None;
    observed.floating_ips.clear();
    let p = plan_delete(&intent, &observed);
    assert!(p.steps.is_empty() && p.status == Some(Default::default()));
}

#[test]
fn deletion_keeps_user_and_kept_fips() {
    let spec = want(&svc_with(&[(a::KEEP_FLOATINGIP, "true")])).expect("ok");
    let observed = created(&spec);
    assert_eq!(
        ops(&plan_delete(&spec.delete_intent(), &observed)),
        vec!["delete_load_balancer"]
    );
    // An unreadable keep-floatingip keeps the address too.
    let broken = svc_with(&[(a::KEEP_FLOATINGIP, "sure")]);
    let intent = model::DeleteIntent::for_service(&broken, &config(), &features(), &env());
    assert!(intent.keep_floating_ip);
}

#[test]
fn security_group_follows_members_and_is_removed() {
    let mut c = config();
    c.load_balancer.manage_security_groups = true;
    let svc = svc_with(&[]);
    let spec = desired(&svc, &nodes(3), &c, &features(), &env()).expect("ok");
    let observed = created(&spec);
    let sg = observed.security_group.clone().expect("sg created");
    assert_eq!(
        observed
            .node_ports
            .iter()
            .filter(|p| p.security_groups.contains(&sg.id))
            .count(),
        3
    );
    // node-3 leaves: its port loses the group, guarded by its revision.
    let spec2 = desired(&svc, &nodes(2), &c, &features(), &env()).expect("ok");
    let p = plan(&spec2, &observed);
    assert_eq!(
        ops(&p),
        vec!["update_port_security_groups", "batch_update_members"]
    );
    let Step::UpdatePortSecurityGroups {
        port,
        security_groups,
        revision_number,
    } = &p.steps[0].step
    else {
        panic!()
    };
    assert_eq!(
        (port.as_str(), security_groups.clone(), *revision_number),
        ("port-node-3", vec![Ref::Id("default-sg".into())], 4)
    );
    // Deletion detaches it everywhere and deletes it.
    let d = plan_delete(&spec.delete_intent(), &observed);
    assert_eq!(
        ops(&d)
            .iter()
            .filter(|o| *o == "update_port_security_groups")
            .count(),
        3
    );
    assert!(ops(&d).contains(&"delete_security_group".to_string()));
    // A group with our name but no cluster tag is not ours.
    let mut foreign = observed.clone();
    foreign.security_group.as_mut().expect("sg").tags.clear();
    assert!(!ops(&plan_delete(&spec.delete_intent(), &foreign))
        .contains(&"delete_security_group".to_string()));
}

#[test]
fn v1_updates_members_and_method_in_place() {
    let v1 = CloudFeatures::neutron_v1();
    let mut c = config();
    c.load_balancer.placement.subnet_id = Some(NODE_SUBNET.into());
    let svc = svc_with(&[]);
    let spec = desired(&svc, &nodes(3), &c, &v1, &env()).expect("ok");
    let observed = created(&spec);
    assert!(plan(&spec, &observed).steps.is_empty());
    let changed = desired(
        &svc_with(&[(a::LB_METHOD, "SOURCE_IP")]),
        &nodes(2),
        &c,
        &v1,
        &env(),
    )
    .expect("ok");
    let p = plan(&changed, &observed);
    assert_eq!(ops(&p), vec!["update_v1_pool", "delete_v1_member"]);
    assert!(plan(&changed, &apply(&p, &observed)).steps.is_empty());
}

#[test]
fn foreign_cluster_lb_is_a_specific_invalid() {
    let spec = want(&svc_with(&[])).expect("ok");
    let mut observed = created(&spec);
    observed.load_balancer.as_mut().expect("lb").tags =
        vec![spec.name.clone(), naming::cluster_tag(OTHER_CLUSTER_UID)];
    let p = plan(&spec, &observed);
    assert!(p.steps.is_empty());
    assert_eq!(p.invalid[0].reason, model::InvalidReason::ForeignCluster);
    assert!(p.invalid[0].to_string().contains("another cluster"));
}

#[test]
fn plans_round_trip_through_json() {
    let spec = want(&svc_with(&[(a::ENABLE_HEALTH_MONITOR, "true")])).expect("ok");
    let p = plan(&spec, &Observed::default());
    let text = serde_json::to_string(&p).expect("serialize");
    let back: model::Plan = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, p);
}

#[test]
fn allowed_cidrs_that_admit_everyone_are_all_the_same() {
    // OCCM writes ["0.0.0.0/0"] where we write []: an adopted listener is not rewritten for it.
    let svc = svc_with(&[]);
    let spec = want(&svc).expect("ok");
    let mut observed = created(&spec);
    for everyone in [vec!["0.0.0.0/0"], vec!["0.0.0.0/0", "::/0"], vec![]] {
        for l in &mut observed.load_balancer.as_mut().expect("lb").listeners {
            l.allowed_cidrs = everyone.iter().map(|s| s.to_string()).collect();
        }
        assert!(plan(&spec, &observed).is_empty(), "{everyone:?}");
    }
    // A real restriction is still lifted.
    for l in &mut observed.load_balancer.as_mut().expect("lb").listeners {
        l.allowed_cidrs = vec!["10.0.0.0/8".into()];
    }
    assert_eq!(
        ops(&plan(&spec, &observed)).first().map(String::as_str),
        Some("update_listener")
    );
    // A Service restricted to 10.0.0.0/8 keeps the LB built for it as it is.
    let restricted = service(
        "metadata: {name: m, namespace: n}\nspec:\n  loadBalancerSourceRanges: [10.0.0.0/8]\n  ports: [{port: 80, nodePort: 30080}]\n",
    );
    let rspec = desired(&restricted, &nodes(3), &config(), &features(), &env()).expect("ok");
    let robserved = created(&rspec);
    assert!(plan(&rspec, &robserved).is_empty());
}

#[test]
fn no_node_known_keeps_the_members_and_says_so() {
    // A controller that plans before its Node list has loaded (or a cluster whose list came
    // back empty) must not empty the pools: an empty list says nothing about the nodes.
    let svc = svc_with(&[]);
    let observed = created(&want(&svc).expect("ok"));
    let spec = desired(&svc, &[], &config(), &features(), &env()).expect("ok");
    assert!(plan(&spec, &observed).is_empty(), "no member change");
    assert!(
        spec.warnings
            .iter()
            .any(|w| w.reason == model::WarningReason::MeltdownProtection
                && w.message.contains("no Node is known")),
        "{:?}",
        spec.warnings
    );
}

#[test]
fn a_node_selector_that_matches_no_node_is_a_warning() {
    let svc = svc_with(&[(a::NODE_SELECTOR, "pool=gpu")]);
    let spec = want(&svc).expect("ok");
    let w = spec
        .warnings
        .iter()
        .find(|w| w.reason == model::WarningReason::NoEligibleNodes)
        .expect("a Warning");
    assert!(
        w.message.contains("pool=gpu") && w.message.contains("3 nodes"),
        "{w:?}"
    );
    // Asked for explicitly, so the pools are emptied, with the Warning.
    let observed = created(&want(&svc_with(&[])).expect("ok"));
    assert_eq!(ops(&plan(&spec, &observed)), vec!["batch_update_members"]);
}

#[test]
fn our_lb_being_deleted_keeps_the_service_until_it_is_gone() {
    let svc = svc_with(&[]);
    let spec = want(&svc).expect("ok");
    let mut observed = created(&spec);
    let intent = spec.delete_intent();
    observed.floating_ips.clear();
    let lb = observed.load_balancer.as_mut().expect("lb");
    lb.provisioning_status = ProvisioningStatus::PendingDelete;
    let p = plan_delete(&intent, &observed);
    assert!(p.is_empty() && p.wait.is_some(), "{p:?}");
    observed
        .load_balancer
        .as_mut()
        .expect("lb")
        .provisioning_status = ProvisioningStatus::Deleted;
    let p = plan_delete(&intent, &observed);
    assert!(p.is_empty() && p.wait.is_none(), "DELETED is gone: {p:?}");
}

#[test]
fn a_load_balancer_ip_of_the_wrong_family_is_refused_before_anything_exists() {
    let external = service(
        "metadata: {name: m, namespace: n}\nspec:\n  loadBalancerIP: '::1'\n  ports: [{port: 80, nodePort: 30080}]\n",
    );
    let errs = want(&external).expect_err("invalid");
    assert!(
        errs.iter().any(
            |e| e.to_string().contains("spec.loadBalancerIP") && e.to_string().contains("IPv4")
        ),
        "{errs:?}"
    );
    let internal = service(
        "metadata: {name: m, namespace: n, annotations: {service.beta.kubernetes.io/openstack-internal-load-balancer: 'true'}}\nspec:\n  loadBalancerIP: 'fd00::5'\n  ports: [{port: 80, nodePort: 30080}]\n",
    );
    let errs = want(&internal).expect_err("invalid");
    assert!(
        errs.iter().any(|e| e.to_string().contains("fd00::5")),
        "{errs:?}"
    );
}

#[test]
fn shared_with_becomes_a_tag_and_withdrawing_it_removes_only_that_tag() {
    let open = want(&svc_with(&[(a::SHARED_WITH, "shop, team-b")])).expect("ok");
    assert!(open.tags.contains(&"kube-shared-with=shop".to_string()));
    assert!(open.tags.contains(&"kube-shared-with=team-b".to_string()));
    let mut observed = created(&open);
    observed
        .load_balancer
        .as_mut()
        .expect("lb")
        .tags
        .push("owner=ops".into());
    assert!(plan(&open, &observed).is_empty());
    // Consent withdrawn for team-b: its tag goes, every other tag stays.
    let narrower = want(&svc_with(&[(a::SHARED_WITH, "shop")])).expect("ok");
    let p = plan(&narrower, &observed);
    let Step::UpdateLoadBalancer {
        tags: Some(tags), ..
    } = &p.steps[0].step
    else {
        panic!("{:?}", ops(&p))
    };
    assert!(
        !tags.contains(&"kube-shared-with=team-b".to_string()),
        "{tags:?}"
    );
    assert!(tags.contains(&"kube-shared-with=shop".to_string()));
    assert!(tags.contains(&"owner=ops".to_string()));
    // Bad names are refused with the field and the fix.
    let bad = want(&svc_with(&[(a::SHARED_WITH, "Shop_1")])).expect_err("invalid");
    assert_eq!(bad[0].field, a::SHARED_WITH);
    // Without tags there is nowhere to record consent.
    let f = CloudFeatures::octavia(2, 4, Some("amphora"));
    let svc = svc_with(&[(a::SHARED_WITH, "shop")]);
    let e = desired(&svc, &nodes(3), &config(), &f, &env()).expect_err("no tags");
    assert!(e[0].to_string().contains("2.5"), "{}", e[0]);
}
