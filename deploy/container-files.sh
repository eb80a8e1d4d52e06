#!/bin/sh
# The files of the container image, in OUT: `sh deploy/container-files.sh OUT BINARY`.
# Used by Containerfile's build stage and by scripts/deploy-checks.sh.
#   OUT/newsdesk                             the binary (debug symbols stripped)
#   OUT/etc/ssl/certs/ca-certificates.crt    the CA certificates (SMTP over TLS)
#   OUT/etc/passwd, OUT/etc/group            the user newsdesk, uid and gid 10001
#   OUT/data (10001, 0700), OUT/tmp (1777)   the database and spooled uploads
set -eu
out="$1"
binary="$2"
certs="${CA_CERTIFICATES:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$certs" ] || { echo "container-files: no CA certificates at $certs" >&2; exit 1; }
mkdir -p "$out/etc/ssl/certs" "$out/data" "$out/tmp"
if command -v objcopy >/dev/null 2>&1; then
  objcopy --strip-debug "$binary" "$out/newsdesk"
else
  cp "$binary" "$out/newsdesk"
fi
chmod 0755 "$out/newsdesk"
cp "$certs" "$out/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$out/etc/ssl/certs/ca-certificates.crt"
echo 'newsdesk:x:10001:10001:newsdesk:/data:/nonexistent' >"$out/etc/passwd"
echo 'newsdesk:x:10001:' >"$out/etc/group"
chown 10001:10001 "$out/data"
chmod 0700 "$out/data"
chmod 1777 "$out/tmp"
