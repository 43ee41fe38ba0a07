#!/usr/bin/env bash
# Installs dependencies, builds, and starts a single-node Granary server (every role in one
# process) on the data directory $GRANARY_DATA (default ./granary-data): S3 on 127.0.0.1:9000,
# the native protocol on 127.0.0.1:9100. Extra arguments go to `granary server`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD_DIR=build bash scripts/build.sh
data=${GRANARY_DATA:-$PWD/granary-data}
mkdir -p "$data"
s3=${GRANARY_S3:-127.0.0.1:9000}
native=${GRANARY_LISTEN:-127.0.0.1:9100}

creds="$data/credentials.json"
if [ -n "${GRANARY_ACCESS_KEY:-}" ]; then
  key_hint="access key \$GRANARY_ACCESS_KEY, secret \$GRANARY_SECRET_KEY"
  export_hint="export AWS_ACCESS_KEY_ID=\$GRANARY_ACCESS_KEY AWS_SECRET_ACCESS_KEY=\$GRANARY_SECRET_KEY"
else
  key_hint="generated on first start, stored in $creds (mode 0600)"
  export_hint="export AWS_ACCESS_KEY_ID=\$(python3 -c 'import json;print(json.load(open(\"$creds\"))[\"access_key\"])') AWS_SECRET_ACCESS_KEY=\$(python3 -c 'import json;print(json.load(open(\"$creds\"))[\"secret_key\"])')"
fi
cat <<MSG
Starting granary server on $data (Ctrl-C stops it cleanly).
Credentials: $key_hint.

With the aws CLI (in another shell):
  $export_hint
  aws --endpoint-url http://$s3 s3 mb s3://demo
  aws --endpoint-url http://$s3 s3 cp README.md s3://demo/
  aws --endpoint-url http://$s3 s3 ls s3://demo

From Python (/usr/bin/python3), native protocol:
  PYTHONPATH=$PWD/build/python /usr/bin/python3
  >>> import granary, json
  >>> c = json.load(open("$creds"))   # or your GRANARY_* keys
  >>> client = granary.Client("$native", c["access_key"], c["secret_key"])
  >>> client.put("demo", "hello.txt", b"hello"); client.get("demo", "hello.txt")

From Python with boto3: boto3.client("s3", endpoint_url="http://$s3", ...)
MSG
exec ./build/granary server --data "$data" --s3 "$s3" --listen "$native" "$@"
