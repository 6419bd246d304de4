#!/usr/bin/env python3
"""Renders the chart with each group of overrides and asserts on the objects it produces.

usage: check_chart.py HELM CHART WORKDIR
Writes WORKDIR/<case>.yaml for every case that the caller then sends to the kube-apiserver
(server-side dry run); prints one line per case.
"""
import json
import subprocess
import sys

import yaml

helm, chart, work = sys.argv[1:4]
failures = []


def render(release, namespace, values=None, sets=()):
    cmd = [helm, "template", release, chart, "--namespace", namespace]
    if values is not None:
        path = f"{work}/values-{release}-{namespace}.yaml"
        with open(path, "w") as f:
            yaml.safe_dump(values, f)
        cmd += ["-f", path]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def objects(text):
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def one(objs, kind):
    found = by_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(objs):
    return one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env(c):
    return {e["name"]: e for e in c.get("env", [])}


def case(name):
    def wrap(fn):
        try:
            fn()
            print(f"ok   {name}")
        except AssertionError as e:
            print(f"FAIL {name}: {e}")
            failures.append(name)
        return fn
    return wrap


def must_render(release, namespace, values=None, sets=(), save=None):
    rc, out, err = render(release, namespace, values, sets)
    assert rc == 0, f"helm template failed: {err.strip()}"
    if save:
        with open(f"{work}/{save}.yaml", "w") as f:
            f.write(out)
    return objects(out)


@case("names derive from the release; cluster-scoped names carry the namespace")
def _():
    objs = must_render("edge", "lb-system", save="edge")
    dep = one(objs, "Deployment")
    assert dep["metadata"]["name"] == "edge-openstack-lb-controller", dep["metadata"]["name"]
    assert dep["metadata"]["namespace"] == "lb-system"
    cr = one(objs, "ClusterRole")["metadata"]["name"]
    crb = one(objs, "ClusterRoleBinding")
    assert cr == "edge-openstack-lb-controller-lb-system", cr
    assert crb["roleRef"]["name"] == cr
    assert crb["subjects"][0] == {"kind": "ServiceAccount", "name": "edge-openstack-lb-controller", "namespace": "lb-system"}
    role = one(objs, "Role")
    assert role["metadata"]["namespace"] == "lb-system"
    assert role["rules"][0]["resources"] == ["leases"]
    other = must_render("edge", "other-ns")
    assert one(other, "ClusterRole")["metadata"]["name"] != cr, "same release name in another namespace must not share the ClusterRole"


@case("the Lease namespace is the pod's: POD_NAMESPACE from the downward API, lease name per release")
def _():
    objs = must_render("edge", "lb-system")
    c = container(objs)
    e = env(c)
    assert e["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace", e
    assert e["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", e
    assert "--leader-elect" in c["args"], c["args"]
    assert "--lease-name=edge-openstack-lb-controller" in c["args"], c["args"]
    assert not any(a.startswith("--leader-elect-namespace") for a in c["args"]), c["args"]


@case("a release named like the chart keeps the short names; fullnameOverride/nameOverride apply")
def _():
    objs = must_render("openstack-lb-controller", "kube-system", save="default")
    assert one(objs, "Deployment")["metadata"]["name"] == "openstack-lb-controller"
    assert one(objs, "ClusterRole")["metadata"]["name"] == "openstack-lb-controller-kube-system"
    vol = one(objs, "Deployment")["spec"]["template"]["spec"]["volumes"][0]
    assert vol["secret"]["secretName"] == "openstack-lb-controller-cloud-config", vol
    objs = must_render("x", "ns1", sets=["fullnameOverride=lbc"])
    names = {o["kind"]: o["metadata"]["name"] for o in objs}
    assert names["Deployment"] == "lbc" and names["ServiceAccount"] == "lbc", names
    assert names["ClusterRole"] == "lbc-ns1" and names["Service"] == "lbc-metrics", names
    objs = must_render("x", "ns1", sets=["nameOverride=olb"])
    dep = one(objs, "Deployment")
    assert dep["metadata"]["name"] == "x-olb", dep["metadata"]["name"]
    assert dep["metadata"]["labels"]["app.kubernetes.io/name"] == "olb"


@case("operator values: security contexts, env, volumes, pull secrets, scheduling, log level")
def _():
    values = {
        "podSecurityContext": {"runAsNonRoot": True, "runAsUser": 65532, "fsGroup": 65532},
        "securityContext": {"runAsUser": 70000, "runAsGroup": 70000, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
        "env": [{"name": "HTTPS_PROXY", "value": "http://proxy.example:3128"}],
        "extraVolumes": [{"name": "scratch", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "imagePullSecrets": [{"name": "regcred"}],
        "image": {"repository": "registry.example/olbc", "tag": "0.1.0-abc"},
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "{{ .Release.Name }}"}}}],
        "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
        "tolerations": [{"operator": "Exists"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                             "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "openstack-lb-controller"}}}}]}},
        "priorityClassName": "system-node-critical",
        "logLevel": "debug,kube=info",
        "podDisruptionBudget": {"enabled": True},
        "loadBalancerClass": "openstack.org/lb",
        "extraArgs": ["--gc-orphans=false"],
        "podAnnotations": {"example.com/a": "b"},
    }
    objs = must_render("ops", "lb-system", values, save="operator")
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["fsGroup"] == 65532, pod["securityContext"]
    # helm merges maps with the defaults: the overrides land, the rest of the defaults stay
    sc = c["securityContext"]
    assert sc["runAsUser"] == 70000 and sc["capabilities"]["add"] == ["NET_BIND_SERVICE"], sc
    assert sc["readOnlyRootFilesystem"] is True, sc
    e = env(c)
    assert e["HTTPS_PROXY"]["value"] == "http://proxy.example:3128"
    assert e["RUST_LOG"]["value"] == "debug,kube=info", e.get("RUST_LOG")
    assert {"name": "scratch", "emptyDir": {}} in pod["volumes"]
    assert {"name": "scratch", "mountPath": "/scratch"} in c["volumeMounts"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert c["image"] == "registry.example/olbc:0.1.0-abc", c["image"]
    assert pod["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "ops"
    assert pod["nodeSelector"] == values["nodeSelector"] and pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"] and pod["priorityClassName"] == "system-node-critical"
    assert "--load-balancer-class=openstack.org/lb" in c["args"] and "--gc-orphans=false" in c["args"], c["args"]
    assert one(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["example.com/a"] == "b"
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"], pdb["spec"]
    objs = must_render("ops", "lb-system", sets=["podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=1"])
    spec = one(objs, "PodDisruptionBudget")["spec"]
    assert spec.get("minAvailable") == 1 and "maxUnavailable" not in spec, spec
    # an explicit RUST_LOG in env wins over logLevel, with no duplicate entry
    objs = must_render("ops", "lb-system", {"env": [{"name": "RUST_LOG", "value": "trace"}]})
    names = [x["name"] for x in container(objs)["env"]]
    assert names.count("RUST_LOG") == 1 and env(container(objs))["RUST_LOG"]["value"] == "trace", names


@case("defaults: non-root uid 65532, read-only root fs, all capabilities dropped, RUST_LOG=info")
def _():
    objs = must_render("edge", "lb-system")
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532, sc
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["allowPrivilegeEscalation"] is False, sc
    assert pod["securityContext"]["runAsUser"] == 65532, pod["securityContext"]
    assert env(c)["RUST_LOG"]["value"] == "info"
    assert by_kind(objs, "PodDisruptionBudget") == [] and by_kind(objs, "ServiceMonitor") == []


@case("cloud.conf from a hostPath (Magnum) with the CA bundle from a hostPath")
def _():
    values = {"cloudConfig": {"hostPath": "/etc/kubernetes/cloud-config-occm"},
              "caBundle": {"hostPath": "/etc/kubernetes/ca-bundle.crt"}}
    objs = must_render("magnum", "lb-system", values, save="magnum")
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert vols["cloud-config"]["hostPath"] == {"path": "/etc/kubernetes/cloud-config-occm", "type": "File"}, vols
    assert mounts["cloud-config"]["mountPath"] == "/etc/openstack-lb-controller/cloud.conf"
    assert "--cloud-config=/etc/openstack-lb-controller/cloud.conf" in c["args"]
    assert vols["ca-bundle"]["hostPath"] == {"path": "/etc/kubernetes/ca-bundle.crt", "type": "File"}
    assert mounts["ca-bundle"]["mountPath"] == "/etc/kubernetes/ca-bundle.crt" and "subPath" not in mounts["ca-bundle"]
    assert by_kind(objs, "Secret") == [], "a hostPath cloud.conf needs no Secret"


@case("cloud.conf inline (the chart's Secret) with the CA bundle from a Secret or a ConfigMap")
def _():
    values = {"cloudConfig": {"content": "[Global]\nauth-url=https://keystone.example:5000/v3\n", "mountDir": "/config"},
              "caBundle": {"secretName": "cloud-ca", "key": "ca.pem", "mountPath": "/config-ca/ca.pem"}}
    objs = must_render("inline", "lb-system", values, save="inline")
    secret = one(objs, "Secret")
    assert secret["metadata"]["name"] == "inline-openstack-lb-controller-cloud-config"
    assert secret["stringData"]["cloud.conf"] == values["cloudConfig"]["content"]
    dep = one(objs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert "checksum/cloud-config" in dep["spec"]["template"]["metadata"]["annotations"]
    assert "--cloud-config=/config/cloud.conf" in c["args"], c["args"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert vols["cloud-config"]["secret"]["secretName"] == secret["metadata"]["name"]
    assert vols["ca-bundle"]["secret"]["secretName"] == "cloud-ca"
    assert mounts["ca-bundle"] == {"name": "ca-bundle", "mountPath": "/config-ca/ca.pem", "subPath": "ca.pem", "readOnly": True}
    objs = must_render("inline", "lb-system", {"caBundle": {"configMapName": "cloud-ca"}})
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["ca-bundle"]["configMap"]["name"] == "cloud-ca"
    objs = must_render("x", "ns", {"cloudConfig": {"existingSecret": "my-conf", "secretKey": "occm.conf"}})
    vol = {v["name"]: v for v in one(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]}["cloud-config"]
    assert vol["secret"] == {"secretName": "my-conf", "items": [{"key": "occm.conf", "path": "cloud.conf"}]}, vol


@case("ServiceMonitor when asked, selecting the metrics Service")
def _():
    objs = must_render("edge", "lb-system", {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}}, save="servicemonitor")
    sm = one(objs, "ServiceMonitor")
    svc = one(objs, "Service")
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"


@case("unknown or misspelt keys and conflicting choices are rejected with a message")
def _():
    bad = [
        ({"replica": 3}, "replica"),
        ({"image": {"tagg": "x"}}, "tagg"),
        ({"cloudConfig": {"hostpath": "/x"}}, "hostpath"),
        ({"podDisruptionBudget": {"enabled": True, "minAvaliable": 1}}, "minAvaliable"),
        ({"logFormat": "yaml"}, "logFormat"),
        ({"cloudConfig": {"content": "[Global]", "hostPath": "/x"}}, "cloudConfig.content and cloudConfig.hostPath"),
        ({"caBundle": {"hostPath": "/a", "secretName": "b"}}, "caBundle"),
    ]
    for values, needle in bad:
        rc, _, err = render("bad", "lb-system", values)
        assert rc != 0, f"accepted {values}"
        assert needle in err, f"{values}: error does not name {needle!r}: {err.strip()}"


if failures:
    print(f"{len(failures)} chart case(s) failed", file=sys.stderr)
    sys.exit(1)
