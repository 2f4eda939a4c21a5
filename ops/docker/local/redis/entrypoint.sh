#!/bin/bash
# The upstream redis image's start-up: flags alone mean redis-server; as
# root, own /data and drop to `redis`; without a config file, protected
# mode off (as upstream: the server is reached over the container network).
set -euo pipefail

if [ "${1#-}" != "${1:-}" ]; then
  set -- redis-server "$@"
fi
if [ "${1:-}" = redis-server ]; then
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
  case "${2:-}" in
    */*.conf|*.conf) ;;
    *) case " $* " in
         *" --protected-mode "*) ;;
         *) set -- "$@" --protected-mode no ;;
       esac ;;
  esac
fi
exec "$@"
