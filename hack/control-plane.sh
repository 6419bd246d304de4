#!/usr/bin/env bash
# Local Kubernetes control plane (etcd + kube-apiserver only) for tests and the demo.
#
#   hack/control-plane.sh start [--dir DIR]   build if needed, start, wait until ready,
#                                             print `export KUBECONFIG=DIR/kubeconfig`
#   hack/control-plane.sh stop  [--dir DIR]   stop exactly the processes recorded in DIR
#   hack/control-plane.sh env   [--dir DIR]   print the export line
#
# DIR defaults to ${TMPDIR:-/tmp}/olbc-control-plane. Several instances with different
# DIRs can run side by side: all ports are picked at start time.
#
# Env:
#   OLBC_BIN_DIR             use these kube-apiserver/etcd binaries instead of building
#   OLBC_START_TIMEOUT       seconds to wait for readiness (default 60)
#   OLBC_SERVICE_CIDR        service cluster IP range (default 10.96.0.0/16)
#   OLBC_NODE_PORT_RANGE     node port range (default 30000-32767)
#   OLBC_APISERVER_EXTRA_ARGS extra kube-apiserver flags (word-split)
#   plus everything hack/build-control-plane.sh understands (OLBC_K8S_VERSION, ...).
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
START_TIMEOUT=${OLBC_START_TIMEOUT:-60}
SERVICE_CIDR=${OLBC_SERVICE_CIDR:-10.96.0.0/16}
NODE_PORT_RANGE=${OLBC_NODE_PORT_RANGE:-30000-32767}
SA_ISSUER=https://kubernetes.default.svc.cluster.local

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  echo "usage: $0 start|stop|env [--dir DIR]" >&2
  exit 2
}

CMD=${1:-}
case $CMD in start|stop|env) ;; *) usage ;; esac
shift
DIR=${TMPDIR:-/tmp}/olbc-control-plane
while (($#)); do
  case $1 in
    --dir) [[ $# -ge 2 ]] || usage; DIR=$2; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

if [[ $CMD == start ]]; then
  mkdir -p "$DIR"
  chmod 700 "$DIR" # holds the admin key and the etcd data
elif [[ ! -d $DIR ]]; then
  [[ $CMD == stop ]] && { log "nothing to stop: $DIR does not exist"; exit 0; }
  die "$DIR does not exist (run: $0 start --dir $DIR)"
fi
DIR=$(cd "$DIR" && pwd -P)
KUBECONFIG_FILE=$DIR/kubeconfig
PKI=$DIR/pki

# ------------------------------------------------------------------ processes
# A recorded PID only counts as ours if it is alive AND its command line still
# mentions DIR (guards against PID reuse after a reboot/crash).
pid_is_ours() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r /proc/$pid/cmdline ]] || return 0 # no procfs: trust kill -0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -F -- "$DIR/" >/dev/null
}

read_pid() { if [[ -f $DIR/$1.pid ]]; then cat "$DIR/$1.pid"; fi; }

# Liveness of a process this very start spawned. Not pid_is_ours: right after the fork, before
# exec, its command line is still this script's, and under load a check can land in that gap.
started_alive() { local pid=$1; [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; }

stop_one() { # name
  local name=$1 pid i
  pid=$(read_pid "$name")
  [[ -n $pid ]] || return 0
  if pid_is_ours "$pid"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) did not exit after 15s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) survived SIGKILL"
    fi
  fi
  rm -f "$DIR/$name.pid"
}

do_stop() {
  stop_one kube-apiserver
  stop_one etcd
}

running() { pid_is_ours "$(read_pid kube-apiserver)" && pid_is_ours "$(read_pid etcd)"; }

# ----------------------------------------------------------------------- ports
declare -a TAKEN_PORTS=()
port_in_use() {
  local p=$1 q
  for q in "${TAKEN_PORTS[@]}"; do [[ $q == "$p" ]] && return 0; done
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Htan "( sport = :$p )" 2>/dev/null) ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
  fi
}
port_listening() { # checked with ss when possible: a probe connection would spam etcd's log
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Htln "( sport = :$1 )" 2>/dev/null) ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
# Random port in 15000-29999: below the Linux ephemeral range (32768+) and the
# default node-port range, so it does not collide with outgoing connections.
free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((15000 + (RANDOM * 32768 + RANDOM) % 15000))
    if ! port_in_use "$p"; then
      TAKEN_PORTS+=("$p")
      echo "$p"
      return 0
    fi
  done
  die "could not find a free TCP port"
}

# ------------------------------------------------------------------------- pki
gen_pki() {
  command -v openssl >/dev/null 2>&1 || die "openssl is required"
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ -s $PKI/ca.crt && -s $PKI/admin.crt && -s $PKI/sa.key && -s $PKI/serving.crt && -s $PKI/etcd-client.crt ]]; then
    return 0
  fi
  log "generating certificates in $PKI"
  local o=$PKI
  (
    umask 077
    set -e
    exec >"$DIR/openssl.log" 2>&1
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$o/ca.key"
    openssl req -x509 -new -key "$o/ca.key" -sha256 -days 3650 -subj "/CN=olbc-control-plane-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$o/ca.crt"
    sign() { # name subject extensions
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$o/$1.key"
      openssl req -new -key "$o/$1.key" -subj "$2" -out "$o/$1.csr"
      printf '%s\n' "$3" >"$o/$1.ext"
      openssl x509 -req -in "$o/$1.csr" -CA "$o/ca.crt" -CAkey "$o/ca.key" -CAcreateserial \
        -sha256 -days 3650 -extfile "$o/$1.ext" -out "$o/$1.crt"
      rm -f "$o/$1.csr" "$o/$1.ext"
    }
    local base="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment"
    # Serving cert for kube-apiserver and etcd (etcd's gRPC gateway also dials
    # itself with this cert, so it needs clientAuth as well).
    sign serving "/CN=olbc-control-plane" "$base
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:${SERVICE_CIDR%%.0/*}.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    # kube-apiserver -> etcd client cert.
    sign etcd-client "/CN=kube-apiserver-etcd-client" "$base
extendedKeyUsage=clientAuth"
    # Admin client cert (group system:masters => cluster-admin, bypasses RBAC).
    sign admin "/O=system:masters/CN=olbc-admin" "$base
extendedKeyUsage=clientAuth"
    # Service account token signing key.
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$o/sa.key"
    openssl pkey -in "$o/sa.key" -pubout -out "$o/sa.pub"
  ) || die "certificate generation failed, see $DIR/openssl.log"
}

write_kubeconfig() { # apiserver-url
  local tmp=$KUBECONFIG_FILE.tmp.$$
  (
    umask 077
    cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: olbc
  cluster:
    server: $1
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: olbc-admin
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/admin.crt")
    client-key-data: $(base64 -w0 <"$PKI/admin.key")
contexts:
- name: olbc
  context:
    cluster: olbc
    user: olbc-admin
    namespace: default
current-context: olbc
EOF
  )
  mv -f "$tmp" "$KUBECONFIG_FILE"
  printf 'KUBECONFIG=%s\nOLBC_APISERVER_URL=%s\n' "$KUBECONFIG_FILE" "$1" >"$DIR/env.tmp.$$"
  mv -f "$DIR/env.tmp.$$" "$DIR/env"
}

# Start a detached process (own session, so Ctrl-C in the caller's terminal does
# not hit it; no inherited fds, so callers reading our stdout get EOF). setsid
# execs in place because a background child is never a process-group leader,
# so $! is the PID of the server itself.
spawn() { # name cmd...
  local name=$1; shift
  setsid "$@" </dev/null >>"$DIR/$name.log" 2>&1 9>&- &
  echo $! >"$DIR/$name.pid"
}

tail_log() { log "---- last lines of $DIR/$1.log ----"; tail -n 25 "$DIR/$1.log" >&2 || true; }
addr_in_use() { grep -qiE 'address already in use|bind: address' "$DIR/$1.log" 2>/dev/null; }

# Returns 0 when etcd answers on its client port, 1 on timeout, 2 on port clash.
start_etcd() { # client-port peer-port
  local cp=$1 pp=$2 i
  : >"$DIR/etcd.log"
  spawn etcd "$BIN_DIR/etcd" \
    --name=olbc \
    --data-dir="$DIR/etcd-data" \
    --listen-client-urls="https://127.0.0.1:$cp" \
    --advertise-client-urls="https://127.0.0.1:$cp" \
    --listen-peer-urls="http://127.0.0.1:$pp" \
    --initial-advertise-peer-urls="http://127.0.0.1:$pp" \
    --initial-cluster="olbc=http://127.0.0.1:$pp" \
    --cert-file="$PKI/serving.crt" --key-file="$PKI/serving.key" \
    --trusted-ca-file="$PKI/ca.crt" --client-cert-auth \
    --unsafe-no-fsync \
    --log-level=warn
  for ((i = 0; i < 200; i++)); do
    if ! started_alive "$(read_pid etcd)"; then
      addr_in_use etcd && return 2
      tail_log etcd
      die "etcd exited during startup"
    fi
    port_listening "$cp" && return 0
    sleep 0.1
  done
  return 1
}

start_apiserver() { # secure-port etcd-client-port
  local sp=$1 cp=$2
  : >"$DIR/kube-apiserver.log"
  # shellcheck disable=SC2086
  spawn kube-apiserver "$BIN_DIR/kube-apiserver" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --secure-port="$sp" \
    --cert-dir="$DIR/apiserver-certs" \
    --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key" \
    --client-ca-file="$PKI/ca.crt" \
    --etcd-servers="https://127.0.0.1:$cp" \
    --etcd-cafile="$PKI/ca.crt" --etcd-certfile="$PKI/etcd-client.crt" --etcd-keyfile="$PKI/etcd-client.key" \
    --service-account-issuer="$SA_ISSUER" \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=Node,RBAC \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-node-port-range="$NODE_PORT_RANGE" \
    --allow-privileged=true \
    --profiling=false \
    ${OLBC_APISERVER_EXTRA_ARGS:-}
}

kc() { kubectl --kubeconfig="$KUBECONFIG_FILE" --request-timeout=5s "$@"; }

# Returns 0 when ready, 1 on timeout, 2 on port clash. Bounded by $deadline.
wait_ready() {
  local deadline=$1 stage=readyz out
  while ((SECONDS < deadline)); do
    if ! started_alive "$(read_pid kube-apiserver)"; then
      addr_in_use kube-apiserver && return 2
      tail_log kube-apiserver
      die "kube-apiserver exited during startup"
    fi
    started_alive "$(read_pid etcd)" || { tail_log etcd; die "etcd exited during startup"; }
    case $stage in
      readyz)
        out=$(kc get --raw /readyz 2>/dev/null || true)
        [[ $out == ok ]] && stage=namespaces ;;
      namespaces)
        kc get namespace default kube-system -o name >/dev/null 2>&1 && stage=rbac ;;
      rbac)
        if kc get clusterrole cluster-admin admin edit view system:node-proxier -o name >/dev/null 2>&1 \
          && kc get clusterrolebinding cluster-admin -o name >/dev/null 2>&1; then
          return 0
        fi ;;
    esac
    sleep 0.25
  done
  log "timed out at stage '$stage'"
  return 1
}

do_start() {
  command -v kubectl >/dev/null 2>&1 || die "kubectl is required"
  if running; then
    log "already running in $DIR"
    echo "export KUBECONFIG=$KUBECONFIG_FILE"
    return 0
  fi
  do_stop # clean up a half-dead previous instance (only our recorded PIDs)
  # Whatever goes wrong from here on (die, timeout, Ctrl-C), do not leave a
  # half-started etcd/kube-apiserver behind.
  trap 'rc=$?; if ((rc != 0)); then log "start failed, stopping what was started"; do_stop; fi' EXIT

  if [[ -n ${OLBC_BIN_DIR:-} ]]; then
    BIN_DIR=$OLBC_BIN_DIR
  else
    BIN_DIR=$("$HACK_DIR/build-control-plane.sh" 9>&- | tail -n1) \
      || die "building the control plane failed"
  fi
  [[ -x $BIN_DIR/kube-apiserver && -x $BIN_DIR/etcd ]] \
    || die "kube-apiserver/etcd not found in '$BIN_DIR'"

  gen_pki
  local deadline=$((SECONDS + START_TIMEOUT)) attempt rc cp pp sp
  for attempt in 1 2 3; do
    TAKEN_PORTS=()
    cp=$(free_port); TAKEN_PORTS+=("$cp")
    pp=$(free_port); TAKEN_PORTS+=("$pp")
    sp=$(free_port); TAKEN_PORTS+=("$sp")
    log "starting etcd on 127.0.0.1:$cp (peer $pp), kube-apiserver on 127.0.0.1:$sp (attempt $attempt)"
    rc=0; start_etcd "$cp" "$pp" || rc=$?
    if ((rc == 2)); then log "etcd port clash, retrying with other ports"; do_stop; continue; fi
    if ((rc != 0)); then tail_log etcd; do_stop; die "etcd did not open port $cp in time"; fi

    write_kubeconfig "https://127.0.0.1:$sp"
    printf 'etcd_client_port=%s\netcd_peer_port=%s\napiserver_port=%s\n' "$cp" "$pp" "$sp" >"$DIR/ports"
    start_apiserver "$sp" "$cp"
    rc=0; wait_ready "$deadline" || rc=$?
    if ((rc == 0)); then
      log "ready after $((SECONDS - deadline + START_TIMEOUT))s: https://127.0.0.1:$sp (logs: $DIR/*.log)"
      echo "export KUBECONFIG=$KUBECONFIG_FILE"
      return 0
    fi
    if ((rc == 2)); then log "kube-apiserver port clash, retrying with other ports"; do_stop; continue; fi
    tail_log kube-apiserver
    do_stop
    die "control plane not ready within ${START_TIMEOUT}s (see $DIR/kube-apiserver.log, $DIR/etcd.log)"
  done
  die "could not start after 3 attempts (port clashes)"
}

# Serialise start/stop on the same DIR.
exec 9>"$DIR/.lock"
flock -w 120 9 || die "could not lock $DIR/.lock within 120s (another start/stop running?)"

case $CMD in
  start) do_start ;;
  stop)
    do_stop
    log "stopped (data and logs kept in $DIR)" ;;
  env)
    [[ -f $KUBECONFIG_FILE ]] || die "no kubeconfig in $DIR (run: $0 start --dir $DIR)"
    running || log "warning: control plane in $DIR is not running"
    echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
  *) usage ;;
esac
