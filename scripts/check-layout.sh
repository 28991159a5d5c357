#!/usr/bin/env bash
# usage: scripts/check-layout.sh BUILD_DIR engine|core
# Checks the broker's layout rules (docs/DESIGN.md, "Source layout") on what
# the compiler really reads: each source's dependency list comes from its
# own compile command in BUILD_DIR/compile_commands.json, run with -M, so
# headers reached through other headers count too.
#   engine  no file in broker/src/engine/ reaches a ZeroMQ (zmq.h, zmq.hpp,
#           zmq_addon.hpp), cpp-httplib (httplib.h) or nlohmann header;
#   core    no source of taskmill_broker_core (broker/src/ but http/, net/,
#           options/, cluster/ and main.cpp) reaches a header in
#           broker/src/http/, net/ or cluster/.
# Prints each offending source with the headers that break the rule and
# exits 1; exits 0 when every source keeps to it.
set -euo pipefail
build_dir=${1:?usage: check-layout.sh BUILD_DIR engine|core}
rule=${2:?usage: check-layout.sh BUILD_DIR engine|core}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
exec python3 - "$build_dir/compile_commands.json" "$source_dir" "$rule" <<'PY'
import json, os, re, shlex, subprocess, sys

commands_file, source_dir, rule = sys.argv[1:4]
broker_src = os.path.join(source_dir, "broker", "src") + os.sep

if rule == "engine":
    scope = lambda f: f.startswith(broker_src + "engine" + os.sep)
    banned = re.compile(r"(^|/)(zmq\.h|zmq\.hpp|zmq_addon\.hpp|httplib\.h)$|(^|/)nlohmann/")
elif rule == "core":
    scope = lambda f: (f.startswith(broker_src)
                       and not f.startswith(broker_src + "http" + os.sep)
                       and not f.startswith(broker_src + "net" + os.sep)
                       and not f.startswith(broker_src + "options" + os.sep)
                       and not f.startswith(broker_src + "cluster" + os.sep)
                       and f != broker_src + "main.cpp")
    banned = re.compile("^" + re.escape(broker_src) + "(http|net|cluster)/")
else:
    sys.exit("unknown rule " + rule)

def dependencies(entry):
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    if os.path.basename(args[0]) == "ccache":
        args = args[1:]
    out = []
    skip = False
    for a in args:  # the same command, minus its output: -M lists the headers instead
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD"):
            continue
        out.append(a)
    text = subprocess.run(out + ["-M", "-MF", "/dev/stdout"], cwd=entry["directory"], check=True,
                          capture_output=True, text=True).stdout
    return [os.path.normpath(os.path.join(entry["directory"], d))
            for d in text.replace("\\\n", " ").split()[2:]]  # "x.o: x.cpp" comes first

with open(commands_file) as f:
    entries = [e for e in json.load(f) if scope(os.path.normpath(e["file"]))]
if not entries:
    sys.exit("no source of rule '%s' in %s" % (rule, commands_file))
bad = 0
for e in sorted(entries, key=lambda e: e["file"]):
    hits = sorted({d for d in dependencies(e) if banned.search(d)})
    # nlohmann is dozens of headers; name the library once.
    nlohmann = [h for h in hits if "/nlohmann/" in h]
    hits = [h for h in hits if "/nlohmann/" not in h]
    if nlohmann:
        hits.append("nlohmann/ (%d headers)" % len(nlohmann))
    if hits:
        bad += 1
        print(os.path.relpath(e["file"], source_dir) + ":")
        for h in hits:
            print("    " + h)
print("%d of %d sources break the '%s' rule" % (bad, len(entries), rule))
sys.exit(1 if bad else 0)
PY
