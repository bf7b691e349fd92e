#!/bin/sh
# Writes .env with fresh random credentials for docker-compose, unless .env exists already
# (make up writes the same keys for the local stack). Nothing secret is committed.
set -eu
umask 077  # .env holds passwords: created owner-only, never readable by others even briefly
cd "$(dirname "$0")/.."
[ -e .env ] && { echo ".env exists; keeping it"; exit 0; }
pw() { head -c 18 /dev/urandom | base64 | tr -d '/+=' ; }
cat > .env <<EOT
MQTT_USERNAME=inspector
MQTT_PASSWORD=$(pw)
MQTT_BRIDGE_USERNAME=bridge
MQTT_BRIDGE_PASSWORD=$(pw)
MQTT_GATEWAY_USERNAME=gateway
MQTT_GATEWAY_PASSWORD=$(pw)
AWS_ACCESS_KEY_ID=$(pw)
AWS_SECRET_ACCESS_KEY=$(pw)
AWS_REGION=us-east-1
S3_BUCKET=cityfleet
EOT
echo "wrote .env"
