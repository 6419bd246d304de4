"""Shared machinery of the benchmark (bench/bench.py) and the OCCM migration tier
(tests/occm-migration): a small JSON HTTP client, the kube-apiserver and sandbox clients, the
contender processes and their command lines, bounded polling and request-log counting.

Standard library only."""

import base64
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
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


# ------------------------------------------------------------------ contenders
def user_cloud_conf(base, path, user, password, metadata=()):
    """Writes `base` (the sandbox's cloud.conf) to `path` with another user, so that user's
    calls carry its name in the sandbox request log; `metadata` lines go in a [Metadata]
    section (the sandbox's cloud.conf has none)."""
    text = open(base).read()
    text = re.sub(r"(?m)^username = .*$", f"username = {user}", text)
    text = re.sub(r"(?m)^password = .*$", f"password = {password}", text)
    if metadata:
        text += "\n[Metadata]\n" + "".join(f"{line}\n" for line in metadata)
    with open(path, "w") as f:
        os.chmod(path, 0o600)
        f.write(text)
    return path


def occm_argv(occm_bin, conf, kubeconfig, workers, cluster=None):
    """OCCM's service controller alone. `cluster=None` leaves --cluster-name out, so OCCM
    runs with its default (`kubernetes`), as most installs do. --secure-port=0: no
    metrics/health server, so nothing to authenticate against."""
    argv = [occm_bin, "--cloud-provider=openstack", f"--cloud-config={conf}",
            f"--kubeconfig={kubeconfig}", "--controllers=service", "--leader-elect=false",
            f"--concurrent-service-syncs={workers}",
            "--use-service-account-credentials=false", "--secure-port=0", "--v=2"]
    if cluster is not None:
        argv.append(f"--cluster-name={cluster}")
    return argv


def olbc_argv(olbc_bin, conf, kubeconfig, cluster):
    port, hport = free_port(), free_port()
    return [olbc_bin, "run", "--cloud-config", conf, "--kubeconfig", kubeconfig,
            "--cluster-name", cluster, f"--metrics-addr=127.0.0.1:{port}",
            f"--health-addr=127.0.0.1:{hport}"]


def settle(sb, user, proc, quiet=2.0, limit=60):
    """Waits until `user` has made no call for `quiet` seconds (bounded by `limit`)."""
    t0 = time.monotonic()
    seq = sb.next_seq()
    last = time.monotonic()
    while time.monotonic() - t0 < limit and proc.alive():
        time.sleep(0.5)
        new = sb.requests(seq, user)
        seq = sb.next_seq()
        if new:
            last = time.monotonic()
        elif time.monotonic() - last >= quiet:
            return


def add_node(kube, sb, name, ip):
    """A Node in the cluster and its compute port in the sandbox; returns the port id."""
    port = sb.register_node(name, ip)
    kube.add_node(name, ip)
    return port
