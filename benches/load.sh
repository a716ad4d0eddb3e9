#!/usr/bin/env bash
# benches/load.sh: a load test of Tessera over its own sandbox HubSpot, on loopback.
#
#   benches/load.sh                     # build, start, measure, print a markdown table
#   DUR=5s C=16 benches/load.sh         # shorter, fewer connections
#   SKIP_BUILD=1 benches/load.sh        # reuse target/release/tessera
#
# What it does:
#  1. Installs `hey` and `jq` with apt-get when missing; `cargo build --release` (unless
#     SKIP_BUILD=1).
#  2. Starts `target/release/tessera demo` (gateway + sandbox vendors in ONE process) on two
#     free 127.0.0.1 ports, with its own SQLite database in a fresh temporary folder, a random
#     demo key and admin key, RUST_LOG=warn. Waits (60 s at most) for the printed HubSpot
#     linked account id and for /healthz.
#  3. Lifts the sandbox HubSpot rate limit (POST /_control/ratelimit, 10^8 per second), so the
#     run measures the gateway rather than the limiter.
#  4. For each target below, in the order sandbox list, sandbox get, Q1, Q3, Q2 (Q2 last, as
#     it grows the process's heap): sends one request and checks it with jq; runs a ${WARM} warm-up
#     with hey; then `hey -c ${C} -z ${DUR}` while reading the sandbox's request counter
#     (/_control/stats) and the process's CPU time (/proc/PID/stat) before and after.
#       tessera Q1  contacts(accountId, first: 100) { edges { node { id firstName lastName emails { address } } } }
#       tessera Q2  Q1 + company { name } in node
#       tessera Q3  contact(accountId, remoteId) { id firstName }
#       sandbox list  GET /hubspot/crm/v3/objects/contacts?limit=100&properties=...&archived=false
#                     (the same query string the gateway sends for Q1), with the sandbox token
#       sandbox get   GET /hubspot/crm/v3/objects/contacts/ID?properties=... (Q3's upstream call)
#  5. Prints a markdown table (RPS, p50, p99, errors, upstream calls per request, CPU ms per
#     request) and keeps it, the raw hey output, the checked responses and the log in
#     $OUT (default /tmp/tessera-load.<UTC time>). The database folder is removed at exit.
#  6. Stops the process it started, by PID, from an EXIT trap (TERM, then KILL after 5 s).
#
# Caveats: hey, the gateway and the sandbox share the machine's cores, and the gateway and
# the sandbox share one process, so "CPU ms/req" of the tessera rows includes the sandbox's
# work serving the upstream calls (the sandbox rows show what that costs per call). The
# sandbox is an in-memory imitation: it is far faster than HubSpot. Compare ratios from one
# run rather than absolute RPS. Knobs: DUR (10s), WARM (3s), C (32), SKIP_BUILD, OUT.
# Loopback only; bounded in time apart from the build.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DUR=${DUR:-10s}
WARM=${WARM:-3s}
C=${C:-32}
OUT=${OUT:-/tmp/tessera-load.$(date -u +%Y%m%dT%H%M%SZ)}
PROPS=firstname,lastname,email,phone,jobtitle,associatedcompanyid,customer_tier
SANDBOX_TOKEN=sandbox-hubspot-token

log() { echo "load.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# ---- tools
missing=()
command -v hey >/dev/null || missing+=(hey)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get install -y "${missing[@]}" >/dev/null || die "cannot install ${missing[*]}"
fi

if [[ -z ${SKIP_BUILD:-} ]]; then
  log "cargo build --release"
  cargo build --release
fi
BIN=target/release/tessera
[[ -x $BIN ]] || die "$BIN is missing (build first, or unset SKIP_BUILD)"

# ---- start
mkdir -p "$OUT/db"
PID=
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  rm -rf "$OUT/db"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    [[ -z $(ss -Hltn "sport = :$p" 2>/dev/null) ]] && { echo "$p"; return; }
  done
  die "no free port"
}
GW_PORT=$(free_port)
SB_PORT=$(free_port)
while [[ $SB_PORT == "$GW_PORT" ]]; do SB_PORT=$(free_port); done
GW=http://127.0.0.1:$GW_PORT
SB=http://127.0.0.1:$SB_PORT
KEY=load-$RANDOM$RANDOM$RANDOM

log "starting tessera demo: gateway $GW, sandbox $SB, output $OUT"
RUST_LOG=warn TESSERA_ADMIN_KEY=admin-$RANDOM$RANDOM$RANDOM "$BIN" demo \
  --listen "127.0.0.1:$GW_PORT" --sandbox-listen "127.0.0.1:$SB_PORT" \
  --database-url "sqlite://$OUT/db/tessera.db?mode=rwc" --demo-key "$KEY" \
  >"$OUT/tessera.log" 2>&1 &
PID=$!

ACC=
for _ in $(seq 600); do
  kill -0 "$PID" 2>/dev/null || { cat "$OUT/tessera.log" >&2; die "tessera exited"; }
  ACC=$(sed -n 's/^ *linked account (hubspot): *//p' "$OUT/tessera.log" | head -1)
  [[ -n $ACC ]] && curl -sf --max-time 2 "$GW/healthz" >/dev/null && break
  sleep 0.1
done
[[ -n $ACC ]] || { cat "$OUT/tessera.log" >&2; die "no HubSpot linked account after 60 s"; }
log "HubSpot linked account $ACC"

curl -sf --max-time 5 -X POST "$SB/_control/ratelimit" -H 'content-type: application/json' \
  -d '{"provider":"hubspot","max":100000000,"intervalMs":1000}' >/dev/null ||
  die "cannot lift the sandbox rate limit"

gq() { jq -cn --arg q "$1" '{query: $q}'; }
one_gql() { curl -sS --max-time 10 -H 'content-type: application/json' -H "authorization: Bearer $KEY" -d "$1" "$GW/graphql"; }

RID=$(one_gql "$(gq "{ contacts(accountId: \"$ACC\", first: 1) { edges { node { remoteId } } } }")" |
  jq -r '.data.contacts.edges[0].node.remoteId // empty')
[[ -n $RID ]] || die "cannot read a contact's remote id through the gateway"

declare -A BODY URL AUTH CHECK
NODE='id firstName lastName emails { address }'
BODY[tessera.Q1]=$(gq "{ contacts(accountId: \"$ACC\", first: 100) { edges { node { $NODE } } } }")
BODY[tessera.Q2]=$(gq "{ contacts(accountId: \"$ACC\", first: 100) { edges { node { $NODE company { name } } } } }")
BODY[tessera.Q3]=$(gq "{ contact(accountId: \"$ACC\", remoteId: \"$RID\") { id firstName } }")
for q in Q1 Q2 Q3; do URL[tessera.$q]=$GW/graphql; AUTH[tessera.$q]="Bearer $KEY"; done
CHECK[tessera.Q1]='(.errors | not) and (.data.contacts.edges | length == 100)'
CHECK[tessera.Q2]='(.errors | not) and (.data.contacts.edges | length == 100 and any(.[]; .node.company.name != null))'
CHECK[tessera.Q3]='(.errors | not) and (.data.contact.firstName | type == "string")'
BODY[sandbox.list]=; URL[sandbox.list]="$SB/hubspot/crm/v3/objects/contacts?limit=100&properties=$PROPS&archived=false"
BODY[sandbox.get]=; URL[sandbox.get]="$SB/hubspot/crm/v3/objects/contacts/$RID?properties=$PROPS"
AUTH[sandbox.list]="Bearer $SANDBOX_TOKEN"; AUTH[sandbox.get]="Bearer $SANDBOX_TOKEN"
CHECK[sandbox.list]='.results | length == 100'
CHECK[sandbox.get]='.id != null'
# The sandbox alone first, Q2 last: Q2's 90 upstream calls per request grow the process's heap,
# which slows what runs after it in the same process.
RUNS="sandbox.list sandbox.get tessera.Q1 tessera.Q3 tessera.Q2"

hey_run() { # RUN DURATION OUTFILE
  local secs=${2%s}
  [[ $secs =~ ^[0-9]+$ ]] || secs=600
  if [[ -n ${BODY[$1]} ]]; then
    timeout $((secs + 30)) hey -z "$2" -c "$C" -m POST -T application/json -H "Authorization: ${AUTH[$1]}" -d "${BODY[$1]}" "${URL[$1]}" >"$3"
  else
    timeout $((secs + 30)) hey -z "$2" -c "$C" -H "Authorization: ${AUTH[$1]}" "${URL[$1]}" >"$3"
  fi
}
one() { # RUN -> response body
  if [[ -n ${BODY[$1]} ]]; then
    curl -sS --max-time 10 -H 'content-type: application/json' -H "authorization: ${AUTH[$1]}" -d "${BODY[$1]}" "${URL[$1]}"
  else
    curl -sS --max-time 10 -H "authorization: ${AUTH[$1]}" "${URL[$1]}"
  fi
}
upstream_total() { curl -sS --max-time 5 "$SB/_control/stats" | jq -r .requests; }
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$PID/stat"; }

# ---- measure
TSV=$OUT/results.tsv; : >"$TSV"
for run in $RUNS; do
  ok=ok
  u0=$(upstream_total)
  one "$run" >"$OUT/$run.response.json" || true
  u1=$(upstream_total)
  jq -e "${CHECK[$run]}" "$OUT/$run.response.json" >/dev/null 2>&1 || ok="FAIL (response)"
  one_calls=$((u1 - u0)) # /_control calls are not counted
  log "$run: check $ok ($one_calls upstream calls); warm-up $WARM, load $DUR at -c $C"
  hey_run "$run" "$WARM" /dev/null || true
  u0=$(upstream_total); c0=$(cpu_ticks)
  hey_run "$run" "$DUR" "$OUT/$run.hey.txt" || log "hey exited non-zero for $run"
  c1=$(cpu_ticks); u1=$(upstream_total)
  awk -v run="$run" -v ok="$ok" -v c0="$c0" -v c1="$c1" -v hz="$(getconf CLK_TCK)" \
      -v up=$((u1 - u0)) -v rss="$(awk '/VmRSS/{printf "%d", $2/1024}' "/proc/$PID/status")" '
    /Requests\/sec/ {rps = $2} /50% in/ {p50 = $3 * 1000} /99% in/ {p99 = $3 * 1000}
    /Status code distribution/ {sc = 1; ed = 0; next} /Error distribution/ {sc = 0; ed = 1; next}
    sc && $1 ~ /^\[[0-9]+\]$/ {code = substr($1, 2, 3); n += $2; if (code !~ /^2/) bad += $2}
    ed && $1 ~ /^\[[0-9]+\]$/ {bad += substr($1, 2, length($1) - 2)}
    END {
      split(run, p, ".")
      printf "%s\t%s\t%.0f\t%.1f\t%.1f\t%d\t%s\t%s\t%s\t%s\n", p[1], p[2], rps, p50, p99, bad,
        (n > 0 ? sprintf("%.2f", up / n) : "-"),
        (n > 0 ? sprintf("%.2f", (c1 - c0) * 1000 / hz / n) : "-"), rss, ok }' \
    "$OUT/$run.hey.txt" >>"$TSV"
done

# ---- report
{
  echo "$(date -u +%FT%TZ), $(nproc) vCPU ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(git rev-parse --short HEAD 2>/dev/null || echo '?'); hey -c $C -z $DUR after a $WARM warm-up"
  echo
  echo "| target | query | RPS | p50 ms | p99 ms | errors | upstream calls/req | CPU ms/req | RSS MB | check |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
  awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}' "$TSV"
  echo
  echo "Q1 contacts(first: 100) { id firstName lastName emails { address } }; Q2 = Q1 + company { name }; Q3 contact(remoteId) { id firstName }."
  echo "sandbox rows: the upstream calls alone (list = Q1's, get = Q3's). CPU ms/req is the whole tessera process (gateway + sandbox)."
} | tee "$OUT/table.md"
log "table and raw output: $OUT"
