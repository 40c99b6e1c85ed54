#!/bin/bash
# Runs once, when the data directory is created: the roles of sql/roles.sql in the database
# tidewatch, with the passwords compose passes (the demo loader grants its own tables).
set -euo pipefail
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
    -v reader_password="$TIDEWATCH_READER_PASSWORD" -v service_password="$TIDEWATCH_SERVICE_PASSWORD" \
    -f /tidewatch/roles.sql
