#!/bin/sh
# Assemble conf/irfw.ini from conf/irfw-head.ini and each plugin's documented
# section (plugins/<name>/<name>.ini), in the default pipeline's order.
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
order="spot asg elb iam_profile isolate protect capture snapshot tag upload notify_sns notify_slack eip"
{
	cat "$src/conf/irfw-head.ini"
	for p in $order; do
		[ -f "$src/plugins/$p/$p.ini" ] || continue
		cat "$src/plugins/$p/$p.ini"
		echo
	done
} >"$src/conf/irfw.ini"
