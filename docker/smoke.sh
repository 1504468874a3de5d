#!/usr/bin/env bash
# Build-and-run check of the container files, in one command (docs/operators/deployment.md):
#
#   docker/smoke.sh [--port N] [--timeout S] [--dry-run]
#
# 1. generates throwaway secrets (openssl) in a private temporary directory;
# 2. builds the image as tearline:smoke and starts compose.yaml (PostgreSQL, then Tearline,
#    whose entry point migrates the database and serves) as the separate compose project
#    tearline-smoke, published on 127.0.0.1:N (default 18000): a deployment of the project
#    `tearline`, its volumes and its image tearline:latest are left alone;
# 3. waits until /readyz answers 200 (database, schema and policy ready);
# 4. issues an analyst token inside the image (`tearline token issue`) and GETs /taxii2/ with it;
# 5. tears everything down (containers, network, the database volume, the tearline:smoke tag)
#    and deletes the secrets, on success and on failure alike.
#
# Exit status 0 when every step passed; otherwise the failing step is named and the containers'
# logs are printed before the teardown. Needs docker with the compose plugin, openssl and curl,
# and the registry that serves the python and postgres base images. DOCKER names another
# command that takes `compose` (e.g. DOCKER=podman). --dry-run generates the secrets and prints
# the docker commands instead of running them (tests/ops/test_smoke_script.py runs it, and runs
# the whole script against a stand-in docker and server).
set -euo pipefail

port=18000
timeout_s=180
dry_run=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --port) port=${2:?--port needs a number}; shift 2 ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "smoke: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$port$timeout_s" in
    *[!0-9]*) echo "smoke: --port and --timeout take whole numbers" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
docker_cmd=${DOCKER:-docker}
project=tearline-smoke
nation=${TEARLINE_HOME_NATION:-NLD}
base="http://127.0.0.1:$port"
started=0

step() { printf 'smoke: %s\n' "$*" >&2; }
fail() { step "FAILED: $*"; exit 1; }

# Every docker command goes through here: printed under --dry-run, run otherwise.
run() {
    if [ "$dry_run" -eq 1 ]; then
        printf '+ %s\n' "$*"
    else
        "$@"
    fi
}
compose() { run "$docker_cmd" compose --project-name "$project" --file "$repo/compose.yaml" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tearline-smoke.XXXXXX")
chmod 700 "$work"

cleanup() {
    status=$?
    trap - EXIT INT TERM
    if [ "$started" -eq 1 ]; then
        if [ "$status" -ne 0 ]; then
            step "the containers' logs:"
            compose logs --no-color --tail 200 >&2 || true
        fi
        step "tearing down"
        compose down --volumes --remove-orphans --timeout 20 || true
        run "$docker_cmd" image rm "$TEARLINE_COMPOSE_IMAGE" || true
    fi
    rm -rf "$work"
    if [ "$status" -eq 0 ] && [ "$dry_run" -eq 1 ]; then
        step "dry run: nothing was built or started"
    elif [ "$status" -eq 0 ]; then
        step "OK: built, started, migrated, ready, served /taxii2/ to a token"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "throwaway secrets in $work"
secrets="$work/secrets"
mkdir "$secrets"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/jwt-private.pem" 2>/dev/null
openssl pkey -in "$work/jwt-private.pem" -pubout -out "$secrets/jwt-public.pem"
openssl rand -hex 32 | tr -d '\n' >"$secrets/secret_key"
openssl rand -hex 32 | tr -d '\n' >"$secrets/audit_key"
openssl rand -hex 24 | tr -d '\n' >"$secrets/postgres_password"
printf 'postgresql+psycopg://tearline:%s@postgres:5432/tearline' "$(cat "$secrets/postgres_password")" \
    >"$secrets/database_url"
# Compose mounts secret files as they are on the host (owner and mode included): the app runs as
# uid 10001, so the files are world-readable inside the private directory made above.
chmod 644 "$secrets"/* "$work/jwt-private.pem"
ls "$secrets" >&2

export TEARLINE_HOME_NATION="$nation"
export TEARLINE_COMPOSE_SECRETS="$secrets"
export TEARLINE_COMPOSE_PORT="$port"
export TEARLINE_COMPOSE_IMAGE="tearline:smoke"

step "building and starting the project $project on $base"
started=1
compose up --detach --build || fail "docker compose up"

step "waiting for $base/readyz (at most ${timeout_s}s)"
if [ "$dry_run" -eq 0 ]; then
    deadline=$((SECONDS + timeout_s))
    until curl -fsS --max-time 5 "$base/readyz" >"$work/readyz" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$base/readyz did not answer 200 within ${timeout_s}s"
        sleep 2
    done
    cat "$work/readyz" >&2
    echo >&2
fi

step "issuing an analyst token of $nation inside the image"
token_command=(run --rm --no-deps -T
    --volume "$work/jwt-private.pem:/run/keys/jwt-private.pem:ro"
    --env TEARLINE_JWT_PRIVATE_KEY_FILE=/run/keys/jwt-private.pem
    tearline token issue --subject smoke-check --nation "$nation" --roles analyst --lifetime 600)
if [ "$dry_run" -eq 1 ]; then
    compose "${token_command[@]}"
    token=dry-run-token
else
    token=$(compose "${token_command[@]}") || fail "tearline token issue"
    token=$(printf '%s' "$token" | tr -d '\r\n')
    [ -n "$token" ] || fail "tearline token issue printed no token"
fi

step "GET $base/taxii2/ with the token"
if [ "$dry_run" -eq 1 ]; then
    printf '+ curl -fsS -H "Authorization: Bearer ..." %s/taxii2/\n' "$base"
else
    curl -fsS --max-time 10 -H "Authorization: Bearer $token" \
        -H 'Accept: application/taxii+json;version=2.1' "$base/taxii2/" >"$work/discovery" \
        || fail "GET /taxii2/ with the token"
    grep -q '"api_roots"' "$work/discovery" || fail "GET /taxii2/ answered without api_roots: $(cat "$work/discovery")"
    cat "$work/discovery" >&2
    echo >&2
fi
