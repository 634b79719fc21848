#!/bin/sh
# One-shot job of docker-compose.yml (temporal-schema), run in temporalio/admin-tools once PostgreSQL is healthy: the
# same steps as the native run's setupSchemas (devnet/cluster/temporal.ts) with the same temporal-sql-tool version:
# creates Temporal's two databases and brings each schema to the version the tool embeds. Idempotent (an existing
# database is kept, only pending versions are applied), so it is also the schema upgrade after the images' tag is
# raised: the server waits for it.
#
# Environment: POSTGRES_SEEDS (host), DB_PORT (5432), POSTGRES_USER, SQL_PASSWORD (read by temporal-sql-tool itself),
# DBNAME (temporal), VISIBILITY_DBNAME (temporal_visibility): the names the server's configuration reads.
set -eu

: "${POSTGRES_SEEDS:?setup-postgres.sh: POSTGRES_SEEDS (the PostgreSQL host) is required}"
: "${POSTGRES_USER:?setup-postgres.sh: POSTGRES_USER is required}"
: "${SQL_PASSWORD:?setup-postgres.sh: SQL_PASSWORD is required}"

setup() {
  database=$1
  schema=$2
  echo "setup-postgres.sh: database $database, schema $schema"
  for command in create-database 'setup-schema -v 0.0' "update-schema --schema-name $schema"; do
    # $command is split on purpose: a subcommand and its flags.
    # shellcheck disable=SC2086
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" \
      --db "$database" $command
  done
}

setup "${DBNAME:-temporal}" postgresql/v12/temporal
setup "${VISIBILITY_DBNAME:-temporal_visibility}" postgresql/v12/visibility
echo 'setup-postgres.sh: schemas up to date'
