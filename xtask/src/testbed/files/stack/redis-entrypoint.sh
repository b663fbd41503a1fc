#!/bin/sh
# The kind-parity test bed's stand-in for docker.io/library/redis: Debian 12's Redis 7.0 behind
# the official image's contract (docker-library/redis, 7.4/debian docker-entrypoint.sh and
# Dockerfile): `redis-server ARGS` (or ARGS starting with `-`, or a `.conf` file) as the command,
# /data as the working folder, root handing over to the redis user. The official build patches
# protected mode off by default ("unnecessary in context of Docker"); Debian's binary has it on,
# so it is turned off here unless the arguments set it.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
	case " $* " in
		*" --protected-mode "*) ;;
		*) set -- "$@" --protected-mode no ;;
	esac
	if [ "$(id -u)" = 0 ]; then
		find . \! -user redis -exec chown redis '{}' + 2>/dev/null || :
		exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
	fi
fi

um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

exec "$@"
