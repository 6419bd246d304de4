#!/usr/bin/env python3
"""Side-by-side benchmark driver (started by bench/run.sh, which owns the sandbox and the
control plane). Runs each contender in turn against them, measures, and writes results.json
and REPORT.md (plus PNG plots when matplotlib is importable).

Standard library only, except matplotlib for the plots."""

import argparse
import concurrent.futures as cf
import datetime
import json
import os
import signal
import sys
import time

from harness import (BenchError, Kube, Proc, Sandbox, add_node, count_methods, kube_client, log,
                     occm_argv, olbc_argv, per_service, settle, user_cloud_conf, wait_until)


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

    def sandbox_cpu(self):
        """CPU seconds (user + system) of the sandbox process so far, or None when unknown: a
        phase's share tells whether the sandbox, not the contender, bounds the time."""
        if not self.a.sandbox_pid:
            return None
        try:
            with open(f"/proc/{self.a.sandbox_pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sandbox_share(self, cpu0, secs):
        cpu1 = self.sandbox_cpu()
        if cpu0 is None or cpu1 is None or secs <= 0:
            return None
        return {"cpu_s": round(cpu1 - cpu0, 2), "cores": round((cpu1 - cpu0) / secs, 2)}

    def node_ip(self, i):
        return f"127.{self.node_octet}.{1 + i // 250}.{1 + i % 250}"

    def add_node(self):
        i = self.next_node
        self.next_node += 1
        name, ip = f"bench-node-{i}", self.node_ip(i)
        port = add_node(self.kube, self.sb, name, ip)
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
        extra = self.a.olbc_metadata if c["kind"] != "occm" else []
        conf = user_cloud_conf(self.a.cloud_conf, os.path.join(self.a.work, f"cloud-{c['id']}.conf"),
                               user, password, extra)
        if c["kind"] == "occm":
            return occm_argv(self.a.occm_bin, conf, self.a.kubeconfig, c["workers"], cluster)
        return olbc_argv(self.a.olbc_bin, conf, self.a.kubeconfig, cluster)

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
        sb_cpu0 = self.sandbox_cpu()
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
        out["create_sandbox"] = self.sandbox_share(sb_cpu0, secs)
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

    def settle(self, user, proc):
        settle(self.sb, user, proc)

    def node_change(self, c, proc, user, n, add):
        lbs = [lb for lb in self.sb.lbs()]
        seq0 = self.sb.next_seq()
        sb_cpu0 = self.sandbox_cpu()
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
             "calls": calls, "calls_per_svc": per_service(calls, n), "lbs": len(lbs),
             "sandbox": self.sandbox_share(sb_cpu0, secs)}
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
    L.append("## The sandbox's own CPU during each phase\n")
    L.append("CPU seconds of the sandbox process while the phase ran, and that divided by the phase's "
             "wall time (cores busy; the machine has 2). Near 1 or more, the sandbox rather than the "
             "contender bounds the time.\n")
    L.append("| phase | " + " | ".join(c["label"] for c in cs) + " |")
    L.append("|---" * (len(cs) + 1) + "|")

    def share(v):
        return "—" if not v else f"{v['cpu_s']:.1f} s ({v['cores']:.2f} cores)"
    for n in sizes:
        L.append(f"| create {n} | " + " | ".join(share(c["sizes"].get(str(n), {}).get("create_sandbox")) for c in cs) + " |")
        for kind, word in (("node_add", "node added"), ("node_remove", "node removed")):
            if any(kind in c["sizes"].get(str(n), {}) for c in cs):
                L.append(f"| {word} under {n} | " + " | ".join(
                    share((c["sizes"].get(str(n), {}).get(kind) or {}).get("sandbox")) for c in cs) + " |")
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
    ap.add_argument("--sandbox-pid", type=int, default=0,
                    help="the sandbox's pid, to report its CPU during each phase")
    ap.add_argument("--delay", type=float, required=True)
    ap.add_argument("--delay-max", type=float, default=0)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--label", default="")
    ap.add_argument("--machine", default="")
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--olbc-metadata", action="append", default=[],
                    help="a [Metadata] line (e.g. 'api-rate-limit = 0') for this controller's cloud.conf")
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
        "notes": a.note + ([f"this controller's cloud.conf [Metadata]: {'; '.join(a.olbc_metadata)}"]
                           if a.olbc_metadata else [])}, "contenders": []}
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
