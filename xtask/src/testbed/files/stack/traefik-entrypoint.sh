#!/bin/sh
# As the official image's (traefik/traefik-library-image, v3.5 alpine/entrypoint.sh): flags
# alone run traefik with them; a traefik subcommand runs through traefik; anything else runs as is.
set -e

if [ "${1#-}" != "$1" ]; then
    set -- traefik "$@"
fi

if traefik "$1" --help >/dev/null 2>&1
then
    set -- traefik "$@"
else
    echo "= '$1' is not a Traefik command: assuming shell execution." 1>&2
fi

exec "$@"
