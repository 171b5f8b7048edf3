#!/bin/sh
# destroy-vms.sh DIR STATE: stop the QEMU processes whose pidfiles (*.pid) are in DIR, and
# only those still running qemu-system-x86_64; wait until they are gone; remove DIR and
# the file STATE that recorded it.
# Prints "stopped" if it stopped anything.
set -eu
dir=$1 state=$2
case $dir in /tmp/vjm-*) ;; *) echo "refusing to remove $dir" >&2; exit 2 ;; esac
[ -d "$dir" ] || { rm -f "$state"; exit 0; }
pids=
for pidfile in "$dir"/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  case $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) in
    qemu-system-x86_64\ *) kill -TERM "$pid" 2>/dev/null && pids="$pids $pid" ;;
  esac
done
for pid in $pids; do
  n=0
  while [ -e "/proc/$pid" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  if [ -e "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
done
rm -rf "$dir"
rm -f "$state"
[ -z "$pids" ] || echo stopped
