#!/usr/bin/env python3
"""Turns a Deployment, as the kube-apiserver stores it, into the `podman run` arguments a
kubelet's work would amount to for one of its pods (docs/deploy.md, "What the deploy tier
emulates"). Prints the arguments NUL-separated on stdout, a readable summary on stderr.

usage: kubelet.py DEPLOYMENT_JSON POD_NAME IMAGE WORKDIR APISERVER_PORT CA_FILE METRICS_PORT HEALTH_PORT

What it does as a kubelet would:
  - image: the container's image is replaced by IMAGE, the locally built one (nothing to pull);
  - command/args: command -> entrypoint, args as they are, except the values of --metrics-addr
    and --health-addr: the pods share the host's network here, so each listens on its own
    loopback port (a kubelet gives each pod its own network namespace instead);
  - env: literal values; fieldRef metadata.name/metadata.namespace from the pod; plus
    KUBERNETES_SERVICE_HOST/PORT pointing at the apiserver;
  - securityContext (container over pod): runAsUser/runAsGroup -> --user, runAsNonRoot checked,
    readOnlyRootFilesystem -> --read-only (without podman's extra tmpfs mounts), capabilities.drop,
    allowPrivilegeEscalation=false -> no-new-privileges;
  - volumes: Secret and ConfigMap contents (read from the apiserver, items/subPath honoured) and
    hostPath, mounted read-only where the pod spec says; the ServiceAccount token from the
    TokenRequest API with ca.crt and namespace at /var/run/secrets/kubernetes.io/serviceaccount;
  - terminationGracePeriodSeconds -> the stop timeout (SIGTERM, then SIGKILL).
Anything it cannot emulate (other volume types, env sources) is an error, never skipped.
"""
import base64
import json
import os
import subprocess
import sys

dep_file, pod, image, work, api_port, ca_file, metrics_port, health_port = sys.argv[1:9]
dep = json.load(open(dep_file))
ns = dep["metadata"]["namespace"]
spec = dep["spec"]["template"]["spec"]
containers = spec["containers"]
if len(containers) != 1:
    sys.exit(f"expected one container in the pod template, found {len(containers)}")
c = containers[0]


def die(msg):
    sys.exit(f"kubelet.py: {msg}")


def kubectl_json(*args):
    out = subprocess.run(["kubectl", *args, "-o", "json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


podman = ["--name", f"olbc-{pod}", "--hostname", pod, "--network", "host",
          "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

# --- security context
psc = spec.get("securityContext", {}) or {}
csc = c.get("securityContext", {}) or {}
uid = csc.get("runAsUser", psc.get("runAsUser"))
gid = csc.get("runAsGroup", psc.get("runAsGroup"))
non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot", False))
if uid is None:
    die("no runAsUser: the image's USER would apply, which this emulation does not read")
if non_root and uid == 0:
    die("runAsNonRoot with runAsUser 0: a kubelet refuses to start this container")
podman += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
if csc.get("readOnlyRootFilesystem"):
    podman += ["--read-only", "--read-only-tmpfs=false"]
for cap in (csc.get("capabilities") or {}).get("drop", []):
    podman += ["--cap-drop", cap]
for cap in (csc.get("capabilities") or {}).get("add", []):
    podman += ["--cap-add", cap]
if csc.get("allowPrivilegeEscalation") is False:
    podman += ["--security-opt", "no-new-privileges"]
if "fsGroup" in psc:
    podman += ["--group-add", str(psc["fsGroup"])]
podman += ["--stop-timeout", str(spec.get("terminationGracePeriodSeconds", 30))]

# --- env
env = []
for e in c.get("env", []):
    if "value" in e:
        env.append((e["name"], e["value"]))
        continue
    ref = (e.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
    if ref == "metadata.name":
        env.append((e["name"], pod))
    elif ref == "metadata.namespace":
        env.append((e["name"], ns))
    else:
        die(f"env {e['name']}: source {e.get('valueFrom')} is not emulated")
if c.get("envFrom"):
    die("envFrom is not emulated")
env += [("KUBERNETES_SERVICE_HOST", "127.0.0.1"), ("KUBERNETES_SERVICE_PORT", api_port)]
for k, v in env:
    podman += ["--env", f"{k}={v}"]


# --- volumes
def write_files(dirname, files, mode):
    os.makedirs(dirname, exist_ok=True)
    os.chmod(dirname, 0o755)
    for rel, data in files.items():
        path = os.path.join(dirname, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)


def select(data, items):
    if not items:
        return data
    missing = [i["key"] for i in items if i["key"] not in data]
    if missing:
        die(f"keys {missing} not in the object: a kubelet would not start the pod")
    return {i["path"]: data[i["key"]] for i in items}


sources = {}
for v in spec.get("volumes", []):
    d = os.path.join(work, f"vol-{pod}-{v['name']}")
    if "secret" in v:
        s = kubectl_json("get", "secret", v["secret"]["secretName"], "-n", ns)
        data = {k: base64.b64decode(b) for k, b in (s.get("data") or {}).items()}
        write_files(d, select(data, v["secret"].get("items")), v["secret"].get("defaultMode", 0o644))
        sources[v["name"]] = d
    elif "configMap" in v:
        cm = kubectl_json("get", "configmap", v["configMap"]["name"], "-n", ns)
        data = {k: x.encode() for k, x in (cm.get("data") or {}).items()}
        write_files(d, select(data, v["configMap"].get("items")), v["configMap"].get("defaultMode", 0o644))
        sources[v["name"]] = d
    elif "hostPath" in v:
        sources[v["name"]] = v["hostPath"]["path"]
    else:
        die(f"volume {v['name']}: type {sorted(v)} is not emulated")
for m in c.get("volumeMounts", []):
    src = sources[m["name"]]
    if m.get("subPath"):
        src = os.path.join(src, m["subPath"])
    opt = "ro" if m.get("readOnly") else "rw"
    podman += ["--volume", f"{src}:{m['mountPath']}:{opt}"]

# The ServiceAccount volume a kubelet projects into every pod (automountServiceAccountToken).
if spec.get("automountServiceAccountToken", True):
    sa = spec.get("serviceAccountName", "default")
    token = subprocess.run(["kubectl", "create", "token", sa, "-n", ns, "--duration=1h"],
                           check=True, capture_output=True, text=True).stdout.strip()
    d = os.path.join(work, f"sa-{pod}")
    write_files(d, {"token": token.encode(), "ca.crt": open(ca_file, "rb").read(), "namespace": ns.encode()}, 0o644)
    # a kubelet gives the token to the container's user when it runs as one non-root user
    if os.geteuid() == 0:
        os.chown(os.path.join(d, "token"), uid, gid if gid is not None else uid)
        os.chmod(os.path.join(d, "token"), 0o600)
    podman += ["--volume", f"{d}:/var/run/secrets/kubernetes.io/serviceaccount:ro"]

# --- command and args
if c.get("command"):
    podman += ["--entrypoint", json.dumps(c["command"])]
args = []
for a in c.get("args", []):
    if a.startswith("--metrics-addr="):
        a = f"--metrics-addr=127.0.0.1:{metrics_port}"
    elif a.startswith("--health-addr="):
        a = f"--health-addr=127.0.0.1:{health_port}"
    args.append(a)

print(f"pod {ns}/{pod}: image {c['image']} (run as {image})", file=sys.stderr)
print(f"  args: {' '.join(args)}", file=sys.stderr)
print("  env:  " + " ".join(f"{k}={v}" for k, v in env), file=sys.stderr)
shown = [a for i, a in enumerate(podman) if a != "--env" and (i == 0 or podman[i - 1] != "--env")]
print(f"  podman run {' '.join(shown)}", file=sys.stderr)
print(f"  user {uid}:{gid}, read-only root: {bool(csc.get('readOnlyRootFilesystem'))}, "
      f"mounts: {', '.join(m['mountPath'] for m in c.get('volumeMounts', []))}, "
      "/var/run/secrets/kubernetes.io/serviceaccount", file=sys.stderr)
sys.stdout.write("\0".join([*podman, image, *args]) + "\0")
