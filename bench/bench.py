#!/usr/bin/env python3
"""Side-by-side benchmark driver (started by bench/run.sh, which owns the sandbox and the
control plane). Runs each contender in turn against them, measures, and writes results.json
and REPORT.md (plus PNG plots when matplotlib is importable).

Standard library only, except matplotlib for the plots."""

import argparse
import base64
import concurrent.futures as cf
import datetime
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


# ------------------------------------------------------------------------------ HTTP
class Http:
    """One small JSON client; a fresh connection per call keeps it thread-safe."""

    def __init__(self, base, ctx=None):
        u = urllib.parse.urlsplit(base)
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.prefix = u.path.rstrip("/")
        self.ctx = ctx

    def call(self, method, path, body=None, headers=None, timeout=30):
        if self.scheme == "https":
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        else:
            c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        if method == "PATCH":
            h["Content-Type"] = "application/merge-patch+json"
        try:
            c.request(method, self.prefix + path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            hdrs = dict(r.getheaders())
        finally:
            c.close()
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            value = raw.decode(errors="replace")
        return r.status, value, hdrs


def kube_client(kubeconfig, workdir):
    text = open(kubeconfig).read()

    def field(name):
        m = re.search(rf"^\s*{name}:\s*(\S+)\s*$", text, re.M)
        if not m:
            raise BenchError(f"{kubeconfig}: no '{name}' (expected the kubeconfig of hack/control-plane.sh)")
        return m.group(1)

    files = {}
    for key in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
        path = os.path.join(workdir, key)
        with open(path, "wb") as f:
            os.chmod(path, 0o600)
            f.write(base64.b64decode(field(key)))
        files[key] = path
    ctx = ssl.create_default_context(cafile=files["certificate-authority-data"])
    ctx.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
    return Http(field("server"), ctx)


class Kube:
    def __init__(self, http):
        self.h = http

    def ok(self, method, path, body=None, expect=(200, 201)):
        status, v, _ = self.h.call(method, path, body)
        if status not in expect:
            raise BenchError(f"kube {method} {path}: {status} {v}")
        return v

    def create_namespace(self, ns):
        self.ok("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}, expect=(201, 409))

    def create_service(self, ns, name):
        body = {
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": "bench"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
                ],
            },
        }
        self.ok("POST", f"/api/v1/namespaces/{ns}/services", body)

    def services(self, ns):
        return self.ok("GET", f"/api/v1/namespaces/{ns}/services")["items"]

    def delete_service(self, ns, name):
        self.ok("DELETE", f"/api/v1/namespaces/{ns}/services/{name}", expect=(200, 202, 404))

    def add_node(self, name, ip):
        # Created with its status, as a kubelet registers: a Node that gets its address only
        # in a later update is synced by OCCM without it (an address change is no trigger).
        status = {"status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "set by the benchmark",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        }}
        created = self.ok("POST", "/api/v1/nodes", {"metadata": {"name": name}, **status},
                          expect=(201, 409))
        if not (created or {}).get("status", {}).get("addresses"):
            self.ok("PATCH", f"/api/v1/nodes/{name}/status", status)

    def delete_node(self, name):
        self.ok("DELETE", f"/api/v1/nodes/{name}", expect=(200, 202, 404))


# -------------------------------------------------------------------------- sandbox
class Sandbox:
    def __init__(self, admin_url):
        self.admin = Http(admin_url)
        st, info, _ = self.admin.call("GET", "/")
        if st != 200:
            raise BenchError(f"sandbox admin API {admin_url}: {st} {info}")
        self.info = info
        self.identity = Http(info["endpoints"]["identity"])
        self.octavia = Http(info["endpoints"]["load-balancer"])
        self.neutron = Http(info["endpoints"]["network"])
        self.token = None
        self.token_at = 0.0

    def add_user(self, name, password):
        st, v, _ = self.admin.call("POST", "/users", {"name": name, "password": password})
        if st not in (201,) and not (st == 400 and "already exists" in json.dumps(v)):
            raise BenchError(f"sandbox POST /users {name}: {st} {v}")

    def login(self, user, password):
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        st, v, h = self.identity.call("POST", "/auth/tokens", body)
        if st != 201:
            raise BenchError(f"keystone login {user}: {st} {v}")
        self.token = h.get("X-Subject-Token") or h.get("x-subject-token")
        self.token_at = time.time()

    def get(self, http, path):
        if time.time() - self.token_at > 1800:
            self.login(*self.observer)
        st, v, _ = http.call("GET", path, headers={"X-Auth-Token": self.token})
        if st != 200:
            raise BenchError(f"sandbox GET {path}: {st} {v}")
        return v

    def lbs(self):
        return self.get(self.octavia, "/v2/lbaas/loadbalancers")["loadbalancers"]

    def status_tree(self, lb_id):
        return self.get(self.octavia, f"/v2/lbaas/loadbalancers/{lb_id}/status")["statuses"]

    def fips(self):
        return self.get(self.neutron, "/v2.0/floatingips")["floatingips"]

    def delete(self, http, path):
        http.call("DELETE", path, headers={"X-Auth-Token": self.token})

    def next_seq(self):
        st, v, _ = self.admin.call("GET", f"/requests?since={2**63}")
        return v["next_since"]

    def requests(self, since, user):
        st, v, _ = self.admin.call("GET", f"/requests?since={since}", timeout=120)
        return [e for e in v["requests"] if e.get("user") == user]

    def register_node(self, name, ip):
        st, v, _ = self.admin.call("POST", "/nodes", {"name": name, "ip_address": ip})
        if st != 201:
            raise BenchError(f"sandbox POST /nodes {name} {ip}: {st} {v}")
        return v["port"]["id"]

    def unregister_node(self, port_id):
        self.admin.call("DELETE", f"/nodes/{port_id}")


# ------------------------------------------------------------------------ processes
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, name, argv, logpath, env=None):
        self.name = name
        self.log = open(logpath, "ab")
        log(f"start {name}: {' '.join(argv)}")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=self.log, env=env,
                                  start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def usage(self):
        """(peak RSS in KiB, CPU seconds) from /proc while the process lives."""
        pid = self.p.pid
        hwm = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat; after "comm)" the list starts at 3.
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        return hwm, cpu

    def stop(self):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)
        self.log.close()


# -------------------------------------------------------------------------- helpers
def wait_until(what, check, timeout, interval):
    """Polls check() (bounded in time) until it returns a truthy value; returns (value, secs)."""
    t0 = time.monotonic()
    while True:
        v = check()
        if v:
            return v, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def count_methods(entries):
    out = {"GET": 0, "POST": 0, "PUT": 0, "DELETE": 0, "other": 0}
    for e in entries:
        m = e["method"].upper()
        out[m if m in out else "other"] += 1
    return out


def per_service(counts, n):
    return {k: round(v / n, 2) for k, v in counts.items()}


def writes(c):
    return c["POST"] + c["PUT"] + c["DELETE"] + c["other"]


# ------------------------------------------------------------------------- the run
class Bench:
    def __init__(self, a):
        self.a = a
        self.kube = Kube(kube_client(a.kubeconfig, a.work))
        self.sb = Sandbox(a.sandbox_admin)
        self.sb.observer = ("bench-observer", "observer-pw")
        self.sb.add_user(*self.sb.observer)
        self.sb.login(*self.sb.observer)
        self.nodes = []
        self.node_octet = a.node_octet
        self.next_node = 1
        self.timeout = a.timeout

    def node_ip(self, i):
        return f"127.{self.node_octet}.{1 + i // 250}.{1 + i % 250}"

    def add_node(self):
        i = self.next_node
        self.next_node += 1
        name, ip = f"bench-node-{i}", self.node_ip(i)
        port = self.sb.register_node(name, ip)
        self.kube.add_node(name, ip)
        self.nodes.append((name, ip, port))
        return name, ip, port

    def remove_node(self, name):
        for n in self.nodes:
            if n[0] == name:
                self.kube.delete_node(name)
                self.sb.unregister_node(n[2])
                self.nodes.remove(n)
                return

    # -- contenders
    def contender_cmd(self, c, user, password, cluster):
        conf = os.path.join(self.a.work, f"cloud-{c['id']}.conf")
        text = open(self.a.cloud_conf).read()
        text = re.sub(r"(?m)^username = .*$", f"username = {user}", text)
        text = re.sub(r"(?m)^password = .*$", f"password = {password}", text)
        with open(conf, "w") as f:
            os.chmod(conf, 0o600)
            f.write(text)
        if c["kind"] == "occm":
            # --secure-port=0: no metrics/health server, so nothing to authenticate against.
            return [self.a.occm_bin, "--cloud-provider=openstack", f"--cloud-config={conf}",
                    f"--kubeconfig={self.a.kubeconfig}",
                    "--controllers=service", "--leader-elect=false",
                    f"--concurrent-service-syncs={c['workers']}", f"--cluster-name={cluster}",
                    "--use-service-account-credentials=false", "--secure-port=0", "--v=2"]
        port, hport = free_port(), free_port()
        return [self.a.olbc_bin, "run", "--cloud-config", conf, "--kubeconfig", self.a.kubeconfig,
                "--cluster-name", cluster, f"--metrics-addr=127.0.0.1:{port}",
                f"--health-addr=127.0.0.1:{hport}"]

    def cloud_empty(self):
        return not self.sb.lbs() and not self.sb.fips()

    def sweep_cloud(self):
        """Deletes whatever a contender left behind, so the next one starts on an empty cloud."""
        left = {"loadbalancers": len(self.sb.lbs()), "floatingips": len(self.sb.fips())}
        for lb in self.sb.lbs():
            self.sb.delete(self.sb.octavia, f"/v2/lbaas/loadbalancers/{lb['id']}?cascade=true")
        for fip in self.sb.fips():
            self.sb.delete(self.sb.neutron, f"/v2.0/floatingips/{fip['id']}")
        wait_until("the sweep to empty the cloud", self.cloud_empty, 120 + 3 * self.a.delay_max, 1)
        return left

    def run_contender(self, c):
        user, password = f"bench-{c['id']}", f"pw-{c['id']}"
        self.sb.add_user(user, password)
        cluster = f"bench-{c['id']}"
        res = {"id": c["id"], "label": c["label"], "sizes": {}, "node": {}}
        if not self.cloud_empty():
            res["swept_before"] = self.sweep_cloud()
        logpath = os.path.join(self.a.work, f"{c['id']}.log")
        proc = Proc(c["id"], self.contender_cmd(c, user, password, cluster), logpath)
        res["log"] = logpath
        try:
            time.sleep(3)  # informers list and sync before the first Service
            if not proc.alive():
                raise BenchError(f"{c['label']} exited at start; see {logpath}")
            for n in self.a.sizes:
                if n > self.a.caps.get(c["id"], n):
                    res.setdefault("skipped", []).append(n)
                    continue
                res["sizes"][str(n)] = self.run_size(c, proc, user, n)
            res["rss_kib"], res["cpu_s"] = proc.usage()
        finally:
            proc.stop()
        left = {"loadbalancers": len(self.sb.lbs()), "floatingips": len(self.sb.fips())}
        if any(left.values()):
            res["left_behind"] = self.sweep_cloud()
        return res

    def run_size(self, c, proc, user, n):
        ns = f"{c['id']}-n{n}-{int(time.time())}"
        self.kube.create_namespace(ns)
        names = [f"svc-{i:03d}" for i in range(n)]
        out = {"n": n}
        _, cpu0 = proc.usage()

        # --- create: N Services at once, time until every one has its IP
        seq0 = self.sb.next_seq()
        t0 = time.monotonic()
        with cf.ThreadPoolExecutor(max_workers=min(32, n)) as ex:
            list(ex.map(lambda s: self.kube.create_service(ns, s), names))
        first = {}

        def all_ips():
            now = time.monotonic() - t0
            for s in self.kube.services(ns):
                if s.get("status", {}).get("loadBalancer", {}).get("ingress"):
                    first.setdefault(s["metadata"]["name"], now)
            if not proc.alive():
                raise BenchError(f"{c['label']} died during create")
            return len(first) == n
        _, secs = wait_until(f"{n} IPs from {c['label']}", all_ips, self.timeout, 0.2)
        out["create_s"] = round(secs, 2)
        times = sorted(first.values())
        out["create_p50_s"] = round(times[len(times) // 2], 2)
        # let the contender finish its after-IP bookkeeping before the calls are counted
        self.settle(user, proc)
        out["create_calls"] = count_methods(self.sb.requests(seq0, user))
        out["create_calls_per_svc"] = per_service(out["create_calls"], n)
        _, cpu1 = proc.usage()
        out["create_cpu_s"] = round(cpu1 - cpu0, 2)
        log(f"{c['label']}: {n} Services have IPs after {secs:.1f}s "
            f"(calls/svc {out['create_calls_per_svc']})")

        # --- node added and removed under N Services
        if n in self.a.node_sizes:
            out["node_add"] = self.node_change(c, proc, user, n, add=True)
            out["node_remove"] = self.node_change(c, proc, user, n, add=False)

        # --- delete all, time until every LB is gone
        seq0 = self.sb.next_seq()
        t0 = time.monotonic()
        with cf.ThreadPoolExecutor(max_workers=min(32, n)) as ex:
            list(ex.map(lambda s: self.kube.delete_service(ns, s), names))

        def gone():
            if not proc.alive():
                raise BenchError(f"{c['label']} died during delete")
            return not self.sb.lbs()
        _, secs = wait_until(f"{c['label']} to delete {n} LBs", gone, self.timeout, 0.3)
        out["delete_s"] = round(secs, 2)
        wait_until("the Services to be gone from the API",
                   lambda: not self.kube.services(ns), 120, 0.3)
        self.settle(user, proc)
        out["delete_calls"] = count_methods(self.sb.requests(seq0, user))
        out["delete_calls_per_svc"] = per_service(out["delete_calls"], n)
        out["fips_left"] = len(self.sb.fips())
        log(f"{c['label']}: {n} LBs gone after {secs:.1f}s")
        return out

    def settle(self, user, proc, quiet=2.0, limit=60):
        """Waits until the contender has made no call for `quiet` seconds (bounded)."""
        t0 = time.monotonic()
        seq = self.sb.next_seq()
        last = time.monotonic()
        while time.monotonic() - t0 < limit and proc.alive():
            time.sleep(0.5)
            new = self.sb.requests(seq, user)
            seq = self.sb.next_seq()
            if new:
                last = time.monotonic()
            elif time.monotonic() - last >= quiet:
                return

    def node_change(self, c, proc, user, n, add):
        lbs = [lb for lb in self.sb.lbs()]
        seq0 = self.sb.next_seq()
        t0 = time.monotonic()
        if add:
            name, ip, _ = self.add_node()
        else:
            name, ip, _ = self.nodes[-1]
            self.remove_node(name)
        listed_at = {}

        def check():
            if not proc.alive():
                raise BenchError(f"{c['label']} died during the node change")
            now = time.monotonic() - t0
            done, active = 0, 0
            pools = 0
            for lb in lbs:
                tree = self.sb.status_tree(lb["id"])["loadbalancer"]
                ok = True
                for lst in tree.get("listeners", []):
                    for pool in lst.get("pools", []):
                        pools += 1
                        has = any(m.get("address") == ip for m in pool.get("members", []))
                        if has != add:
                            ok = False
                if ok:
                    done += 1
                if tree.get("provisioning_status") == "ACTIVE":
                    active += 1
            if done == len(lbs) and "listed" not in listed_at:
                listed_at["listed"] = now
            return "listed" in listed_at and active == len(lbs)
        _, secs = wait_until(f"{c['label']} to {'add' if add else 'remove'} node {name}",
                             check, self.timeout, 0.5)
        self.settle(user, proc)
        calls = count_methods(self.sb.requests(seq0, user))
        r = {"members_s": round(listed_at["listed"], 2), "active_s": round(secs, 2),
             "calls": calls, "calls_per_svc": per_service(calls, n), "lbs": len(lbs)}
        log(f"{c['label']}: node {'added' if add else 'removed'} under {n}: "
            f"pools right after {r['members_s']}s, all ACTIVE after {r['active_s']}s")
        return r


CONTENDERS = {
    "occm1": {"id": "occm1", "kind": "occm", "workers": 1, "label": "OCCM, 1 worker"},
    "occm10": {"id": "occm10", "kind": "occm", "workers": 10, "label": "OCCM, 10 workers"},
    "olbc": {"id": "olbc", "kind": "olbc", "label": "this controller"},
}


def fmt_s(v):
    return "—" if v is None else f"{v:.1f} s"


def write_report(results, path, plots_dir):
    meta = results["meta"]
    cs = results["contenders"]
    d = meta["delay_s"]
    dlabel = f"{d:g} s" if not meta.get("delay_max_s") else f"{d:g}–{meta['delay_max_s']:g} s (uniform)"
    L = []
    L.append(f"# Benchmark: OCCM side by side with openstack-lb-controller\n")
    L.append(f"Run: **{meta['label']}**, {meta['date']}. Sandbox provisioning delay D = {dlabel}; "
             f"{meta['nodes']} nodes; every Service has 2 TCP ports. Machine: {meta['machine']}. "
             f"How to reproduce and what each column means: [README.md](README.md).\n")
    for note in meta.get("notes", []):
        L.append(f"> {note}\n")
    head = "| | " + " | ".join(c["label"] for c in cs) + " | limit (D) |"
    sep = "|---" * (len(cs) + 2) + "|"
    L.append("## Time until every Service has its IP (and the ratio to D)\n")
    L.append(head)
    L.append(sep)

    def cell(v):
        if v is None:
            return "—"
        return f"{v:.1f} s ({v / d:.1f}×)"
    sizes = sorted({int(n) for c in cs for n in c["sizes"]})
    for n in sizes:
        row = [cell(c["sizes"].get(str(n), {}).get("create_s")) for c in cs]
        L.append(f"| {n} Service{'s' if n > 1 else ''} created at once | " + " | ".join(row) + f" | {d:g} s |")
    for n in sizes:
        for kind, word in (("node_add", "added"), ("node_remove", "removed")):
            if any(kind in c["sizes"].get(str(n), {}) for c in cs):
                row = []
                for c in cs:
                    r = c["sizes"].get(str(n), {}).get(kind)
                    row.append("—" if not r else f"{r['members_s']:.1f} s / {r['active_s']:.1f} s")
                L.append(f"| node {word} under {n} (every pool right / all LBs ACTIVE) | " + " | ".join(row) + f" | {d:g} s |")
    for n in sizes:
        row = [cell(c["sizes"].get(str(n), {}).get("delete_s")) for c in cs]
        L.append(f"| {n} Service{'s' if n > 1 else ''} deleted, all LBs gone | " + " | ".join(row) + f" | {d:g} s |")
    L.append("")
    L.append("## OpenStack calls per Service (GET / POST / PUT / DELETE)\n")
    L.append("| phase | " + " | ".join(c["label"] for c in cs) + " |")
    L.append("|---" * (len(cs) + 1) + "|")

    def calls(c_):
        if not c_:
            return "—"
        return f"{c_['GET']:g} / {c_['POST']:g} / {c_['PUT']:g} / {c_['DELETE']:g}"
    for n in sizes:
        L.append(f"| create {n} | " + " | ".join(calls(c["sizes"].get(str(n), {}).get("create_calls_per_svc")) for c in cs) + " |")
    for n in sizes:
        for kind, word in (("node_add", "node added"), ("node_remove", "node removed")):
            if any(kind in c["sizes"].get(str(n), {}) for c in cs):
                L.append(f"| {word} under {n} | " + " | ".join(
                    calls((c["sizes"].get(str(n), {}).get(kind) or {}).get("calls_per_svc")) for c in cs) + " |")
    for n in sizes:
        L.append(f"| delete {n} | " + " | ".join(calls(c["sizes"].get(str(n), {}).get("delete_calls_per_svc")) for c in cs) + " |")
    L.append("")
    L.append("## Memory and CPU of each controller process\n")
    L.append("| | " + " | ".join(c["label"] for c in cs) + " |")
    L.append("|---" * (len(cs) + 1) + "|")
    L.append("| peak RSS (VmHWM) | " + " | ".join(
        "—" if c.get("rss_kib") is None else f"{c['rss_kib'] / 1024:.1f} MiB" for c in cs) + " |")
    L.append("| CPU seconds, whole run (user + system) | " + " | ".join(
        "—" if c.get("cpu_s") is None else f"{c['cpu_s']:.2f} s" for c in cs) + " |")
    for n in sizes:
        L.append(f"| CPU seconds, create {n} | " + " | ".join(
            "—" if c["sizes"].get(str(n), {}).get("create_cpu_s") is None
            else f"{c['sizes'][str(n)]['create_cpu_s']:.2f} s" for c in cs) + " |")
    L.append("")
    for c in cs:
        for k in ("swept_before", "left_behind"):
            if c.get(k):
                L.append(f"> {c['label']}: {k.replace('_', ' ')}: {c[k]} (swept by the harness).\n")
        if c.get("error"):
            L.append(f"> {c['label']}: **failed**: {c['error']}\n")
        if c.get("skipped"):
            L.append(f"> {c['label']}: not run at N = {', '.join(map(str, c['skipped']))} (--cap; "
                     "\"—\" in the tables).\n")
    if results.get("plots"):
        L.append("## Plots\n")
        for p in results["plots"]:
            L.append(f"![{p}]({p})\n")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def plot(results, outdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    cs = results["contenders"]
    made = []
    d = results["meta"]["delay_s"]
    for key, fname, ylabel in (("create_s", "time-to-all-ips.png", "time until every Service has its IP (s)"),
                               (None, "calls-per-service.png", "OpenStack calls per Service on create")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for c in cs:
            ns = sorted(int(n) for n in c["sizes"])
            if key:
                ys = [c["sizes"][str(n)].get(key) for n in ns]
            else:
                ys = [sum(c["sizes"][str(n)]["create_calls_per_svc"].values()) for n in ns]
            pts = [(n, y) for n, y in zip(ns, ys) if y is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=c["label"])
        if key:
            ax.axhline(d, color="grey", linestyle="--", label=f"limit D = {d:g} s")
            ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xlabel("Services created at once (N)")
        ax.set_ylabel(ylabel)
        ax.set_title(results["meta"]["label"], fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, fname), dpi=100)
        plt.close(fig)
        made.append(fname)
    return made


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--sandbox-admin", required=True)
    ap.add_argument("--cloud-conf", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--olbc-bin", required=True)
    ap.add_argument("--occm-bin", default="")
    ap.add_argument("--contenders", default="occm1,occm10,olbc")
    ap.add_argument("--sizes", default="1,10,50")
    ap.add_argument("--node-sizes", default="10")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--node-octet", type=int, required=True)
    ap.add_argument("--delay", type=float, required=True)
    ap.add_argument("--delay-max", type=float, default=0)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--label", default="")
    ap.add_argument("--machine", default="")
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--plots", action="store_true")
    ap.add_argument("--cap", action="append", default=[],
                    help="CONTENDER=N: skip sizes above N for that contender (OCCM with 1 worker "
                         "is sequential: 300 Services take it ~30 min each way)")
    a = ap.parse_args()
    a.caps = {}
    for cap in a.cap:
        cid, _, n = cap.partition("=")
        if cid not in CONTENDERS or not n.isdigit():
            ap.error(f"--cap takes CONTENDER=N with CONTENDER one of {', '.join(CONTENDERS)} (got {cap!r})")
        a.caps[cid] = int(n)
    a.sizes = [int(x) for x in a.sizes.split(",") if x]
    a.node_sizes = [int(x) for x in a.node_sizes.split(",") if x]
    a.delay_max = max(a.delay_max, a.delay)
    bench = Bench(a)
    for _ in range(a.nodes):
        bench.add_node()
    results = {"meta": {
        "label": a.label, "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip(),
        "delay_s": a.delay, "delay_max_s": a.delay_max if a.delay_max > a.delay else None,
        "nodes": a.nodes, "machine": a.machine, "sizes": a.sizes, "node_sizes": a.node_sizes,
        "notes": a.note}, "contenders": []}
    failed = False
    for cid in [x for x in a.contenders.split(",") if x]:
        c = CONTENDERS[cid]
        log(f"=== {c['label']}")
        try:
            res = bench.run_contender(c)
        except BenchError as e:
            failed = True
            log(f"{c['label']} FAILED: {e}")
            res = {"id": cid, "label": c["label"], "sizes": {}, "error": str(e)}
            try:
                res["left_behind"] = bench.sweep_cloud()
            except BenchError as e2:
                log(f"cannot empty the cloud: {e2}")
                results["contenders"].append(res)
                break
        results["contenders"].append(res)
        with open(os.path.join(a.work, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    os.makedirs(a.out_dir, exist_ok=True)
    if a.plots:
        results["plots"] = plot(results, a.out_dir)
    with open(os.path.join(a.out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_report(results, os.path.join(a.out_dir, "REPORT.md"), a.out_dir)
    log(f"report: {os.path.join(a.out_dir, 'REPORT.md')}")
    return 1 if failed else 0


def on_term(signum, frame):
    # Unwinds through the finally blocks, which stop the running contender.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_term)
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"ERROR: {e}")
        sys.exit(1)
