#!/bin/sh
# make demo, part 2: three nodes on loopback run examples/ha-cltab, keep
# its web group on one of them, and move it when that node dies. No root
# needed: the HA group's commands are harmless stand-ins.
set -eu
bin=${1:-bin/clinit}
run=demo-run/cluster
rm -rf "$run"
mkdir -p "$run"
# Two ports apart: each voter's raft port is its memberlist port + 1.
# CLINIT_DEMO_PORT moves them (six ports from it are used).
base=${CLINIT_DEMO_PORT:-27941}
ports="$base $((base + 2)) $((base + 4))"
seeds=127.0.0.1:$base,127.0.0.1:$((base + 2)),127.0.0.1:$((base + 4))

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
hastat() { printf -- '--- %s/n1/hastat ---\n' "$run"; cat "$run/n1/hastat" 2>/dev/null || true; }
# until PATTERN is in node $2's hastat (default n1)
await() {
  i=0
  until grep -qE "$1" "$run/${2:-n1}/hastat" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 800 ] || { echo "timed out waiting for: $1"; exit 1; }
    sleep 0.05
  done
}
# now: seconds since boot, to the hundredth (Linux).
now() { cut -d' ' -f1 /proc/uptime; }
# gone PID: the process has ended (a zombie has: it waits for its reaper).
gone() {
  s=$(ps -o stat= -p "$1" 2>/dev/null || true)
  [ -z "$s" ] || [ "${s#Z}" != "$s" ]
}
pids=""
cleanup() {
  for n in n1 n2 n3; do "$bin" -s "$run/$n/sock" -k >/dev/null 2>&1 || true; done
  for p in $pids; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

say "$bin --keygen $run/key"
rm -f "$run/key"
"$bin" --keygen "$run/key" >/dev/null
i=0
for port in $ports; do
  i=$((i + 1)); n=n$i; d=$run/$n
  mkdir -p "$d"; cp examples/ha-cltab "$d/cltab"
  say "$bin -d --node $n -c $d/cltab -s $d/sock --clstat $d/clstat --hastat $d/hastat --hactl $d/hactl --state-dir $d/state --bind 127.0.0.1:$port --join $seeds --keyfile $run/key &"
  "$bin" -d --node "$n" -c "$d/cltab" -s "$d/sock" --clstat "$d/clstat" --hastat "$d/hastat" --hactl "$d/hactl" \
    --state-dir "$d/state" --bind "127.0.0.1:$port" --join "$seeds" --keyfile "$run/key" --log "$d/log" 2>/dev/null &
  pids="$pids $!"
  echo "$!" > "$d/pid"
done
await 'node n3 alive'; await 'node n2 alive'; await 'node n1 alive'
hastat

say "$bin -s $run/n1/sock --ha web start    # keep web at level start on one node"
"$bin" -s "$run/n1/sock" --ha web start
await '^web start DONE n[123]$'
say "$bin -s $run/n2/sock --hastat"
"$bin" -s "$run/n2/sock" --hastat
owner=$(sed -n 's/^web start DONE \(n[123]\)$/\1/p' "$run/n1/hastat")

watcher=n1; [ "$owner" = n1 ] && watcher=n2
pid=$(cat "$run/$owner/pid")
leader=$("$bin" -s "$run/$watcher/sock" --hastat | sed -n 's/^leader \(n[123]\).*/\1/p')
say "kill -9 $pid and its services    # $owner, where web runs, dies"
kids=$(ps -o pid= --ppid "$pid" || true)
kill -9 "$pid"
# Each child (the services, the keeper) leads a process group of its own.
# `kill -s KILL -- -PGID` is the POSIX form; dash's kill refuses
# `kill -9 -- -PGID` ("Illegal number"), which an `|| true` once hid.
for k in $kids; do
  kill -s KILL -- "-$k" 2>/dev/null || gone "$k" || { echo "cannot kill the process group of $k"; exit 1; }
done
for k in $kids; do
  i=0
  until gone "$k"; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "process $k of $owner survived SIGKILL"; exit 1; }
    sleep 0.05
  done
done
echo "$owner's daemon and its $(echo $kids | wc -w) children (its keeper, web's services) are gone"
start=$(now)
echo "waiting for $owner's lease (8 s from its last renewal) and the fence time (5 s) to pass: no stomith in this example, so about 13 s$([ "$leader" = "$owner" ] && echo ", plus an election, as $owner led the cluster")..."
await "node $owner dead" "$watcher"
await "^web start DONE n[123]\$" "$watcher"
new=$(sed -n 's/^web start DONE \(n[123]\)$/\1/p' "$run/$watcher/hastat")
echo "web moved from $owner to $new $(awk "BEGIN { printf \"%.1f\", $(now) - $start }") s after the kill"
say "$bin -s $run/$watcher/sock --hastat"
"$bin" -s "$run/$watcher/sock" --hastat

say "grep web $run/$new/log | tail -n 6"
grep '"web"' "$run/$new/log" | tail -n 6
