#!/bin/bash
# http-get PORT [PATH]: GET http://127.0.0.1:PORT/PATH and print the body;
# exits 0 only on a 2xx answer. The images' HEALTHCHECK, with nothing but
# bash (/dev/tcp): the runtime images carry no curl or wget.
set -u
port="${1:?usage: http-get PORT [PATH]}"
path="${2:-/}"
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
# HTTP/1.0: the answer is never chunked, and ends when the server closes.
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$path" "$port" >&3
IFS= read -r -t 5 status <&3 || exit 1
while IFS= read -r -t 5 line <&3; do
  [ -z "${line%$'\r'}" ] && break
done
while IFS= read -r -t 5 line <&3 || [ -n "$line" ]; do
  printf '%s\n' "$line"
done
[[ "$status" =~ ^HTTP/1\.[01]\ 2[0-9][0-9] ]]
