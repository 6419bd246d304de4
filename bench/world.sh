# Sourced by bench/run.sh and tests/occm-migration/run.sh: one sandbox cloud and one local
# kube-apiserver for contenders that run one after the other against them.
#
#   world_start WORK OLBC_BIN [sandbox args...]   starts both (logs and files under WORK); sets
#       world_admin_url   the sandbox's admin API (users, nodes, request log)
#       world_cloud_conf  the sandbox's cloud.conf (user admin)
#       world_kubeconfig  the control plane's kubeconfig
#       world_node_octet  the second octet of the node range 127.X.0.0/16
#   world_stop WORK                               stops both (safe to call twice, or early)
#
# Needs the caller's `log` and `die`, and its repository root as the working directory.

world_sandbox_pid=

world_start() {
  local work=$1 bin=$2
  shift 2
  # Own loopback ranges (not the demo's 127.200/127.100) so a demo or test that runs at the
  # same time binds other addresses; random so two runs rarely share one.
  local fip_octet=$((130 + RANDOM % 40))
  world_node_octet=$((fip_octet + 40))
  world_cloud_conf=$work/cloud.conf
  local args=(sandbox --floating-range "127.$fip_octet.0.0/16"
    --node-range "127.$world_node_octet.0.0/16" --env-file "$work/openrc"
    --cloud-conf "$world_cloud_conf" "$@")
  log "starting the sandbox: $bin ${args[*]}"
  "$bin" "${args[@]}" >"$work/sandbox.out" 2>"$work/sandbox.err" &
  world_sandbox_pid=$!
  local _
  for _ in $(seq 1 300); do
    [[ -s $work/openrc ]] && break
    kill -0 "$world_sandbox_pid" 2>/dev/null || { tail -n 20 "$work/sandbox.err" >&2; die "the sandbox exited at start"; }
    sleep 0.1
  done
  [[ -s $work/openrc ]] || die "the sandbox was not ready after 30 s (log: $work/sandbox.err)"
  sleep 0.2 # the admin URL line is printed right after the env file is written
  world_admin_url=$(sed -n 's/^# Admin API.*: \(http[^ ]*\)$/\1/p' "$work/sandbox.out" | head -n1)
  [[ -n $world_admin_url ]] || die "no admin API URL in $work/sandbox.out"

  log "starting the local control plane in $work/cp ..."
  hack/control-plane.sh start --dir "$work/cp" >"$work/cp.env" || die "hack/control-plane.sh start failed"
  world_kubeconfig=$work/cp/kubeconfig
}

world_stop() {
  local work=$1
  if [[ -n $world_sandbox_pid ]] && kill -0 "$world_sandbox_pid" 2>/dev/null; then
    kill -TERM "$world_sandbox_pid" 2>/dev/null || true
    wait "$world_sandbox_pid" 2>/dev/null || true
  fi
  world_sandbox_pid=
  hack/control-plane.sh stop --dir "$work/cp" >/dev/null 2>&1 || true
}
