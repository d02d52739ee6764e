#!/bin/sh
# Write the sample site file from its one source each fact has:
#   conf/irfw-head.ini      the introduction, [irfw] and the pipeline's order
#   the options tables      every other key, its default and its help, as
#                           `irfw plugins --describe NAME --ini` prints them
#   conf/irfw-choices.ini   the few values the sample sets, with why
# for the [irfw] keys, then each plugin configure knows, in pipeline order
# (the ones not in the default pipeline last).
#   scripts/gen-conf.sh BUILDDIR [OUT]      (OUT defaults to conf/irfw.ini)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
out=${2:-$src/conf/irfw.ini}
irfw="$build/irfw"
export IRFW_PLUGIN_PATH="$build/plugins"

# configure.ac's IRFW_PLUGIN lines are the one list of plugins.
all=$(sed -n 's/^IRFW_PLUGIN(\[\([a-z0-9_]*\)\].*/\1/p' "$src/configure.ac")
pipeline=$(awk '/^pipeline *=/ {on = 1; sub(/^pipeline *= */, ""); gsub(/,/, " "); print; next}
	on && /^[ \t]/ {gsub(/,/, " "); print; next} {on = 0}' "$src/conf/irfw-head.ini")
order=""
for p in $pipeline; do order="$order $p"; done
for p in $all; do
	case " $order " in *" $p "*) ;; *) order="$order $p" ;; esac
done

# Put the sample's choices of section $1 after their commented defaults.
choose() {
	awk -v sec="$1" -v choices="$src/conf/irfw-choices.ini" '
	BEGIN {
		while ((getline line < choices) > 0) {
			if (line ~ /^\[/) { cur = line; gsub(/[][]/, "", cur); why = ""; continue }
			if (line ~ /^;/) { why = why line "\n"; continue }
			if (line ~ /=/ && cur == sec) {
				k = line; sub(/ *=.*/, "", k); val[k] = why line; why = ""
			} else if (line !~ /=/) why = ""
		}
	}
	{ print }
	/^;[a-z0-9_.]+ =/ { k = substr($0, 2); sub(/ *=.*/, "", k); if (k in val) { print val[k]; done[k] = 1 } }
	# A choice of a key the plugin does not show (a core step key such as
	# optional) ends the section.
	END { for (k in val) if (!(k in done)) print "\n" val[k] }'
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
	cat "$src/conf/irfw-head.ini"
	echo
	# The [irfw] keys but the pipeline (the head has it, with its reasons).
	"$irfw" plugins --describe irfw --ini | awk 'NR > 2' |
		awk 'BEGIN {RS = ""; ORS = "\n\n"} !/\npipeline =/ && !/^pipeline =/' | choose irfw
	for p in $order; do
		[ -f "$build/plugins/$p.la" ] || [ -f "$build/plugins/$p.so" ] || [ -f "$build/plugins/.libs/$p.so" ] || {
			echo "gen-conf: plugin $p is not built in $build (configure --enable-$p)" >&2
			exit 1
		}
		"$irfw" plugins --describe "$p" --ini | choose "$p"
		echo
	done
} >"$tmp"
# No trailing blank lines.
awk '{ lines[NR] = $0 } END { n = NR; while (n > 0 && lines[n] == "") n--; for (i = 1; i <= n; i++) print lines[i] }' \
	"$tmp" >"$out"
