#!/bin/sh
# Stand-in for the slow work a real deployment does before it can serve: restore or sync
# databases, fetch secrets, render the real navigator config from a template. navigator
# logs this output; a non-zero exit (or the hook's timeout) cancels the switch.
set -eu

echo "prepare: creating /tmp/navigator-demo"
mkdir -p /tmp/navigator-demo
echo "prepare: pretending to sync data for 3 seconds"
sleep 3
echo "prepare: done; navigator now loads config.example.yml"
