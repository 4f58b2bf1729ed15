#!/bin/sh
# ipmi_sim chassis_control program. Called as:
#   chassis.sh STATEFILE get power [reset ...]   -> prints "power:1"
#   chassis.sh STATEFILE set power "0" | reset "1" | shutdown "1" | identify "15 0" | boot "pxe"
F=$1; shift; op=$1; shift
[ -f "$F" ] || echo 1 > "$F"
if [ "$op" = get ]; then
  for k in "$@"; do
    case $k in
      power) echo "power:$(cat "$F")";;
      boot) echo "boot:default";;
      *) echo "$k:0";;
    esac
  done
  exit 0
fi
if [ "$op" = set ]; then
  while [ $# -gt 0 ]; do
    k=$1; v=$2; shift 2
    case $k in
      power) echo "$v" > "$F";;
      shutdown) echo 0 > "$F";;
      reset) : ;;
    esac
    echo "$(date +%s) $k=$v" >> "$F.log"
  done
  exit 0
fi
exit 0
