#!/bin/sh
# Write irfw.ini(5) from the options tables of the core and of every plugin
# configure knows, so the documentation cannot drift from what the code
# accepts:
#   scripts/gen-man.sh BUILDDIR [OUT]        (OUT defaults to man/irfw.ini.5)
# BUILDDIR is a configured and built tree with every plugin enabled.  The
# page is committed (as conf/irfw.ini is) so that installing it never runs
# a binary of the build, which a cross build could not; tests/check-man.sh
# fails `make check` when it is stale.  Run this and commit the page after
# changing an option's help or default, or a plugin's description.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
out=${2:-$src/man/irfw.ini.5}
irfw="$build/irfw"
# Only the build tree's plugins: not a plugin installed on this machine.
export IRFW_PLUGIN_PATH="$build/plugins"
# configure.ac's IRFW_PLUGIN lines are the one list of plugins; the page
# lists them by name.
plugins=$(sed -n 's/^IRFW_PLUGIN(\[\([a-z0-9_]*\)\].*/\1/p' "$src/configure.ac" | LC_ALL=C sort)
for p in $plugins; do
	[ -f "$build/plugins/$p.la" ] || [ -f "$build/plugins/$p.so" ] || {
		echo "gen-man: plugin $p is not built in $build (configure --enable-$p)" >&2
		exit 1
	}
done
# "irfw 0.1.0 (plugin ABI 1.2)": the package version.
version=$("$irfw" --version | awk '{print $2; exit}')

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
echo ".TH IRFW.INI 5 \"\" \"irfw $version\" \"File Formats\""
cat <<'HEAD'
.SH NAME
irfw.ini \- site configuration of irfw, the EC2 incident-response tool
.SH DESCRIPTION
.B irfw
reads one INI file (default
.IR /etc/irfw/irfw.ini ,
or
.BR \-\-conf ).
The
.B [irfw]
section holds the global settings and the
.BR pipeline ,
the ordered list of steps run for each instance.
Every step has a section of its own, named after the step; its
.B plugin
key names the module that runs it (default: the section's name), so one
module can run twice with different settings.
.PP
Unknown keys, missing required keys, values of the wrong type, unknown
template variables and lines longer than 199 characters are errors that
name the file and line; irfw then exits with status 2 before touching any
instance.  A list may continue on indented lines.  Blanks inside a section
header's brackets are not part of its name:
.B "[\ isolate\ ]"
is
.BR [isolate] .
A section written twice is one section, and a key set in both is an error.
.PP
Values may use the templates
.BR ${account_id} ", " ${region} ", " ${instance_id} ", " ${vpc_id} ", "
.BR ${case_id} ", " ${date} " (YYYY-MM-DD, UTC), " ${time} " (HHMMSS, UTC) and " ${name_tag} ;
.B $$
is a literal dollar sign.
.PP
A step whose section says
.B optional = true
is left out, with a warning naming the package to install, when its
plugin is not installed: a distribution ships some plugins as packages of
their own (on Debian and Ubuntu
.BR irfw\-plugin\-notify\-slack ,
.BR irfw\-plugin\-notify\-sns ,
.B irfw\-plugin\-iam\-profile
and
.BR irfw\-plugin\-eip ),
and the sample site file marks those steps optional.
.SH GLOBAL SETTINGS
HEAD
"$irfw" plugins --describe irfw --man-section | sed 1d
echo ".SH STEPS"
echo "Each step section takes its plugin's keys and the common keys plugin, on_error, optional and phase."
for p in $plugins; do
	"$irfw" plugins --describe "$p" --man-section
done
cat <<'TAIL'
.SH FILES
.TP
.I /etc/irfw/irfw.ini
the site configuration
.TP
.I /var/lib/irfw/cases/
the default evidence folder
.TP
.I <evidence_dir>/<case>/<instance>/
artifacts, manifest.json and journal.jsonl of one instance in one case
.SH SEE ALSO
.BR irfw (1),
.BR irfw\-plugin (7)
TAIL
} >"$tmp"
cp "$tmp" "$out"
