#!/bin/sh
# A stand-in for `angie -t` (tests): it records its arguments, the main
# configuration it was given, and every file the configuration points it
# at; it creates what a real Angie creates while testing (the pid file,
# logs, temporary directories, ACME keys) where the configuration says,
# and fails on a relative path, as Angie would resolve it against a prefix
# the caller does not control. FAKE_ANGIE_RECORD is the record directory;
# FAKE_ANGIE_REFUSE makes it refuse the configuration like a real error.
set -eu
rec=${FAKE_ANGIE_RECORD:?}
mkdir -p "$rec"
: > "$rec/touched"
: > "$rec/included"
printf '%s\n' "$@" > "$rec/args"
conf=""; prefix=""; errlog=""
while [ $# -gt 0 ]; do
    case "$1" in
    -c) conf=$2; shift ;;
    -p) prefix=$2; shift ;;
    -e) errlog=$2; shift ;;
    esac
    shift
done
cp "$conf" "$rec/main.conf"
cd /
touch_path() { # KIND PATH
    case "$2" in
    /*) ;;
    *) echo "angie: [emerg] relative $1 path \"$2\" (the prefix is not the caller's)" >&2; exit 1 ;;
    esac
    echo "$1 $2" >> "$rec/touched"
}
[ -n "$errlog" ] && touch_path startup-error-log "$errlog" && : > "$errlog"
grep -E '^[[:space:]]*(pid|error_log|access_log|client_body_temp_path|proxy_temp_path|acme_client_path|include)[[:space:]]' "$conf" |
sed -E 's/^[[:space:]]*([a-z_]+)[[:space:]]+([^ ;]+).*/\1 \2/' |
while read -r kind path; do
    touch_path "$kind" "$path"
    case "$kind" in
    include)
        [ -r "$path" ] || { echo "angie: [emerg] open() \"$path\" failed (2: No such file or directory)" >&2; exit 1; }
        echo "$path" >> "$rec/included" ;;
    acme_client_path) mkdir -p "$path" && : > "$path/account.key" ;;
    *_temp_path) mkdir -p "$path" ;;
    *) : > "$path" ;;
    esac
done
if [ -n "${FAKE_ANGIE_REFUSE:-}" ]; then
    echo "angie: [emerg] unknown directive \"client\" in $(head -n1 "$rec/included"):14" >&2
    echo "angie: configuration file $conf test failed" >&2
    exit 1
fi
echo "angie: the configuration file $conf syntax is ok" >&2
echo "angie: configuration file $conf test is successful" >&2
