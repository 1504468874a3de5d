#!/bin/sh
# Container entry point of the Tearline image (also run as-is by tests/ops/test_container.py).
#
#   (no arguments) or options only   migrate the database (tearline db upgrade), then
#                                    serve (tearline serve OPTIONS...)
#   anything else                    run that tearline command, e.g. `serve` alone (no
#                                    migration: several instances, see docs/operators/deployment.md),
#                                    `db upgrade`, `token issue ...`, `partner add ...`
#
# Secrets: every file in $TEARLINE_SECRETS_DIR (default /run/secrets, where compose mounts
# secrets) named tearline_<setting> becomes TEARLINE_<SETTING>, replacing any value from the
# environment, so no secret has to sit in the compose file or the container's environment.
set -eu

secrets_dir="${TEARLINE_SECRETS_DIR:-/run/secrets}"
if [ -d "$secrets_dir" ]; then
    for secret_file in "$secrets_dir"/tearline_*; do
        [ -f "$secret_file" ] || continue
        name=$(basename "$secret_file" | tr '[:lower:]' '[:upper:]')
        case "$name" in
            *[!A-Z0-9_]*) echo "entrypoint: ignoring secret file with an unusable name: $secret_file" >&2; continue ;;
        esac
        # Command substitution drops the trailing newline an editor leaves in the file.
        value=$(cat "$secret_file")
        export "$name=$value"
    done
fi

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    tearline db upgrade
    exec tearline serve "$@"
fi
exec tearline "$@"
