#!/usr/bin/env python3
"""Checks deploy/triton without a cluster or docker (neither runs in CI):
every Kubernetes manifest parses as YAML and is consistent with the others
(a schema-less lint: names, selectors, ports, GPU requests, the key-store
volume, the autoscaler's metric), the model repository's config.pbtxt files
use the veil backend with known parameters and one key store, and the
Dockerfile builds on the Triton image of the backend API veil declares.
Prints each problem; exit 1 if any."""
import glob
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
problems = []


def check(cond, msg):
    if not cond:
        problems.append(msg)
    return cond


def load_manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(HERE, "k8s", "*.yaml"))):
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d is None:
                    continue
                name = os.path.relpath(path, ROOT)
                for field in ("apiVersion", "kind", "metadata"):
                    check(field in d, f"{name}: no {field}")
                check("name" in d.get("metadata", {}), f"{name}: no metadata.name")
                docs.append((name, d))
    return docs


def pbtxt_params(text):
    text = re.sub(r'#[^\n]*', '', text)  # comments (no '#' in veil's values)
    return dict(re.findall(r'key:\s*"([^"]+)"\s*value:\s*\{\s*string_value:\s*"([^"]*)"', text))


def compile_option_names():
    # the compile options' one table (engine/src/compile_options.c), '_' for '-'
    src = open(os.path.join(ROOT, "engine", "src", "compile_options.c")).read()
    names = {n.replace("-", "_") for n in re.findall(r'^\s*\{"--([a-z0-9-]+)"', src, re.M)}
    check(len(names) >= 10, "compile_options.c: the option table was not found")
    return names


def backend_parameter_names():
    # the backend's own parameters: set_param in host/triton/config.c, the one
    # place they are parsed (the compile options come from their table)
    src = open(os.path.join(ROOT, "host", "triton", "config.c")).read()
    body = src[src.index("static veil_status set_param("):]
    body = body[:body.index("veil_compile_option_known")]
    names = set(re.findall(r'strcmp\(name, "([a-z0-9_]+)"\)', body))
    check({"role", "keys_dir", "max_batch"} <= names,
          "host/triton/config.c: set_param's parameter names were not found")
    return names


def main():
    docs = load_manifests()
    by_kind = {}
    for name, d in docs:
        by_kind.setdefault(d["kind"], []).append((name, d))
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PersistentVolumeClaim",
                 "ConfigMap"):
        check(kind in by_kind, f"k8s: no {kind}")
    if problems:
        return
    dep_name, dep = by_kind["Deployment"][0]
    spec = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(),
          f"{dep_name}: selector does not match the pod labels")
    c = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(set(ports) >= {"http", "grpc", "metrics"}, f"{dep_name}: ports http, grpc, metrics")
    res = c["resources"]
    check(res.get("requests", {}).get("nvidia.com/gpu") == 1 and
          res.get("limits", {}).get("nvidia.com/gpu") == 1,
          f"{dep_name}: requests and limits of one nvidia.com/gpu")
    for probe in ("readinessProbe", "livenessProbe"):
        p = c.get(probe, {}).get("httpGet", {})
        check(p.get("port") in ports and p.get("path", "").startswith("/v2/health/"),
              f"{dep_name}: {probe} on Triton's /v2/health on a named port")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
              for v in spec.get("volumes", [])}
    pvcs = {d["metadata"]["name"]: d for _, d in by_kind["PersistentVolumeClaim"]}
    keys_mount = None
    for vol, claim in claims.items():
        if check(claim in pvcs, f"{dep_name}: volume {vol} claims {claim}, not defined"):
            check("ReadWriteMany" in pvcs[claim]["spec"]["accessModes"],
                  f"PVC {claim}: the key store is shared by replicas: ReadWriteMany")
            keys_mount = mounts.get(vol)
    for name, svc in by_kind["Service"]:
        check(svc["spec"]["selector"].items() <= labels.items(),
              f"{name}: selector matches no pod of {dep['metadata']['name']}")
        for p in svc["spec"]["ports"]:
            check(p["targetPort"] in ports or p["targetPort"] in ports.values(),
                  f"{name}: targetPort {p['targetPort']} is not a container port")
    adapter = yaml.safe_load(by_kind["ConfigMap"][0][1]["data"]["config.yaml"])
    adapted = {r["name"]["as"] for r in adapter["rules"]}
    for name, hpa in by_kind["HorizontalPodAutoscaler"]:
        ref = hpa["spec"]["scaleTargetRef"]
        check(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"],
              f"{name}: scaleTargetRef is not {dep['metadata']['name']}")
        for m in hpa["spec"]["metrics"]:
            if m["type"] == "Pods":
                check(m["pods"]["metric"]["name"] in adapted,
                      f"{name}: metric {m['pods']['metric']['name']} has no adapter rule")
    for r in adapter["rules"]:
        check("nv_inference_queue_duration_us" in r["metricsQuery"],
              "prometheus-adapter: the autoscaler scales on Triton's queue time")

    # The model repository.
    known = backend_parameter_names() | compile_option_names()
    dirs = set()
    for cfg in sorted(glob.glob(os.path.join(HERE, "models", "*", "config.pbtxt"))):
        name = os.path.relpath(cfg, ROOT)
        text = open(cfg).read()
        model = os.path.basename(os.path.dirname(cfg))
        check(re.search(r'^name:\s*"%s"' % re.escape(model), text, re.M),
              f"{name}: name is not the directory's ({model})")
        check(re.search(r'^backend:\s*"veil"', text, re.M), f"{name}: backend is not veil")
        params = pbtxt_params(text)
        for k in params:
            check(k in known, f"{name}: unknown parameter {k}")
        check("keys_dir" in params, f"{name}: no keys_dir")
        dirs.add(params.get("keys_dir"))
        if model == "veil_keys":
            check(params.get("role") == "keys", f"{name}: role must be keys")
            check("EVAL_KEY" in text and "KEY_ID" in text, f"{name}: EVAL_KEY in, KEY_ID out")
            # uploads and deletes share the model: each request carries one
            # of the two inputs (backend.c vt_execute_keys), so both optional
            for t in ("EVAL_KEY", "DELETE_KEY_ID"):
                m = re.search(r'\{[^{}]*name:\s*"%s"[^{}]*\}' % t, text)
                check(m and re.search(r"optional:\s*true", m.group(0)),
                      f"{name}: input {t} missing or not optional: true")
        else:
            for t in ("KEY_ID", "CT_BATCH", "RESULT", "TYPE_STRING"):
                check(t in text, f"{name}: no {t}")
            check("KIND_GPU" in text, f"{name}: the deployment runs on GPUs (KIND_GPU)")
    check(len(dirs) == 1, f"models: one key store for every model, got {sorted(dirs)}")
    check(keys_mount in dirs, f"the key-store volume is mounted at {keys_mount}, models use {dirs}")

    # The Dockerfile: Triton 24.10 = Triton 2.51.0 = TRITONBACKEND API 1.19.
    docker = open(os.path.join(HERE, "Dockerfile")).read()
    check("nvcr.io/nvidia/tritonserver:24.10-py3" in docker, "Dockerfile: not on Triton 24.10")
    api = open(os.path.join(ROOT, "host", "triton", "triton_api.h")).read()
    check("VEIL_TRITONBACKEND_API_MINOR 19" in api, "triton_api.h: API 1.19 expected for 24.10")
    for src in re.findall(r"^COPY (?!--from)(\S+)", docker, re.M):
        check(os.path.exists(os.path.join(ROOT, src)), f"Dockerfile: COPY {src}: no such path")


if __name__ == "__main__":
    main()
    for p in problems:
        print("deploy/triton:", p)
    print("deploy/triton: %s" % ("%d problem(s)" % len(problems) if problems else "consistent"))
    sys.exit(1 if problems else 0)
