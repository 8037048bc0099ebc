# shellcheck shell=bash
# Find or start a PostgreSQL server for the tests, and export DATABASE_URL.
#
# Order (INTELLI_PG=throwaway forces the third): DATABASE_URL when set (it must answer); else a server on 127.0.0.1:5432; else a throwaway
# cluster from the system's initdb/pg_ctl under target/pg (stopped on exit); else fail and say
# what to install. Sourced by scripts/test.

pg_bin() {
  # The server binaries: PATH first, then Debian's versioned directory (newest first).
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    [ -x "$dir/$name" ] && { echo "$dir/$name"; return 0; }
  done
  return 1
}

pg_answers() {
  # pg_isready understands both URLs and host/port; psql is the fallback check.
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -d "$1" -t 3
  else
    psql "$1" -Atqc 'select 1' >/dev/null 2>&1
  fi
}

ensure_postgres() {
  # INTELLI_PG=throwaway skips the probes: how the "installed but not running" path is exercised.
  if [ "${INTELLI_PG:-}" = throwaway ]; then
    start_throwaway_postgres
    return
  fi
  if [ -n "${DATABASE_URL:-}" ]; then
    if pg_answers "$DATABASE_URL"; then
      echo "postgres: using DATABASE_URL"
      return 0
    fi
    echo "error: DATABASE_URL is set but no PostgreSQL server answers there" >&2
    return 1
  fi
  local local_url="postgres://postgres@127.0.0.1:5432/postgres"
  if pg_answers "$local_url"; then
    export DATABASE_URL="$local_url"
    echo "postgres: using the server on 127.0.0.1:5432"
    return 0
  fi
  start_throwaway_postgres
}

# A private cluster under target/pg on port 55432, stopped when the calling shell exits.
start_throwaway_postgres() {
  local initdb pg_ctl
  if ! initdb=$(pg_bin initdb) || ! pg_ctl=$(pg_bin pg_ctl); then
    cat >&2 <<'MSG'
error: no PostgreSQL server answers on 127.0.0.1:5432, DATABASE_URL is not set, and no initdb/pg_ctl
was found to start a throwaway one. Install PostgreSQL (Debian/Ubuntu: apt-get install postgresql)
or point DATABASE_URL at a server.
MSG
    return 1
  fi

  local root data port=55432 run_as=()
  root="$(pwd)/target/pg"
  data="$root/data"
  # initdb refuses to run as root; use the postgres system user when we are root.
  if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
      useradd --system --no-create-home postgres
    fi
    run_as=(runuser -u postgres --)
  fi
  rm -rf "$root"
  mkdir -p "$root"
  [ ${#run_as[@]} -gt 0 ] && chown -R postgres "$root"
  echo "postgres: starting a throwaway cluster in $root on port $port"
  "${run_as[@]}" "$initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$root/initdb.log" 2>&1 \
    || { cat "$root/initdb.log" >&2; return 1; }
  "${run_as[@]}" "$pg_ctl" -D "$data" -l "$root/server.log" -w \
    -o "-p $port -k $root -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null \
    || { cat "$root/server.log" >&2; return 1; }
  PG_THROWAWAY_STOP=("${run_as[@]}" "$pg_ctl" -D "$data" -m fast stop)
  trap 'stop_throwaway_postgres' EXIT
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

stop_throwaway_postgres() {
  if [ -n "${PG_THROWAWAY_STOP:-}" ]; then
    "${PG_THROWAWAY_STOP[@]}" >/dev/null 2>&1 || true
  fi
}
