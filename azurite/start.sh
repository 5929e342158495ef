#!/usr/bin/env bash
# Starts the pinned Azurite in the foreground on CloudSpool's default loopback ports.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ -x "$here/node_modules/.bin/azurite" ] || npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
location="${1:-${HOME}/.local/share/cloudspool/azurite}"
mkdir -p "$location"
exec "$here/node_modules/.bin/azurite" --location "$location" --silent --skipApiVersionCheck --loose \
  --disableProductStyleUrl --disableTelemetry \
  --blobHost 127.0.0.1 --blobPort 10000 --queueHost 127.0.0.1 --queuePort 10001 \
  --tableHost 127.0.0.1 --tablePort 10002
