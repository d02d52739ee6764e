# bash completion for irfw(1)                               -*- shell-script -*-
#
# Completes the commands and the options (both read from `irfw --help`, so
# they cannot drift from the binary), the values of
# --output, the plugin names of --describe (from `irfw plugins`), the step
# names of --only and --skip (the configured pipeline, from `irfw --plan`,
# which makes no AWS call), and files and folders where an option takes one.
# Instance ids, regions, profiles, groups, buckets, topics and case ids are
# not completed: they would need AWS.
#
# It runs the irfw being completed (the first word of the line), as the
# user who pressed TAB, with the --conf of the line: what it loads is what
# that command would load.

# Commands of `irfw --help`'s usage lines ("       irfw check [OPTIONS]").
_irfw_commands()
{
	"$1" --help 2>/dev/null | sed -n -E 's/^(Usage:)? +irfw ([a-z]+)( .*)?$/\2/p'
}

# Options of `irfw --help`: "-c --conf FILE", one a line ("-" when an
# option has no short form, no third word when it takes no value).
_irfw_options()
{
	"$1" --help 2>/dev/null |
		sed -n -E 's/^ +((-[A-Za-z0-9]), )?(--[a-z][a-z0-9-]*)( ([A-Z][A-Z_]*))?( .*)?$/\2 \3 \5/p' |
		sed -E 's/^ /- /'
}

# The --conf of the line (-c FILE, --conf FILE, --conf=FILE), or nothing;
# not the word being completed.
_irfw_conf()
{
	local i w
	for ((i = 1; i < ${#words[@]}; i++)); do
		w=${words[i]}
		case $w in
		-c | --conf)
			((i + 1 < ${#words[@]} && i + 1 != cword)) && printf '%s\n' "${words[i + 1]/#\~\//$HOME/}"
			return
			;;
		--conf=*)
			((i != cword)) && w=${w#--conf=} && printf '%s\n' "${w/#\~\//$HOME/}"
			return
			;;
		esac
	done
}

# Plugin names: the first column of `irfw plugins`, with the line's --conf
# (its plugin_path) when there is one.
_irfw_plugins()
{
	local irfw=$1 conf
	conf=$(_irfw_conf)
	"$irfw" plugins ${conf:+--conf "$conf"} 2>/dev/null |
		awk 'NR > 1 && NF && $1 != "Search" && $1 ~ /^[a-z0-9_]+$/ { print $1 }'
}

# Steps of the configured pipeline (without the optional ones whose plugin
# is not installed): `irfw --plan -o json` for a made-up instance, which
# loads the site file and makes no AWS call.
_irfw_steps()
{
	local irfw=$1 conf
	conf=$(_irfw_conf)
	"$irfw" --plan -o json -i i-00000000 ${conf:+--conf "$conf"} 2>/dev/null |
		sed -n -E 's/^[[:space:]]*"step":[[:space:]]*"([a-z0-9_]+)".*/\1/p' | awk '!seen[$0]++'
}

_irfw()
{
	local cur prev words cword split=false
	if declare -F _init_completion >/dev/null 2>&1; then
		_init_completion -s || return
	else
		# Without bash-completion's helpers: the plain words, no --opt=value.
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
	fi
	local irfw=${words[0]:-$1}
	irfw=${irfw/#\~\//$HOME/}
	local opts
	opts=$(_irfw_options "$irfw")

	# The value of an option.
	case $prev in
	-o | --output)
		COMPREPLY=($(compgen -W 'text json' -- "$cur"))
		return
		;;
	-c | --conf | -f | --from-file)
		if declare -F _filedir >/dev/null 2>&1; then _filedir; else COMPREPLY=($(compgen -f -- "$cur")); fi
		return
		;;
	--evidence-dir)
		if declare -F _filedir >/dev/null 2>&1; then _filedir -d; else COMPREPLY=($(compgen -d -- "$cur")); fi
		return
		;;
	--describe)
		COMPREPLY=($(compgen -W "irfw $(_irfw_plugins "$irfw")" -- "$cur"))
		return
		;;
	--only | --skip)
		# A comma-separated list: complete its last word, keep the others.
		local done=${cur%"${cur##*,}"} step steps=()
		for step in $(_irfw_steps "$irfw"); do
			[[ ",$done" == *",$step,"* ]] || steps+=("$step")
		done
		COMPREPLY=($(compgen -P "$done" -W "${steps[*]}" -- "${cur##*,}"))
		return
		;;
	esac
	# Any other option taking a value (an instance id, a region...): not
	# completed.
	if [[ $prev == -* ]] && ! $split; then
		local short long arg
		while read -r short long arg; do
			if [[ $arg && ($prev == "$long" || $prev == "$short") ]]; then
				return
			fi
		done <<<"$opts"
	fi
	$split && return

	# The command: the first word that is neither an option nor an option's
	# value (getopt takes options on either side of it).
	local i w cmd= takes
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if [[ $w == -* ]]; then
			[[ $w == *=* ]] && continue
			takes=$(awk -v o="$w" '($1 == o || $2 == o) && NF == 3 { print "y" }' <<<"$opts")
			[[ $takes ]] && ((i++))
			continue
		fi
		cmd=$w
		break
	done

	if [[ $cur == -* ]]; then
		# --describe, --man and --ini belong to `irfw plugins`, which takes
		# few of the others.
		local o all=()
		for o in $(awk '{ print $2 }' <<<"$opts"); do
			case $cmd:$o in
			plugins:--describe | plugins:--man | plugins:--ini | plugins:--conf | plugins:--help | \
				plugins:--verbose | plugins:--quiet) all+=("$o") ;;
			plugins:*) ;;
			*:--describe | *:--man | *:--ini) ;;
			*) all+=("$o") ;;
			esac
		done
		COMPREPLY=($(compgen -W "${all[*]}" -- "$cur"))
		[[ ${COMPREPLY-} == *= ]] && compopt -o nospace
		return
	fi
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$(_irfw_commands "$irfw")" -- "$cur"))
	fi
} &&
	complete -F _irfw irfw

# ex: filetype=sh
