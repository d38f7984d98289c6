# shellcheck shell=bash
# A throw-away PostgreSQL for the tests: sourced by .ci/run (`source .ci/postgres.sh`).
#
# Installs Debian's PostgreSQL server if it is absent, starts a cluster owned by the
# `postgres` user on 127.0.0.1:${VEILGRID_PG_PORT:-54329} (a port of its own, so it never
# touches a system cluster), creates a `veilgrid` role allowed to create databases, and
# exports VEILGRID_TEST_POSTGRES for the tests (each test creates its own database and
# drops it after). The server also accepts TLS, with a certificate for 127.0.0.1 and
# localhost from a throw-away CA made here with openssl (VEILGRID_TEST_POSTGRES_CA names
# it), so the tests can check the PostgreSQL hop's TLS and its certificate checks.
# A cluster this script started is stopped when the sourcing shell exits.
# Run it alone (`bash .ci/postgres.sh`) to start the server and print the URL.

vg_pg_setup() {
    local port="${VEILGRID_PG_PORT:-54329}"
    local data="${VEILGRID_PG_DATA:-/var/lib/postgresql/veilgrid-ci}"
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
        echo "== postgres: installing Debian's postgresql package"
        if [ "$(id -u)" -ne 0 ]; then
            echo "postgres: not root and no PostgreSQL server installed; cannot install it" >&2
            return 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    # initdb and postgres refuse to run as root: run them as the postgres user.
    local as=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
        as=(runuser -u postgres --)
        mkdir -p "$(dirname "$data")"
        chown postgres "$(dirname "$data")"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        echo "== postgres: initdb $data"
        "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
    fi
    if "${as[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        echo "== postgres: reusing the server running on $data"
    else
        echo "== postgres: starting $("$bin/postgres" --version) on 127.0.0.1:$port"
        "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off -c max_connections=200" >/dev/null
        VEILGRID_PG_STARTED="$data"
        # shellcheck disable=SC2064
        trap "${as[*]} $bin/pg_ctl -D $data -m fast stop >/dev/null 2>&1 || true" EXIT
    fi
    vg_pg_tls "$data" "$port" "${as[@]}" || return 1
    "${as[@]}" psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 -c \
        "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'veilgrid') THEN CREATE ROLE veilgrid LOGIN CREATEDB; END IF; END \$\$;" >/dev/null
    export VEILGRID_TEST_POSTGRES="postgres://veilgrid@127.0.0.1:$port/postgres"
    echo "== postgres: VEILGRID_TEST_POSTGRES=$VEILGRID_TEST_POSTGRES (TLS: CA in $VEILGRID_TEST_POSTGRES_CA)"
}

# TLS for the test server: a CA and a server certificate (once, under $data/tls), then
# ssl=on by ALTER SYSTEM and a reload (no restart needed).
vg_pg_tls() {
    local data="$1" port="$2"
    shift 2
    local as=("$@") tls="$data/tls"
    if [ ! -f "$tls/server.pem" ]; then
        if ! command -v openssl >/dev/null; then
            echo "== postgres: no openssl, so no TLS test certificate: the PostgreSQL TLS tests will say they skipped" >&2
            return 0
        fi
        "${as[@]}" mkdir -p "$tls"
        "${as[@]}" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 3650 -subj "/CN=veilgrid CI PostgreSQL CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        "${as[@]}" openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$tls/server.key" -out "$tls/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
            | "${as[@]}" tee "$tls/server.ext" >/dev/null
        "${as[@]}" openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
            -CAcreateserial -out "$tls/server.pem" -days 3650 -extfile "$tls/server.ext" 2>/dev/null
        "${as[@]}" chmod 600 "$tls/server.key" "$tls/ca.key"
    fi
    "${as[@]}" psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
        -c "ALTER SYSTEM SET ssl_cert_file = '$tls/server.pem'" \
        -c "ALTER SYSTEM SET ssl_key_file = '$tls/server.key'" \
        -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
    export VEILGRID_TEST_POSTGRES_CA="$tls/ca.pem"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    vg_pg_setup
    trap - EXIT
else
    vg_pg_setup || return 1
fi
