#!/usr/bin/env bash
# Builds Containerfile with podman and runs the image: `bash deploy/container-build.sh`
# (root; called by scripts/deploy-checks.sh). Says what each step did and, where the
# machine refuses one, exactly what refused. Exits 0 when an image built from
# Containerfile ran `newsdesk --version` and served a feed.
#
#  1. The build stage's base image (RUST_IMAGE, docker.io/library/rust:1-bookworm) is
#     pulled. Where that works and NEWSDESK_CONTAINER_FULL_BUILD=1, the whole
#     Containerfile is built (a release build: many minutes), and that image is checked.
#  2. Otherwise Containerfile is built with --target prebuilt and FILES= an
#     image made by `podman import` of what deploy/container-files.sh puts in /out,
#     around a statically linked binary built here (`cargo build --target
#     x86_64-unknown-linux-gnu` with `-C target-feature=+crt-static`, debug profile).
#  3. The image is checked: user 10001, only the binary, CA certificates, passwd/group,
#     /data and /tmp in it; `newsdesk --version` runs in it; `newsdesk serve` in it
#     answers /readyz and a feed on loopback.
set -euo pipefail

cd "$(dirname "$0")/.."
RUST_IMAGE="${RUST_IMAGE:-docker.io/library/rust:1-bookworm}"
TAG=localhost/newsdesk:check
FILES_TAG=localhost/newsdesk-files:check
WORK="$(mktemp -d /tmp/newsdesk-container.XXXXXX)"
CONTAINER=""
cleanup() {
  if [[ -n "$CONTAINER" ]]; then
    podman rm -f "$CONTAINER" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "container: $*"; }
refused() {
  say "REFUSED: $*"
  exit 1
}

command -v podman >/dev/null || refused "podman is not installed (apt-get install podman)"
say "$(podman --version), storage driver $(podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null || echo '?')"

# 1. The build stage's base image.
built=""
if out="$(timeout 60 podman pull -q "$RUST_IMAGE" 2>&1)"; then
  say "pulled $RUST_IMAGE"
  if [[ "${NEWSDESK_CONTAINER_FULL_BUILD:-0}" == 1 ]]; then
    t0=$(date +%s)
    podman build -f Containerfile -t "$TAG" . || refused "podman build -f Containerfile failed (above)"
    say "built the whole Containerfile in $(($(date +%s) - t0)) s"
    built=full
  else
    say "the full build (a release build in the container) is skipped for time;" \
      "NEWSDESK_CONTAINER_FULL_BUILD=1 runs it"
  fi
else
  say "the build stage cannot run here: podman pull $RUST_IMAGE refused:"
  echo "$out" | tail -n 3 | sed 's/^/    /'
fi

# 2. The final stage around a static binary built here.
if [[ -z "$built" ]]; then
  t0=$(date +%s)
  target_dir="${CARGO_TARGET_DIR:-target}"
  static="$target_dir/x86_64-unknown-linux-gnu/debug/newsdesk"
  # Within the CI budget: on a machine where this target was built before only newsdesk
  # itself compiles again (about a minute); a first build of every dependency for it
  # takes longer, and what it compiled is kept for the next run.
  budget="${NEWSDESK_CONTAINER_BUILD_SECS:-420}"
  if RUSTFLAGS="-C target-feature=+crt-static" timeout "$budget" cargo build --quiet \
    --target x86_64-unknown-linux-gnu --bin newsdesk; then
    :
  else
    rc=$?
    [[ $rc == 124 ]] && refused "the statically linked build did not finish within ${budget} s" \
      "(NEWSDESK_CONTAINER_BUILD_SECS); what it compiled is kept for the next run"
    refused "the statically linked build (cargo build --target x86_64-unknown-linux-gnu, +crt-static) failed"
  fi
  if ldd "$static" 2>&1 | grep -q '=>'; then
    refused "$static is linked dynamically: $(ldd "$static" | tr '\n' ' ')"
  fi
  say "static binary built in $(($(date +%s) - t0)) s ($(ldd "$static" 2>&1 | head -n 1 | xargs))"
  sh deploy/container-files.sh "$WORK/out" "$static"
  tar -C "$WORK" -cf "$WORK/files.tar" out
  podman import -q "$WORK/files.tar" "$FILES_TAG" >/dev/null ||
    refused "podman import of the image's files failed"
  out="$(podman build -q -f Containerfile --target prebuilt --build-arg FILES="$FILES_TAG" -t "$TAG" . 2>&1)" ||
    { echo "$out" | sed 's/^/    /'; refused "podman build of the final stage failed"; }
  say "built Containerfile --target prebuilt (FILES=$FILES_TAG, made by deploy/container-files.sh)"
  built="--target prebuilt"
fi

# 3. The image.
user="$(podman image inspect --format '{{.Config.User}}' "$TAG")"
[[ "$user" == 10001:10001 ]] || refused "the image runs as '$user', not 10001:10001"
size="$(podman image inspect --format '{{.Size}}' "$TAG")"
mnt="$(podman image mount "$TAG")"
files="$(cd "$mnt" && find . -mindepth 1 ! -type d | sort | tr '\n' ' ')"
podman image unmount "$TAG" >/dev/null
expected="./etc/group ./etc/passwd ./etc/ssl/certs/ca-certificates.crt ./newsdesk "
[[ "$files" == "$expected" ]] || refused "unexpected files in the image: $files"
say "image $TAG: user $user, $((size / 1024 / 1024)) MB, files: $files(and empty /data, /tmp)"

# crun on this kind of machine cannot set the container's rlimits (and rejects a hybrid
# cgroup hierarchy); runc with rlimits at most the host's works. Try plain first.
PODMAN=(podman)
OPTS=()
if ! out="$(podman run --rm "$TAG" --version 2>&1)"; then
  say "podman run refused: $out"
  if command -v runc >/dev/null; then
    PODMAN=(podman --runtime runc)
    OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
    say "retrying with: ${PODMAN[*]} run ${OPTS[*]}"
    out="$("${PODMAN[@]}" run --rm "${OPTS[@]}" "$TAG" --version 2>&1)" ||
      refused "podman run with runc refused too: $out"
  else
    refused "podman run refused (runc is not installed to try instead)"
  fi
fi
[[ "$out" == "newsdesk "* ]] || refused "the image's newsdesk --version printed: $out"
say "the image's newsdesk --version: $out"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
CONTAINER="newsdesk-check-$$"
"${PODMAN[@]}" run "${OPTS[@]}" -d --name "$CONTAINER" --network host -e NEWSDESK_BIND="127.0.0.1:$port" \
  -e RUST_LOG=warn "$TAG" serve --demo >/dev/null ||
  refused "podman run -d (serve) failed"
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" ||
  { podman logs "$CONTAINER" 2>&1 | tail -n 5; refused "newsdesk serve in the container did not become ready"; }
curl -sf "http://127.0.0.1:$port/feeds/events.atom" | grep -q '<entry>' ||
  refused "the container's /feeds/events.atom has no entry"
whoami_in="$(podman top "$CONTAINER" user 2>/dev/null | tail -n 1 | xargs || true)"
say "newsdesk serve --demo in the container (as ${whoami_in:-?}): /readyz 200, /feeds/events.atom has entries"
say "OK ($built)"
