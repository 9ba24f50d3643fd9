#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the store's PostgreSQL test and print its URL.
#
#   export NAS_TEST_POSTGRES_URL="$(bash .ci/start_postgres.sh)"
#
# - Installs Debian's postgresql (apt-get) when no initdb is found; needs root, as CI and our machines run.
# - Creates a fresh cluster under /tmp (owned by the `postgres` user) listening on 127.0.0.1 at a free port,
#   with its Unix socket in the same folder, so it never touches a system cluster (e.g. 15/main on 5432).
# - Creates the role `nas` (password `nas`) and its database `nas_test`.
# - The last line on stdout is the URL, postgresql+psycopg://nas:nas@127.0.0.1:PORT/nas_test; everything else
#   goes to stderr, including the command that stops the cluster. The data folder is left behind in /tmp.
#
# Exits non-zero with a one-line reason on stderr when the cluster cannot be created or started.
set -euo pipefail

log() { echo "start_postgres: $*" >&2; }
die() { log "error: $*"; exit 1; }

find_bindir() {
    local d
    # The newest installed major version's server binaries (Debian keeps them off PATH).
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return; fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"; return
    fi
}

BINDIR=$(find_bindir)
if [[ -z "$BINDIR" ]]; then
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed and installing it needs root"
    log "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BINDIR=$(find_bindir)
    [[ -n "$BINDIR" ]] || die "apt-get installed postgresql but no initdb/pg_ctl was found"
fi
id -u postgres >/dev/null 2>&1 || die "no 'postgres' user (Debian's postgresql package creates it)"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DIR=$(mktemp -d /tmp/nas-postgres.XXXXXX)
chown postgres:postgres "$DIR"
chmod 700 "$DIR"
as_pg() { runuser -u postgres -- "$@"; }

log "initdb $DIR/data (port $PORT, $BINDIR)"
as_pg "$BINDIR/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
# trust over the socket (for the setup below), passwords over TCP (what the tests use)
cat >"$DIR/data/pg_hba.conf" <<'EOF'
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
EOF
as_pg "$BINDIR/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DIR -c fsync=off" start >&2 \
    || { tail -n 20 "$DIR/postgres.log" >&2 || true; die "the server did not start"; }

psql_pg() { as_pg "$BINDIR/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
psql_pg -c "CREATE ROLE nas LOGIN PASSWORD 'nas'" >&2
psql_pg -c "CREATE DATABASE nas_test OWNER nas" >&2

log "running; stop with: runuser -u postgres -- $BINDIR/pg_ctl -D $DIR/data stop"
echo "postgresql+psycopg://nas:nas@127.0.0.1:$PORT/nas_test"
