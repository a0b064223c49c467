# The redis stand-in's entrypoint: as the official image, a bare `redis-server` command
# accepts connections from other containers (protected mode off).
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no "$@"
fi
exec "$@"
