#!/bin/sh
# LOG_COMPILER of `make check`: runs a unit test directly, or under valgrind
# when IRFW_VALGRIND=1 (not together with sanitizer builds).
if [ "${IRFW_VALGRIND:-0}" = 1 ] && command -v valgrind >/dev/null 2>&1; then
	exec ${LIBTOOL:-libtool} --mode=execute valgrind --quiet --error-exitcode=99 \
		--leak-check=full --errors-for-leak-kinds=definite,indirect "$@"
fi
exec "$@"
