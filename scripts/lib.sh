# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
# Shared shell helpers of scripts/demo and scripts/test (sourced, not run).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${ISP_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
VAR=${ISP_VAR:-$ROOT/var}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages a command needs; installed when root, listed otherwise.
ensure_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
            | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing Debian packages: ${missing[*]}"
        if [ ! -e "$VAR/.apt-updated" ]; then
            apt-get update -qq >&2 || die "apt-get update failed"
            mkdir -p "$VAR" && touch "$VAR/.apt-updated"
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >&2 \
            || die "could not install: ${missing[*]}"
    else
        die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    fi
}

# The virtualenv with the product installed (editable) and its test tools;
# reinstalled when pyproject.toml changes.
ensure_venv() {
    local stamp=$VENV/.isp-installed
    if [ ! -x "$PY" ]; then
        log "creating the virtualenv in $VENV"
        python3 -m venv "$VENV" || die "python3 -m venv failed (python3-venv?)"
    fi
    if [ ! -e "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        log "installing the product and its dependencies"
        mkdir -p "$VAR"
        { "$PY" -m pip install -q --upgrade pip \
            && "$PY" -m pip install -q -e "$ROOT[test]"; } >"$VAR/pip.log" 2>&1 \
            || { tail -30 "$VAR/pip.log" >&2; die "pip install failed (see $VAR/pip.log)"; }
        touch "$stamp"
    fi
}

# The back office (sao) as a web root trytond can serve: npm pack, then
# install its runtime dependencies inside the unpacked package.
ensure_sao() {
    SAO_ROOT=$VAR/sao/package
    [ -e "$SAO_ROOT/.isp-ready" ] && return 0
    command -v npm >/dev/null || ensure_apt nodejs npm
    log "fetching the sao web client (tryton-sao@8.0)"
    rm -rf "$VAR/sao" && mkdir -p "$VAR/sao"
    (cd "$VAR/sao" && npm pack --silent tryton-sao@8.0 >/dev/null \
        && tar xzf tryton-sao-*.tgz \
        && cd package \
        && npm install --silent --omit=dev --legacy-peer-deps \
            --no-audit --no-fund >/dev/null) || die "could not install sao"
    touch "$SAO_ROOT/.isp-ready"
}

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A private PostgreSQL 15 cluster on a free loopback port.
# Sets PG_PORT, PG_DIR, PG_URI; pg_stop removes it.
pg_start() {
    ensure_apt postgresql-15 postgresql-client-15
    PG_DIR=$(mktemp -d /tmp/isp-pg.XXXXXX)
    PG_PORT=$(free_port)
    local owner=""
    if [ "$(id -u)" = 0 ]; then
        owner=postgres
        chown postgres "$PG_DIR"
    fi
    _pg() { if [ -n "$owner" ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    _pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    _pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || { cat "$PG_DIR/server.log" >&2; die "PostgreSQL did not start"; }
    PG_URI="postgresql://postgres@127.0.0.1:$PG_PORT/"
    log "PostgreSQL 15 on 127.0.0.1:$PG_PORT ($PG_DIR)"
}

pg_stop() {
    [ -n "${PG_DIR:-}" ] || return 0
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    else
        "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_DIR"
    PG_DIR=
}
