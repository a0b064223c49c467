"""The manifests tests/kube.sh plays: from deploy/k8s as `kubectl kustomize` renders them, the
Deployments as written but for their image and their number of replicas (one), with a test
ConfigMap and Secret whose values point at this machine's servers. Prints the diff against the
rendered manifests, and fails unless it holds only those changes.

    python3 tests/kube_manifests.py RENDERED OUT_DIR IMAGE CONFIG_JSON SECRET_JSON
"""

import base64
import copy
import difflib
import json
import sys

import yaml


def main(rendered_path, out, image, config_json, secret_json):
    rendered = [d for d in yaml.safe_load_all(open(rendered_path)) if d]
    deployments = [d for d in rendered if d["kind"] == "Deployment"]
    configmap = next(d for d in rendered if d["kind"] == "ConfigMap")
    played = copy.deepcopy(deployments)
    for deployment in played:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            container["image"] = image
        # One replica: podman publishes each containerPort on the same host port for every
        # replica it starts, and a second one cannot bind it.
        deployment["spec"]["replicas"] = 1
    test_configmap = copy.deepcopy(configmap)
    test_configmap["data"].update(json.loads(config_json))
    # A Secret with `data` (podman 4.3 reads `stringData` wrongly), named as the Deployments'
    # secretRef names it.
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "orderly", "namespace": configmap["metadata"].get("namespace", "orderly")},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in json.loads(secret_json).items()},
    }
    with open(f"{out}/played.yaml", "w") as f:
        yaml.safe_dump_all(played, f, sort_keys=False)
    # podman 4.3 reads a secretRef's podman secret as the Secret's data in JSON, each value
    # base64 (a Secret it plays from YAML is stored as YAML, which it then cannot read):
    # tests/kube.sh creates it so.
    with open(f"{out}/secret.json", "w") as f:
        json.dump(secret["data"], f)
    with open(f"{out}/configmap.yaml", "w") as f:
        yaml.safe_dump(test_configmap, f, sort_keys=False)

    # What changed from the rendered manifests: shown, and only the image and the values.
    before = yaml.safe_dump_all(deployments + [configmap], sort_keys=False).splitlines()
    after = yaml.safe_dump_all(played + [test_configmap], sort_keys=False).splitlines()
    diff = list(difflib.unified_diff(before, after, "rendered", "played", lineterm="", n=1))
    print("\n".join(diff))
    for line in diff:
        if line.startswith(("---", "+++", "@@")) or not line[:1] in "+-":
            continue
        body = line[1:].strip()
        if body.startswith(("image:", "replicas:")):
            continue
        key = body.split(":", 1)[0]
        if key in test_configmap["data"]:
            continue
        sys.exit(f"kube_manifests: a change beyond the image and the ConfigMap's values: {line}")


if __name__ == "__main__":
    main(*sys.argv[1:])
