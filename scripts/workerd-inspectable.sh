#!/bin/sh
# Runs workerd ($WORKERD_BINARY) with its V8 inspector on a free port of 127.0.0.1, for the soak's
# `--heap`: it reads the relay isolate's live heap there. miniflare starts this script in place of
# workerd when MINIFLARE_WORKERD_PATH names it. wrangler's own inspector option would do the same,
# but wrangler then attaches a DevTools session that records every streamed chunk.
command="$1"
shift
exec "$WORKERD_BINARY" "$command" --inspector-addr=127.0.0.1:0 "$@"
