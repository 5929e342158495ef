#!/usr/bin/env bash
# Starts the pinned Azurite in the foreground on CloudSpool's default loopback ports.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ -x "$here/node_modules/.bin/azurite" ] || npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
location="${1:-${HOME}/.local/share/cloudspool/azurite}"
mkdir -p "$location"
# The folder's own key (as CloudSpool keeps it), never the public development key.
key_file="$location/cloudspool-account-key"
if [ ! -s "$key_file" ]; then ( umask 077; head -c 64 /dev/urandom | base64 -w0 > "$key_file"; echo >> "$key_file" ); fi
chmod 700 "$location"
export AZURITE_ACCOUNTS="devstoreaccount1:$(tr -d '\n' < "$key_file")"
exec "$here/node_modules/.bin/azurite" --location "$location" --silent --skipApiVersionCheck --loose \
  --disableProductStyleUrl --disableTelemetry \
  --blobHost 127.0.0.1 --blobPort 10000 --queueHost 127.0.0.1 --queuePort 10001 \
  --tableHost 127.0.0.1 --tablePort 10002
