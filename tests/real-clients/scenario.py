#!/usr/bin/env python3
"""Client scenarios for the real-clients fidelity check (docs/fidelity.md, "Real clients").

    scenario.py cli  --proxy URL --public-network ID --vip-subnet ID --prefix P
    scenario.py occm --proxy URL --public-network ID --vip-subnet ID --prefix P
                     --occm BIN --kubeconfig FILE --work DIR

OS_* in the environment point at the recording proxy's Keystone. Before each client action the
current step is announced to the proxy (POST URL/__fid/step?name=...), so the recording is
grouped by step. Runs inside the pinned openstack CLI venv (tests/cli-conformance): the CLI
commands are python-openstackclient's own shell, called in-process (one fresh shell, hence a
fresh authentication, per command, as separate `openstack` runs would do, without paying the
interpreter start-up 60 times). Every wait is bounded; an unexpected failure ends the run
with a message naming the step.
"""
import argparse
import contextlib
import io
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

TIMEOUT = float(os.environ.get("REAL_CLIENTS_TIMEOUT", "120"))


class ScenarioError(Exception):
    pass


class Scenario:
    def __init__(self, a):
        self.a = a
        self.t0 = time.monotonic()

    def mark(self, step):
        url = f"{self.a.proxy}/__fid/step?name={urllib.parse.quote(step)}"
        urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10).read()

    def say(self, msg):
        print(f"[{time.monotonic() - self.t0:6.1f}s] {self.a.target}: {msg}", flush=True)

    def osc(self, step, *args, fail=False):
        """Runs `openstack ARGS` as step STEP; returns stdout. `fail`: the step is an error
        case, a success is reported by the comparison (status), not here."""
        from openstackclient.shell import OpenStackShell

        self.mark(step)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = OpenStackShell().run(list(args))
            except SystemExit as e:  # argparse errors
                rc = e.code if isinstance(e.code, int) else 1
        if rc != 0 and not fail:
            raise ScenarioError(f"step {step}: openstack {' '.join(args)} failed (rc {rc}): {err.getvalue().strip()[-600:]}")
        return out.getvalue()

    def osj(self, step, *args):
        return json.loads(self.osc(step, *args, "-f", "json"))

    def wait_lb(self, step, lb_id, want="ACTIVE"):
        deadline = time.monotonic() + TIMEOUT
        got = ""
        while time.monotonic() < deadline:
            got = self.osc(step, "loadbalancer", "show", lb_id, "-f", "value", "-c", "provisioning_status").strip()
            if got == want:
                return
            if got == "ERROR":
                raise ScenarioError(f"step {step}: load balancer went to ERROR")
            time.sleep(0.5)
        raise ScenarioError(f"step {step}: load balancer still {got!r} after {TIMEOUT}s, wanted {want}")

    def wait_gone(self, step, lb_id):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            out = self.osc(step, "loadbalancer", "list", "-f", "value", "-c", "id")
            if lb_id not in out.split():
                return
            time.sleep(0.5)
        raise ScenarioError(f"step {step}: load balancer {lb_id} still listed after {TIMEOUT}s")


def run_cli(s):
    a = s.a
    p = a.prefix
    s.osc("token-issue", "token", "issue", "-f", "value", "-c", "expires")
    lb = s.osj("lb-create", "loadbalancer", "create", "--name", f"{p}-lb", "--vip-subnet-id", a.vip_subnet,
               "--description", "real clients", "--tag", f"{p}-t1")
    lb_id, vip_port = lb["id"], lb["vip_port_id"]
    s.wait_lb("lb-create-wait", lb_id)
    s.say("load balancer ACTIVE")
    s.osc("lb-show-by-name", "loadbalancer", "show", f"{p}-lb", "-f", "json")
    s.osc("lb-list-filters", "loadbalancer", "list", "--name", f"{p}-lb", "--provisioning-status", "ACTIVE",
          "--vip-subnet-id", a.vip_subnet, "-f", "json")
    s.osc("lb-list-tags", "loadbalancer", "list", "--tags", f"{p}-t1", "-f", "json")
    s.osc("lb-set-tag", "loadbalancer", "set", "--tag", f"{p}-t2", "--description", "set by the CLI", lb_id)
    s.wait_lb("lb-set-wait", lb_id)
    s.osc("lb-unset-tag", "loadbalancer", "unset", "--tag", f"{p}-t2", lb_id)
    s.wait_lb("lb-unset-wait", lb_id)

    listener = s.osj("listener-create", "loadbalancer", "listener", "create", "--name", f"{p}-l80", "--protocol",
                     "TCP", "--protocol-port", "80", "--allowed-cidr", "10.0.0.0/8", lb_id)
    s.wait_lb("listener-create-wait", lb_id)
    s.osc("listener-create-duplicate-port", "loadbalancer", "listener", "create", "--name", f"{p}-dup",
          "--protocol", "TCP", "--protocol-port", "80", lb_id, fail=True)
    s.osc("listener-set", "loadbalancer", "listener", "set", "--description", "d", "--connection-limit", "100",
          listener["id"])
    s.wait_lb("listener-set-wait", lb_id)
    s.osc("listener-list", "loadbalancer", "listener", "list", "--loadbalancer", lb_id, "-f", "json")
    s.osc("listener-show-by-name", "loadbalancer", "listener", "show", f"{p}-l80", "-f", "json")

    pool = s.osj("pool-create", "loadbalancer", "pool", "create", "--name", f"{p}-pool", "--listener",
                 listener["id"], "--protocol", "TCP", "--lb-algorithm", "ROUND_ROBIN")
    s.wait_lb("pool-create-wait", lb_id)
    s.osc("pool-create-source-ip-port", "loadbalancer", "pool", "create", "--name", f"{p}-sip", "--loadbalancer",
          lb_id, "--protocol", "TCP", "--lb-algorithm", "SOURCE_IP_PORT", fail=True)
    s.osc("pool-set", "loadbalancer", "pool", "set", "--lb-algorithm", "LEAST_CONNECTIONS",
          "--session-persistence", "type=SOURCE_IP", pool["id"])
    s.wait_lb("pool-set-wait", lb_id)
    s.osc("pool-list", "loadbalancer", "pool", "list", "--loadbalancer", lb_id, "-f", "json")

    net = ipaddress.ip_network(s.osj("subnet-show", "subnet", "show", a.vip_subnet)["cidr"])
    m_addr = str(net.network_address + 60)
    member = s.osj("member-create", "loadbalancer", "member", "create", "--name", f"{p}-m1", "--subnet-id",
                   a.vip_subnet, "--address", m_addr, "--protocol-port", "8080", pool["id"])
    s.wait_lb("member-create-wait", lb_id)
    s.osc("member-create-duplicate", "loadbalancer", "member", "create", "--subnet-id", a.vip_subnet,
          "--address", m_addr, "--protocol-port", "8080", pool["id"], fail=True)
    s.osc("member-set", "loadbalancer", "member", "set", "--weight", "5", pool["id"], member["id"])
    s.wait_lb("member-set-wait", lb_id)
    s.osc("member-list", "loadbalancer", "member", "list", pool["id"], "-f", "json")

    hm = s.osj("hm-create", "loadbalancer", "healthmonitor", "create", "--name", f"{p}-hm", "--type", "TCP",
               "--delay", "5", "--timeout", "3", "--max-retries", "2", pool["id"])
    s.wait_lb("hm-create-wait", lb_id)
    s.osc("hm-set", "loadbalancer", "healthmonitor", "set", "--delay", "10", hm["id"])
    s.wait_lb("hm-set-wait", lb_id)
    s.osc("hm-show", "loadbalancer", "healthmonitor", "show", hm["id"], "-f", "json")
    s.osc("lb-status", "loadbalancer", "status", "show", lb_id)
    s.osc("lb-stats", "loadbalancer", "stats", "show", lb_id, "-f", "json")
    s.osc("lb-delete-with-children", "loadbalancer", "delete", lb_id, fail=True)
    s.say("listener, pool, member, monitor done")

    fip = s.osj("fip-create", "floating", "ip", "create", a.public_network, "--description", "real clients",
                "--tag", f"{p}-f")
    s.osc("fip-set-port", "floating", "ip", "set", "--port", vip_port, fip["id"])
    s.osc("fip-show", "floating", "ip", "show", fip["id"], "-f", "json")
    s.osc("fip-list-port", "floating", "ip", "list", "--port", vip_port, "-f", "json")
    s.osc("fip-list-tags", "floating", "ip", "list", "--tags", f"{p}-f", "-f", "json")
    s.osc("fip-set-tag", "floating", "ip", "set", "--tag", f"{p}-g", fip["id"])
    s.osc("fip-unset-port", "floating", "ip", "unset", "--port", fip["id"])
    s.osc("fip-delete", "floating", "ip", "delete", fip["id"])
    s.osc("fip-show-deleted", "floating", "ip", "show", fip["id"], fail=True)
    s.osc("port-show", "port", "show", vip_port, "-f", "json")
    s.osc("port-set-tag", "port", "set", "--tag", f"{p}-p", vip_port)
    s.osc("port-list-tags", "port", "list", "--tags", f"{p}-p", "-f", "json")
    s.osc("port-unset-tag", "port", "unset", "--tag", f"{p}-p", vip_port)
    s.say("floating IP and port done")

    s.osc("hm-delete", "loadbalancer", "healthmonitor", "delete", hm["id"])
    s.wait_lb("hm-delete-wait", lb_id)
    s.osc("member-delete", "loadbalancer", "member", "delete", pool["id"], member["id"])
    s.wait_lb("member-delete-wait", lb_id)
    s.osc("pool-delete", "loadbalancer", "pool", "delete", pool["id"])
    s.wait_lb("pool-delete-wait", lb_id)
    s.osc("listener-delete", "loadbalancer", "listener", "delete", listener["id"])
    s.wait_lb("listener-delete-wait", lb_id)
    s.osc("lb-delete", "loadbalancer", "delete", lb_id)
    s.wait_gone("lb-delete-wait", lb_id)
    s.osc("lb-show-deleted", "loadbalancer", "show", lb_id, fail=True)
    s.osc("lb-show-missing-name", "loadbalancer", "show", f"{p}-nothing", fail=True)
    s.say("deleted")


# ----------------------------------------------------------------------------- OCCM


def kubectl(a, *args, stdin=None):
    r = subprocess.run(["kubectl", f"--kubeconfig={a.kubeconfig}", *args], input=stdin, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise ScenarioError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def event_count(a, ns, reason):
    items = json.loads(kubectl(a, "get", "events", "-n", ns, "-o", "json"))["items"]
    n = 0
    for e in items:
        if e.get("reason") == reason:
            n += max(e.get("count") or 1, ((e.get("series") or {}).get("count") or 0))
    return n


def upstream_conn(a):
    """A connection straight to the cloud, past the proxy: what the scenario checks to know
    OCCM is done is not OCCM's traffic and is not recorded."""
    import openstack

    return openstack.connect(
        auth_url=a.upstream_auth_url, username=os.environ["OS_USERNAME"], password=os.environ["OS_PASSWORD"],
        project_name=os.environ["OS_PROJECT_NAME"],
        user_domain_name=os.environ.get("OS_USER_DOMAIN_NAME", "Default"),
        project_domain_name=os.environ.get("OS_PROJECT_DOMAIN_NAME", "Default"),
        region_name=os.environ.get("OS_REGION_NAME", "RegionOne"))


def lb_state(conn, name):
    """(provisioning_status, {listener port: sorted member addresses}) or None when absent.
    A listener or pool that vanishes between the reads (a cascade delete in progress) gives
    ("CHANGING", {}): the caller's wait looks again instead of failing on the 404."""
    lbs = [lb for lb in conn.load_balancer.load_balancers(name=name) if lb.name == name]
    if not lbs:
        return None
    import openstack  # only in the OCCM runs' venv, like upstream_conn's

    lb = lbs[0]
    ports = {}
    try:
        for pool in conn.load_balancer.pools(loadbalancer_id=lb.id):
            if not any(x["id"] == lb.id for x in pool.loadbalancers or []):
                continue
            for lref in pool.listeners or []:
                listener = conn.load_balancer.get_listener(lref["id"])
                ports[listener.protocol_port] = sorted(m.address for m in conn.load_balancer.members(pool.id))
    except openstack.exceptions.NotFoundException:
        return "CHANGING", {}
    return lb.provisioning_status, ports


def wait_until(s, what, proc, check):
    deadline = time.monotonic() + TIMEOUT
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ScenarioError(f"OCCM exited (rc {proc.returncode}) while waiting for {what}")
        ok, last = check()
        if ok:
            return
        time.sleep(0.5)
    raise ScenarioError(f"{what}: not reached after {TIMEOUT}s (last seen: {last}); OCCM log: {s.a.work}/occm.log")


def proxy_idle(s):
    """(seconds since the last proxied request, requests proxied so far)."""
    idle, count = urllib.request.urlopen(f"{s.a.proxy}/__fid/idle", timeout=10).read().split()
    return float(idle), int(count)


def wait_quiet(s, seconds=3.0, after=None):
    """Until OCCM has sent nothing for `seconds` (and, with `after`, more than `after`
    requests went through the proxy), so that its trailing requests of one step are not
    counted in the next."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        idle, count = proxy_idle(s)
        if idle >= seconds and (after is None or count > after):
            return
        time.sleep(0.3)
    raise ScenarioError(f"OCCM never went quiet for {seconds}s within {TIMEOUT}s")


def node(name, ip):
    return json.dumps({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "real-clients",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        },
    })


def run_occm(s):
    a = s.a
    p = a.prefix
    # The node addresses sit in the member subnet, as a real cluster's would.
    s.mark("occm-setup")
    cidr = s.osj("occm-setup", "subnet", "show", a.vip_subnet)["cidr"]
    base = ipaddress.ip_network(cidr).network_address
    ips = [str(base + 201 + i) for i in range(3)]
    conf = os.path.join(a.work, "cloud.conf")
    with open(conf, "w") as f:
        os.chmod(conf, 0o600)
        f.write(
            "[Global]\n"
            f"auth-url = {os.environ['OS_AUTH_URL']}\n"
            f"username = {os.environ['OS_USERNAME']}\n"
            f"password = {os.environ['OS_PASSWORD']}\n"
            f"tenant-name = {os.environ['OS_PROJECT_NAME']}\n"
            f"user-domain-name = {os.environ.get('OS_USER_DOMAIN_NAME', 'Default')}\n"
            f"tenant-domain-name = {os.environ.get('OS_PROJECT_DOMAIN_NAME', 'Default')}\n"
            f"region = {os.environ.get('OS_REGION_NAME', 'RegionOne')}\n"
            "\n[LoadBalancer]\n"
            f"floating-network-id = {a.public_network}\n"
            f"subnet-id = {a.vip_subnet}\n"
        )
    ns = p
    kubectl(a, "create", "namespace", ns)
    nodes = [f"{p}-n{i}" for i in range(3)]
    for n, ip in list(zip(nodes, ips))[:2]:
        kubectl(a, "create", "-f", "-", stdin=node(n, ip))
    before_occm = proxy_idle(s)[1]
    log = open(os.path.join(a.work, "occm.log"), "w")
    # Its own cluster name: the load balancer is named kube_service_<cluster>_<ns>_<name>.
    proc = subprocess.Popen([a.occm, "--cloud-provider=openstack", f"--cloud-config={conf}",
                             f"--kubeconfig={a.kubeconfig}", "--controllers=service", "--leader-elect=false",
                             f"--cluster-name={p}", "--use-service-account-credentials=false", "--secure-port=0",
                             "--v=2"], stdout=log, stderr=subprocess.STDOUT)
    try:
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
               "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}
        conn = upstream_conn(a)
        lb_name = f"kube_service_{p}_{ns}_web"

        def state_is(ports):
            def check():
                st = lb_state(conn, lb_name)
                return st is not None and st[0] == "ACTIVE" and st[1] == ports, st
            return check

        def has_ip():
            out = kubectl(a, "-n", ns, "get", "service", "web", "-o", "json")
            ingress = json.loads(out).get("status", {}).get("loadBalancer", {}).get("ingress") or []
            return bool(ingress), ingress

        # OCCM authenticates and discovers the services when it starts: that belongs here.
        wait_quiet(s, after=before_occm)
        s.mark("occm-create")
        kubectl(a, "create", "-f", "-", stdin=json.dumps(svc))
        wait_until(s, "the Service's external IP", proc, has_ip)
        wait_until(s, "listener 80 with both nodes", proc, state_is({80: sorted(ips[:2])}))
        wait_quiet(s)
        s.say("OCCM: load balancer ensured")

        s.mark("occm-add-port")
        patch = {"spec": {"ports": svc["spec"]["ports"] + [
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}}
        kubectl(a, "-n", ns, "patch", "service", "web", "--type=merge", "-p", json.dumps(patch))
        wait_until(s, "listeners 80 and 443", proc, state_is({80: sorted(ips[:2]), 443: sorted(ips[:2])}))
        wait_quiet(s)
        s.say("OCCM: port added")

        s.mark("occm-change-node")
        kubectl(a, "delete", "node", nodes[1])
        kubectl(a, "create", "-f", "-", stdin=node(nodes[2], ips[2]))
        want = sorted([ips[0], ips[2]])
        wait_until(s, "members on nodes 0 and 2", proc, state_is({80: want, 443: want}))
        wait_quiet(s)
        s.say("OCCM: members updated")

        s.mark("occm-delete")
        kubectl(a, "-n", ns, "delete", "service", "web", "--wait=false")
        wait_until(s, "the load balancer's deletion", proc, lambda: (lb_state(conn, lb_name) is None, "still there"))
        wait_until(s, "the DeletedLoadBalancer Event", proc,
                   lambda: (event_count(a, ns, "DeletedLoadBalancer") >= 1, "no Event"))
        wait_quiet(s)
        s.say("OCCM: load balancer deleted")
    finally:
        s.mark("occm-stop")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        for n in nodes:
            subprocess.run(["kubectl", f"--kubeconfig={a.kubeconfig}", "delete", "node", n, "--ignore-not-found"],
                           capture_output=True, timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["cli", "occm"])
    ap.add_argument("--target", required=True, help="rig or sandbox (for messages)")
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--public-network", required=True)
    ap.add_argument("--vip-subnet", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--occm")
    ap.add_argument("--kubeconfig")
    ap.add_argument("--work")
    ap.add_argument("--upstream-auth-url", help="the cloud's own Keystone, for the scenario's checks")
    a = ap.parse_args()
    s = Scenario(a)
    try:
        if a.mode == "cli":
            run_cli(s)
        else:
            run_occm(s)
    except ScenarioError as e:
        print(f"{a.target}: SCENARIO FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    s.say(f"{a.mode} scenario done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
