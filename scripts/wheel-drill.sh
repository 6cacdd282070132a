#!/usr/bin/env bash
# Drills from an installed package, as a team without this repository would run them:
# build the wheel, install it with its drill extra into a fresh virtual environment, and,
# in an empty folder outside the repository, write the starter scenarios and run a drill.
# Exit code: the drill's (0 held). Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_PY="${VENV:-.venv}/bin/python"
work=$(mktemp -d "${TMPDIR:-/tmp}/faultline-wheel-XXXXXX")
trap 'rm -rf "$work"' EXIT
"$VENV_PY" -m pip wheel -q --no-deps -w "$work/dist" .
rm -rf build  # setuptools builds in the tree
wheel=$(ls "$work"/dist/faultline-*.whl)
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$work/venv/bin/python" -m pip install -q "${wheel}[drill]"
mkdir "$work/empty" && cd "$work/empty"
echo "wheel-drill: installed $(basename "$wheel") into a fresh venv; running a drill in $PWD"
"$work/venv/bin/faultline" init .
"$work/venv/bin/faultline" validate scenarios
"$work/venv/bin/faultline" run scenarios/default/1-lost-ack.yaml
