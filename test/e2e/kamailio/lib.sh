# Shared by run.sh and load.sh: tool checks, process groups, ports, waiting, the service.
# Sourced after WORK, KEEP_LOGS and ROOT are set; sets the EXIT trap.

require_tools() { # tool...
  local tool mod modules_dir
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$(basename "$0"): $tool is not installed (see the header of run.sh)" >&2; exit 2; }
  done
  modules_dir=$(kamailio -h 2>&1 | sed -n 's/.*Modules search path (default: \(.*\))/\1/p')
  for mod in http_client jansson permissions dialog uac textopsx; do
    if [[ ! -f "$modules_dir/$mod.so" ]]; then
      echo "$(basename "$0"): Kamailio module $mod.so not in $modules_dir (Debian: kamailio, kamailio-utils-modules, kamailio-extra-modules)" >&2
      exit 2
    fi
  done
}

# Every process started here leads a process group of its own (setsid), so ending the group
# ends its children too (npx -> tsx -> node; Kamailio's workers).
PGIDS=()
stop_all() {
  local pgid
  for pgid in "${PGIDS[@]}"; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
  # Kamailio takes a moment to stop its workers; what is still there after 2 s is killed.
  for _ in $(seq 1 20); do
    local alive=0
    for pgid in "${PGIDS[@]}"; do kill -0 -- "-$pgid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pgid in "${PGIDS[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null || true; done
  PGIDS=()
}
cleanup() {
  local status=$?
  stop_all
  if [[ $status -ne 0 || $KEEP_LOGS == 1 ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port free for both UDP and TCP on 127.0.0.1, as the kernel hands them out.
free_port() {
  python3 - <<'PY'
import socket
while True:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        u.close()
        t.close()
    print(port)
    break
PY
}

wait_for() { # description, tries of 0.1 s, command...
  local what=$1 tries=$2
  shift 2
  for _ in $(seq 1 "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$(basename "$0"): $what did not come up; see $WORK" >&2
  return 1
}

udp_listening() { ss -Hlun "sport = :$1" | grep -q .; }

kamailio_version() { kamailio -v 2>/dev/null | sed -n 's/^version: kamailio \([0-9]*\.[0-9]*\).*/\1/p'; }

# A throwaway STI PKI in $1 (root.pem, chain.pem), its chain served over HTTP on port $2.
start_cert_server() { # dir, port
  setsid python3 -m http.server "$2" --bind 127.0.0.1 --directory "$1" >"$WORK/certs.log" 2>&1 &
  PGIDS+=($!)
  wait_for "certificate server on :$2" 50 curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$2/chain.pem"
}

# callguard with the switch's API key (and a bank's), as in production: writes $WORK/keys.json
# and starts the service on 127.0.0.1:port, trusting $WORK/certs/root.pem. LOG_LEVEL passes on.
# CALLGUARD_DIST=1 runs the build (dist/server.js, after `npm run build`) as `npm start` does,
# instead of the sources through tsx; CALLGUARD_NODE_ARGS are node's own flags (--cpu-prof ...).
start_callguard() { # port, switch key, bank key
  local port=$1
  python3 - "$2" "$3" >"$WORK/keys.json" <<'PY'
import hashlib, json, sys
digest = lambda k: hashlib.sha256(k.encode()).hexdigest()
print(json.dumps([
    {"name": "e2e-kamailio", "role": "switch", "sha256": digest(sys.argv[1])},
    {"name": "e2e-examplebank", "role": "bank", "bankId": "examplebank", "sha256": digest(sys.argv[2])},
]))
PY
  (
    cd "$ROOT"
    exec env -u REDIS_URL HOST=127.0.0.1 PORT="$port" LOG_LEVEL="${LOG_LEVEL:-warn}" \
      API_KEYS_FILE="$WORK/keys.json" REGISTRY_DATA_DIR="$WORK/registry-data" \
      REGISTRY_FILE="$ROOT/src/registry/sample-registry.json" \
      SHAKEN_TRUST_ANCHORS="$WORK/certs/root.pem" SHAKEN_X5U_ALLOW_INSECURE=true \
      setsid node ${CALLGUARD_NODE_ARGS:-} $([[ ${CALLGUARD_DIST:-0} == 1 ]] && echo dist/server.js || echo --import tsx src/server.ts) >"$WORK/callguard.log" 2>&1
  ) &
  PGIDS+=($!)
  wait_for "callguard on :$port" 300 curl -fsS -m 1 "http://127.0.0.1:$port/healthz"
}

# write_uac_scenario file name from to code 'extra headers' regexp...: a SIPp caller's scenario,
# one INVITE from `from` to `to` (numbers, or SIPp fields such as [field0]) and its ACK. The answer
# must have `code` and match every regexp; one written !regexp must not match. The status line is
# checked too, which also keeps SIPp from rejecting a scenario whose variable is used only once.
write_uac_scenario() {
  local file=$1 name=$2 from=$3 to=$4 code=$5 extra=$6 checks="" re check nl=$'\n'
  shift 6
  for re in "SIP/2.0 $code " "$@"; do
    check=check_it
    if [[ $re == '!'* ]]; then check=check_it_inverse; re=${re#!}; fi
    re=$(printf '%s' "$re" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g')
    checks+="      <ereg regexp=\"$re\" search_in=\"msg\" $check=\"true\" assign_to=\"ok\"/>"$'\n'
  done
  cat >"$file" <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="$name">
  <send retrans="500">
    <![CDATA[

      INVITE sip:$to@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:$from@[local_ip];user=phone>;tag=[pid]SIPpTag00[call_number]
      To: <sip:$to@[remote_ip]:[remote_port];user=phone>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70${extra:+$nl$extra}
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="$code">
    <action>
$checks    </action>
  </recv>
  <send>
    <![CDATA[

      ACK sip:$to@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: <sip:$from@[local_ip];user=phone>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
EOF
}

# write_uas_scenario file: the callee, answering every delivered INVITE with 486 and echoing what
# Kamailio added (callguard's marking, the From, PAI and Privacy it set, its Reason) for the
# callers' checks.
write_uas_scenario() {
  cat >"$1" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callee: 486 with the callguard marking echoed">
  <recv request="INVITE">
    <action>
      <ereg regexp="[^ ].*" search_in="hdr" header="X-Callguard-Verdict:" assign_to="verdict"/>
      <ereg regexp="[^ ].*" search_in="hdr" header="X-Callguard-Score:" assign_to="score"/>
      <ereg regexp="[^ ].*" search_in="hdr" header="From:" assign_to="from"/>
      <ereg regexp="[^ ].*" search_in="hdr" header="P-Asserted-Identity:" assign_to="pai"/>
      <ereg regexp="[^ ].*" search_in="hdr" header="Privacy:" assign_to="privacy"/>
      <ereg regexp="[^ ].*" search_in="hdr" header="Reason:" assign_to="reason"/>
      <ereg regexp="[^ ].*" search_in="hdr" header="X-Roaming-Verified:" assign_to="roaming"/>
    </action>
  </recv>
  <send>
    <![CDATA[

      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      X-Echo-Verdict: [$verdict]
      X-Echo-Score: [$score]
      X-Echo-From: [$from]
      X-Echo-PAI: [$pai]
      X-Echo-Privacy: [$privacy]
      X-Echo-Reason: [$reason]
      X-Echo-Roaming: [$roaming]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
EOF
}
