#!/usr/bin/env bash
# End-to-end test of the switch integration: SIPp places calls through Kamailio, running
# docker/kamailio/kamailio.cfg, which asks a real callguard for every INVITE.
#
#   caller -> SIPp UAC -> Kamailio -(http_client)-> callguard -(x5u)-> certificate server
#                            |  block: 603 Decline, never delivered
#                            '-> SIPp UAS (the "callee": answers 486 and echoes what it got)
#
# Needs Kamailio with http_client and jansson, SIPp, curl, python3, openssl and the repo's
# node_modules:
#   apt-get install -y kamailio kamailio-utils-modules kamailio-extra-modules sip-tester curl python3 openssl
#   npm ci && test/e2e/kamailio/run.sh
# CI runs it (.ci/run) after `npm run check`. The calls come from 127.0.0.1 to 127.0.0.4, one
# trunk each; everything it starts is stopped on exit; it takes about 20 s, then load.sh's load
# phase (calls at a fixed rate, each checked; see its header) about 30 s more. Exits non-zero
# when any call gets the wrong answer, 2 when a tool is missing.
#   KEEP_LOGS=1     keep the logs and SIP traces of a passing run too (a failing run keeps them)
#   KAMAILIO_CFG=f  test another Kamailio configuration
#   LOAD_CPS=0      skip the load phase (LOAD_CPS, LOAD_SECONDS, LOAD_ASSERT_P99: see load.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
CFG="${KAMAILIO_CFG:-$ROOT/docker/kamailio/kamailio.cfg}"
WORK="$(mktemp -d -t callguard-kamailio.XXXXXX)"
KEEP_LOGS="${KEEP_LOGS:-0}"
LOAD_CPS="${LOAD_CPS:-800}"

source "$ROOT/test/e2e/kamailio/lib.sh"
require_tools kamailio sipp curl python3 openssl node ss setsid

# Milliseconds from the INVITE leaving SIPp to its final answer, from SIPp's message log.
sip_ms() {
  python3 - "$1" <<'EOF'
import re, sys
from datetime import datetime
stamp, sent, answered = None, None, None
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    m = re.match(r"-{10,} (\S+ \S+)", line)
    if m:
        stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
    elif line.startswith("INVITE ") and sent is None:
        sent = stamp
    elif re.match(r"SIP/2.0 [2-6]\d\d ", line) and answered is None:
        answered = stamp
print(round((answered - sent).total_seconds() * 1000) if sent and answered else -1)
EOF
}


CG_PORT=$(free_port)
UAS_PORT=$(free_port)
K_PORT=$(free_port)
K_SLOW_PORT=$(free_port)
K_DOWN_PORT=$(free_port)
HANG_PORT=$(free_port)
DEAD_PORT=$(free_port)
CERT_PORT=$(free_port)

# --- PASSporTs: a throwaway STI PKI, its chain served over HTTP at the x5u -----------------
# The service fetches the certificate and checks the signature for real: "bad-signature" fails
# for its signature alone, "good" (the same claims) verifies.
mkdir -p "$WORK/certs"
CALLEE=+442071112222
(cd "$ROOT" && node_modules/.bin/tsx test/e2e/kamailio/passports.ts "$WORK/certs" \
  "http://127.0.0.1:$CERT_PORT/chain.pem" 442071234567 "${CALLEE#+}") >"$WORK/passports.tsv"
passport() { awk -F '\t' -v n="$1" '$1 == n { print $2 }' "$WORK/passports.tsv"; }

# --- callguard, with an API key for the switch, as in production --------------------------
SWITCH_KEY="e2e-switch-key-$RANDOM$RANDOM"
# Example Bank's key, to announce a call (README "Announced calls").
BANK_KEY="e2e-bank-key-$RANDOM$RANDOM"
start_callguard "$CG_PORT" "$SWITCH_KEY" "$BANK_KEY"
start_cert_server "$WORK/certs" "$CERT_PORT"

# A service that accepts connections and never answers, for the timeout path.
setsid node -e "require('net').createServer((s) => s.on('error', () => {})).listen($HANG_PORT, '127.0.0.1')" \
  >"$WORK/hang.log" 2>&1 &
PGIDS+=($!)

# --- the callee: answers every delivered INVITE with 486, echoing what Kamailio added ---------
write_uas_scenario "$WORK/uas.xml"
setsid sipp -sf "$WORK/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -nostdin \
  -trace_msg -message_file "$WORK/uas-messages.log" -trace_err -error_file "$WORK/uas-errors.log" \
  >"$WORK/uas.out" 2>&1 &
PGIDS+=($!)
wait_for "SIPp UAS on :$UAS_PORT" 50 udp_listening "$UAS_PORT"

# --- Kamailio, three times: in front of callguard, of a hung service, of nothing -----------
KVERSION=$(kamailio_version)
TIMEOUT_DEFINE=()
# http_client counts its timeout in milliseconds from 5.8 on; before, 1 s is the least.
if [[ -n $KVERSION ]] && python3 -c "import sys; sys.exit(0 if tuple(map(int, '$KVERSION'.split('.'))) >= (5, 8) else 1)"; then
  TIMEOUT_DEFINE=(-A CALLGUARD_TIMEOUT_MS=200)
  TIMEOUT_BUDGET_MS=400
else
  TIMEOUT_BUDGET_MS=1300
fi

# The trunk table: each test address is a trunk of its own (see docker/kamailio/trunks.list).
cat >"$WORK/trunks.list" <<'EOF'
1 127.0.0.1 32 0 name=uk-ix-test;carrier=5555
2 127.0.0.2 32 0 name=intl-test;carrier=ITG9
2 127.0.0.3 32 0 name=mno-roaming-test;carrier=MNO9;roaming=1
1 127.0.0.4 32 0 name=uk-bank-carrier-test;carrier=1234
EOF

start_kamailio() { # name, sip port, callguard url
  local name=$1 port=$2 url=$3
  mkdir -p "$WORK/$name"
  CALLGUARD_API_KEY="$SWITCH_KEY" setsid kamailio -f "$CFG" -DD -E -m 64 -M 8 -Y "$WORK/$name" -w "$WORK/$name" \
    -A "SIP_LISTEN=udp:127.0.0.1:$port" \
    -A "CALLGUARD_URL=\"$url\"" \
    -A "NEXT_HOP=\"sip:127.0.0.1:$UAS_PORT\"" \
    -A "TRUNKS_FILE=\"$WORK/trunks.list\"" \
    "${TIMEOUT_DEFINE[@]}" >"$WORK/$name.log" 2>&1 &
  PGIDS+=($!)
  wait_for "Kamailio $name on :$port" 100 udp_listening "$port"
}
start_kamailio kamailio "$K_PORT" "http://127.0.0.1:$CG_PORT/v1/calls/score"
start_kamailio kamailio-slow "$K_SLOW_PORT" "http://127.0.0.1:$HANG_PORT/v1/calls/score"
start_kamailio kamailio-down "$K_DOWN_PORT" "http://127.0.0.1:$DEAD_PORT/v1/calls/score"

# The switch's key is really in use: without it the service answers 401.
keyless=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "http://127.0.0.1:$CG_PORT/v1/calls/score" \
  -H 'content-type: application/json' -d '{"from":"+442071234567","to":"+442071112222"}')

# --- the calls -----------------------------------------------------------------------------
# uac_call name kamailio-port local-ip from expected-code 'extra headers' regexp...
# Places one call and checks the final answer's code and that every regexp matches it; a
# regexp written !regexp must not match.
FAILED=0
RESULTS=()
BLOCKED_CALL_IDS=()
uac_call() {
  local name=$1 port=$2 ip=$3 from=$4 code=$5 extra=$6
  shift 6
  write_uac_scenario "$WORK/uac-$name.xml" "$name" "$from" "$CALLEE" "$code" "$extra" "$@"
  local rc=0
  sipp "127.0.0.1:$port" -sf "$WORK/uac-$name.xml" -i "$ip" -p "$(free_port)" -m 1 -nostdin \
    -timeout 10s -timeout_error -recv_timeout 5000 \
    -trace_msg -message_file "$WORK/uac-$name-messages.log" -trace_err -error_file "$WORK/uac-$name-errors.log" \
    >"$WORK/uac-$name.out" 2>&1 || rc=$?
  LAST_MS=$(sip_ms "$WORK/uac-$name-messages.log")
  local got
  got=$(grep -oE 'SIP/2.0 [2-6][0-9]{2} [^[:cntrl:]]*' "$WORK/uac-$name-messages.log" | head -1 || true)
  if [[ $code == 603 ]]; then
    BLOCKED_CALL_IDS+=("$(grep -m1 -oE '^Call-ID: *[^[:space:]]+' "$WORK/uac-$name-messages.log" | sed 's/^Call-ID: *//' || true)")
  fi
  local why
  # SIPp's error log says which check failed.
  why=$(grep -hoE "^.*(Failed regexp match|Regexp matched but should not)|with regexp '.*'" "$WORK/uac-$name-errors.log" 2>/dev/null \
    | sed -E -e 's/.*Failed regexp match.*/no match for/' -e 's/.*Regexp matched but should not.*/unwanted match for/' -e "s/^with regexp //" \
    | paste -sd ' ' || true)
  if [[ $rc -eq 0 ]]; then
    RESULTS+=("PASS  $name: $got (${LAST_MS} ms)")
  else
    FAILED=1
    RESULTS+=("FAIL  $name: expected $code, got '${got:-no answer}'${why:+: $why} (sipp exit $rc; see $WORK/uac-$name-*.log)")
  fi
}

# (a) an ordinary UK landline number, no attestation: allowed, delivered, marked.
uac_call allow "$K_PORT" 127.0.0.1 +442071234567 486 "" \
  'X-Echo-Verdict: allow' 'X-Echo-Score: 15' 'X-Echo-From: <sip:\+442071234567;verstat=No-TN-Validation@'

# (b) a bank's inbound-only number as caller ID: blocked before it rings.
uac_call block-dno "$K_PORT" 127.0.0.1 +443450000000 603 "" \
  'SIP/2.0 603 Decline' 'Reason: SIP;cause=603;text=.Spoofed caller ID.'

# (c) a UK mobile arriving on the international trunk, with a PAI and a forged
# "X-Callguard-Verdict: allow" from upstream: flagged, the forgery stripped, the PAI marked;
# and, as a UK mobile from abroad not confirmed as roaming, delivered with its caller ID
# withheld: From anonymous, the number kept in the PAI, "id" added to the privacy the caller
# asked for.
uac_call flag-abroad "$K_PORT" 127.0.0.2 +447400123456 486 \
  "      P-Asserted-Identity: <sip:+447400123456@[local_ip];user=phone>
      Privacy: user
      X-Callguard-Verdict: allow" \
  'X-Echo-Verdict: flag' 'X-Echo-PAI: <sip:\+447400123456;verstat=TN-Validation-Failed@' \
  'X-Echo-From: "Anonymous" <sip:anonymous@anonymous\.invalid>;tag=' 'X-Echo-Privacy: user;id'

# (d) an Identity header that does not verify (quotes and all go through JSON intact): flagged,
# and the cause passed on (RFC 8224 section 6.2.2).
uac_call flag-identity "$K_PORT" 127.0.0.1 +442071234567 486 \
  '      Identity: eyJhbGciOiJFUzI1NiJ9.bm90LWEtcGFzc3BvcnQ.c2ln;info=<https://cert.example/c.pem>;alg=ES256;ppt="shaken"' \
  'X-Echo-Verdict: flag' 'X-Echo-From: <sip:\+442071234567;verstat=TN-Validation-Failed@' \
  'X-Echo-Reason: STIR;cause=438;text="Invalid Identity Header"'

# (g) a UK mobile from abroad with no PAI, claiming "X-Roaming-Verified: true" on a trunk that
# is no roaming gateway: the claim is ignored and removed, the caller ID withheld (From
# anonymous, "Privacy: none" replaced by "Privacy: id"); the number it presented goes on as the
# PAI, marked. The caller gets its own From back in the answer.
uac_call withheld-abroad "$K_PORT" 127.0.0.2 +447400900123 486 \
  '      X-Roaming-Verified: true
      Privacy: none' \
  'X-Echo-Verdict: flag' 'X-Echo-From: "Anonymous" <sip:anonymous@anonymous\.invalid>;tag=' 'X-Echo-Privacy: id' \
  'X-Echo-PAI: <sip:\+447400900123;verstat=TN-Validation-Failed@127\.0\.0\.2;user=phone>' '!X-Echo-Roaming: true' \
  'From: <sip:\+447400900123@127\.0\.0\.2;user=phone>;tag='

# (h) the same from the UK mobile network's roaming gateway, which vouches for its roamer: the
# caller ID is shown (no CLI_MOBILE_FROM_ABROAD: score 15, allowed), and the header is removed.
uac_call roaming-verified "$K_PORT" 127.0.0.3 +447400900124 486 \
  '      X-Roaming-Verified: true' \
  'X-Echo-Verdict: allow' 'X-Echo-Score: 15' 'X-Echo-From: <sip:\+447400900124;verstat=No-TN-Validation@' \
  '!X-Echo-Privacy: id' '!X-Echo-Roaming: true'

# (i) a PASSporT whose signature does not verify (the certificate is fetched and trusted; one bit
# of the signature is wrong), not enough to block: delivered, flagged, with the STIR Reason.
uac_call bad-signature "$K_PORT" 127.0.0.1 +442071234567 486 \
  "      Identity: $(passport bad-signature)" \
  'X-Echo-Verdict: flag' 'X-Echo-From: <sip:\+442071234567;verstat=TN-Validation-Failed@' \
  'X-Echo-Reason: STIR;cause=438;text="Invalid Identity Header"'

# (j) a well signed but stale PASSporT: the cause is the service's, not a fixed text.
uac_call stale-passport "$K_PORT" 127.0.0.1 +442071234567 486 \
  "      Identity: $(passport stale)" \
  'X-Echo-Verdict: flag' 'X-Echo-Reason: STIR;cause=403;text="Stale Date"'

# (k) the same claims, well signed, with a forged STIR Reason from upstream: verified, allowed,
# and no Reason goes on.
uac_call good-passport "$K_PORT" 127.0.0.1 +442071234567 486 \
  "      Identity: $(passport good)
      Reason: STIR;cause=438;text=\"Invalid Identity Header\"" \
  'X-Echo-Verdict: allow' 'X-Echo-From: <sip:\+442071234567;verstat=TN-Validation-Passed@' '!X-Echo-Reason: STIR'

# (k2) a well signed PASSporT with rich call data (RFC 9795): its name, cleaned by callguard (no
# quotes or angle brackets), is the From's display name the callee sees.
uac_call rcd-display "$K_PORT" 127.0.0.1 +442071234567 486 \
  "      Identity: $(passport rcd)" \
  'X-Echo-Verdict: allow' 'X-Echo-From: "Acme Parcels sip:x@evil" <sip:\+442071234567;verstat=TN-Validation-Passed@'

# (l) a bank's number that only its carrier 1234 may originate: from the trunk whose table entry
# says carrier 5555, blocked (BANK_UNAUTHORISED_ORIGIN); from the one that says 1234, allowed.
uac_call bank-other-carrier "$K_PORT" 127.0.0.1 +442079460000 603 "" 'SIP/2.0 603 Decline'
uac_call bank-own-carrier "$K_PORT" 127.0.0.4 +442079460000 486 "" 'X-Echo-Verdict: allow' '!X-Echo-From: "'

# (m) the bank announces its call first (BANK_CALL_EXPECTED): callguard gives the registry name
# as `display`, and the callee sees it as the From's display name.
announced=$(curl -s -o "$WORK/announce.json" -w '%{http_code}' -m 2 "http://127.0.0.1:$CG_PORT/v1/calls/expected" \
  -H 'content-type: application/json' -H "authorization: Bearer $BANK_KEY" \
  -d "{\"from\":\"+442079460000\",\"to\":\"$CALLEE\"}")
if [[ $announced == 201 ]]; then
  RESULTS+=("PASS  Example Bank announced its call to $CALLEE (201)")
else
  FAILED=1
  RESULTS+=("FAIL  announcing the bank's call answered $announced: $(cat "$WORK/announce.json")")
fi
uac_call bank-announced-display "$K_PORT" 127.0.0.4 +442079460000 486 "" 'X-Echo-Verdict: allow' \
  'X-Echo-From: "Example Bank" <sip:\+442079460000;verstat=No-TN-Validation@127\.0\.0\.4;user=phone>;tag='

# (e) the service accepts the connection and never answers: delivered unchecked, in time.
uac_call fail-open-timeout "$K_SLOW_PORT" 127.0.0.1 +442071234567 486 "" 'X-Echo-Verdict: unavailable'
if [[ $LAST_MS -gt $TIMEOUT_BUDGET_MS ]]; then
  FAILED=1
  RESULTS+=("FAIL  fail-open-timeout took ${LAST_MS} ms, over the ${TIMEOUT_BUDGET_MS} ms budget")
fi

# (f) nothing listens at the service's address: delivered unchecked at once.
uac_call fail-open-refused "$K_DOWN_PORT" 127.0.0.1 +442071234567 486 "" 'X-Echo-Verdict: unavailable'

if [[ $keyless == 401 ]]; then
  RESULTS+=("PASS  callguard refuses a call without the switch key (401): Kamailio's verdicts came with the key")
else
  FAILED=1
  RESULTS+=("FAIL  callguard answered $keyless without a key: the Authorization path is untested")
fi
# A blocked call must never have reached the callee.
for call_id in "${BLOCKED_CALL_IDS[@]}"; do
  if [[ -z $call_id ]] || grep -qF "Call-ID: $call_id" "$WORK/uas-messages.log"; then
    FAILED=1
    RESULTS+=("FAIL  a blocked call (Call-ID '${call_id}') reached the callee, or its Call-ID is unknown")
  fi
done
# The roaming claim is the home network's word to this switch, never passed on.
if grep -qi '^X-Roaming-Verified' "$WORK/uas-messages.log"; then
  FAILED=1
  RESULTS+=("FAIL  X-Roaming-Verified reached the callee")
fi
if ! grep -q 'callguard: no verdict (rc=28)' "$WORK/kamailio-slow.log"; then
  FAILED=1
  RESULTS+=("FAIL  kamailio-slow did not log the timeout (curl error 28)")
fi
if ! grep -q 'callguard: no verdict (rc=7)' "$WORK/kamailio-down.log"; then
  FAILED=1
  RESULTS+=("FAIL  kamailio-down did not log the refused connection (curl error 7)")
fi

echo "Kamailio ${KVERSION:-?}, SIPp $(sipp -v 2>/dev/null | grep -oE 'v[0-9.]+' | head -1), callguard on :$CG_PORT"
printf '%s\n' "${RESULTS[@]}"
passed=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^PASS' || true)
failed=$(printf '%s\n' "${RESULTS[@]}" | grep -c '^FAIL' || true)
echo "$passed passed, $failed failed"

# The load phase, on a machine of its own: what this run started is stopped first.
if [[ $LOAD_CPS != 0 ]]; then
  stop_all
  echo
  "$ROOT/test/e2e/kamailio/load.sh" || FAILED=1
fi
exit "$FAILED"
