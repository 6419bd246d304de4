#!/usr/bin/env bash
# The README's demo command works on this machine: `scripts/demo.sh --once` gets the example
# Service an external IP, two different backends answer through it, and it tears down cleanly.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp "${TMPDIR:-/tmp}/olbc-demo-test.XXXXXX")
timeout 300 "$repo/scripts/demo.sh" --once | tee "$out"
grep -q 'status.loadBalancer.ingress = 127\.200\.' "$out"
answers=$(grep -c '^hello from nginx on demo-node-' "$out")
distinct=$(grep '^hello from nginx on demo-node-' "$out" | sort -u | wc -l)
[ "$answers" = 2 ] || { echo "expected 2 answers through the external IP, got $answers" >&2; exit 1; }
[ "$distinct" = 2 ] || { echo "expected two different backends to answer, got $distinct" >&2; exit 1; }
grep -q 'load balancer  deleted, floating IP released' "$out"
grep -q 'sandbox        stopped' "$out"
echo "demo passed"
