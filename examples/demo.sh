#!/bin/sh
# make demo: run clinit on examples/cltab with its socket, status and log
# under ./demo-run, move the web group through its levels, show a killed
# respawn process coming back, and shut down cleanly. No root needed.
set -eu
bin=${1:-bin/clinit}
run=demo-run
rm -rf "$run"
mkdir -p "$run"
export WWW="$PWD/$run/www"
flags="-c examples/cltab -s $run/clinit.s"

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
clstat() { printf -- '--- %s/clstat ---\n' "$run"; cat "$run/clstat" 2>/dev/null || true; }
# until STATE is in clstat (the tell answers at once; the level is reached
# a moment later)
await() {
  i=0
  until grep -q "$1" "$run/clstat" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "timed out waiting for: $1"; exit 1; }
    sleep 0.05
  done
}
pid_of() { "$bin" $flags --json | tr -d ' \n' | sed -n "s/.*\"tag\":\"$1\",\"mode\":\"[a-z]*\",\"pid\":\([0-9]*\).*/\1/p"; }

say "$bin -d $flags --clstat $run/clstat --hastat $run/hastat --hactl $run/hactl --state-dir $run/state --log $run/clinit.log --node demo &"
"$bin" -d $flags --clstat "$run/clstat" --hastat "$run/hastat" --hactl "$run/hactl" --state-dir "$run/state" --log "$run/clinit.log" --node demo 2>/dev/null &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
i=0
until "$bin" $flags --status >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "the daemon did not start; see $run/clinit.log"; exit 1; }
  sleep 0.05
done

say "$bin $flags -v web 1"
"$bin" $flags -v web 1
await "web 1 DONE"; clstat

say "$bin $flags -v web 2"
"$bin" $flags -v web 2
await "web 2 DONE"; clstat

say "$bin $flags jobs run"
"$bin" $flags jobs run
await "jobs run DONE"; clstat

old=$(pid_of httpd)
say "kill -9 $old    # the web server dies"
kill -9 "$old"
i=0
while new=$(pid_of httpd); [ -z "$new" ] || [ "$new" = "$old" ]; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "httpd did not come back"; exit 1; }
  sleep 0.02
done
echo "httpd respawned: pid $old -> $new"

say "$bin $flags -v web 99    # stop everything of web"
"$bin" $flags -v web 99
await "web 99 DONE"; clstat

say "$bin $flags -k"
"$bin" $flags -k
wait $daemon
trap - EXIT
echo "daemon exited; clstat removed: $([ -e "$run/clstat" ] && echo no || echo yes)"

say "tail -n 12 $run/clinit.log"
tail -n 12 "$run/clinit.log"
