#!/usr/bin/env bash
# Side-by-side benchmark: OCCM (1 and 10 workers) and openstack-lb-controller, one after the
# other, against one sandbox cloud and one local kube-apiserver. See bench/README.md.
#
#   bench/run.sh                      the baseline set: N = 1,10,50, node change under 10, D = 5s
#   bench/run.sh --full               N = 1,10,50,100,300, node change under 100 (OCCM@1 up to 50)
#   bench/run.sh --quick              N = 1,3, D = 1s, node change under 3; writes into a temp dir
#   options: --sizes 1,10 --node-sizes 10 --nodes 3 --delay 5s --delay-max 60s
#            --contenders occm1,occm10,olbc --label TEXT --out DIR --no-plots --note TEXT
#            --cap occm1=50 (skip sizes above 50 for that contender)
#            --olbc-metadata 'api-rate-limit = 0' (a [Metadata] line for this controller's
#            cloud.conf; repeatable: e.g. to measure another rate limit)
#
# Env: OLBC_BIN (use this openstack-lb-controller binary instead of a release build),
#      OLBC_SANDBOX_BIN (the binary that serves the sandbox, default OLBC_BIN: the image's
#      binary has no sandbox, so measuring it needs the release build here),
#      OLBC_OCCM_VERSION, OLBC_CACHE_DIR, plus what hack/control-plane.sh understands.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
CACHE_ROOT=${OLBC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

sizes=1,10,50
node_sizes=10
nodes=3
delay=5s
delay_max=
contenders=occm1,occm10,olbc
contenders_given=false
label=
out=
plots=true
quick=false
notes=()
caps=()
metadata=()
while (($#)); do
  case $1 in
    --quick) quick=true; sizes=1,3; node_sizes=3; delay=1s; shift ;;
    --full) sizes=1,10,50,100,300; node_sizes=100; caps+=(--cap occm1=50); shift ;;
    --sizes) sizes=$2; shift 2 ;;
    --node-sizes) node_sizes=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --delay) delay=$2; shift 2 ;;
    --delay-max) delay_max=$2; shift 2 ;;
    --contenders) contenders=$2; contenders_given=true; shift 2 ;;
    --label) label=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --note) notes+=(--note "$2"); shift 2 ;;
    --cap) caps+=(--cap "$2"); shift 2 ;;
    --olbc-metadata) metadata+=(--olbc-metadata "$2"); shift 2 ;;
    --no-plots) plots=false; shift ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ $sizes =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--sizes must be a comma-separated list of counts, e.g. 1,10,50 (got '$sizes')"
[[ $node_sizes =~ ^([0-9]+(,[0-9]+)*)?$ ]] || die "--node-sizes must be a comma-separated list of counts (got '$node_sizes')"
[[ $nodes =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive count (got '$nodes')"
seconds() { # Go-style duration -> seconds (decimal)
  case $1 in
    *ms) echo "scale=3; ${1%ms} / 1000" | bc ;;
    *s) echo "${1%s}" ;;
    *m) echo "$(( ${1%m} * 60 ))" ;;
    *) echo "$1" ;;
  esac
}
for d in "$delay" ${delay_max:+"$delay_max"}; do
  [[ $d =~ ^[0-9]+(ms|s|m)?$ ]] || die "delays look like 500ms, 5s or 1m (got '$d')"
done
for c in ${contenders//,/ }; do
  case $c in occm1|occm10|olbc) ;; *) die "--contenders takes occm1, occm10, olbc (got '$c')" ;; esac
done
command -v bc >/dev/null || die "bc not found (apt-get install bc)"
command -v kubectl >/dev/null || die "kubectl not found: hack/control-plane.sh needs it"

# ------------------------------------------------------------------ what to run
if [[ -n ${OLBC_BIN:-} ]]; then
  olbc_bin=$OLBC_BIN
  [[ -x $olbc_bin ]] || die "OLBC_BIN=$olbc_bin is not an executable"
else
  log "building openstack-lb-controller (release) ..."
  cargo build -q --release -p openstack-lb-controller
  olbc_bin=${CARGO_TARGET_DIR:-$repo/target}/release/openstack-lb-controller
fi
sandbox_bin=${OLBC_SANDBOX_BIN:-$olbc_bin}
[[ -x $sandbox_bin ]] || die "OLBC_SANDBOX_BIN=$sandbox_bin is not an executable"

occm_bin=
wants_occm=false
[[ $contenders == *occm* ]] && wants_occm=true
if $quick; then
  # The quick mode never builds OCCM (several minutes): it uses a cached one if there is one.
  if occm_bin=$(bench/build-occm.sh --check 2>/dev/null); then
    $contenders_given || contenders=occm10,olbc
  else
    occm_bin=
    $contenders_given || contenders=olbc
    log "NOTE: OCCM is not built (bench/build-occm.sh, ~10 min once); the quick run covers this controller only"
  fi
elif $wants_occm; then
  occm_bin=$(bench/build-occm.sh | tail -n1)
fi
if [[ $contenders == *occm* && -z $occm_bin ]]; then
  die "OCCM is not built; run bench/build-occm.sh first or drop it from --contenders"
fi

# Plots need matplotlib: a venv cached under the cache dir, made once.
python=python3
if $plots && ! $quick; then
  venv=$CACHE_ROOT/bench-venv
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    log "creating $venv with matplotlib (once) ..."
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q matplotlib
  fi
  python=$venv/bin/python
fi

# ------------------------------------------------------------------ the world
work=$(mktemp -d "${TMPDIR:-/tmp}/olbc-bench.XXXXXX")
if [[ -z $out ]]; then
  if $quick; then out=$work/report; else out=$repo/bench; fi
fi
# shellcheck source=bench/world.sh
. bench/world.sh
driver_pid=
cleanup() {
  if [[ -n $driver_pid ]] && kill -0 "$driver_pid" 2>/dev/null; then
    kill -TERM "$driver_pid" 2>/dev/null || true # it stops the contender it runs
    wait "$driver_pid" 2>/dev/null || true
  fi
  world_stop "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sandbox_args=(--provisioning-delay "$delay"
  --quota floatingip=-1 --quota port=-1 --quota security_group=-1 --quota security_group_rule=-1)
[[ -n $delay_max ]] && sandbox_args+=(--provisioning-delay-max "$delay_max")
world_start "$work" "$sandbox_bin" "${sandbox_args[@]}"
admin_url=$world_admin_url
kubeconfig=$world_kubeconfig
node_octet=$world_node_octet

machine="$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n $label ]] || label="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -n $occm_bin ]] && notes+=(--note "OCCM: k8s.io/cloud-provider-openstack ${OLBC_OCCM_VERSION:-v1.34.1}, --controllers=service, leader election off.")
plot_flag=()
$plots && ! $quick && plot_flag=(--plots)
delay_s=$(seconds "$delay")
delay_max_s=0
[[ -n $delay_max ]] && delay_max_s=$(seconds "$delay_max")
# Every wait in the driver is bounded by this (generous: OCCM with 1 worker is sequential).
max_n=$(tr , '\n' <<<"$sizes" | sort -n | tail -n1)
slowest=$(printf '%s\n' "$delay_s" "$delay_max_s" | sort -g | tail -n1)
timeout_s=$(echo "600 + 8 * $max_n * ($slowest + 1)" | bc)

rc=0
"$python" bench/bench.py --kubeconfig "$kubeconfig" --sandbox-admin "$admin_url" \
  --cloud-conf "$world_cloud_conf" --work "$work" --out-dir "$out" --olbc-bin "$olbc_bin" \
  --occm-bin "$occm_bin" --contenders "$contenders" --sizes "$sizes" --node-sizes "$node_sizes" \
  --nodes "$nodes" --node-octet "$node_octet" --sandbox-pid "$world_sandbox_pid" --delay "$delay_s" --delay-max "$delay_max_s" \
  --timeout "$timeout_s" --label "$label" --machine "$machine" "${notes[@]+"${notes[@]}"}" "${caps[@]+"${caps[@]}"}" \
  "${metadata[@]+"${metadata[@]}"}" "${plot_flag[@]+"${plot_flag[@]}"}" &
driver_pid=$!
wait "$driver_pid" || rc=$?
driver_pid=
log "logs of this run: $work"
exit $rc
