#!/bin/bash
# The upstream rabbitmq image's start-up, reduced to what voxq's compose
# stack uses: the default user, password and vhost from the environment
# (written as a config snippet that the server reads at its first start),
# the data directory owned by `rabbitmq`, and the server exec'd as that
# user in the foreground, so the container's SIGTERM reaches it (its start
# script stops the node cleanly).
set -euo pipefail

if [ "${1:-}" != rabbitmq-server ]; then
  exec "$@"
fi
if [ "$(id -u)" = 0 ]; then
  defaults=/etc/rabbitmq/conf.d/10-defaults.conf
  : >"$defaults"
  [ -z "${RABBITMQ_DEFAULT_USER:-}" ] || echo "default_user = $RABBITMQ_DEFAULT_USER" >>"$defaults"
  [ -z "${RABBITMQ_DEFAULT_PASS:-}" ] || echo "default_pass = $RABBITMQ_DEFAULT_PASS" >>"$defaults"
  [ -z "${RABBITMQ_DEFAULT_VHOST:-}" ] || echo "default_vhost = $RABBITMQ_DEFAULT_VHOST" >>"$defaults"
  chown rabbitmq:rabbitmq "$defaults"
  chmod 600 "$defaults"
  chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" "$@"
fi
cd /var/lib/rabbitmq
exec /usr/lib/rabbitmq/bin/rabbitmq-server
