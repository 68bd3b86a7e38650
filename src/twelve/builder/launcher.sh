#!/bin/sh
# bin/@NAME@: the launcher of a twelve release. It finds the release root (through symlinks),
# exports the RELEASE_* variables, sources releases/VSN/env.sh and execs the runtime, isolated
# from the user's PYTHONPATH, PYTHONHOME and site-packages. Every line runs before every
# command, so it does as little as it can; the commands themselves live in twelve.runtime.
set -e

# As invoked, symlinks unresolved: a restart execs this path again, so a `current` symlink
# switched to a new version is followed (RELEASE_ROOT is the resolved one).
case $0 in /*) RELEASE_BIN=$0 ;; *) RELEASE_BIN=$PWD/$0 ;; esac
export RELEASE_BIN
SELF=$0
case $SELF in */*) ;; *) SELF=./$SELF ;; esac  # `sh hello`: a relative link resolves from .
while [ -L "$SELF" ]; do
  LINK=$(readlink "$SELF")
  case $LINK in
    /*) SELF=$LINK ;;
    *) SELF=${SELF%/*}/$LINK ;;
  esac
done
# -P: `..` of a symlinked directory is its physical parent, as the kernel resolved the links
RELEASE_ROOT=$(CDPATH='' cd -P -- "${SELF%/*}/.." && pwd -P)
export RELEASE_ROOT
export RELEASE_NAME="${RELEASE_NAME:-@NAME@}"
if [ -z "${RELEASE_VSN:-}" ]; then
  # `|| true`: the line may lack its newline (printf 0.2.0 > CURRENT); read still fills it
  read -r RELEASE_VSN < "$RELEASE_ROOT/releases/CURRENT" 2>/dev/null || true
  if [ -z "${RELEASE_VSN:-}" ]; then
    echo "error: no version to run: $RELEASE_ROOT/releases/CURRENT is missing or empty" >&2
    echo "Write the version to run into it (e.g. echo 0.1.0 > releases/CURRENT), or set RELEASE_VSN." >&2
    exit 1
  fi
  export TWELVE_VSN_FROM_CURRENT=1  # so a restart reads CURRENT again
fi
export RELEASE_VSN
export RELEASE_COMMAND="${1:-}"
export RELEASE_PROG="${RELEASE_PROG:-${0##*/}}"
RELEASE_TMP="${RELEASE_TMP:-$RELEASE_ROOT/tmp}"
case $RELEASE_TMP in /*) ;; *) RELEASE_TMP=$PWD/$RELEASE_TMP ;; esac  # `daemon` leaves the cwd
export RELEASE_TMP
unset PYTHONPATH PYTHONHOME  # -E keeps them from the runtime; nor may its children inherit them

if [ "${1:-}" = version ] && [ $# -eq 1 ]; then
  echo "$RELEASE_NAME $RELEASE_VSN"
  exit 0
fi

if [ -f "$RELEASE_ROOT/releases/$RELEASE_VSN/env.sh" ]; then
  . "$RELEASE_ROOT/releases/$RELEASE_VSN/env.sh"
fi

# `pid` of a running node without starting Python: the kernel names the process holding the
# node's lock (an flock on run/PROCESS.lock, released when that process ends, kill -9 included),
# so neither a stale pid file nor a recycled pid can mislead it. Anything else (no /proc/locks,
# the lock not held, an unusual argument) goes on to the runtime, which answers over the
# authenticated channel.
if [ "${1:-}" = pid ] && [ $# -le 2 ] && [ -r /proc/locks ] && command -v stat >/dev/null; then
  case ${2:-web} in
    *[!A-Za-z0-9_.-]*|-*) ;;
    *)
      if DEV_INODE=$(stat -c '%d %i' -- "$RELEASE_TMP/run/${2:-web}.lock" 2>/dev/null); then
        # /proc/locks names a file MAJOR:MINOR:INODE, the device numbers in hex: compared
        # as numbers here (no printf in a subshell, one fork less)
        DEV=${DEV_INODE% *} INODE=${DEV_INODE#* }
        MAJOR=$(( (DEV >> 8) & 4095 )) MINOR=$(( (DEV & 255) | ((DEV >> 12) & 1048320) ))
        while read -r _ KIND _ _ HOLDER ID _; do
          [ "$KIND" = FLOCK ] && [ "${ID##*:}" = "$INODE" ] || continue
          LOCK_DEV=${ID%:*}
          if [ "$((0x${LOCK_DEV%%:*}))" -eq "$MAJOR" ] && \
              [ "$((0x${LOCK_DEV#*:}))" -eq "$MINOR" ] && [ -d "/proc/$HOLDER" ]; then
            echo "$HOLDER"
            exit 0
          fi
        done < /proc/locks
      fi
      ;;
  esac
fi

PYTHON=@PYTHON@
case $PYTHON in python/*) PYTHON=$RELEASE_ROOT/$PYTHON ;; esac
exec "$PYTHON" -E -s -u "$RELEASE_ROOT/lib/twelve_boot.py" "$@"
