#!/usr/bin/env bash
# Load phase of the switch integration: SIPp places calls at a fixed rate through Kamailio,
# running docker/kamailio/kamailio.cfg as an operator would (8 children, 256 MB of shared
# memory), in front of a real callguard, and checks that every call got its right answer.
#
#   SIPp UACs (4 kinds, one process each) -> Kamailio -(http_client)-> callguard
#                                               '-> SIPp UAS (answers 486, echoing the marking)
#
# The mix, each call with its own caller and callee (no verdict cache hits, no velocity):
#   40 % unsigned, an ordinary UK landline      486, X-Callguard-Verdict: allow
#   30 % signed, a valid PASSporT of its own    486, allow, verstat=TN-Validation-Passed
#   15 % a bank's inbound-only number (DNO)     603 Decline, never delivered
#   15 % a PASSporT whose signature is altered  486, flag, Reason: STIR;cause=438
#
# Any call with another answer, or none, fails the run. It prints the rate achieved, the p50,
# p99 and max from the INVITE leaving SIPp to its final answer (SIPp's message log, in
# microseconds), and where the time went: CPU per call of the service (its event loop and its
# other threads apart), of Kamailio and of SIPp, the CPU the rest of the machine took meanwhile,
# the event loop's delay, the service's own time per request, what Kamailio's SIP workers were
# doing (sampled: running, waiting for the HTTP answer, waiting for SIP), and the datagrams the
# kernel dropped on each SIP socket (each one a retransmission, half a second or more, later).
#   LOAD_CPS=800        calls per second
#   LOAD_SECONDS=15     how long (the PASSporTs are made before the service starts: keep the
#                       whole run inside SHAKEN_MAX_AGE_S, 60 s)
#   LOAD_CHILDREN=n     Kamailio's SIP workers (default: the configuration's children)
#   LOAD_ASSERT_P99=1   also fail when the p99 is LOAD_P99_MS (15) or more. Off by default: it
#                       measures the machine as much as the switch, and CI machines vary.
#   KEEP_LOGS=1, KAMAILIO_CFG=f as for run.sh, which runs this after its calls.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
CFG="${KAMAILIO_CFG:-$ROOT/docker/kamailio/kamailio.cfg}"
WORK="$(mktemp -d -t callguard-kamailio-load.XXXXXX)"
KEEP_LOGS="${KEEP_LOGS:-0}"
LOAD_CPS="${LOAD_CPS:-800}"
LOAD_SECONDS="${LOAD_SECONDS:-15}"
LOAD_CHILDREN="${LOAD_CHILDREN:-}"
LOAD_ASSERT_P99="${LOAD_ASSERT_P99:-0}"
LOAD_P99_MS="${LOAD_P99_MS:-15}"

source "$ROOT/test/e2e/kamailio/lib.sh"
require_tools kamailio sipp curl python3 node ss setsid

CG_PORT=$(free_port)
UAS_PORT=$(free_port)
K_PORT=$(free_port)
CERT_PORT=$(free_port)
SWITCH_KEY="e2e-switch-key-$RANDOM$RANDOM"
X5U="http://127.0.0.1:$CERT_PORT/chain.pem"

# --- the calls: one SIPp injection file per kind ---------------------------------------------
# The kinds of call and their shares of the rate, per mille.
KINDS=(unsigned signed dno badsig)
declare -A SHARE=([unsigned]=400 [signed]=300 [dno]=150 [badsig]=150)
mkdir -p "$WORK/certs"
python3 - "$WORK" "$LOAD_CPS" "$LOAD_SECONDS" "${SHARE[unsigned]}" "${SHARE[signed]}" "${SHARE[dno]}" "${SHARE[badsig]}" <<'PY'
import math, sys
work, cps, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
shares = dict(zip(["unsigned", "signed", "dno", "badsig"], map(int, sys.argv[4:8])))
to_sign = open(f"{work}/to-sign.tsv", "w")
# Warm-up: unsigned calls of their own, not counted, so that the figures are a warm service's.
with open(f"{work}/calls-warmup.csv", "w") as f:
    f.write("SEQUENTIAL\n")
    for i in range(math.ceil(cps / 4 * 2)):
        f.write(f"+442075{i:06d};+447405{i:06d}\n")
for n, (kind, share) in enumerate(shares.items(), start=1):
    calls = math.ceil(cps * seconds * share / 1000)
    with open(f"{work}/calls-{kind}.csv", "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(calls):
            # Callers: London numbers of their own (a DNO: Example Bank's inbound-only range
            # +4420794601xx); callees: UK mobiles, one per call.
            caller = f"+4420794601{i % 100:02d}" if kind == "dno" else f"+44207{n}{i:06d}"
            callee = f"+44740{n}{i:06d}"
            f.write(f"{caller};{callee}\n")
            if kind in ("signed", "badsig"):
                to_sign.write(f"{'good' if kind == 'signed' else 'bad-signature'}\t{caller[1:]}\t{callee[1:]}\t{kind}\n")
PY
# The PASSporTs, in the order of the injection files; the service is started right after, so
# that they are fresh (seconds old) when the calls carry them.
(cd "$ROOT" && node_modules/.bin/tsx test/e2e/kamailio/passports.ts --each "$WORK/certs" "$X5U" \
  <"$WORK/to-sign.tsv") >"$WORK/tokens.txt"
for kind in signed badsig; do
  paste -d ';' <(tail -n +2 "$WORK/calls-$kind.csv") \
    <(paste "$WORK/to-sign.tsv" "$WORK/tokens.txt" | awk -F '\t' -v k="$kind" '$4 == k { print $5 }') \
    | { echo SEQUENTIAL; cat; } >"$WORK/calls-$kind.csv.tmp"
  mv "$WORK/calls-$kind.csv.tmp" "$WORK/calls-$kind.csv"
done

# --- the service, the certificate server, the callee, Kamailio -------------------------------
LOG_LEVEL="${LOG_LEVEL:-warn}" start_callguard "$CG_PORT" "$SWITCH_KEY" "unused-bank-key-$RANDOM$RANDOM"
start_cert_server "$WORK/certs" "$CERT_PORT"
CG_PID=$(ss -Hltnp "sport = :$CG_PORT" | grep -oE 'pid=[0-9]+' | head -1 | cut -d= -f2)

write_uas_scenario "$WORK/uas.xml"
# SIPp's sockets get the buffers Kamailio's have (SIPp's default is 64 KiB): a UAS that stalls
# for a moment must not drop INVITEs and turn them into retransmissions the switch is blamed for.
SIPP_BUFFER=(-buff_size 4194304)
setsid sipp -sf "$WORK/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -nostdin "${SIPP_BUFFER[@]}" -trace_err -error_file "$WORK/uas-errors.log" \
  >"$WORK/uas.out" 2>&1 &
UAS_PGID=$!
PGIDS+=($!)
wait_for "SIPp UAS on :$UAS_PORT" 50 udp_listening "$UAS_PORT"

echo "1 127.0.0.1 32 0 name=uk-ix-load;carrier=5555" >"$WORK/trunks.list"
mkdir -p "$WORK/kamailio"
CALLGUARD_API_KEY="$SWITCH_KEY" setsid kamailio -f "$CFG" -DD -E -m 256 -M 8 ${LOAD_CHILDREN:+-n "$LOAD_CHILDREN"} \
  -Y "$WORK/kamailio" -w "$WORK/kamailio" \
  -A "SIP_LISTEN=udp:127.0.0.1:$K_PORT" \
  -A "CALLGUARD_URL=\"http://127.0.0.1:$CG_PORT/v1/calls/score\"" \
  -A "NEXT_HOP=\"sip:127.0.0.1:$UAS_PORT\"" \
  -A "TRUNKS_FILE=\"$WORK/trunks.list\"" >"$WORK/kamailio.log" 2>&1 &
K_PGID=$!
PGIDS+=("$K_PGID")
wait_for "Kamailio on :$K_PORT" 100 udp_listening "$K_PORT"

# --- the UAC scenarios -----------------------------------------------------------------------
# uac_scenario kind code 'extra headers' regexp...: caller and callee from the call's CSV line.
uac_scenario() {
  local kind=$1
  shift
  write_uac_scenario "$WORK/uac-$kind.xml" "load $kind" '[field0]' '[field1]' "$@"
}
uac_scenario unsigned 486 "" 'X-Echo-Verdict: allow' 'X-Echo-From: <sip:\+44207[0-9]+;verstat=No-TN-Validation@'
uac_scenario signed 486 "      Identity: [field2];info=<$X5U>;alg=ES256;ppt=shaken" \
  'X-Echo-Verdict: allow' 'X-Echo-From: <sip:\+44207[0-9]+;verstat=TN-Validation-Passed@'
uac_scenario dno 603 "" 'SIP/2.0 603 Decline' 'Reason: SIP;cause=603'
uac_scenario badsig 486 "      Identity: [field2];info=<$X5U>;alg=ES256;ppt=shaken" \
  'X-Echo-Verdict: flag' 'X-Echo-Reason: STIR;cause=438;text=.Invalid Identity Header.'

# Two seconds at a quarter of the rate first: a service just started is still compiling its
# hot paths, which is not what a switch meets in production.
(cd "$WORK" && exec sipp "127.0.0.1:$K_PORT" -sf uac-unsigned.xml -inf calls-warmup.csv -i 127.0.0.1 -p "$(free_port)" \
  -r "$((LOAD_CPS * 250))" -rp 1000000 -m "$(($(wc -l <"$WORK/calls-warmup.csv") - 1))" -nostdin \
  -timeout 20s -recv_timeout 5000 >"$WORK/uac-warmup.out" 2>&1) || true

# --- what the machine does meanwhile -----------------------------------------------------------
cpu_ticks() { # pid...: user + system clock ticks, summed
  local pid total=0
  for pid in "$@"; do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
declare -A UAC_PORT
for kind in "${KINDS[@]}"; do UAC_PORT[$kind]=$(free_port); done
K_PIDS=$(pgrep -g "$K_PGID" | paste -sd ' ')
UAS_PID=$(pgrep -g "$UAS_PGID" -x sipp | head -1)
# The SIP workers are the processes that wait on the UDP socket while no call comes.
K_WORKERS=$(for pid in $K_PIDS; do grep -qE 'skb|recv' "/proc/$pid/wchan" 2>/dev/null && echo "$pid" || true; done | paste -sd ' ')
metrics() { curl -fsS -m 2 "http://127.0.0.1:$CG_PORT/metrics" -H "authorization: Bearer $SWITCH_KEY"; }
metrics >"$WORK/metrics-before.txt" || true  # also starts the event loop's delay histogram afresh
# Kamailio's workers, 50 times a second: running, waiting in curl's poll for the service, or
# waiting for SIP (recvfrom on the UDP socket).
# And, twice a second, the datagrams the kernel dropped on each SIP socket for a full buffer:
# each is a retransmission, half a second or more, later.
python3 - "$WORK/workers.txt" "$WORK/drops.txt" "kamailio=$K_PORT" "callee=$UAS_PORT" \
  $(for kind in "${KINDS[@]}"; do echo "caller-$kind=${UAC_PORT[$kind]}"; done) -- $K_WORKERS <<'PY' &
import os, sys, time, signal
out, drops_out = sys.argv[1], sys.argv[2]
split = sys.argv.index("--")
sockets = {int(v): k for k, v in (a.split("=") for a in sys.argv[3:split])}
pids = sys.argv[split + 1:]
counts = {"running": 0, "http": 0, "sip": 0, "other": 0}
first, last = {}, {}
def read_drops():
    for line in open("/proc/net/udp").read().splitlines()[1:]:
        f = line.split()
        port = int(f[1].split(":")[1], 16)
        if port in sockets:
            first.setdefault(port, int(f[-1]))
            last[port] = int(f[-1])
read_drops()
def done(*_):
    with open(out, "w") as f:
        f.write(" ".join(f"{k}={v}" for k, v in counts.items()) + "\n")
    with open(drops_out, "w") as f:
        f.write(" ".join(f"{sockets[p]}={last[p] - first[p]}" for p in sockets if p in last) + "\n")
    sys.exit(0)
tick = 0
signal.signal(signal.SIGTERM, done)
while True:
    for pid in pids:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
            wchan = open(f"/proc/{pid}/wchan").read()
        except OSError:
            continue
        if state == "R":
            counts["running"] += 1
        elif "poll" in wchan:
            counts["http"] += 1
        elif "skb" in wchan or "recv" in wchan:
            counts["sip"] += 1
        else:
            counts["other"] += 1
    tick += 1
    if tick % 25 == 0:
        read_drops()
    time.sleep(0.02)
PY
SAMPLER=$!
load_before=$(cut -d' ' -f1 /proc/loadavg)
cg_before=$(cpu_ticks "$CG_PID")
loop_before=$(awk '{ print $14 + $15 }' "/proc/$CG_PID/task/$CG_PID/stat")
k_before=$(cpu_ticks $K_PIDS)
uas_before=$(cpu_ticks "$UAS_PID")
times >"$WORK/times-before.txt"  # the shell's waited-for children: the SIPp UACs, among others
read -r _ u n s idle iow irq sirq _ </proc/stat
machine_before=$((u + n + s + idle + iow + irq + sirq)); idle_before=$((idle + iow))
start_ns=$(date +%s%N)

# --- the load --------------------------------------------------------------------------------
pids=()
for kind in "${KINDS[@]}"; do
  port=${UAC_PORT[$kind]}
  calls=$(($(wc -l <"$WORK/calls-$kind.csv") - 1))
  # -r rate per -rp ms: the kind's share of LOAD_CPS, per mille.
  (cd "$WORK" && exec sipp "127.0.0.1:$K_PORT" -sf "uac-$kind.xml" -inf "calls-$kind.csv" -i 127.0.0.1 -p "$port" \
    -r "$((LOAD_CPS * SHARE[$kind]))" -rp 1000000 -m "$calls" -l 100000 -nostdin "${SIPP_BUFFER[@]}" \
    -timeout "$((LOAD_SECONDS + 60))s" -timeout_error -recv_timeout 32000 \
    -trace_stat -stf "stat-$kind.csv" -fd 1 \
    -trace_err -error_file "errors-$kind.log" -trace_shortmsg >"uac-$kind.out" 2>&1) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done

elapsed_ns=$(($(date +%s%N) - start_ns))
cg_after=$(cpu_ticks "$CG_PID")
loop_after=$(awk '{ print $14 + $15 }' "/proc/$CG_PID/task/$CG_PID/stat")
k_after=$(cpu_ticks $K_PIDS)
uas_after=$(cpu_ticks "$UAS_PID")
times >"$WORK/times-after.txt"
read -r _ u n s idle iow irq sirq _ </proc/stat
machine_after=$((u + n + s + idle + iow + irq + sirq)); idle_after=$((idle + iow))
kill -TERM "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
metrics >"$WORK/metrics-after.txt" || true
load_after=$(cut -d' ' -f1 /proc/loadavg)

# --- the verdict -------------------------------------------------------------------------------
python3 - "$WORK" "$LOAD_CPS" "$LOAD_SECONDS" "$elapsed_ns" "$(getconf CLK_TCK)" \
  "$((cg_after - cg_before))" "$((loop_after - loop_before))" "$((k_after - k_before))" "$((uas_after - uas_before))" "$((machine_after - machine_before))" "$((idle_after - idle_before))" \
  "$load_before" "$load_after" "$(nproc)" "$LOAD_ASSERT_P99" "$LOAD_P99_MS" "$(wc -w <<<"$K_WORKERS")" "$status" "${KINDS[@]}" <<'PY'
import csv, glob, math, re, sys
(work, cps, seconds, elapsed_ns, hz, cg_ticks, loop_ticks, k_ticks, uas_ticks, m_ticks, idle_ticks, load_before, load_after, cores,
 assert_p99, p99_goal, children, sipp_status, *kinds) = sys.argv[1:]
elapsed = int(elapsed_ns) / 1e9
hz = int(hz)
failed = 0
total = ok = 0
rtts, per_kind = [], {}
first, last = float("inf"), 0.0
# The 100 Trying leaves Kamailio when a worker takes the INVITE, before the score request: the
# time to it is the wait for a worker; the time from it to the answer, the score request (and,
# for a delivered call, the callee).
to_trying, after_trying = [], []
for kind in kinds:
    rows = list(csv.DictReader(open(f"{work}/stat-{kind}.csv"), delimiter=";"))
    final = rows[-1] if rows else {}
    good = int(final.get("SuccessfulCall(C)", 0) or 0)
    bad = int(final.get("FailedCall(C)", 0) or 0)
    expected = sum(1 for _ in open(f"{work}/calls-{kind}.csv")) - 1
    # From the INVITE leaving SIPp to its final answer arriving, per call, in SIPp's own
    # short message log (microseconds; its response-time statistics count in clock ticks).
    sent, trying, times = {}, {}, []
    for path in glob.glob(f"{work}/uac-{kind}_*_shortmessages.log"):
        for line in open(path):
            f = line.rstrip("\n").split("\t")
            if len(f) < 7 or f[5] != "CSeq:1 INVITE":
                continue
            at, call = float(f[2]), f[4]
            if f[3] == "S" and call not in sent:
                sent[call] = at
                first = min(first, at)
            elif f[3] == "R" and f[6].startswith("SIP/2.0 100") and call in sent and call not in trying:
                trying[call] = at
                to_trying.append((at - sent[call]) * 1000)
            elif f[3] == "R" and re.match(r"SIP/2.0 [2-6]", f[6]) and call in sent and sent[call] is not None:
                if call in trying:
                    after_trying.append((at - trying[call]) * 1000)
                times.append((at - sent[call]) * 1000)
                sent[call] = None
                last = max(last, at)
    rtts += times
    total += expected
    ok += good
    per_kind[kind] = (expected, good, bad, times)
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(p / 100 * len(xs)) - 1)] if xs else float("nan")
def metric(text, name, labels=""):
    for line in text.splitlines():
        if line.startswith(name + (labels if labels else " ")) or line.startswith(name + "{") and labels and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return float("nan")
def read(path):
    try:
        return open(path).read()
    except OSError:
        return ""
def children_s(path):
    m = re.findall(r"(\d+)m([\d.]+)s", read(path).splitlines()[-1] if read(path) else "")
    return sum(int(a) * 60 + float(b) for a, b in m)
sipp_ticks = int(uas_ticks) + (children_s(f"{work}/times-after.txt") - children_s(f"{work}/times-before.txt")) * hz
before, after = read(f"{work}/metrics-before.txt"), read(f"{work}/metrics-after.txt")
# The service's own time for the score requests, from its histogram: the share answered within
# each bound, over this run only.
def buckets(text):
    out = {}
    for m in re.finditer(r'^callguard_http_request_duration_seconds_bucket\{([^}]*)\} (\S+)$', text, re.M):
        labels = m.group(1)
        if "/v1/calls/score" in labels:
            le = re.search(r'le="([^"]+)"', labels).group(1)
            out[le] = out.get(le, 0) + float(m.group(2))
    return out
b0, b1 = buckets(before), buckets(after)
served = b1.get("+Inf", 0) - b0.get("+Inf", 0)
within = []
for le in sorted((k for k in b1 if k != "+Inf"), key=float):
    share = (b1[le] - b0.get(le, 0)) / served if served else float("nan")
    within.append(f"<= {float(le) * 1000:g} ms {share:.1%}")
lag = {k: metric(after, f"nodejs_eventloop_lag_{k}_seconds") * 1000 for k in ("p50", "p99", "max")}
workers = dict(kv.split("=") for kv in read(f"{work}/workers.txt").split())
samples = sum(int(v) for v in workers.values()) or 1
span = last - first if last > first else 0
achieved = ok / span if span else 0
p50, p99, mx = pct(rtts, 50), pct(rtts, 99), max(rtts) if rtts else float("nan")
cpu_call = lambda ticks: int(ticks) / hz / ok * 1e6 if ok else float("nan")
busy = 1 - int(idle_ticks) / int(m_ticks) if int(m_ticks) else float("nan")
print(f"load: {cps} calls/s for {seconds} s, Kamailio with {children} SIP workers, {cores} cores, load average {load_before} -> {load_after}")
for kind, (expected, good, bad, times) in per_kind.items():
    print(f"  {kind:9s} {good:6d}/{expected:<6d} right answers, {bad} failed, p50 {pct(times, 50):.1f} ms, p99 {pct(times, 99):.1f} ms")
print(f"  achieved {achieved:.0f} calls/s ({ok} of {total} right, the last answered {span:.1f} s after the first call)")
print(f"  INVITE -> final answer: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {mx:.1f} ms")
print(f"  INVITE -> 100 Trying (waiting for a Kamailio worker): p50 {pct(to_trying, 50):.1f} ms, p99 {pct(to_trying, 99):.1f} ms; "
      f"100 Trying -> final answer: p50 {pct(after_trying, 50):.1f} ms, p99 {pct(after_trying, 99):.1f} ms")
print(f"  SIP datagrams dropped for a full socket buffer: " + (read(f"{work}/drops.txt").strip().replace("=", " ").replace(" caller", ", caller").replace(" callee", ", callee") or "not read"))
print(f"  callguard CPU {cpu_call(cg_ticks):.0f} us/call ({int(cg_ticks) / hz / elapsed:.0%} of a core); "
      f"Kamailio CPU {cpu_call(k_ticks):.0f} us/call ({int(k_ticks) / hz / elapsed:.0%} of a core); "
      f"SIPp (UACs and UAS) {sipp_ticks / hz / elapsed:.0%} of a core")
ours = (int(cg_ticks) + int(k_ticks) + sipp_ticks) / hz / elapsed
print(f"  the machine: {busy:.0%} busy over {cores} cores, {max(0.0, busy * int(cores) - ours):.0%} of a core spent outside this test")
print(f"  callguard's main thread (the event loop) {cpu_call(loop_ticks):.0f} us/call ({int(loop_ticks) / hz / elapsed:.0%} of a core), "
      f"its other threads (ES256 on the thread pool, GC) {cpu_call(int(cg_ticks) - int(loop_ticks)):.0f} us/call")
print(f"  callguard event loop delay: p50 {lag['p50']:.1f} ms, p99 {lag['p99']:.1f} ms, max {lag['max']:.1f} ms")
print(f"  callguard's own time on /v1/calls/score ({served:.0f} requests): " + ", ".join(within[:6]))
print(f"  Kamailio's SIP workers, sampled: " + ", ".join(f"{k} {int(v) / samples:.0%}" for k, v in workers.items()))
if ok != total or int(sipp_status) != 0:
    print(f"FAIL  {total - ok} calls did not get their right answer (see {work}/errors-*.log)")
    failed = 1
if assert_p99 == "1" and not p99 < float(p99_goal):
    print(f"FAIL  p99 {p99:.1f} ms is not under {p99_goal} ms (LOAD_ASSERT_P99=1)")
    failed = 1
print("PASS  every call got its right answer" if not failed else "load phase failed")
sys.exit(failed)
PY
