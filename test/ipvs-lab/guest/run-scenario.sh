#!/usr/bin/dash
# run-scenario.sh NAME FILE RESULTS: one scenario in a fresh set of namespaces (called by /init).
# Builds the scenario (setup), runs its exchanges (run), snapshots every host into RESULTS/<host>/ in the
# lvsdoctor-snapshot/1 format, and writes RESULTS/outcome.json. Raw records stay in RESULTS/_lab/.
LAB_NAME=$1; file=$2; RES=$3
mkdir -p "$RES/_lab"
. /lab/lib.sh
TITLE=; SOURCE=; NOTES=
setup() { setup_error "the scenario defines no setup()"; }
run() { setup_error "the scenario defines no run()"; }
. "$file"
export LAB_NAME LAB_TITLE="$TITLE" LAB_SOURCE="$SOURCE" LAB_NOTES="$NOTES"

t0=$(cut -d' ' -f1 /proc/uptime)
setup
t1=$(cut -d' ' -f1 /proc/uptime)
run
t2=$(cut -d' ' -f1 /proc/uptime)
# the listening sockets of every host while the servers still listen (the snapshot's ss-ltnu.txt: it is taken
# after the servers stopped)
while read -r h _; do
  ip netns exec "$h" ss -Hltnu >"$RES/_lab/$h.ss-ltnu.txt" 2>>"$RES/_lab/snapshot.log" || rm -f "$RES/_lab/$h.ss-ltnu.txt"
done <"$RES/_lab/hosts"
# let the servers finish their last connection (each waits at most 3 s for a FIN), then stop them
touch "$RES/_lab/stop"
i=0
while [ $i -lt 60 ]; do
  alive=
  for p in $(cat "$RES/_lab/server-pids" 2>/dev/null); do kill -0 "$p" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1; i=$((i + 1))
done
for p in $(cat "$RES/_lab/server-pids" 2>/dev/null); do kill "$p" 2>/dev/null; done
t3=$(cut -d' ' -f1 /proc/uptime)
# snapshots of every host, then outcome.json (one python process)
echo "setup=$t0-$t1 run=$t1-$t2 drain=$t2-$t3 snapshot+outcome=$t3-" >"$RES/_lab/timings"
$PY finish "$RES" 2>>"$RES/_lab/snapshot.log" || {
  setup_error "snapshot failed: $(tail -3 "$RES/_lab/snapshot.log")"
  $PY outcome "$RES"
}
echo "end=$(cut -d' ' -f1 /proc/uptime)" >>"$RES/_lab/timings"
