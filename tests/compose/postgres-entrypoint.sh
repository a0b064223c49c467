# The postgres stand-in's entrypoint: on an empty data folder, creates the cluster with
# POSTGRES_USER / POSTGRES_PASSWORD (password authentication over TCP) and POSTGRES_DB, then
# runs PostgreSQL in the foreground, listening on every address.
set -eu
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/data
mkdir -p "$data" /var/run/postgresql
chown -R postgres:postgres "$data" /var/run/postgresql
if [ ! -s "$data/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/password
  chown postgres /tmp/password
  su postgres -s /bin/sh -c "$bin/initdb -D $data -U $POSTGRES_USER --pwfile=/tmp/password \
    --auth-local=trust --auth-host=scram-sha-256" >/dev/null
  rm /tmp/password
  echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -w -o '-c listen_addresses=' start" >/dev/null
  su postgres -s /bin/sh -c "$bin/createdb -U $POSTGRES_USER $POSTGRES_DB"
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -w stop" >/dev/null
fi
exec su postgres -s /bin/sh -c "exec $bin/postgres -D $data -c listen_addresses='*'"
