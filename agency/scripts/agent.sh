#!/bin/sh
# auftrag agency job script (template: adapt it to the site).
#
# Called by auftrag-agency for every job as
#     agent.sh TYPE QUEUE JOB_ID
# TYPE is PRINT or COMPUTE, QUEUE the job's queue, JOB_ID its id; the job's
# data arrives on standard input. What the script writes to standard output
# is the job's result, returned to the engine. Exit 0 marks the job
# COMPLETED; any other exit code marks it FAILED, with the code and the end of
# standard error. The agency kills the script's whole process group when the
# job's time is up.
set -eu

TYPE=${1:?usage: agent.sh TYPE QUEUE JOB_ID}
QUEUE=${2:?usage: agent.sh TYPE QUEUE JOB_ID}
JOB_ID=${3:?usage: agent.sh TYPE QUEUE JOB_ID}

case "$TYPE" in
PRINT)
    # The queue name is the CUPS printer; the label data (e.g. ZPL or EPL
    # for barcode printers, set up as a raw queue) goes to it unchanged.
    # lp answers "request id is PRINTER-N (1 file(s))": that is the result.
    exec lp -d "$QUEUE" -t "auftrag job $JOB_ID" -o raw
    ;;
COMPUTE)
    # A sample computation: the size and SHA-256 of the input. Replace it
    # with the real work (a quantum-chemistry run, a model, ...).
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    cat >"$tmp"
    printf 'job %s bytes %s sha256 %s\n' "$JOB_ID" "$(wc -c <"$tmp" | tr -d ' ')" \
        "$(sha256sum "$tmp" | cut -d' ' -f1)"
    ;;
*)
    echo "job $JOB_ID: unknown job type $TYPE" >&2
    exit 2
    ;;
esac
