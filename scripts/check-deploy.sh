#!/usr/bin/env bash
# Checks the deployment files without running them: lints the Containerfile (hadolint),
# validates the Kubernetes manifests against a pinned Kubernetes version (offline schemas,
# strict: unknown fields are errors) and checks that the kustomization lists them, checks
# that the Compose file parses and names only files that exist and the image this repository
# builds, and that the /docs page's pinned script has the integrity hash the page gives.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kubernetes_version=1.31.0
bin=$(scripts/deploy-tools.sh)
# shellcheck source=podman-env.sh
source scripts/podman-env.sh

echo "hadolint Containerfile tests/compose/stand-ins.Containerfile"
"$bin/hadolint" Containerfile tests/compose/stand-ins.Containerfile

echo "Kubernetes manifests against $kubernetes_version"
manifests=()
for f in deploy/k8s/*.yaml; do [[ $(basename "$f") == kustomization.yaml ]] || manifests+=("$f"); done
"$bin/kubernetes-validate" --quiet --strict -k "$kubernetes_version" "${manifests[@]}"

echo "the /docs page's pinned script matches its integrity hash (npm registry)"
docs=crates/http/src/docs.rs
scalar_version=$(sed -nE 's/^pub const SCALAR_VERSION: &str = "([^"]+)";/\1/p' "$docs")
scalar_integrity=$(grep -oE 'sha384-[A-Za-z0-9+/=]+' "$docs")
scalar_cache="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/orderly/scalar-$scalar_version"
if [[ ! -f $scalar_cache/package/dist/browser/standalone.js ]]; then
  rm -rf "$scalar_cache"; mkdir -p "$scalar_cache"
  (cd "$scalar_cache" && npm pack --silent "@scalar/api-reference@$scalar_version" >/dev/null && tar xzf ./*.tgz)
fi
actual="sha384-$(openssl dgst -sha384 -binary "$scalar_cache/package/dist/browser/standalone.js" | base64 -w0)"
[[ $actual == "$scalar_integrity" ]] || {
  echo "$docs: @scalar/api-reference@$scalar_version is $actual, the page says $scalar_integrity"; exit 1; }

echo "Compose file"
"$bin/podman-compose" -f deploy/compose.yaml config >/dev/null

"$bin/python" - <<'PY'
"""What the validators cannot see: references between the files."""
import os, sys, yaml

errors = []

# The kustomization lists every manifest but the Secret template, and each exists.
k8s = "deploy/k8s"
kustomization = yaml.safe_load(open(f"{k8s}/kustomization.yaml"))
listed = set(kustomization["resources"])
present = {f for f in os.listdir(k8s) if f.endswith(".yaml") and f != "kustomization.yaml"}
errors += [f"{k8s}/kustomization.yaml lists {f}, which does not exist" for f in sorted(listed - present)]
errors += [f"{k8s}/{f} is not in kustomization.yaml" for f in sorted(present - listed - {"secret.example.yaml"})]
images = {i["name"] for i in kustomization.get("images", [])}
for f in sorted(present):
    for doc in yaml.safe_load_all(open(f"{k8s}/{f}")):
        spec = (doc or {}).get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        for c in pod.get("containers", []):
            if c["image"] not in images:
                errors.append(f"{k8s}/{f}: image {c['image']} is not set by kustomization.yaml")

# The Compose file: every file it names exists (the env file as its example), every orderly
# service uses the image scripts/image.sh builds, and the build points at the Containerfile.
base = "deploy"
compose = yaml.safe_load(open(f"{base}/compose.yaml"))
def exists(path, what):
    full = os.path.normpath(os.path.join(base, path))
    if not os.path.exists(full) and not os.path.exists(full + ".example"):
        errors.append(f"{base}/compose.yaml: {what} {path} does not exist")
for name, service in compose["services"].items():
    env_files = service.get("env_file", [])
    for env_file in [env_files] if isinstance(env_files, str) else env_files:
        exists(env_file, f"{name}'s env_file")
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith((".", "/")):
            exists(source, f"{name}'s volume")
        elif source not in (compose.get("volumes") or {}):
            errors.append(f"{base}/compose.yaml: {name} mounts undeclared volume {source}")
    build = service.get("build")
    if build:
        exists(os.path.join(build["context"], build.get("dockerfile", "Dockerfile")), f"{name}'s build file")
    image = service.get("image", "")
    if image.split("/")[-1].split(":")[0] == "orderly" and image != "localhost/orderly:latest":
        errors.append(f"{base}/compose.yaml: {name} runs {image}, not the image scripts/image.sh builds")
    for dependency in service.get("depends_on", {}) or {}:
        if dependency not in compose["services"]:
            errors.append(f"{base}/compose.yaml: {name} depends on unknown service {dependency}")
for error in errors:
    print(error, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
echo "deployment files: ok"
