#!/usr/bin/env bash
# The benchmark harness keeps working: `bench/run.sh --quick` (N = 1 and 3, D = 1 s, this
# controller, plus OCCM with 10 workers when bench/build-occm.sh has cached it) runs every
# phase and writes a report in which every contender got every IP, moved every member and
# deleted every load balancer, with calls counted from its own user's share of the request log.
# Timings are reported, never asserted. It builds nothing heavy: OLBC_BIN (scripts/test.sh
# passes the debug build) is used when set.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/olbc-bench-quick.XXXXXX")
timeout 300 "$repo/bench/run.sh" --quick --out "$out"
python3 - "$out/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cs = r["contenders"]
assert any(c["id"] == "olbc" for c in cs), "this controller did not run"
for c in cs:
    assert not c.get("error"), f"{c['label']}: {c['error']}"
    assert c["rss_kib"] > 0 and c["cpu_s"] >= 0, c
    for n in ("1", "3"):
        s = c["sizes"][n]
        for k in ("create_s", "delete_s"):
            assert s[k] > 0, (c["label"], n, k, s)
        assert s["create_calls"]["POST"] >= int(n), (c["label"], n, "no POST counted for its user", s)
        assert s["fips_left"] == 0, (c["label"], n, "floating IPs left", s)
    for k in ("node_add", "node_remove"):
        # Both are seen by separate polls, so their order can differ by one poll: only
        # "both happened" is checked.
        assert s[k]["active_s"] > 0 and s[k]["members_s"] > 0, (c["label"], k, s[k])
        assert s[k]["calls"]["PUT"] + s[k]["calls"]["POST"] + s[k]["calls"]["DELETE"] > 0, (c["label"], k, s[k])
    assert not c.get("left_behind"), (c["label"], "left load balancers behind", c["left_behind"])
print("bench quick: " + "; ".join(
    f"{c['label']}: 3 IPs in {c['sizes']['3']['create_s']} s" for c in cs))
PY
grep -q '^| 3 Services created at once |' "$out/REPORT.md"
echo "bench-quick passed (report: $out/REPORT.md)"
