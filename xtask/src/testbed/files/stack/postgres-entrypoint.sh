#!/usr/bin/env bash
# The kind-parity test bed's stand-in for docker.io/library/postgres: Debian 12's PostgreSQL 15
# behind the official image's documented contract (docker-library/postgres, 17/bookworm
# docker-entrypoint.sh): POSTGRES_PASSWORD / _USER / _DB / _INITDB_ARGS / _HOST_AUTH_METHOD
# (each also as *_FILE), PGDATA, /docker-entrypoint-initdb.d (*.sh, *.sql, *.sql.gz), first
# start as root that hands over to the postgres user, and `postgres ARGS` as the command.
set -Eeo pipefail

# VAR from VAR or VAR_FILE, never both (the official file_env).
file_env() {
	local var="$1" fileVar="${1}_FILE" def="${2:-}"
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		echo >&2 "error: both $var and $fileVar are set (but are exclusive)"
		exit 1
	fi
	local val="$def"
	if [ "${!var:-}" ]; then val="${!var}"; elif [ "${!fileVar:-}" ]; then val="$(< "${!fileVar}")"; fi
	export "$var"="$val"
	unset "$fileVar"
}

setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	DATABASE_ALREADY_EXISTS=
	if [ -s "$PGDATA/PG_VERSION" ]; then DATABASE_ALREADY_EXISTS=true; fi
}

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = postgres ]; then
	setup_env
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA" || :
	mkdir -p /var/run/postgresql || :
	chmod 03775 /var/run/postgresql || :
	if [ "$(id -u)" = 0 ]; then
		find "$PGDATA" \! -user postgres -exec chown postgres '{}' + 2>/dev/null || :
		find /var/run/postgresql \! -user postgres -exec chown postgres '{}' + 2>/dev/null || :
		exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
	fi
	if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
		if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
			cat >&2 <<-'MSG'
				Error: Database is uninitialized and superuser password is not specified.
				       You must specify POSTGRES_PASSWORD to a non-empty value for the
				       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
			MSG
			exit 1
		fi
		# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as upstream
		initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
		auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
		printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
		export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
		# Only the socket while initialising, as upstream: nobody connects half-way.
		pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
		psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
		if [ "$POSTGRES_DB" != postgres ]; then
			"${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<"CREATE DATABASE :\"db\" ;"
		fi
		for f in /docker-entrypoint-initdb.d/*; do
			case "$f" in
				*.sh) echo "running $f"; . "$f" ;;
				*.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
				*.sql.gz) echo "running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
				*) [ -e "$f" ] && echo "ignoring $f" ;;
			esac
		done
		pg_ctl -D "$PGDATA" -m fast -w stop
		unset PGPASSWORD
		echo 'PostgreSQL init process complete; ready for start up.'
	else
		echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
	fi
fi

exec "$@"
