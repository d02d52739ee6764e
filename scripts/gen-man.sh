#!/bin/sh
# Write irfw.ini(5) on stdout from the options tables of the core and of
# every plugin the given irfw binary finds: the documentation cannot drift
# from what the code accepts.   scripts/gen-man.sh ./irfw VERSION
set -e
irfw=$1
version=${2:-}
plugins=$("$irfw" plugins 2>/dev/null | awk 'NR > 1 && NF && $1 != "Search" {print $1}')
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
.B pipeline ,
the ordered list of steps run for each instance.
Every step has a section of its own, named after the step; its
.B plugin
key names the module that runs it (default: the section's name), so one
module can run twice with different settings.
.PP
Unknown keys, missing required keys, values of the wrong type, unknown
template variables and lines longer than 199 characters are errors that
name the file and line; irfw then exits with status 2 before touching any
instance.  A list may continue on indented lines.
.PP
Values may use the templates
.BR ${account_id} ", " ${region} ", " ${instance_id} ", " ${vpc_id} ", "
.BR ${case_id} ", " ${date} " (YYYY-MM-DD, UTC), " ${time} " (HHMMSS, UTC) and " ${name_tag} ;
.B $$
is a literal dollar sign.
.SH GLOBAL SETTINGS
HEAD
"$irfw" plugins --describe irfw --man | sed 1d
echo ".SH STEPS"
echo "Each step section takes its plugin's keys and the common keys plugin and on_error."
for p in $plugins; do
	"$irfw" plugins --describe "$p" --man
done
cat <<'TAIL'
.SH FILES
.TP
.I /etc/irfw/irfw.ini
the site configuration
.TP
.I <evidence_dir>/<case>/<instance>/
artifacts, manifest.json and journal.jsonl of one instance in one case
.SH SEE ALSO
.BR irfw (1)
TAIL
