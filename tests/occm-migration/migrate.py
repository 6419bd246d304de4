#!/usr/bin/env python3
"""OCCM -> openstack-lb-controller -> OCCM on one cluster and one cloud (started by run.sh,
which owns the sandbox and the control plane). See docs/migrating-from-occm.md.

1. the real OCCM builds load balancers for a few Services; every id and IP is recorded;
2. OCCM stops, this controller starts with the same cluster name: it must adopt them in place
   (same ids, same IPs, Services Ready) writing nothing but the cluster tags;
3. this controller stops, OCCM starts again: it must keep the same load balancers and IPs,
   then delete one Service cleanly; at the end every Service is deleted and the cloud is empty.

Each contender runs as its own sandbox user, so its share of the request log is its own.
Standard library only; the machinery is bench/harness.py, shared with the benchmark."""

import argparse
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from harness import (BenchError, Kube, Proc, Sandbox, add_node, count_methods,  # noqa: E402
                     kube_client, log, occm_argv, olbc_argv, settle, user_cloud_conf, wait_until)

# OCCM's default --cluster-name, used on purpose: OCCM runs here without the flag, as in the
# upstream manifests, and this controller is told the same name as the migration guide says.
CLUSTER = "kubernetes"
NS = "shop"
LB_ID_ANNOTATION = "loadbalancer.openstack.org/load-balancer-id"
CLUSTER_TAG = "kube-cluster-uid="
# Every wait is bounded; generous for a loaded 2-core machine.
WAIT = 120

# Services OCCM builds. Everything here is something both controllers support the same way.
SERVICES = {
    # two TCP ports: two listeners, two pools
    "web": {"ports": [("http", 80, 8080), ("https", 443, 8443)], "annotations": {}, "spec": {}},
    # source ranges (listener allowed_cidrs) and one health monitor per pool
    "guarded": {
        "ports": [("http", 80, 8080)],
        "annotations": {"loadbalancer.openstack.org/enable-health-monitor": "true"},
        "spec": {"loadBalancerSourceRanges": ["127.0.0.0/8", "10.20.0.0/16"]},
    },
    # the one OCCM deletes alone in phase 3
    "plain": {"ports": [("tcp", 5432, 5432)], "annotations": {}, "spec": {}},
}


def service_body(name, s):
    return {
        "metadata": {"name": name, "namespace": NS, "annotations": s["annotations"]},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": name},
            "ports": [{"name": n, "port": p, "targetPort": t, "protocol": "TCP"}
                      for n, p, t in s["ports"]],
            **s["spec"],
        },
    }


def lb_name(svc):
    return f"kube_service_{CLUSTER}_{NS}_{svc}"


class Migration:
    def __init__(self, a):
        self.a = a
        self.kube = Kube(kube_client(a.kubeconfig, a.work))
        self.sb = Sandbox(a.sandbox_admin)
        self.sb.observer = ("migration-observer", "observer-pw")
        self.sb.add_user(*self.sb.observer)
        self.sb.login(*self.sb.observer)
        self.procs = []
        self.figures = {}

    # ------------------------------------------------------------------ contenders
    def start(self, who, kind):
        user, password = f"mig-{who}", f"pw-{who}"
        self.sb.add_user(user, password)
        conf = user_cloud_conf(self.a.cloud_conf, os.path.join(self.a.work, f"cloud-{who}.conf"),
                               user, password)
        if kind == "occm":
            # No --cluster-name: OCCM's own default, "kubernetes".
            argv = occm_argv(self.a.occm_bin, conf, self.a.kubeconfig, workers=3)
        else:
            argv = olbc_argv(self.a.olbc_bin, conf, self.a.kubeconfig, CLUSTER)
        p = Proc(who, argv, os.path.join(self.a.work, f"{who}.log"))
        self.procs.append(p)
        return p, user

    def stop_all(self):
        for p in self.procs:
            p.stop()

    # ---------------------------------------------------------------------- reads
    def octavia(self, path):
        return self.sb.get(self.sb.octavia, path)

    def snapshot(self):
        """Every id and the settings that matter, per Service, read from the cloud."""
        lbs = {lb["name"]: lb for lb in self.sb.lbs()}
        fips = self.sb.fips()
        out = {}
        for svc in SERVICES:
            lb = lbs.get(lb_name(svc))
            if lb is None:
                out[svc] = None
                continue
            listeners = self.octavia(f"/v2/lbaas/listeners?loadbalancer_id={lb['id']}")["listeners"]
            pools = self.octavia(f"/v2/lbaas/pools?loadbalancer_id={lb['id']}")["pools"]
            members, monitors = {}, {}
            for p in pools:
                members[p["id"]] = sorted(
                    (m["id"], m["address"], m["protocol_port"])
                    for m in self.octavia(f"/v2/lbaas/pools/{p['id']}/members")["members"])
                if p.get("healthmonitor_id"):
                    hm = self.octavia(f"/v2/lbaas/healthmonitors/{p['healthmonitor_id']}")["healthmonitor"]
                    monitors[p["id"]] = {k: hm.get(k) for k in (
                        "id", "name", "type", "delay", "timeout", "max_retries", "max_retries_down")}
            fip = [f for f in fips if f.get("port_id") == lb["vip_port_id"]]
            out[svc] = {
                "lb": {k: lb.get(k) for k in ("id", "name", "description", "vip_address",
                                              "vip_port_id", "vip_subnet_id", "provisioning_status")},
                "lb_tags": sorted(lb.get("tags") or []),
                "listeners": sorted((l["id"], l["name"], l["protocol"], l["protocol_port"],
                                     tuple(l.get("allowed_cidrs") or []),
                                     l.get("default_pool_id")) for l in listeners),
                "pools": sorted((p["id"], p["name"], p["protocol"], p["lb_algorithm"]) for p in pools),
                "members": members,
                "monitors": monitors,
                "fips": sorted((f["id"], f["floating_ip_address"], f.get("description") or "")
                               for f in fip),
                "fip_tags": sorted(t for f in fip for t in (f.get("tags") or [])),
            }
        return out

    def ingress(self):
        ips = {}
        for s in self.kube.services(NS):
            ing = s.get("status", {}).get("loadBalancer", {}).get("ingress") or []
            ips[s["metadata"]["name"]] = [i.get("ip") or i.get("hostname") for i in ing]
        return ips

    def ready(self, svc):
        s = self.kube.ok("GET", f"/api/v1/namespaces/{NS}/services/{svc}")
        for c in s.get("status", {}).get("conditions") or []:
            if c.get("type") == "LoadBalancerReady":
                return c.get("status") == "True"
        return False

    # ------------------------------------------------------------------- checks
    @staticmethod
    def ids(snap):
        """The identity of every object, without settings that may legitimately change."""
        return {svc: None if s is None else {
            "lb": s["lb"]["id"], "vip": s["lb"]["vip_address"],
            "listeners": [l[0] for l in s["listeners"]], "pools": [p[0] for p in s["pools"]],
            "members": sorted(m[0] for ms in s["members"].values() for m in ms),
            "monitors": sorted(m["id"] for m in s["monitors"].values()),
            "fips": [f[0] for f in s["fips"]], "ips": [f[1] for f in s["fips"]],
        } for svc, s in snap.items()}

    @staticmethod
    def untagged(snap):
        """The snapshot without the tags and the provisioning status: what adoption keeps."""
        out = json.loads(json.dumps(snap))
        for s in out.values():
            if s:
                s.pop("lb_tags")
                s.pop("fip_tags")
                s["lb"].pop("provisioning_status")
        return out

    def expect(self, what, cond, detail=""):
        self.figures.setdefault("checks", {})[what] = bool(cond)
        if not cond:
            raise BenchError(f"{what}{': ' + detail if detail else ''}")
        log(f"ok: {what}")

    # ------------------------------------------------------------- request log
    @staticmethod
    def classify(entries):
        """Writes by kind: Keystone logins are not writes to the cloud; a PUT on a load
        balancer and a tag PUT on a floating IP are the cluster-tag writes; anything else is
        listed in full."""
        tag, other = [], []
        for e in entries:
            m, p = e["method"].upper(), e["path"]
            if m == "GET" or p.rstrip("/").endswith("/auth/tokens"):
                continue
            if (m == "PUT" and re.fullmatch(r"/v2(\.0)?/lbaas/loadbalancers/[^/]+", p)) or \
                    (m == "PUT" and re.fullmatch(r"/v2\.0/floatingips/[^/]+/tags/[^/]+", p)):
                tag.append(f"{m} {p}")
            else:
                other.append(f"{m} {p}")
        return tag, other

    def phase_figures(self, name, seq0, user):
        entries = self.sb.requests(seq0, user)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        with open(os.path.join(self.a.work, f"requests-{slug}.json"), "w") as fh:
            json.dump(entries, fh, indent=1)
        calls = count_methods(entries)
        tag, other = self.classify(entries)
        self.figures[name] = {"calls": calls, "tag_writes": tag, "other_writes": other}
        log(f"{name}: calls by method {calls}; tag writes {len(tag)}; other writes {len(other)}")
        for w in other:
            log(f"  {name} wrote: {w}")
        return calls, tag, other

    # ------------------------------------------------------------------ phases
    def run(self):
        for i, name in enumerate(("mig-node-1", "mig-node-2")):
            add_node(self.kube, self.sb, name, f"127.{self.a.node_octet}.1.{i + 1}")
        self.kube.create_namespace(NS)
        snap1 = self.phase1()
        snap2 = self.phase2(snap1)
        self.phase3(snap2)

    def phase1(self):
        log("=== phase 1: OCCM builds the load balancers")
        occm, user = self.start("occm-1", "occm")
        seq0 = self.sb.next_seq()
        time.sleep(2)  # informers list and sync before the first Service
        for name, s in SERVICES.items():
            self.kube.ok("POST", f"/api/v1/namespaces/{NS}/services", service_body(name, s))

        def all_ips():
            if not occm.alive():
                raise BenchError(f"OCCM exited; see {occm.log.name}")
            ips = self.ingress()
            return all(ips.get(s) for s in SERVICES) and ips
        ips, secs = wait_until("OCCM to give every Service an IP", all_ips, WAIT, 0.5)
        settle(self.sb, user, occm, quiet=3.0, limit=WAIT)
        log(f"OCCM: every Service has its IP after {secs:.1f} s: {ips}")
        self.phase_figures("1 OCCM builds", seq0, user)
        occm.stop()
        snap = self.snapshot()
        for svc, s in snap.items():
            self.expect(f"OCCM built {svc}'s load balancer", s is not None)
            self.expect(f"{svc}: the Service's IP is OCCM's floating IP",
                        [f[1] for f in s["fips"]] == ips[svc], f"{s['fips']} vs {ips[svc]}")
            self.expect(f"{svc}: no cluster tag yet",
                        not any(t.startswith(CLUSTER_TAG) for t in s["lb_tags"] + s["fip_tags"]))
        self.expect("web: 2 listeners, 2 pools",
                    len(snap["web"]["listeners"]) == 2 and len(snap["web"]["pools"]) == 2)
        self.expect("guarded: a health monitor and the source ranges",
                    len(snap["guarded"]["monitors"]) == 1
                    and set(snap["guarded"]["listeners"][0][4]) == {"127.0.0.0/8", "10.20.0.0/16"})
        cidrs = sorted({c for s in snap.values() for l in s["listeners"] for c in l[4]})
        log(f"OCCM's allowed_cidrs, all listeners: {cidrs}")
        self.figures["occm_allowed_cidrs"] = cidrs
        self.figures["ids"] = self.ids(snap)
        self.figures["ips"] = ips
        self.figures["tags"] = {svc: {"occm": s["lb_tags"] + s["fip_tags"]} for svc, s in snap.items()}
        return snap

    def phase2(self, snap1):
        log("=== phase 2: OCCM stopped; this controller adopts in place")
        seq0 = self.sb.next_seq()
        olbc, user = self.start("olbc", "olbc")

        def adopted():
            if not olbc.alive():
                raise BenchError(f"this controller exited; see {olbc.log.name}")
            if not all(self.ready(s) for s in SERVICES):
                return False
            snap = self.snapshot()
            return all(s and any(t.startswith(CLUSTER_TAG) for t in s["lb_tags"])
                       and any(t.startswith(CLUSTER_TAG) for t in s["fip_tags"])
                       for s in snap.values()) and snap
        snap2, secs = wait_until("this controller to adopt every Service (Ready, tagged)",
                                 adopted, WAIT, 0.5)
        settle(self.sb, user, olbc, quiet=3.0, limit=WAIT)
        log(f"this controller: every Service Ready and tagged after {secs:.1f} s")
        _, tag, other = self.phase_figures("2 this controller adopts", seq0, user)
        olbc.stop()
        snap2 = self.snapshot()
        ips2 = self.ingress()
        for svc, s in snap2.items():
            self.figures["tags"][svc]["adopted"] = s["lb_tags"] + s["fip_tags"]
        self.expect("same ids after adoption (LB, listeners, pools, members, monitor, FIP)",
                    self.ids(snap2) == self.figures["ids"],
                    json.dumps({"before": self.figures["ids"], "after": self.ids(snap2)}))
        self.expect("same external IPs after adoption", ips2 == self.figures["ips"],
                    f"{self.figures['ips']} -> {ips2}")
        self.expect("nothing but tags changed on the cloud objects",
                    self.untagged(snap2) == self.untagged(snap1),
                    json.dumps({"before": self.untagged(snap1), "after": self.untagged(snap2)}))
        for svc in SERVICES:
            s = self.kube.ok("GET", f"/api/v1/namespaces/{NS}/services/{svc}")
            self.expect(f"{svc}: load-balancer-id annotation is OCCM's LB",
                        s["metadata"].get("annotations", {}).get(LB_ID_ANNOTATION)
                        == snap1[svc]["lb"]["id"])
        per_svc = {}
        for w in tag:
            for svc, s in snap2.items():
                if s["lb"]["id"] in w or any(f[0] in w for f in s["fips"]):
                    per_svc[svc] = per_svc.get(svc, 0) + 1
        self.figures["tag_writes_per_service"] = per_svc
        self.expect("this controller wrote only the cluster tags", not other, "; ".join(other))
        self.expect("2 tag writes per Service (load balancer, floating IP)",
                    per_svc == {svc: 2 for svc in SERVICES}, str(per_svc))
        return snap2

    def phase3(self, snap2):
        log("=== phase 3: this controller stopped; OCCM runs again")
        seq0 = self.sb.next_seq()
        occm, user = self.start("occm-2", "occm")

        # OCCM syncs every Service once at start; each sync reads its LB, by the id in the
        # Service's annotation or by name.
        def synced():
            if not occm.alive():
                raise BenchError(f"OCCM exited; see {occm.log.name}")
            seen = [f"{e['path']}?{e.get('query') or ''}" for e in self.sb.requests(seq0, user)
                    if e["method"] == "GET" and "/lbaas/loadbalancers" in e["path"]]
            return all(any(s["lb"]["id"] in r or lb_name(svc) in r for r in seen)
                       for svc, s in snap2.items())
        wait_until("OCCM to sync every Service again", synced, WAIT, 0.5)
        settle(self.sb, user, occm, quiet=3.0, limit=WAIT)
        self.phase_figures("3 OCCM takes over again", seq0, user)
        snap3 = self.snapshot()
        self.expect("OCCM keeps the same ids", self.ids(snap3) == self.figures["ids"],
                    json.dumps({"before": self.figures["ids"], "after": self.ids(snap3)}))
        self.expect("OCCM keeps the same external IPs", self.ingress() == self.figures["ips"])
        self.expect("no new load balancer or floating IP",
                    len(self.sb.lbs()) == len(SERVICES) and len(self.sb.fips()) == len(SERVICES))

        seq1 = self.sb.next_seq()
        self.kube.delete_service(NS, "plain")
        plain = snap3["plain"]
        wait_until("OCCM to delete plain's LB and FIP", lambda: not any(
            lb["id"] == plain["lb"]["id"] for lb in self.sb.lbs()) and not any(
            f["id"] == plain["fips"][0][0] for f in self.sb.fips()), WAIT, 0.5)
        wait_until("the Service plain to be gone (finalizer removed)",
                   lambda: "plain" not in {s["metadata"]["name"] for s in self.kube.services(NS)},
                   WAIT, 0.5)
        settle(self.sb, user, occm, quiet=2.0, limit=WAIT)
        self.phase_figures("3b OCCM deletes one Service", seq1, user)
        self.expect("the others are untouched",
                    self.ids(self.snapshot()) | {"plain": None}
                    == self.figures["ids"] | {"plain": None})

        seq2 = self.sb.next_seq()
        for svc in SERVICES:
            if svc != "plain":
                self.kube.delete_service(NS, svc)
        wait_until("OCCM to delete every LB and FIP",
                   lambda: not self.sb.lbs() and not self.sb.fips(), WAIT, 0.5)
        wait_until("every Service gone", lambda: not self.kube.services(NS), WAIT, 0.5)
        settle(self.sb, user, occm, quiet=2.0, limit=WAIT)
        self.phase_figures("3c OCCM deletes the rest", seq2, user)
        occm.stop()
        lbs, fips = len(self.sb.lbs()), len(self.sb.fips())
        self.figures["left"] = {"loadbalancers": lbs, "floatingips": fips}
        self.expect("nothing leaks: 0 load balancers, 0 floating IPs", lbs == 0 and fips == 0,
                    f"{lbs} LBs, {fips} FIPs")

    # ----------------------------------------------------------------- figures
    def print_figures(self):
        f = self.figures
        print("\n--- OCCM -> openstack-lb-controller -> OCCM: figures")
        if "ids" in f:
            for svc, i in f["ids"].items():
                print(f"{svc:8} LB {i['lb']}  listeners {len(i['listeners'])}  pools {len(i['pools'])}"
                      f"  members {len(i['members'])}  monitors {len(i['monitors'])}"
                      f"  FIP {', '.join(i['fips'])}  IP {', '.join(i['ips'])}")
        if "occm_allowed_cidrs" in f:
            print(f"OCCM's allowed_cidrs on the listeners: {f['occm_allowed_cidrs']}")
        print(f"{'phase':32} {'GET':>4} {'POST':>4} {'PUT':>4} {'DEL':>4}  tag writes  other writes")
        for name, p in f.items():
            if isinstance(p, dict) and "calls" in p:
                c = p["calls"]
                print(f"{name:32} {c['GET']:>4} {c['POST']:>4} {c['PUT']:>4} {c['DELETE']:>4}"
                      f"  {len(p['tag_writes']):>10}  {len(p['other_writes']):>12}")
                for w in p["other_writes"]:
                    print(f"{'':34}{w}")
        for svc, t in f.get("tags", {}).items():
            print(f"{svc:8} tags (LB + FIP): from OCCM {t['occm']} -> after adoption {t.get('adopted')}")
        if "tag_writes_per_service" in f:
            print(f"tag writes per Service by this controller: {f['tag_writes_per_service']}")
        checks = f.get("checks", {})
        for k in ("same ids after adoption (LB, listeners, pools, members, monitor, FIP)",
                  "same external IPs after adoption", "nothing but tags changed on the cloud objects",
                  "OCCM keeps the same ids", "OCCM keeps the same external IPs",
                  "no new load balancer or floating IP"):
            if k in checks:
                print(f"{k}: {'yes' if checks[k] else 'NO'}")
        if "left" in f:
            print(f"left at the end: {f['left']['loadbalancers']} LBs, "
                  f"{f['left']['floatingips']} FIPs")
        print("(calls of each controller's own sandbox user; Keystone logins are not counted as writes)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--sandbox-admin", required=True)
    ap.add_argument("--cloud-conf", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--olbc-bin", required=True)
    ap.add_argument("--occm-bin", required=True)
    ap.add_argument("--node-octet", type=int, required=True)
    ap.add_argument("--figures", help="also write the figures as JSON here")
    a = ap.parse_args()
    m = Migration(a)
    try:
        m.run()
        rc = 0
    except BenchError as e:
        log(f"FAILED: {e}")
        rc = 1
    finally:
        m.stop_all()
        m.print_figures()
        if a.figures:
            with open(a.figures, "w") as fh:
                json.dump(m.figures, fh, indent=1)
    return rc


def on_term(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_term)
    sys.exit(main())
