#!/usr/bin/env bash
# Creates .venv, the pinned build and development environment (requirements-dev.txt), unless it
# is already up to date. The one definition of this step: `make setup` runs it, and so does
# functions/predict/Makefile, so that a bare `sam build` on a fresh clone creates it on first use.
# A failure is one line on stderr naming what is missing and the command that fixes it.
set -uo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp=$venv/.installed
requirements=requirements-dev.txt
# requirements-dev.txt is compiled against the function's pins: either changing updates .venv.
pins=(requirements-dev.txt functions/predict/requirements.txt)

fail() {
	echo "setup failed: $*" >&2
	exit 1
}

up_to_date() {
	[[ -f $stamp ]] || return 1
	local pin
	for pin in "${pins[@]}"; do
		[[ $pin -nt $stamp ]] && return 1
	done
	return 0
}

# Lambda's runtime is python3.12: PYTHON312 if given, else on PATH, else a pyenv install
# (whose shim on PATH refuses unless 3.12 is selected).
find_python312() {
	local candidate
	for candidate in ${PYTHON312:-} python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
		if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
			echo "$candidate"
			return 0
		fi
	done
	return 1
}

up_to_date && exit 0
python=$(find_python312) ||
	fail "Python 3.12 (Lambda's runtime) not found on PATH or in ~/.pyenv: install it (e.g. \`pyenv install 3.12\`) or set PYTHON312=/path/to/python3.12, then run \`make setup\`"
action=creating
[[ -d $venv ]] && action=updating
echo "$action $venv with $python and the pinned tools of $requirements (once; takes a few minutes)"
"$python" -m venv "$venv" || fail "$python could not create $venv: remove $venv, then run \`make setup\`"
log=$venv/setup.log
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements" >"$log" 2>&1; then
	# pip's own first error names the package; its whole output stays in the log.
	reason=$(grep -m1 '^ERROR' "$log" || tail -n1 "$log")
	fail "pip could not install $requirements into $venv (${reason:-no output}): check that PyPI is reachable, then run \`make setup\` (pip's output: $log)"
fi
touch "$stamp"
